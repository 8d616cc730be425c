import Foundation
import Synchronization
import TollgateCore

/// A key as the request path needs it, with its owner's names resolved once. A class, immutable: a request
/// refers to its key from several places, and a struct of a dozen strings cost a dozen reference counts at
/// every copy.
final class ResolvedKey: Sendable {
    let record: KeyRecord
    let userName: String?
    let teamName: String?
    let allowedModels: Set<String>?

    init(record: KeyRecord, userName: String?, teamName: String?, allowedModels: Set<String>?) {
        self.record = record
        self.userName = userName
        self.teamName = teamName
        self.allowedModels = allowedModels
    }

    /// The same key with its record changed.
    func with(_ change: (inout KeyRecord) -> Void) -> ResolvedKey {
        var record = record
        change(&record)
        return ResolvedKey(record: record, userName: userName, teamName: teamName, allowedModels: allowedModels)
    }

    func mayUse(_ name: String) -> Bool { allowedModels?.contains(name) ?? true }
}

/// Every key by the SHA-256 of its plain text, kept in memory and current through the admin API, so that
/// authentication needs no database read. Revoked keys stay in the index (marked), so a refused request
/// can still be attributed to its key in the ledger.
final class KeyIndex: Sendable {
    /// Entries in a dense array, found by the SHA-256 of the plain key (four words: no string to hash or
    /// allocate per lookup). The dictionary holds only slot numbers: a hash table's buckets outnumber its
    /// entries up to 2.6 times, and 250-byte entries in every bucket cost 74 MB for 100,000 keys.
    private struct Table {
        var slots: [Digest256: Int32] = [:]
        var entries: [ResolvedKey] = []

        mutating func put(_ digest: Digest256, _ entry: ResolvedKey) {
            if let slot = slots[digest] {
                entries[Int(slot)] = entry
            } else {
                slots[digest] = Int32(entries.count)
                entries.append(entry)
            }
        }
    }

    private let table = Mutex(Table())

    enum Lookup {
        case valid(ResolvedKey)
        case refused(ResolvedKey?, reason: String)
    }

    /// Every entry by its digest (its hex hash already dropped).
    func replaceAll(_ entries: [(Digest256, ResolvedKey)]) {
        var fresh = Table()
        fresh.slots.reserveCapacity(entries.count)
        fresh.entries.reserveCapacity(entries.count)
        for (digest, entry) in entries { fresh.put(digest, entry) }
        table.withLock { $0 = fresh }
    }

    func upsert(_ entry: ResolvedKey) {
        guard let (digest, entry) = Self.indexed(entry) else { return }
        table.withLock { $0.put(digest, entry) }
    }

    /// The entry's digest, and the entry without its hex hash: the digest is the table's key, no second copy
    /// as text.
    private static func indexed(_ entry: ResolvedKey) -> (Digest256, ResolvedKey)? {
        guard let digest = Digest256(hex: entry.record.hashHex) else { return nil }
        return (digest, entry.with { $0.hashHex = "" })
    }

    func markRevoked(hashHex: String, at date: Date) {
        guard let digest = Digest256(hex: hashHex) else { return }
        table.withLock { table in
            if let slot = table.slots[digest] { table.entries[Int(slot)] = table.entries[Int(slot)].with { $0.revokedAt = date } }
        }
    }

    var count: Int { table.withLock { $0.entries.count } }

    func authenticate(plainKey: some StringProtocol, now: Date) -> Lookup {
        authenticate(digest: SHA256.digest(plainKey.utf8), now: now)
    }

    /// The key whose plain text has SHA-256 `digest`.
    func authenticate(digest: Digest256, now: Date) -> Lookup {
        // The stored hash is compared to the presented key's in constant time.
        let found = table.withLock { table -> (Digest256, ResolvedKey)? in
            guard let index = table.slots.index(forKey: digest) else { return nil }
            let (stored, slot) = table.slots[index]
            return (stored, table.entries[Int(slot)])
        }
        guard let (stored, entry) = found, stored.constantTimeEquals(digest) else { return .refused(nil, reason: "Invalid API key.") }
        if entry.record.revokedAt != nil { return .refused(entry, reason: "This API key has been revoked.") }
        if let expiry = entry.record.expiresAt, expiry <= now { return .refused(entry, reason: "This API key has expired.") }
        return .valid(entry)
    }
}
