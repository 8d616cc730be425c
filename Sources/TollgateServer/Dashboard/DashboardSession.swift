import Foundation
import TollgateCore

/// Who is looking at the dashboard.
enum DashboardRole: Equatable, Sendable {
    case admin
    /// A read-only viewer key, by its id (checked again on every page, so that revoking it ends its sessions).
    case viewer(keyID: String)

    var token: String {
        switch self {
        case .admin: "admin"
        case .viewer(let id): "viewer-" + id
        }
    }

    init?(token: Substring) {
        if token == "admin" { self = .admin } else if token.hasPrefix("viewer-") { self = .viewer(keyID: String(token.dropFirst(7))) } else { return nil }
    }
}

/// A dashboard session is a signed cookie, `<role>.<expiry ms>.<HMAC-SHA-256 hex>`: no session table, the same
/// on every instance of a fleet, ended by its expiry or by resetting the admin key (which changes the secret).
struct DashboardSession: Equatable, Sendable {
    static let cookieName = "tollgate_session"
    static let lifetime: TimeInterval = 12 * 3600

    var role: DashboardRole
    var expiresAt: Date

    func cookieValue(secret: [UInt8]) -> String {
        let payload = role.token + "." + String(Int64(expiresAt.timeIntervalSince1970 * 1000))
        return payload + "." + Hex.encode(SHA256.hmac(key: secret, message: Array(payload.utf8)))
    }

    /// The session a cookie carries, if its signature is right (compared in constant time) and it has not expired.
    init?(cookie: String, secret: [UInt8], now: Date) {
        let parts = cookie.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let role = DashboardRole(token: parts[0]), let expiry = Int64(parts[1]),
              let mac = Hex.decode(String(parts[2])) else { return nil }
        let payload = Array(cookie.utf8.prefix(parts[0].utf8.count + 1 + parts[1].utf8.count))
        guard constantTimeEquals(mac, SHA256.hmac(key: secret, message: payload)) else { return nil }
        let expiresAt = Date(timeIntervalSince1970: Double(expiry) / 1000)
        guard expiresAt > now else { return nil }
        self.role = role
        self.expiresAt = expiresAt
    }

    init(role: DashboardRole, expiresAt: Date) {
        self.role = role
        self.expiresAt = expiresAt
    }
}
