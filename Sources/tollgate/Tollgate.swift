import ArgumentParser
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import TollgateCore
import TollgateServer
import TollgateStore

@main
struct Tollgate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tollgate",
        abstract: "A self-hosted LLM gateway: virtual keys, exact cost, budgets and a ledger.",
        subcommands: [Serve.self, Teams.self, Users.self, Keys.self, Budgets.self, Spend.self, UsageCommand.self, Requests.self, Economics.self, RouteEval.self,
                      Database.self, AdminKey.self])
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Start the gateway.")

    @Option(help: "YAML config file.") var config: String?
    @Option(help: "Address to listen on (default 127.0.0.1).") var host: String?
    @Option(help: "Port to listen on (default 4000).") var port: Int?
    @Option(help: "Database: sqlite:PATH or postgres://user:password@host:port/database (default $TOLLGATE_DB, else the config's, else sqlite:tollgate.db).")
    var db: String?
    @Flag(help: "Also serve the built-in simulated models demo-small and demo-large.") var demo = false

    func run() async throws {
        do {
            try await GatewayServer.run(options: ServeOptions(configPath: config, host: host, port: port, database: db, demo: demo))
        } catch {
            FileHandle.standardError.write(Data("tollgate: \(error)\n".utf8))
            throw ExitCode.failure
        }
    }
}

/// Where the admin commands find the gateway, and how they authenticate.
struct AdminConnection: ParsableArguments {
    @Option(help: "Gateway URL (default $TOLLGATE_URL or http://127.0.0.1:4000).") var url: String?
    @Flag(help: "Print the raw JSON answer.") var json = false

    var baseURL: String {
        url ?? ProcessInfo.processInfo.environment["TOLLGATE_URL"] ?? "http://127.0.0.1:4000"
    }

    /// Sends one admin request; on an error answer, prints the gateway's message and exits non-zero.
    func call(_ method: String, _ path: String, body: [String: Any]? = nil, timeout: TimeInterval = 60) async throws -> (Data, [String: Any]) {
        guard let adminKey = ProcessInfo.processInfo.environment["TOLLGATE_ADMIN_KEY"], !adminKey.isEmpty else {
            throw ValidationError("Set TOLLGATE_ADMIN_KEY to the gateway's admin key.")
        }
        guard let endpoint = URL(string: baseURL + path) else { throw ValidationError("Bad URL: \(baseURL + path)") }
        var request = URLRequest(url: endpoint)
        request.httpMethod = method
        request.timeoutInterval = timeout
        request.setValue("Bearer " + adminKey, forHTTPHeaderField: "Authorization")
        if let body {
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
            request.httpBody = try JSONSerialization.data(withJSONObject: body)
        }
        let data: Data
        let response: URLResponse
        do {
            (data, response) = try await URLSession.shared.data(for: request)
        } catch let error as URLError {
            FileHandle.standardError.write(Data("tollgate: cannot reach the gateway at \(baseURL) (\(Self.reason(error.code))): start it with `tollgate serve`, or give the address of the one running with --url or TOLLGATE_URL\n".utf8))
            throw ExitCode.failure
        }
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
        guard (200..<300).contains(status) else {
            let message = (object["error"] as? [String: Any])?["message"] as? String ?? String(decoding: data, as: UTF8.self)
            FileHandle.standardError.write(Data("tollgate: \(status): \(message)\n".utf8))
            throw ExitCode.failure
        }
        return (data, object)
    }

    /// Prints the answer: raw JSON with `--json`, else one line per row with the given columns.
    func print(_ data: Data, _ object: [String: Any], columns: [String]) {
        if json {
            Swift.print(String(decoding: data, as: UTF8.self))
            return
        }
        let rows = (object["data"] as? [[String: Any]]) ?? [object]
        for line in TerminalText.table([columns] + rows.map { row in columns.map { Self.text(row[$0]) } }) {
            Swift.print(line)
        }
    }

    /// Why a request did not reach the gateway, in a few words (Foundation's own text is `Error
    /// Domain=NSURLErrorDomain Code=-1004 "(null)"` and a dictionary).
    static func reason(_ code: URLError.Code) -> String {
        switch code {
        case .cannotConnectToHost: "connection refused"
        case .cannotFindHost, .dnsLookupFailed: "unknown host"
        case .timedOut: "timed out"
        case .networkConnectionLost: "connection lost"
        case .badURL, .unsupportedURL: "not a usable URL"
        default: "URL error \(code.rawValue)"
        }
    }

    static func text(_ value: Any?) -> String {
        switch value {
        case nil, is NSNull: "-"
        case let list as [Any]: list.map { text($0) }.joined(separator: ",")
        case let number as NSNumber: number.stringValue
        case let other?: "\(other)"
        }
    }
}

struct Teams: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Create and list teams.", subcommands: [Create.self, List.self])

    struct Create: AsyncParsableCommand {
        @Argument(help: "Team name.") var name: String
        @Option(help: "Org (name or id).") var org: String?
        @OptionGroup var connection: AdminConnection
        func run() async throws {
            var body: [String: Any] = ["name": name]
            if let org { body["org"] = org }
            let (data, object) = try await connection.call("POST", "/admin/teams", body: body)
            connection.print(data, object, columns: ["id", "name"])
        }
    }

    struct List: AsyncParsableCommand {
        @OptionGroup var connection: AdminConnection
        func run() async throws {
            let (data, object) = try await connection.call("GET", "/admin/teams")
            connection.print(data, object, columns: ["id", "name", "created_at"])
        }
    }
}

struct Users: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Create and list users.", subcommands: [Create.self, List.self])

    struct Create: AsyncParsableCommand {
        @Argument(help: "User name.") var name: String
        @Option(help: "Team (name or id).") var team: String?
        @OptionGroup var connection: AdminConnection
        func run() async throws {
            var body: [String: Any] = ["name": name]
            if let team { body["team"] = team }
            let (data, object) = try await connection.call("POST", "/admin/users", body: body)
            connection.print(data, object, columns: ["id", "name", "team"])
        }
    }

    struct List: AsyncParsableCommand {
        @OptionGroup var connection: AdminConnection
        func run() async throws {
            let (data, object) = try await connection.call("GET", "/admin/users")
            connection.print(data, object, columns: ["id", "name", "team", "created_at"])
        }
    }
}

struct Keys: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Create, list and revoke virtual keys.",
                                                    subcommands: [Create.self, List.self, Revoke.self])

    struct Create: AsyncParsableCommand {
        @Option(help: "Owner user (name or id).") var user: String?
        @Option(help: "Owner team (name or id).") var team: String?
        @Option(help: "A name for the key.") var name: String?
        @Option(help: "Comma-separated models or routes the key may use (default: all).") var models: String?
        @Option(help: "Expiry, RFC 3339 (e.g. 2026-12-31T00:00:00Z).") var expires: String?
        @Flag(help: "A read-only viewer key: the dashboard, /metrics and the admin API's reports; it calls no model.")
        var viewer = false
        @OptionGroup var connection: AdminConnection
        func run() async throws {
            var body: [String: Any] = [:]
            if viewer { body["role"] = "viewer" }
            if let user { body["user"] = user }
            if let team { body["team"] = team }
            if let name { body["name"] = name }
            if let models { body["models"] = models.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
            if let expires { body["expires_at"] = expires }
            let (data, object) = try await connection.call("POST", "/admin/keys", body: body)
            if connection.json {
                connection.print(data, object, columns: [])
            } else {
                if viewer {
                    Swift.print("Created viewer key \(AdminConnection.text(object["id"])): it reads the dashboard, /metrics and the reports.")
                } else {
                    Swift.print("Created key \(AdminConnection.text(object["id"])) for \(AdminConnection.text(object["user"] ?? object["team"])).")
                }
                Swift.print("The key is shown once; store it now:\n\n    \(AdminConnection.text(object["key"]))\n")
            }
        }
    }

    struct List: AsyncParsableCommand {
        @OptionGroup var connection: AdminConnection
        func run() async throws {
            let (data, object) = try await connection.call("GET", "/admin/keys")
            connection.print(data, object, columns: ["id", "name", "role", "prefix", "user", "team", "models", "expires_at", "revoked_at"])
        }
    }

    struct Revoke: AsyncParsableCommand {
        @Argument(help: "Key id or name.") var key: String
        @OptionGroup var connection: AdminConnection
        func run() async throws {
            let reference = key.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? key
            let (data, object) = try await connection.call("DELETE", "/admin/keys/\(reference)")
            connection.print(data, object, columns: ["id", "name", "revoked_at"])
        }
    }
}

struct Budgets: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Set, list and delete budgets.",
                                                    subcommands: [Set.self, List.self, Delete.self])

    static let columns = ["id", "scope", "name", "model", "period", "limit_usd", "spent_usd", "reserved_usd", "remaining_usd",
                          "limit_tokens", "spent_tokens", "resets_at"]

    struct Set: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create or change the budget of an org, team, user or key (one per scope, name, model and period).",
            discussion: """
                tollgate budgets set --user alice --usd 1500 --period month
                tollgate budgets set --user alice --salary-share 0.5 --annual-salary 180000
                tollgate budgets set --team platform --usd 5000 --soft-threshold 0.8 --on-exhaust downgrade
                tollgate budgets set --key key_1a2b --tokens 2000000 --period day --model gpt-4o
                """)

        @Option(help: "Org (name or id).") var org: String?
        @Option(help: "Team (name or id).") var team: String?
        @Option(help: "User (name or id).") var user: String?
        @Option(help: "Key (id or name).") var key: String?
        @Option(help: "Limit in USD, e.g. 1500 or 0.25.") var usd: String?
        @Option(help: "Limit in tokens.") var tokens: Int?
        @Option(help: "Monthly limit = annual salary × share ÷ 12: the annual salary in USD.") var annualSalary: String?
        @Option(help: "Monthly limit = annual salary × share ÷ 12: the share, e.g. 0.5.") var salaryShare: String?
        @Option(help: "day, week, month or total (default month).") var period: String?
        @Option(help: "Bind the budget to one model.") var model: String?
        @Option(help: "strict (never overspent) or estimate (default strict).") var mode: String?
        @Option(help: "reject or downgrade (default reject).") var onExhaust: String?
        @Option(help: "Share of the limit that sends the soft-threshold webhook, e.g. 0.8.") var softThreshold: String?
        @Option(help: "Extra USD only downgraded requests may use.") var graceUsd: String?
        @Option(help: "Time zone of the calendar periods (default UTC).") var timezone: String?
        @OptionGroup var connection: AdminConnection

        func run() async throws {
            let subjects = [("org", org), ("team", team), ("user", user), ("key", key)].compactMap { scope, name in name.map { (scope, $0) } }
            guard subjects.count == 1, let (scope, name) = subjects.first else {
                throw ValidationError("Name exactly one of --org, --team, --user, --key.")
            }
            var body: [String: Any] = ["scope": scope, "name": name]
            let optional: [(String, Any?)] = [
                ("limit_usd", usd), ("limit_tokens", tokens), ("annual_salary_usd", annualSalary), ("salary_share", salaryShare),
                ("period", period), ("model", model), ("mode", mode), ("on_exhaust", onExhaust),
                ("soft_threshold", softThreshold), ("grace_usd", graceUsd), ("timezone", timezone),
            ]
            for (field, value) in optional { if let value { body[field] = value } }
            let (data, object) = try await connection.call("POST", "/admin/budgets", body: body)
            connection.print(data, object, columns: Budgets.columns)
        }
    }

    struct List: AsyncParsableCommand {
        @OptionGroup var connection: AdminConnection
        func run() async throws {
            let (data, object) = try await connection.call("GET", "/admin/budgets")
            connection.print(data, object, columns: Budgets.columns)
        }
    }

    struct Delete: AsyncParsableCommand {
        @Argument(help: "Budget id.") var id: String
        @OptionGroup var connection: AdminConnection
        func run() async throws {
            let (data, object) = try await connection.call("DELETE", "/admin/budgets/\(id)")
            connection.print(data, object, columns: ["id", "deleted"])
        }
    }
}

struct Spend: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Spend report from the ledger.")

    @Option(name: .customLong("by"), help: "Group by user, team, key, model, tag or day.") var groupBy = "user"
    @Option(help: "From (inclusive): a date or an RFC 3339 time.") var from: String?
    @Option(help: "To (exclusive): a date or an RFC 3339 time.") var to: String?
    @Flag(help: "CSV instead of a table.") var csv = false
    @Flag(help: "Show what routing and budget downgrades saved: the cost on the model asked for (or a route's strong model) beside the cost paid.")
    var savings = false
    @Flag(help: "Show each budget's forecast instead: spent so far, projected at the end of its period with an 80 % interval, and the day its limit is reached.")
    var forecast = false
    @Option(help: "With --forecast: only budgets of this scope (org, team, user or key).") var scope: String?
    @Option(help: "With --forecast: only budgets on this subject (name or id); with --scope, a subject without a budget is forecast too.")
    var name: String?
    @OptionGroup var connection: AdminConnection

    func validate() throws {
        if !forecast, scope != nil || name != nil { throw ValidationError("--scope and --name go with --forecast.") }
    }

    func run() async throws {
        if forecast { return try await runForecast() }
        var query = "group_by=\(groupBy)"
        if let from { query += "&from=\(from.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed) ?? from)" }
        if let to { query += "&to=\(to.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed) ?? to)" }
        if csv { query += "&format=csv" }
        let (data, object) = try await connection.call("GET", "/admin/spend?\(query)")
        if csv {
            Swift.print(String(decoding: data, as: UTF8.self), terminator: "")
        } else {
            let money = savings ? ["cost_usd", "baseline_cost_usd", "savings_usd"] : ["cost_usd"]
            connection.print(data, object, columns: [groupBy, "requests", "input_tokens", "cached_input_tokens", "output_tokens"] + money)
        }
    }

    private func runForecast() async throws {
        var query: [String] = []
        if let scope { query.append("scope=\(scope.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed) ?? scope)") }
        if let name { query.append("name=\(name.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? name)") }
        if csv { query.append("format=csv") }
        let (data, object) = try await connection.call("GET", "/admin/forecast" + (query.isEmpty ? "" : "?" + query.joined(separator: "&")))
        if csv || connection.json {
            Swift.print(String(decoding: data, as: UTF8.self), terminator: csv ? "" : "\n")
            return
        }
        // One table for USD and token budgets: dollars with a `$`, tokens with `tok`.
        func amount(_ row: [String: Any], _ field: String) -> String {
            if let usd = row[field + "_usd"] as? String { return "$" + usd }
            if let tokens = row[field + "_tokens"] as? NSNumber { return "\(tokens.stringValue) tok" }
            return "-"
        }
        let rows = (object["data"] as? [[String: Any]]) ?? []
        let header = ["scope", "name", "model", "period", "limit", "spent", "forecast", "low (80 %)", "high (80 %)",
                      "limit reached", "history", "method"]
        let lines = rows.map { row in
            [AdminConnection.text(row["scope"]), AdminConnection.text(row["name"]), AdminConnection.text(row["model"]),
             AdminConnection.text(row["period"]), amount(row, "limit"), amount(row, "spent"), amount(row, "forecast"),
             amount(row, "forecast_low"), amount(row, "forecast_high"), AdminConnection.text(row["projected_exhaustion"]),
             "\(AdminConnection.text(row["history_days"])) d", AdminConnection.text(row["method"])]
        }
        for line in TerminalText.table([header] + lines) { Swift.print(line) }
    }
}

struct UsageCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "usage",
        abstract: "Sessions, agentic use and cost per active day, from the ledger.",
        discussion: """
            A session is agentic when it ran a tool loop (tool results sent back) or an agent client made it \
            (Claude Code, aider, the OpenAI Agents SDK); assisted otherwise. --trend shows, per team and ISO week, \
            the share of its people with an agentic session.
            """)

    @Option(name: .customLong("by"), help: "Group by user, team or client.") var groupBy = "user"
    @Option(help: "From (inclusive): a date or an RFC 3339 time.") var from: String?
    @Option(help: "To (exclusive): a date or an RFC 3339 time.") var to: String?
    @Flag(help: "CSV instead of a table.") var csv = false
    @Flag(help: "The weekly trend per team instead: people, people with an agentic session, and their share.") var trend = false
    @OptionGroup var connection: AdminConnection

    func validate() throws {
        if trend, csv { throw ValidationError("--trend comes as a table or --json.") }
    }

    func run() async throws {
        var query: [String] = []
        if !trend { query.append("group_by=\(groupBy.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? groupBy)") }
        if let from { query.append("from=\(from.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? from)") }
        if let to { query.append("to=\(to.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? to)") }
        if csv { query.append("format=csv") }
        let path = (trend ? "/admin/usage/trend" : "/admin/usage") + (query.isEmpty ? "" : "?" + query.joined(separator: "&"))
        let (data, object) = try await connection.call("GET", path)
        if csv || connection.json {
            Swift.print(String(decoding: data, as: UTF8.self), terminator: csv ? "" : "\n")
            return
        }
        let rows = (object["data"] as? [[String: Any]]) ?? []
        func percent(_ value: Any?) -> String {
            guard let number = value as? NSNumber else { return "-" }
            return String(format: "%.1f %%", number.doubleValue * 100)
        }
        let header: [String]
        let lines: [[String]]
        if trend {
            header = ["team", "week", "people", "agentic", "share"]
            lines = rows.map { row in
                [AdminConnection.text(row["team"]), AdminConnection.text(row["week"]), AdminConnection.text(row["people"]),
                 AdminConnection.text(row["agentic_people"]), percent(row["agentic_share"])]
            }
        } else {
            header = [groupBy, "requests", "sessions", "agentic", "agentic req", "agentic $", "active days", "cost", "$/active day",
                      "tokens/active day", "cached input", "budget"]
            lines = rows.map { row in
                let budget = (row["budget_limit_usd"] as? String).map { "$\($0)/\(AdminConnection.text(row["budget_period"]))" } ?? "-"
                return [AdminConnection.text(row["group"]), AdminConnection.text(row["requests"]), AdminConnection.text(row["sessions"]),
                        AdminConnection.text(row["agentic_sessions"]), percent(row["agentic_request_share"]),
                        percent(row["agentic_cost_share"]), AdminConnection.text(row["active_days"]),
                        "$" + AdminConnection.text(row["cost_usd"]), "$" + AdminConnection.text(row["cost_per_active_day_usd"]),
                        AdminConnection.text(row["tokens_per_active_day"]), percent(row["cached_input_share"]), budget]
            }
        }
        for line in TerminalText.table([header] + lines) { Swift.print(line) }
    }
}

struct Requests: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "The newest ledger rows.")

    @Option(help: "How many rows.") var limit = 20
    @OptionGroup var connection: AdminConnection

    func run() async throws {
        let (data, object) = try await connection.call("GET", "/admin/requests?limit=\(limit)")
        connection.print(data, object, columns: ["created_at", "id", "user", "model", "input_tokens", "cached_input_tokens",
                                                 "output_tokens", "cost_usd", "status", "latency_ms"])
    }
}

/// The database of `tollgate db` and `tollgate admin-key`, which work on it directly, without a gateway.
struct DatabaseOption: ParsableArguments {
    @Option(help: "Database: sqlite:PATH or postgres://user:password@host:port/database (default $TOLLGATE_DB or sqlite:tollgate.db).")
    var db: String?

    var location: StoreLocation {
        get throws { try StoreLocation(url: db ?? ProcessInfo.processInfo.environment["TOLLGATE_DB"] ?? "sqlite:tollgate.db") }
    }

    /// Runs `body` on the opened store; a store error is one line on stderr and a non-zero exit.
    func withStore(migrate: Bool, mustExist: Bool = false, _ body: (StoreLocation, any Store) throws -> Void) throws {
        do {
            let location = try location
            if mustExist, case .sqlite(let path) = location, !FileManager.default.fileExists(atPath: path) {
                throw StoreError.invalid("no database at \(location): name the gateway's with --db or TOLLGATE_DB")
            }
            let store = try location.open(migrate: migrate)
            defer { store.close() }
            try body(location, store)
        } catch StoreError.unavailable(let message), StoreError.invalid(let message) {
            FileHandle.standardError.write(Data("tollgate: \(message)\n".utf8))
            throw ExitCode.failure
        }
    }
}

struct Database: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "db", abstract: "Database maintenance.",
                                                    subcommands: [Migrate.self])

    struct Migrate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Apply the schema migrations the database lacks (serve applies them on start too).")

        @OptionGroup var database: DatabaseOption

        func run() throws {
            try database.withStore(migrate: false) { location, store in
                let applied = try store.migrate()
                for migration in applied { Swift.print("\(location): applied migration \(migration)") }
                if applied.isEmpty { Swift.print("\(location): the schema is up to date") }
            }
        }
    }
}

struct AdminKey: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "admin-key", abstract: "The gateway's generated admin key.",
                                                    subcommands: [Reset.self])

    struct Reset: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Replace the generated admin key with a new one, shown once; the old one stops working.",
            discussion: """
                For an operator who lost the admin key and can reach the gateway's database. A gateway started with \
                TOLLGATE_ADMIN_KEY set uses that key and not this one.
                """)

        @OptionGroup var database: DatabaseOption

        func run() throws {
            try database.withStore(migrate: true, mustExist: true) { location, store in
                let key = try GatewayServer.resetAdminKey(store: store)
                Swift.print("""
                    New admin key for \(location) (shown once, keep it safe):
                        export TOLLGATE_ADMIN_KEY=\(key)
                    The old key no longer works: gateways running on this database take the new one within a second \
                    (a gateway started with TOLLGATE_ADMIN_KEY set keeps that key until it is restarted without it).
                    """)
            }
        }
    }
}

struct Economics: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "What the ledger's traffic would cost another way.",
        subcommands: [SelfHost.self, ImportVLLM.self])

    struct SelfHost: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "self-host",
            abstract: "Would serving this model's traffic on GPUs of your own be cheaper? Sized from the ledger.")

        @Option(help: "The ledger's model (or route) whose traffic to size.") var model: String
        @Option(name: .customLong("as"), help: "The open model to size (default: --model itself).") var openModel: String?
        @Option(help: "GPU type, e.g. h100.") var gpu: String
        @Option(help: "on-demand, 1-year, 3-year, spot or owned (default: on-demand); the cheapest offer of it.") var provisioning: String?
        @Option(help: "Only throughput points of this engine (e.g. vllm, tensorrt-llm).") var engine: String?
        @Option(help: "From (inclusive): a date or an RFC 3339 time (default: 30 days before --to).") var from: String?
        @Option(help: "To (exclusive): a date or an RFC 3339 time (default: now).") var to: String?
        @OptionGroup var connection: AdminConnection

        func run() async throws {
            var query = ["model": model, "gpu": gpu]
            query["as"] = openModel
            query["provisioning"] = provisioning
            query["engine"] = engine
            query["from"] = from
            query["to"] = to
            let text = query.sorted { $0.key < $1.key }
                .map { "\($0.key)=\($0.value.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? $0.value)" }
                .joined(separator: "&")
            // A month of a busy model is a scan of millions of ledger rows.
            let (data, object) = try await connection.call("GET", "/admin/economics/self-host?" + text, timeout: 600)
            if connection.json {
                Swift.print(String(decoding: data, as: UTF8.self))
                return
            }
            func money(_ field: String) -> String { (object[field] as? String).map { "$" + $0 } ?? "-" }
            func value(_ field: String) -> String { AdminConnection.text(object[field]) }
            let window = object["window"] as? [String: Any] ?? [:]
            let load = object["load"] as? [String: Any] ?? [:]
            let utilisation = (object["utilisation"] as? NSNumber).map { String(format: "%.1f %%", $0.doubleValue * 100) } ?? "-"
            let offer = object["offer"] as? [String: Any] ?? [:]
            Swift.print("Self-hosting \(value("as")) on \(value("gpu")) for the traffic of \(value("model")), \(AdminConnection.text(window["from"])) to \(AdminConnection.text(window["to"]))")
            let rows: [[String]] = [
                ["requests", value("requests")],
                ["API cost (ledger)", money("api_cost_usd")],
                ["API cost re-priced today", money("api_cost_repriced_usd")],
                ["hosted \(value("as")) (cheapest)", money("hosted_cost_usd")],
                ["self-host cost", money("self_host_cost_usd")],
                ["  GPUs, idle hours billed", money("gpu_cost_usd")],
                ["  operations", money("operations_cost_usd")],
                ["GPU offer", "\(AdminConnection.text(offer["provider"])) \(value("provisioning")), $\(AdminConnection.text(offer["usd_per_gpu_hour"]))/GPU-hour"],
                ["replicas × GPUs", "\(value("replicas")) × \(value("gpus_per_replica")) = \(value("gpus"))"],
                ["load p95 / peak / mean (replicas)", [load["p95"], load["peak"], load["mean"]].map { ($0 as? NSNumber).map { String(format: "%.3f", $0.doubleValue) } ?? "-" }.joined(separator: " / ")],
                ["utilisation", utilisation],
                ["break-even vs API (requests/day)", value("break_even_requests_per_day")],
                ["break-even vs hosted (requests/day)", value("break_even_vs_hosted_requests_per_day")],
            ]
            for line in TerminalText.table(rows) { Swift.print(line) }
            let buckets = object["buckets"] as? [[String: Any]] ?? []
            if !buckets.isEmpty {
                Swift.print("")
                let header = ["input", "cached", "output", "requests", "req/s per replica", "interpolation"]
                let lines = buckets.map { bucket in
                    [AdminConnection.text(bucket["input_tokens"]), AdminConnection.text(bucket["cached_tokens"]),
                     AdminConnection.text(bucket["output_tokens"]), AdminConnection.text(bucket["requests"]),
                     (bucket["requests_per_second_per_replica"] as? NSNumber).map { String(format: "%.3f", $0.doubleValue) } ?? "-",
                     AdminConnection.text(bucket["interpolation"])]
                }
                for line in TerminalText.table([header] + lines) { Swift.print(line) }
            }
            Swift.print("\nAssumptions:")
            for line in object["assumptions"] as? [String] ?? [] { Swift.print("- " + line) }
        }
    }

    struct ImportVLLM: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "import-vllm",
            abstract: "Add the results of `vllm bench serve --save-result` to an economics file as throughput points.")

        @Argument(help: "Result JSON files.") var files: [String]
        @Option(help: "The economics file to write (created, or updated by id); name it in tollgate.yaml as economics: { file: … }.")
        var out: String
        @Option(help: "The model served (default: the result's model_id).") var model: String?
        @Option(help: "GPU type, e.g. h100.") var gpu: String
        @Option(help: "GPUs per replica (the tensor-parallel size).") var gpus = 1
        @Option(help: "Weights' precision, e.g. bf16 or fp8.") var precision: String
        @Option(help: "vLLM's version, e.g. 0.11.0.") var engineVersion: String
        @Option(help: "The day the benchmark ran, YYYY-MM-DD (default: today, UTC).") var checked: String?

        func run() throws {
            let day = checked ?? Date().formatted(Date.ISO8601FormatStyle(timeZone: TimeZone(identifier: "UTC")!).year().month().day())
            var document: [String: Any] = [:]
            if FileManager.default.fileExists(atPath: out) {
                let existing = try Data(contentsOf: URL(fileURLWithPath: out))
                do {
                    _ = try EconomicsOverlay.parse(json: existing, origin: out)
                } catch {
                    throw ValidationError("\(error)")
                }
                document = (try JSONSerialization.jsonObject(with: existing) as? [String: Any]) ?? [:]
            }
            var rows = document["throughput"] as? [[String: Any]] ?? []
            let setup = VLLMBenchmark.Setup(model: model, gpu: gpu, gpus: gpus, precision: precision, engineVersion: engineVersion)
            for file in files {
                let data = try Data(contentsOf: URL(fileURLWithPath: file))
                let base = URL(fileURLWithPath: file).deletingPathExtension().lastPathComponent
                let point: ThroughputPoint
                do {
                    point = try VLLMBenchmark.point(json: data, origin: file, id: "vllm-\(base)", setup: setup, checked: day)
                } catch {
                    throw ValidationError("\(error)")
                }
                rows.removeAll { $0["id"] as? String == point.id }
                rows.append(point.fileObject)
                Swift.print("\(point.id): \(point.model), \(Int(point.inputTokens)) in / \(Int(point.outputTokens)) out, "
                    + "\(String(format: "%.3f", point.requestsPerSecond)) req/s, \(String(format: "%.1f", point.outputTokensPerSecond)) output tokens/s, "
                    + (point.at == .latencyTarget ? "serving point (\(point.latencyTarget ?? "latencies as measured"))" : "maximum throughput"))
            }
            document["throughput"] = rows
            let text = try JSONSerialization.data(withJSONObject: document, options: [.prettyPrinted, .sortedKeys])
            do {
                _ = try EconomicsOverlay.parse(json: text, origin: out)
            } catch {
                throw ValidationError("\(error)")
            }
            try text.write(to: URL(fileURLWithPath: out))
            Swift.print("wrote \(rows.count) throughput point\(rows.count == 1 ? "" : "s") to \(out)")
        }
    }
}
