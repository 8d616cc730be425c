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
    private let writeState = Mutex(WriteState())
    /// Signalled to cut the current wait short at shutdown.
    private let wakeUp = DispatchSemaphore(value: 0)
    /// Signalled once by the background thread as it exits.
    private let finished = DispatchSemaphore(value: 0)

    public init(store: any Store, flushInterval: Duration = .milliseconds(100),
                logger: Logger = Logger(label: "tollgate.ledger")) {
        self.store = store
        let (seconds, attoseconds) = flushInterval.components
        self.interval = Double(seconds) + Double(attoseconds) / 1e18
        self.logger = logger
        let thread = Thread { [self] in run() }
        thread.name = "tollgate-ledger"
        thread.start()
    }

    /// Cheap and non-blocking beyond a short lock: safe on an event loop.
    public func enqueue(_ row: LedgerRecord) {
        queue.withLock { $0.rows.append(row) }
    }

    /// Rows not yet in the store, including a batch being written.
    public var queueDepth: Int {
        queue.withLock { $0.rows.count + $0.writing }
    }

    /// Writes everything queued now, on the calling thread. If the store refuses, the rows stay queued
    /// (see `queueDepth`) and the error is logged.
    public func flush() {
        writeState.withLock { state in
            let batch = queue.withLock { queue in
                let rows = queue.rows
                queue.rows = []
                queue.writing = rows.count
                return rows
            }
            guard !batch.isEmpty else { return }
            do {
                try store.appendLedger(batch)
                queue.withLock { $0.writing = 0 }
                if state.failing {
                    state.failing = false
                    logger.notice("ledger writes succeed again", metadata: ["rows": "\(batch.count)"])
                }
            } catch {
                queue.withLock { queue in
                    queue.rows = batch + queue.rows
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
