import Foundation
import Testing
@testable import TollgateServer
import TollgateCore

@Suite("Prometheus metrics")
struct GatewayMetricsTests {
    private func row(model: String?, status: Int = 200, cost: Int64, provider: String = "openai", route: String? = nil,
                     usage: Usage = Usage(), latencyMs: Int = 120, ttftMs: Int? = nil, user: String? = "alice",
                     team: String? = "platform") -> LedgerRecord {
        LedgerRecord(id: "req", createdAt: Date(), endpoint: "chat.completions", userName: user, teamName: team,
                     requestedModel: model, model: model, provider: provider, usage: usage, cost: Nanodollars(cost),
                     status: status, latencyMs: latencyMs, ttftMs: ttftMs, route: route)
    }

    private func lines(_ metrics: GatewayMetrics, _ snapshot: GatewayMetrics.Snapshot = .init()) -> [String] {
        String(decoding: metrics.exposition(snapshot), as: UTF8.self).split(separator: "\n").map(String.init)
    }

    @Test("requests by model, provider, status and route; tokens by type; cost summed exactly in nano-dollars")
    func counters() {
        let metrics = GatewayMetrics(modelNames: ["gpt-4o-mini", "claude-haiku"], perUser: false)
        // 0.000000001 + 0.1 + 0.2 as floats is 0.30000000000000004; as nano-dollars it is exact.
        metrics.record(row(model: "gpt-4o-mini", cost: 1, usage: Usage(inputTokens: 10, cachedInputTokens: 4, outputTokens: 7, reasoningTokens: 2)))
        metrics.record(row(model: "gpt-4o-mini", cost: 100_000_000, route: "auto", usage: Usage(inputTokens: 5, outputTokens: 1)))
        metrics.record(row(model: "gpt-4o-mini", cost: 200_000_000, route: "auto", usage: Usage(inputTokens: 5, outputTokens: 1)))
        metrics.record(row(model: "claude-haiku", status: 502, cost: 0, provider: "anthropic", usage: Usage(cacheWriteTokens: 40)))
        metrics.record(row(model: nil, status: 404, cost: 0, provider: ""))
        let text = lines(metrics)
        #expect(text.contains(#"tollgate_cost_usd_total{model="gpt-4o-mini"} 0.300000001"#))
        #expect(text.contains(#"tollgate_cost_usd_total{model="claude-haiku"} 0"#))
        #expect(text.contains(#"tollgate_requests_total{model="gpt-4o-mini",provider="openai",status="200",route=""} 1"#))
        #expect(text.contains(#"tollgate_requests_total{model="gpt-4o-mini",provider="openai",status="200",route="auto"} 2"#))
        #expect(text.contains(#"tollgate_requests_total{model="claude-haiku",provider="anthropic",status="502",route=""} 1"#))
        #expect(text.contains(#"tollgate_requests_total{model="",provider="",status="404",route=""} 1"#))
        #expect(text.contains(#"tollgate_tokens_total{model="gpt-4o-mini",type="input"} 20"#))
        #expect(text.contains(#"tollgate_tokens_total{model="gpt-4o-mini",type="cached_input"} 4"#))
        #expect(text.contains(#"tollgate_tokens_total{model="gpt-4o-mini",type="output"} 9"#))
        #expect(text.contains(#"tollgate_tokens_total{model="gpt-4o-mini",type="reasoning"} 2"#))
        #expect(text.contains(#"tollgate_tokens_total{model="claude-haiku",type="cache_write"} 40"#))
        // No per-user series unless asked for.
        #expect(!text.contains { $0.contains("alice") })
    }

    @Test("durations and times to first token are histograms in seconds, by model")
    func histograms() {
        let metrics = GatewayMetrics(modelNames: ["m"], perUser: false)
        metrics.record(row(model: "m", cost: 0, latencyMs: 40, ttftMs: 8))
        metrics.record(row(model: "m", cost: 0, latencyMs: 700, ttftMs: 300))
        let text = lines(metrics)
        #expect(text.contains(#"tollgate_request_duration_seconds_bucket{model="m",le="0.05"} 1"#))
        #expect(text.contains(#"tollgate_request_duration_seconds_bucket{model="m",le="1.0"} 2"#))
        #expect(text.contains(#"tollgate_request_duration_seconds_count{model="m"} 2"#))
        #expect(text.contains(#"tollgate_time_to_first_token_seconds_bucket{model="m",le="0.01"} 1"#))
        #expect(text.contains(#"tollgate_time_to_first_token_seconds_count{model="m"} 2"#))
    }

    @Test("per-user series only when the config asks for them")
    func perUser() {
        let metrics = GatewayMetrics(modelNames: ["m"], perUser: true)
        metrics.record(row(model: "m", cost: 1_500_000_000))
        metrics.record(row(model: "m", cost: 250_000_000))
        metrics.record(row(model: "m", cost: 7, user: "bob", team: "data"))
        let text = lines(metrics)
        #expect(text.contains(#"tollgate_user_requests_total{user="alice",team="platform"} 2"#))
        #expect(text.contains(#"tollgate_user_cost_usd_total{user="alice",team="platform"} 1.75"#))
        #expect(text.contains(#"tollgate_user_cost_usd_total{user="bob",team="data"} 0.000000007"#))
    }

    @Test("budget gauges for org and team budgets, user and key budgets only per user; exact money")
    func budgets() {
        func snapshot(_ id: String, _ scope: BudgetScope, name: String, limit: BudgetLimit, spent: Int64 = 0, reserved: Int64 = 0,
                      tokens: Int = 0) -> BudgetSnapshot {
            BudgetSnapshot(definition: BudgetDefinition(id: id, scope: scope, subjectID: id, subjectName: name, limit: limit, period: .month),
                           window: BudgetWindow(start: Date(), end: nil), spentUSD: Nanodollars(spent), spentTokens: tokens,
                           reservedUSD: Nanodollars(reserved), reservedTokens: 0, softThresholdCrossedAt: nil)
        }
        let budgets = [
            snapshot("b_team", .team, name: "plat\"form", limit: .usd(Nanodollars(5000 * Nanodollars.perDollar)), spent: 1_234_567_891, reserved: 9),
            snapshot("b_user", .user, name: "alice", limit: .usd(Nanodollars(1500 * Nanodollars.perDollar))),
            snapshot("b_tok", .org, name: "default", limit: .tokens(1_000_000), tokens: 4321),
        ]
        let shared = GatewayMetrics(modelNames: [], perUser: false)
        let text = lines(shared, .init(budgets: budgets))
        let labels = #"budget_id="b_team",scope="team",name="plat\"form",period="month""#
        #expect(text.contains("tollgate_budget_limit_usd{\(labels)} 5000"))
        #expect(text.contains("tollgate_budget_spent_usd{\(labels)} 1.234567891"))
        #expect(text.contains("tollgate_budget_reserved_usd{\(labels)} 0.000000009"))
        #expect(text.contains(#"tollgate_budget_spent_tokens{budget_id="b_tok",scope="org",name="default",period="month"} 4321"#))
        #expect(!text.contains { $0.contains("b_user") })
        let perUser = GatewayMetrics(modelNames: [], perUser: true)
        #expect(lines(perUser, .init(budgets: budgets)).contains(#"tollgate_budget_limit_usd{budget_id="b_user",scope="user",name="alice",period="month"} 1500"#))
    }

    @Test("deployments: breaker state, trips, in flight and pool connections; the ledger queue")
    func scrapeTime() {
        let metrics = GatewayMetrics(modelNames: ["m"], perUser: false)
        let state = GatewayMetrics.DeploymentState(id: "m#2", model: "m", provider: "openai-compatible", breaker: .open, breakerTrips: 3,
                                                   inFlight: 2, openConnections: 5, idleConnections: 4)
        let text = lines(metrics, .init(deployments: [state], ledgerQueue: 17, refusedUnauthenticated: 2))
        let labels = #"deployment="m#2",model="m",provider="openai-compatible""#
        #expect(text.contains("tollgate_deployment_breaker_state{\(labels)} 2"))
        #expect(text.contains("tollgate_deployment_breaker_trips_total{\(labels)} 3"))
        #expect(text.contains("tollgate_deployment_in_flight{\(labels)} 2"))
        #expect(text.contains("tollgate_upstream_connections{\(labels),state=\"open\"} 5"))
        #expect(text.contains("tollgate_upstream_connections{\(labels),state=\"idle\"} 4"))
        #expect(text.contains("tollgate_ledger_queue_rows 17"))
        #expect(text.contains("tollgate_refused_unauthenticated_total 2"))
    }

    @Test("label values are escaped as the text format requires")
    func escaping() {
        #expect(PrometheusText.escaped(#"a\b"c"# + "\nd") == #"a\\b\"c\nd"#)
        #expect(PrometheusText.escaped("plain") == "plain")
    }
}
