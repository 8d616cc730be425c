import Testing
@testable import TollgateCore

@Suite("Rate limits: requests and tokens per minute over a sliding 60-second window")
struct RateLimiterTests {
    @Test("the window forgets what is older than 60 seconds, one second at a time")
    func sliding() {
        var minute = SlidingMinute()
        minute.add(5, at: 1000)
        minute.add(3, at: 1030)
        #expect(minute.total(at: 1030) == 8)
        #expect(minute.total(at: 1059) == 8)
        #expect(minute.total(at: 1060) == 3)
        #expect(minute.total(at: 1089) == 3)
        #expect(minute.total(at: 1090) == 0)
        minute.add(1, at: 5000)
        #expect(minute.total(at: 5000) == 1)
    }

    @Test("the 61st request in a minute is refused with the seconds until one leaves the window")
    func requestsPerMinute() {
        var limiter = RateLimiter(limit: RateLimit(requestsPerMinute: 60))
        for i in 0..<60 {
            guard case .admitted = limiter.admit(tokenBound: 10, at: 100 + Int64(i / 10)) else {
                Issue.record("request \(i) refused")
                return
            }
        }
        // Requests came at seconds 100…105, ten a second; at 110 the first ten leave after 50 s.
        guard case .limited(.requests, let retry, let status) = limiter.admit(tokenBound: 10, at: 110) else {
            Issue.record("the 61st request was admitted")
            return
        }
        #expect(retry == 50)
        #expect(status.remainingRequests == 0)
        #expect(status.limitRequests == 60)
        guard case .admitted(let after) = limiter.admit(tokenBound: 10, at: 160) else {
            Issue.record("still refused once the first ten left the window")
            return
        }
        #expect(after.remainingRequests == 9)
    }

    @Test("a refused request counts nothing")
    func refusedCountsNothing() {
        var limiter = RateLimiter(limit: RateLimit(requestsPerMinute: 1, tokensPerMinute: 100))
        guard case .admitted = limiter.admit(tokenBound: 50, at: 0) else { Issue.record("refused"); return }
        for second in 1...10 { _ = limiter.admit(tokenBound: 50, at: Int64(second)) }
        #expect(limiter.status(at: 10).remainingTokens == 50)
        guard case .admitted = limiter.admit(tokenBound: 50, at: 60) else { Issue.record("refused after the window"); return }
    }

    @Test("tokens per minute count the admission bound, corrected to the actual tokens at settlement")
    func tokensCorrected() {
        var limiter = RateLimiter(limit: RateLimit(tokensPerMinute: 10_000))
        guard case .admitted(let admitted) = limiter.admit(tokenBound: 8_000, at: 10) else { Issue.record("refused"); return }
        #expect(admitted.remainingTokens == 2_000)
        guard case .limited(.tokens, let retry, _) = limiter.admit(tokenBound: 8_000, at: 11) else {
            Issue.record("a second 8,000-token bound fit in 10,000")
            return
        }
        #expect(retry == 59)
        limiter.settle(tokenBound: 8_000, actualTokens: 1_500, admittedAt: 10, now: 12)
        #expect(limiter.status(at: 12).remainingTokens == 8_500)
        guard case .admitted = limiter.admit(tokenBound: 8_000, at: 12) else {
            Issue.record("the corrected count still refused the request")
            return
        }
    }

    @Test("a request whose bound alone is over the token limit can never fit: no Retry-After")
    func neverFits() {
        var limiter = RateLimiter(limit: RateLimit(tokensPerMinute: 1_000))
        guard case .limited(.tokens, nil, _) = limiter.admit(tokenBound: 1_001, at: 0) else {
            Issue.record("expected a refusal without a retry time")
            return
        }
    }

    @Test("a correction for a second that already left the window changes nothing")
    func lateCorrection() {
        var limiter = RateLimiter(limit: RateLimit(tokensPerMinute: 1_000))
        _ = limiter.admit(tokenBound: 900, at: 0)
        _ = limiter.admit(tokenBound: 100, at: 59)
        limiter.settle(tokenBound: 900, actualTokens: 10, admittedAt: 0, now: 70)
        #expect(limiter.status(at: 70).remainingTokens == 900)
    }
}

@Suite("Rate limits: cancelling an admission")
struct RateLimiterCancelTests {
    @Test("a cancelled admission gives back its request and its tokens")
    func cancel() {
        var limiter = RateLimiter(limit: RateLimit(requestsPerMinute: 1, tokensPerMinute: 100))
        guard case .admitted = limiter.admit(tokenBound: 80, at: 5) else { Issue.record("refused"); return }
        limiter.cancel(tokenBound: 80, admittedAt: 5, now: 6)
        #expect(limiter.status(at: 6) == RateLimitStatus(limitRequests: 1, remainingRequests: 1, limitTokens: 100, remainingTokens: 100))
        guard case .admitted = limiter.admit(tokenBound: 80, at: 6) else { Issue.record("refused after cancel"); return }
    }
}
