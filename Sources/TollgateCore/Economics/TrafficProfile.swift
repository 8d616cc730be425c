import Foundation

/// One ledger row as the self-host estimate reads it.
public struct LedgerUsageSample: Sendable, Hashable {
    /// When the request started (the ledger's `created_at`), in milliseconds since 1970.
    public var startMilliseconds: Int64
    public var latencyMilliseconds: Int
    public var usage: Usage
    public var cost: Nanodollars

    public init(startMilliseconds: Int64, latencyMilliseconds: Int, usage: Usage, cost: Nanodollars) {
        self.startMilliseconds = startMilliseconds
        self.latencyMilliseconds = latencyMilliseconds
        self.usage = usage
        self.cost = cost
    }
}

/// Request shapes, by powers of four of the prompt's uncached tokens, of its cached tokens and of the output.
public struct ShapeBucket: Hashable, Sendable, Comparable {
    /// Upper bounds (exclusive) of each class; the last class is open.
    public static let inputEdges = [256, 1024, 4096, 16384, 65536]
    public static let cachedEdges = [1, 1024, 8192, 65536]
    public static let outputEdges = [64, 256, 1024, 4096]

    public var input: Int
    public var cached: Int
    public var output: Int

    public init(input: Int, cached: Int, output: Int) { self.input = input; self.cached = cached; self.output = output }

    public init(_ usage: Usage) {
        func index(_ value: Int, _ edges: [Int]) -> Int { edges.firstIndex { value < $0 } ?? edges.count }
        self.init(input: index(usage.inputTokens + usage.cacheWriteTokens, Self.inputEdges),
                  cached: index(usage.cachedInputTokens, Self.cachedEdges), output: index(usage.outputTokens, Self.outputEdges))
    }

    public static func < (lhs: ShapeBucket, rhs: ShapeBucket) -> Bool {
        (lhs.input, lhs.cached, lhs.output) < (rhs.input, rhs.cached, rhs.output)
    }

    /// `"1024–4095"`, `"≥65536"`, `"0"`: the class's range of tokens.
    public static func label(_ index: Int, _ edges: [Int]) -> String {
        let low = index == 0 ? 0 : edges[index - 1]
        if index == edges.count { return "≥\(low)" }
        let high = edges[index] - 1
        return low == high ? "\(low)" : "\(low)–\(high)"
    }
}

/// The ledger's requests of one model over a window, folded row by row into what the estimate needs, in
/// memory proportional to the window's slots and the buckets seen, never to the rows: per shape bucket the
/// count and token sums, and per slot the share of each request's time in flight that fell in it.
///
/// A request is in flight from its start for its latency (at least 1 ms); a slot receives the fraction of
/// that interval inside it, so each request adds up to 1 over the slots (less when it runs past the window's
/// end). The estimate spreads each request's work over its flight the same way.
public struct TrafficProfile: Sendable {
    public struct BucketTotals: Sendable, Hashable {
        public var requests = 0
        public var inputTokens = 0
        public var cachedTokens = 0
        public var outputTokens = 0
        /// Σ over the slots of the requests' shares of flight, per slot.
        public var slotShares: [Double]
    }

    public let from: Int64
    public let to: Int64
    public let slotMilliseconds: Int64
    public private(set) var buckets: [ShapeBucket: BucketTotals] = [:]
    /// Request-milliseconds in flight per slot: the observed concurrency × the slot's length.
    public private(set) var inFlightMilliseconds: [Double]
    public private(set) var requests = 0
    /// Σ of the ledger's `cost`, exactly.
    public private(set) var ledgerCost = Nanodollars.zero
    /// Each price of `pricings` applied to every request, rounded once per request as the gateway bills.
    public private(set) var pricedCosts: [Nanodollars]
    private let pricings: [ModelPrice]

    /// The window `[from, to)` in milliseconds; `pricings` are the prices to re-price every request at.
    public init(from: Int64, to: Int64, slotSeconds: Int, pricings: [ModelPrice] = []) {
        precondition(to > from && slotSeconds > 0, "a window with a length, slots with a length")
        self.from = from
        self.to = to
        slotMilliseconds = Int64(slotSeconds) * 1000
        inFlightMilliseconds = Array(repeating: 0, count: Int((to - from + slotMilliseconds - 1) / slotMilliseconds))
        self.pricings = pricings
        pricedCosts = Array(repeating: .zero, count: pricings.count)
    }

    public var slotCount: Int { inFlightMilliseconds.count }

    /// The length of slot `k` (the last may be cut short by the window's end).
    public func slotLength(_ k: Int) -> Int64 {
        min(slotMilliseconds, to - (from + Int64(k) * slotMilliseconds))
    }

    public mutating func add(_ sample: LedgerUsageSample) {
        let start = sample.startMilliseconds
        guard start >= from, start < to else { return }
        requests += 1
        ledgerCost += sample.cost
        for (index, price) in pricings.enumerated() { pricedCosts[index] += price.cost(of: sample.usage) }

        let key = ShapeBucket(sample.usage)
        // Mutated in place through the dictionary: a copy of the bucket would copy its slot array on every row.
        if buckets[key] == nil { buckets[key] = BucketTotals(slotShares: Array(repeating: 0, count: slotCount)) }
        buckets[key]!.requests += 1
        buckets[key]!.inputTokens += sample.usage.inputTokens + sample.usage.cacheWriteTokens
        buckets[key]!.cachedTokens += sample.usage.cachedInputTokens
        buckets[key]!.outputTokens += sample.usage.outputTokens
        let duration = Int64(max(sample.latencyMilliseconds, 1))
        let end = min(start + duration, to)
        var k = Int((start - from) / slotMilliseconds)
        while k < slotCount {
            let slotStart = from + Int64(k) * slotMilliseconds
            guard slotStart < end else { break }
            let overlap = min(end, slotStart + slotMilliseconds) - max(start, slotStart)
            buckets[key]!.slotShares[k] += Double(overlap) / Double(duration)
            inFlightMilliseconds[k] += Double(overlap)
            k += 1
        }
    }
}
