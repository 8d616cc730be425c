import Foundation
import Synchronization
import TollgateCore

/// Every deployment's circuit breaker and counters (`GET /admin/deployments`), by deployment id, shared by
/// all event loops.
final class DeploymentHealth: Sendable {
    struct Entry: Sendable {
        var breaker: CircuitBreaker
        var inFlight = 0
        var requests = 0
        var failures = 0
        /// Times the breaker opened.
        var trips = 0
        var lastError: String?
        var lastFailureAt: Date?
    }

    private let entries = Mutex<[String: Entry]>([:])
    private let failureThreshold: Int
    private let coolDown: TimeInterval

    init(failureThreshold: Int = 5, coolDown: TimeInterval = 30) {
        self.failureThreshold = failureThreshold
        self.coolDown = coolDown
    }

    private func update<T>(_ id: String, _ body: (inout Entry) -> T) -> T {
        entries.withLock { entries in
            var entry = entries[id] ?? Entry(breaker: CircuitBreaker(failureThreshold: failureThreshold, coolDown: coolDown))
            let result = body(&entry)
            entries[id] = entry
            return result
        }
    }

    /// A request is about to go to deployment `id`.
    func begin(_ id: String) {
        update(id) { entry in
            entry.inFlight += 1
            entry.requests += 1
        }
    }

    /// The request to deployment `id` ended (settled, or failed over elsewhere).
    func end(_ id: String) {
        update(id) { $0.inFlight = max(0, $0.inFlight - 1) }
    }

    func recordSuccess(_ id: String) {
        update(id) { $0.breaker.recordSuccess() }
    }

    func recordFailure(_ id: String, error: String, at now: Date) {
        update(id) { entry in
            let wasOpen = entry.breaker.state == .open
            entry.breaker.recordFailure(at: now)
            if !wasOpen && entry.breaker.state == .open { entry.trips += 1 }
            entry.failures += 1
            entry.lastError = error
            entry.lastFailureAt = now
        }
    }

    /// The candidates in order, those whose breaker is open moved to the end (still tried if all else
    /// fails: an open breaker skips a deployment, it never leaves a request with nowhere to go).
    func ordered(_ candidates: [Deployment], at now: Date) -> [Deployment] {
        entries.withLock { entries in
            let available = candidates.filter { entries[$0.id]?.breaker.isAvailable(at: now) ?? true }
            let open = candidates.filter { !(entries[$0.id]?.breaker.isAvailable(at: now) ?? true) }
            return available + open
        }
    }

    func inFlight(_ id: String) -> Int {
        entries.withLock { $0[id]?.inFlight ?? 0 }
    }

    func snapshot() -> [String: Entry] {
        entries.withLock { $0 }
    }
}
