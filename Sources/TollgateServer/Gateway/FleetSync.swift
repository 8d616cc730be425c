import Foundation
import Logging
import Synchronization
import TollgateStore

/// Keeps an instance of a fleet in step with what the others change: every `interval` it reads the store's
/// change feed and reloads the keys or budgets named there. A key revoked or a budget changed through any
/// instance is in force on every instance within `interval` plus one round trip (250 ms by default).
final class FleetSync: Sendable {
    private let store: any Store
    private let interval: TimeInterval
    private let logger: Logger
    private let reloadKeys: @Sendable () throws -> Void
    private let reloadBudget: @Sendable (String) throws -> Void
    private let queue = DispatchQueue(label: "tollgate.fleet-sync")
    private struct State {
        var lastSeen: Int64
        var stopped = false
        var failing = false
    }
    private let state: Mutex<State>

    /// `lastSeen`: the feed's newest id read before keys and budgets were first loaded, so nothing in
    /// between is missed.
    init(store: any Store, lastSeen: Int64, interval: TimeInterval = 0.25, logger: Logger,
         reloadKeys: @escaping @Sendable () throws -> Void, reloadBudget: @escaping @Sendable (String) throws -> Void) {
        self.store = store
        self.interval = interval
        self.logger = logger
        self.reloadKeys = reloadKeys
        self.reloadBudget = reloadBudget
        state = Mutex(State(lastSeen: lastSeen))
    }

    func start() { schedule() }

    func stop() { state.withLock { $0.stopped = true } }

    private func schedule() {
        queue.asyncAfter(deadline: .now() + interval) { [self] in
            guard !state.withLock({ $0.stopped }) else { return }
            poll()
            schedule()
        }
    }

    /// Reads and applies every change after the last one seen.
    func poll() {
        let after = state.withLock { $0.lastSeen }
        do {
            let changes = try store.changes(after: after, limit: 1_000)
            guard let newest = changes.last?.id else { return recovered() }
            if changes.contains(where: { $0.kind == .key }) { try reloadKeys() }
            for budget in Set(changes.filter { $0.kind == .budget }.map(\.subject)) { try reloadBudget(budget) }
            state.withLock { $0.lastSeen = newest }
            recovered()
        } catch {
            let first = state.withLock { state -> Bool in
                defer { state.failing = true }
                return !state.failing
            }
            if first { logger.error("cannot read the fleet's change feed; keys and budgets may lag", metadata: ["error": "\(error)"]) }
        }
    }

    private func recovered() {
        let was = state.withLock { state -> Bool in
            defer { state.failing = false }
            return state.failing
        }
        if was { logger.notice("the fleet's change feed is read again") }
    }
}
