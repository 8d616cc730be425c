/// Token counts estimated from text, for when no provider count exists: a prompt's bound before it is sent, and
/// what a stream cut short had generated. No tokenizer vocabulary can ship or be fetched, so the estimate is by
/// size, calibrated on the GPT and Claude families: about four bytes of English or code per token, and about
/// one token per character of other scripts (CJK, emoji, accented letters), which tokenizers split finely.
public enum TokenEstimate {
    /// Prompt bytes as the admission bound counts them.
    public static func promptTokens(bytes: Int) -> Int { (bytes + 3) / 4 }

    /// Generated text of `asciiBytes` ASCII bytes and `otherCharacters` other Unicode scalars.
    public static func textTokens(asciiBytes: Int, otherCharacters: Int) -> Int {
        (asciiBytes + 3) / 4 + otherCharacters
    }
}

/// What a stream has relayed of generated output (text, reasoning, tool-call arguments), counted event by
/// event: an event that carried any text is at least one token, and a large one counts by its size.
public struct GeneratedOutput: Hashable, Sendable {
    /// Events that carried generated text.
    public private(set) var events = 0
    /// The estimated tokens of everything counted.
    public private(set) var tokens = 0

    public init() {}

    /// Counts one event's text.
    public mutating func add(asciiBytes: Int, otherCharacters: Int) {
        guard asciiBytes > 0 || otherCharacters > 0 else { return }
        events += 1
        tokens += max(1, TokenEstimate.textTokens(asciiBytes: asciiBytes, otherCharacters: otherCharacters))
    }
}
