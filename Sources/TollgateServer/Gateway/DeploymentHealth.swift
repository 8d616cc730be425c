import Foundation
import Synchronization
import TollgateCore

/// Every deployment's circuit breaker and counters (`GET /admin/deployments`), shared by all event loops.
final class DeploymentHealth: Sendable {
    struct Entry: Sendable {
        var breaker: CircuitBreaker
        var inFlight = 0
        var requests = 0
        var failures = 0
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

    private func update<T>(_ name: String, _ body: (inout Entry) -> T) -> T {
        entries.withLock { entries in
            var entry = entries[name] ?? Entry(breaker: CircuitBreaker(failureThreshold: failureThreshold, coolDown: coolDown))
            let result = body(&entry)
            entries[name] = entry
            return result
        }
    }

    /// A request is about to go to `name`.
    func begin(_ name: String) {
        update(name) { entry in
            entry.inFlight += 1
            entry.requests += 1
        }
    }

    /// The request to `name` ended (settled, or failed over elsewhere).
    func end(_ name: String) {
        update(name) { $0.inFlight = max(0, $0.inFlight - 1) }
    }

    func recordSuccess(_ name: String) {
        update(name) { $0.breaker.recordSuccess() }
    }

    func recordFailure(_ name: String, error: String, at now: Date) {
        update(name) { entry in
            entry.breaker.recordFailure(at: now)
            entry.failures += 1
            entry.lastError = error
            entry.lastFailureAt = now
        }
    }

    /// The candidates in order, those whose breaker is open moved to the end (still tried if all else
    /// fails: an open breaker skips a deployment, it never leaves a request with nowhere to go).
    func ordered(_ candidates: [Deployment], at now: Date) -> [Deployment] {
        entries.withLock { entries in
            let available = candidates.filter { entries[$0.name]?.breaker.isAvailable(at: now) ?? true }
            let open = candidates.filter { !(entries[$0.name]?.breaker.isAvailable(at: now) ?? true) }
            return available + open
        }
    }

    func inFlight(_ name: String) -> Int {
        entries.withLock { $0[name]?.inFlight ?? 0 }
    }

    func snapshot() -> [String: Entry] {
        entries.withLock { $0 }
    }
}
