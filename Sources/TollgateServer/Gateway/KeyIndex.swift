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
    /// Viewer keys by id (a few): a dashboard session names its key by id and is checked on every page.
    private let viewers = Mutex([String: ResolvedKey]())

    enum Lookup {
        case valid(ResolvedKey)
        case refused(ResolvedKey?, reason: String)
    }

    /// Every entry by its digest (its hex hash already dropped).
    func replaceAll(_ entries: [(Digest256, ResolvedKey)]) {
        var fresh = Table()
        fresh.slots.reserveCapacity(entries.count)
        fresh.entries.reserveCapacity(entries.count)
        var freshViewers: [String: ResolvedKey] = [:]
        for (digest, entry) in entries {
            fresh.put(digest, entry)
            if entry.record.role == .viewer { freshViewers[entry.record.id] = entry }
        }
        table.withLock { $0 = fresh }
        viewers.withLock { $0 = freshViewers }
    }

    func upsert(_ entry: ResolvedKey) {
        guard let (digest, entry) = Self.indexed(entry) else { return }
        table.withLock { $0.put(digest, entry) }
        if entry.record.role == .viewer { viewers.withLock { $0[entry.record.id] = entry } }
    }

    /// The entry's digest, and the entry without its hex hash: the digest is the table's key, no second copy
    /// as text.
    private static func indexed(_ entry: ResolvedKey) -> (Digest256, ResolvedKey)? {
        guard let digest = Digest256(hex: entry.record.hashHex) else { return nil }
        return (digest, entry.with { $0.hashHex = "" })
    }

    func markRevoked(hashHex: String, at date: Date) {
        guard let digest = Digest256(hex: hashHex) else { return }
        let revoked = table.withLock { table -> ResolvedKey? in
            guard let slot = table.slots[digest] else { return nil }
            let revoked = table.entries[Int(slot)].with { $0.revokedAt = date }
            table.entries[Int(slot)] = revoked
            return revoked
        }
        if let revoked, revoked.record.role == .viewer { viewers.withLock { $0[revoked.record.id] = revoked } }
    }

    /// The viewer key with this id, while it is neither revoked nor expired.
    func viewer(id: String, now: Date) -> ResolvedKey? {
        guard let entry = viewers.withLock({ $0[id] }), Self.isLive(entry, now: now) else { return nil }
        return entry
    }

    /// The key presented, when it is a live viewer key.
    func viewer(plainKey: some StringProtocol, now: Date) -> ResolvedKey? {
        guard case .valid(let entry) = authenticate(plainKey: plainKey, now: now), entry.record.role == .viewer else { return nil }
        return entry
    }

    private static func isLive(_ entry: ResolvedKey, now: Date) -> Bool {
        entry.record.revokedAt == nil && (entry.record.expiresAt.map { $0 > now } ?? true)
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
