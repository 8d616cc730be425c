import TollgateCore

/// Reads the `usage` object of an OpenAI-format response or stream chunk.
public enum OpenAIUsage {
    /// The top-level `usage` of a response body; nil when absent or null.
    public static func scan(responseBody bytes: UnsafeRawBufferPointer) -> Usage? {
        var scanner = JSONScanner(bytes)
        var usage: Usage?
        do {
            try scanner.forEachMember { (scanner, key) throws(JSONScanner.Failure) in
                if key == "usage", try scanner.peekKind() == .object {
                    usage = try readUsage(&scanner)
                } else {
                    try scanner.skipValue()
                }
            }
        } catch {
            return usage
        }
        return usage
    }

    /// Reads a usage object at the scanner's position (chat: prompt/completion tokens with their
    /// details; embeddings: prompt tokens only).
    static func readUsage(_ scanner: inout JSONScanner) throws(JSONScanner.Failure) -> Usage {
        var prompt = 0, completion = 0, cached = 0, reasoning = 0
        try scanner.forEachMember { (scanner, key) throws(JSONScanner.Failure) in
            switch key {
            case "prompt_tokens": prompt = try integer(&scanner)
            case "completion_tokens": completion = try integer(&scanner)
            case "prompt_tokens_details":
                try details(&scanner) { (scanner, key) throws(JSONScanner.Failure) in
                    if key == "cached_tokens" { cached = try integer(&scanner) } else { try scanner.skipValue() }
                }
            case "completion_tokens_details":
                try details(&scanner) { (scanner, key) throws(JSONScanner.Failure) in
                    if key == "reasoning_tokens" { reasoning = try integer(&scanner) } else { try scanner.skipValue() }
                }
            default: try scanner.skipValue()
            }
        }
        return .openAI(promptTokens: prompt, cachedTokens: cached, completionTokens: completion, reasoningTokens: reasoning)
    }

    static func integer(_ scanner: inout JSONScanner) throws(JSONScanner.Failure) -> Int {
        guard try scanner.peekKind() == .number else { try scanner.skipValue(); return 0 }
        return try scanner.readInteger() ?? 0
    }

    static func details(_ scanner: inout JSONScanner, _ body: (inout JSONScanner, String) throws(JSONScanner.Failure) -> Void) throws(JSONScanner.Failure) {
        guard try scanner.peekKind() == .object else { try scanner.skipValue(); return }
        try scanner.forEachMember(body)
    }
}
