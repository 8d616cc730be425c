import Foundation
import Synchronization
import TollgateCore

/// A key as the request path needs it, with its owner's names resolved once.
struct ResolvedKey: Sendable {
    var record: KeyRecord
    var userName: String?
    var teamName: String?
    var allowedModels: Set<String>?

    func mayUse(_ name: String) -> Bool { allowedModels?.contains(name) ?? true }
}

/// Every key by the SHA-256 of its plain text, kept in memory and current through the admin API, so that
/// authentication needs no database read. Revoked keys stay in the index (marked), so a refused request
/// can still be attributed to its key in the ledger.
final class KeyIndex: Sendable {
    private let keys = Mutex<[String: ResolvedKey]>([:])

    enum Lookup {
        case valid(ResolvedKey)
        case refused(ResolvedKey?, reason: String)
    }

    func replaceAll(_ entries: [ResolvedKey]) {
        let byHash = Dictionary(entries.map { ($0.record.hashHex, $0) }, uniquingKeysWith: { _, last in last })
        keys.withLock { $0 = byHash }
    }

    func upsert(_ entry: ResolvedKey) {
        keys.withLock { $0[entry.record.hashHex] = entry }
    }

    func markRevoked(hashHex: String, at date: Date) {
        keys.withLock { $0[hashHex]?.record.revokedAt = date }
    }

    var count: Int { keys.withLock { $0.count } }

    func authenticate(plainKey: some StringProtocol, now: Date) -> Lookup {
        let digest = SHA256.hash(Array(plainKey.utf8))
        let hashHex = Hex.encode(digest)
        guard let entry = keys.withLock({ $0[hashHex] }),
              constantTimeEquals(Array(entry.record.hashHex.utf8), Array(hashHex.utf8))
        else { return .refused(nil, reason: "Invalid API key.") }
        if entry.record.revokedAt != nil { return .refused(entry, reason: "This API key has been revoked.") }
        if let expiry = entry.record.expiresAt, expiry <= now { return .refused(entry, reason: "This API key has expired.") }
        return .valid(entry)
    }
}
