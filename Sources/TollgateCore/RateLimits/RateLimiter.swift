/// Requests and tokens in the last 60 seconds, in one-second buckets: memory is fixed whatever the rate,
/// and the window slides by whole seconds. Times are seconds since any fixed epoch, passed in.
public struct SlidingMinute: Sendable, Equatable {
    public static let seconds = 60

    private var buckets = [Int](repeating: 0, count: SlidingMinute.seconds)
    /// The second the newest bucket counts; buckets older than 60 s are cleared as time moves on.
    private var newest: Int64 = .min

    public init() {}

    /// Moves the window to `second`, forgetting what fell out of it.
    mutating func advance(to second: Int64) {
        if newest == .min || second - newest >= Int64(Self.seconds) {
            if buckets.contains(where: { $0 != 0 }) { buckets = [Int](repeating: 0, count: Self.seconds) }
            newest = second
            return
        }
        guard second > newest else { return }
        var moment = newest + 1
        while moment <= second {
            buckets[Self.slot(moment)] = 0
            moment += 1
        }
        newest = second
    }

    public mutating func total(at second: Int64) -> Int {
        advance(to: second)
        return buckets.reduce(0, +)
    }

    /// Counts `amount` at `second` (a negative amount corrects an earlier count, never below zero).
    public mutating func add(_ amount: Int, at second: Int64) {
        advance(to: second)
        guard second > newest - Int64(Self.seconds) else { return }
        let slot = Self.slot(min(second, newest))
        buckets[slot] = max(0, buckets[slot] + amount)
    }

    /// Seconds from `second` until `amount` more fits under `limit`, as old buckets leave the window;
    /// nil when it never can (`amount` alone is over the limit).
    public mutating func secondsUntilFits(_ amount: Int, limit: Int, at second: Int64) -> Int? {
        guard amount <= limit else { return nil }
        var total = total(at: second)
        var wait = 0
        while total + amount > limit, wait < Self.seconds {
            // The oldest bucket (counted 59 s ago, less the wait so far) leaves after one more second.
            wait += 1
            total -= buckets[Self.slot(second - Int64(Self.seconds) + Int64(wait))]
        }
        return wait
    }

    private static func slot(_ second: Int64) -> Int {
        Int(((second % Int64(seconds)) + Int64(seconds)) % Int64(seconds))
    }
}

/// The limits of one key, user or team. Either may be absent.
public struct RateLimit: Sendable, Hashable {
    public var requestsPerMinute: Int?
    public var tokensPerMinute: Int?

    public init(requestsPerMinute: Int? = nil, tokensPerMinute: Int? = nil) {
        self.requestsPerMinute = requestsPerMinute
        self.tokensPerMinute = tokensPerMinute
    }
}

/// What a caller is told about one limited subject (the `x-ratelimit-*` headers).
public struct RateLimitStatus: Sendable, Equatable {
    public var limitRequests: Int?
    public var remainingRequests: Int?
    public var limitTokens: Int?
    public var remainingTokens: Int?

    public init(limitRequests: Int? = nil, remainingRequests: Int? = nil, limitTokens: Int? = nil, remainingTokens: Int? = nil) {
        self.limitRequests = limitRequests
        self.remainingRequests = remainingRequests
        self.limitTokens = limitTokens
        self.remainingTokens = remainingTokens
    }
}

public enum RateDecision: Sendable, Equatable {
    case admitted(RateLimitStatus)
    /// `retryAfterSeconds` is nil when waiting cannot help (the request alone is over the token limit).
    case limited(dimension: Dimension, retryAfterSeconds: Int?, status: RateLimitStatus)

    public enum Dimension: String, Sendable { case requests, tokens }
}

/// Requests per minute and tokens per minute for one subject, over a sliding 60-second window. TPM counts
/// the admission bound (prompt bound + output limit) when the request is admitted, and is corrected to
/// the actual tokens at settlement.
public struct RateLimiter: Sendable, Equatable {
    public var limit: RateLimit
    private var requests = SlidingMinute()
    private var tokens = SlidingMinute()

    public init(limit: RateLimit) {
        self.limit = limit
    }

    /// Admits one request of at most `tokenBound` tokens at `second`, counting it, or refuses it and
    /// counts nothing.
    public mutating func admit(tokenBound: Int, at second: Int64) -> RateDecision {
        if let rpm = limit.requestsPerMinute, let wait = requests.secondsUntilFits(1, limit: rpm, at: second), wait > 0 {
            return .limited(dimension: .requests, retryAfterSeconds: wait, status: status(at: second))
        }
        if let tpm = limit.tokensPerMinute {
            guard let wait = tokens.secondsUntilFits(tokenBound, limit: tpm, at: second) else {
                return .limited(dimension: .tokens, retryAfterSeconds: nil, status: status(at: second))
            }
            if wait > 0 { return .limited(dimension: .tokens, retryAfterSeconds: wait, status: status(at: second)) }
        }
        requests.add(1, at: second)
        tokens.add(tokenBound, at: second)
        return .admitted(status(at: second))
    }

    /// Takes back an admission (another limit on the request's chain refused it).
    public mutating func cancel(tokenBound: Int, admittedAt second: Int64, now: Int64) {
        requests.advance(to: now)
        tokens.advance(to: now)
        requests.add(-1, at: second)
        tokens.add(-tokenBound, at: second)
    }

    /// Replaces an admitted request's token bound by what it actually used, in the second it was admitted.
    public mutating func settle(tokenBound: Int, actualTokens: Int, admittedAt second: Int64, now: Int64) {
        tokens.advance(to: now)
        tokens.add(actualTokens - tokenBound, at: second)
    }

    public mutating func status(at second: Int64) -> RateLimitStatus {
        RateLimitStatus(
            limitRequests: limit.requestsPerMinute,
            remainingRequests: limit.requestsPerMinute.map { max(0, $0 - requests.total(at: second)) },
            limitTokens: limit.tokensPerMinute,
            remainingTokens: limit.tokensPerMinute.map { max(0, $0 - tokens.total(at: second)) })
    }
}
