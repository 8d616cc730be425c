/// Keeps a learned route's `strong_share` true on the gateway's own traffic.
///
/// The thresholds in a weights file are quantiles of the scores of the trainer's validation prompts; real
/// traffic is shaped differently (longer, few-shot, code), and the same threshold can send 5 % or 100 % of it
/// to the strong model. This keeps the scores of the latest `window` decisions and, once `minimumSamples` are
/// in, answers the threshold that sends the wanted share of *those* to the strong model. A pure value: the
/// gateway holds one per learned route behind a lock.
public struct ShareCalibration: Sendable {
    public let window: Int
    public let minimumSamples: Int
    /// How many new scores pass between two recomputations of the threshold (sorting the window).
    public let refreshEvery: Int
    public let strongShare: Double

    private var scores: [Double] = []
    private var next = 0
    private var sinceRefresh = 0
    /// The calibrated threshold, nil until `minimumSamples` scores are in.
    public private(set) var threshold: Double?

    public init(strongShare: Double, window: Int = 2_000, minimumSamples: Int = 200, refreshEvery: Int = 50) {
        precondition(window > 0 && minimumSamples > 0 && minimumSamples <= window && refreshEvery > 0)
        self.strongShare = strongShare
        self.window = window
        self.minimumSamples = minimumSamples
        self.refreshEvery = refreshEvery
        scores.reserveCapacity(window)
    }

    public var sampleCount: Int { scores.count }

    /// Records one decision's score; recomputes the threshold when due.
    public mutating func record(_ score: Double) {
        guard score.isFinite else { return }
        if scores.count < window {
            scores.append(score)
        } else {
            scores[next] = score
            next = (next + 1) % window
        }
        sinceRefresh += 1
        if scores.count >= minimumSamples, threshold == nil || sinceRefresh >= refreshEvery {
            threshold = Self.threshold(sending: strongShare, of: scores)
            sinceRefresh = 0
        }
    }

    /// The lowest score that sends at most `share` of `scores` to the strong model (`score >= threshold`):
    /// the ⌈share × n⌉-th highest score; `+∞` for a share of 0 and 0 for a share of 1.
    public static func threshold(sending share: Double, of scores: [Double]) -> Double {
        if share.isNaN || share <= 0 || scores.isEmpty { return .infinity }
        if share >= 1 { return 0 }
        let sorted = scores.sorted(by: >)
        let strong = max(1, Int((share * Double(sorted.count)).rounded(.up)))
        return sorted[min(strong, sorted.count) - 1]
    }
}
