import NIOCore
import NIOHTTP1
import Tracing
import W3CTraceContext

/// The client's W3C trace context headers, checked before the tracer sees them: swift-otel logs a warning
/// with the whole carrier for every context it cannot read, and a carrier of all the request's headers
/// would put the caller's API key in the log, once per request of a client that sends a bad `traceparent`.
struct ClientTraceHeaders: Sendable, CustomStringConvertible {
    let traceparent: String
    /// Dropped when malformed: the W3C recommendation keeps the parent then, and only loses the vendor state.
    let tracestate: String?

    /// Nil without exactly one valid `traceparent`.
    init?(_ headers: HTTPHeaders) {
        let parents = headers["traceparent"]
        guard parents.count == 1, let parent = parents.first else { return nil }
        let states = headers["tracestate"]
        let state = states.isEmpty ? nil : states.joined(separator: ",")
        if (try? TraceContext(traceParentHeaderValue: parent, traceStateHeaderValue: state)) != nil {
            tracestate = state
        } else if state != nil, (try? TraceContext(traceParentHeaderValue: parent)) != nil {
            tracestate = nil
        } else {
            return nil
        }
        traceparent = parent
    }

    var description: String { "traceparent: \(traceparent)" + (tracestate.map { ", tracestate: \($0)" } ?? "") }

    struct Reader: Extractor {
        func extract(key: String, from carrier: ClientTraceHeaders) -> String? {
            switch key {
            case "traceparent": carrier.traceparent
            case "tracestate": carrier.tracestate
            default: nil
            }
        }
    }
}

/// Writes the propagated headers straight into the upstream request's head, which the relay builds as
/// bytes. Every value is the tracer's own rendering of a context it parsed or made (hex ids, a trace state
/// that passed both NIO's parser and the W3C grammar): none can hold a line break.
struct UpstreamHeadWriter: Injector {
    func inject(_ value: String, forKey key: String, into carrier: inout ByteBuffer) {
        carrier.writeString(key)
        carrier.writeStaticString(": ")
        carrier.writeString(value)
        carrier.writeStaticString("\r\n")
    }
}
