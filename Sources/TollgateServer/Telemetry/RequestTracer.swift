import Foundation
import Logging
import NIOCore
import NIOHTTP1
import OTel
import ServiceLifecycle
import Tracing

/// Spans of `/v1` requests, exported over OTLP/HTTP by swift-otel. It exists only when the config has a
/// `tracing` section: a gateway without one pays a nil check where the relay would call it.
///
/// The tracer is swift-otel's, kept here rather than bootstrapped into the process-wide
/// `InstrumentationSystem`: the relay starts and ends spans by hand on the event loop (no task-local
/// context, no `withSpan`), and a second gateway in one process (the tests) needs no global.
final class RequestTracer: Sendable {
    private let tracer: any Tracer
    /// swift-otel's tracer, batch processor and exporter: run in the gateway's service group, listed first so
    /// that they stop last, after the server has drained and ended its last spans.
    let service: any Service

    init(_ config: GatewayConfig.TracingConfig, logger: Logger) throws {
        var otel = OTel.Configuration.default
        otel.serviceName = config.serviceName
        // swift-otel's own messages (an export that failed, spans dropped) go to the gateway's log; it reads
        // OTEL_LOG_LEVEL, and the other OTEL_* variables of the specification over these values.
        otel.diagnosticLogger = .custom(logger)
        otel.diagnosticLogLevel = .warning
        otel.logs.enabled = false
        otel.metrics.enabled = false
        otel.traces.enabled = true
        otel.traces.exporter = .otlp
        otel.traces.otlpExporter.endpoint = config.tracesURL
        otel.traces.otlpExporter.protocol = config.wireProtocol == .json ? .httpJSON : .httpProtobuf
        otel.traces.otlpExporter.headers = config.headers.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        otel.traces.otlpExporter.timeout = .milliseconds(config.timeoutMs)
        // A client's sampled flag decides for its own trace; new traces are kept at the configured ratio.
        otel.traces.sampler = config.sampleRatio >= 1 ? .parentBasedAlwaysOn
            : .parentBasedTraceIDRatio(ratio: config.sampleRatio) ?? .parentBasedAlwaysOn
        otel.traces.batchSpanProcessor.scheduleDelay = .milliseconds(config.flushMs)
        otel.traces.batchSpanProcessor.exportTimeout = .milliseconds(config.timeoutMs)
        otel.traces.batchSpanProcessor.maxQueueSize = config.maxQueue
        otel.traces.batchSpanProcessor.maxExportBatchSize = min(512, config.maxQueue)
        let backend = try OTel.makeTracingBackend(configuration: otel)
        tracer = backend.factory
        service = backend.service
    }

    /// The span of `exchange`, dated from its first byte, and the child of the client's span when the client
    /// sent a valid `traceparent` (an invalid one starts a new trace, as the W3C recommendation says).
    func begin(_ exchange: Exchange) -> RequestSpan {
        var parent = InstrumentationContext.topLevel
        if let carrier = ClientTraceHeaders(exchange.clientHead.headers) {
            tracer.extract(carrier, into: &parent, using: ClientTraceHeaders.Reader())
        }
        let operation = GenAIOperation(exchange.endpoint)
        let span = tracer.startSpan(operation.rawValue, context: parent, ofKind: .server,
                                    at: RequestTracer.instant(of: exchange.startedAt, now: .now(), wallNow: DefaultTracerClock.now))
        return RequestSpan(span: span, tracer: tracer, operation: operation)
    }

    /// The wall-clock time of `deadline`, a point on the monotonic clock a little before `now`.
    static func instant(of deadline: NIODeadline, now: NIODeadline, wallNow: DefaultTracerClock.Timestamp) -> DefaultTracerClock.Timestamp {
        let elapsed = UInt64(max(0, (now - deadline).nanoseconds))
        return DefaultTracerClock.Timestamp(nanosecondsSinceEpoch: wallNow.nanosecondsSinceEpoch - min(elapsed, wallNow.nanosecondsSinceEpoch))
    }
}
