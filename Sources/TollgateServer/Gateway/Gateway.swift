import Foundation
import Logging
import Synchronization
import NIOCore
import TollgateCore
import TollgateStore

/// Limits of the forwarding path (upstream time-outs are each deployment's own).
struct ProxySettings: Sendable {
    var maxBodyBytes: Int
    /// A client connection with nothing in flight for this long is closed.
    var idleTimeout: TimeAmount
    /// A request head not complete this long after its first byte closes the connection.
    var requestHeadTimeout: TimeAmount = .seconds(10)
}

/// What every connection's relay shares: read-mostly state, each piece safe to touch from any event loop.
final class Gateway: Sendable {
    let models: ModelRegistry
    let keys: KeyIndex
    let admission: Admission
    let budgets: BudgetLedger
    let clock: GatewayClock
    let health = DeploymentHealth()
    let calibrations: RouterCalibrations
    let ledger: LedgerWriter
    let pools: UpstreamPools
    let settings: ProxySettings
    let logger: Logger
    let traffic: TrafficLog
    /// Prometheus metrics; nil when `metrics.enabled` is false (nothing is counted then).
    let metrics: GatewayMetrics?
    /// `nil` when the config has no `tracing` section.
    let tracer: RequestTracer?

    init(models: ModelRegistry, keys: KeyIndex, admission: Admission, budgets: BudgetLedger, clock: GatewayClock, ledger: LedgerWriter, pools: UpstreamPools, settings: ProxySettings,
         logger: Logger, metrics: GatewayMetrics? = nil, tracer: RequestTracer? = nil) {
        self.metrics = metrics
        self.tracer = tracer
        self.models = models
        self.calibrations = RouterCalibrations(routes: models.routes.values)
        self.keys = keys
        self.admission = admission
        self.budgets = budgets
        self.clock = clock
        self.ledger = ledger
        self.pools = pools
        self.settings = settings
        self.logger = logger
        self.traffic = TrafficLog(logger: logger)
    }
}

/// Request ids: a random prefix drawn once per process and a counter, so that ids are unique across
/// restarts and instances without a system call for randomness on every request.
enum RequestID {
    private static let prefix: String = {
        var generator = SystemRandomNumberGenerator()
        // The start second and 32 random bits: two processes share a prefix only if both coincide.
        let start = UInt64(Date().timeIntervalSince1970) << 32 | UInt64(generator.next() as UInt32)
        let hex = String(start, radix: 16)
        return "req_" + String(repeating: "0", count: max(0, 16 - hex.count)) + hex
    }()
    private static let counter = Atomic<UInt64>(0)

    static func make() -> String {
        let next = counter.wrappingAdd(1, ordering: .relaxed).newValue
        let hex = String(next, radix: 16)
        return prefix + String(repeating: "0", count: max(0, 12 - hex.count)) + hex
    }
}
