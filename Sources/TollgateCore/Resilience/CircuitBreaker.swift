import Foundation

/// One deployment's circuit breaker, as a state machine: events in (with their time), decisions out.
///
/// `closed` → (`failureThreshold` consecutive failures) → `open` → (`coolDown` later, the next request is let
/// through as a probe) → `halfOpen` → success: `closed`; failure: `open` again for another cool-down.
public struct CircuitBreaker: Sendable, Equatable {
    public enum State: String, Sendable, Equatable {
        case closed
        case open
        case halfOpen = "half_open"
    }

    public var failureThreshold: Int
    public var coolDown: TimeInterval
    public private(set) var state = State.closed
    public private(set) var consecutiveFailures = 0
    public private(set) var openedAt: Date?
    /// A half-open breaker lets one probe through at a time.
    private var probeInFlight = false

    public init(failureThreshold: Int = 5, coolDown: TimeInterval = 30) {
        self.failureThreshold = failureThreshold
        self.coolDown = coolDown
    }

    /// Whether a request may go to the deployment now; a breaker past its cool-down lets one probe through.
    public mutating func allowsRequest(at now: Date) -> Bool {
        switch state {
        case .closed:
            return true
        case .open:
            guard let openedAt, now.timeIntervalSince(openedAt) >= coolDown else { return false }
            state = .halfOpen
            probeInFlight = true
            return true
        case .halfOpen:
            guard !probeInFlight else { return false }
            probeInFlight = true
            return true
        }
    }

    /// Whether the deployment is worth trying first (nothing is changed).
    public func isAvailable(at now: Date) -> Bool {
        switch state {
        case .closed: true
        case .open: openedAt.map { now.timeIntervalSince($0) >= coolDown } ?? true
        case .halfOpen: !probeInFlight
        }
    }

    public mutating func recordSuccess() {
        state = .closed
        consecutiveFailures = 0
        openedAt = nil
        probeInFlight = false
    }

    public mutating func recordFailure(at now: Date) {
        consecutiveFailures += 1
        probeInFlight = false
        if state == .halfOpen || consecutiveFailures >= failureThreshold {
            state = .open
            openedAt = now
        }
    }
}
