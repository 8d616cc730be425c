import TollgateCore

/// What the gateway needs to know of an Anthropic Messages request body, read in one validating pass (the
/// body passes through unchanged to Anthropic models, but for its model name).
public struct AnthropicRequestFields: Sendable, Equatable {
    public var model: String?
    /// Byte range of the model string's contents, for an in-place rewrite.
    public var modelRange: Range<Int>?
    public var stream = false
    public var maxTokens: Int?
    /// Tool definitions offered.
    public var toolsOffered = 0
    public var hasTools: Bool { toolsOffered > 0 }
    public var hasToolResults = false
    /// Elements of `messages`.
    public var messageCount = 0
    /// The system prompt's and an end user's fingerprint (`UsageFacts.fingerprint`).
    public var fingerprint: UInt64 = 0
    /// The session part of `metadata.user_id` (Claude Code's), as the ledger keeps it.
    public var sessionID: String?
    /// The client the system prompt's opening names (`ClientKind.systemPromptSignature`).
    public var systemPromptClient: ClientKind?
    /// Bytes of the prompt (`messages`, `system`, `tools`).
    public var promptBytes = 0
    /// Content blocks that are not text, tool use or tool results (images, documents).
    public var mediaParts = 0

    public init() {}

    /// A request is agentic when it carries tool definitions or tool results.
    public var agentic: Bool { hasTools || hasToolResults }

    public static func scan(_ bytes: UnsafeRawBufferPointer) throws(JSONScanner.Failure) -> AnthropicRequestFields {
        var fields = AnthropicRequestFields()
        var scanner = JSONScanner(bytes)
        guard try scanner.peekKind() == .object else { throw .malformed(offset: scanner.offset) }
        try scanner.forEachMember { (scanner, key) throws(JSONScanner.Failure) in
            switch key {
            case "model":
                (fields.model, fields.modelRange) = try scanner.readModel(in: bytes)
            case "stream":
                fields.stream = try scanner.readFlag(param: "stream")
            case "max_tokens":
                guard try scanner.peekKind() == .number, let value = try scanner.readInteger(), value >= 0 else {
                    throw .wrongType(param: "max_tokens", expected: "non-negative integer")
                }
                fields.maxTokens = value
            case "tools":
                if try scanner.peekKind() == .array {
                    let start = scanner.offset
                    fields.toolsOffered = try scanner.countElements()
                    fields.promptBytes += scanner.offset - start
                } else {
                    try scanner.skipValue()
                }
            case "system":
                let start = scanner.offset
                var opening: Range<Int>?
                switch try scanner.peekKind() {
                case .string:
                    opening = try scanner.stringRange()
                case .array:
                    // Blocks of text: the first one's opening can name the client.
                    try scanner.forEachElement { (scanner) throws(JSONScanner.Failure) in
                        guard opening == nil, try scanner.peekKind() == .object else { try scanner.skipValue(); return }
                        try scanner.forEachMember { (scanner, key) throws(JSONScanner.Failure) in
                            if key == "text", opening == nil, try scanner.peekKind() == .string {
                                opening = try scanner.stringRange()
                            } else {
                                try scanner.skipValue()
                            }
                        }
                    }
                default:
                    try scanner.skipValue()
                }
                var fingerprint = Fingerprint()
                fingerprint.add(UnsafeRawBufferPointer(rebasing: bytes[start..<scanner.offset]))
                fields.fingerprint ^= fingerprint.value
                if let opening { fields.systemPromptClient = ClientKind.systemPromptSignature(UnsafeRawBufferPointer(rebasing: bytes[opening])) }
                fields.promptBytes += scanner.offset - start
            case "metadata":
                guard try scanner.peekKind() == .object else { try scanner.skipValue(); return }
                try scanner.forEachMember { (scanner, key) throws(JSONScanner.Failure) in
                    guard key == "user_id", try scanner.peekKind() == .string else { try scanner.skipValue(); return }
                    let range = try scanner.stringRange()
                    if let session = Self.sessionPart(bytes, range) {
                        fields.sessionID = UsageFacts.sessionID(try JSONScanner.decodeString(bytes, session))
                    } else {
                        var fingerprint = Fingerprint()
                        fingerprint.add(UnsafeRawBufferPointer(rebasing: bytes[range]))
                        fields.fingerprint ^= fingerprint.value &* 31
                    }
                }
            case "messages":
                guard try scanner.peekKind() == .array else { throw .wrongType(param: "messages", expected: "array") }
                let start = scanner.offset
                try scanner.forEachElement { (scanner) throws(JSONScanner.Failure) in
                    fields.messageCount += 1
                    guard try scanner.peekKind() == .object else { try scanner.skipValue(); return }
                    try scanner.forEachMember { (scanner, key) throws(JSONScanner.Failure) in
                        guard key == "content", try scanner.peekKind() == .array else { try scanner.skipValue(); return }
                        try scanner.forEachElement { (scanner) throws(JSONScanner.Failure) in
                            guard try scanner.peekKind() == .object else { try scanner.skipValue(); return }
                            try scanner.forEachMember { (scanner, key) throws(JSONScanner.Failure) in
                                guard key == "type", try scanner.peekKind() == .string else { try scanner.skipValue(); return }
                                switch try scanner.readString() {
                                case "tool_result": fields.hasToolResults = true
                                case "text", "tool_use", "thinking", "redacted_thinking": break
                                default: fields.mediaParts += 1
                                }
                            }
                        }
                    }
                }
                fields.promptBytes += scanner.offset - start
            default:
                try scanner.skipValue()
            }
        }
        try scanner.expectEnd()
        return fields
    }

    /// The part of a `metadata.user_id` after `_session_` (Claude Code's `user_<hash>_account_<uuid>_session_<uuid>`),
    /// found in place: the id is decoded only when it names a session.
    static func sessionPart(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> Range<Int>? {
        let marker = sessionMarker
        guard range.count > marker.count else { return nil }
        var start = range.lowerBound
        while start + marker.count < range.upperBound {
            if bytes[start] == marker[0], UnsafeRawBufferPointer(rebasing: bytes[start..<(start + marker.count)]).elementsEqual(marker) {
                return (start + marker.count)..<range.upperBound
            }
            start += 1
        }
        return nil
    }

    private static let sessionMarker = Array("_session_".utf8)

    /// The edit that names the upstream's model; empty when the name is the same.
    public func upstreamEdits(upstreamModel: String) -> [BodyEdit] {
        guard let modelRange, model != upstreamModel else { return [] }
        return [BodyEdit(range: modelRange, replacement: JSONString.escapedContents(upstreamModel))]
    }
}
