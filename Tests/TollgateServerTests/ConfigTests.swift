import Foundation
import Testing
import TollgateCore
@testable import TollgateServer

private func parse(_ yaml: String, environment: [String: String] = [:]) throws(ConfigError) -> GatewayConfig {
    try GatewayConfig.parse(yaml: yaml, file: "tollgate.yaml", environment: environment)
}

/// The refusal's text, or `nil` when the config was accepted.
private func refusal(_ yaml: String, environment: [String: String] = [:]) -> String? {
    do {
        _ = try parse(yaml, environment: environment)
        return nil
    } catch {
        return error.description
    }
}

private func dollars(_ text: String) -> Nanodollars { Nanodollars(decimalString: text)! }

@Suite("tollgate.yaml")
struct ConfigTests {
    @Test("the skeleton in DESIGN.md parses, flow mappings with bare ${ENV} included")
    func designSkeleton() throws {
        let yaml = """
            server:   { host: 127.0.0.1, port: 4000, max_body_bytes: 33554432,
                        timeouts: { connect_ms: 5000, first_byte_ms: 600000, idle_ms: 120000 } }
            database: { url: "sqlite:tollgate.db", on_loss: fail_closed }   # or postgres://…
            ledger:   { flush_ms: 100 }
            models:                          # entries sharing a `name` are deployments of one model
              - { name: m, provider: openai, base_url: https://api.openai.com/v1, api_key: ${OPENAI_API_KEY},
                  price: { input_per_mtok: 0.15, cached_input_per_mtok: 0.075, output_per_mtok: 0.60 },
                  tier: small, capabilities: [tools, vision, json], context_window: 128000,
                  max_output_tokens: 16384, weight: 1 }
              - { name: a, provider: anthropic, api_key: ${ANTHROPIC_API_KEY}, tier: large,
                  anthropic_version: "2023-06-01" }
              - { name: b, provider: openai-compatible, base_url: "https://generativelanguage.googleapis.com/v1beta/openai/",
                  price: { input_per_mtok: 0.30, output_per_mtok: 2.50 }, tier: medium }
              - { name: c, provider: demo, price: free }
            routes:                          # fallback, loadbalance, cheapest-capable list `models`
              lb:   { strategy: loadbalance, models: [m], balance: weighted }          # or least_inflight
              safe: { strategy: fallback, models: [a, b] }
              cap:  { strategy: cheapest-capable, models: [a, b, c] }
              auto: { strategy: learned, strong: a, weak: m, strong_share: 0.3, calibrate_after: 500 }
            budgets:  [ { scope: team, name: platform, limit_usd: "5000", period: month } ]
            rate_limits: [ { scope: user, name: alice, rpm: 60, tpm: 200000 } ]
            webhooks: { url: "https://hooks.example.com/tollgate", secret: ${TOLLGATE_WEBHOOK_SECRET} }
            """
        let config = try parse(yaml, environment: [
            "OPENAI_API_KEY": "sk-openai", "ANTHROPIC_API_KEY": "sk-ant", "TOLLGATE_WEBHOOK_SECRET": "whsec",
        ])
        #expect(config.server == GatewayConfig.ServerSettings())
        #expect(config.database == GatewayConfig.DatabaseSettings())
        #expect(config.ledger == GatewayConfig.LedgerSettings())
        #expect(config.models.map(\.name) == ["m", "a", "b", "c"])
        #expect(config.models.map(\.provider) == [.openai, .anthropic, .openaiCompatible, .demo])

        let m = config.models[0]
        #expect(m.apiKey == "sk-openai")
        #expect(m.upstreamModel == "m")
        #expect(m.price == ModelPrice(rates: .init(input: dollars("0.15"), cachedInput: dollars("0.075"),
                                                   output: dollars("0.6"))))
        #expect(m.tier == .small)
        #expect(m.capabilities == [.tools, .vision, .json])
        #expect(m.contextWindow == 128_000)
        #expect(m.maxOutputTokens == 16_384)
        #expect(m.weight == 1)
        #expect(m.demo == nil)

        #expect(config.models[1].anthropicVersion == "2023-06-01")
        #expect(config.models[1].baseURL == "https://api.anthropic.com")
        #expect(config.models[1].price == nil)
        #expect(config.models[2].baseURL == "https://generativelanguage.googleapis.com/v1beta/openai")
        #expect(config.models[3].price == .free)

        #expect(config.routes == [
            .init(name: "lb", strategy: .loadbalance(models: ["m"], balance: .weighted)),
            .init(name: "safe", strategy: .fallback(models: ["a", "b"])),
            .init(name: "cap", strategy: .cheapestCapable(models: ["a", "b", "c"])),
            .init(name: "auto", strategy: .learned(strong: "a", weak: "m", strongShare: 0.3, weightsPath: nil, calibrateAfter: 500)),
        ])
        #expect(config.routes[3].models == ["a", "m"])
        #expect(config.budgets == [
            .init(scope: .team, name: "platform", limit: .usd(dollars("5000")), period: .month),
        ])
        #expect(config.rateLimits == [.init(scope: .user, name: "alice", rpm: 60, tpm: 200_000)])
        #expect(config.webhooks == .init(url: "https://hooks.example.com/tollgate", secret: "whsec"))
    }

    @Test("an empty file is the config of a gateway started without one")
    func emptyFile() throws {
        #expect(try parse("") == GatewayConfig())
        #expect(try parse("# nothing yet\n") == GatewayConfig())
    }

    @Test("defaults fill every value left out")
    func defaults() throws {
        let config = try parse("""
            server:
              port: 8080
              timeouts:
                idle_ms: 1000
            database:
              url: postgres://tollgate@db/tollgate
            models:
              - name: gpt-4o-mini
                provider: openai
              - name: demo-small
                provider: demo
                demo:
                  stream_chunks: 4
            """)
        #expect(config.server.host == "127.0.0.1")
        #expect(config.server.port == 8080)
        #expect(config.server.maxBodyBytes == 33_554_432)
        #expect(config.server.timeouts == .init(connectMs: 5000, firstByteMs: 600_000, idleMs: 1000))
        #expect(config.database.url == "postgres://tollgate@db/tollgate")
        #expect(config.database.onLoss == .failClosed)
        #expect(config.ledger.flushMs == 100)

        let openai = config.models[0]
        #expect(openai.baseURL == "https://api.openai.com/v1")
        #expect(openai.upstreamModel == "gpt-4o-mini")
        #expect(openai.weight == 1)
        #expect(openai.apiKey == nil && openai.price == nil && openai.tier == nil && openai.capabilities == nil)

        let demo = config.models[1]
        #expect(demo.baseURL == nil)
        #expect(demo.demo == .init(latencyMs: 0, streamChunkMs: 20, streamChunks: 4))
        #expect(GatewayConfig.ModelConfig(name: "d", provider: .demo).demo == .init())
    }

    @Test("a budget takes the defaults of POST /admin/budgets")
    func budgetDefaults() throws {
        let config = try parse("""
            budgets:
              - { scope: user, name: alice, limit_usd: 1500, period: month, soft_threshold: 0.8,
                  timezone: Europe/Paris, on_exhaust: downgrade, grace_usd: "2.5",
                  annual_salary_usd: 180000, salary_share: 0.1 }
              - { scope: key, name: key_0123abcd, limit_tokens: 1000000, period: total, mode: estimate }
            """)
        let alice = config.budgets[0]
        #expect(alice.limit == .usd(dollars("1500")))
        #expect(alice.mode == .strict)
        #expect(alice.onExhaust == .downgrade)
        #expect(alice.softThreshold == 0.8)
        #expect(alice.timezone.identifier == "Europe/Paris")
        #expect(alice.grace == dollars("2.5"))
        #expect(alice.salary == .init(annualSalary: dollars("180000"), share: 0.1))
        let key = config.budgets[1]
        #expect(key.limit == .tokens(1_000_000))
        #expect(key.mode == .estimate && key.onExhaust == .reject && key.grace == .zero && key.salary == nil)
        #expect(key.timezone == TimeZone(identifier: "UTC"))
    }

    @Test("${ENV} and ${ENV:-default} are replaced in values, numbers included")
    func interpolation() throws {
        let yaml = """
            server:
              host: ${HOST:-0.0.0.0}
              port: ${PORT:-4000}
            models:
              - name: m
                provider: openai-compatible
                base_url: http://${LLM_HOST}:8000/v1
                api_key: "${LLM_KEY:-}"
            """
        let set = try parse(yaml, environment: ["HOST": "10.0.0.1", "PORT": "4100", "LLM_HOST": "gpu1"])
        #expect(set.server.host == "10.0.0.1")
        #expect(set.server.port == 4100)
        #expect(set.models[0].baseURL == "http://gpu1:8000/v1")
        #expect(set.models[0].apiKey == nil)

        let defaulted = try parse(yaml, environment: ["PORT": "", "LLM_HOST": "gpu2", "LLM_KEY": "secret"])
        #expect(defaulted.server.host == "0.0.0.0")
        #expect(defaulted.server.port == 4000)
        #expect(defaulted.models[0].apiKey == "secret")

        #expect(refusal(yaml) == "tollgate.yaml:7: models[0].base_url: environment variable LLM_HOST is not set")
    }

    @Test("a price is read exactly from its text, never through a binary float")
    func exactPrices() throws {
        let config = try parse("""
            models:
              - name: m
                provider: anthropic
                price:
                  input_per_mtok: 3
                  cached_input_per_mtok: 0.075
                  cache_write_per_mtok: "3.75"
                  output_per_mtok: 15.000000001
                  long_context: { threshold_tokens: 200000, input_per_mtok: 6, output_per_mtok: 22.5 }
              - { name: local, provider: openai-compatible, base_url: "http://127.0.0.1:11434/v1", price: free }
            """)
        let price = try #require(config.models[0].price)
        #expect(price.rates.input == Nanodollars(3_000_000_000))
        #expect(price.rates.cachedInput == Nanodollars(75_000_000))
        #expect(price.rates.cacheWrite == Nanodollars(3_750_000_000))
        #expect(price.rates.output == Nanodollars(15_000_000_001))
        #expect(price.longContext == .init(thresholdTokens: 200_000,
                                           rates: .init(input: dollars("6"), output: dollars("22.5"))))
        #expect(!price.isFree)
        #expect(config.models[1].price == .free)
    }

    @Test("load names the file it read in every refusal")
    func loadFromFile() throws {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("tollgate-config-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("tollgate.yaml").path
        try "metrics: { public: true, per_user: true }\n".write(toFile: path, atomically: true, encoding: .utf8)
        let metrics = try GatewayConfig.load(path: path, environment: [:]).metrics
        #expect(metrics.enabled && metrics.isPublic && metrics.perUser)
        #expect(GatewayConfig().metrics == GatewayConfig.MetricsConfig(enabled: true, isPublic: false, perUser: false))
        try "metrics: { enabled: false }\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(try GatewayConfig.load(path: path, environment: [:]).metrics.enabled == false)

        try "ledger:\n  flush_ms: 250\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(try GatewayConfig.load(path: path, environment: [:]).ledger.flushMs == 250)

        try "ledger:\n  flush_ms: soon\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: ConfigError(file: path, line: 2, field: "ledger.flush_ms",
                                    problem: "expected an integer, got \"soon\"")) {
            try GatewayConfig.load(path: path, environment: [:])
        }
        let missing = directory.appendingPathComponent("absent.yaml").path
        let error = #expect(throws: ConfigError.self) { try GatewayConfig.load(path: missing, environment: [:]) }
        #expect(error?.file == missing && error?.line == nil)
    }

    @Test("every refusal names file, line, field and what was wrong", arguments: [
        // unknown keys
        ("modles: []", #"tollgate.yaml:1: modles: unknown key (expected one of server, database, ledger, models, routes, budgets, rate_limits, webhooks, forecasts, metrics, log, economics, tracing)"#),
        ("metrics: { public: true, labels: [user] }", #"tollgate.yaml:1: metrics.labels: unknown key (expected one of enabled, public, per_user)"#),
        ("metrics:\n  public: yes", #"tollgate.yaml:2: metrics.public: expected true or false, got "yes""#),
        ("economics: { path: x.json }", #"tollgate.yaml:1: economics.path: unknown key (expected one of file)"#),
        ("tracing:\n  endpoint: http://127.0.0.1:4318\n  sample_rate: 0.5", #"tollgate.yaml:3: tracing.sample_rate: unknown key (expected one of endpoint, protocol, headers, service_name, sample_ratio, flush_ms, timeout_ms, max_queue)"#),
        ("tracing: { service_name: tollgate }", #"tollgate.yaml:1: tracing: missing required key "endpoint""#),
        ("tracing: { endpoint: 127.0.0.1:4318 }", #"tollgate.yaml:1: tracing.endpoint: expected an http or https URL with a host, got "127.0.0.1:4318""#),
        ("tracing: { endpoint: http://c:4318, sample_ratio: 1.5 }", #"tollgate.yaml:1: tracing.sample_ratio: expected a number from 0 to 1, got "1.5""#),
        ("tracing: { endpoint: http://c:4318, protocol: grpc }", #"tollgate.yaml:1: tracing.protocol: expected one of http/protobuf, http/json, got "grpc""#),
        ("tracing:\n  endpoint: http://c:4318\n  headers: { \"bad name\": x }", #"tollgate.yaml:3: tracing.headers.bad name: not a valid header name"#),
        ("forecasts: { window_days: 14, every_ms: 1000 }", #"tollgate.yaml:1: forecasts.every_ms: unknown key (expected one of window_days, check_ms)"#),
        ("forecasts: { window_days: 2 }", #"tollgate.yaml:1: forecasts.window_days: expected an integer from 3 to 366, got "2""#),
        ("server:\n  host: 0.0.0.0\n  prot: 4001", #"tollgate.yaml:3: server.prot: unknown key (expected one of host, port, max_body_bytes, timeouts, request_head_timeout_ms)"#),
        ("models:\n  - name: m\n    provider: demo\n    colour: red", #"tollgate.yaml:4: models[0].colour: unknown key (expected one of name, provider, base_url, api_key, upstream_model, price, tier, capabilities, context_window, max_output_tokens, weight, downgrade_to, anthropic_version, timeouts, demo)"#),
        ("models:\n  - name: m\n    provider: demo\n    price: { input_per_mtok: 1, output_per_mtok: 2, batch: 1 }", #"tollgate.yaml:4: models[0].price.batch: unknown key (expected one of input_per_mtok, cached_input_per_mtok, cache_write_per_mtok, cache_write_1h_per_mtok, output_per_mtok, long_context)"#),
        // wrong types
        ("server:\n  port: abc", #"tollgate.yaml:2: server.port: expected an integer, got "abc""#),
        ("server:\n  port: 4000.5", #"tollgate.yaml:2: server.port: expected an integer, got "4000.5""#),
        ("models: {name: m}", #"tollgate.yaml:1: models: expected a list, got a mapping"#),
        ("server: [1, 2]", #"tollgate.yaml:1: server: expected a mapping, got a list"#),
        ("- a\n- b", #"tollgate.yaml:1: expected a mapping, got a list"#),
        ("models:\n  - { name: m, provider: demo, capabilities: tools }", #"tollgate.yaml:2: models[0].capabilities: expected a list, got "tools""#),
        ("models:\n  - { name: [m], provider: demo }", #"tollgate.yaml:2: models[0].name: expected a string, got a list"#),
        // bad enum values
        ("models:\n  - name: m\n    provider: gemini", #"tollgate.yaml:3: models[0].provider: expected one of openai, anthropic, openai-compatible, demo, got "gemini""#),
        ("models:\n  - { name: m, provider: demo, tier: huge }", #"tollgate.yaml:2: models[0].tier: expected one of small, medium, large, got "huge""#),
        ("models:\n  - { name: m, provider: demo, capabilities: [tools, audio] }", #"tollgate.yaml:2: models[0].capabilities[1]: expected one of tools, vision, json, got "audio""#),
        ("database: { on_loss: carry_on }", #"tollgate.yaml:1: database.on_loss: expected one of fail_closed, serve_leased, got "carry_on""#),
        ("database: { url: mysql://db }", #"tollgate.yaml:1: database.url: expected sqlite:PATH or postgres://…, got "mysql://db""#),
        ("rate_limits:\n  - { scope: org, name: acme, rpm: 10 }", #"tollgate.yaml:2: rate_limits[0].scope: expected one of team, user, key, got "org""#),
        // negative and out-of-range numbers
        ("ledger: { flush_ms: -5 }", #"tollgate.yaml:1: ledger.flush_ms: expected an integer from 10 to 60000, got "-5""#),
        ("ledger:\n  flush_ms: 0", #"tollgate.yaml:2: ledger.flush_ms: expected an integer from 10 to 60000, got "0""#),
        ("server: { request_head_timeout_ms: 5 }", #"tollgate.yaml:1: server.request_head_timeout_ms: expected an integer from 100 to 3600000, got "5""#),
        ("log: { format: xml }", #"tollgate.yaml:1: log.format: expected one of text, json, got "xml""#),
        ("log: { level: loud }", #"tollgate.yaml:1: log.level: expected one of trace, debug, info, notice, warning, error, critical, got "loud""#),
        ("server:\n  port: 70000", #"tollgate.yaml:2: server.port: expected an integer from 0 to 65535, got "70000""#),
        ("models:\n  - { name: m, provider: demo, weight: -1 }", #"tollgate.yaml:2: models[0].weight: expected a non-negative integer, got "-1""#),
        ("models:\n  - { name: m, provider: demo, context_window: 0 }", #"tollgate.yaml:2: models[0].context_window: expected a positive integer, got "0""#),
        ("models:\n  - name: m\n    provider: demo\n    price: { input_per_mtok: -1, output_per_mtok: 2 }", #"tollgate.yaml:4: models[0].price.input_per_mtok: expected a non-negative amount, got "-1""#),
        ("routes:\n  auto: { strategy: learned, strong: a, weak: b, strong_share: 1.5 }\nmodels: [{name: a, provider: demo}, {name: b, provider: demo}]", #"tollgate.yaml:2: routes.auto.strong_share: expected a number from 0 to 1, got "1.5""#),
        ("routes:\n  auto: { strategy: learned, strong: a, weak: b, calibrate_after: -1 }\nmodels: [{name: a, provider: demo}, {name: b, provider: demo}]", #"tollgate.yaml:2: routes.auto.calibrate_after: expected an integer from 0 to 1000000, got "-1""#),
        // malformed URLs
        ("models:\n  - { name: m, provider: openai, base_url: ftp://example.com }", #"tollgate.yaml:2: models[0].base_url: expected an http or https URL with a host, got "ftp://example.com""#),
        ("models:\n  - { name: m, provider: openai, base_url: \"https://\" }", #"tollgate.yaml:2: models[0].base_url: expected an http or https URL with a host, got "https://""#),
        ("models:\n  - { name: m, provider: openai, base_url: api.openai.com }", #"tollgate.yaml:2: models[0].base_url: expected an http or https URL with a host, got "api.openai.com""#),
        ("webhooks: { url: not a url, secret: s }", #"tollgate.yaml:1: webhooks.url: expected an http or https URL with a host, got "not a url""#),
        // duplicates
        ("models:\n  - { name: a, provider: demo }\nroutes:\n  safe: { strategy: fallback, models: [a] }\n  safe: { strategy: fallback, models: [a] }", #"tollgate.yaml:5: routes.safe: given twice (first on line 4)"#),
        ("models:\n  - name: a\n    provider: demo\n    name: b", #"tollgate.yaml:4: models[0].name: given twice (first on line 2)"#),
        ("models:\n  - { name: m, provider: openai, api_key: k, weight: 2 }\n  - { name: x, provider: demo }\n  - { name: m, provider: openai, api_key: k }", #"tollgate.yaml:4: models[2]: the same deployment as models[0] (same provider, base_url, api_key and upstream_model): give it its own base_url or api_key, or raise the first one's weight"#),
        // references
        ("models:\n  - { name: a, provider: demo }\nroutes:\n  safe: { strategy: fallback, models: [a, b] }", #"tollgate.yaml:4: routes.safe.models[1]: unknown model "b""#),
        ("models:\n  - { name: a, provider: demo }\nroutes:\n  auto: { strategy: learned, strong: gpt-5, weak: a }", #"tollgate.yaml:4: routes.auto.strong: unknown model "gpt-5""#),
        ("models:\n  - { name: a, provider: demo }\nroutes:\n  a: { strategy: fallback, models: [a] }", #"tollgate.yaml:4: routes.a: a route cannot have the name of a model"#),
        ("models:\n  - { name: a, provider: demo }\nroutes:\n  r: { strategy: fallback, models: [] }", #"tollgate.yaml:4: routes.r.models: expected at least one model"#),
        ("models:\n  - { name: a, provider: demo }\nroutes:\n  r: { strategy: learned, weak: a }", #"tollgate.yaml:4: routes.r: missing required key "strong""#),
        ("models:\n  - { name: a, provider: demo }\nroutes:\n  r: { strategy: fallback, models: [a], balance: weighted }", #"tollgate.yaml:4: routes.r.balance: does not apply to strategy fallback"#),
        ("models:\n  - { name: a, provider: demo, downgrade_to: tiny }", #"tollgate.yaml:2: models[0].downgrade_to: unknown model "tiny""#),
        ("budgets:\n  - { scope: team, name: t, model: gpt-9, limit_usd: 5, period: day }", #"tollgate.yaml:2: budgets[0].model: unknown model "gpt-9""#),
        // required keys and per-provider rules
        ("models:\n  - provider: openai", #"tollgate.yaml:2: models[0]: missing required key "name""#),
        ("models:\n  - name: m\n    base_url: https://api.openai.com/v1", #"tollgate.yaml:2: models[0]: missing required key "provider""#),
        ("models:\n  - { name: \"\", provider: demo }", #"tollgate.yaml:2: models[0].name: expected a non-empty string, got """#),
        ("models:\n  - { name: m, provider: openai-compatible }", #"tollgate.yaml:2: models[0]: missing required key "base_url" (provider openai-compatible has no default)"#),
        ("models:\n  - { name: m, provider: demo, base_url: http://localhost }", #"tollgate.yaml:2: models[0].base_url: does not apply to provider demo"#),
        ("models:\n  - { name: m, provider: openai, demo: { latency_ms: 5 } }", #"tollgate.yaml:2: models[0].demo: does not apply to provider openai"#),
        ("models:\n  - { name: m, provider: demo, timeouts: { first_byte_ms: 5 } }", #"tollgate.yaml:2: models[0].timeouts: does not apply to provider demo"#),
        ("models:\n  - name: m\n    provider: openai\n    timeouts:\n      first_byte: 5", #"tollgate.yaml:5: models[0].timeouts.first_byte: unknown key (expected one of connect_ms, first_byte_ms, idle_ms)"#),
        ("models:\n  - { name: m, provider: openai, timeouts: { idle_ms: soon } }", #"tollgate.yaml:2: models[0].timeouts.idle_ms: expected an integer, got "soon""#),
        ("models:\n  - { name: m, provider: demo, demo: { stream_chunks: 0 } }", #"tollgate.yaml:2: models[0].demo.stream_chunks: expected a positive integer, got "0""#),
        // prices
        ("models:\n  - name: m\n    provider: openai\n    price:\n      input_per_mtok: abc\n      output_per_mtok: 1", #"tollgate.yaml:5: models[0].price.input_per_mtok: expected a decimal number, got "abc""#),
        ("models:\n  - name: m\n    provider: openai\n    price: { input_per_mtok: 1.5e-7, output_per_mtok: 1 }", #"tollgate.yaml:4: models[0].price.input_per_mtok: expected a decimal number, got "1.5e-7""#),
        ("models:\n  - name: m\n    provider: openai\n    price: { input_per_mtok: 0.0000000001, output_per_mtok: 1 }", #"tollgate.yaml:4: models[0].price.input_per_mtok: expected at most 9 decimal places, got "0.0000000001""#),
        ("models:\n  - name: m\n    provider: openai\n    price: { input_per_mtok: 1 }", #"tollgate.yaml:4: models[0].price: missing required key "output_per_mtok""#),
        ("models:\n  - { name: m, provider: openai, price: cheap }", #"tollgate.yaml:2: models[0].price: expected "free" or a mapping of prices, got "cheap""#),
        ("models:\n  - name: m\n    provider: openai\n    price:\n      input_per_mtok: 1\n      output_per_mtok: 2\n      long_context: { input_per_mtok: 2, output_per_mtok: 4 }", #"tollgate.yaml:7: models[0].price.long_context: missing required key "threshold_tokens""#),
        // budgets, rate limits, webhooks
        ("budgets:\n  - { scope: team, name: t, period: month }", #"tollgate.yaml:2: budgets[0]: missing required key "limit_usd" or "limit_tokens""#),
        ("budgets:\n  - { scope: team, name: t, limit_usd: 5, limit_tokens: 5, period: month }", #"tollgate.yaml:2: budgets[0].limit_tokens: cannot be given with limit_usd"#),
        ("budgets:\n  - { scope: team, name: t, limit_usd: 5 }", #"tollgate.yaml:2: budgets[0]: missing required key "period""#),
        ("budgets:\n  - { scope: team, name: t, limit_usd: 5, period: fortnight }", #"tollgate.yaml:2: budgets[0].period: expected one of day, week, month, total, got "fortnight""#),
        ("budgets:\n  - { scope: team, name: t, limit_usd: 5, period: day, timezone: Mars/Olympus }", #"tollgate.yaml:2: budgets[0].timezone: expected a time zone such as Europe/Paris, got "Mars/Olympus""#),
        ("budgets:\n  - { scope: team, name: t, limit_usd: 5, period: day, salary_share: 0.1 }", #"tollgate.yaml:2: budgets[0].salary_share: needs annual_salary_usd too"#),
        ("budgets:\n  - { scope: team, name: t, limit_tokens: 5, period: day, grace_usd: 1 }", #"tollgate.yaml:2: budgets[0].grace_usd: does not apply to a token budget"#),
        ("rate_limits:\n  - { scope: user, name: alice }", #"tollgate.yaml:2: rate_limits[0]: missing required key "rpm" or "tpm""#),
        ("webhooks: { url: \"https://example.com/hook\" }", #"tollgate.yaml:1: webhooks: missing required key "secret""#),
        // environment and YAML itself
        ("models:\n  - name: m\n    provider: openai\n    api_key: ${OPENAI_API_KEY}", #"tollgate.yaml:4: models[0].api_key: environment variable OPENAI_API_KEY is not set"#),
        ("server:\n  host: \"${HOST\"", #"tollgate.yaml:2: server.host: unterminated ${ in "${HOST""#),
        ("server:\n  host: \"${1HOST}\"", #"tollgate.yaml:2: server.host: expected ${NAME} or ${NAME:-default}, got "${1HOST}""#),
        ("server:\n  host: [a\n  port: 1", #"tollgate.yaml:3: invalid YAML: did not find expected ',' or ']'"#),
    ])
    func refusals(yaml: String, expected: String) {
        #expect(refusal(yaml) == expected)
    }

    @Test("a model's timeouts override any subset of server.timeouts for that deployment")
    func modelTimeouts() throws {
        let config = try parse("""
            server: { timeouts: { first_byte_ms: 600000 } }
            models:
              - { name: slow, provider: openai, timeouts: { connect_ms: 1000, first_byte_ms: 900000, idle_ms: 300000 } }
              - name: quick
                provider: openai
                timeouts:
                  first_byte_ms: 2000
              - { name: plain, provider: openai }
            """)
        #expect(config.models.map(\.timeouts) == [
            .init(connectMs: 1000, firstByteMs: 900_000, idleMs: 300_000), .init(firstByteMs: 2000), nil,
        ])
        #expect(config.models[1].timeouts?.applied(to: config.server.timeouts)
                == GatewayConfig.Timeouts(connectMs: 5000, firstByteMs: 2000, idleMs: 120_000))
    }

    @Test("a null value is the same as leaving the key out")
    func nullValues() throws {
        let config = try parse("""
            server:
            database: ~
            models:
              - { name: m, provider: openai, api_key: null, tier: }
            """)
        #expect(config.server == GatewayConfig.ServerSettings())
        #expect(config.models[0].apiKey == nil && config.models[0].tier == nil)
    }

    @Test("entries sharing a name are deployments of one model")
    func deploymentsAndAnchors() throws {
        let config = try parse("""
            models:
              - { name: gpt-4o, provider: openai, price: { input_per_mtok: 2.5, output_per_mtok: 10 }, weight: 3 }
              - { name: gpt-4o, provider: openai-compatible, base_url: "https://azure.example.com/openai/v1",
                  price: { input_per_mtok: 2.5, output_per_mtok: 10 } }
            routes:
              lb: { strategy: loadbalance, models: [gpt-4o], balance: least_inflight }
            """)
        #expect(config.models.map(\.name) == ["gpt-4o", "gpt-4o"])
        #expect(config.models.map(\.weight) == [3, 1])
        let accounts = try parse("""
            models:
              - { name: m, provider: openai, api_key: sk-team-a }
              - { name: m, provider: openai, api_key: sk-team-b }
              - { name: m, provider: openai, api_key: sk-team-a, upstream_model: gpt-4o-2024-08-06 }
            """)
        #expect(accounts.models.map(\.apiKey) == ["sk-team-a", "sk-team-b", "sk-team-a"])
        #expect(config.routes[0].strategy == .loadbalance(models: ["gpt-4o"], balance: .leastInflight))
    }
}
