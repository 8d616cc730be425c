import Foundation
import PostgresNIO
import Testing
import TollgateCore
@testable import TollgateStore

/// The stores the contract suite runs against. PostgreSQL needs `TOLLGATE_TEST_PG_URL` (scripts/test starts
/// a throwaway cluster and sets it); without it, its cases are left out and the suite's "PostgreSQL
/// backend" test shows as skipped, saying why.
enum StoreBackend: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case sqlite, postgres

    var testDescription: String { rawValue }

    static let postgresURL = ProcessInfo.processInfo.environment["TOLLGATE_TEST_PG_URL"].flatMap { $0.isEmpty ? nil : $0 }
    static let available: [StoreBackend] = postgresURL == nil ? [.sqlite] : [.sqlite, .postgres]
    static let postgresSkipped = "TOLLGATE_TEST_PG_URL is not set: the PostgreSQL half of the store contract is skipped (scripts/test sets it)"

    /// A store of this kind with nothing in it: a fresh SQLite file, or a fresh PostgreSQL database,
    /// removed afterwards. `instances` stores share it (several gateway instances on one database; for
    /// SQLite, one store shared by all, as one instance owns its file).
    func withStores<T>(_ instances: Int, _ body: ([any Store]) throws -> T) throws -> T {
        switch self {
        case .sqlite:
            let path = FileManager.default.temporaryDirectory
                .appendingPathComponent("tollgate-store-\(UUID().uuidString).sqlite").path
            defer {
                for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
            }
            let store = try SQLiteStore(path: path)
            return try body(Array(repeating: store, count: instances))
        case .postgres:
            let database = try PostgresScratch.createDatabase()
            defer { PostgresScratch.dropDatabase(database.name) }
            let stores = try (0..<instances).map { _ in try PostgresStore(url: database.url) }
            defer { stores.forEach { $0.close() } }
            return try body(stores)
        }
    }

    func withStore<T>(_ body: (any Store) throws -> T) throws -> T {
        try withStores(1) { try body($0[0]) }
    }
}

/// Databases made for one test each on the server of `TOLLGATE_TEST_PG_URL`, so that tests running at
/// once (and runs one after another) never see each other's rows.
enum PostgresScratch {
    static let admin: PostgresStore? = StoreBackend.postgresURL.flatMap { try? PostgresStore(url: $0, connections: 2, migrate: false) }

    static func baseURL() throws -> String {
        try #require(StoreBackend.postgresURL, "\(StoreBackend.postgresSkipped)")
    }

    static func createDatabase() throws -> (name: String, url: String) {
        let base = try baseURL()
        let name = "tollgate_t_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        try #require(admin).pool.withConnection { session in _ = try session.execute("CREATE DATABASE \(unescaped: name)") }
        var components = try #require(URLComponents(string: base))
        components.path = "/" + name
        return (name, try #require(components.string))
    }

    static func dropDatabase(_ name: String) {
        _ = try? admin?.pool.withConnection { session in
            try session.execute("DROP DATABASE IF EXISTS \(unescaped: name) WITH (FORCE)")
        }
    }
}

/// 2025-03-10T00:00:00Z.
let day0: Int64 = 1_741_564_800_000
let hour: Int64 = 3_600_000

func date(_ milliseconds: Int64) -> Date { Date(epochMilliseconds: milliseconds) }

func request(_ id: String, at milliseconds: Int64, user: String? = nil, team: String? = nil,
             key: String? = nil, model: String? = "gpt-4o-mini", tags: [String] = [], cost: Int64 = 0,
             input: Int = 0, cached: Int = 0, output: Int = 0) -> LedgerRecord {
    LedgerRecord(id: id, createdAt: date(milliseconds), endpoint: "chat.completions", keyID: key,
                 userName: user, teamName: team, model: model,
                 usage: Usage(inputTokens: input, cachedInputTokens: cached, outputTokens: output),
                 cost: Nanodollars(cost), status: 200, latencyMs: 12, tags: tags)
}

func key(_ id: String, name: String?, orgID: String, userID: String? = nil, models: [String]? = nil) -> KeyRecord {
    KeyRecord(id: id, name: name, hashHex: VirtualKey.hashHex(of: id), prefix: "tg-" + id.suffix(6),
              userID: userID, teamID: nil, orgID: orgID, allowedModels: models,
              expiresAt: date(day0 + 30 * 24 * hour), revokedAt: nil, rpm: 60, tpm: nil, createdAt: date(day0))
}

/// Runs `body(index)` on `count` threads of their own (not the cooperative pool, which a blocking store
/// call would hold), all started together, and waits for them.
func onThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
    let start = DispatchSemaphore(value: 0)
    let done = DispatchGroup()
    for index in 0..<count {
        done.enter()
        let thread = Thread {
            start.wait()
            body(index)
            done.leave()
        }
        thread.start()
    }
    for _ in 0..<count { start.signal() }
    done.wait()
}
