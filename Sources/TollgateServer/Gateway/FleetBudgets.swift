import Foundation
import Logging
import NIOCore
import Synchronization
import TollgateCore
import TollgateStore

/// This instance's side of budgets shared by a fleet on one PostgreSQL: it leases slices of each budget's
/// window from the store when a request needs more than the instance holds, renews its leases while it
/// lives, gives back what sits idle, and keeps the fleet's spend in view. A lease is a database round trip
/// for many requests, never one per request; slices shrink as a budget nears its cap (a quarter of what the
/// rest of the fleet has not claimed, at most a tenth of the limit, at least what the request needs), so
/// that no instance starves the others and almost all of a cap is usable.
///
/// Every store call runs on `queue`, off the event loops; a request that needs a lease waits for the
/// future `acquire` returns.
final class FleetBudgets: Sendable {
    struct Settings: Sendable {
        /// A lease the store does not hear about for this long returns to its budget.
        var leaseTTL: TimeInterval = 15
        /// How often leases are renewed, idle ones given back, the fleet's spend and dead instances' leases
        /// looked at.
        var tick: TimeInterval = 1
        /// A lease with no claim for this long goes back to the fleet.
        var idleRelease: TimeInterval = 2
        var policy: GatewayConfig.LossPolicy = .failClosed
    }

    private struct State {
        /// When the store last confirmed our leases (renewal or grant): they are good until this plus the TTL.
        var confirmedAt: Date
        /// Set while the store is out of reach.
        var lostSince: Date?
        var stopped = false
    }

    let instance: String
    let settings: Settings
    private let store: any Store
    private let clock: GatewayClock
    private let logger: Logger
    private let queue = DispatchQueue(label: "tollgate.fleet-leases")
    private let state: Mutex<State>
    /// Read on the request path without a lock: whether budgeted requests must be refused (fail-closed).
    private let refusing = Atomic<Bool>(false)

    init(store: any Store, clock: GatewayClock, settings: Settings, logger: Logger) {
        self.store = store
        self.clock = clock
        self.settings = settings
        self.logger = logger
        var generator = SystemRandomNumberGenerator()
        instance = ProcessInfo.processInfo.hostName.prefix(24) + "-" + String(ProcessInfo.processInfo.processIdentifier)
            + "-" + String(generator.next() as UInt32, radix: 16)
        state = Mutex(State(confirmedAt: clock.now()))
    }

    /// True while the store is lost and the policy is to refuse budgeted requests (503).
    var refusesBudgetedRequests: Bool { refusing.load(ordering: .relaxed) }

    /// Whether the store is out of reach now, and since when.
    var lostSince: Date? { state.withLock { $0.lostSince } }

    // MARK: The request path

    /// Asks the store for the leases `needs` names and puts what it grants in `budgets`' book. The future
    /// completes (never fails) on `eventLoop` once the store answered or could not be reached.
    func acquire(_ needs: [LeaseNeed], into budgets: BudgetLedger, on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        let promise = eventLoop.makePromise(of: Void.self)
        queue.async { [self] in
            let now = clock.now()
            for need in needs {
                // Requests queued behind one another for the same budget share one grant when it is enough.
                let missing = budgets.leaseShortfall(need, now: now)
                guard missing > 0 else { continue }
                let slice = need.slice(for: missing)
                do {
                    let grant = try store.acquireLease(budgetID: need.budgetID, windowStart: need.windowStart, instance: instance,
                                                       limit: need.limit, want: slice, minimum: missing,
                                                       expiresAt: now.addingTimeInterval(settings.leaseTTL))
                    budgets.leaseGranted(need, amount: grant.granted, sharedSpent: grant.usage.spent, now: now)
                    storeAnswered(at: now)
                } catch {
                    storeFailed(error, at: now)
                    break
                }
            }
            promise.succeed()
        }
        return promise.futureResult
    }

    // MARK: Upkeep

    /// Starts the periodic upkeep on `queue`.
    func start(budgets: BudgetLedger) {
        schedule(budgets: budgets)
    }

    private func schedule(budgets: BudgetLedger) {
        queue.asyncAfter(deadline: .now() + settings.tick) { [self] in
            guard !state.withLock({ $0.stopped }) else { return }
            upkeep(budgets: budgets)
            schedule(budgets: budgets)
        }
    }

    /// One tick: renew our leases, give back idle ones, refresh the fleet's spend of the budgets we use, and
    /// return the leases of instances that died.
    func upkeep(budgets: BudgetLedger) {
        let now = clock.now()
        do {
            try store.renewLeases(instance: instance, expiresAt: now.addingTimeInterval(settings.leaseTTL))
            storeAnswered(at: now)
        } catch {
            storeFailed(error, at: now)
            // Leases we could not renew must not be spent past their expiry: another instance may get them.
            let confirmed = state.withLock { $0.confirmedAt }
            if now.timeIntervalSince(confirmed) > settings.leaseTTL * 0.8 {
                budgets.allLeasesLost()
            }
            return
        }
        for shared in budgets.sharedBudgets(now: now) {
            do {
                if shared.idle(since: now.addingTimeInterval(-settings.idleRelease)) { try giveBack(shared, to: budgets) }
                if shared.active(since: now.addingTimeInterval(-60)),
                   let usage = try store.budgetUsage(budgetID: shared.budgetID, windowStart: shared.windowStart) {
                    budgets.sharedSpent(shared.budgetID, windowStart: shared.windowStart, spent: usage.spent, now: now)
                }
            } catch {
                storeFailed(error, at: now)
                return
            }
        }
        do {
            let reclaimed = try store.reclaimExpiredLeases(now: now)
            if reclaimed > 0 { logger.notice("returned \(reclaimed) expired budget leases of instances that stopped renewing them") }
        } catch {
            storeFailed(error, at: now)
        }
    }

    /// At shutdown, after the ledger's last flush: every lease goes back.
    func stop(budgets: BudgetLedger) {
        state.withLock { $0.stopped = true }
        queue.sync {
            let now = clock.now()
            for shared in budgets.sharedBudgets(now: now) {
                do {
                    try giveBack(shared, to: budgets)
                } catch {
                    logger.warning("could not give back the lease on budget \(shared.budgetID); it returns when it expires",
                                   metadata: ["error": "\(error)"])
                    return
                }
            }
        }
    }

    /// Returns to the store what the instance holds of the budget and does not need.
    private func giveBack(_ shared: SharedBudgetView, to budgets: BudgetLedger) throws {
        guard shared.releasable > 0 else { return }
        try store.releaseLease(budgetID: shared.budgetID, windowStart: shared.windowStart, instance: instance,
                               amount: shared.releasable)
        budgets.leaseReleased(shared.budgetID, windowStart: shared.windowStart, amount: shared.releasable)
    }

    private func storeAnswered(at now: Date) {
        let recovered = state.withLock { state -> Date? in
            state.confirmedAt = now
            defer { state.lostSince = nil }
            return state.lostSince
        }
        if let since = recovered {
            refusing.store(false, ordering: .relaxed)
            logger.notice("the database answers again; budgets are shared again",
                          metadata: ["lost_for_s": "\(Int(now.timeIntervalSince(since)))"])
        }
    }

    private func storeFailed(_ error: any Error, at now: Date) {
        let first = state.withLock { state -> Bool in
            defer { if state.lostSince == nil { state.lostSince = now } }
            return state.lostSince == nil
        }
        if settings.policy == .failClosed { refusing.store(true, ordering: .relaxed) }
        if first {
            let policy = settings.policy == .failClosed
                ? "budgeted requests are refused (503) until it is back"
                : "budgeted requests are served from the leases held until they run out or expire"
            logger.error("the database is out of reach; \(policy)", metadata: ["error": "\(error)"])
        }
    }
}

/// One shared budget as the upkeep sees it.
struct SharedBudgetView: Sendable {
    var budgetID: String
    var windowStart: Date
    var releasable: Int64
    var lastClaimAt: Date?
    var held: Int64

    func idle(since cutoff: Date) -> Bool { (lastClaimAt ?? .distantPast) < cutoff }
    func active(since cutoff: Date) -> Bool { held > 0 || (lastClaimAt ?? .distantPast) >= cutoff }
}
