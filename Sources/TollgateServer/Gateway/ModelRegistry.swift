import NIOCore
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

/// Upstream time-outs of one deployment: the server's, each overridden by the model entry's own.
struct UpstreamTimeouts: Sendable, Equatable {
    var connect: TimeAmount
    var firstByte: TimeAmount
    var idle: TimeAmount

    init(_ milliseconds: GatewayConfig.Timeouts) {
        connect = .milliseconds(Int64(milliseconds.connectMs))
        firstByte = .milliseconds(Int64(milliseconds.firstByteMs))
        idle = .milliseconds(Int64(milliseconds.idleMs))
    }
}

/// One deployment of a model a client can ask for, and how to reach it. Entries sharing a `name` are
/// deployments of one model (two provider accounts, two vLLM servers): each has its own `id`, circuit
/// breaker and in-flight count.
///
/// A class, immutable once configured: an exchange, its fallbacks and the route plan refer to it many times
/// per request, and a struct of a dozen strings and sets cost a dozen reference counts at every copy.
final class Deployment: Sendable {
    enum Endpoint: Sendable {
        /// An OpenAI-compatible HTTP server; `basePath` is the base URL's path (`/v1`).
        case http(UpstreamTarget, basePath: String, hostHeader: String)
        case demo(DemoSettings)
    }

    /// The model's name when it has one deployment, else `name#1`, `name#2`, … in config order.
    let id: String
    let name: String
    let provider: String
    let upstreamModel: String
    let apiKey: String?
    let price: ModelPrice
    let endpoint: Endpoint
    let maxOutputTokens: Int?
    let tier: ModelTier?
    /// Where an exhausted `downgrade` budget sends this model's requests (else the cheapest model one
    /// tier lower).
    let downgradeTo: String?
    /// The format its upstream speaks; the demo model speaks OpenAI's.
    let wire: WireFormat
    /// Sent when translating, or when an Anthropic client sent none.
    let anthropicVersion: String
    /// What the model can do (`tools`, `vision`, `json`), for `cheapest-capable` routes.
    let capabilities: Set<String>
    let contextWindow: Int?
    /// Its share of its model's traffic, and in a weighted `loadbalance` route.
    let weight: Int
    let timeouts: UpstreamTimeouts

    init(id: String, name: String, provider: String, upstreamModel: String, apiKey: String?, price: ModelPrice,
         endpoint: Endpoint, maxOutputTokens: Int?, tier: ModelTier? = nil, downgradeTo: String? = nil,
         wire: WireFormat = .openAI, anthropicVersion: String = "2023-06-01", capabilities: Set<String> = [],
         contextWindow: Int? = nil, weight: Int = 1, timeouts: UpstreamTimeouts = UpstreamTimeouts(GatewayConfig.Timeouts())) {
        self.id = id; self.name = name; self.provider = provider; self.upstreamModel = upstreamModel
        self.apiKey = apiKey; self.price = price; self.endpoint = endpoint; self.maxOutputTokens = maxOutputTokens
        self.tier = tier; self.downgradeTo = downgradeTo; self.wire = wire; self.anthropicVersion = anthropicVersion
        self.capabilities = capabilities; self.contextWindow = contextWindow; self.weight = weight; self.timeouts = timeouts
    }

    /// The same deployment under another id.
    func with(id: String) -> Deployment {
        Deployment(id: id, name: name, provider: provider, upstreamModel: upstreamModel, apiKey: apiKey, price: price,
                   endpoint: endpoint, maxOutputTokens: maxOutputTokens, tier: tier, downgradeTo: downgradeTo, wire: wire,
                   anthropicVersion: anthropicVersion, capabilities: capabilities, contextWindow: contextWindow,
                   weight: weight, timeouts: timeouts)
    }

    var isSimulated: Bool {
        if case .demo = endpoint { return true }
        return false
    }
}

/// The models this gateway serves and the routes over them, by the names clients ask for.
struct ModelRegistry: Sendable {
    /// Every deployment, in config order.
    let all: [Deployment]
    /// Each model's deployments, in config order.
    let deployments: [String: [Deployment]]
    let routes: [String: GatewayConfig.RouteConfig]
    /// The trained router of each `learned` route.
    let routers: [String: LearnedRouterWeights]
    /// Every name a client may ask for: models and routes.
    let names: [String]

    init(_ deployments: [Deployment], routes: [GatewayConfig.RouteConfig] = [], routers: [String: LearnedRouterWeights] = [:]) {
        self.routers = routers
        let counts = Dictionary(deployments.map { ($0.name, 1) }, uniquingKeysWith: +)
        var seen: [String: Int] = [:]
        self.all = deployments.map { deployment in
            seen[deployment.name, default: 0] += 1
            return deployment.with(id: counts[deployment.name, default: 1] > 1 ? "\(deployment.name)#\(seen[deployment.name, default: 1])"
                                                                                : deployment.name)
        }
        self.deployments = Dictionary(grouping: all, by: \.name)
        self.routes = Dictionary(routes.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        self.names = (Array(self.deployments.keys) + Array(self.routes.keys)).sorted()
    }

    /// The model `name` as routes, budgets and reports see it: its first deployment (the deployments of one
    /// model agree on price, tier and `downgrade_to`).
    subscript(name: String) -> Deployment? { deployments[name]?.first }

    /// The deployments of `name` in the order to try them: one drawn by weight, then the others as fallbacks.
    func spread(_ name: String, random: inout some RandomNumberGenerator) -> [Deployment] {
        guard let group = deployments[name] else { return [] }
        return group.count == 1 ? group : RoutePlanner.weighted(group, random: &random).ordered
    }

    /// Where a budget downgrade sends `deployment`'s requests: its `downgrade_to`, else the cheapest model
    /// one tier lower that the key may use (priced by a typical request: 1,000 tokens in, 1,000 out); one
    /// of that model's deployments drawn by weight.
    func downgradeTarget(for deployment: Deployment, allowed: (String) -> Bool) -> Deployment? {
        var random = SystemRandomNumberGenerator()
        if let name = deployment.downgradeTo {
            return allowed(name) ? spread(name, random: &random).first : nil
        }
        guard let tier = deployment.tier, let lower = ModelTier.allCases.last(where: { $0 < tier }) else { return nil }
        let cheapest = deployments.values.compactMap(\.first)
            .filter { $0.tier == lower && allowed($0.name) }
            .min { (RoutePlanner.typicalCost($0), $0.name) < (RoutePlanner.typicalCost($1), $1.name) }
        return cheapest.flatMap { spread($0.name, random: &random).first }
    }

    /// The first model whose deployments disagree on what describes the model as a whole (its price, its
    /// tier, where a downgrade sends it), and on which field; nil when they all agree.
    static func disagreement(in deployments: [Deployment]) -> (model: String, field: String)? {
        var first: [String: Deployment] = [:]
        for deployment in deployments {
            guard let model = first[deployment.name] else {
                first[deployment.name] = deployment
                continue
            }
            if deployment.price != model.price { return (deployment.name, "price") }
            if deployment.tier != model.tier { return (deployment.name, "tier") }
            if deployment.downgradeTo != model.downgradeTo { return (deployment.name, "downgrade_to") }
        }
        return nil
    }
}
