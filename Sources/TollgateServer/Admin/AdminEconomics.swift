import Dispatch
import Foundation
import Hummingbird
import TollgateCore
import TollgateStore

extension AdminAPI {
    /// `GET /admin/economics/self-host?model=M&gpu=G[&as=OPEN_MODEL][&provisioning=P][&from=&to=][&engine=E]`:
    /// what the ledger's traffic of M over the window (default: the 30 days before now) would have cost on
    /// replicas of the open model on G, beside the ledger's cost and the cheapest hosted price.
    func addEconomicsRoutes(to admin: RouterGroup<BasicRequestContext>) {
        admin.get("economics/self-host") { request, _ in
            let parameters = request.uri.queryParameters
            guard let model = parameters.get("model"), !model.isEmpty else {
                throw AdminError.badRequest("model is required: the ledger's model (or route) whose traffic to size", param: "model")
            }
            guard let gpu = parameters.get("gpu"), !gpu.isEmpty else {
                throw AdminError.badRequest("gpu is required (for example h100)", param: "gpu")
            }
            let provisioning = try parameters.get("provisioning").map { text in
                guard let value = Provisioning(rawValue: text) else {
                    throw AdminError.badRequest("provisioning must be one of \(Provisioning.allCases.map(\.rawValue).joined(separator: ", "))",
                                                param: "provisioning")
                }
                return value
            }
            func time(_ name: String) throws -> Date? {
                try parameters.get(name).map { text in
                    guard let date = RFC3339.parse(text) else { throw AdminError.badRequest("\(name) must be a date or an RFC 3339 time", param: name) }
                    return date
                }
            }
            let to = try time("to") ?? clock.now()
            let from = try time("from") ?? to.addingTimeInterval(-30 * 86_400)
            guard to > from else { throw AdminError.badRequest("from must be before to", param: "from") }
            let plan: SelfHostPlan
            do {
                plan = try SelfHostPlan(data: economics, ledgerModel: model, openModel: parameters.get("as"), gpu: gpu,
                                        provisioning: provisioning, engine: parameters.get("engine"))
            } catch let error as SelfHostPlanError {
                let open = parameters.get("as") ?? model
                let param: String
                switch error {
                case .noThroughput:
                    // Points for the model on other GPUs: the GPU is what has none; else the model.
                    param = economics.points.contains { $0.serves(open) } ? "gpu" : parameters.get("as") == nil ? "model" : "as"
                case .noOffer:
                    param = economics.offers.contains { $0.gpu == gpu.lowercased() } ? "provisioning" : "gpu"
                }
                throw AdminError.badRequest(error.description, param: param)
            }
            let repricing = models[model]?.price
            let store = self.store, ledger = self.ledger
            let report = try await AdminAPI.storing {
                try await AdminAPI.offTheEventLoops {
                    ledger.flush()
                    return try SelfHostReport(plan: plan, store: store, from: from, to: to, repricing: repricing)
                }
            }
            return AdminAPI.json(report.json)
        }
    }

    /// The economics queue: a scan of a month of the ledger takes seconds, and must hold neither an event
    /// loop nor a thread of Swift's cooperative pool.
    private static let economicsQueue = DispatchQueue(label: "tollgate.economics")

    static func offTheEventLoops<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            economicsQueue.async { continuation.resume(with: Result { try body() }) }
        }
    }
}

/// One answer of the self-host endpoint: the ledger read through a `TrafficProfile`, then the estimate.
struct SelfHostReport: Sendable {
    let plan: SelfHostPlan
    let from: Date
    let to: Date
    let profile: TrafficProfile
    let estimate: SelfHostEstimate
    let repricedAPICost: Nanodollars?
    let cheapestHosted: (HostedPrice, Nanodollars)?

    init(plan: SelfHostPlan, store: any Store, from: Date, to: Date, repricing: ModelPrice?) throws {
        var pricings = plan.hosted.map(\.price)
        if let repricing { pricings.append(repricing) }
        // Milliseconds as the store keeps them.
        func milliseconds(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1000).rounded()) }
        var profile = TrafficProfile(from: milliseconds(from), to: milliseconds(to), slotSeconds: plan.settings.slotSeconds,
                                     pricings: pricings)
        try store.forEachUsageSample(model: plan.ledgerModel, from: from, to: to) { profile.add($0) }
        let hostedCosts = Array(zip(plan.hosted, profile.pricedCosts.prefix(plan.hosted.count)))
        cheapestHosted = hostedCosts.min { ($0.1, $0.0.id) < ($1.1, $1.0.id) }
        repricedAPICost = repricing == nil ? nil : profile.pricedCosts.last
        guard let estimate = SelfHostEstimate(profile: profile, capacity: plan.capacity, settings: plan.settings,
                                              gpusPerReplica: plan.gpusPerReplica, perGPUHour: plan.offer.perGPUHour,
                                              operations: plan.operations, apiCost: profile.ledgerCost,
                                              hostedCost: cheapestHosted?.1)
        else { throw StoreError.invalid("no throughput point can size \(plan.openModel)") }
        self.plan = plan
        self.from = from
        self.to = to
        self.profile = profile
        self.estimate = estimate
    }

    var json: JSONValue {
        let days = Double(estimate.windowMilliseconds) / 86_400_000
        func bucketJSON(_ bucket: SelfHostEstimate.Bucket) -> JSONValue {
            let interpolation: String
            switch bucket.method {
            case .bilinear(_, inside: true): interpolation = "inside"
            case .bilinear(_, inside: false): interpolation = "extrapolated"
            case .nearestScaled: interpolation = "nearest point, scaled"
            }
            return .object([
                ("input_tokens", .string(ShapeBucket.label(bucket.key.input, ShapeBucket.inputEdges))),
                ("cached_tokens", .string(ShapeBucket.label(bucket.key.cached, ShapeBucket.cachedEdges))),
                ("output_tokens", .string(ShapeBucket.label(bucket.key.output, ShapeBucket.outputEdges))),
                ("requests", .int(bucket.requests)), ("mean_input_tokens", .double(bucket.meanInput)),
                ("mean_cached_tokens", .double(bucket.meanCached)), ("mean_output_tokens", .double(bucket.meanOutput)),
                ("effective_input_tokens", .double(bucket.effectiveInput)), ("replica_seconds_per_request", .double(bucket.workSeconds)),
                ("requests_per_second_per_replica", .double(bucket.requestsPerSecondPerReplica)), ("interpolation", .string(interpolation)),
            ])
        }
        func breakEven(_ value: SelfHostEstimate.BreakEven?) -> JSONValue {
            value.map { .int(Int($0.requestsPerDay.rounded(.up))) } ?? .null
        }
        let offer = plan.offer
        return .object([
            ("model", .string(plan.ledgerModel)), ("as", .string(plan.openModel)),
            ("same_model", .bool(plan.sizesTheLedgersModel)),
            ("gpu", .string(plan.gpu)), ("provisioning", .string(offer.provisioning.rawValue)),
            ("offer", .object([("id", .string(offer.id)), ("provider", .string(offer.provider)),
                               ("usd_per_gpu_hour", .money(offer.perGPUHour)), ("source", .string(offer.source)),
                               ("checked", .string(offer.checked))])),
            ("window", .object([("from", .time(from)), ("to", .time(to)), ("days", .double(days))])),
            ("requests", .int(estimate.requests)),
            ("requests_per_day", .double(Double(estimate.requests) / days)),
            ("api_cost_usd", .money(profile.ledgerCost)),
            ("api_cost_repriced_usd", .money(repricedAPICost)),
            ("hosted_cost_usd", .money(cheapestHosted?.1)),
            ("hosted", cheapestHosted.map { entry -> JSONValue in
                let price = entry.0
                return .object([("id", .string(price.id)), ("provider", .string(price.provider)), ("offered_as", .string(price.offeredAs)),
                                ("source", .string(price.source)), ("checked", .string(price.checked))])
            } ?? .null),
            ("self_host_cost_usd", .money(estimate.selfHostCost)),
            ("gpu_cost_usd", .money(estimate.gpuCost)),
            ("operations_cost_usd", .money(estimate.operationsCost)),
            ("replicas", .int(estimate.replicas)), ("gpus_per_replica", .int(estimate.gpusPerReplica)), ("gpus", .int(estimate.gpus)),
            ("utilisation", .double(estimate.utilisation)),
            ("load", .object([("slot_minutes", .int(plan.settings.slotSeconds / 60)), ("slots", .int(estimate.slotLoads.count)),
                              ("percentile", .double(plan.settings.percentile)), ("p95", .double(estimate.p95Load)),
                              ("peak", .double(estimate.peakLoad)), ("mean", .double(estimate.meanLoad)),
                              ("p95_concurrency", .double(estimate.p95Concurrency))])),
            ("break_even_requests_per_day", breakEven(estimate.breakEven)),
            ("break_even_factor", estimate.breakEven.map { .double($0.factor) } ?? .null),
            ("break_even_replicas", estimate.breakEven.map { .int($0.replicas) } ?? .null),
            ("break_even_vs_hosted_requests_per_day", breakEven(estimate.breakEvenVersusHosted)),
            ("buckets", .array(estimate.buckets.map(bucketJSON))),
            ("throughput_points", .array(plan.capacity.points.map { .string($0.id) })),
            ("assumptions", .array(plan.assumptions(estimate, from: from, to: to, apiCost: profile.ledgerCost,
                                                    repricedAPICost: repricedAPICost, cheapestHosted: cheapestHosted).map { .string($0) })),
        ])
    }
}
