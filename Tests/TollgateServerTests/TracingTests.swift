import Foundation
import NIOCore
import NIOHTTP1
import Testing
import TollgateCore
import Tracing
@testable import TollgateServer

private func parse(_ yaml: String) throws -> GatewayConfig {
    try GatewayConfig.parse(yaml: yaml, file: "tollgate.yaml", environment: ["COLLECTOR_TOKEN": "s3cret"])
}

private func record(status: Int = 200, usage: Usage = Usage(inputTokens: 100, cachedInputTokens: 20, cacheWriteTokens: 5,
                                                           outputTokens: 40),
                    cost: Nanodollars = Nanodollars(1_234_567), error: String? = nil) -> LedgerRecord {
    LedgerRecord(id: "req_1", createdAt: Date(timeIntervalSince1970: 0), endpoint: "chat.completions", keyID: "key_1",
                 userID: "user_1", userName: "alice", teamID: "team_1", teamName: "platform", requestedModel: "auto",
                 model: "gpt-4o-mini", provider: "openai", usage: usage, cost: cost, baselineCost: Nanodollars(9_000_000),
                 status: status, latencyMs: 12, ttftMs: 7, stream: true, tags: ["ci", "nightly"], route: "auto",
                 routeReason: "learned: weak", error: error)
}

private func exchange(_ headers: [(String, String)]) -> Exchange {
    let head = HTTPRequestHead(version: .http1_1, method: .POST, uri: "/v1/chat/completions", headers: HTTPHeaders(headers))
    let exchange = Exchange(clientHead: head, startedAt: .now(), createdAt: Date())
    exchange.endpoint = .chatCompletions
    return exchange
}

/// The `traceparent` the tracer wrote into an upstream head: (trace id, span id, flags).
private func upstreamTraceparent(_ head: ByteBuffer) -> (trace: String, span: String, flags: String)? {
    let text = String(buffer: head)
    guard let line = text.split(separator: "\r\n").first(where: { $0.hasPrefix("traceparent: ") }) else { return nil }
    let parts = line.dropFirst("traceparent: ".count).split(separator: "-").map(String.init)
    guard parts.count == 4, parts[0] == "00" else { return nil }
    return (parts[1], parts[2], parts[3])
}

@Suite("traces")
struct TracingTests {
    @Test("a tracing section is read with its defaults; absent, tracing is off")
    func configDefaults() throws {
        #expect(try parse("ledger: { flush_ms: 100 }").tracing == nil)
        let tracing = try #require(try parse("tracing: { endpoint: \"http://127.0.0.1:4318/\" }").tracing)
        #expect(tracing == GatewayConfig.TracingConfig(endpoint: "http://127.0.0.1:4318"))
        #expect(tracing.tracesURL == "http://127.0.0.1:4318/v1/traces")
        #expect(tracing.serviceName == "tollgate" && tracing.sampleRatio == 1 && tracing.wireProtocol == .protobuf)

        let full = try #require(try parse("""
            tracing:
              endpoint: https://otlp.example.com/otlp/v1/traces
              protocol: http/json
              headers: { authorization: "Bearer ${COLLECTOR_TOKEN}" }
              service_name: gateway-eu
              sample_ratio: 0.25
              flush_ms: 200
              timeout_ms: 3000
              max_queue: 10000
            """).tracing)
        #expect(full.tracesURL == "https://otlp.example.com/otlp/v1/traces", "a URL with a path is used as it is")
        #expect(full.headers == ["authorization": "Bearer s3cret"])
        #expect(full == GatewayConfig.TracingConfig(endpoint: "https://otlp.example.com/otlp/v1/traces", wireProtocol: .json,
                                                    headers: ["authorization": "Bearer s3cret"], serviceName: "gateway-eu",
                                                    sampleRatio: 0.25, flushMs: 200, timeoutMs: 3000, maxQueue: 10000))
    }

    @Test("the span carries the ledger row: GenAI usage, the exact cost, route, budget and who")
    func attributesFromTheLedgerRow() {
        let summary = RequestSpanSummary(record: record(), operation: .chat, path: "/v1/chat/completions", budget: .downgraded,
                                         upstreamAnswered: true)
        #expect(summary.name == "chat auto")
        #expect(summary.status == nil)
        let a = summary.attributes
        #expect(a.get("gen_ai.operation.name") == .string("chat"))
        #expect(a.get("gen_ai.provider.name") == .string("openai"))
        #expect(a.get("gen_ai.request.model") == .string("auto"))
        #expect(a.get("gen_ai.response.model") == .string("gpt-4o-mini"))
        #expect(a.get("gen_ai.usage.input_tokens") == .int64(125), "cache reads and writes are input tokens too")
        #expect(a.get("gen_ai.usage.output_tokens") == .int64(40))
        #expect(a.get("gen_ai.usage.cache_read.input_tokens") == .int64(20))
        #expect(a.get("gen_ai.usage.cache_creation.input_tokens") == .int64(5))
        #expect(a.get("tollgate.cost_usd") == .string("0.001234567"))
        #expect(a.get("tollgate.baseline_cost_usd") == .string("0.009"))
        #expect(a.get("tollgate.budget.decision") == .string("downgraded"))
        #expect(a.get("tollgate.route") == .string("auto"))
        #expect(a.get("tollgate.route_reason") == .string("learned: weak"))
        #expect(a.get("tollgate.request_id") == .string("req_1"))
        #expect(a.get("tollgate.user") == .string("alice") && a.get("tollgate.team") == .string("platform"))
        #expect(a.get("tollgate.tags") == .stringArray(["ci", "nightly"]))
        #expect(a.get("tollgate.stream") == .bool(true))
        #expect(a.get("http.response.status_code") == .int64(200))
        #expect(a.get("url.path") == .string("/v1/chat/completions"))
        #expect(a.get("error.type") == nil && a.get("tollgate.usage_estimated") == nil)
    }

    @Test("a cost of a fraction of a nano-dollar's worth of tokens is still the ledger's string, not a float")
    func costIsTheLedgerString() {
        let summary = RequestSpanSummary(record: record(cost: Nanodollars(100_000_000_001)), operation: .chat, path: "/v1/chat/completions",
                                         budget: nil, upstreamAnswered: true)
        #expect(summary.attributes.get("tollgate.cost_usd") == .string("100.000000001"))
        #expect(summary.attributes.get("tollgate.budget.decision") == nil)
    }

    @Test("faults are errors, refusals by the gateway and hang-ups are not", arguments: [
        (502, false, true), (504, false, true), (503, false, true), (500, true, true),
        (400, true, true), (429, true, true), (429, false, false), (401, false, false), (404, false, false),
        (499, true, false), (200, true, false),
    ])
    func errorStatus(status: Int, upstreamAnswered: Bool, isError: Bool) {
        let summary = RequestSpanSummary(record: record(status: status, error: isError ? "it failed" : nil), operation: .chat,
                                         path: "/v1/chat/completions", budget: nil, upstreamAnswered: upstreamAnswered)
        #expect((summary.status == SpanStatus(code: .error, message: "it failed")) == isError)
        #expect(summary.attributes.get("error.type") == (isError ? .string(String(status)) : nil))
    }

    @Test("the budget decision is read off the request as it settles")
    func budgetDecision() {
        func decision(reserved: Bool = false, downgraded: Bool = false, passed: Bool = true, answered: Bool = false,
                      status: Int = 200) -> BudgetDecision? {
            BudgetDecision(reserved: reserved, downgraded: downgraded, passedRateLimits: passed, upstreamAnswered: answered,
                           status: status)
        }
        #expect(decision(reserved: true, answered: true) == .admitted)
        #expect(decision(reserved: true, downgraded: true, answered: true) == .downgraded)
        #expect(decision(reserved: true, answered: true, status: 429) == .admitted, "an upstream 429 after admission")
        #expect(decision(status: 429) == .refused)
        #expect(decision(status: 503) == .refused, "a fleet's store out of reach, fail-closed")
        #expect(decision(answered: true) == .unbudgeted)
        #expect(decision(answered: true, status: 429) == .unbudgeted)
        #expect(decision(passed: false, status: 429) == nil, "a rate limit refused it before the budgets")
        #expect(decision(passed: false, status: 400) == nil)
    }

    @Test("a client's trace headers are read only when the traceparent is valid, and never with other headers")
    func clientTraceHeaders() {
        let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        let valid = ClientTraceHeaders(HTTPHeaders([("authorization", "Bearer tg-secret"), ("traceparent", parent),
                                                    ("tracestate", "a=1"), ("tracestate", "b=2")]))
        #expect(valid?.traceparent == parent)
        #expect(valid?.tracestate == "a=1,b=2")
        #expect(valid.map { !$0.description.contains("tg-secret") } == true)
        #expect(ClientTraceHeaders(HTTPHeaders([("traceparent", parent), ("tracestate", "not a state")]))?.tracestate == nil,
                "a malformed tracestate is dropped, the parent kept")
        #expect(ClientTraceHeaders(HTTPHeaders([("traceparent", parent), ("tracestate", "not a state")]))?.traceparent == parent)
        #expect(ClientTraceHeaders(HTTPHeaders([("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7")])) == nil)
        #expect(ClientTraceHeaders(HTTPHeaders([("traceparent", "00-00000000000000000000000000000000-00f067aa0ba902b7-01")])) == nil)
        #expect(ClientTraceHeaders(HTTPHeaders([("traceparent", parent), ("traceparent", parent)])) == nil)
        #expect(ClientTraceHeaders(HTTPHeaders([("authorization", "Bearer tg-secret")])) == nil)
    }

    @Test("a span's start is the request's first byte, on the wall clock")
    func startInstant() {
        let now = NIODeadline.now()
        let wall = DefaultTracerClock.Timestamp(nanosecondsSinceEpoch: 1_700_000_000_000_000_000)
        #expect(RequestTracer.instant(of: now - .milliseconds(5), now: now, wallNow: wall).nanosecondsSinceEpoch
                == 1_699_999_999_995_000_000)
        #expect(RequestTracer.instant(of: now + .milliseconds(5), now: now, wallNow: wall) == wall)
    }

    @Test("the upstream gets a traceparent in the client's trace, naming the gateway's span as its parent")
    func propagation() throws {
        let tracer = try RequestTracer(GatewayConfig.TracingConfig(endpoint: "http://127.0.0.1:9"), logger: .init(label: "test"))
        let client = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        let child = tracer.begin(exchange([("traceparent", client), ("tracestate", "vendor=abc")]))
        var head = ByteBuffer()
        child.writeHeaders(into: &head)
        let sent = try #require(upstreamTraceparent(head))
        #expect(sent.trace == "4bf92f3577b34da6a3ce929d0e0e4736")
        #expect(sent.span != "00f067aa0ba902b7" && sent.span.count == 16)
        #expect(sent.flags == "01")
        #expect(String(buffer: head).contains("\r\ntracestate: vendor=abc\r\n"))
        #expect(String(buffer: head).hasSuffix("\r\n"))
        #expect(child.span.isRecording)

        let unsampled = tracer.begin(exchange([("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")]))
        var unsampledHead = ByteBuffer()
        unsampled.writeHeaders(into: &unsampledHead)
        #expect(upstreamTraceparent(unsampledHead)?.flags == "00", "a client's decision not to sample holds downstream")
        #expect(!unsampled.span.isRecording)

        let root = tracer.begin(exchange([("traceparent", "garbage")]))
        var rootHead = ByteBuffer()
        root.writeHeaders(into: &rootHead)
        let fresh = try #require(upstreamTraceparent(rootHead))
        #expect(fresh.trace != "4bf92f3577b34da6a3ce929d0e0e4736" && fresh.trace.count == 32 && fresh.flags == "01")
        for span in [child, unsampled, root] { span.span.end() }
    }

    @Test("with a sample ratio of 0 new traces are not recorded, yet the trace context still travels")
    func sampling() throws {
        let tracer = try RequestTracer(GatewayConfig.TracingConfig(endpoint: "http://127.0.0.1:9", sampleRatio: 0),
                                       logger: .init(label: "test"))
        let span = tracer.begin(exchange([]))
        #expect(!span.span.isRecording)
        var head = ByteBuffer()
        span.writeHeaders(into: &head)
        #expect(upstreamTraceparent(head)?.flags == "00")
        let continued = tracer.begin(exchange([("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")]))
        #expect(continued.span.isRecording, "a sampled parent is followed whatever the ratio")
        continued.span.end()
    }
}
