import Foundation
import NIOCore
import Testing
import TollgateCore
@testable import TollgateServer

/// An HTTP deployment of `name` on `host`, priced at `input`/`output` USD per million tokens.
private func deployment(_ name: String, host: String = "127.0.0.1", port: Int = 8000, weight: Int = 1,
                        input: String = "1", output: String = "2", capabilities: Set<String> = [],
                        tier: ModelTier? = nil, downgradeTo: String? = nil) -> Deployment {
    Deployment(id: name, name: name, provider: "openai-compatible", upstreamModel: name, apiKey: nil,
               price: ModelPrice(rates: .init(input: Nanodollars(decimalString: input)!, output: Nanodollars(decimalString: output)!)),
               endpoint: .http(UpstreamTarget(tls: false, host: host, port: port), basePath: "/v1", hostHeader: "\(host):\(port)"),
               maxOutputTokens: nil, tier: tier, downgradeTo: downgradeTo, capabilities: capabilities, weight: weight)
}

private let plainNeeds = RouteNeeds(tools: false, vision: false, contextTokens: 10)

/// A small seeded generator (SplitMix64), so that a failing run can be replayed.
private struct SplitMix64: RandomNumberGenerator {
    var state: UInt64

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite("Deployments of one model and the routes over them")
struct DeploymentRoutingTests {
    static let twoServers = ModelRegistry([
        deployment("m", host: "gpu1", weight: 3), deployment("solo"), deployment("m", host: "gpu2", weight: 1),
    ], routes: [
        .init(name: "lb", strategy: .loadbalance(models: ["m", "solo"], balance: .weighted)),
        .init(name: "least", strategy: .loadbalance(models: ["m"], balance: .leastInflight)),
        .init(name: "safe", strategy: .fallback(models: ["solo", "m"])),
    ])

    @Test("entries sharing a name are all kept, each with its own id; a model with one deployment keeps its name")
    func identities() {
        let registry = Self.twoServers
        #expect(registry.all.map(\.id) == ["m#1", "solo", "m#2"])
        #expect(registry.deployments["m"]?.map(\.id) == ["m#1", "m#2"])
        #expect(registry.names == ["lb", "least", "m", "safe", "solo"])
        #expect(registry["m"]?.id == "m#1")
    }

    @Test("a model's deployments are spread by weight, the others following as fallbacks")
    func spreadByWeight() {
        var random = SplitMix64(state: 7)
        var first: [String: Int] = [:]
        for _ in 0..<4_000 {
            let order = Self.twoServers.spread("m", random: &random).map(\.id)
            #expect(Set(order) == ["m#1", "m#2"] && order.count == 2)
            first[order[0], default: 0] += 1
        }
        // Weights 3 : 1.
        #expect((2_800...3_200).contains(first["m#1", default: 0]), "\(first)")
        #expect(Self.twoServers.spread("solo", random: &random).map(\.id) == ["solo"])
        #expect(Self.twoServers.spread("nothing", random: &random).isEmpty)
    }

    @Test("weighted order: the drawn one first, then the heaviest, equal weights in config order, zero weight never first")
    func weightedOrder() {
        let candidates = [deployment("a", weight: 0), deployment("b", weight: 1), deployment("c", weight: 5), deployment("d", weight: 1)]
        var random = SplitMix64(state: 1)
        for _ in 0..<200 {
            let (ordered, weight, total) = RoutePlanner.weighted(candidates, random: &random)
            #expect(total == 7 && ordered[0].name != "a" && weight == ordered[0].weight)
            #expect(ordered.dropFirst().map(\.name) == ["c", "b", "d", "a"].filter { $0 != ordered[0].name })
        }
        let zero = RoutePlanner.weighted([deployment("x", weight: 0), deployment("y", weight: 0)], random: &random)
        #expect(zero.ordered.map(\.name) == ["x", "y"] && zero.total == 0)
    }

    @Test("a weighted loadbalance route balances over every deployment of every model it lists")
    func loadbalanceOverDeployments() throws {
        var random = SplitMix64(state: 42)
        var first: [String: Int] = [:]
        for _ in 0..<5_000 {
            let plan = try RoutePlanner.plan(Self.twoServers.routes["lb"]!, needs: plainNeeds, registry: Self.twoServers, random: &random)
            #expect(plan.candidates.count == 3)
            first[plan.candidates[0].id, default: 0] += 1
        }
        // Weights m#1 3, m#2 1, solo 1.
        #expect((2_800...3_200).contains(first["m#1", default: 0]), "\(first)")
        #expect((850...1_150).contains(first["m#2", default: 0]), "\(first)")
        #expect((850...1_150).contains(first["solo", default: 0]), "\(first)")
    }

    @Test("least_inflight counts in-flight requests per deployment, not per model")
    func leastInflightByDeployment() throws {
        var random = SplitMix64(state: 3)
        let busy = ["m#1": 4, "m#2": 1]
        let plan = try RoutePlanner.plan(Self.twoServers.routes["least"]!, needs: plainNeeds, registry: Self.twoServers,
                                         inFlight: { busy[$0, default: 0] }, random: &random)
        #expect(plan.candidates.map(\.id) == ["m#2", "m#1"])
    }

    @Test("a fallback route tries every deployment of each model in turn")
    func fallbackOverDeployments() throws {
        var random = SplitMix64(state: 5)
        let plan = try RoutePlanner.plan(Self.twoServers.routes["safe"]!, needs: plainNeeds, registry: Self.twoServers, random: &random)
        #expect(plan.candidates.first?.id == "solo")
        #expect(Set(plan.candidates.dropFirst().map(\.id)) == ["m#1", "m#2"])
    }

    @Test("cheapest-capable skips models without JSON mode for a JSON request, and says so")
    func jsonCapability() throws {
        let registry = ModelRegistry([
            deployment("cheap", input: "0.1", output: "0.1", capabilities: ["tools"]),
            deployment("structured", input: "1", output: "1", capabilities: ["tools", "json"]),
            deployment("dear", input: "5", output: "5", capabilities: ["tools", "vision", "json"]),
        ], routes: [.init(name: "cap", strategy: .cheapestCapable(models: ["cheap", "structured", "dear"]))])
        let route = registry.routes["cap"]!
        var random = SplitMix64(state: 9)
        let plain = try RoutePlanner.plan(route, needs: plainNeeds, registry: registry, random: &random)
        #expect(plain.candidates.map(\.name) == ["cheap", "structured", "dear"] && plain.reason == "cheapest-capable")

        let json = RouteNeeds(tools: false, vision: false, json: true, contextTokens: 10)
        let plan = try RoutePlanner.plan(route, needs: json, registry: registry, random: &random)
        #expect(plan.candidates.map(\.name) == ["structured", "dear"])
        #expect(plan.reason == "capability: json")
        #expect(plan.baseline?.name == "dear")

        let both = RouteNeeds(tools: true, vision: true, json: true, contextTokens: 10)
        #expect(try RoutePlanner.plan(route, needs: both, registry: registry, random: &random).reason == "capability: tools, vision, json")

        let only = ModelRegistry([deployment("cheap", capabilities: ["tools", "vision"])],
                                 routes: [.init(name: "cap", strategy: .cheapestCapable(models: ["cheap"]))])
        #expect(throws: RoutePlanner.Failure.noCapableModel(route: "cap", needs: "json, 10 tokens of context")) {
            try RoutePlanner.plan(only.routes["cap"]!, needs: json, registry: only, random: &random)
        }
    }

    @Test("cheapest-capable keeps a model's deployments together, drawn by weight, and checks each one's capabilities")
    func cheapestCapableOverDeployments() throws {
        let registry = ModelRegistry([
            deployment("m", host: "a", weight: 1, capabilities: ["json"]), deployment("m", host: "b", weight: 1, capabilities: []),
            deployment("big", input: "9", output: "9", capabilities: ["json"]),
        ], routes: [.init(name: "cap", strategy: .cheapestCapable(models: ["big", "m"]))])
        var random = SplitMix64(state: 11)
        let json = RouteNeeds(tools: false, vision: false, json: true, contextTokens: 10)
        let plan = try RoutePlanner.plan(registry.routes["cap"]!, needs: json, registry: registry, random: &random)
        #expect(plan.candidates.map(\.id) == ["m#1", "big"])
        var first: Set<String> = []
        for _ in 0..<100 {
            first.insert(try RoutePlanner.plan(registry.routes["cap"]!, needs: plainNeeds, registry: registry, random: &random).candidates[0].id)
        }
        #expect(first == ["m#1", "m#2"])
    }

    @Test("a budget downgrade goes to one of the target model's deployments")
    func downgradeToDeployments() {
        let large = deployment("large", tier: .large, downgradeTo: "m")
        let registry = ModelRegistry([large, deployment("m", host: "a"), deployment("m", host: "b")])
        var seen: Set<String> = []
        for _ in 0..<100 { seen.insert(registry.downgradeTarget(for: registry["large"]!, allowed: { _ in true })?.id ?? "none") }
        #expect(seen == ["m#1", "m#2"])
        #expect(registry.downgradeTarget(for: registry["large"]!, allowed: { $0 != "m" }) == nil)
    }

    @Test("the deployments of one model must agree on price, tier and downgrade target")
    func disagreement() {
        #expect(ModelRegistry.disagreement(in: [deployment("m", host: "a"), deployment("m", host: "b", weight: 5), deployment("x", input: "3")]) == nil)
        #expect(ModelRegistry.disagreement(in: [deployment("m", host: "a"), deployment("m", host: "b", input: "3")])! == ("m", "price"))
        let small = deployment("m", host: "b", tier: .small)
        #expect(ModelRegistry.disagreement(in: [deployment("m", host: "a"), small])! == ("m", "tier"))
    }

    @Test("a deployment's breaker and in-flight count are its own, not its model's")
    func healthPerDeployment() {
        let health = DeploymentHealth(failureThreshold: 2, coolDown: 30)
        let now = Date()
        let (first, second) = (Self.twoServers.all[0], Self.twoServers.all[2])
        health.recordFailure(first.id, error: "answered 503", at: now)
        health.recordFailure(first.id, error: "answered 503", at: now)
        health.begin(second.id)
        #expect(health.ordered([first, second], at: now).map(\.id) == ["m#2", "m#1"])
        #expect(health.inFlight("m#2") == 1 && health.inFlight("m#1") == 0 && health.inFlight("m") == 0)
        #expect(health.snapshot()["m#1"]?.breaker.state == .open && health.snapshot()["m#2"]?.failures == 0)
    }
}

@Suite("Per-deployment time-outs")
struct DeploymentTimeoutTests {
    @Test("a model entry's timeouts override the server's, each value on its own")
    func overrides() throws {
        let server = GatewayConfig.Timeouts(connectMs: 5000, firstByteMs: 600_000, idleMs: 120_000)
        var model = GatewayConfig.ModelConfig(name: "vllm", provider: .openaiCompatible, baseURL: "http://127.0.0.1:8000/v1")
        model.price = .free
        model.timeouts = .init(firstByteMs: 1500)
        let catalog = try GatewayServer.loadCatalog()
        let tuned = try GatewayServer.deployment(for: model, catalog: catalog, serverTimeouts: server)
        #expect(tuned.timeouts.connect == .milliseconds(5000))
        #expect(tuned.timeouts.firstByte == .milliseconds(1500))
        #expect(tuned.timeouts.idle == .milliseconds(120_000))
        model.timeouts = nil
        #expect(try GatewayServer.deployment(for: model, catalog: catalog, serverTimeouts: server).timeouts == UpstreamTimeouts(server))
    }

    @Test("deployments of one model that disagree on price stop the start")
    func disagreeingPricesStopTheStart() throws {
        let config = try GatewayConfig.parse(yaml: """
            models:
              - { name: m, provider: openai-compatible, base_url: "http://gpu1:8000/v1", price: free }
              - { name: m, provider: openai-compatible, base_url: "http://gpu2:8000/v1", price: { input_per_mtok: 1, output_per_mtok: 1 } }
            """, file: "tollgate.yaml", environment: [:])
        let error = #expect(throws: StartupError.self) {
            try GatewayServer.buildDeployments(config: config, catalog: GatewayServer.loadCatalog(), demo: false,
                                               useEnvironmentProviders: false, environment: [:], logger: .init(label: "test"))
        }
        #expect(error?.description.hasPrefix("the deployments of model 'm' differ in price") == true)
    }
}
