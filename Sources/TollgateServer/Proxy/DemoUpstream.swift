import Foundation
import NIOCore
import NIOHTTP1
import TollgateCore
import TollgateProviders

/// The built-in simulated model: it answers like an OpenAI-compatible server (same bodies, same stream
/// events, usage always reported) so that everything after it — the usage tap, pricing, the ledger — runs
/// exactly as for a real upstream. Its text is deterministic and says that it is simulated.
final class DemoUpstream {
    private static let words = """
        This answer comes from the Tollgate demo model. No provider was called and no real \
        tokens were spent, but the usage below is priced and recorded in the ledger like a real request, \
        so you can watch keys, spend reports and budgets work before you connect an account.
        """.split(separator: " ").map(String.init)

    private let eventLoop: any EventLoop
    private let settings: DemoSettings
    private let deployment: Deployment
    private let endpoint: ForwardedEndpoint
    private let fields: OpenAIRequestFields
    private let allocator: ByteBufferAllocator
    private weak var delegate: (any UpstreamResponseDelegate)?
    private var scheduled: Scheduled<Void>?
    private var cancelled = false

    init(eventLoop: any EventLoop, settings: DemoSettings, deployment: Deployment, endpoint: ForwardedEndpoint,
         fields: OpenAIRequestFields, allocator: ByteBufferAllocator) {
        self.eventLoop = eventLoop
        self.settings = settings
        self.deployment = deployment
        self.endpoint = endpoint
        self.fields = fields
        self.allocator = allocator
    }

    func start(delegate: any UpstreamResponseDelegate) {
        self.delegate = delegate
        after(settings.latencyMs) { self.respond() }
    }

    func cancel() {
        cancelled = true
        scheduled?.cancel()
        scheduled = nil
    }

    private var promptTokens: Int { TokenEstimate.promptTokens(bytes: fields.promptBytes) + 3 }

    private var replyWords: [String] {
        let limit = fields.maxOutputTokens.map { max(1, $0) } ?? Int.max
        let count = min(settings.streamChunks, limit)
        let offset = fields.promptBytes % DemoUpstream.words.count
        return ["[simulated]"] + (0..<max(0, count - 1)).map { DemoUpstream.words[(offset + $0) % DemoUpstream.words.count] }
    }

    private func after(_ milliseconds: Int, _ body: @escaping () -> Void) {
        guard !cancelled else { return }
        if milliseconds <= 0 {
            eventLoop.assumeIsolated().execute { if !self.cancelled { body() } }
        } else {
            scheduled = eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(Int64(milliseconds))) {
                if !self.cancelled { body() }
            }
        }
    }

    private func respond() {
        guard endpoint == .chatCompletions else {
            let body = #"{"error":{"message":"The demo model answers chat completions only.","type":"invalid_request_error","code":"unsupported_endpoint","param":"model"}}"#
            return send(status: .badRequest, contentType: "application/json", body: body)
        }
        let words = replyWords
        let created = Int(Date().timeIntervalSince1970)
        let id = "chatcmpl-demo-" + String(UInt32.random(in: 0...UInt32.max), radix: 16)
        let model = JSONString.quoted(deployment.upstreamModel)
        let usage = #"{"prompt_tokens":\#(promptTokens),"completion_tokens":\#(words.count),"total_tokens":\#(promptTokens + words.count),"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}"#
        guard fields.stream else {
            let text = JSONString.quoted(words.joined(separator: " "))
            let body = #"{"id":"\#(id)","object":"chat.completion","created":\#(created),"model":\#(model),"system_fingerprint":"tollgate-demo-simulated","choices":[{"index":0,"message":{"role":"assistant","content":\#(text)},"finish_reason":"stop"}],"usage":\#(usage)}"#
            return send(status: .ok, contentType: "application/json", body: body)
        }
        let prefix = #"data: {"id":"\#(id)","object":"chat.completion.chunk","created":\#(created),"model":\#(model),"system_fingerprint":"tollgate-demo-simulated","#
        var events = [prefix + #""choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}],"usage":null}"# + "\n\n"]
        for (index, word) in words.enumerated() {
            let content = JSONString.quoted(index == 0 ? word : " " + word)
            events.append(prefix + #""choices":[{"index":0,"delta":{"content":\#(content)},"finish_reason":null}],"usage":null}"# + "\n\n")
        }
        events.append(prefix + #""choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":null}"# + "\n\n")
        events.append(prefix + #""choices":[],"usage":\#(usage)}"# + "\n\n")
        events.append("data: [DONE]\n\n")
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "text/event-stream")
        delegate?.upstreamResponseHead(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))
        sendEvents(events[...])
    }

    private func sendEvents(_ events: ArraySlice<String>) {
        guard let first = events.first else {
            delegate?.upstreamResponseEnd()
            return
        }
        delegate?.upstreamResponseBody(allocator.buffer(string: first))
        after(events.count > 1 ? settings.streamChunkMs : 0) { self.sendEvents(events.dropFirst()) }
    }

    private func send(status: HTTPResponseStatus, contentType: String, body: String) {
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: contentType)
        delegate?.upstreamResponseHead(HTTPResponseHead(version: .http1_1, status: status, headers: headers))
        delegate?.upstreamResponseBody(allocator.buffer(string: body))
        delegate?.upstreamResponseEnd()
    }
}
