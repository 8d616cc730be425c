import TollgateCore
import Testing
@testable import TollgateProviders

/// Feeds `bytes` cut at `cuts` and collects everything written, `finish()` included.
func drive<T>(_ translator: inout T, _ bytes: [UInt8], cuts: [Int], feed: (inout T, UnsafeRawBufferPointer) -> [UInt8],
              finish: (inout T) -> [UInt8]) -> [UInt8] {
    var out: [UInt8] = []
    var start = 0
    for cut in cuts.map({ min($0, bytes.count) }).sorted() + [bytes.count] where cut >= start {
        out += Array(bytes[start..<cut]).withUnsafeBytes { feed(&translator, $0) }
        start = cut
    }
    return out + finish(&translator)
}

/// The events of an SSE stream: (event name or nil, data as JSON or the raw `[DONE]`).
func events(_ bytes: [UInt8]) -> [(name: String?, data: JSON)] {
    String(decoding: bytes, as: UTF8.self).components(separatedBy: "\n\n").filter { !$0.isEmpty }.map { event in
        var name: String?
        var data: JSON = .null
        for line in event.split(separator: "\n") {
            if line.hasPrefix("event: ") { name = String(line.dropFirst(7)) }
            if line.hasPrefix("data: ") {
                let payload = String(line.dropFirst(6))
                data = payload == "[DONE]" ? .string("[DONE]") : ((try? JSON.parse(Array(payload.utf8))) ?? .null)
            }
        }
        return (name, data)
    }
}

@Suite("Streams: Anthropic events → OpenAI chunks")
struct TranslationAnthropicStreamTests {
    static func translate(_ bytes: [UInt8], includeUsage: Bool, cuts: [Int] = []) -> (out: [UInt8], usage: Usage?) {
        var stream = AnthropicToOpenAIStream(includeUsage: includeUsage, created: 1_753_360_000)
        let out = drive(&stream, bytes, cuts: cuts, feed: { $0.feed($1) }, finish: { $0.finish() })
        return (out, stream.usage)
    }

    static let header: [String: JSON] = ["id": "msg_014p7gG3wDgGV9EUtLvnow3U", "object": "chat.completion.chunk",
                                         "created": 1_753_360_000, "model": "claude-sonnet-4-5-20250929"]

    static func chunk(_ delta: JSON, finish: JSON = .null, usageMember: Bool) -> JSON {
        var object = header
        object["choices"] = [["index": 0, "delta": delta, "logprobs": .null, "finish_reason": finish]]
        if usageMember { object["usage"] = .null }
        return .object(object)
    }

    static func expected(usageMember: Bool) -> [JSON] {
        [
            chunk(["role": "assistant", "content": ""], usageMember: usageMember),
            chunk(["content": "Okay, \"usage\": {\"output_tokens\": 9999}\n\n"], usageMember: usageMember),
            chunk(["content": " let's check."], usageMember: usageMember),
            chunk(["tool_calls": [["index": 0, "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "type": "function",
                                   "function": ["name": "get_weather", "arguments": ""]]]], usageMember: usageMember),
            chunk(["tool_calls": [["index": 0, "function": ["arguments": "{\"location\":"]]]], usageMember: usageMember),
            chunk(["tool_calls": [["index": 0, "function": ["arguments": " \"San Francisco, CA\"}"]]]], usageMember: usageMember),
            chunk([:], finish: "tool_calls", usageMember: usageMember),
        ]
    }

    @Test("a text and tool-use stream becomes role, content, tool_calls and finish chunks, then [DONE]")
    func toolUseStream() {
        let (out, usage) = Self.translate(AnthropicUsageTests.stream(AnthropicUsageTests.streamEvents), includeUsage: false)
        let written = events(out)
        #expect(written.map(\.data) == Self.expected(usageMember: false) + ["[DONE]"])
        #expect(written.allSatisfy { $0.name == nil })
        #expect(usage == AnthropicUsageTests.expected)
    }

    @Test("with include_usage, the usage chunk (choices []) comes before [DONE], prompt counting cache reads and writes")
    func usageChunk() {
        let bytes = AnthropicUsageTests.stream(AnthropicUsageTests.streamEvents, separator: "\r\n\r\n")
        var usageChunk = Self.header
        usageChunk["choices"] = []
        usageChunk["usage"] = ["prompt_tokens": 31496, "completion_tokens": 89, "total_tokens": 31585,
                               "prompt_tokens_details": ["cached_tokens": 30000]]
        let whole = Self.translate(bytes, includeUsage: true).out
        #expect(events(whole).map(\.data) == Self.expected(usageMember: true) + [.object(usageChunk), "[DONE]"])
        for cut in stride(from: 0, through: bytes.count, by: 7) {
            #expect(Self.translate(bytes, includeUsage: true, cuts: [cut, cut + 3]).out == whole, "cut at \(cut)")
        }
    }

    @Test("an error event becomes an OpenAI error chunk")
    func errorEvent() {
        let bytes = AnthropicUsageTests.stream([AnthropicUsageTests.streamEvents[0],
                                                ("error", #"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#)])
        let written = events(Self.translate(bytes, includeUsage: false).out)
        #expect(written.last?.data == ["error": ["message": "Overloaded", "type": "overloaded_error", "code": .null, "param": .null]])
    }
}

@Suite("Streams: OpenAI chunks → Anthropic events")
struct TranslationOpenAIStreamTests {
    static let head = #""id":"chatcmpl-BxH2k9ZqLr","object":"chat.completion.chunk","created":1753360000,"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_34a54ae93c""#

    static func chunk(_ delta: String, finish: String = "null") -> String {
        #"data: {\#(head),"choices":[{"index":0,"delta":\#(delta),"logprobs":null,"finish_reason":\#(finish)}],"usage":null}"#
    }

    static let upstream = [
        chunk(#"{"role":"assistant","content":"","refusal":null}"#),
        chunk(#"{"content":"Let me look."}"#),
        chunk(#"{"tool_calls":[{"index":0,"id":"call_DdmO9pD3xa9XTPNJ32zg2hcA","type":"function","function":{"name":"get_weather","arguments":""}}]}"#),
        chunk(#"{"tool_calls":[{"index":0,"function":{"arguments":"{\"location\":"}}]}"#),
        chunk(#"{"tool_calls":[{"index":0,"function":{"arguments":"\"Paris\"}"}}]}"#),
        chunk(#"{"tool_calls":[{"index":1,"id":"call_2","type":"function","function":{"name":"get_time","arguments":"{}"}}]}"#),
        chunk("{}", finish: #""tool_calls""#),
        #"data: {\#(head),"choices":[],"usage":{"prompt_tokens":2006,"completion_tokens":300,"total_tokens":2306,"prompt_tokens_details":{"cached_tokens":1920,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}}"#,
        "data: [DONE]",
    ]

    static func translate(_ bytes: [UInt8], cuts: [Int] = []) -> [UInt8] {
        var stream = OpenAIToAnthropicStream()
        return drive(&stream, bytes, cuts: cuts, feed: { $0.feed($1) }, finish: { $0.finish() })
    }

    static let expected: [(String, JSON)] = [
        ("message_start", ["type": "message_start", "message": [
            "id": "chatcmpl-BxH2k9ZqLr", "type": "message", "role": "assistant", "model": "gpt-4o-mini-2024-07-18",
            "content": [], "stop_reason": .null, "stop_sequence": .null, "usage": ["input_tokens": 0, "output_tokens": 0]]]),
        ("content_block_start", ["type": "content_block_start", "index": 0, "content_block": ["type": "text", "text": ""]]),
        ("content_block_delta", ["type": "content_block_delta", "index": 0, "delta": ["type": "text_delta", "text": "Let me look."]]),
        ("content_block_stop", ["type": "content_block_stop", "index": 0]),
        ("content_block_start", ["type": "content_block_start", "index": 1, "content_block": [
            "type": "tool_use", "id": "call_DdmO9pD3xa9XTPNJ32zg2hcA", "name": "get_weather", "input": [:]]]),
        ("content_block_delta", ["type": "content_block_delta", "index": 1, "delta": ["type": "input_json_delta", "partial_json": "{\"location\":"]]),
        ("content_block_delta", ["type": "content_block_delta", "index": 1, "delta": ["type": "input_json_delta", "partial_json": "\"Paris\"}"]]),
        ("content_block_stop", ["type": "content_block_stop", "index": 1]),
        ("content_block_start", ["type": "content_block_start", "index": 2, "content_block": [
            "type": "tool_use", "id": "call_2", "name": "get_time", "input": [:]]]),
        ("content_block_delta", ["type": "content_block_delta", "index": 2, "delta": ["type": "input_json_delta", "partial_json": "{}"]]),
        ("content_block_stop", ["type": "content_block_stop", "index": 2]),
        ("message_delta", ["type": "message_delta", "delta": ["stop_reason": "tool_use", "stop_sequence": .null],
                           "usage": ["input_tokens": 86, "cache_read_input_tokens": 1920, "cache_creation_input_tokens": 0, "output_tokens": 300]]),
        ("message_stop", ["type": "message_stop"]),
    ]

    @Test("a text and two-tool stream becomes the Anthropic event sequence, usage in message_delta")
    func toolStream() {
        let bytes = Array(Self.upstream.map { $0 + "\n\n" }.joined().utf8)
        let whole = Self.translate(bytes)
        let written = events(whole)
        #expect(written.map(\.name) == Self.expected.map(\.0))
        #expect(written.map(\.data) == Self.expected.map(\.1))
        for cut in stride(from: 0, through: bytes.count, by: 5) {
            #expect(Self.translate(bytes, cuts: [cut, cut + 2]) == whole, "cut at \(cut)")
        }
        // An Anthropic tap on the translated stream reads the usage the upstream reported.
        var tap = AnthropicStreamTap()
        whole.withUnsafeBytes { tap.feed($0) }
        #expect(tap.usage == .openAI(promptTokens: 2006, cachedTokens: 1920, completionTokens: 300))
    }

    @Test("a stream that ends after its finish chunk without [DONE] is still closed")
    func closedWithoutDone() {
        let bytes = Array([Self.chunk(#"{"role":"assistant","content":"Hi"}"#), Self.chunk("{}", finish: #""length""#)]
            .map { $0 + "\n\n" }.joined().utf8)
        let written = events(Self.translate(bytes))
        #expect(written.map(\.name) == ["message_start", "content_block_start", "content_block_delta", "content_block_stop", "message_delta", "message_stop"])
        #expect(written[4].data["delta"]?["stop_reason"] == "max_tokens")
    }

    @Test("an OpenAI error event becomes an Anthropic error event")
    func errorEvent() {
        let bytes = Array("data: {\"error\":{\"message\":\"The server had an error\",\"type\":\"server_error\",\"param\":null,\"code\":null}}\n\n".utf8)
        let written = events(Self.translate(bytes))
        #expect(written.map(\.name) == ["error"])
        #expect(written.first?.data == ["type": "error", "error": ["type": "api_error", "message": "The server had an error"]])
    }
}
