import TollgateCore

/// Where an upstream lives: one keep-alive pool per target and event loop.
struct UpstreamTarget: Hashable, Sendable {
    var tls: Bool
    var host: String
    var port: Int
}

/// How the built-in simulated model behaves.
struct DemoSettings: Sendable, Equatable {
    var latencyMs: Int = 0
    var streamChunkMs: Int = 20
    var streamChunks: Int = 16
}

/// The two wire formats the gateway speaks, on either side.
enum WireFormat: Sendable, Equatable {
    case openAI
    case anthropic
}

/// One model a client can ask for, and how to reach it.
struct Deployment: Sendable {
    enum Endpoint: Sendable {
        /// An OpenAI-compatible HTTP server; `basePath` is the base URL's path (`/v1`).
        case http(UpstreamTarget, basePath: String, hostHeader: String)
        case demo(DemoSettings)
    }

    var name: String
    var provider: String
    var upstreamModel: String
    var apiKey: String?
    var price: ModelPrice
    var endpoint: Endpoint
    var maxOutputTokens: Int?
    var tier: ModelTier? = nil
    /// Where an exhausted `downgrade` budget sends this model's requests (else the cheapest model one
    /// tier lower).
    var downgradeTo: String? = nil
    /// The format its upstream speaks; the demo model speaks OpenAI's.
    var wire: WireFormat = .openAI
    /// Sent when translating, or when an Anthropic client sent none.
    var anthropicVersion: String = "2023-06-01"
    /// What the model can do (`tools`, `vision`, `json`), for `cheapest-capable` routes.
    var capabilities: Set<String> = []
    var contextWindow: Int? = nil
    /// Its share in a weighted `loadbalance` route.
    var weight: Int = 1

    var isSimulated: Bool {
        if case .demo = endpoint { return true }
        return false
    }
}

/// The models this gateway serves and the routes over them, by the names clients ask for.
struct ModelRegistry: Sendable {
    let deployments: [String: Deployment]
    let routes: [String: GatewayConfig.RouteConfig]
    /// The trained router of each `learned` route.
    let routers: [String: LearnedRouterWeights]
    /// Every name a client may ask for: models and routes.
    let names: [String]

    init(_ deployments: [Deployment], routes: [GatewayConfig.RouteConfig] = [], routers: [String: LearnedRouterWeights] = [:]) {
        self.routers = routers
        self.deployments = Dictionary(deployments.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        self.routes = Dictionary(routes.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        self.names = (Array(self.deployments.keys) + Array(self.routes.keys)).sorted()
    }

    subscript(name: String) -> Deployment? { deployments[name] }

    /// Where a budget downgrade sends `deployment`'s requests: its `downgrade_to`, else the cheapest model
    /// one tier lower that the key may use (priced by a typical request: 1,000 tokens in, 1,000 out).
    func downgradeTarget(for deployment: Deployment, allowed: (String) -> Bool) -> Deployment? {
        if let name = deployment.downgradeTo { return self[name].flatMap { allowed($0.name) ? $0 : nil } }
        guard let tier = deployment.tier, let lower = ModelTier.allCases.last(where: { $0 < tier }) else { return nil }
        let typical = Usage(inputTokens: 1_000, outputTokens: 1_000)
        return deployments.values
            .filter { $0.tier == lower && allowed($0.name) }
            .min { ($0.price.cost(of: typical), $0.name) < ($1.price.cost(of: typical), $1.name) }
    }
}
