import TollgateCore

/// Turns a route and a request into the deployments to try, in order, and why the first was chosen.
/// `fallback`, `loadbalance` and `cheapest-capable` are planned here; `learned` picks strong or weak
/// with the trained router.
struct RoutePlan: Sendable {
    var candidates: [Deployment]
    var reason: String
    /// The model the request would have gone to without the route, for the ledger's baseline cost.
    var baseline: Deployment?
}

/// What a request needs of a model.
struct RouteNeeds: Sendable, Equatable {
    var tools: Bool
    var vision: Bool
    /// A JSON `response_format` (`json_object` or `json_schema`).
    var json: Bool = false
    var contextTokens: Int

    var missingWords: [String] {
        (tools ? ["tools"] : []) + (vision ? ["vision"] : []) + (json ? ["json"] : [])
    }

    func isMet(by deployment: Deployment) -> Bool {
        (!tools || deployment.capabilities.contains("tools"))
            && (!vision || deployment.capabilities.contains("vision"))
            && (!json || deployment.capabilities.contains("json"))
            && (deployment.contextWindow.map { contextTokens <= $0 } ?? true)
    }
}

enum RoutePlanner {
    enum Failure: Error, Equatable {
        /// No model of the route can serve the request.
        case noCapableModel(route: String, needs: String)
        /// The route names a model the gateway does not serve.
        case unknownModel(route: String, model: String)
    }

    /// Prices a typical request (1,000 tokens in, 1,000 out), to order models by cost.
    static func typicalCost(_ deployment: Deployment) -> Nanodollars {
        deployment.price.cost(of: Usage(inputTokens: 1_000, outputTokens: 1_000))
    }

    /// One of `deployments` drawn at random by weight, then the others as fallbacks, heaviest first (in
    /// their given order among equals). With no weight above zero, the first is chosen.
    static func weighted(_ deployments: [Deployment], random: inout some RandomNumberGenerator)
        -> (ordered: [Deployment], weight: Int, total: Int) {
        let total = deployments.reduce(0) { $0 + max(0, $1.weight) }
        var chosen = 0
        if total > 0 {
            var pick = Int.random(in: 0..<total, using: &random)
            for (index, deployment) in deployments.enumerated() {
                pick -= max(0, deployment.weight)
                if pick < 0 { chosen = index; break }
            }
        }
        var rest = deployments
        let first = rest.remove(at: chosen)
        let others = rest.enumerated().sorted { ($1.element.weight, $0.offset) < ($0.element.weight, $1.offset) }.map(\.element)
        return ([first] + others, max(0, first.weight), total)
    }

    /// The deployments to try for `route` and this request. Each model the route names stands for all of
    /// its deployments: `loadbalance` balances over every one of them; the other strategies take a model's
    /// deployments together, one drawn by weight first.
    static func plan(_ route: GatewayConfig.RouteConfig, needs: RouteNeeds, registry: ModelRegistry,
                     inFlight: (String) -> Int = { _ in 0 }, learned: RouteDecision? = nil,
                     random: inout some RandomNumberGenerator) throws(Failure) -> RoutePlan {
        for name in route.models where registry.deployments[name] == nil {
            throw .unknownModel(route: route.name, model: name)
        }
        func spread(_ names: [String]) -> [Deployment] {
            names.flatMap { registry.spread($0, random: &random) }
        }
        switch route.strategy {
        case .fallback(let models):
            return RoutePlan(candidates: spread(models), reason: "fallback: first choice", baseline: nil)
        case .loadbalance(let models, .leastInflight):
            let ordered = models.flatMap { registry.deployments[$0] ?? [] }.enumerated()
                .sorted { (inFlight($0.element.id), $0.offset) < (inFlight($1.element.id), $1.offset) }
                .map(\.element)
            return RoutePlan(candidates: ordered, reason: "loadbalance: least in flight", baseline: nil)
        case .loadbalance(let models, .weighted):
            let all = models.flatMap { registry.deployments[$0] ?? [] }
            let (ordered, weight, total) = weighted(all, random: &random)
            return RoutePlan(candidates: ordered, reason: total > 0 ? "loadbalance: weight \(weight) of \(total)" : "loadbalance",
                             baseline: nil)
        case .cheapestCapable(let models):
            let all = spread(models)
            let capable = all.enumerated().filter { needs.isMet(by: $0.element) }
            guard !capable.isEmpty else {
                var wanted = needs.missingWords
                wanted.append("\(needs.contextTokens) tokens of context")
                throw .noCapableModel(route: route.name, needs: wanted.joined(separator: ", "))
            }
            let ordered = capable.sorted { (typicalCost($0.element), $0.element.name, $0.offset) < (typicalCost($1.element), $1.element.name, $1.offset) }
                .map(\.element)
            let skipped = all.count - capable.count
            let reason = needs.missingWords.isEmpty || skipped == 0
                ? "cheapest-capable"
                : "capability: " + needs.missingWords.joined(separator: ", ")
            return RoutePlan(candidates: ordered, reason: reason, baseline: all.max { typicalCost($0) < typicalCost($1) })
        case .learned(let strong, let weak, _, _, _):
            // The model not chosen stays as the fallback.
            let decision = learned ?? RouteDecision(useStrong: true, score: 1)
            let score = (decision.score * 100).rounded() / 100
            return RoutePlan(candidates: spread(decision.useStrong ? [strong, weak] : [weak, strong]),
                             reason: "learned p=\(score)", baseline: registry[strong])
        }
    }
}
