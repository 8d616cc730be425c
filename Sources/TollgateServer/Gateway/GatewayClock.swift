import Foundation
import Synchronization

/// The gateway's wall clock for everything a budget period depends on (ledger times, windows). Tests may
/// move it forward (`POST /admin/test/clock`, only when started with `TOLLGATE_TEST_CLOCK=1`) to see a
/// period reset without waiting a day.
final class GatewayClock: Sendable {
    private let offsetMilliseconds = Atomic<Int64>(0)
    let adjustable: Bool

    init(adjustable: Bool) {
        self.adjustable = adjustable
    }

    func now() -> Date {
        let offset = offsetMilliseconds.load(ordering: .relaxed)
        return offset == 0 ? Date() : Date().addingTimeInterval(Double(offset) / 1000)
    }

    func advance(seconds: Double) {
        offsetMilliseconds.wrappingAdd(Int64(seconds * 1000), ordering: .relaxed)
    }
}
