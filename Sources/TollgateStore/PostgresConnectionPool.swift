import Dispatch
import Foundation
import Logging
import NIOCore
import NIOPosix
import PostgresNIO
import Synchronization

/// A few connections to one PostgreSQL server for blocking callers. A caller takes a connection for the
/// length of its work (a transaction), waiting while all are in use; a connection found broken is replaced
/// on its next use, so the pool recovers by itself when the server comes back.
///
/// The wait is a blocking `EventLoopFuture.wait()`: the caller may be a thread of Swift's cooperative pool,
/// which must never wait for another task, but may wait for an event loop thread. It must never be an event
/// loop thread itself (that one would wait for itself).
final class PostgresConnectionPool: Sendable {
    private struct State {
        var idle: [PostgresConnection] = []
        var nextID = 1
        var closed = false
    }

    let endpoint: PostgresEndpoint
    private let configuration: PostgresConnection.Configuration
    private let group: any EventLoopGroup
    private let logger: Logger
    private let state = Mutex(State())
    /// One permit per connection the pool may hold.
    private let permits: DispatchSemaphore

    init(endpoint: PostgresEndpoint, size: Int, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
         logger: Logger) throws {
        precondition(size > 0, "a pool needs at least one connection")
        self.endpoint = endpoint
        self.configuration = try endpoint.connectionConfiguration()
        self.group = group
        self.logger = logger
        self.permits = DispatchSemaphore(value: size)
    }

    /// Runs `body` with a connection of its own.
    func withConnection<T>(_ body: (PostgresSession) throws -> T) throws -> T {
        precondition(MultiThreadedEventLoopGroup.currentEventLoop == nil,
                     "the PostgreSQL store blocks: call it from a thread that is not an event loop")
        permits.wait()
        defer { permits.signal() }
        let connection = try take()
        do {
            let result = try body(PostgresSession(connection: connection, endpoint: endpoint, logger: logger))
            giveBack(connection)
            return result
        } catch {
            giveBack(connection)
            throw error
        }
    }

    /// Runs `body` in a transaction: committed when it returns, rolled back when it throws. A deadlock or
    /// serialization failure (another transaction won) runs it again, up to three times in all.
    func transaction<T>(_ body: (PostgresSession) throws -> T) throws -> T {
        var attempt = 1
        while true {
            do {
                return try withConnection { session in
                    try session.execute("BEGIN")
                    do {
                        let result = try body(session)
                        try session.execute("COMMIT")
                        return result
                    } catch {
                        // A connection that cannot roll back must not go back to the pool mid-transaction.
                        if !session.connection.isClosed, (try? session.execute("ROLLBACK")) == nil {
                            try? session.connection.close().wait()
                        }
                        throw error
                    }
                }
            } catch let error as PostgresServerError where error.isTransient && attempt < 3 {
                attempt += 1
            }
        }
    }

    /// Closes every connection; later calls reconnect. Waits for the closes to finish.
    func close() {
        let connections = state.withLock { state in
            defer { state.idle = [] }
            return state.idle
        }
        for connection in connections { try? connection.close().wait() }
    }

    deinit {
        // A connection must be closed before it is released: the close holds on to it until done.
        for connection in state.withLock({ $0.idle }) {
            connection.close().whenComplete { _ in withExtendedLifetime(connection) {} }
        }
    }

    private func take() throws -> PostgresConnection {
        while let connection = state.withLock({ $0.idle.popLast() }) {
            if !connection.isClosed { return connection }
        }
        let id = state.withLock { state in
            defer { state.nextID += 1 }
            return state.nextID
        }
        do {
            return try PostgresConnection.connect(on: group.next(), configuration: configuration, id: id, logger: logger).wait()
        } catch {
            throw PostgresSession.storeError(error, endpoint: endpoint, connecting: true)
        }
    }

    private func giveBack(_ connection: PostgresConnection) {
        guard !connection.isClosed else { return }
        state.withLock { $0.idle.append(connection) }
    }
}

/// One connection lent to one caller.
struct PostgresSession {
    let connection: PostgresConnection
    let endpoint: PostgresEndpoint
    let logger: Logger

    /// The rows the statement returned.
    @discardableResult
    func query(_ query: PostgresQuery) throws -> [PostgresRandomAccessRow] {
        try run(query).rows.map(PostgresRandomAccessRow.init)
    }

    /// How many rows the statement inserted, changed or deleted.
    @discardableResult
    func execute(_ query: PostgresQuery) throws -> Int {
        try run(query).metadata.rows ?? 0
    }

    /// How long one statement may take before its connection is given up: a connection the server dropped
    /// in the middle of a statement (a restart) can leave its answer pending for ever, and the caller (the
    /// ledger writer, the lease upkeep) must get an error to retry on a fresh connection instead.
    static let statementTimeout = TimeAmount.seconds(10)

    /// Every statement sent, by every pool of the process (`/health` shows it: round trips per request).
    static let roundTrips = Atomic<Int>(0)

    private func run(_ query: PostgresQuery) throws -> PostgresQueryResult {
        Self.roundTrips.wrappingAdd(1, ordering: .relaxed)
        let eventLoop = connection.eventLoop
        let answer = eventLoop.makePromise(of: PostgresQueryResult.self)
        let connection = self.connection
        let deadline = eventLoop.scheduleTask(in: Self.statementTimeout) {
            answer.fail(StatementTimedOut())
            connection.close().whenComplete { _ in withExtendedLifetime(connection) {} }
        }
        connection.query(query, logger: logger).whenComplete { result in
            deadline.cancel()
            answer.completeWith(result)
        }
        do {
            return try answer.futureResult.wait()
        } catch {
            throw Self.storeError(error, endpoint: endpoint, connecting: false)
        }
    }

    struct StatementTimedOut: Error {}

    /// A server's refusal becomes a `PostgresServerError`; anything else (no route, refused, reset, closed)
    /// means the database cannot be reached. Neither names the password: PostgresNIO's own errors are not
    /// shown as they are.
    static func storeError(_ error: any Error, endpoint: PostgresEndpoint, connecting: Bool) -> any Error {
        if let error = error as? PSQLError, let info = error.serverInfo {
            let server = PostgresServerError(sqlState: info[.sqlState] ?? "", message: info[.message] ?? "")
            // The server refused the login (bad password, unknown user or database): as good as unreachable.
            return connecting ? StoreError.unavailable("PostgreSQL at \(endpoint.hostAndPort) refused the connection: \(server.message)") : server
        }
        let reason = describe(error)
        return connecting
            ? StoreError.unavailable("cannot reach PostgreSQL at \(endpoint.hostAndPort): \(reason)")
            : StoreError.unavailable("lost the connection to PostgreSQL at \(endpoint.hostAndPort): \(reason)")
    }

    private static func describe(_ error: any Error) -> String {
        if let error = error as? PSQLError {
            if let underlying = error.underlying { return describe(underlying) }
            return "\(error.code)"
        }
        if let error = error as? NIOConnectionError {
            if let first = error.connectionErrors.first { return describe(first.error) }
            return "cannot resolve \(error.host)"
        }
        if let error = error as? IOError { return "\(String(cString: strerror(error.errnoCode))) (errno \(error.errnoCode))" }
        if let error = error as? ChannelError { return "\(error)" }
        if error is StatementTimedOut { return "no answer within \(statementTimeout.nanoseconds / 1_000_000_000) s" }
        return String(describing: type(of: error))
    }
}

/// An error the PostgreSQL server answered with (its SQLSTATE and message).
struct PostgresServerError: Error, CustomStringConvertible {
    var sqlState: String
    var message: String

    var description: String { "PostgreSQL error \(sqlState): \(message)" }

    var isUniqueViolation: Bool { sqlState == "23505" }
    var isForeignKeyViolation: Bool { sqlState == "23503" }
    /// Deadlock detected, or serialization failure: the transaction can be run again.
    var isTransient: Bool { sqlState == "40P01" || sqlState == "40001" }
}

extension PostgresRandomAccessRow {
    func get<T: PostgresDecodable>(_ column: String, as type: T.Type = T.self) throws -> T {
        try self[column].decode(T.self)
    }
}
