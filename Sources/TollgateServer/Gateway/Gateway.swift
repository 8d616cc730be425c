import Logging
import NIOCore
import TollgateCore
import TollgateStore

/// Limits and time-outs of the forwarding path.
struct ProxySettings: Sendable {
    var maxBodyBytes: Int
    var connectTimeout: TimeAmount
    var firstByteTimeout: TimeAmount
    var idleTimeout: TimeAmount
}

/// What every connection's relay shares: read-mostly state, each piece safe to touch from any event loop.
final class Gateway: Sendable {
    let models: ModelRegistry
    let keys: KeyIndex
    let ledger: LedgerWriter
    let pools: UpstreamPools
    let settings: ProxySettings
    let logger: Logger

    init(models: ModelRegistry, keys: KeyIndex, ledger: LedgerWriter, pools: UpstreamPools, settings: ProxySettings,
         logger: Logger) {
        self.models = models
        self.keys = keys
        self.ledger = ledger
        self.pools = pools
        self.settings = settings
        self.logger = logger
    }
}

enum RequestID {
    static func make() -> String {
        var generator = SystemRandomNumberGenerator()
        let value = generator.next() as UInt64
        let hex = String(value, radix: 16)
        return "req_" + String(repeating: "0", count: 16 - hex.count) + hex
    }
}
