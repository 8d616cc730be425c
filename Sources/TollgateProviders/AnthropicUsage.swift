import TollgateCore

/// Reads the `usage` object of an Anthropic Messages response or stream event. Anthropic's `input_tokens`
/// excludes both cache reads and cache writes, so its fields map one to one onto `Usage`; extended-thinking
/// tokens are inside `output_tokens`.
public enum AnthropicUsage {
    /// The members of one `usage` object, each nil when absent: a stream reports the input side in
    /// `message_start` and the cumulative output (sometimes the input again) in `message_delta`.
    struct Counts: Equatable, Sendable {
        var input: Int?
        var cacheRead: Int?
        var cacheWrite: Int?
        /// `cache_creation.ephemeral_1h_input_tokens`: the part of `cacheWrite` written for an hour.
        var cacheWrite1h: Int?
        var output: Int?

        /// Later counts replace earlier ones member by member (Anthropic's counts are cumulative).
        mutating func merge(_ later: Counts) {
            input = later.input ?? input
            cacheRead = later.cacheRead ?? cacheRead
            cacheWrite = later.cacheWrite ?? cacheWrite
            cacheWrite1h = later.cacheWrite1h ?? cacheWrite1h
            output = later.output ?? output
        }

        var usage: Usage {
            Usage(inputTokens: max(input ?? 0, 0), cachedInputTokens: max(cacheRead ?? 0, 0),
                  cacheWriteTokens: max(cacheWrite ?? 0, 0), cacheWrite1hTokens: max(cacheWrite1h ?? 0, 0),
                  outputTokens: max(output ?? 0, 0))
        }
    }

    /// The top-level `usage` of a `message` body; nil when absent or null.
    public static func scan(responseBody bytes: UnsafeRawBufferPointer) -> Usage? {
        var scanner = JSONScanner(bytes)
        var counts: Counts?
        do {
            try scanner.forEachMember { (scanner, key) throws(JSONScanner.Failure) in
                if key == "usage", try scanner.peekKind() == .object {
                    counts = try readCounts(&scanner)
                } else {
                    try scanner.skipValue()
                }
            }
        } catch {
            return counts?.usage
        }
        return counts?.usage
    }

    /// Reads a usage object at the scanner's position.
    static func readCounts(_ scanner: inout JSONScanner) throws(JSONScanner.Failure) -> Counts {
        var counts = Counts()
        try scanner.forEachMember { (scanner, key) throws(JSONScanner.Failure) in
            switch key {
            case "input_tokens": counts.input = try count(&scanner)
            case "cache_read_input_tokens": counts.cacheRead = try count(&scanner)
            case "cache_creation_input_tokens": counts.cacheWrite = try count(&scanner)
            case "output_tokens": counts.output = try count(&scanner)
            case "cache_creation" where try scanner.peekKind() == .object:
                try scanner.forEachMember { (scanner, key) throws(JSONScanner.Failure) in
                    if key == "ephemeral_1h_input_tokens" { counts.cacheWrite1h = try count(&scanner) } else { try scanner.skipValue() }
                }
            default: try scanner.skipValue()
            }
        }
        return counts
    }

    /// A token count, or nil when the member is null or not a number.
    private static func count(_ scanner: inout JSONScanner) throws(JSONScanner.Failure) -> Int? {
        guard try scanner.peekKind() == .number else { try scanner.skipValue(); return nil }
        return try scanner.readInteger()
    }
}
