/// Quality against the share of calls sent to the strong model, for one router on one data set: the curve behind
/// APGR and CPT (the RouteLLM paper's terms, `shared/data/routing/README.md`).
///
/// The curve is piecewise linear through equally spaced points: `qualities[i]` is the mean score when the share
/// `i / (qualities.count - 1)` goes to the strong model. A router's curve has a point per row (the top-k scored rows
/// go to the strong model); random routing's has two, since its expected quality is a straight line.
public struct RoutingCurve: Sendable, Hashable {
    public var qualities: [Double]

    public init(qualities: [Double]) {
        precondition(qualities.count >= 2, "a curve needs its two ends")
        self.qualities = qualities
    }

    /// The curve of a router that scores row i with `routerScores[i]` (higher = more in need of the strong model).
    /// Rows with equal scores are sent together by any threshold, so within a tie each counts with the tie's mean:
    /// a router that scores every row alike is exactly random routing.
    public init(strongScores: [Double], weakScores: [Double], routerScores: [Double]) {
        precondition(strongScores.count == weakScores.count && weakScores.count == routerScores.count)
        let count = strongScores.count
        guard count > 0 else {
            self.init(qualities: [0, 0])
            return
        }
        let gains = zip(strongScores, weakScores).map { $0 - $1 }
        let weakTotal = weakScores.reduce(0, +)
        self.init(qualities: Self.cumulativeByRank(gains, scores: routerScores).map { (weakTotal + $0) / Double(count) })
    }

    /// Random routing: the expected quality at share s is `quality_W + s · (quality_S − quality_W)`.
    public static func random(strongQuality: Double, weakQuality: Double) -> RoutingCurve {
        RoutingCurve(qualities: [weakQuality, strongQuality])
    }

    public var weakQuality: Double { qualities[0] }
    public var strongQuality: Double { qualities[qualities.count - 1] }

    public func quality(atStrongShare share: Double) -> Double {
        Self.interpolate(qualities, at: share)
    }

    /// Performance gap recovered: 0 at the weak model's quality, 1 at the strong model's; NaN when they are equal.
    public func pgr(atStrongShare share: Double) -> Double {
        gapRecovered(quality(atStrongShare: share))
    }

    /// The area under PGR over the strong share from 0 to 1: the trapezoid rule on the curve's own points, which
    /// is exact for a piecewise-linear curve (no finer grid changes it).
    public var apgr: Double {
        let values = qualities.map(gapRecovered)
        var area = 0.0
        for index in 1..<values.count { area += (values[index - 1] + values[index]) / 2 }
        return area / Double(values.count - 1)
    }

    /// CPT(x): the smallest share of strong calls at which PGR reaches `target`; nil if it never does.
    public func strongShare(reachingPGR target: Double) -> Double? {
        let values = qualities.map(gapRecovered)
        let tolerance = 1e-12
        if values[0] >= target - tolerance { return 0 }
        for index in 1..<values.count where values[index] >= target - tolerance {
            let (before, after) = (values[index - 1], values[index])
            let fraction: Double = after - before > 0 ? min(1.0, max(0.0, (target - before) / (after - before))) : 1
            return (Double(index - 1) + fraction) / Double(values.count - 1)
        }
        return nil
    }

    private func gapRecovered(_ quality: Double) -> Double {
        let gap = strongQuality - weakQuality
        return abs(gap) < 1e-12 ? .nan : (quality - weakQuality) / gap
    }

    /// `result[k]` = the sum of `values` over the k rows with the highest `scores`, ties sharing their mean.
    static func cumulativeByRank(_ values: [Double], scores: [Double]) -> [Double] {
        let order = scores.indices.sorted { scores[$0] > scores[$1] }
        var cumulative = [0.0]
        cumulative.reserveCapacity(values.count + 1)
        var start = 0
        while start < order.count {
            var end = start + 1
            while end < order.count, scores[order[end]] == scores[order[start]] { end += 1 }
            let mean = order[start..<end].reduce(0.0) { $0 + values[$1] } / Double(end - start)
            for _ in start..<end { cumulative.append(cumulative[cumulative.count - 1] + mean) }
            start = end
        }
        return cumulative
    }

    /// Linear interpolation in equally spaced `points` over [0, 1].
    static func interpolate(_ points: [Double], at share: Double) -> Double {
        let position = min(1, max(0, share)) * Double(points.count - 1)
        let lower = min(Int(position), points.count - 2)
        let fraction = position - Double(lower)
        return points[lower] + fraction * (points[lower + 1] - points[lower])
    }
}

/// The figures `tollgate route-eval` reports for one router.
public struct RouterSummary: Sendable, Hashable {
    public var apgr: Double
    /// CPT(50 %) and CPT(80 %): the share of strong calls needed to recover half and 80 % of the gap.
    public var cpt50: Double?
    public var cpt80: Double?
    /// Mean score at 20, 50 and 80 % strong calls.
    public var qualityAt20: Double
    public var qualityAt50: Double
    public var qualityAt80: Double

    public init(_ curve: RoutingCurve) {
        apgr = curve.apgr
        cpt50 = curve.strongShare(reachingPGR: 0.5)
        cpt80 = curve.strongShare(reachingPGR: 0.8)
        qualityAt20 = curve.quality(atStrongShare: 0.2)
        qualityAt50 = curve.quality(atStrongShare: 0.5)
        qualityAt80 = curve.quality(atStrongShare: 0.8)
    }
}

/// A router between a strong and a weak model, measured on labelled rows beside the two baselines every router
/// must beat: random routing and length-only routing (the longer the prompt, the more likely strong).
public struct PairEvaluation: Sendable {
    public var strong: String
    public var weak: String
    /// Rows that have scores for both models, and rows left out because they lack one.
    public var rows: Int
    public var skipped: Int
    public var learned: RoutingCurve
    public var lengthOnly: RoutingCurve
    public var random: RoutingCurve

    public init(samples: [RoutingSample], strong: String, weak: String, routerScore: (String) -> Double) {
        var strongScores: [Double] = [], weakScores: [Double] = [], routerScores: [Double] = [], lengths: [Double] = []
        for sample in samples {
            guard let strongScore = sample.scores[strong], let weakScore = sample.scores[weak] else { continue }
            strongScores.append(strongScore)
            weakScores.append(weakScore)
            routerScores.append(routerScore(sample.prompt))
            lengths.append(Double(sample.prompt.utf8.count))
        }
        self.strong = strong
        self.weak = weak
        rows = strongScores.count
        skipped = samples.count - rows
        learned = RoutingCurve(strongScores: strongScores, weakScores: weakScores, routerScores: routerScores)
        lengthOnly = RoutingCurve(strongScores: strongScores, weakScores: weakScores, routerScores: lengths)
        random = .random(strongQuality: learned.strongQuality, weakQuality: learned.weakQuality)
    }
}

/// Quality against cost for a portfolio of models with prices: every single model, the oracle that picks the
/// cheapest model with the row's best score, and a portfolio router.
///
/// The portfolio router walks the cost frontier (the models that score better than every cheaper one, by mean
/// cost): between each two neighbours on it, the rows the learned router scores highest go to the dearer one,
/// 0–100 % in steps of 10 %. One ranking serves every step, so the curve shows what the learned score buys at each
/// price point.
public struct PortfolioEvaluation: Sendable {
    public struct Point: Sendable, Hashable {
        public var label: String
        public var quality: Double
        /// Mean cost of 1,000 queries in USD.
        public var costPer1000: Double

        public init(label: String, quality: Double, costPer1000: Double) {
            self.label = label
            self.quality = quality
            self.costPer1000 = costPer1000
        }
    }

    /// Rows with a score and a cost for every model, and rows left out because they lack one.
    public var rows: Int
    public var skipped: Int
    /// Each model alone, in the order given.
    public var singles: [Point]
    public var bestSingle: Point
    public var cheapestSingle: Point
    public var oracle: Point
    /// The models of the cost frontier, cheapest first.
    public var frontier: [String]
    public var curve: [Point]
    /// The lowest cost on the router's curve at which it reaches the best single model's quality, if it does.
    public var costToMatchBest: Double?

    /// Nil when `models` is empty or no row has all of them with costs.
    public init?(samples: [RoutingSample], models: [String], routerScore: (String) -> Double) {
        let usable = samples.filter { sample in models.allSatisfy { sample.scores[$0] != nil && sample.costs[$0] != nil } }
        guard !models.isEmpty, !usable.isEmpty else { return nil }
        let count = Double(usable.count)
        rows = usable.count
        skipped = samples.count - usable.count

        func mean(_ values: some Sequence<Double>) -> Double { values.reduce(0, +) / count }
        singles = models.map { model in
            Point(label: model, quality: mean(usable.map { $0.scores[model]! }),
                  costPer1000: mean(usable.map { $0.costs[model]! }) * 1000)
        }
        bestSingle = singles.min { ($1.quality, -$1.costPer1000) < ($0.quality, -$0.costPer1000) }!
        cheapestSingle = singles.min { ($0.costPer1000, -$0.quality) < ($1.costPer1000, -$1.quality) }!

        var oracleQuality = 0.0, oracleCost = 0.0
        for sample in usable {
            let best = models.map { sample.scores[$0]! }.max()!
            let pick = models.filter { sample.scores[$0]! == best }.min { sample.costs[$0]! < sample.costs[$1]! }!
            oracleQuality += best
            oracleCost += sample.costs[pick]!
        }
        oracle = Point(label: "oracle (cheapest correct)", quality: oracleQuality / count, costPer1000: oracleCost / count * 1000)

        var frontierPoints: [Point] = []
        for point in singles.sorted(by: { ($0.costPer1000, -$0.quality) < ($1.costPer1000, -$1.quality) })
        where point.quality > (frontierPoints.last?.quality ?? -.infinity) {
            frontierPoints.append(point)
        }
        frontier = frontierPoints.map(\.label)

        let routerScores = usable.map { routerScore($0.prompt) }
        var curve = [frontierPoints[0]]
        for (cheap, dear) in zip(frontier, frontier.dropFirst()) {
            let qualityGain = RoutingCurve.cumulativeByRank(usable.map { $0.scores[dear]! - $0.scores[cheap]! }, scores: routerScores)
            let costGain = RoutingCurve.cumulativeByRank(usable.map { $0.costs[dear]! - $0.costs[cheap]! }, scores: routerScores)
            let base = (quality: mean(usable.map { $0.scores[cheap]! }), cost: mean(usable.map { $0.costs[cheap]! }))
            for step in 1...10 {
                let share = Double(step) / 10
                curve.append(Point(label: "\(cheap) → \(dear) \(step * 10)%",
                                   quality: base.quality + RoutingCurve.interpolate(qualityGain, at: share) / count,
                                   costPer1000: (base.cost + RoutingCurve.interpolate(costGain, at: share) / count) * 1000))
            }
        }
        self.curve = curve
        costToMatchBest = curve.filter { $0.quality >= bestSingle.quality - 1e-12 }.map(\.costPer1000).min()
    }
}
