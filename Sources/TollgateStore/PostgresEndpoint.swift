import Foundation
import NIOCore
import NIOSSL
import PostgresNIO

/// Where a PostgreSQL store lives, from `postgres://user:password@host:port/database?sslmode=…`.
/// `description` never shows the password: it is what errors and logs name.
public struct PostgresEndpoint: Sendable, CustomStringConvertible {
    public enum TLSMode: String, Sendable {
        /// Plain TCP (the default: a gateway and its database usually share a private network).
        case disable
        /// Encrypted, the server's certificate not checked (libpq's `require`).
        case require
        /// Encrypted, the certificate checked against the system's trust roots and the host name.
        case verifyFull = "verify-full"
    }

    public var host: String
    public var port: Int
    public var user: String
    var password: String?
    public var database: String
    public var tls: TLSMode

    /// `postgres://` or `postgresql://`; the user is required, the port defaults to 5432 and the database to
    /// the user's name. User and password may be percent-encoded.
    public init(url: String) throws {
        guard url.hasPrefix("postgres://") || url.hasPrefix("postgresql://"),
              let components = URLComponents(string: url), let host = components.host, !host.isEmpty
        else {
            throw StoreError.invalid("database URL \(Self.redacted(url)) is not postgres://user:password@host:port/database")
        }
        guard let user = components.user, !user.isEmpty else {
            throw StoreError.invalid("database URL \(Self.redacted(url)) names no user")
        }
        self.host = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        self.port = components.port ?? 5432
        self.user = user
        self.password = components.password
        let path = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        self.database = path.isEmpty ? user : path
        self.tls = .disable
        for item in components.queryItems ?? [] {
            switch item.name {
            case "sslmode":
                guard let mode = item.value.flatMap(TLSMode.init(rawValue:)) else {
                    throw StoreError.invalid("sslmode must be disable, require or verify-full (got \(item.value ?? ""))")
                }
                tls = mode
            default:
                throw StoreError.invalid("database URL parameter '\(item.name)' is not supported (only sslmode)")
            }
        }
    }

    public var description: String { "postgres://\(user)@\(hostAndPort)/\(database)" }

    /// `host:port`, as errors name the server.
    public var hostAndPort: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// A URL with its password (if any) replaced, for messages about a URL that did not parse.
    static func redacted(_ url: String) -> String {
        guard let at = url.lastIndex(of: "@"), let scheme = url.range(of: "://"), scheme.upperBound < at else { return url }
        let credentials = url[scheme.upperBound..<at]
        guard let colon = credentials.firstIndex(of: ":") else { return url }
        return String(url[..<colon]) + ":…" + String(url[at...])
    }

    func connectionConfiguration() throws -> PostgresConnection.Configuration {
        let tls: PostgresConnection.Configuration.TLS
        switch self.tls {
        case .disable:
            tls = .disable
        case .require:
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.certificateVerification = .none
            tls = .require(try NIOSSLContext(configuration: configuration))
        case .verifyFull:
            tls = .require(try NIOSSLContext(configuration: .makeClientConfiguration()))
        }
        var configuration = PostgresConnection.Configuration(host: host, port: port, username: user, password: password,
                                                             database: database, tls: tls)
        configuration.options.connectTimeout = .seconds(5)
        return configuration
    }
}
