import Foundation
import Logging

/// A database URL: `sqlite:PATH` (or `sqlite://PATH`) for the embedded store, `postgres://…` (or
/// `postgresql://…`) for the shared one. `description` never shows a password.
public enum StoreLocation: Sendable, CustomStringConvertible {
    case sqlite(path: String)
    case postgres(PostgresEndpoint)

    public init(url: String) throws {
        if url.hasPrefix("sqlite:") {
            let path = String(url.dropFirst("sqlite:".count))
            self = .sqlite(path: path.hasPrefix("//") ? String(path.dropFirst(2)) : path)
        } else if url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") {
            self = .postgres(try PostgresEndpoint(url: url))
        } else {
            throw StoreError.invalid("database '\(PostgresEndpoint.redacted(url))' is not supported: use sqlite:PATH or postgres://user:password@host:port/database")
        }
    }

    /// `sqlite` or `postgres`, as `/health` names it.
    public var kind: String {
        switch self {
        case .sqlite: "sqlite"
        case .postgres: "postgres"
        }
    }

    public var description: String {
        switch self {
        case .sqlite(let path): "sqlite:\(path)"
        case .postgres(let endpoint): endpoint.description
        }
    }

    /// Opens the store and, unless told not to, brings its schema up to date.
    public func open(migrate: Bool = true, logger: Logger = Logger(label: "tollgate.store")) throws -> any Store {
        switch self {
        case .sqlite(let path):
            return try SQLiteStore(path: path, migrate: migrate)
        case .postgres(let endpoint):
            return try PostgresStore(endpoint: endpoint, migrate: migrate, logger: logger)
        }
    }
}
