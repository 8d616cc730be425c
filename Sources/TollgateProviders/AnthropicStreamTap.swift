import TollgateCore

/// Watches an Anthropic Messages event stream as it passes, to find the usage it reports and to count what
/// was generated if the stream is cut short. Every byte passes through unchanged: an Anthropic stream has no
/// usage-only event to hide.
///
/// `message_start` carries the input side (plain input, cache reads, cache writes) and a first output
/// count; `message_delta` carries the cumulative output count (and, from newer API versions, the input side
/// again). `ping`, `content_block_start`/`stop`, `message_stop` and `error` carry no usage.
public struct AnthropicStreamTap: Sendable {
    private var splitter = SSEEventSplitter()
    private var reading = Reading()

    public init() {}

    /// The usage reported so far; nil before `message_start`.
    public var usage: Usage? { reading.counts?.usage }
    /// What the `content_block_delta` events carried (text, tool input, thinking), for a stream cut short.
    public var generated: GeneratedOutput { reading.generated }
    /// A `message_delta` arrived, so the output count is final rather than the first estimate.
    public var sawFinalUsage: Bool { reading.sawFinalUsage }
    public var sawMessageStop: Bool { reading.sawMessageStop }
    public var sawError: Bool { reading.sawError }

    public mutating func feed(_ chunk: UnsafeRawBufferPointer) {
        splitter.feed(chunk) { reading.inspect($0) }
    }

    /// At the end of the stream: reads an event left without its closing blank line.
    public mutating func finish() {
        splitter.finish { reading.inspect($0) }
    }

    /// What the events read so far said (kept apart from the splitter that hands them over).
    private struct Reading: Sendable {
        var counts: AnthropicUsage.Counts?
        var generated = GeneratedOutput()
        var sawFinalUsage = false
        var sawMessageStop = false
        var sawError = false

        mutating func inspect(_ event: UnsafeRawBufferPointer) {
            guard let data = SSEFormat.data(of: event) else { return }
            var scanner = JSONScanner(data)
            var type: String?
            var found: AnthropicUsage.Counts?
            var text = GeneratedText()
            do {
                try scanner.forEachMember { (scanner, key) throws(JSONScanner.Failure) in
                    switch key {
                    case "type" where try scanner.peekKind() == .string:
                        type = try scanner.readString()
                    case "usage" where try scanner.peekKind() == .object:
                        found = try AnthropicUsage.readCounts(&scanner)
                    case "delta" where try scanner.peekKind() == .object:
                        // A content block's text, thinking or tool input (`signature` is not output text).
                        try scanner.forEachMember { (scanner, key) throws(JSONScanner.Failure) in
                            switch key {
                            case "text", "thinking", "partial_json": try text.measureIfString(&scanner)
                            default: try scanner.skipValue()
                            }
                        }
                    case "message" where try scanner.peekKind() == .object:
                        try scanner.forEachMember { (scanner, key) throws(JSONScanner.Failure) in
                            if key == "usage", try scanner.peekKind() == .object {
                                found = try AnthropicUsage.readCounts(&scanner)
                            } else {
                                try scanner.skipValue()
                            }
                        }
                    default:
                        try scanner.skipValue()
                    }
                }
            } catch {
                // What a malformed event carried before the fault was relayed all the same.
                if type == "content_block_delta" || type == nil { text.add(to: &generated) }
                return
            }
            switch type {
            case "message_start":
                if let found { counts = found }
            case "message_delta":
                if let found {
                    var merged = counts ?? AnthropicUsage.Counts()
                    merged.merge(found)
                    counts = merged
                    sawFinalUsage = true
                }
            case "content_block_delta": text.add(to: &generated)
            case "message_stop": sawMessageStop = true
            case "error": sawError = true
            default: break
            }
        }
    }
}
