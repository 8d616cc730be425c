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
    var contextTokens: Int

    var missingWords: [String] {
        (tools ? ["tools"] : []) + (vision ? ["vision"] : [])
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

    static func plan(_ route: GatewayConfig.RouteConfig, needs: RouteNeeds, registry: ModelRegistry,
                     inFlight: (String) -> Int = { _ in 0 }, learned: RouteDecision? = nil,
                     random: inout some RandomNumberGenerator) throws(Failure) -> RoutePlan {
        var models: [Deployment] = []
        for name in route.models {
            guard let deployment = registry[name] else { throw .unknownModel(route: route.name, model: name) }
            models.append(deployment)
        }
        switch route.strategy {
        case .fallback:
            return RoutePlan(candidates: models, reason: "fallback: first choice", baseline: nil)
        case .loadbalance(_, .leastInflight):
            let ordered = models.enumerated().sorted { (inFlight($0.element.name), $0.offset) < (inFlight($1.element.name), $1.offset) }
                .map(\.element)
            return RoutePlan(candidates: ordered, reason: "loadbalance: least in flight", baseline: nil)
        case .loadbalance:
            // Weighted at random; the others follow as fallbacks, heaviest first.
            let total = models.reduce(0) { $0 + max(0, $1.weight) }
            guard total > 0 else { return RoutePlan(candidates: models, reason: "loadbalance", baseline: nil) }
            var pick = Int.random(in: 0..<total, using: &random)
            var chosen = 0
            for (index, model) in models.enumerated() {
                pick -= max(0, model.weight)
                if pick < 0 { chosen = index; break }
            }
            let first = models.remove(at: chosen)
            return RoutePlan(candidates: [first] + models.sorted { $0.weight > $1.weight },
                             reason: "loadbalance: weight \(first.weight) of \(total)", baseline: nil)
        case .cheapestCapable:
            let capable = models.filter { model in
                (!needs.tools || model.capabilities.contains("tools"))
                    && (!needs.vision || model.capabilities.contains("vision"))
                    && (model.contextWindow.map { needs.contextTokens <= $0 } ?? true)
            }
            guard !capable.isEmpty else {
                var wanted = needs.missingWords
                wanted.append("\(needs.contextTokens) tokens of context")
                throw .noCapableModel(route: route.name, needs: wanted.joined(separator: ", "))
            }
            let ordered = capable.sorted { (typicalCost($0), $0.name) < (typicalCost($1), $1.name) }
            let skipped = models.count - capable.count
            let reason = needs.missingWords.isEmpty || skipped == 0
                ? "cheapest-capable"
                : "capability: " + needs.missingWords.joined(separator: ", ")
            return RoutePlan(candidates: ordered, reason: reason, baseline: models.max { typicalCost($0) < typicalCost($1) })
        case .learned:
            // `models` is [strong, weak]; the other one stays as the fallback.
            let decision = learned ?? RouteDecision(useStrong: true, score: 1)
            let score = (decision.score * 100).rounded() / 100
            return RoutePlan(candidates: decision.useStrong ? models : models.reversed(),
                             reason: "learned p=\(score)", baseline: models.first)
        }
    }
}
