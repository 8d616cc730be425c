import Foundation

/// How a GPU is paid for.
public enum Provisioning: String, Sendable, CaseIterable, Hashable {
    case onDemand = "on-demand"
    case oneYear = "1-year"
    case threeYear = "3-year"
    case spot
    case owned
}

/// A GPU bought rather than rented: its hourly cost is the purchase spread over its life plus the power it
/// and its share of the data centre draw.
public struct OwnedHardware: Sendable, Hashable {
    public var capexPerGPU: Nanodollars
    public var amortisationMonths: Int
    /// The whole server's draw divided by its GPUs (CPUs, memory and network included), in watts.
    public var powerWattsPerGPU: Int
    public var perKilowattHour: Nanodollars
    /// Power usage effectiveness in billionths (1.56 → 1_560_000_000).
    public var pueBillionths: Int64

    public init(capexPerGPU: Nanodollars, amortisationMonths: Int, powerWattsPerGPU: Int, perKilowattHour: Nanodollars,
                pueBillionths: Int64) {
        self.capexPerGPU = capexPerGPU
        self.amortisationMonths = amortisationMonths
        self.powerWattsPerGPU = powerWattsPerGPU
        self.perKilowattHour = perKilowattHour
        self.pueBillionths = pueBillionths
    }

    /// capex ÷ (months × 730 h) + W ÷ 1000 × PUE × $/kWh, rounded half up once to a nano-dollar per GPU-hour.
    public var perGPUHour: Nanodollars {
        let hours = Int128(amortisationMonths) * Int128(SelfHostMath.hoursPerMonth)
        let billion = Int128(Nanodollars.perDollar)
        // Over the common denominator hours × 1000 × 10⁹.
        let denominator = hours * 1000 * billion
        let numerator = Int128(capexPerGPU.value) * 1000 * billion
            + Int128(powerWattsPerGPU) * Int128(pueBillionths) * Int128(perKilowattHour.value) * hours
        return Nanodollars(Int64(clamping: SelfHostMath.roundHalfUp(numerator, denominator)))
    }
}

/// One way to get a GPU for an hour.
public struct GPUOffer: Sendable, Hashable {
    public var id: String
    public var gpu: String
    public var provider: String
    public var provisioning: Provisioning
    public var perGPUHour: Nanodollars
    /// Set for `owned`: where `perGPUHour` comes from.
    public var owned: OwnedHardware?
    public var source: String
    public var checked: String
    public var note: String?

    public init(id: String, gpu: String, provider: String, provisioning: Provisioning, perGPUHour: Nanodollars,
                owned: OwnedHardware? = nil, source: String, checked: String, note: String? = nil) {
        self.id = id; self.gpu = gpu; self.provider = provider; self.provisioning = provisioning
        self.perGPUHour = perGPUHour; self.owned = owned; self.source = source; self.checked = checked; self.note = note
    }
}

/// Whether a throughput point was measured within a latency target or with requests queued without limit.
public enum OperatingPoint: String, Sendable, Hashable {
    case latencyTarget = "latency_target"
    case maxThroughput = "max_throughput"
}

/// What one replica (`gpus` GPUs running one engine) delivered for requests of one shape.
public struct ThroughputPoint: Sendable, Hashable {
    public var id: String
    public var model: String
    /// Other models this measurement stands for (the same architecture and size), each with the reason in `note`.
    public var appliesTo: [String]
    public var precision: String
    public var engine: String
    public var engineVersion: String
    public var gpu: String
    public var gpus: Int
    public var inputTokens: Double
    public var outputTokens: Double
    public var concurrency: Int?
    public var outputTokensPerSecond: Double
    public var requestsPerSecond: Double
    public var ttftMs: Double?
    public var at: OperatingPoint
    /// The latency target the point was measured under, as stated by its source (`"TTFT p99 ≤ 1 s"`).
    public var latencyTarget: String?
    public var source: String
    public var checked: String
    public var note: String?
    /// Came from the user's economics file rather than the shipped data: preferred when sizing.
    public var fromUserFile: Bool

    public init(id: String, model: String, appliesTo: [String] = [], precision: String, engine: String, engineVersion: String,
                gpu: String, gpus: Int, inputTokens: Double, outputTokens: Double, concurrency: Int? = nil,
                outputTokensPerSecond: Double, requestsPerSecond: Double, ttftMs: Double? = nil, at: OperatingPoint,
                latencyTarget: String? = nil, source: String, checked: String, note: String? = nil, fromUserFile: Bool = false) {
        self.id = id; self.model = model; self.appliesTo = appliesTo; self.precision = precision; self.engine = engine
        self.engineVersion = engineVersion; self.gpu = gpu; self.gpus = gpus; self.inputTokens = inputTokens
        self.outputTokens = outputTokens; self.concurrency = concurrency; self.outputTokensPerSecond = outputTokensPerSecond
        self.requestsPerSecond = requestsPerSecond; self.ttftMs = ttftMs; self.at = at; self.latencyTarget = latencyTarget
        self.source = source; self.checked = checked; self.note = note; self.fromUserFile = fromUserFile
    }

    public func serves(_ model: String) -> Bool {
        let wanted = ModelName.normalized(model)
        return ModelName.normalized(self.model) == wanted || appliesTo.contains { ModelName.normalized($0) == wanted }
    }
}

/// A hosting provider's per-token price for an open model.
public struct HostedPrice: Sendable, Hashable {
    public var id: String
    public var model: String
    public var provider: String
    /// The provider's own name for the model.
    public var offeredAs: String
    public var price: ModelPrice
    public var source: String
    public var checked: String

    public init(id: String, model: String, provider: String, offeredAs: String, price: ModelPrice, source: String, checked: String) {
        self.id = id; self.model = model; self.provider = provider; self.offeredAs = offeredAs; self.price = price
        self.source = source; self.checked = checked
    }
}

/// People's time to run the servers: on-call, upgrades, monitoring. A stated assumption, not a measurement.
public struct OperationsOverhead: Sendable, Hashable {
    /// Hours a month in billionths (10 h → 10_000_000_000).
    public var hoursPerMonthBillionths: Int64
    public var perHour: Nanodollars
    public var source: String

    public init(hoursPerMonthBillionths: Int64, perHour: Nanodollars, source: String) {
        self.hoursPerMonthBillionths = hoursPerMonthBillionths; self.perHour = perHour; self.source = source
    }

    public var perMonth: Nanodollars {
        Nanodollars(Int64(clamping: SelfHostMath.roundHalfUp(Int128(hoursPerMonthBillionths) * Int128(perHour.value),
                                                             Int128(Nanodollars.perDollar))))
    }
}

/// The knobs of the method, each stated in the report.
public struct SizingSettings: Sendable, Hashable {
    public var slotSeconds: Int
    /// Which percentile of the slots' load the replicas are sized for (0.95).
    public var percentile: Double
    /// The share of a maximum-throughput point a replica keeps within interactive latency.
    public var maxThroughputUsableShare: Double
    public var maxThroughputUsableShareSource: String
    /// Whether the engine reuses cached prefixes (vLLM's automatic prefix caching, TensorRT-LLM's KV reuse).
    public var prefixCaching: Bool
    /// With prefix caching, what a cached prompt token costs next to an uncached one (its KV is read, not computed).
    public var cachedPrefixWeight: Double

    public init(slotSeconds: Int = 300, percentile: Double = 0.95, maxThroughputUsableShare: Double = 0.7,
                maxThroughputUsableShareSource: String = "", prefixCaching: Bool = true, cachedPrefixWeight: Double = 0.1) {
        self.slotSeconds = slotSeconds; self.percentile = percentile; self.maxThroughputUsableShare = maxThroughputUsableShare
        self.maxThroughputUsableShareSource = maxThroughputUsableShareSource; self.prefixCaching = prefixCaching
        self.cachedPrefixWeight = cachedPrefixWeight
    }
}

/// Everything the self-host estimate reads besides the ledger: what ships in `economics.json`, with the
/// user's file laid over it.
public struct EconomicsData: Sendable, Hashable {
    public var offers: [GPUOffer]
    public var points: [ThroughputPoint]
    public var hosted: [HostedPrice]
    public var operations: OperationsOverhead
    public var settings: SizingSettings

    public init(offers: [GPUOffer], points: [ThroughputPoint], hosted: [HostedPrice], operations: OperationsOverhead,
                settings: SizingSettings) {
        self.offers = offers; self.points = points; self.hosted = hosted; self.operations = operations; self.settings = settings
    }

    /// `user` laid over `self`: a row with an id already present replaces it, other rows are added, and
    /// `operations` and `settings` given in the user's file replace the shipped ones field by field.
    public func overlaid(with user: EconomicsOverlay) -> EconomicsData {
        func merge<Row>(_ base: [Row], _ extra: [Row], id: (Row) -> String) -> [Row] {
            let replaced = Set(extra.map(id))
            return base.filter { !replaced.contains(id($0)) } + extra
        }
        var result = self
        result.offers = merge(offers, user.offers, id: \.id)
        result.points = merge(points, user.points.map { var point = $0; point.fromUserFile = true; return point }, id: \.id)
        result.hosted = merge(hosted, user.hosted, id: \.id)
        if let operations = user.operations { result.operations = operations }
        user.applySettings(&result.settings)
        return result
    }
}

/// What a user's economics file holds: every section optional.
public struct EconomicsOverlay: Sendable, Hashable {
    public var offers: [GPUOffer] = []
    public var points: [ThroughputPoint] = []
    public var hosted: [HostedPrice] = []
    public var operations: OperationsOverhead?
    var settings: [String: SettingValue] = [:]

    enum SettingValue: Sendable, Hashable {
        case int(Int), double(Double), bool(Bool), text(String)
    }

    public init(offers: [GPUOffer] = [], points: [ThroughputPoint] = [], hosted: [HostedPrice] = [],
                operations: OperationsOverhead? = nil) {
        self.offers = offers; self.points = points; self.hosted = hosted; self.operations = operations
    }

    func applySettings(_ settings: inout SizingSettings) {
        for (name, value) in self.settings {
            switch (name, value) {
            case ("slot_minutes", .int(let minutes)): settings.slotSeconds = minutes * 60
            case ("percentile", .double(let share)): settings.percentile = share
            case ("max_throughput_usable_share", .double(let share)): settings.maxThroughputUsableShare = share
            case ("max_throughput_usable_share_source", .text(let text)): settings.maxThroughputUsableShareSource = text
            case ("prefix_caching", .bool(let on)): settings.prefixCaching = on
            case ("cached_prefix_weight", .double(let weight)): settings.cachedPrefixWeight = weight
            default: break
            }
        }
    }
}

/// Model names as the ledger, the data and the user write them: `meta-llama/Llama-3.1-8B-Instruct`,
/// `Llama-3.1-8B-Instruct` and `llama-3.1-8b-instruct` are one model.
public enum ModelName {
    public static func normalized(_ name: String) -> String {
        let lower = name.lowercased()
        guard let slash = lower.lastIndex(of: "/") else { return lower }
        return String(lower[lower.index(after: slash)...])
    }
}

/// Integer helpers shared by the economics code.
public enum SelfHostMath {
    /// 8,760 hours ÷ 12: the month that monthly amounts (operations, amortisation) are spread over.
    public static let hoursPerMonth: Int64 = 730
    public static let millisecondsPerHour: Int64 = 3_600_000

    /// numerator ÷ denominator rounded half up (away from zero for negatives); denominator > 0.
    public static func roundHalfUp(_ numerator: Int128, _ denominator: Int128) -> Int128 {
        precondition(denominator > 0, "a positive denominator")
        if numerator >= 0 { return (numerator + denominator / 2) / denominator }
        return -((-numerator + denominator / 2) / denominator)
    }

    /// What `perHour` × `count` costs over `milliseconds`, rounded half up once.
    public static func cost(perHour: Nanodollars, count: Int, milliseconds: Int64) -> Nanodollars {
        Nanodollars(Int64(clamping: roundHalfUp(Int128(perHour.value) * Int128(count) * Int128(milliseconds),
                                                Int128(millisecondsPerHour))))
    }

    /// A monthly amount prorated to `milliseconds` (a month being 730 hours).
    public static func prorated(perMonth: Nanodollars, milliseconds: Int64) -> Nanodollars {
        Nanodollars(Int64(clamping: roundHalfUp(Int128(perMonth.value) * Int128(milliseconds),
                                                Int128(hoursPerMonth) * Int128(millisecondsPerHour))))
    }
}
