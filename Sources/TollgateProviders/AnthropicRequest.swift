/// What the gateway needs to know of an Anthropic Messages request body, read in one validating pass (the
/// body passes through unchanged to Anthropic models, but for its model name).
public struct AnthropicRequestFields: Sendable, Equatable {
    public var model: String?
    /// Byte range of the model string's contents, for an in-place rewrite.
    public var modelRange: Range<Int>?
    public var stream = false
    public var maxTokens: Int?
    public var hasTools = false
    public var hasToolResults = false
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
                    let range = try scanner.skipValue()
                    fields.hasTools = OpenAIRequestFields.arrayIsNonEmpty(bytes, range)
                    fields.promptBytes += range.count
                } else {
                    try scanner.skipValue()
                }
            case "system":
                fields.promptBytes += try scanner.skipValue().count
            case "messages":
                guard try scanner.peekKind() == .array else { throw .wrongType(param: "messages", expected: "array") }
                let start = scanner.offset
                try scanner.forEachElement { (scanner) throws(JSONScanner.Failure) in
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

    /// The edit that names the upstream's model; empty when the name is the same.
    public func upstreamEdits(upstreamModel: String) -> [BodyEdit] {
        guard let modelRange, model != upstreamModel else { return [] }
        return [BodyEdit(range: modelRange, replacement: JSONString.escapedContents(upstreamModel))]
    }
}
