import Foundation

public enum SelfHostPlanError: Error, Hashable, Sendable, CustomStringConvertible {
    /// No throughput points for the model on the GPU; lists what there is.
    case noThroughput(model: String, gpu: String, known: [String])
    case noOffer(gpu: String, provisioning: Provisioning?, known: [String])

    public var description: String {
        switch self {
        case .noThroughput(let model, let gpu, let known):
            "no throughput points for \(model) on \(gpu) (known: \(known.isEmpty ? "none" : known.joined(separator: ", "))); add some with `tollgate economics import-vllm`"
        case .noOffer(let gpu, let provisioning, let known):
            "no \(provisioning.map { $0.rawValue + " " } ?? "")offer for \(gpu) (known: \(known.isEmpty ? "none" : known.joined(separator: ", ")))"
        }
    }
}

/// What the estimate sizes with, chosen from the economics data for one question: the engine setup whose
/// throughput points serve the open model on the GPU, the cheapest offer of the provisioning, and the hosted
/// prices of the open model.
public struct SelfHostPlan: Sendable {
    public var ledgerModel: String
    public var openModel: String
    public var gpu: String
    public var offer: GPUOffer
    public var capacity: ReplicaCapacity
    public var gpusPerReplica: Int
    public var hosted: [HostedPrice]
    public var settings: SizingSettings
    public var operations: OperationsOverhead

    /// `provisioning` nil: on-demand, the comparison that needs no commitment; the cheapest offer of it wins.
    /// Among several engine setups for the model and GPU, points from the user's file come first, then the
    /// setup with a rectangle of shapes to interpolate over, then the one with more points.
    public init(data: EconomicsData, ledgerModel: String, openModel: String?, gpu: String, provisioning: Provisioning?,
                engine: String? = nil) throws(SelfHostPlanError) {
        let open = openModel ?? ledgerModel
        let gpuName = gpu.lowercased()
        let candidates = data.points.filter { point in
            point.gpu == gpuName && point.serves(open) && (engine.map { point.engine.lowercased() == $0.lowercased() } ?? true)
        }
        struct Setup: Hashable { var engine: String; var version: String; var precision: String; var gpus: Int; var user: Bool }
        let setups = Dictionary(grouping: candidates) {
            Setup(engine: $0.engine, version: $0.engineVersion, precision: $0.precision, gpus: $0.gpus, user: $0.fromUserFile)
        }
        let ranked = setups.map { (setup: $0.key, capacity: ReplicaCapacity(points: $0.value.sorted { $0.id < $1.id },
                                                                            maxThroughputUsableShare: data.settings.maxThroughputUsableShare)) }
            .sorted { a, b in
                (a.setup.user ? 1 : 0, a.capacity.rectangles.isEmpty ? 0 : 1, a.capacity.points.count, b.setup.engine)
                    > (b.setup.user ? 1 : 0, b.capacity.rectangles.isEmpty ? 0 : 1, b.capacity.points.count, a.setup.engine)
            }
        guard let best = ranked.first else {
            let known = Set(data.points.map { "\($0.model) on \($0.gpu)" }).sorted()
            throw .noThroughput(model: open, gpu: gpuName, known: known)
        }
        let offers = data.offers.filter { offer in
            offer.gpu == gpuName && offer.provisioning == (provisioning ?? .onDemand)
        }
        guard let offer = offers.min(by: { ($0.perGPUHour, $0.id) < ($1.perGPUHour, $1.id) }) else {
            let known = data.offers.filter { $0.gpu == gpuName }.map(\.provisioning.rawValue)
            throw .noOffer(gpu: gpuName, provisioning: provisioning ?? .onDemand, known: Array(Set(known)).sorted())
        }
        self.ledgerModel = ledgerModel
        self.openModel = open
        self.gpu = gpuName
        self.offer = offer
        capacity = best.capacity
        gpusPerReplica = best.setup.gpus
        hosted = data.hosted.filter { ModelName.normalized($0.model) == ModelName.normalized(open) }
        settings = data.settings
        operations = data.operations
    }

    /// Whether the ledger's model is the open model being sized (the same name, however written).
    public var sizesTheLedgersModel: Bool { ModelName.normalized(ledgerModel) == ModelName.normalized(openModel) }

    /// Every assumption the figures rest on, in words, for the report.
    public func assumptions(_ estimate: SelfHostEstimate, from: Date, to: Date, apiCost: Nanodollars,
                            repricedAPICost: Nanodollars?, cheapestHosted: (HostedPrice, Nanodollars)?) -> [String] {
        func money(_ amount: Nanodollars) -> String { "$" + amount.decimalString }
        func number(_ value: Double, _ digits: Int = 2) -> String { String(format: "%.\(digits)f", value) }
        let hours = Double(estimate.windowMilliseconds) / 3_600_000
        var lines: [String] = []
        lines.append("Window: \(Self.format(from)) to \(Self.format(to)) (\(number(hours / 24, 1)) days, \(number(hours, 1)) hours); requests of \(ledgerModel) that started in it.")
        if !sizesTheLedgersModel {
            lines.append("The ledger's model \(ledgerModel) is not \(openModel): the quality of \(openModel) is not known to be equivalent, and the output lengths are the ledger's, as \(ledgerModel) wrote them.")
        }
        let points = capacity.points
        let first = points[0]
        let pointList = points.map { "\(Int($0.inputTokens))/\(Int($0.outputTokens)) → \(number($0.requestsPerSecond, 3)) req/s" }.joined(separator: ", ")
        let checked = Set(points.map(\.checked)).sorted().joined(separator: ", ")
        let sources = Set(points.map(\.source)).sorted().joined(separator: "; ")
        lines.append("Throughput: \(first.engine) \(first.engineVersion), \(first.precision), \(gpusPerReplica) × \(gpu) per replica; measured shapes (input/output tokens): \(pointList); as published by \(sources), checked \(checked).")
        let notes = Set(points.compactMap(\.note)).sorted()
        lines.append(contentsOf: notes.map { "Throughput note: " + $0 })
        let atMax = points.filter { $0.at == .maxThroughput }
        if !atMax.isEmpty {
            var line = "Latency target: \(atMax.count == points.count ? "the points were" : "\(atMax.count) points were") measured at maximum throughput (requests queued without limit); a replica is counted at \(number(settings.maxThroughputUsableShare * 100, 0)) % of it, to keep time to first token and time per token interactive"
            if !settings.maxThroughputUsableShareSource.isEmpty { line += " (\(settings.maxThroughputUsableShareSource))" }
            lines.append(line + ".")
        }
        for point in points where point.at == .latencyTarget {
            lines.append("Latency target of \(point.id): \(point.latencyTarget ?? "as measured")\(point.concurrency.map { " at concurrency \($0)" } ?? "")\(point.ttftMs.map { ", TTFT \(number($0, 0)) ms" } ?? "").")
        }
        lines.append(settings.prefixCaching
            ? "Prefix caching: a cached prompt token counts as \(number(settings.cachedPrefixWeight)) of an uncached one (its KV cache is reused, not recomputed)."
            : "Prefix caching off: cached prompt tokens count as uncached input.")
        let outside = estimate.buckets.filter { if case .bilinear(_, inside: true) = $0.method { return false } else { return true } }
        if !outside.isEmpty {
            let count = outside.reduce(0) { $0 + $1.requests }
            lines.append("\(count) requests (\(outside.count) shape buckets) lie outside the measured shapes: their work is extrapolated from the nearest measured rectangle.")
        }
        lines.append("Sizing: the \(number(settings.percentile * 100, 0))th percentile of \(settings.slotSeconds / 60)-minute slots' load (replicas busy at once): \(number(estimate.p95Load, 3)) (peak \(number(estimate.peakLoad, 3)), mean \(number(estimate.meanLoad, 3))), so \(estimate.replicas) replica\(estimate.replicas == 1 ? "" : "s") of \(gpusPerReplica) GPU\(gpusPerReplica == 1 ? "" : "s"); a request is in flight from its start for the latency the ledger recorded.")
        let rate: String
        if let owned = offer.owned {
            rate = "owned: \(money(owned.capexPerGPU)) per GPU over \(owned.amortisationMonths) months + \(owned.powerWattsPerGPU) W × PUE \(Nanodollars(owned.pueBillionths).decimalString) × \(money(owned.perKilowattHour))/kWh = \(money(offer.perGPUHour)) per GPU-hour"
        } else {
            rate = "\(offer.provider) \(offer.provisioning.rawValue), \(money(offer.perGPUHour)) per GPU-hour"
        }
        lines.append("GPU price: \(rate) (\(offer.id); as published by \(offer.source), checked \(offer.checked))\(offer.note.map { "; " + $0 } ?? "").")
        lines.append("Idle hours billed: the replicas run all \(number(hours, 1)) hours of the window, busy or not: \(money(estimate.gpuCost)).")
        lines.append("Operations: \(Nanodollars(operations.hoursPerMonthBillionths).decimalString) hours a month at \(money(operations.perHour)) an hour (\(money(operations.perMonth)) a month of 730 hours), prorated to the window: \(money(estimate.operationsCost)) (\(operations.source)).")
        var api = "API cost: the ledger's cost as charged, \(money(apiCost))"
        if let repricedAPICost {
            api += repricedAPICost == apiCost ? "; re-priced at today's price of \(ledgerModel), the same" : "; re-priced at today's price of \(ledgerModel): \(money(repricedAPICost))"
        } else {
            api += "; \(ledgerModel) has no price today to re-price it at"
        }
        lines.append(api + ".")
        if let (price, cost) = cheapestHosted {
            let rates = price.price.rates
            lines.append("Hosted: the cheapest of \(hosted.count) hosted price\(hosted.count == 1 ? "" : "s") of \(openModel): \(price.provider) (\(price.offeredAs)), \(money(rates.input)) in / \(money(rates.output)) out per million tokens: \(money(cost)) for this traffic (as published by \(price.source), checked \(price.checked)).")
        } else {
            lines.append("Hosted: no hosted price of \(openModel) is known.")
        }
        if let breakEven = estimate.breakEven {
            lines.append("Break-even: the same mix at \(number(breakEven.factor, 2)) × this volume (\(Int(breakEven.requestsPerDay.rounded(.up))) requests a day) costs the same on \(breakEven.replicas) replica\(breakEven.replicas == 1 ? "" : "s") as on the API; more volume favours self-hosting.")
        } else {
            lines.append("Break-even: none at any volume: a fully used replica costs more than the API charges for the traffic it would carry.")
        }
        return lines
    }

    static func format(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle(timeZone: TimeZone(identifier: "UTC")!))
    }
}
