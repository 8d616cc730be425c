import Foundation
import Testing
@testable import TollgateCore

@Suite("Circuit breaker: opens after consecutive failures, half-opens after a cool-down")
struct CircuitBreakerTests {
    let start = Date(timeIntervalSince1970: 1_000)

    @Test("five consecutive failures open it; a success in between resets the count")
    func opens() {
        var breaker = CircuitBreaker(failureThreshold: 5, coolDown: 30)
        for _ in 0..<4 { breaker.recordFailure(at: start) }
        breaker.recordSuccess()
        for _ in 0..<4 { breaker.recordFailure(at: start) }
        #expect(breaker.state == .closed)
        breaker.recordFailure(at: start)
        #expect(breaker.state == .open)
        let allowed = breaker.allowsRequest(at: start.addingTimeInterval(29))
        #expect(!allowed)
        #expect(!breaker.isAvailable(at: start.addingTimeInterval(29)))
    }

    @Test("after the cool-down one probe goes through; its success closes the breaker")
    func probeSucceeds() {
        var breaker = CircuitBreaker(failureThreshold: 1, coolDown: 30)
        breaker.recordFailure(at: start)
        let later = start.addingTimeInterval(30)
        #expect(breaker.isAvailable(at: later))
        let probe = breaker.allowsRequest(at: later)
        #expect(probe)
        #expect(breaker.state == .halfOpen)
        let second = breaker.allowsRequest(at: later)
        #expect(!second, "a second request while the probe is out")
        breaker.recordSuccess()
        let afterSuccess = breaker.allowsRequest(at: later)
        #expect(breaker.state == .closed && afterSuccess)
    }

    @Test("a failed probe opens the breaker for another cool-down")
    func probeFails() {
        var breaker = CircuitBreaker(failureThreshold: 3, coolDown: 10)
        for _ in 0..<3 { breaker.recordFailure(at: start) }
        let probe = start.addingTimeInterval(10)
        let first = breaker.allowsRequest(at: probe)
        #expect(first)
        breaker.recordFailure(at: probe)
        #expect(breaker.state == .open && breaker.openedAt == probe)
        let tooSoon = breaker.allowsRequest(at: probe.addingTimeInterval(9))
        #expect(!tooSoon)
        let afterCoolDown = breaker.allowsRequest(at: probe.addingTimeInterval(10))
        #expect(afterCoolDown)
    }
}
