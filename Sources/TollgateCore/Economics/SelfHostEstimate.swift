import Foundation

/// What serving a window of the ledger's traffic on GPUs of one's own would have cost, beside what it did
/// cost and what a host of the open model would have charged. Pure: the ledger is read into a
/// `TrafficProfile` first.
///
/// The method, step by step:
/// 1. Each shape bucket's work per request (replica-seconds) is interpolated by `ReplicaCapacity` at the
///    bucket's mean shape, a cached prompt token counting `cachedPrefixWeight` of an uncached one when the
///    engine caches prefixes.
/// 2. Load of slot k (replicas busy at once) = Σ over buckets of work × Σ shares of flight in k ÷ slot length.
/// 3. Replicas = ⌈p95 of the slots' load⌉ (at least 1): sized for the busy slots, not the average.
/// 4. Self-host cost = replicas × GPUs per replica × $/GPU-hour × the window's hours (idle hours billed) +
///    the operations overhead prorated to the window.
/// 5. Utilisation = the mean load over the window ÷ replicas: the share of the fleet's usable capacity
///    (headroom for latency excluded) that the traffic used.
/// 6. Break-even: the same traffic scaled by k has load k × p95 and API cost k × A; self-hosting is cheaper
///    from the smallest k with r(k)·C + O ≤ k·A, where C is one replica's cost for the window and O the
///    overhead. With r replicas, r(A/p95 − C) ≥ O ⇒ r* = max(1, ⌈O ÷ (A/p95 − C)⌉) and k* = (r*·C + O) ÷ A;
///    none when A/p95 ≤ C (a fully used replica costs more than the API charges for its traffic).
public struct SelfHostEstimate: Sendable {
    public struct Bucket: Sendable, Hashable {
        public var key: ShapeBucket
        public var requests: Int
        public var meanInput: Double
        public var meanCached: Double
        public var meanOutput: Double
        /// The input the engine computes: uncached + cached × the cached-prefix weight.
        public var effectiveInput: Double
        /// Replica-seconds per request, headroom included.
        public var workSeconds: Double
        public var method: ReplicaCapacity.Method
        /// Requests a second one replica serves of this shape, headroom included.
        public var requestsPerSecondPerReplica: Double { 1 / workSeconds }
    }

    public struct BreakEven: Sendable, Hashable {
        /// The factor on the window's traffic at which self-hosting costs what the comparison does.
        public var factor: Double
        public var replicas: Int
        public var requestsPerDay: Double
    }

    public var windowMilliseconds: Int64
    public var requests: Int
    public var buckets: [Bucket]
    public var slotLoads: [Double]
    public var p95Load: Double
    public var peakLoad: Double
    public var meanLoad: Double
    /// Requests in flight (time-weighted) in the p95 slot of observed concurrency, from the ledger's latencies.
    public var p95Concurrency: Double
    public var replicas: Int
    public var gpusPerReplica: Int
    public var gpus: Int { replicas * gpusPerReplica }
    public var utilisation: Double
    public var gpuCost: Nanodollars
    public var operationsCost: Nanodollars
    public var selfHostCost: Nanodollars { gpuCost + operationsCost }
    public var replicaCost: Nanodollars
    public var breakEven: BreakEven?
    public var breakEvenVersusHosted: BreakEven?

    /// The value at rank ⌈p·n⌉ of the sorted values (nearest rank), 0 for none.
    public static func percentile(_ values: [Double], _ p: Double) -> Double {
        guard !values.isEmpty else { return 0 }
        let sorted = values.sorted()
        let rank = Int((p * Double(sorted.count)).rounded(.up))
        return sorted[min(max(rank, 1), sorted.count) - 1]
    }

    /// Replicas for a load: whole replicas, at least one; a load a hair over a whole number (float noise) does
    /// not buy another.
    public static func replicas(forLoad load: Double) -> Int {
        max(1, Int((load - 1e-9).rounded(.up)))
    }

    public static func breakEven(comparisonCost: Nanodollars, p95Load: Double, replicaCost: Nanodollars,
                                 overhead: Nanodollars, requests: Int, windowMilliseconds: Int64) -> BreakEven? {
        let a = Double(comparisonCost.value), c = Double(replicaCost.value), o = Double(overhead.value)
        guard a > 0, p95Load > 0, requests > 0 else { return nil }
        let margin = a / p95Load - c
        guard margin > 0 else { return nil }
        let r = max(1, Int((o / margin - 1e-9).rounded(.up)))
        let factor = (Double(r) * c + o) / a
        let days = Double(windowMilliseconds) / 86_400_000
        return BreakEven(factor: factor, replicas: r, requestsPerDay: factor * Double(requests) / days)
    }

    public init?(profile: TrafficProfile, capacity: ReplicaCapacity, settings: SizingSettings, gpusPerReplica: Int,
                 perGPUHour: Nanodollars, operations: OperationsOverhead, apiCost: Nanodollars, hostedCost: Nanodollars?) {
        var buckets: [Bucket] = []
        for (key, totals) in profile.buckets.sorted(by: { $0.key < $1.key }) {
            let n = Double(totals.requests)
            let meanInput = Double(totals.inputTokens) / n, meanCached = Double(totals.cachedTokens) / n
            let meanOutput = Double(totals.outputTokens) / n
            let effective = meanInput + meanCached * (settings.prefixCaching ? settings.cachedPrefixWeight : 1)
            guard let (seconds, method) = capacity.work(input: effective, output: meanOutput) else { return nil }
            buckets.append(Bucket(key: key, requests: totals.requests, meanInput: meanInput, meanCached: meanCached,
                                  meanOutput: meanOutput, effectiveInput: effective, workSeconds: seconds,
                                  method: method))
        }
        var loads = Array(repeating: 0.0, count: profile.slotCount)
        for bucket in buckets {
            let shares = profile.buckets[bucket.key]!.slotShares
            for k in loads.indices where shares[k] > 0 {
                loads[k] += bucket.workSeconds * shares[k] * 1000 / Double(profile.slotLength(k))
            }
        }
        let concurrency = profile.inFlightMilliseconds.indices.map { profile.inFlightMilliseconds[$0] / Double(profile.slotLength($0)) }
        let window = profile.to - profile.from
        windowMilliseconds = window
        requests = profile.requests
        self.buckets = buckets
        slotLoads = loads
        p95Load = Self.percentile(loads, settings.percentile)
        peakLoad = loads.max() ?? 0
        meanLoad = loads.indices.reduce(0.0) { $0 + loads[$1] * Double(profile.slotLength($1)) } / Double(window)
        p95Concurrency = Self.percentile(concurrency, settings.percentile)
        replicas = Self.replicas(forLoad: p95Load)
        self.gpusPerReplica = gpusPerReplica
        utilisation = meanLoad / Double(replicas)
        gpuCost = SelfHostMath.cost(perHour: perGPUHour, count: replicas * gpusPerReplica, milliseconds: window)
        replicaCost = SelfHostMath.cost(perHour: perGPUHour, count: gpusPerReplica, milliseconds: window)
        operationsCost = SelfHostMath.prorated(perMonth: operations.perMonth, milliseconds: window)
        breakEven = Self.breakEven(comparisonCost: apiCost, p95Load: p95Load, replicaCost: replicaCost, overhead: operationsCost,
                                   requests: requests, windowMilliseconds: window)
        breakEvenVersusHosted = hostedCost.flatMap {
            Self.breakEven(comparisonCost: $0, p95Load: p95Load, replicaCost: replicaCost, overhead: operationsCost,
                           requests: requests, windowMilliseconds: window)
        }
    }
}
