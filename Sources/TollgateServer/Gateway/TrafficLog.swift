import Foundation
import Logging
import NIOCore
import Synchronization
import TollgateCore

/// Warnings about the traffic: upstream faults, time-outs, cut streams, bad requests and refused keys. Each
/// line names the request id and the model, never a key, a prompt or a body; a flood of one kind writes one
/// line a second per kind (saying how many were held back), and every warning is counted for `/health`.
final class TrafficLog: Sendable {
    enum Kind: String, CaseIterable, Sendable {
        /// No key, or one that is unknown, revoked or expired: refused before authentication succeeded.
        case unauthenticated
        /// A request the gateway refused as malformed (bad JSON, a bad HTTP head).
        case badRequest = "bad_request"
        /// The upstream answered 5xx (or refused the gateway's own credentials).
        case upstreamStatus = "upstream_status"
        /// No connection to the upstream could be made, or it broke before an answer.
        case upstreamConnect = "upstream_connect"
        /// The upstream did not answer, or went silent mid-stream, within its time-out.
        case upstreamTimeout = "upstream_timeout"
        /// A stream the upstream ended without finishing it.
        case streamCut = "stream_cut"
    }

    private let logger: Logger
    private let throttle = Mutex(WarningThrottle<Kind>(interval: 1))

    init(logger: Logger) {
        self.logger = logger
    }

    func warn(_ kind: Kind, requestID: String?, model: String? = nil, _ message: @autoclosure () -> String) {
        let decision = throttle.withLock { $0.record(kind, at: Double(NIODeadline.now().uptimeNanoseconds) / 1e9) }
        guard case .write(let heldBack) = decision else { return }
        var metadata: Logger.Metadata = ["kind": .string(kind.rawValue)]
        if let requestID { metadata["request_id"] = .string(requestID) }
        if let model { metadata["model"] = .string(model) }
        if heldBack > 0 { metadata["held_back"] = .stringConvertible(heldBack) }
        logger.warning("\(message())", metadata: metadata)
    }

    /// Every warning so far, by kind (written or held back).
    var counts: [Kind: Int] { throttle.withLock { $0.counts } }
}
