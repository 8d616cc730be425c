import Foundation
import Testing
import TollgateCore
import TollgateStore
@testable import TollgateServer

@Suite("Admin key: fixed by the environment, or generated and stored")
struct AdminCredentialTests {
    static func withStore(_ body: (SQLiteStore) throws -> Void) throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-adminkey-\(UUID().uuidString).sqlite").path
        defer { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) } }
        try body(try SQLiteStore(path: path))
    }

    @Test("the first start without TOLLGATE_ADMIN_KEY generates a key and stores only its hash; the next start reads it")
    func generatedOnce() throws {
        try Self.withStore { store in
            let first = try GatewayServer.adminKey(store: store, environment: [:])
            let stored = try #require(try store.setting(AdminCredential.settingName))
            #expect(Hex.decode(stored)?.count == 32)
            let again = try GatewayServer.adminKey(store: store, environment: ["TOLLGATE_ADMIN_KEY": ""])
            #expect(try store.setting(AdminCredential.settingName) == stored)
            #expect(!first.accepts(stored) && !again.accepts(""))
        }
    }

    @Test("after a reset, a running gateway refuses the old key and accepts the new one within a second")
    func resetReachesARunningGateway() throws {
        try Self.withStore { store in
            let old = AdminCredential.generateKey()
            try AdminCredential.store(old, in: store)
            let credential = try GatewayServer.adminKey(store: store, environment: [:])
            let start = ContinuousClock.now
            #expect(credential.accepts(old, now: start))

            let new = try GatewayServer.resetAdminKey(store: store)
            #expect(new.hasPrefix("tga-") && new.count == 52 && new != old)
            #expect(try store.setting(AdminCredential.settingName) == Hex.encode(SHA256.hash(Array(new.utf8))))
            #expect(credential.accepts(old, now: start + .milliseconds(500)), "read again at most once a second")
            #expect(!credential.accepts(old, now: start + .seconds(1)))
            #expect(credential.accepts(new, now: start + .seconds(1)))
            #expect(!credential.accepts(old, now: start + .seconds(5)))
        }
    }

    @Test("a key from TOLLGATE_ADMIN_KEY stays the one accepted, whatever the store holds")
    func environmentKeyIsFixed() throws {
        try Self.withStore { store in
            let start = ContinuousClock.now
            let credential = try GatewayServer.adminKey(store: store, environment: ["TOLLGATE_ADMIN_KEY": "from-env"])
            #expect(try store.setting(AdminCredential.settingName) == nil)
            let reset = try GatewayServer.resetAdminKey(store: store)
            #expect(credential.accepts("from-env", now: start + .seconds(2)))
            #expect(!credential.accepts(reset, now: start + .seconds(2)))
        }
    }
}
