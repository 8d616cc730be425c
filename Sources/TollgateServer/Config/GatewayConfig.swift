import Foundation
import TollgateCore

/// Everything `tollgate.yaml` says, validated: a value of this type is a config the gateway can run.
/// `GatewayConfig()` is the config of a gateway started without a file.
public struct GatewayConfig: Hashable, Sendable {
    public var server: ServerSettings
    public var database: DatabaseSettings
    public var ledger: LedgerSettings
    /// Entries sharing a `name` are deployments of one model, balanced by `weight`.
    public var models: [ModelConfig]
    /// In file order.
    public var routes: [RouteConfig]
    public var budgets: [BudgetConfig]
    public var rateLimits: [RateLimitConfig]
    public var webhooks: WebhookConfig?
    public var forecasts: ForecastConfig
    public var metrics: MetricsConfig
    public var log: LogSettings
    /// `economics: { file: PATH }`: an economics file laid over the shipped `economics.json` (GPU offers,
    /// throughput points, hosted prices, operations); a relative path is from the working directory.
    public var economicsFile: String?
    /// `nil`: no traces, and nothing on the request path.
    public var tracing: TracingConfig?

    public init(server: ServerSettings = ServerSettings(), database: DatabaseSettings = DatabaseSettings(),
                ledger: LedgerSettings = LedgerSettings(), models: [ModelConfig] = [], routes: [RouteConfig] = [],
                budgets: [BudgetConfig] = [], rateLimits: [RateLimitConfig] = [], webhooks: WebhookConfig? = nil,
                forecasts: ForecastConfig = ForecastConfig(), metrics: MetricsConfig = MetricsConfig(),
                log: LogSettings = LogSettings(), tracing: TracingConfig? = nil) {
        self.tracing = tracing
        self.log = log
        self.metrics = metrics
        self.forecasts = forecasts
        self.server = server
        self.database = database
        self.ledger = ledger
        self.models = models
        self.routes = routes
        self.budgets = budgets
        self.rateLimits = rateLimits
        self.webhooks = webhooks
    }
}

// MARK: - server, database, ledger

extension GatewayConfig {
    public struct ServerSettings: Hashable, Sendable {
        public var host: String
        public var port: Int
        /// A request body above this is refused with 413.
        public var maxBodyBytes: Int
        public var timeouts: Timeouts
        /// How long a client may take to send a whole request head, however it trickles in (a client sending
        /// a header line a second must not hold a connection for ever).
        public var requestHeadTimeoutMs: Int

        public init(host: String = "127.0.0.1", port: Int = 4000, maxBodyBytes: Int = 33_554_432,
                    timeouts: Timeouts = Timeouts(), requestHeadTimeoutMs: Int = 10_000) {
            self.host = host
            self.port = port
            self.maxBodyBytes = maxBodyBytes
            self.timeouts = timeouts
            self.requestHeadTimeoutMs = requestHeadTimeoutMs
        }
    }

    /// What the gateway logs, and how: `text` lines for people, `json` (one object per line) for collectors.
    public struct LogSettings: Hashable, Sendable {
        public enum Format: String, Hashable, Sendable, CaseIterable { case text, json }
        public enum Level: String, Hashable, Sendable, CaseIterable { case trace, debug, info, notice, warning, error, critical }
        public var format: Format
        /// `nil`: `LOG_LEVEL` from the environment, else `info`.
        public var level: Level?

        public init(format: Format = .text, level: Level? = nil) {
            self.format = format
            self.level = level
        }
    }

    /// Upstream time-outs, in milliseconds.
    public struct Timeouts: Hashable, Sendable {
        public var connectMs: Int
        /// Until the first response byte: long, because a reasoning model may think for minutes.
        public var firstByteMs: Int
        /// Between two bytes once the response has started.
        public var idleMs: Int

        public init(connectMs: Int = 5000, firstByteMs: Int = 600_000, idleMs: Int = 120_000) {
            self.connectMs = connectMs
            self.firstByteMs = firstByteMs
            self.idleMs = idleMs
        }
    }

    /// Some of the upstream time-outs, in milliseconds: a model entry's own, over the server's.
    public struct TimeoutOverrides: Hashable, Sendable {
        public var connectMs: Int?
        public var firstByteMs: Int?
        public var idleMs: Int?

        public init(connectMs: Int? = nil, firstByteMs: Int? = nil, idleMs: Int? = nil) {
            self.connectMs = connectMs
            self.firstByteMs = firstByteMs
            self.idleMs = idleMs
        }

        /// `timeouts` with each value given here put in its place.
        public func applied(to timeouts: Timeouts) -> Timeouts {
            Timeouts(connectMs: connectMs ?? timeouts.connectMs, firstByteMs: firstByteMs ?? timeouts.firstByteMs,
                     idleMs: idleMs ?? timeouts.idleMs)
        }
    }

    public struct DatabaseSettings: Hashable, Sendable {
        /// `sqlite:PATH` or `postgres://…` (`postgresql://…`).
        public var url: String
        public var onLoss: LossPolicy
        /// PostgreSQL fleets: a budget lease the store does not hear about for this long returns to its
        /// budget (an instance that died gives its slices back after this).
        public var leaseTTLMs: Int

        public init(url: String = "sqlite:tollgate.db", onLoss: LossPolicy = .failClosed, leaseTTLMs: Int = 15_000) {
            self.url = url
            self.onLoss = onLoss
            self.leaseTTLMs = leaseTTLMs
        }
    }

    /// What the gateway does while its database is unreachable.
    public enum LossPolicy: String, Hashable, Sendable, CaseIterable {
        /// Refuse requests (503): no spend can go unrecorded.
        case failClosed = "fail_closed"
        /// Keep serving within the budget slices already leased to this instance.
        case serveLeased = "serve_leased"
    }

    public struct LedgerSettings: Hashable, Sendable {
        /// How often queued ledger rows are written: the most a crash can lose.
        public var flushMs: Int

        public init(flushMs: Int = 100) {
            self.flushMs = flushMs
        }
    }

    public struct ForecastConfig: Hashable, Sendable {
        /// Complete days of spend the rates come from.
        public var windowDays: Int
        /// How often every budget's forecast is checked against its limit (`budget.forecast_exceeds`).
        public var checkMs: Int

        public init(windowDays: Int = 14, checkMs: Int = 300_000) {
            self.windowDays = windowDays
            self.checkMs = checkMs
        }
    }
}

extension GatewayConfig {
    /// Prometheus metrics at `GET /metrics`.
    public struct MetricsConfig: Hashable, Sendable {
        /// Off: nothing is counted on the request path and `/metrics` answers 404.
        public var enabled: Bool
        /// Open to anyone who reaches the port; otherwise the admin key or a viewer key is needed.
        public var isPublic: Bool
        /// Adds per-user series (requests and cost by user and team, user and key budgets): as many series as
        /// people, so off unless asked for.
        public var perUser: Bool

        public init(enabled: Bool = true, isPublic: Bool = false, perUser: Bool = false) {
            self.enabled = enabled
            self.isPublic = isPublic
            self.perUser = perUser
        }
    }
}

// MARK: - tracing

extension GatewayConfig {
    /// Where and how spans of `/v1` requests are exported (OTLP over HTTP).
    public struct TracingConfig: Hashable, Sendable {
        public enum WireProtocol: String, Hashable, Sendable, CaseIterable {
            case protobuf = "http/protobuf"
            case json = "http/json"
        }

        /// The collector: a base URL (`http://127.0.0.1:4318`, spans go to its `/v1/traces`) or, with a
        /// path, the URL spans are posted to as it is.
        public var endpoint: String
        public var wireProtocol: WireProtocol
        /// Sent with every export (a collector's token, say).
        public var headers: [String: String]
        public var serviceName: String
        /// The share of new traces kept; a client's `traceparent` decides for its own trace (parent-based).
        public var sampleRatio: Double
        /// How long finished spans wait to be exported in one batch.
        public var flushMs: Int
        public var timeoutMs: Int
        /// Finished spans held while the collector is slow or away; beyond it they are dropped (and logged).
        public var maxQueue: Int

        public init(endpoint: String, wireProtocol: WireProtocol = .protobuf, headers: [String: String] = [:],
                    serviceName: String = "tollgate", sampleRatio: Double = 1, flushMs: Int = 5000, timeoutMs: Int = 10_000,
                    maxQueue: Int = 2048) {
            self.endpoint = endpoint
            self.wireProtocol = wireProtocol
            self.headers = headers
            self.serviceName = serviceName
            self.sampleRatio = sampleRatio
            self.flushMs = flushMs
            self.timeoutMs = timeoutMs
            self.maxQueue = maxQueue
        }

        /// Where spans are posted: the OTLP/HTTP path appended to a base URL, as the OpenTelemetry
        /// exporters do with `OTEL_EXPORTER_OTLP_ENDPOINT`.
        public var tracesURL: String {
            guard let components = URLComponents(string: endpoint), components.path.isEmpty || components.path == "/" else {
                return endpoint
            }
            var base = Substring(endpoint)
            while base.hasSuffix("/") { base = base.dropLast() }
            return base + "/v1/traces"
        }
    }
}

// MARK: - models

extension GatewayConfig {
    public struct ModelConfig: Hashable, Sendable {
        /// What clients ask for.
        public var name: String
        public var provider: Provider
        /// Without a trailing slash; `nil` only for the demo provider.
        public var baseURL: String?
        public var apiKey: String?
        /// The model name sent upstream.
        public var upstreamModel: String
        /// `nil`: the caller takes the price from the catalogue, and refuses the model if it has none.
        public var price: ModelPrice?
        public var tier: ModelTier?
        /// `nil`: not stated here (the catalogue may know).
        public var capabilities: Set<Capability>?
        public var contextWindow: Int?
        public var maxOutputTokens: Int?
        /// Share of this name's traffic among its deployments.
        public var weight: Int
        /// Where an exhausted `downgrade` budget sends this model's requests.
        public var downgradeTo: String?
        /// Sent when translating to Anthropic and the client sent no `anthropic-version`.
        public var anthropicVersion: String?
        /// This deployment's upstream time-outs, over `server.timeouts`.
        public var timeouts: TimeoutOverrides?
        /// Set exactly when `provider` is `.demo`.
        public var demo: DemoOptions?
        /// Where the entry was written (nil for models served without config), so that a refusal at start
        /// names the file and line too.
        public var place: ConfigPlace?

        /// `baseURL` defaults to the provider's own, `upstreamModel` to `name`, and a demo model gets
        /// default `demo` options.
        public init(name: String, provider: Provider, baseURL: String? = nil, apiKey: String? = nil,
                    upstreamModel: String? = nil, price: ModelPrice? = nil, tier: ModelTier? = nil,
                    capabilities: Set<Capability>? = nil, contextWindow: Int? = nil, maxOutputTokens: Int? = nil,
                    weight: Int = 1, downgradeTo: String? = nil, anthropicVersion: String? = nil,
                    timeouts: TimeoutOverrides? = nil, demo: DemoOptions? = nil) {
            self.name = name
            self.provider = provider
            self.baseURL = baseURL ?? provider.defaultBaseURL
            self.apiKey = apiKey
            self.upstreamModel = upstreamModel ?? name
            self.price = price
            self.tier = tier
            self.capabilities = capabilities
            self.contextWindow = contextWindow
            self.maxOutputTokens = maxOutputTokens
            self.weight = weight
            self.downgradeTo = downgradeTo
            self.anthropicVersion = anthropicVersion
            self.timeouts = timeouts
            self.demo = provider == .demo ? demo ?? DemoOptions() : nil
        }
    }

    /// A config entry's file, line and field path.
    public struct ConfigPlace: Hashable, Sendable {
        public var file: String
        public var line: Int?
        public var field: String

        public func failure(_ problem: String, subfield: String? = nil) -> ConfigError {
            ConfigError(file: file, line: line, field: subfield.map { field + "." + $0 } ?? field, problem: problem)
        }
    }

    public enum Provider: String, Hashable, Sendable, CaseIterable {
        case openai
        case anthropic
        /// Any host with an OpenAI-compatible endpoint (Gemini, vLLM, Ollama, …): it has no default URL.
        case openaiCompatible = "openai-compatible"
        /// The built-in simulated provider.
        case demo

        /// Each as its official SDK spells it: OpenAI's includes `/v1`, Anthropic's does not.
        public var defaultBaseURL: String? {
            switch self {
            case .openai: "https://api.openai.com/v1"
            case .anthropic: "https://api.anthropic.com"
            case .openaiCompatible, .demo: nil
            }
        }

        /// How the provider bills cache reads and writes a configured price leaves out.
        public var cacheBilling: CacheBilling {
            switch self {
            case .openai: .openAI
            case .anthropic: .anthropic
            case .openaiCompatible: .operatorPriced
            case .demo: .none
            }
        }
    }

    public enum Capability: String, Hashable, Sendable, CaseIterable {
        case tools, vision, json
    }

    /// How the simulated provider behaves.
    public struct DemoOptions: Hashable, Sendable {
        /// Before the first byte.
        public var latencyMs: Int
        /// Between two streamed chunks.
        public var streamChunkMs: Int
        public var streamChunks: Int

        public init(latencyMs: Int = 0, streamChunkMs: Int = 20, streamChunks: Int = 16) {
            self.latencyMs = latencyMs
            self.streamChunkMs = streamChunkMs
            self.streamChunks = streamChunks
        }
    }
}

// MARK: - routes

extension GatewayConfig {
    /// A name clients may ask for that resolves to one of several models.
    public struct RouteConfig: Hashable, Sendable {
        public var name: String
        public var strategy: RouteStrategy

        public init(name: String, strategy: RouteStrategy) {
            self.name = name
            self.strategy = strategy
        }

        /// Every model this route can send a request to: a key allowed the route may reach them all.
        public var models: [String] {
            switch strategy {
            case .learned(let strong, let weak, _, _, _): [strong, weak]
            case .cheapestCapable(let models), .fallback(let models), .loadbalance(let models, _): models
            }
        }
    }

    public enum RouteStrategy: Hashable, Sendable {
        /// A trained router picks `strong` or `weak` per request; `strongShare` (0…1) sets the share sent to
        /// `strong`, and `weightsPath` a router other than the one shipped.
        /// `calibrateAfter` decisions in, the threshold follows the scores of the latest 2,000 decisions so that
        /// `strongShare` holds on this gateway's traffic (0: the weights' stored thresholds, always).
        case learned(strong: String, weak: String, strongShare: Double?, weightsPath: String?, calibrateAfter: Int = 200)
        /// The cheapest of `models` that has what the request needs (tools, vision, JSON, context).
        case cheapestCapable(models: [String])
        /// `models` in order, the next one tried when one fails before the first byte.
        case fallback(models: [String])
        case loadbalance(models: [String], balance: BalanceMode)
    }

    public enum BalanceMode: String, Hashable, Sendable, CaseIterable {
        case weighted
        case leastInflight = "least_inflight"
    }
}

// MARK: - budgets, rate limits, webhooks

extension GatewayConfig {
    /// A budget declared in config, with the fields of `POST /admin/budgets`.
    public struct BudgetConfig: Hashable, Sendable {
        public var scope: BudgetScope
        /// The org, team or user name; a key budget names the key by its id.
        public var name: String
        /// Binds the budget to the model that serves a request.
        public var model: String?
        public var limit: BudgetLimit
        public var period: BudgetPeriod
        public var mode: BudgetMode
        public var onExhaust: ExhaustAction
        /// Share of the limit (0…1) whose crossing fires the `budget.soft_threshold` webhook.
        public var softThreshold: Double?
        public var timezone: TimeZone
        /// Extra room usable only by downgraded requests.
        public var grace: Nanodollars
        /// A salary budget's inputs, stored beside the limit they give.
        public var salary: Salary?

        public init(scope: BudgetScope, name: String, model: String? = nil, limit: BudgetLimit,
                    period: BudgetPeriod, mode: BudgetMode = .strict, onExhaust: ExhaustAction = .reject,
                    softThreshold: Double? = nil, timezone: TimeZone = TimeZone(identifier: "UTC")!,
                    grace: Nanodollars = .zero, salary: Salary? = nil) {
            self.scope = scope
            self.name = name
            self.model = model
            self.limit = limit
            self.period = period
            self.mode = mode
            self.onExhaust = onExhaust
            self.softThreshold = softThreshold
            self.timezone = timezone
            self.grace = grace
            self.salary = salary
        }
    }

    // The budget vocabulary is Core's: the config names the same things the budget book enforces.
    public typealias BudgetScope = TollgateCore.BudgetScope
    public typealias BudgetLimit = TollgateCore.BudgetLimit
    public typealias BudgetPeriod = TollgateCore.BudgetPeriod
    public typealias BudgetMode = TollgateCore.BudgetMode
    public typealias ExhaustAction = TollgateCore.ExhaustAction

    public struct Salary: Hashable, Sendable {
        public var annualSalary: Nanodollars
        /// 0…1
        public var share: Double

        public init(annualSalary: Nanodollars, share: Double) {
            self.annualSalary = annualSalary
            self.share = share
        }
    }

    /// Requests and tokens per sliding 60-second window.
    public struct RateLimitConfig: Hashable, Sendable {
        public var scope: RateLimitScope
        public var name: String
        public var rpm: Int?
        public var tpm: Int?

        public init(scope: RateLimitScope, name: String, rpm: Int? = nil, tpm: Int? = nil) {
            self.scope = scope
            self.name = name
            self.rpm = rpm
            self.tpm = tpm
        }
    }

    public enum RateLimitScope: String, Hashable, Sendable, CaseIterable {
        case team, user, key
    }

    public struct WebhookConfig: Hashable, Sendable {
        public var url: String
        /// Signs each body: `x-tollgate-signature: sha256=<HMAC>`.
        public var secret: String

        public init(url: String, secret: String) {
            self.url = url
            self.secret = secret
        }
    }
}
