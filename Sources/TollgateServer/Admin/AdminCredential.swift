import Foundation
import Synchronization
import TollgateCore
import TollgateStore

/// The admin key the admin API accepts, kept as its SHA-256. One from `TOLLGATE_ADMIN_KEY` is fixed for the
/// life of the process. A generated one lives in the store and is read again at most once a second, so that
/// `tollgate admin-key reset` reaches a running gateway, and every instance on the same database, within a
/// second and without a restart.
final class AdminCredential: Sendable {
    /// The store's setting that holds a generated key's SHA-256, in hex.
    static let settingName = "admin_key_sha256"
    static let recheckInterval: Duration = .seconds(1)

    private struct State {
        var hash: [UInt8]
        var checkedAt: ContinuousClock.Instant
    }

    private let store: (any Store)?
    private let state: Mutex<State>

    /// The key of `TOLLGATE_ADMIN_KEY`: the store's is never consulted.
    init(fixed key: String) {
        store = nil
        state = Mutex(State(hash: SHA256.hash(Array(key.utf8)), checkedAt: .now))
    }

    /// A generated key whose hash the store holds (`hash`, as read at start).
    init(stored hash: [UInt8], store: any Store, now: ContinuousClock.Instant = .now) {
        self.store = store
        state = Mutex(State(hash: hash, checkedAt: now))
    }

    func accepts(_ presented: some StringProtocol, now: ContinuousClock.Instant = .now) -> Bool {
        constantTimeEquals(SHA256.hash(Array(presented.utf8)), currentHash(now: now))
    }

    /// The key that signs dashboard sessions: derived from the admin key in force, so that every instance of a
    /// fleet accepts the same sessions and resetting the admin key ends them all.
    func sessionSecret(now: ContinuousClock.Instant = .now) -> [UInt8] {
        SHA256.hash(Array("tollgate dashboard session v1:".utf8) + currentHash(now: now))
    }

    /// The hash in force: the store is read when the last read is a second old (one admin request a second
    /// pays for one read of one row). While the store cannot be read, or holds no valid hash, the last one
    /// read stays in force.
    private func currentHash(now: ContinuousClock.Instant) -> [UInt8] {
        let (hash, due) = state.withLock { state in
            guard store != nil, now - state.checkedAt >= Self.recheckInterval else { return (state.hash, false) }
            state.checkedAt = now
            return (state.hash, true)
        }
        guard due, let store, let stored = try? store.setting(Self.settingName), let fresh = Hex.decode(stored), fresh.count == 32
        else { return hash }
        state.withLock { $0.hash = fresh }
        return fresh
    }

    /// A new admin key: `tga-` and 48 hex digits (192 random bits).
    static func generateKey() -> String {
        "tga-" + VirtualKey.generate().dropFirst(VirtualKey.plainPrefix.count)
    }

    /// Stores the SHA-256 of `key` as the admin key's.
    static func store(_ key: String, in store: any Store) throws {
        try store.setSetting(settingName, Hex.encode(SHA256.hash(Array(key.utf8))))
    }
}
