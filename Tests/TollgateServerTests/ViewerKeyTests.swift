import Foundation
import Testing
@testable import TollgateServer
import TollgateCore

@Suite("Viewer keys")
struct ViewerKeyTests {
    @Test("a viewer key needs no owner, reads every admin GET endpoint, and changes nothing")
    func readsButCannotWrite() async throws {
        let admin = try AdminHarness()
        let (status, created) = try await admin.send(.post, "/admin/keys", ["role": "viewer", "name": "finance"])
        #expect(status == 201)
        #expect(created["role"] as? String == "viewer")
        let viewer = try #require(created["key"] as? String)
        for path in ["/admin/teams", "/admin/users", "/admin/keys", "/admin/budgets", "/admin/spend?group_by=team",
                     "/admin/requests", "/admin/deployments", "/admin/forecast"] {
            #expect(try await admin.send(.get, path, bearer: viewer).status == 200, "\(path)")
        }
        let (refused, json) = try await admin.send(.post, "/admin/teams", ["name": "platform"], bearer: viewer)
        #expect(refused == 403)
        let error = try #require(json["error"] as? [String: Any])
        #expect(error["type"] as? String == "permission_error")
        #expect(error["code"] as? String == "viewer_key")
        #expect(try admin.store.listTeams().isEmpty)
        #expect(try await admin.send(.delete, "/admin/keys/finance", bearer: viewer).status == 403)
        #expect(try admin.store.listKeys().first?.revokedAt == nil)
    }

    @Test("a revoked viewer key reads nothing; a wrong key is 401")
    func revoked() async throws {
        let admin = try AdminHarness()
        let viewer = try #require(try await admin.send(.post, "/admin/keys", ["role": "viewer", "name": "finance"]).json["key"] as? String)
        #expect(try await admin.send(.delete, "/admin/keys/finance").status == 200)
        #expect(try await admin.send(.get, "/admin/teams", bearer: viewer).status == 401)
        #expect(try await admin.send(.get, "/admin/teams", bearer: "tg-not-a-key").status == 401)
    }

    @Test("a client key is no admin key, not even for reading")
    func clientKeyCannotRead() async throws {
        let admin = try AdminHarness()
        #expect(try await admin.send(.post, "/admin/users", ["name": "alice"]).status == 201)
        let client = try #require(try await admin.send(.post, "/admin/keys", ["user": "alice"]).json["key"] as? String)
        #expect(try await admin.send(.get, "/admin/teams", bearer: client).status == 401)
    }

    @Test("fields that only a model-calling key has are refused on a viewer key, naming the field",
          arguments: ["models", "rpm", "tpm"])
    func viewerFields(field: String) async throws {
        let admin = try AdminHarness()
        let value: Any = field == "models" ? ["gpt-4o"] : 10
        let (status, json) = try await admin.send(.post, "/admin/keys", ["role": "viewer", field: value])
        #expect(status == 400)
        #expect((json["error"] as? [String: Any])?["param"] as? String == field)
        #expect(try admin.store.listKeys().isEmpty)
    }

    @Test("an unknown role is refused")
    func unknownRole() async throws {
        let admin = try AdminHarness()
        let (status, json) = try await admin.send(.post, "/admin/keys", ["role": "owner"])
        #expect(status == 400)
        #expect((json["error"] as? [String: Any])?["param"] as? String == "role")
    }

    @Test("the index finds a viewer by id while it is live, and forgets it once revoked or expired")
    func indexByID() throws {
        let index = KeyIndex()
        let plain = "tg-viewer-plain-text"
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        let record = KeyRecord(id: "key_v", name: nil, hashHex: VirtualKey.hashHex(of: plain), prefix: "tg-vie",
                               userID: nil, teamID: nil, orgID: "org_1", allowedModels: nil,
                               expiresAt: now.addingTimeInterval(60), revokedAt: nil, rpm: nil, tpm: nil, createdAt: now, role: .viewer)
        index.upsert(ResolvedKey(record: record, userName: nil, teamName: nil, allowedModels: nil))
        #expect(index.viewer(id: "key_v", now: now)?.record.id == "key_v")
        #expect(index.viewer(plainKey: plain, now: now)?.record.id == "key_v")
        #expect(index.viewer(id: "key_v", now: now.addingTimeInterval(61)) == nil)
        index.markRevoked(hashHex: record.hashHex, at: now)
        #expect(index.viewer(id: "key_v", now: now) == nil)
        #expect(index.viewer(plainKey: plain, now: now) == nil)
    }
}
