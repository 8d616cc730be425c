import TollgateCore
import Testing
@testable import TollgateProviders

/// Streams shaped like OpenAI's chat-completions stream with `stream_options: {"include_usage": true}`.
@Suite("SSEUsageTap: usage read from a passing stream, its usage-only chunk hidden from clients that did not ask")
struct SSEUsageTapTests {
    // MARK: Fixture

    static let header = #""id":"chatcmpl-BxH2k9ZqLr","object":"chat.completion.chunk","created":1753360000,"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_34a54ae93c""#

    static func chunk(choices: String, usage: String = "null", extra: String = "") -> String {
        "data: {\(header),\"choices\":\(choices),\"usage\":\(usage)\(extra)}"
    }

    static func delta(_ delta: String, finish: String = "null") -> String {
        chunk(choices: #"[{"index":0,"delta":\#(delta),"logprobs":null,"finish_reason":\#(finish)}]"#,
              extra: #","obfuscation":"q4Zl""#)
    }

    static let roleEvent = delta(#"{"role":"assistant","content":"","refusal":null}"#)
    static let contentEvents = [
        delta(#"{"content":"Hello"}"#), delta(#"{"content":"!"}"#), delta(#"{"content":" \"Quoted\""}"#),
        delta(#"{"content":" data: [DONE]\n\n"}"#),
    ]
    static let finishEvent = delta("{}", finish: #""stop""#)
    static let usageEvent = chunk(choices: "[]", usage: #"{"prompt_tokens":2006,"completion_tokens":300,"total_tokens":2306,"prompt_tokens_details":{"cached_tokens":1920,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":192,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}"#)
    static let doneEvent = "data: [DONE]"
    static let expectedUsage = Usage(inputTokens: 86, cachedInputTokens: 1920, outputTokens: 300, reasoningTokens: 192)

    static let fullStream = [roleEvent] + contentEvents + [finishEvent, usageEvent, doneEvent]

    static func stream(_ events: [String], separator: String) -> [UInt8] {
        Array(events.map { $0 + separator }.joined().utf8)
    }

    static let separators = ["\n\n", "\r\n\r\n"]

    // MARK: Driving the tap

    struct Relayed {
        var output: [UInt8]
        var forwards: [SSEUsageTap.Forward]
        var tap: SSEUsageTap
    }

    /// Feeds `pieces` in order and collects what would reach the client, `finish()` included.
    static func relay(_ pieces: [ArraySlice<UInt8>], hiding: Bool) -> Relayed {
        var tap = SSEUsageTap(hidesUsageChunk: hiding)
        var output: [UInt8] = []
        var forwards: [SSEUsageTap.Forward] = []
        for piece in pieces {
            let forward = Array(piece).withUnsafeBytes { tap.feed($0) }
            forwards.append(forward)
            switch forward {
            case .all: output += piece
            case .bytes(let bytes): output += bytes
            }
        }
        output += tap.finish()
        return Relayed(output: output, forwards: forwards, tap: tap)
    }

    static func twoPieces(_ input: [UInt8], at offset: Int) -> [ArraySlice<UInt8>] {
        [input[..<offset], input[offset...]]
    }

    static func byteByByte(_ input: [UInt8]) -> [ArraySlice<UInt8>] {
        input.indices.map { input[$0...$0] }
    }

    // MARK: Hiding the usage-only chunk

    @Test("hiding: the client gets the stream minus exactly the usage-only event, and the usage is read",
          arguments: separators)
    func hidesUsageEvent(separator: String) {
        let input = Self.stream(Self.fullStream, separator: separator)
        let expected = Self.stream(Self.fullStream.filter { $0 != Self.usageEvent }, separator: separator)
        let relayed = Self.relay([input[...]], hiding: true)
        #expect(relayed.output == expected)
        #expect(relayed.output.count == input.count - (Self.usageEvent + separator).utf8.count)
        #expect(relayed.tap.usage == Self.expectedUsage)
        #expect(relayed.tap.generated.events == Self.contentEvents.count)
        #expect(relayed.tap.sawDone)
    }

    @Test("hiding: the same holds whatever byte offset splits the stream in two", arguments: separators)
    func hidesAtEverySplit(separator: String) {
        let input = Self.stream(Self.fullStream, separator: separator)
        let expected = Self.stream(Self.fullStream.filter { $0 != Self.usageEvent }, separator: separator)
        var wrongAt: [Int] = []
        for offset in 0...input.count {
            let relayed = Self.relay(Self.twoPieces(input, at: offset), hiding: true)
            if relayed.output != expected || relayed.tap.usage != Self.expectedUsage
                || relayed.tap.generated.events != Self.contentEvents.count || !relayed.tap.sawDone {
                wrongAt.append(offset)
            }
        }
        #expect(wrongAt == [])
    }

    @Test("hiding: the same holds when the stream arrives one byte at a time", arguments: separators)
    func hidesByteByByte(separator: String) {
        let input = Self.stream(Self.fullStream, separator: separator)
        let relayed = Self.relay(Self.byteByByte(input), hiding: true)
        #expect(relayed.output == Self.stream(Self.fullStream.filter { $0 != Self.usageEvent }, separator: separator))
        #expect(relayed.tap.usage == Self.expectedUsage)
        #expect(relayed.tap.generated.events == Self.contentEvents.count)
        #expect(relayed.tap.sawDone)
    }

    @Test("hiding: a chunk of complete events with nothing to hide is forwarded as it came")
    func forwardsCompleteChunksAsIs() {
        let chunk = Self.stream([Self.roleEvent, Self.contentEvents[0]], separator: "\n\n")
        var tap = SSEUsageTap(hidesUsageChunk: true)
        #expect(chunk.withUnsafeBytes { tap.feed($0) } == .all)
    }

    @Test("hiding: an event still incomplete at the end of a chunk is held back until its end arrives")
    func holdsIncompleteEvent() {
        let first = Array((Self.roleEvent + "\n\n" + Self.contentEvents[0] + "\n").utf8)
        var tap = SSEUsageTap(hidesUsageChunk: true)
        #expect(first.withUnsafeBytes { tap.feed($0) } == .bytes(Array((Self.roleEvent + "\n\n").utf8)))
        #expect(Array("\n".utf8).withUnsafeBytes { tap.feed($0) } == .bytes(Array((Self.contentEvents[0] + "\n\n").utf8)))
        #expect(tap.finish() == [])
    }

    // MARK: Passing everything

    @Test("not hiding: every feed forwards its chunk untouched, and the usage is still read", arguments: separators)
    func passesEverything(separator: String) {
        let input = Self.stream(Self.fullStream, separator: separator)
        var feedings = [[input[...]], Self.byteByByte(input)]
        feedings += (0...input.count).map { Self.twoPieces(input, at: $0) }
        for pieces in feedings {
            let relayed = Self.relay(pieces, hiding: false)
            #expect(relayed.forwards.allSatisfy { $0 == .all })
            #expect(relayed.output == input)
            #expect(relayed.tap.usage == Self.expectedUsage)
            #expect(relayed.tap.generated.events == Self.contentEvents.count)
            #expect(relayed.tap.sawDone)
        }
    }

    // MARK: Counting what was generated

    @Test("events with text, a tool call's name or its arguments are counted; role, empty and finish events are not")
    func countsToolCallArguments() {
        func toolDelta(_ function: String, id: String = "") -> String {
            Self.delta(#"{"tool_calls":[{"index":0,\#(id)"function":\#(function)}]}"#)
        }
        let events = [
            Self.delta(#"{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_DdmO9pD3xa9XTPNJ32zg2hcA","type":"function","function":{"name":"get_current_weather","arguments":""}}],"refusal":null}"#),
            toolDelta(#"{"arguments":"{\""}"#),
            toolDelta(#"{"arguments":"location"}"#),
            toolDelta(#"{"arguments":"\":\""}"#),
            toolDelta(#"{"arguments":"Boston, MA"}"#),
            toolDelta(#"{"arguments":"\"}"}"#),
            Self.delta("{}", finish: #""tool_calls""#),
            Self.doneEvent,
        ]
        let relayed = Self.relay([Self.stream(events, separator: "\n\n")[...]], hiding: true)
        #expect(relayed.tap.generated.events == 6)
        #expect(relayed.tap.usage == nil)
    }

    @Test("a stream cut before its usage leaves usage nil with the content events counted",
          arguments: [false, true])
    func cutBeforeUsage(hiding: Bool) {
        let input = Self.stream([Self.roleEvent] + Self.contentEvents, separator: "\n\n")
        for pieces in [[input[...]], Self.byteByByte(input)] {
            let relayed = Self.relay(pieces, hiding: hiding)
            #expect(relayed.output == input)
            #expect(relayed.tap.usage == nil)
            #expect(relayed.tap.generated.events == Self.contentEvents.count)
            #expect(relayed.tap.sawDone == false)
        }
    }

    @Test("a stream cut inside an event counts only the complete ones")
    func cutInsideEvent() {
        let input = Self.stream([Self.roleEvent, Self.contentEvents[0]], separator: "\n\n")
            + Array(Self.contentEvents[1].utf8.prefix(40))
        let relayed = Self.relay([input[...]], hiding: true)
        #expect(relayed.tap.generated.events == 1)
        #expect(relayed.tap.usage == nil)
    }

    // MARK: The end of the stream

    @Test("finish returns a held final event that never got its blank line",
          arguments: ["", "\n", "\r\n"])
    func finishReturnsHeldEvent(ending: String) {
        let events = [Self.roleEvent, Self.contentEvents[0], Self.finishEvent, Self.usageEvent]
        let input = Self.stream(events, separator: "\n\n") + Array((Self.doneEvent + ending).utf8)
        var tap = SSEUsageTap(hidesUsageChunk: true)
        let forward = input.withUnsafeBytes { tap.feed($0) }
        #expect(forward == .bytes(Self.stream([Self.roleEvent, Self.contentEvents[0], Self.finishEvent], separator: "\n\n")))
        #expect(tap.sawDone == false)
        #expect(tap.finish() == Array((Self.doneEvent + ending).utf8))
        #expect(tap.sawDone)
        #expect(tap.usage == Self.expectedUsage)
        #expect(tap.finish() == [], "nothing is held twice")
    }

    @Test("finish reads a held usage-only event and still hides it")
    func finishHidesHeldUsage() {
        let input = Self.stream([Self.roleEvent, Self.contentEvents[0]], separator: "\n\n") + Array(Self.usageEvent.utf8)
        let relayed = Self.relay(Self.byteByByte(input), hiding: true)
        #expect(relayed.output == Self.stream([Self.roleEvent, Self.contentEvents[0]], separator: "\n\n"))
        #expect(relayed.tap.usage == Self.expectedUsage)
    }

    @Test("not hiding: finish returns nothing, since every byte was already forwarded")
    func finishWhenNotHiding() {
        let input = Array((Self.roleEvent + "\n\n" + Self.doneEvent).utf8)
        var tap = SSEUsageTap(hidesUsageChunk: false)
        #expect(input.withUnsafeBytes { tap.feed($0) } == .all)
        #expect(tap.finish() == [])
        #expect(tap.sawDone)
    }

    // MARK: Other shapes seen in the wild

    @Test("a usage reported on a chunk that also carries choices is read, and the chunk is kept")
    func usageAlongsideChoices() {
        let withUsage = Self.chunk(choices: #"[{"index":0,"delta":{"content":"Hi"},"logprobs":null,"finish_reason":"stop"}]"#,
                                   usage: #"{"prompt_tokens":12,"completion_tokens":1,"total_tokens":13}"#)
        let events = [Self.roleEvent, withUsage, Self.doneEvent]
        let relayed = Self.relay([Self.stream(events, separator: "\n\n")[...]], hiding: true)
        #expect(relayed.output == Self.stream(events, separator: "\n\n"))
        #expect(relayed.tap.usage == Usage(inputTokens: 12, outputTokens: 1))
        #expect(relayed.tap.generated.events == 1)
    }

    @Test("comment and keep-alive events pass through untouched")
    func commentsPassThrough() {
        let events = [": OPENROUTER PROCESSING", Self.roleEvent, ":", Self.contentEvents[0], Self.usageEvent, Self.doneEvent]
        let relayed = Self.relay(Self.byteByByte(Self.stream(events, separator: "\n\n")), hiding: true)
        #expect(relayed.output == Self.stream(events.filter { $0 != Self.usageEvent }, separator: "\n\n"))
        #expect(relayed.tap.usage == Self.expectedUsage)
    }
}
