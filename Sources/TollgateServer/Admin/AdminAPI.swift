import Foundation
import Hummingbird
import NIOCore
import TollgateCore
import TollgateStore

/// Errors of the admin API, in the OpenAI shape like every other error.
struct AdminError: HTTPResponseError {
    let status: HTTPResponse.Status
    let code: String
    let message: String
    let param: String?

    static func badRequest(_ message: String, param: String? = nil) -> AdminError {
        AdminError(status: .badRequest, code: "invalid_request_error", message: message, param: param)
    }

    static func from(_ error: StoreError) -> AdminError {
        switch error {
        case .duplicate(let entity, let name):
            AdminError(status: .conflict, code: "duplicate", message: "A \(entity) named '\(name)' already exists.", param: "name")
        case .notFound(let entity, let reference):
            AdminError(status: .notFound, code: "not_found", message: "No \(entity) '\(reference)'.", param: nil)
        case .invalid(let message):
            .badRequest(message)
        case .unavailable(let message):
            AdminError(status: .serviceUnavailable, code: "database_unavailable", message: message, param: nil)
        }
    }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        let type = switch status {
        case .unauthorized: "authentication_error"
        case .forbidden: "permission_error"
        case .notFound: "not_found_error"
        default: "invalid_request_error"
        }
        let body = JSONValue.object([("error", .object([
            ("message", .string(message)), ("type", .string(type)), ("code", .string(code)), ("param", .string(param)),
        ]))])
        return AdminAPI.json(body, status: status)
    }
}

/// The admin API: identity, keys and reports. It changes the in-memory key index together with the
/// store, so the request path never reads the database.
struct AdminAPI: Sendable {
    let store: any Store
    let keys: KeyIndex
    let budgets: BudgetLedger
    let forecasts: BudgetForecasts
    let clock: GatewayClock
    let models: ModelRegistry
    let health: DeploymentHealth
    let calibrations: RouterCalibrations
    let ledger: LedgerWriter
    let adminKey: AdminCredential
    let databaseKind: String
    let traffic: TrafficLog
    let economics: EconomicsData

    var access: AdminAccess { AdminAccess(adminKey: adminKey, keys: keys, clock: clock) }

    func addRoutes(to router: Router<BasicRequestContext>) {
        router.get("/health") { _, _ in
            // One round trip to the database: when it fails, the gateway still serves what needs none,
            // and says so here.
            var problem: String?
            do {
                try store.ping()
            } catch StoreError.unavailable(let message) {
                problem = message
            } catch {
                problem = "\(error)"
            }
            var members: [(String, JSONValue)] = [
                ("status", .string(problem == nil ? "ok" : "degraded")), ("database", .string(databaseKind)),
                ("database_reachable", .bool(problem == nil)),
            ]
            if let problem { members.append(("database_error", .string(problem))) }
            members.append(("ledger_queue", .int(ledger.queueDepth)))
            // Refused before a key was recognised: counted here, never written to the ledger.
            let warnings = traffic.counts
            members.append(("refused_unauthenticated", .int(warnings[.unauthenticated] ?? 0)))
            members.append(("warnings", .object(TrafficLog.Kind.allCases.map { ($0.rawValue, .int(warnings[$0] ?? 0)) })))
            if databaseKind == "postgres" { members.append(("database_round_trips", .int(PostgresStore.roundTrips))) }
            return AdminAPI.json(.object(members))
        }
        let admin = router.group("admin").add(middleware: AdminAuthMiddleware(access: access))
        admin.post("orgs") { request, context in
            let body = try await AdminAPI.body(request, context)
            let org = try AdminAPI.storing { try store.createOrg(name: try body.newName()) }
            return AdminAPI.json(AdminAPI.view(org), status: .created)
        }
        admin.get("orgs") { _, _ in
            AdminAPI.jsonList(try AdminAPI.storing { try store.listOrgs() }, AdminAPI.view)
        }
        admin.post("teams") { request, context in
            let body = try await AdminAPI.body(request, context)
            let team = try AdminAPI.storing { try store.createTeam(name: try body.newName(), org: try body.string("org")) }
            return AdminAPI.json(AdminAPI.view(team), status: .created)
        }
        admin.get("teams") { _, _ in
            AdminAPI.jsonList(try AdminAPI.storing { try store.listTeams() }, AdminAPI.view)
        }
        admin.post("users") { request, context in
            let body = try await AdminAPI.body(request, context)
            let user = try AdminAPI.storing { try store.createUser(name: try body.newName(), team: try body.string("team")) }
            return AdminAPI.json(self.view(user), status: .created)
        }
        admin.get("users") { _, _ in
            let users = try AdminAPI.storing { try store.listUsers() }
            return AdminAPI.jsonList(users, self.view)
        }
        admin.post("keys") { request, context in
            let body = try await AdminAPI.body(request, context)
            return try self.createKey(body)
        }
        admin.get("keys") { _, _ in
            let keys = try AdminAPI.storing { try store.listKeys() }
            return try AdminAPI.jsonList(keys, rowBytes: 400) { try self.view($0, plainKey: nil) }
        }
        admin.delete("keys/:key") { _, context in
            let reference = try context.parameters.require("key")
            let revoked = try AdminAPI.storing { try store.revokeKey(reference, at: Date()) }
            keys.markRevoked(hashHex: revoked.hashHex, at: revoked.revokedAt ?? Date())
            return AdminAPI.json(try self.view(revoked, plainKey: nil))
        }
        admin.get("requests") { request, _ in
            let limit = try request.uri.queryParameters.get("limit").map { text -> Int in
                guard let value = Int(text), value > 0, value <= 1000 else {
                    throw AdminError.badRequest("limit must be between 1 and 1000", param: "limit")
                }
                return value
            } ?? 100
            let page = try AdminAPI.storing {
                try store.ledgerPage(limit: limit, cursor: request.uri.queryParameters.get("cursor"))
            }
            return AdminAPI.json(.object([("data", .array(page.rows.map(LedgerView.json))), ("next", .string(page.next))]))
        }
        admin.get("spend") { request, _ in
            try self.spend(request)
        }
        addBudgetRoutes(to: admin)
        addForecastRoutes(to: admin)
        addUsageRoutes(to: admin)
        addEconomicsRoutes(to: admin)
        admin.get("deployments") { _, _ in
            AdminAPI.json(.object([("data", .array(self.deploymentsView()))]))
        }
    }

    // MARK: Keys

    private func createKey(_ body: AdminBody) throws -> Response {
        let userReference = try body.string("user")
        let teamReference = try body.string("team")
        let role = try body.string("role").map { text -> KeyRole in
            guard let role = KeyRole(rawValue: text) else {
                throw AdminError.badRequest("role must be 'client' (calls models) or 'viewer' (reads reports)", param: "role")
            }
            return role
        } ?? .client
        if role == .viewer {
            // A viewer key reads reports: it calls no model, so it has neither a model list nor rate limits.
            for field in ["models", "rpm", "tpm"] where body.has(field) {
                throw AdminError.badRequest("A viewer key calls no model: '\(field)' does not apply to it.", param: field)
            }
        } else if userReference == nil && teamReference == nil {
            throw AdminError.badRequest("A key belongs to a user or a team: give 'user' or 'team'.", param: "user")
        }
        let name = try body.newOptionalName()
        let models = try body.stringList("models")
        let expiresAt = try body.string("expires_at").map { text -> Date in
            guard let date = RFC3339.parse(text) else { throw AdminError.badRequest("expires_at must be an RFC 3339 time", param: "expires_at") }
            return date
        }
        let record = try AdminAPI.storing { () throws -> KeyRecord in
            var user: UserRecord?
            var team: TeamRecord?
            if let userReference {
                guard let found = try store.user(userReference) else { throw StoreError.notFound(entity: "user", reference: userReference) }
                user = found
                if let teamID = found.teamID { team = try store.team(teamID) }
            }
            if let teamReference {
                guard let found = try store.team(teamReference) else { throw StoreError.notFound(entity: "team", reference: teamReference) }
                team = found
            }
            let orgID = try user?.orgID ?? team?.orgID ?? store.defaultOrg().id
            return KeyRecord(id: EntityID.make("key"), name: name, hashHex: "", prefix: "", userID: user?.id,
                             teamID: team?.id, orgID: orgID, allowedModels: models, expiresAt: expiresAt, revokedAt: nil,
                             rpm: try body.int("rpm"), tpm: try body.int("tpm"), createdAt: Date(), role: role)
        }
        let plainKey = VirtualKey.generate()
        var stored = record
        stored.hashHex = VirtualKey.hashHex(of: plainKey)
        stored.prefix = VirtualKey.displayPrefix(of: plainKey)
        try AdminAPI.storing { try store.insertKey(stored) }
        keys.upsert(try resolve(stored))
        return AdminAPI.json(try view(stored, plainKey: plainKey), status: .created)
    }

    /// A key with its owner's names, as the request path needs it.
    func resolve(_ key: KeyRecord) throws -> ResolvedKey {
        let user = try key.userID.flatMap { try store.user($0) }
        let team = try key.teamID.flatMap { try store.team($0) }
        return ResolvedKey(record: key, userName: user?.name, teamName: team?.name, allowedModels: key.allowedModels.map(Set.init))
    }

    /// Loads every key into the index (at start-up, and when another instance changed one): users and teams
    /// are read once, not per key, and the ids and names that many keys share are kept once (a key's owner ids
    /// and names point at its user's and team's strings).
    func loadKeys() throws {
        let users = Dictionary(try store.listUsers().map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        let teams = Dictionary(try store.listTeams().map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        var orgs: [String: String] = [:]
        var models: [[String]: Set<String>] = [:]
        var entries: [(Digest256, ResolvedKey)] = []
        // Each row is reduced to its entry as it is read: the row's own copies of shared ids and its hex hash
        // are freed at once, instead of living on between the entries kept (fragments malloc cannot return:
        // 100,000 keys read as a list first left 47 MB resident, read row by row 0 MB of it).
        try store.forEachKey { key in
            var record = key
            guard let digest = Digest256(hex: record.hashHex) else { return }
            record.hashHex = ""
            let user = record.userID.flatMap { users[$0] }
            let team = record.teamID.flatMap { teams[$0] }
            if let user { record.userID = user.id }
            if let team { record.teamID = team.id }
            record.orgID = orgs[record.orgID] ?? { orgs[record.orgID] = record.orgID; return record.orgID }()
            let allowed = record.allowedModels.map { list in models[list] ?? { models[list] = Set(list); return Set(list) }() }
            record.allowedModels = nil
            entries.append((digest, ResolvedKey(record: record, userName: user?.name, teamName: team?.name, allowedModels: allowed)))
        }
        keys.replaceAll(entries)
    }

    // MARK: Reports

    private func spend(_ request: Request) throws -> Response {
        let parameters = request.uri.queryParameters
        let groupText = parameters.get("group_by") ?? "user"
        guard let grouping = SpendGrouping(rawValue: groupText) else {
            throw AdminError.badRequest("group_by must be one of \(SpendGrouping.allCases.map(\.rawValue).joined(separator: ", "))", param: "group_by")
        }
        func time(_ name: String) throws -> Date? {
            try parameters.get(name).map { text in
                guard let date = RFC3339.parse(text) else { throw AdminError.badRequest("\(name) must be a date or an RFC 3339 time", param: name) }
                return date
            }
        }
        var offset = 0
        if let tz = parameters.get("tz") {
            guard let zone = TimeZone(identifier: tz) else { throw AdminError.badRequest("unknown time zone \(tz)", param: "tz") }
            offset = zone.secondsFromGMT()
        }
        let rows = try AdminAPI.storing {
            try store.spend(SpendQuery(groupBy: grouping, from: try time("from"), to: try time("to"), utcOffsetSeconds: offset))
        }
        let wantsCSV = parameters.get("format") == "csv" || request.headers[.accept]?.contains("text/csv") == true
        if wantsCSV {
            return Response(status: .ok, headers: [.contentType: "text/csv; charset=utf-8"],
                            body: .init(byteBuffer: ByteBuffer(string: CSV.spend(rows, groupedBy: grouping))))
        }
        let data = rows.map { row in
            JSONValue.object([
                (grouping.rawValue, .string(row.group)), ("requests", .int(row.requests)), ("input_tokens", .int(row.inputTokens)),
                ("cached_input_tokens", .int(row.cachedInputTokens)), ("output_tokens", .int(row.outputTokens)),
                ("cost_usd", .money(row.cost)), ("baseline_cost_usd", .money(row.baselineCost)),
                ("savings_usd", .money(row.savings)),
            ])
        }
        return AdminAPI.json(.object([("group_by", .string(grouping.rawValue)), ("data", .array(data))]))
    }

    // MARK: Views

    /// Every deployment with its circuit breaker and counters, and every route with its models.
    func deploymentsView() -> [JSONValue] {
        let health = self.health.snapshot()
        let now = clock.now()
        let deployments = models.all.enumerated().sorted { ($0.element.name, $0.offset) < ($1.element.name, $1.offset) }.map(\.element)
        var rows: [JSONValue] = deployments.map { deployment in
            let entry = health[deployment.id]
            let upstream: JSONValue
            let host: JSONValue
            switch deployment.endpoint {
            case .http(let target, let basePath, let hostHeader):
                upstream = .string((target.tls ? "https://" : "http://") + target.host + ":" + String(target.port) + basePath)
                host = .string(hostHeader)
            case .demo:
                upstream = .string("simulated")
                host = .null
            }
            let state = entry.map { $0.breaker.isAvailable(at: now) && $0.breaker.state == .open ? "half_open" : $0.breaker.state.rawValue }
            return .object([
                ("id", .string(deployment.id)), ("name", .string(deployment.name)), ("kind", .string("model")),
                ("provider", .string(deployment.provider)), ("upstream", upstream), ("host", host),
                ("upstream_model", .string(deployment.upstreamModel)), ("weight", .int(deployment.weight)),
                ("circuit", .string(state ?? "closed")),
                ("consecutive_failures", .int(entry?.breaker.consecutiveFailures ?? 0)),
                ("in_flight", .int(entry?.inFlight ?? 0)), ("requests", .int(entry?.requests ?? 0)),
                ("failures", .int(entry?.failures ?? 0)), ("last_error", .string(entry?.lastError)),
                ("last_failure_at", .time(entry?.lastFailureAt)),
            ])
        }
        let calibration = calibrations.snapshot()
        rows += models.routes.values.sorted { $0.name < $1.name }.map { route in
            var fields: [(String, JSONValue)] = [("name", .string(route.name)), ("kind", .string("route")),
                                                 ("models", .array(route.models.map(JSONValue.string)))]
            if case .learned(_, _, let share, _, let after) = route.strategy {
                let state = calibration[route.name]
                // the threshold in force: calibrated on recent decisions once `calibrate_after` are in
                fields += [("strong_share", .double(share ?? 0.5)), ("calibrate_after", .int(after)),
                           ("decisions_seen", .int(state?.samples ?? 0)),
                           ("calibrated_threshold", state?.threshold.map(JSONValue.double) ?? .null)]
            }
            return .object(fields)
        }
        return rows
    }

    static func view(_ org: OrgRecord) -> JSONValue {
        .object([("id", .string(org.id)), ("name", .string(org.name)), ("created_at", .time(org.createdAt))])
    }

    static func view(_ team: TeamRecord) -> JSONValue {
        .object([("id", .string(team.id)), ("name", .string(team.name)), ("org_id", .string(team.orgID)),
                 ("created_at", .time(team.createdAt))])
    }

    func view(_ user: UserRecord) -> JSONValue {
        let team = user.teamID.flatMap { try? store.team($0) }
        return .object([("id", .string(user.id)), ("name", .string(user.name)), ("team_id", .string(user.teamID)),
                        ("team", .string(team?.name)), ("org_id", .string(user.orgID)), ("created_at", .time(user.createdAt))])
    }

    func view(_ key: KeyRecord, plainKey: String?) throws -> JSONValue {
        let resolved = try resolve(key)
        var members: [(String, JSONValue)] = [("id", .string(key.id))]
        if let plainKey { members.append(("key", .string(plainKey))) }
        members += [
            ("role", .string(key.role.rawValue)),
            ("name", .string(key.name)), ("prefix", .string(key.prefix)), ("user_id", .string(key.userID)),
            ("user", .string(resolved.userName)), ("team_id", .string(key.teamID)), ("team", .string(resolved.teamName)),
            ("org_id", .string(key.orgID)), ("models", key.allowedModels.map { .array($0.map(JSONValue.string)) } ?? .null),
            ("expires_at", .time(key.expiresAt)), ("revoked_at", .time(key.revokedAt)), ("rpm", .int(key.rpm)),
            ("tpm", .int(key.tpm)), ("created_at", .time(key.createdAt)),
        ]
        return .object(members)
    }

    // MARK: Plumbing

    static func json(_ value: JSONValue, status: HTTPResponse.Status = .ok) -> Response {
        json(rendered: value.rendered, status: status)
    }

    static func json(rendered: String, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: rendered)))
    }

    /// `{"data":[…]}`, rendered one row at a time: a tree of every row's fields first held about four times
    /// the answer's size (20 MB for 10,000 budgets), and malloc kept it after the answer was sent.
    static func jsonList<Rows: Collection>(_ rows: Rows, rowBytes: Int = 256,
                                           _ view: (Rows.Element) throws -> JSONValue) rethrows -> Response {
        var out = String()
        out.reserveCapacity(16 + rows.count * rowBytes)
        out += #"{"data":["#
        for (index, row) in rows.enumerated() {
            if index > 0 { out += "," }
            try view(row).render(into: &out)
        }
        out += "]}"
        return json(rendered: out)
    }

    static func storing<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as StoreError {
            throw AdminError.from(error)
        }
    }

    static func body(_ request: Request, _ context: BasicRequestContext) async throws -> AdminBody {
        let buffer = try await request.body.collect(upTo: 1 << 20)
        guard buffer.readableBytes > 0 else { return AdminBody(members: [:]) }
        guard let object = try? JSONSerialization.jsonObject(with: Data(buffer: buffer)) as? [String: Any] else {
            throw AdminError.badRequest("The request body must be a JSON object.")
        }
        return AdminBody(members: object)
    }
}

/// A decoded admin request body, with typed accessors that name the field when it is wrong.
struct AdminBody {
    let members: [String: Any]

    /// The field is present and not null.
    func has(_ name: String) -> Bool {
        guard let value = members[name] else { return false }
        return !(value is NSNull)
    }

    func string(_ name: String) throws -> String? {
        guard let value = members[name], !(value is NSNull) else { return nil }
        guard let text = value as? String else { throw AdminError.badRequest("\(name) must be a string", param: name) }
        return text
    }

    func requiredString(_ name: String) throws -> String {
        guard let text = try string(name), !text.isEmpty else { throw AdminError.badRequest("\(name) is required", param: name) }
        return text
    }

    /// The `name` of an entity being created. A reference shaped like an id names an entity by its id only
    /// (`EntityReference`): a name of that shape could never be used, and would read as another entity's id.
    func newName() throws -> String {
        try Self.checkedName(try requiredString("name"))
    }

    /// The same for an entity whose name is optional (a key).
    func newOptionalName() throws -> String? {
        try string("name").map(Self.checkedName)
    }

    private static func checkedName(_ name: String) throws -> String {
        guard !EntityID.isShaped(name) else {
            throw AdminError.badRequest(
                "name '\(name)' has the shape of an id (letters, '_' and 16 hex digits), and such a reference names an entity by its id: choose a name of another shape",
                param: "name")
        }
        return name
    }

    func int(_ name: String) throws -> Int? {
        guard let value = members[name], !(value is NSNull) else { return nil }
        guard let number = value as? NSNumber, let int = Int(exactly: number.doubleValue), int >= 0 else {
            throw AdminError.badRequest("\(name) must be a non-negative integer", param: name)
        }
        return int
    }

    func stringList(_ name: String) throws -> [String]? {
        guard let value = members[name], !(value is NSNull) else { return nil }
        guard let list = value as? [String] else { throw AdminError.badRequest("\(name) must be a list of strings", param: name) }
        return list
    }
}

enum LedgerView {
    static func json(_ row: LedgerRecord) -> JSONValue {
        .object([
            ("id", .string(row.id)), ("created_at", .time(row.createdAt)), ("endpoint", .string(row.endpoint)),
            ("key_id", .string(row.keyID)), ("user", .string(row.userName)), ("team", .string(row.teamName)),
            ("requested_model", .string(row.requestedModel)), ("model", .string(row.model)), ("provider", .string(row.provider)),
            ("input_tokens", .int(row.usage.inputTokens)), ("cached_input_tokens", .int(row.usage.cachedInputTokens)),
            ("cache_write_tokens", .int(row.usage.cacheWriteTokens)), ("cache_write_1h_tokens", .int(row.usage.cacheWrite1hTokens)), ("output_tokens", .int(row.usage.outputTokens)),
            ("reasoning_tokens", .int(row.usage.reasoningTokens)), ("usage_estimated", .bool(row.usageEstimated)),
            ("cost_usd", .money(row.cost)), ("baseline_cost_usd", .money(row.baselineCost)), ("status", .int(row.status)),
            ("latency_ms", .int(row.latencyMs)), ("ttft_ms", .int(row.ttftMs)), ("stream", .bool(row.stream)),
            ("tags", .array(row.tags.map(JSONValue.string))), ("agentic", .bool(row.agentic)),
            ("client", .string(row.facts.client.rawValue)), ("session_id", .string(row.facts.sessionID)),
            ("tools_offered", .int(row.facts.toolsOffered)), ("tool_results", .bool(row.facts.toolResults)),
            ("messages", .int(row.facts.messages)), ("route", .string(row.route)),
            ("route_reason", .string(row.routeReason)), ("error", .string(row.error)),
        ])
    }
}
