import TollgateCore

/// Watches an OpenAI-format event stream as it passes, to find the usage it reports and to count what was
/// generated if it never reports any. When the client did not ask for usage (the gateway asked for it on
/// its behalf), the tap also removes the usage-only chunk so the client sees what the provider would have
/// sent it.
///
/// Events are separated by a blank line. Bytes pass through untouched (`.all`) unless an event must be
/// removed, or, in hiding mode, an event is still incomplete at the end of a chunk (it is held back until
/// its end arrives, because it might be the one to remove).
public struct SSEUsageTap: Sendable {
    public enum Forward: Equatable, Sendable {
        /// Forward the chunk exactly as it came.
        case all
        /// Forward these bytes instead (possibly none).
        case bytes([UInt8])
    }

    public let hidesUsageChunk: Bool
    private var splitter = SSEEventSplitter()
    private var reading = Reading()

    /// The usage the stream reported, once its usage chunk has passed.
    public var usage: Usage? { reading.usage }
    /// What the events so far carried of generated output (content, reasoning, refusals, tool calls), for a
    /// stream that ends without reporting usage.
    public var generated: GeneratedOutput { reading.generated }
    public var sawDone: Bool { reading.sawDone }

    public init(hidesUsageChunk: Bool) {
        self.hidesUsageChunk = hidesUsageChunk
    }

    public mutating func feed(_ chunk: UnsafeRawBufferPointer) -> Forward {
        let hides = hidesUsageChunk
        let heldBefore = splitter.isHolding
        var kept: [UInt8] = []
        var dropped = false
        splitter.feed(chunk) { event in
            let usageOnly = reading.inspect(event)
            guard hides else { return }
            if usageOnly { dropped = true } else { kept.append(contentsOf: event) }
        }
        guard hides else { return .all }
        if !heldBefore && !dropped && !splitter.isHolding { return .all }
        return .bytes(kept)
    }

    /// At the end of the stream: an event left without its closing blank line is read, and returned to
    /// forward if it was held back.
    public mutating func finish() -> [UInt8] {
        let hides = hidesUsageChunk
        var held: [UInt8] = []
        splitter.finish { event in
            if !reading.inspect(event) && hides { held = Array(event) }
        }
        return held
    }

    /// What the events read so far said (kept apart from the splitter that hands them over).
    private struct Reading: Sendable {
        var usage: Usage?
        var generated = GeneratedOutput()
        var sawDone = false

        /// Reads one complete event; returns whether it is the usage-only chunk. Every event is parsed (not
        /// searched for byte patterns): upstreams differ in spacing and in which delta members carry text.
        mutating func inspect(_ event: UnsafeRawBufferPointer) -> Bool {
            guard let data = SSEFormat.data(of: event) else { return false }
            if SSEFormat.isDone(data) {
                sawDone = true
                return false
            }
            var scanner = JSONScanner(data)
            var foundUsage: Usage?
            var choicesEmpty = false
            var text = GeneratedText()
            // Text read before a malformed part still counts: it was relayed.
            defer { text.add(to: &generated) }
            do {
                try scanner.forEachMember { (scanner, key) throws(JSONScanner.Failure) in
                    switch key {
                    case "usage" where try scanner.peekKind() == .object:
                        foundUsage = try OpenAIUsage.readUsage(&scanner)
                    case "choices" where try scanner.peekKind() == .array:
                        var choices = 0
                        try scanner.forEachElement { (scanner) throws(JSONScanner.Failure) in
                            choices += 1
                            try Self.measureChoice(&scanner, into: &text)
                        }
                        choicesEmpty = choices == 0
                    default:
                        try scanner.skipValue()
                    }
                }
            } catch {
                return false
            }
            guard let foundUsage else { return false }
            usage = foundUsage
            return choicesEmpty
        }

        /// One element of `choices`: the text its `delta` carries.
        static func measureChoice(_ scanner: inout JSONScanner, into text: inout GeneratedText) throws(JSONScanner.Failure) {
            guard try scanner.peekKind() == .object else { try scanner.skipValue(); return }
            try scanner.forEachMember { (scanner, key) throws(JSONScanner.Failure) in
                guard key == "delta", try scanner.peekKind() == .object else { try scanner.skipValue(); return }
                try scanner.forEachMember { (scanner, key) throws(JSONScanner.Failure) in
                    switch key {
                    // `reasoning_content` (DeepSeek, vLLM), `reasoning` (OpenRouter, Ollama).
                    case "content", "reasoning_content", "reasoning", "refusal":
                        try text.measureIfString(&scanner)
                    case "tool_calls" where try scanner.peekKind() == .array:
                        try scanner.forEachElement { (scanner) throws(JSONScanner.Failure) in
                            guard try scanner.peekKind() == .object else { try scanner.skipValue(); return }
                            try scanner.forEachMember { (scanner, key) throws(JSONScanner.Failure) in
                                if key == "function" { try measureFunction(&scanner, into: &text) } else { try scanner.skipValue() }
                            }
                        }
                    case "function_call":
                        try measureFunction(&scanner, into: &text)
                    default:
                        try scanner.skipValue()
                    }
                }
            }
        }

        /// A tool call's `function`: its name and its arguments are both generated.
        static func measureFunction(_ scanner: inout JSONScanner, into text: inout GeneratedText) throws(JSONScanner.Failure) {
            guard try scanner.peekKind() == .object else { try scanner.skipValue(); return }
            try scanner.forEachMember { (scanner, key) throws(JSONScanner.Failure) in
                if key == "name" || key == "arguments" { try text.measureIfString(&scanner) } else { try scanner.skipValue() }
            }
        }
    }

    /// The range of the event's `data:` value (single-line data, as the providers send).
    static func dataPayload(_ event: UnsafeRawBufferPointer) -> Range<Int>? {
        var lineStart = 0
        while lineStart < event.count {
            var lineEnd = lineStart
            while lineEnd < event.count, event[lineEnd] != 0x0A, event[lineEnd] != 0x0D { lineEnd += 1 }
            let line = UnsafeRawBufferPointer(rebasing: event[lineStart..<lineEnd])
            if line.count >= 5, line.starts(with: "data:".utf8) {
                var valueStart = lineStart + 5
                if valueStart < lineEnd, event[valueStart] == 0x20 { valueStart += 1 }
                return valueStart..<lineEnd
            }
            lineStart = lineEnd + 1
        }
        return nil
    }
}
