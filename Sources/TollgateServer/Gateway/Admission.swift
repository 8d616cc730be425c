import Foundation
import Synchronization
import TollgateCore

/// The admission stage: before a request is forwarded, every rate limit on its chain (key, user, team)
/// must admit it, all or nothing; after it, the token counts are corrected to what it used. State lives in
/// memory behind one lock, taken once on the way in and once on the way out.
final class Admission: Sendable {
    /// The limits configured for users, teams and keys, by `user:<name>`, `team:<name>`, `key:<id>`
    /// (names, so that config may name a user created later); a key's own `rpm`/`tpm` come first.
    private let configured: [String: RateLimit]
    private let limiters = Mutex<[String: RateLimiter]>([:])

    init(configured: [String: RateLimit]) {
        self.configured = configured
    }

    /// What was admitted, to settle or take back later.
    struct Ticket: Sendable {
        fileprivate var subjects: [String]
        fileprivate var tokenBound: Int
        fileprivate var second: Int64
        /// The tightest limits on the chain, for the `x-ratelimit-*` headers.
        var status: RateLimitStatus?
    }

    enum Outcome: Sendable {
        case admitted(Ticket)
        case rateLimited(RateDecision.Dimension, retryAfterSeconds: Int?, RateLimitStatus)
    }

    func limits(for key: ResolvedKey) -> [(String, RateLimit)] {
        var chain: [(String, RateLimit)] = []
        if key.record.rpm != nil || key.record.tpm != nil {
            chain.append(("key:" + key.record.id, RateLimit(requestsPerMinute: key.record.rpm, tokensPerMinute: key.record.tpm)))
        } else if let limit = configured["key:" + key.record.id] {
            chain.append(("key:" + key.record.id, limit))
        }
        if let user = key.record.userID, let name = key.userName, let limit = configured["user:" + name] {
            chain.append(("user:" + user, limit))
        }
        if let team = key.record.teamID, let name = key.teamName, let limit = configured["team:" + name] {
            chain.append(("team:" + team, limit))
        }
        return chain
    }

    func admit(key: ResolvedKey, tokenBound: Int, now: Date) -> Outcome {
        let second = Int64(now.timeIntervalSince1970.rounded(.down))
        // Most gateways limit few keys: skip building the chain when nothing can apply.
        guard !configured.isEmpty || key.record.rpm != nil || key.record.tpm != nil else {
            return .admitted(Ticket(subjects: [], tokenBound: tokenBound, second: second))
        }
        let chain = limits(for: key)
        guard !chain.isEmpty else { return .admitted(Ticket(subjects: [], tokenBound: tokenBound, second: second)) }
        return limiters.withLock { limiters in
            var admitted: [String] = []
            var statuses: [RateLimitStatus] = []
            for (subject, limit) in chain {
                var limiter = limiters[subject] ?? RateLimiter(limit: limit)
                limiter.limit = limit
                let decision = limiter.admit(tokenBound: tokenBound, at: second)
                limiters[subject] = limiter
                switch decision {
                case .admitted(let status):
                    admitted.append(subject)
                    statuses.append(status)
                case .limited(let dimension, let retry, let status):
                    for earlier in admitted {
                        limiters[earlier]?.cancel(tokenBound: tokenBound, admittedAt: second, now: second)
                    }
                    return .rateLimited(dimension, retryAfterSeconds: retry, status)
                }
            }
            return .admitted(Ticket(subjects: admitted, tokenBound: tokenBound, second: second, status: Self.tightest(statuses)))
        }
    }

    func settle(_ ticket: Ticket, actualTokens: Int, now: Date) {
        guard !ticket.subjects.isEmpty else { return }
        let second = Int64(now.timeIntervalSince1970.rounded(.down))
        limiters.withLock { limiters in
            for subject in ticket.subjects {
                limiters[subject]?.settle(tokenBound: ticket.tokenBound, actualTokens: actualTokens, admittedAt: ticket.second, now: second)
            }
        }
    }

    /// The smallest remainder of each kind across the chain, with its limit.
    static func tightest(_ statuses: [RateLimitStatus]) -> RateLimitStatus? {
        guard !statuses.isEmpty else { return nil }
        var result = RateLimitStatus()
        for status in statuses {
            if let remaining = status.remainingRequests, remaining < (result.remainingRequests ?? .max) {
                result.remainingRequests = remaining
                result.limitRequests = status.limitRequests
            }
            if let remaining = status.remainingTokens, remaining < (result.remainingTokens ?? .max) {
                result.remainingTokens = remaining
                result.limitTokens = status.limitTokens
            }
        }
        return result
    }
}
