import Testing
@testable import TollgateProviders

@Suite("Responses: Anthropic message ↔ OpenAI chat.completion")
struct TranslationResponseTests {
    static func toOpenAI(_ body: String) throws -> JSON {
        try JSON.parse(try OpenAIClientToAnthropicModel.clientResponse(Array(body.utf8), created: 1_753_360_000))
    }

    static func toAnthropic(_ body: String) throws -> JSON {
        try JSON.parse(try AnthropicClientToOpenAIModel.clientResponse(Array(body.utf8)))
    }

    @Test("a tool-use message becomes content plus tool_calls; prompt_tokens counts cache reads and writes")
    func anthropicToolUseMessage() throws {
        let body = try Self.toOpenAI(#"""
        {"id":"msg_01Aq9w938a90dw8q","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929",
         "content":[{"type":"text","text":"I'll check the current weather in San Francisco for you."},
                    {"type":"tool_use","id":"toolu_01A09q90qw90lq917835lq9","name":"get_weather","input":{"location":"San Francisco, CA","unit":"celsius"}}],
         "stop_reason":"tool_use","stop_sequence":null,
         "usage":{"input_tokens":21,"cache_creation_input_tokens":1888,"cache_read_input_tokens":50021,"output_tokens":393}}
        """#)
        #expect(body == [
            "id": "msg_01Aq9w938a90dw8q", "object": "chat.completion", "created": 1_753_360_000, "model": "claude-sonnet-4-5-20250929",
            "choices": [["index": 0, "logprobs": .null, "finish_reason": "tool_calls", "message": [
                "role": "assistant", "refusal": .null, "content": "I'll check the current weather in San Francisco for you.",
                "tool_calls": [["id": "toolu_01A09q90qw90lq917835lq9", "type": "function", "function": [
                    "name": "get_weather", "arguments": #"{"location":"San Francisco, CA","unit":"celsius"}"#]]]]]],
            "usage": ["prompt_tokens": 51930, "completion_tokens": 393, "total_tokens": 52323,
                      "prompt_tokens_details": ["cached_tokens": 50021]],
        ])
        // The client sees cache writes as uncached prompt tokens (OpenAI has no member for them); the gateway
        // bills from Anthropic's own usage, never from the translated body.
        #expect(Array(#"{"usage":{"prompt_tokens":51930,"completion_tokens":393,"prompt_tokens_details":{"cached_tokens":50021}}}"#.utf8)
            .withUnsafeBytes { OpenAIUsage.scan(responseBody: $0) }?.inputTokens == 21 + 1888)
    }

    @Test("stop reasons map to finish reasons", arguments: [
        ("end_turn", "stop"), ("stop_sequence", "stop"), ("max_tokens", "length"), ("tool_use", "tool_calls"), ("refusal", "content_filter"),
    ])
    func stopReasons(stopReason: String, finishReason: String) throws {
        let body = try Self.toOpenAI(#"{"id":"msg_1","type":"message","role":"assistant","model":"claude","content":[{"type":"text","text":"Hi"}],"stop_reason":"\#(stopReason)","stop_sequence":null,"usage":{"input_tokens":1,"output_tokens":1}}"#)
        #expect(body["choices"]?.array?.first?["finish_reason"] == .string(finishReason))
    }

    @Test("a chat.completion with tool calls becomes text and tool_use blocks; input_tokens excludes cached tokens")
    func openAIToolCallCompletion() throws {
        let body = try Self.toAnthropic(#"""
        {"id":"chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG","object":"chat.completion","created":1741570283,"model":"gpt-4o-2024-08-06",
         "choices":[{"index":0,"message":{"role":"assistant","content":"Checking.","refusal":null,"annotations":[],
           "tool_calls":[{"id":"call_abc123","type":"function","function":{"name":"get_weather","arguments":"{\"location\":\"Boston, MA\"}"}}]},
           "logprobs":null,"finish_reason":"tool_calls"}],
         "usage":{"prompt_tokens":2006,"completion_tokens":300,"total_tokens":2306,
           "prompt_tokens_details":{"cached_tokens":1920,"audio_tokens":0},
           "completion_tokens_details":{"reasoning_tokens":192,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},
         "service_tier":"default","system_fingerprint":"fp_fc9f1d7035"}
        """#)
        #expect(body == [
            "id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG", "type": "message", "role": "assistant", "model": "gpt-4o-2024-08-06",
            "content": [["type": "text", "text": "Checking."],
                        ["type": "tool_use", "id": "call_abc123", "name": "get_weather", "input": ["location": "Boston, MA"]]],
            "stop_reason": "tool_use", "stop_sequence": .null,
            "usage": ["input_tokens": 86, "cache_read_input_tokens": 1920, "cache_creation_input_tokens": 0, "output_tokens": 300],
        ])
        let usage = Array(body.serialized).withUnsafeBytes { AnthropicUsage.scan(responseBody: $0) }
        #expect(usage == .openAI(promptTokens: 2006, cachedTokens: 1920, completionTokens: 300))
    }

    @Test("finish reasons map to stop reasons", arguments: [
        ("stop", "end_turn"), ("length", "max_tokens"), ("tool_calls", "tool_use"), ("content_filter", "refusal"),
    ])
    func finishReasons(finishReason: String, stopReason: String) throws {
        let body = try Self.toAnthropic(#"{"id":"c","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Hi"},"finish_reason":"\#(finishReason)"}],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}"#)
        #expect(body["stop_reason"] == .string(stopReason))
        #expect(body["usage"]?["input_tokens"] == 3)
    }
}
