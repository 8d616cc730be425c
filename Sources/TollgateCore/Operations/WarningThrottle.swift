/// Keeps a flood of one kind of warning from flooding the log: at most one line per kind per interval; the
/// lines held back are counted and reported with the next one written. Time is passed in (seconds on any
/// monotonic clock), so the rule is tested without a clock.
public struct WarningThrottle<Kind: Hashable & Sendable>: Sendable {
    public enum Decision: Equatable, Sendable {
        /// Write the line, saying how many of its kind were held back since the last one written.
        case write(heldBack: Int)
        case holdBack
    }

    public let interval: Double
    private var lastWritten: [Kind: Double] = [:]
    private var heldBack: [Kind: Int] = [:]
    /// Every warning seen, written or not, by kind.
    public private(set) var counts: [Kind: Int] = [:]

    public init(interval: Double = 1) {
        self.interval = interval
    }

    public mutating func record(_ kind: Kind, at now: Double) -> Decision {
        counts[kind, default: 0] += 1
        if let last = lastWritten[kind], now - last < interval {
            heldBack[kind, default: 0] += 1
            return .holdBack
        }
        lastWritten[kind] = now
        return .write(heldBack: heldBack.removeValue(forKey: kind) ?? 0)
    }
}
