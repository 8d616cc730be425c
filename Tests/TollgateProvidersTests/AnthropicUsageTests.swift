import TollgateCore
import Testing
@testable import TollgateProviders

/// Payloads shaped like the Anthropic Messages API reference (non-streamed `message`, streamed events).
@Suite("Anthropic usage: input_tokens excludes cache reads and writes, each counted at its own rate")
struct AnthropicUsageTests {
    static let cachedMessage = #"""
    {"id":"msg_01XFDUDYJgAACzvnptvVoYEL","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929",
     "content":[{"type":"thinking","thinking":"The user greets me.","signature":"EqQBCgIYAhIM1gbcDa9GJwZA2b3h"},
                {"type":"text","text":"Hello! How can I help?"}],
     "stop_reason":"end_turn","stop_sequence":null,
     "usage":{"input_tokens":21,"cache_creation_input_tokens":1888,"cache_read_input_tokens":50021,
              "cache_creation":{"ephemeral_5m_input_tokens":1888,"ephemeral_1h_input_tokens":0},
              "output_tokens":393,"service_tier":"standard"}}
    """#

    static func usage(_ body: String) -> Usage? {
        Array(body.utf8).withUnsafeBytes { AnthropicUsage.scan(responseBody: $0) }
    }

    @Test("a message's usage maps cache reads and writes to their own fields, thinking inside output")
    func messageUsage() {
        let usage = Self.usage(Self.cachedMessage)
        #expect(usage == Usage(inputTokens: 21, cachedInputTokens: 50021, cacheWriteTokens: 1888, outputTokens: 393))
        #expect(usage?.totalPromptTokens == 21 + 50021 + 1888)
    }

    @Test("one-hour cache writes are read from cache_creation, as the part of the writes billed at their own rate")
    func oneHourWrites() {
        let body = #"{"usage":{"input_tokens":21,"cache_creation_input_tokens":1888,"cache_read_input_tokens":0,"cache_creation":{"ephemeral_5m_input_tokens":388,"ephemeral_1h_input_tokens":1500},"output_tokens":3}}"#
        #expect(Self.usage(body) == Usage(inputTokens: 21, cacheWriteTokens: 1888, cacheWrite1hTokens: 1500, outputTokens: 3))
        let start = #"{"type":"message_start","message":{"usage":{"input_tokens":21,"cache_creation_input_tokens":1888,"cache_creation":{"ephemeral_5m_input_tokens":388,"ephemeral_1h_input_tokens":1500},"output_tokens":1}}}"#
        let delta = #"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":3}}"#
        let tap = Self.tap(Self.stream([("message_start", start), ("message_delta", delta)]), cuts: [])
        #expect(tap.usage == Usage(inputTokens: 21, cacheWriteTokens: 1888, cacheWrite1hTokens: 1500, outputTokens: 3))
    }

    @Test("a message without cache members has zero cache tokens; a body without usage has none")
    func plainUsage() {
        #expect(Self.usage(#"{"id":"msg_1","type":"message","usage":{"input_tokens":12,"output_tokens":6}}"#)
            == Usage(inputTokens: 12, outputTokens: 6))
        #expect(Self.usage(#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#) == nil)
        #expect(Self.usage(#"{"usage":{"input_tokens":5,"cache_read_input_tokens":null,"output_tokens":1}}"#)
            == Usage(inputTokens: 5, outputTokens: 1))
    }

    // MARK: Stream tap

    static let streamEvents: [(String, String)] = [
        ("message_start", #"{"type":"message_start","message":{"id":"msg_014p7gG3wDgGV9EUtLvnow3U","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":472,"cache_creation_input_tokens":1024,"cache_read_input_tokens":30000,"output_tokens":2}}}"#),
        ("content_block_start", #"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#),
        ("ping", #"{"type": "ping"}"#),
        ("content_block_delta", #"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Okay, \"usage\": {\"output_tokens\": 9999}\n\n"}}"#),
        ("content_block_delta", #"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" let's check."}}"#),
        ("content_block_stop", #"{"type":"content_block_stop","index":0}"#),
        ("content_block_start", #"{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_01T1x1fJ34qAmk2tNTrN7Up6","name":"get_weather","input":{}}}"#),
        ("content_block_delta", #"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"location\":"}}"#),
        ("content_block_delta", #"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":" \"San Francisco, CA\"}"}}"#),
        ("content_block_stop", #"{"type":"content_block_stop","index":1}"#),
        ("message_delta", #"{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":89}}"#),
        ("message_stop", #"{"type":"message_stop"}"#),
    ]

    static func stream(_ events: [(String, String)], separator: String = "\n\n") -> [UInt8] {
        Array(events.map { "event: \($0.0)\ndata: \($0.1)\(separator)" }.joined().utf8)
    }

    static func tap(_ bytes: [UInt8], cuts: [Int]) -> AnthropicStreamTap {
        var tap = AnthropicStreamTap()
        var start = 0
        for cut in cuts.sorted() + [bytes.count] where cut >= start {
            Array(bytes[start..<cut]).withUnsafeBytes { tap.feed($0) }
            start = cut
        }
        tap.finish()
        return tap
    }

    static let expected = Usage(inputTokens: 472, cachedInputTokens: 30000, cacheWriteTokens: 1024, outputTokens: 89)

    @Test("the tap reads input from message_start and the cumulative output from message_delta", arguments: ["\n\n", "\r\n\r\n"])
    func tapWholeStream(separator: String) {
        let tap = Self.tap(Self.stream(Self.streamEvents, separator: separator), cuts: [])
        #expect(tap.usage == Self.expected)
        #expect(tap.sawFinalUsage && tap.sawMessageStop && !tap.sawError)
        #expect(tap.generated.events == 4)
    }

    @Test("the tap finds the same usage wherever the byte chunks are cut")
    func tapEverySplit() {
        let bytes = Self.stream(Self.streamEvents, separator: "\r\n\r\n")
        for cut in 0...bytes.count {
            #expect(Self.tap(bytes, cuts: [cut]).usage == Self.expected, "cut at \(cut)")
        }
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            let cuts = (0..<8).map { _ in Int.random(in: 0...bytes.count, using: &generator) }
            let tap = Self.tap(bytes, cuts: cuts)
            #expect(tap.usage == Self.expected && tap.generated.events == 4, "cuts \(cuts)")
        }
    }

    @Test("a stream cut before message_delta keeps the input side and counts the deltas it saw")
    func tapCutShort() {
        let tap = Self.tap(Self.stream(Array(Self.streamEvents.prefix(8))), cuts: [])
        #expect(tap.usage == Usage(inputTokens: 472, cachedInputTokens: 30000, cacheWriteTokens: 1024, outputTokens: 2))
        #expect(!tap.sawFinalUsage)
        #expect(tap.generated.events == 3)
    }

    @Test("input counts repeated in message_delta (newer API versions) replace those of message_start")
    func tapDeltaWithInput() {
        let events = [Self.streamEvents[0],
                      ("message_delta", #"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"input_tokens":480,"cache_creation_input_tokens":1024,"cache_read_input_tokens":30000,"output_tokens":30}}"#)]
        #expect(Self.tap(Self.stream(events), cuts: []).usage
            == Usage(inputTokens: 480, cachedInputTokens: 30000, cacheWriteTokens: 1024, outputTokens: 30))
    }

    @Test("an error event is noticed, and a last event without its blank line is still read")
    func tapErrorAndUnterminated() {
        var bytes = Self.stream([Self.streamEvents[0], ("error", #"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#)])
        bytes.removeLast(2)
        let tap = Self.tap(bytes, cuts: [])
        #expect(tap.sawError)
        #expect(tap.usage?.inputTokens == 472)
    }
}
