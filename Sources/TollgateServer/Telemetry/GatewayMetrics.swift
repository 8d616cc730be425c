import CoreMetrics
import Foundation
import Prometheus
import Synchronization
import TollgateCore

/// Prometheus metrics, counted as requests settle and read at `GET /metrics`.
///
/// The request path counts through swift-metrics handles (`Counter`, `Timer`) that swift-prometheus backs,
/// each made once and kept (per model, and per status, provider and route as they occur): a settled request
/// costs a dictionary lookup, a few relaxed atomic adds and two histogram updates, no allocation. Money is the
/// exception: a Prometheus counter is a float, and a sum of millions of float costs drifts from the ledger's exact
/// sum, so cost is kept in integer nano-dollars and written as an exact decimal. What only matters when scraped
/// (budgets, breakers, pools, the ledger queue) is read then, not kept up to date on every request.
final class GatewayMetrics: Sendable {
    /// Families and their labels; `type` of tokens: `input` (plain-rate input, cache reads and writes excluded),
    /// `cached_input` (cache reads), `cache_write`, `output` (reasoning included) and `reasoning`.
    static let requestsName = "tollgate_requests_total"
    static let tokensName = "tollgate_tokens_total"
    static let durationName = "tollgate_request_duration_seconds"
    static let ttftName = "tollgate_time_to_first_token_seconds"
    static let flushName = "tollgate_ledger_flush_duration_seconds"

    static let durationBuckets: [Duration] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300]
        .map { Duration.milliseconds(Int64($0 * 1000)) }
    static let ttftBuckets: [Duration] = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]
        .map { Duration.milliseconds(Int64($0 * 1000)) }
    static let flushBuckets: [Duration] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5]
        .map { Duration.microseconds(Int64($0 * 1_000_000)) }

    let registry = PrometheusCollectorRegistry()
    private let factory: PrometheusMetricsFactory
    let perUser: Bool
    /// Every configured model's series, by name: fixed at start, read without a lock.
    private let models: [String: ModelSeries]
    /// Requests that reached no model (an unknown model, a body refused before routing).
    private let unrouted: ModelSeries
    private let users = Mutex<[UserKey: UserSeries]>([:])
    let ledgerFlush: CoreMetrics.Timer

    init(modelNames: some Sequence<String>, perUser: Bool) {
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets = [Self.durationName: Self.durationBuckets, Self.ttftName: Self.ttftBuckets,
                                            Self.flushName: Self.flushBuckets]
        self.factory = factory
        self.perUser = perUser
        var models: [String: ModelSeries] = [:]
        for name in modelNames where models[name] == nil { models[name] = ModelSeries(model: name, factory: factory) }
        self.models = models
        unrouted = ModelSeries(model: "", factory: factory)
        ledgerFlush = CoreMetrics.Timer(label: Self.flushName, factory: factory)
    }

    /// Counts a settled request: called once per ledger row, with the row itself, so the counters and the
    /// ledger agree.
    func record(_ row: borrowing LedgerRecord) {
        let series = row.model.flatMap { models[$0] } ?? unrouted
        series.requests(status: row.status, provider: row.provider ?? "", route: row.route ?? "").increment()
        let usage = row.usage
        if usage.inputTokens > 0 { series.input.increment(by: usage.inputTokens) }
        if usage.cachedInputTokens > 0 { series.cachedInput.increment(by: usage.cachedInputTokens) }
        if usage.cacheWriteTokens > 0 { series.cacheWrite.increment(by: usage.cacheWriteTokens) }
        if usage.outputTokens > 0 { series.output.increment(by: usage.outputTokens) }
        if usage.reasoningTokens > 0 { series.reasoning.increment(by: usage.reasoningTokens) }
        if row.cost.value != 0 { series.cost.add(row.cost.value, ordering: .relaxed) }
        series.duration.recordMilliseconds(row.latencyMs)
        if let ttft = row.ttftMs { series.ttft.recordMilliseconds(ttft) }
        guard perUser, row.userName != nil || row.teamName != nil else { return }
        let key = UserKey(user: row.userName ?? "", team: row.teamName ?? "")
        let user = users.withLock { users in
            if let found = users[key] { return found }
            let made = UserSeries()
            users[key] = made
            return made
        }
        user.requests.add(1, ordering: .relaxed)
        user.cost.add(row.cost.value, ordering: .relaxed)
    }

    // MARK: Exposition

    /// What is read when scraped, not counted per request.
    struct Snapshot {
        var budgets: [BudgetSnapshot] = []
        var deployments: [DeploymentState] = []
        var ledgerQueue = 0
        var refusedUnauthenticated = 0
    }

    struct DeploymentState {
        var id: String
        var model: String
        var provider: String
        var breaker: CircuitBreaker.State
        var breakerTrips: Int
        var inFlight: Int
        var openConnections: Int
        var idleConnections: Int
    }

    /// The text exposition format (version 0.0.4).
    func exposition(_ snapshot: Snapshot) -> [UInt8] {
        var text = PrometheusText()
        text.family("tollgate_cost_usd_total", .counter, "Cost charged, in US dollars (exact: the ledger's sum).")
        for series in ([unrouted] + models.values.sorted { $0.model < $1.model }) {
            let cost = series.cost.load(ordering: .relaxed)
            if series === unrouted && cost == 0 { continue }
            text.sample("tollgate_cost_usd_total", [("model", series.model)], Nanodollars(cost).decimalString)
        }
        if perUser {
            let users = users.withLock { $0 }.sorted { ($0.key.team, $0.key.user) < ($1.key.team, $1.key.user) }
            text.family("tollgate_user_requests_total", .counter, "Requests settled, by user and team.")
            for (key, series) in users {
                text.sample("tollgate_user_requests_total", [("user", key.user), ("team", key.team)],
                            String(series.requests.load(ordering: .relaxed)))
            }
            text.family("tollgate_user_cost_usd_total", .counter, "Cost charged, by user and team, in US dollars.")
            for (key, series) in users {
                text.sample("tollgate_user_cost_usd_total", [("user", key.user), ("team", key.team)],
                            Nanodollars(series.cost.load(ordering: .relaxed)).decimalString)
            }
        }
        budgetFamilies(snapshot.budgets, into: &text)
        deploymentFamilies(snapshot.deployments, into: &text)
        text.family("tollgate_ledger_queue_rows", .gauge, "Ledger rows settled and not yet written to the database.")
        text.sample("tollgate_ledger_queue_rows", [], String(snapshot.ledgerQueue))
        text.family("tollgate_refused_unauthenticated_total", .counter,
                    "Requests refused before a key was recognised (never written to the ledger).")
        text.sample("tollgate_refused_unauthenticated_total", [], String(snapshot.refusedUnauthenticated))
        var bytes = text.bytes
        registry.emit(into: &bytes)
        return bytes
    }

    private func budgetFamilies(_ budgets: [BudgetSnapshot], into text: inout PrometheusText) {
        let shown = budgets.filter { perUser || $0.definition.scope == .org || $0.definition.scope == .team }
            .sorted { $0.definition.id < $1.definition.id }
        func labels(_ budget: BudgetSnapshot) -> [(String, String)] {
            var labels = [("budget_id", budget.definition.id), ("scope", budget.definition.scope.rawValue),
                          ("name", budget.definition.subjectName), ("period", budget.definition.period.rawValue)]
            if let model = budget.definition.model { labels.append(("model", model)) }
            return labels
        }
        let money = shown.filter { if case .usd = $0.definition.limit { true } else { false } }
        let tokens = shown.filter { if case .tokens = $0.definition.limit { true } else { false } }
        text.family("tollgate_budget_limit_usd", .gauge, "A budget's limit, in US dollars.")
        for budget in money {
            if case .usd(let limit) = budget.definition.limit { text.sample("tollgate_budget_limit_usd", labels(budget), limit.decimalString) }
        }
        text.family("tollgate_budget_spent_usd", .gauge, "Spent in the budget's current period, in US dollars.")
        for budget in money { text.sample("tollgate_budget_spent_usd", labels(budget), budget.spentUSD.decimalString) }
        text.family("tollgate_budget_reserved_usd", .gauge, "Held for requests in flight, in US dollars.")
        for budget in money { text.sample("tollgate_budget_reserved_usd", labels(budget), budget.reservedUSD.decimalString) }
        guard !tokens.isEmpty else { return }
        text.family("tollgate_budget_limit_tokens", .gauge, "A token budget's limit.")
        for budget in tokens {
            if case .tokens(let limit) = budget.definition.limit { text.sample("tollgate_budget_limit_tokens", labels(budget), String(limit)) }
        }
        text.family("tollgate_budget_spent_tokens", .gauge, "Tokens spent in the budget's current period.")
        for budget in tokens { text.sample("tollgate_budget_spent_tokens", labels(budget), String(budget.spentTokens)) }
        text.family("tollgate_budget_reserved_tokens", .gauge, "Tokens held for requests in flight.")
        for budget in tokens { text.sample("tollgate_budget_reserved_tokens", labels(budget), String(budget.reservedTokens)) }
    }

    private func deploymentFamilies(_ deployments: [DeploymentState], into text: inout PrometheusText) {
        func labels(_ state: DeploymentState) -> [(String, String)] {
            [("deployment", state.id), ("model", state.model), ("provider", state.provider)]
        }
        text.family("tollgate_deployment_breaker_state", .gauge, "The circuit breaker: 0 closed, 1 half open, 2 open.")
        for state in deployments {
            let value = switch state.breaker { case .closed: "0"; case .halfOpen: "1"; case .open: "2" }
            text.sample("tollgate_deployment_breaker_state", labels(state), value)
        }
        text.family("tollgate_deployment_breaker_trips_total", .counter, "Times the breaker opened.")
        for state in deployments { text.sample("tollgate_deployment_breaker_trips_total", labels(state), String(state.breakerTrips)) }
        text.family("tollgate_deployment_in_flight", .gauge, "Requests being forwarded to the deployment now.")
        for state in deployments { text.sample("tollgate_deployment_in_flight", labels(state), String(state.inFlight)) }
        text.family("tollgate_upstream_connections", .gauge,
                    "Upstream pool connections to the deployment's server, over every event loop (state: open, idle).")
        for state in deployments {
            text.sample("tollgate_upstream_connections", labels(state) + [("state", "open")], String(state.openConnections))
            text.sample("tollgate_upstream_connections", labels(state) + [("state", "idle")], String(state.idleConnections))
        }
    }
}

/// One model's series.
private final class ModelSeries: Sendable {
    let model: String
    let input, cachedInput, cacheWrite, output, reasoning: CoreMetrics.Counter
    let duration, ttft: CoreMetrics.Timer
    /// Nano-dollars.
    let cost = Atomic<Int64>(0)
    private let factory: PrometheusMetricsFactory
    private let byOutcome = Mutex<[Outcome: CoreMetrics.Counter]>([:])

    struct Outcome: Hashable {
        var status: Int
        var provider: String
        var route: String
    }

    init(model: String, factory: PrometheusMetricsFactory) {
        self.model = model
        self.factory = factory
        func tokens(_ type: String) -> CoreMetrics.Counter {
            CoreMetrics.Counter(label: GatewayMetrics.tokensName, dimensions: [("model", model), ("type", type)], factory: factory)
        }
        input = tokens("input")
        cachedInput = tokens("cached_input")
        cacheWrite = tokens("cache_write")
        output = tokens("output")
        reasoning = tokens("reasoning")
        duration = CoreMetrics.Timer(label: GatewayMetrics.durationName, dimensions: [("model", model)], factory: factory)
        ttft = CoreMetrics.Timer(label: GatewayMetrics.ttftName, dimensions: [("model", model)], factory: factory)
    }

    /// The requests counter of one status, provider and route, made the first time it occurs.
    func requests(status: Int, provider: String, route: String) -> CoreMetrics.Counter {
        let outcome = Outcome(status: status, provider: provider, route: route)
        return byOutcome.withLock { counters in
            if let counter = counters[outcome] { return counter }
            let counter = CoreMetrics.Counter(label: GatewayMetrics.requestsName, dimensions: [
                ("model", model), ("provider", provider), ("status", String(status)), ("route", route),
            ], factory: factory)
            counters[outcome] = counter
            return counter
        }
    }
}

private struct UserKey: Hashable {
    var user: String
    var team: String
}

private final class UserSeries: Sendable {
    let requests = Atomic<Int>(0)
    let cost = Atomic<Int64>(0)
}

/// Families written by hand in the text format, for the values swift-prometheus cannot hold exactly (money)
/// or that exist only while scraped.
struct PrometheusText {
    enum Kind: String { case counter, gauge }
    private(set) var bytes: [UInt8] = []

    init() { bytes.reserveCapacity(4096) }

    mutating func family(_ name: String, _ kind: Kind, _ help: String) {
        bytes += "# HELP \(name) \(help)\n# TYPE \(name) \(kind.rawValue)\n".utf8
    }

    mutating func sample(_ name: String, _ labels: [(String, String)], _ value: String) {
        bytes += name.utf8
        if !labels.isEmpty {
            bytes.append(UInt8(ascii: "{"))
            for (index, (label, text)) in labels.enumerated() {
                if index > 0 { bytes.append(UInt8(ascii: ",")) }
                bytes += label.utf8
                bytes += "=\"".utf8
                bytes += Self.escaped(text).utf8
                bytes.append(UInt8(ascii: "\""))
            }
            bytes.append(UInt8(ascii: "}"))
        }
        bytes.append(UInt8(ascii: " "))
        bytes += value.utf8
        bytes.append(UInt8(ascii: "\n"))
    }

    /// A label value as the format wants it: backslash, double quote and line feed escaped.
    static func escaped(_ text: String) -> String {
        guard text.contains(where: { $0 == "\\" || $0 == "\"" || $0 == "\n" }) else { return text }
        var out = ""
        for character in text {
            switch character {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.append(character)
            }
        }
        return out
    }
}
