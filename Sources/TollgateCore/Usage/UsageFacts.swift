/// What the ledger keeps of a request to tell sessions, clients and agentic use apart: read on the request
/// path from the headers and from the body's one scan, never from a second pass.
public struct UsageFacts: Hashable, Sendable {
    public var client: ClientKind
    /// The session the client named: `x-tollgate-session`, `x-claude-code-session-id`, the `_session_` part of
    /// Anthropic's `metadata.user_id` (Claude Code's), or OpenAI's `metadata.session_id`. `nil` when it named
    /// none: the session is then inferred from the key, the fingerprint and a 30-minute gap (`SessionTracker`).
    public var sessionID: String?
    /// A hash of the system prompt and of the end user the body names (OpenAI's `user`, an Anthropic
    /// `metadata.user_id` that names no session): requests of one key with the same fingerprint and no gap of
    /// more than 30 minutes are one inferred session.
    public var fingerprint: UInt64
    /// How many tool (or legacy function) definitions the request offered.
    public var toolsOffered: Int
    /// The request sends tool results back: the model is in a tool loop.
    public var toolResults: Bool
    /// How many messages the request carried.
    public var messages: Int

    public init(client: ClientKind = .other, sessionID: String? = nil, fingerprint: UInt64 = 0, toolsOffered: Int = 0,
                toolResults: Bool = false, messages: Int = 0) {
        self.client = client; self.sessionID = sessionID; self.fingerprint = fingerprint
        self.toolsOffered = toolsOffered; self.toolResults = toolResults; self.messages = messages
    }

    /// The longest session id kept: ids are the client's text, and the ledger must not grow with them.
    public static let maxSessionIDBytes = 128

    /// A session id as the ledger keeps it: trimmed, empty as none, at most `maxSessionIDBytes` bytes (cut on a
    /// character boundary).
    public static func sessionID(_ text: some StringProtocol) -> String? {
        let trimmed = text.drop(while: { $0 == " " })
        guard !trimmed.isEmpty else { return nil }
        guard trimmed.utf8.count > maxSessionIDBytes else { return String(trimmed) }
        var kept = ""
        for character in trimmed {
            guard kept.utf8.count + character.utf8.count <= maxSessionIDBytes else { break }
            kept.append(character)
        }
        return kept
    }
}

/// A 64-bit hash of prompt bytes for telling conversations apart (not a security hash). System prompts of
/// agents run to 20–40 KB and a request's whole CPU budget is ~45 µs: hashing all of it (≈ 0.5 byte per cycle
/// at best) would cost microseconds per request, so only the first and the last KiB are hashed, with the
/// length. Two prompts differing only in their middle, at equal length, share a fingerprint; the key and the
/// 30-minute gap still part their sessions.
public struct Fingerprint: Sendable {
    public private(set) var value: UInt64 = 0
    static let window = 1024

    public init() {}

    public mutating func add(_ bytes: UnsafeRawBufferPointer) {
        var state = (value ^ 0x9E37_79B9_7F4A_7C15) &+ UInt64(bytes.count) &* 0xC2B2_AE3D_27D4_EB4F
        if bytes.count <= 2 * Self.window {
            Self.mix(&state, bytes, 0..<bytes.count)
        } else {
            Self.mix(&state, bytes, 0..<Self.window)
            Self.mix(&state, bytes, (bytes.count - Self.window)..<bytes.count)
        }
        value = Self.finish(state)
    }

    private static func mix(_ state: inout UInt64, _ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) {
        var index = range.lowerBound
        while index + 8 <= range.upperBound {
            let word = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self))
            state = ((state ^ (word &* 0x87C3_7B91_1142_53D5)) << 27 | (state ^ (word &* 0x87C3_7B91_1142_53D5)) >> 37)
                &* 0x4CF5_AD43_2745_937F
            index += 8
        }
        var tail: UInt64 = 0
        var shift: UInt64 = 0
        while index < range.upperBound {
            tail |= UInt64(bytes[index]) << shift
            shift += 8
            index += 1
        }
        state = (state ^ tail ^ shift) &* 0x9FB2_1C65_1E98_DF25
    }

    private static func finish(_ state: UInt64) -> UInt64 {
        var x = state
        x ^= x >> 33; x = x &* 0xFF51_AFD7_ED55_8CCD
        x ^= x >> 33; x = x &* 0xC4CE_B9FE_1A85_EC53
        x ^= x >> 33
        return x
    }
}
