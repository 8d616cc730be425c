import Foundation
import Hummingbird
import Logging
import NIOCore
import NIOEmbedded
import Testing
import TollgateCore
import TollgateStore
@testable import TollgateServer

/// The admin API on a fresh SQLite file, its requests handed straight to the router (no socket).
final class AdminHarness {
    static let adminKey = "admin-test-key"
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-admin-\(UUID().uuidString).sqlite").path
    let store: SQLiteStore
    private let ledger: LedgerWriter
    private let responder: RouterResponder<BasicRequestContext>

    init() throws {
        store = try SQLiteStore(path: path)
        ledger = LedgerWriter(store: store)
        let logger = Logger(label: "tollgate.test")
        let budgets = BudgetLedger(store: store, ledger: ledger, webhook: nil, logger: logger)
        let admin = AdminAPI(store: store, keys: KeyIndex(), budgets: budgets,
                             forecasts: BudgetForecasts(store: store, budgets: budgets, ledger: ledger, webhook: nil, logger: logger),
                             clock: GatewayClock(adjustable: false), models: ModelRegistry([]), health: DeploymentHealth(),
                             calibrations: RouterCalibrations(routes: []), ledger: ledger,
                             adminKey: AdminCredential(fixed: Self.adminKey), databaseKind: "sqlite",
                             traffic: TrafficLog(logger: Logger(label: "test")), economics: try GatewayServer.loadEconomics(file: nil))
        let router = Router(context: BasicRequestContext.self)
        admin.addRoutes(to: router)
        responder = router.buildResponder()
    }

    deinit {
        ledger.shutdown()
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
    }

    /// The answer's status and JSON object.
    func send(_ method: HTTPRequest.Method, _ path: String, _ body: [String: Any]? = nil,
              bearer: String = AdminHarness.adminKey) async throws -> (status: Int, json: [String: Any]) {
        let bytes = try body.map { try JSONSerialization.data(withJSONObject: $0) } ?? Data()
        let request = Request(
            head: HTTPRequest(method: method, scheme: "http", authority: "localhost", path: path,
                              headerFields: [.authorization: "Bearer \(bearer)", .contentType: "application/json"]),
            body: RequestBody(buffer: ByteBuffer(bytes: bytes)))
        let context = BasicRequestContext(source: ApplicationRequestContextSource(channel: EmbeddedChannel(), logger: Logger(label: "tollgate.test")))
        let response = try await responder.respond(to: request, context: context)
        let collected = CollectedBody()
        try await response.body.write(collected)
        let json = (try? JSONSerialization.jsonObject(with: Data(buffer: collected.buffer))) as? [String: Any] ?? [:]
        return (response.status.code, json)
    }
}

/// A response body gathered into one buffer.
private final class CollectedBody: ResponseBodyWriter {
    var buffer = ByteBuffer()
    func write(_ buffer: ByteBuffer) async throws { self.buffer.writeImmutableBuffer(buffer) }
    func finish(_ trailingHeaders: HTTPFields?) async throws {}
}

@Suite("Admin API: names and references")
struct AdminNameTests {
    @Test("a name shaped like an id is refused for an org, a team, a user and a key, naming the field", arguments: [
        ("/admin/orgs", "org_ede2504853e1c3df"), ("/admin/teams", "team_ede2504853e1c3df"),
        ("/admin/users", "user_ede2504853e1c3df"), ("/admin/users", "TEAM_0123456789ABCDEF"),
    ])
    func idShapedNames(path: String, name: String) async throws {
        let admin = try AdminHarness()
        let (status, json) = try await admin.send(.post, path, ["name": name])
        #expect(status == 400)
        let error = try #require(json["error"] as? [String: Any])
        #expect(error["type"] as? String == "invalid_request_error")
        #expect(error["param"] as? String == "name")
        #expect((error["message"] as? String)?.contains("shape of an id") == true)
        #expect(try admin.store.listUsers().isEmpty && admin.store.listTeams().isEmpty && admin.store.listOrgs().count == 1)
    }

    @Test("a key named like an id is refused, and no key is issued")
    func idShapedKeyName() async throws {
        let admin = try AdminHarness()
        #expect(try await admin.send(.post, "/admin/users", ["name": "alice"]).status == 201)
        let (status, json) = try await admin.send(.post, "/admin/keys", ["user": "alice", "name": "key_0123456789abcdef"])
        #expect(status == 400)
        #expect((json["error"] as? [String: Any])?["param"] as? String == "name")
        #expect(try admin.store.listKeys().isEmpty)
    }

    @Test("names of other shapes are accepted: with an underscore, with fewer or more hex digits, with emoji")
    func ordinaryNames() async throws {
        let admin = try AdminHarness()
        for name in ["user_ede2504853e1c3d", "user_ede2504853e1c3df0", "ops_team", "🦊 fox", "数据团队"] {
            #expect(try await admin.send(.post, "/admin/users", ["name": name]).status == 201, "\(name)")
        }
    }

    @Test("a key for a user named by id goes to the user with that id, never to a user whose name is that text")
    func keyOwnerByID() async throws {
        let admin = try AdminHarness()
        let alice = try #require(try await admin.send(.post, "/admin/users", ["name": "alice"]).json["id"] as? String)
        // A database written before names of this shape were refused may hold such users.
        let lookalike = try admin.store.createUser(name: "user_0123456789abcdef", team: nil)
        _ = try admin.store.createUser(name: alice, team: nil)

        let (status, key) = try await admin.send(.post, "/admin/keys", ["user": alice])
        #expect(status == 201)
        #expect(key["user_id"] as? String == alice && key["user"] as? String == "alice")
        let (missing, json) = try await admin.send(.post, "/admin/keys", ["user": lookalike.name])
        #expect(missing == 404, "\(json)")
        #expect(try admin.store.listKeys().map(\.userID) == [alice])
    }
}
