import Dispatch
import Foundation
import Logging
import Synchronization
import TollgateCore

/// Takes ledger rows from the request path without ever blocking it, and writes them in batches on its own
/// thread. A row is never dropped: a batch the store refuses goes back to the front of the queue and is
/// tried again on the next tick. Call `shutdown()` before exit; a crash loses at most one interval's rows.
public final class LedgerWriter: Sendable {
    private struct Queue {
        var rows: [LedgerRecord] = []
        /// Shared-budget spend owed with these rows (fleet mode), written in the same transaction.
        var settlements: [LeaseSettlement] = []
        /// Rows taken by a write that has not finished yet: still owed to the store.
        var writing = 0
        var stopped = false
    }

    /// Held only by the thread that is writing a batch, so that two writers (the background tick and an
    /// explicit `flush()`) never interleave and a refused batch goes back in front of newer rows.
    private struct WriteState {
        var failing = false
    }

    private let store: any Store
    private let interval: Double
    private let logger: Logger
    private let queue = Mutex(Queue())
    /// Beyond this many rows waiting (the store is out of reach), `isBacklogged` tells the request path to
    /// stop taking requests: settled rows are never dropped, so the queue must not grow without end.
    public let backlogLimit: Int
    /// Set by the writer after each attempt: read on the request path without a lock.
    private let backlogged = Atomic<Bool>(false)
    /// Called on the writer's thread after a batch and its settlements are committed.
    private let committed = Mutex<(@Sendable ([LeaseSettlement]) -> Void)?>(nil)
    /// Called on the writer's thread after each batch written, with how long the write took and its rows.
    private let flushed = Mutex<(@Sendable (Duration, Int) -> Void)?>(nil)
    private let writeState = Mutex(WriteState())
    /// Signalled to cut the current wait short at shutdown.
    private let wakeUp = DispatchSemaphore(value: 0)
    /// Signalled once by the background thread as it exits.
    private let finished = DispatchSemaphore(value: 0)

    public init(store: any Store, flushInterval: Duration = .milliseconds(100), backlogLimit: Int = 1_000_000,
                logger: Logger = Logger(label: "tollgate.ledger")) {
        self.store = store
        self.backlogLimit = backlogLimit
        let (seconds, attoseconds) = flushInterval.components
        self.interval = Double(seconds) + Double(attoseconds) / 1e18
        self.logger = logger
        let thread = Thread { [self] in run() }
        thread.name = "tollgate-ledger"
        thread.start()
    }

    /// Cheap and non-blocking beyond a short lock: safe on an event loop. `settling`: the shared-budget
    /// spend this row causes, committed with it.
    public func enqueue(_ row: consuming LedgerRecord, settling: [LeaseSettlement] = []) {
        // Moved into the queue, not copied: a row holds some fifteen strings, each a reference count per copy.
        var row = Optional(row)
        queue.withLock { queue in
            queue.rows.append(row.take()!)
            if !settling.isEmpty { queue.settlements += settling }
        }
    }

    /// Sets what runs after each committed batch with its settlements (fleet mode).
    public func onCommitted(_ body: @escaping @Sendable ([LeaseSettlement]) -> Void) {
        committed.withLock { $0 = body }
    }

    /// Sets what runs after each batch written (the flush-latency histogram of `/metrics`).
    public func onFlushed(_ body: @escaping @Sendable (Duration, Int) -> Void) {
        flushed.withLock { $0 = body }
    }

    /// True while more rows wait than `backlogLimit` (the store has been out of reach for a while), as of
    /// the writer's last attempt.
    public var isBacklogged: Bool { backlogged.load(ordering: .relaxed) }

    /// Rows not yet in the store, including a batch being written.
    public var queueDepth: Int {
        queue.withLock { $0.rows.count + $0.writing }
    }

    /// Writes everything queued now, on the calling thread. If the store refuses, the rows stay queued
    /// (see `queueDepth`) and the error is logged.
    public func flush() {
        defer { backlogged.store(queueDepth >= backlogLimit, ordering: .relaxed) }
        writeState.withLock { state in
            let (batch, settlements) = queue.withLock { queue in
                let taken = (queue.rows, queue.settlements)
                queue.rows = []
                queue.settlements = []
                queue.writing = taken.0.count
                return taken
            }
            guard !batch.isEmpty || !settlements.isEmpty else { return }
            do {
                let started = ContinuousClock.now
                try store.appendLedger(batch, settling: settlements)
                queue.withLock { $0.writing = 0 }
                if let flushed = flushed.withLock({ $0 }) { flushed(ContinuousClock.now - started, batch.count) }
                if !settlements.isEmpty, let committed = committed.withLock({ $0 }) { committed(settlements) }
                if state.failing {
                    state.failing = false
                    logger.notice("ledger writes succeed again", metadata: ["rows": "\(batch.count)"])
                }
            } catch {
                queue.withLock { queue in
                    queue.rows = batch + queue.rows
                    queue.settlements = settlements + queue.settlements
                    queue.writing = 0
                }
                // Once per outage, not once per tick.
                if !state.failing {
                    state.failing = true
                    logger.error("ledger write failed; rows kept for retry",
                                 metadata: ["rows": "\(batch.count)", "error": "\(error)"])
                }
            }
        }
    }

    /// Stops the background thread and writes what is left. Idempotent.
    public func shutdown() {
        let wasStopped = queue.withLock { queue in
            defer { queue.stopped = true }
            return queue.stopped
        }
        guard !wasStopped else { return }
        wakeUp.signal()
        finished.wait()
        flush()
        let left = queueDepth
        if left > 0 {
            logger.error("ledger rows could not be written before shutdown", metadata: ["rows": "\(left)"])
        }
    }

    private func run() {
        while !queue.withLock({ $0.stopped }) {
            _ = wakeUp.wait(timeout: .now() + interval)
            flush()
        }
        finished.signal()
    }
}
