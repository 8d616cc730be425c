import TollgateCore
import Testing
@testable import TollgateProviders

/// What a stream cut short is billed for: the generated output its events relayed, read from the parsed
/// deltas of either wire format, whatever the upstream's JSON spacing.
@Suite("Generated output: counted from the parsed deltas of a stream, a token per event at least, by size beyond")
struct GeneratedOutputTests {
    static func openAI(_ events: [String]) -> SSEUsageTap {
        var tap = SSEUsageTap(hidesUsageChunk: false)
        let bytes = Array(events.map { "data: \($0)\n\n" }.joined().utf8)
        _ = bytes.withUnsafeBytes { tap.feed($0) }
        _ = tap.finish()
        return tap
    }

    static func anthropic(_ events: [String]) -> AnthropicStreamTap {
        var tap = AnthropicStreamTap()
        let bytes = Array(events.map { "event: content_block_delta\ndata: \($0)\n\n" }.joined().utf8)
        bytes.withUnsafeBytes { tap.feed($0) }
        tap.finish()
        return tap
    }

    static func choice(_ delta: String) -> String {
        #"{"id": "chatcmpl-1", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": \#(delta), "finish_reason": null}]}"#
    }

    @Test("JSON written with spaces after colons and commas is counted like compact JSON")
    func spacedJSON() {
        let spaced = Self.openAI([Self.choice(#"{"role": "assistant", "content": ""}"#),
                                  Self.choice(#"{"content": "Hello"}"#), Self.choice(#"{"content" :  " there"}"#)])
        let compact = Self.openAI([#"{"choices":[{"index":0,"delta":{"content":"Hello"}}]}"#,
                                   #"{"choices":[{"index":0,"delta":{"content":" there"}}]}"#])
        #expect(spaced.generated == compact.generated)
        #expect(spaced.generated.events == 2 && spaced.generated.tokens == 2 + 2)
    }

    @Test("reasoning, refusals and tool calls (name and arguments) are generated output too")
    func everyKindOfDelta() {
        let tap = Self.openAI([
            Self.choice(#"{"reasoning_content": "Let me think about this carefully."}"#),
            Self.choice(#"{"reasoning": "Step two."}"#),
            Self.choice(#"{"refusal": "I can't."}"#),
            Self.choice(#"{"tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]}"#),
            Self.choice(#"{"tool_calls": [{"index": 0, "function": {"arguments": "{\"city\": \"Paris\"}"}}]}"#),
            Self.choice(#"{"function_call": {"arguments": "{}"}}"#),
            Self.choice(#"{"content": null}"#),
            Self.choice("{}"),
        ])
        // 34 bytes → 9, 10 → 3, 8 → 2, 11 → 3, 17 (the escapes decoded) → 5, 2 → 1
        #expect(tap.generated.events == 6)
        #expect(tap.generated.tokens == 9 + 3 + 2 + 3 + 5 + 1)
    }

    @Test("a large event counts by its size, not as one token")
    func largeEvent() {
        let text = String(repeating: "word ", count: 80)
        let tap = Self.openAI([Self.choice(#"{"content": "\#(text)"}"#)])
        #expect(tap.generated.events == 1 && tap.generated.tokens == 100)
    }

    @Test("characters outside ASCII count one token each, escaped or not, a surrogate pair as one")
    func otherScripts() {
        let tap = Self.openAI([Self.choice(#"{"content": "你好世界"}"#), Self.choice(#"{"content": "\u4f60\u597d \ud83d\ude00"}"#)])
        #expect(tap.generated.tokens == 4 + (1 + 2 + 1))
    }

    @Test("text read before a malformed part of an event still counts")
    func malformedAfterText() {
        let tap = Self.openAI([#"{"choices": [{"delta": {"content": "Hello world, again"}}], "usage": {"prompt_tokens": }"#])
        #expect(tap.generated.events == 1 && tap.generated.tokens == 5)
        #expect(tap.usage == nil)
    }

    @Test("Anthropic text, thinking and tool-input deltas count by their text; signatures do not")
    func anthropicDeltas() {
        let tap = Self.anthropic([
            #"{"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "Let me think about this carefully."}}"#,
            #"{"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3hAAAAAAAAAAAA"}}"#,
            #"{"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "\#(String(repeating: "abcd", count: 50))"}}"#,
            #"{"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": "{\"city\": "}}"#,
        ])
        #expect(tap.generated.events == 3)
        #expect(tap.generated.tokens == 9 + 50 + 3)
    }
}
