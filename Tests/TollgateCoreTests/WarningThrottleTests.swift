import Testing
@testable import TollgateCore

@Suite("WarningThrottle: one line per kind per interval, the rest counted")
struct WarningThrottleTests {
    @Test("a burst writes its first line, holds back the rest and reports them with the next line written")
    func burst() {
        var throttle = WarningThrottle<String>(interval: 1)
        #expect(throttle.record("upstream", at: 10) == .write(heldBack: 0))
        for step in 1...9 { #expect(throttle.record("upstream", at: 10 + Double(step) / 10) == .holdBack) }
        #expect(throttle.record("upstream", at: 11.0) == .write(heldBack: 9))
        #expect(throttle.record("upstream", at: 12.5) == .write(heldBack: 0))
        #expect(throttle.counts["upstream"] == 12)
    }

    @Test("each kind has its own allowance")
    func kindsApart() {
        var throttle = WarningThrottle<String>(interval: 1)
        #expect(throttle.record("a", at: 0) == .write(heldBack: 0))
        #expect(throttle.record("b", at: 0.1) == .write(heldBack: 0))
        #expect(throttle.record("a", at: 0.2) == .holdBack)
        #expect(throttle.counts == ["a": 2, "b": 1])
    }
}
