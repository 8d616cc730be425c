import TollgateCore

/// What the gateway needs to know of an OpenAI-format request body, read in one validating pass.
public struct OpenAIRequestFields: Sendable, Equatable {
    public var model: String?
    /// Byte range of the model string's contents (between the quotes), for an in-place rewrite.
    public var modelRange: Range<Int>?
    public var stream = false
    /// `max_completion_tokens`, else `max_tokens`.
    public var maxOutputTokens: Int?
    /// `stream_options.include_usage` as the client sent it.
    public var clientIncludeUsage = false
    /// Byte range of the whole `stream_options` value, if present.
    public var streamOptionsRange: Range<Int>?
    /// Byte range of the `stream_options.include_usage` value, if present.
    var includeUsageRange: Range<Int>?
    /// `stream_options` holds members besides `include_usage` (e.g. `include_obfuscation`): they must be kept.
    var streamOptionsHasOtherMembers = false
    /// Offset just after the top-level `{`.
    public var bodyStart = 0
    /// Tool (and legacy function) definitions offered.
    public var toolsOffered = 0
    public var hasTools: Bool { toolsOffered > 0 }
    public var hasToolResults = false
    /// Elements of `messages`.
    public var messageCount = 0
    /// The system (or developer) messages' and the `user` member's fingerprint (`UsageFacts.fingerprint`).
    public var fingerprint: UInt64 = 0
    /// `metadata.session_id`, as the ledger keeps it.
    public var sessionID: String?
    /// The client the first system prompt's opening names (`ClientKind.systemPromptSignature`).
    public var systemPromptClient: ClientKind?
    /// Bytes of the prompt (`messages` or `input` value): the base of the prompt-size bound.
    public var promptBytes = 0
    /// Content parts that are not text (images, audio, files): their tokens are not bounded by their
    /// bytes (a short URL can stand for a large image).
    public var mediaParts = 0
    /// `response_format.type` is `json_object` or `json_schema`: the request needs a model with JSON mode.
    public var jsonResponse = false

    public init() {}

    /// A request is agentic when it carries tool definitions or tool results.
    public var agentic: Bool { hasTools || hasToolResults }

    public static func scan(_ bytes: UnsafeRawBufferPointer) throws(JSONScanner.Failure) -> OpenAIRequestFields {
        var fields = OpenAIRequestFields()
        var scanner = JSONScanner(bytes)
        guard try scanner.peekKind() == .object else { throw .malformed(offset: scanner.offset) }
        fields.bodyStart = scanner.offset + 1
        try scanner.forEachMember { (scanner, key) throws(JSONScanner.Failure) in
            switch key {
            case "model":
                (fields.model, fields.modelRange) = try scanner.readModel(in: bytes)
            case "stream":
                fields.stream = try scanner.readFlag(param: "stream")
            case "max_tokens", "max_completion_tokens":
                switch try scanner.peekKind() {
                case .number:
                    guard let value = try scanner.readInteger(), value >= 0 else {
                        throw .wrongType(param: key, expected: "non-negative integer")
                    }
                    if key == "max_completion_tokens" || fields.maxOutputTokens == nil { fields.maxOutputTokens = value }
                case .null: _ = try scanner.readNull()
                default: throw .wrongType(param: key, expected: "integer")
                }
            case "stream_options":
                let kind = try scanner.peekKind()
                let start = scanner.offset
                switch kind {
                case .object:
                    try scanner.forEachMember { (scanner, key) throws(JSONScanner.Failure) in
                        let range = try scanner.skipValue()
                        if key == "include_usage" {
                            fields.includeUsageRange = range
                            fields.clientIncludeUsage = bytes[range].elementsEqual("true".utf8)
                        } else {
                            fields.streamOptionsHasOtherMembers = true
                        }
                    }
                    fields.streamOptionsRange = start..<scanner.offset
                case .null:
                    _ = try scanner.readNull()
                    fields.streamOptionsRange = start..<scanner.offset
                default: throw .wrongType(param: "stream_options", expected: "object")
                }
            case "tools", "functions":
                if try scanner.peekKind() == .array {
                    fields.toolsOffered += try scanner.countElements()
                } else {
                    try scanner.skipValue()
                }
            case "messages":
                guard try scanner.peekKind() == .array else { throw .wrongType(param: "messages", expected: "array") }
                let start = scanner.offset
                var fingerprint = Fingerprint()
                try scanner.forEachElement { (scanner) throws(JSONScanner.Failure) in
                    fields.messageCount += 1
                    guard try scanner.peekKind() == .object else { try scanner.skipValue(); return }
                    var system = false
                    var content: Range<Int>?
                    var contentIsText = false
                    try scanner.forEachMember { (scanner, key) throws(JSONScanner.Failure) in
                        if key == "role", try scanner.peekKind() == .string {
                            let role = try scanner.readString()
                            if role == "tool" || role == "function" { fields.hasToolResults = true }
                            system = role == "system" || role == "developer"
                        } else if key == "content" {
                            let contentStart = scanner.offset
                            switch try scanner.peekKind() {
                            case .array:
                                fields.mediaParts += try Self.countMediaParts(&scanner)
                                content = contentStart..<scanner.offset
                            case .string:
                                content = try scanner.stringRange()
                                contentIsText = true
                            default:
                                content = try scanner.skipValue()
                            }
                        } else {
                            try scanner.skipValue()
                        }
                    }
                    // Role and content may come in either order: the system prompt is known once the message is.
                    if system, let content {
                        let text = UnsafeRawBufferPointer(rebasing: bytes[content])
                        fingerprint.add(text)
                        if contentIsText, fields.systemPromptClient == nil {
                            fields.systemPromptClient = ClientKind.systemPromptSignature(text)
                        }
                    }
                }
                fields.fingerprint ^= fingerprint.value
                fields.promptBytes += scanner.offset - start
            case "user":
                if try scanner.peekKind() == .string {
                    var fingerprint = Fingerprint()
                    fingerprint.add(UnsafeRawBufferPointer(rebasing: bytes[try scanner.stringRange()]))
                    fields.fingerprint ^= fingerprint.value &* 31
                } else {
                    try scanner.skipValue()
                }
            case "metadata":
                guard try scanner.peekKind() == .object else { try scanner.skipValue(); return }
                try scanner.forEachMember { (scanner, key) throws(JSONScanner.Failure) in
                    if key == "session_id", try scanner.peekKind() == .string {
                        fields.sessionID = UsageFacts.sessionID(try scanner.readString())
                    } else {
                        try scanner.skipValue()
                    }
                }
            case "input", "prompt":
                fields.promptBytes += try scanner.skipValue().count
            case "response_format":
                if try scanner.peekKind() == .object {
                    fields.jsonResponse = try Self.asksForJSON(&scanner, in: bytes)
                } else {
                    try scanner.skipValue()
                }
            default:
                try scanner.skipValue()
            }
        }
        try scanner.expectEnd()
        return fields
    }

    /// Whether a `response_format` object's `type` is `json_object` or `json_schema` (compared in place: no
    /// string is made of it).
    static func asksForJSON(_ scanner: inout JSONScanner, in bytes: UnsafeRawBufferPointer) throws(JSONScanner.Failure) -> Bool {
        var json = false
        try scanner.forEachMember { (scanner, key) throws(JSONScanner.Failure) in
            guard key == "type", try scanner.peekKind() == .string else { try scanner.skipValue(); return }
            let type = UnsafeRawBufferPointer(rebasing: bytes[try scanner.stringRange()])
            json = type.elementsEqual("json_object".utf8) || type.elementsEqual("json_schema".utf8)
        }
        return json
    }

    /// Counts the elements of a content array whose `type` is not `text`.
    static func countMediaParts(_ scanner: inout JSONScanner) throws(JSONScanner.Failure) -> Int {
        var count = 0
        try scanner.forEachElement { (scanner) throws(JSONScanner.Failure) in
            guard try scanner.peekKind() == .object else { try scanner.skipValue(); return }
            try scanner.forEachMember { (scanner, key) throws(JSONScanner.Failure) in
                if key == "type", try scanner.peekKind() == .string {
                    if try scanner.readString() != "text" { count += 1 }
                } else {
                    try scanner.skipValue()
                }
            }
        }
        return count
    }

    /// The edits that turn the client's body into the upstream's: the model name replaced, and usage
    /// asked for on streams (the client sees the usage chunk only if it asked for it). Empty when the body
    /// passes through unchanged.
    public func upstreamEdits(upstreamModel: String) -> [BodyEdit] {
        var edits: [BodyEdit] = []
        if stream && !clientIncludeUsage {
            let options = Array(#"{"include_usage":true}"#.utf8)
            if let range = includeUsageRange {
                edits.append(BodyEdit(range: range, replacement: Array("true".utf8)))
            } else if let range = streamOptionsRange, streamOptionsHasOtherMembers {
                let afterBrace = range.lowerBound + 1
                edits.append(BodyEdit(range: afterBrace..<afterBrace, replacement: Array(#""include_usage":true,"#.utf8)))
            } else if let range = streamOptionsRange {
                edits.append(BodyEdit(range: range, replacement: options))
            } else {
                edits.append(BodyEdit(range: bodyStart..<bodyStart, replacement: Array(#""stream_options":"#.utf8) + options + [UInt8(ascii: ",")]))
            }
        }
        if let modelRange, model != upstreamModel {
            edits.append(BodyEdit(range: modelRange, replacement: JSONString.escapedContents(upstreamModel)))
        }
        return edits.sorted { $0.range.lowerBound < $1.range.lowerBound }
    }
}

/// A splice of the body: `range` (in the original bytes) replaced by `replacement`.
public struct BodyEdit: Sendable, Equatable {
    public var range: Range<Int>
    public var replacement: [UInt8]
    public init(range: Range<Int>, replacement: [UInt8]) {
        self.range = range
        self.replacement = replacement
    }
}

public enum JSONString {
    /// The contents of a JSON string literal for `text` (without the quotes).
    public static func escapedContents(_ text: String) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out += [UInt8(ascii: "\\"), UInt8(ascii: "\"")]
            case UInt8(ascii: "\\"): out += [UInt8(ascii: "\\"), UInt8(ascii: "\\")]
            case 0x0A: out += Array("\\n".utf8)
            case 0x0D: out += Array("\\r".utf8)
            case 0x09: out += Array("\\t".utf8)
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                out += Array("\\u00".utf8) + [hex[Int(byte >> 4)], hex[Int(byte & 0xF)]]
            default: out.append(byte)
            }
        }
        return out
    }

    public static func quoted(_ text: String) -> String {
        "\"" + String(decoding: escapedContents(text), as: UTF8.self) + "\""
    }
}

extension JSONScanner {
    /// The `model` member of a request, in either format: its name and the byte range of its contents
    /// (for an in-place rewrite).
    mutating func readModel(in bytes: UnsafeRawBufferPointer) throws(Failure) -> (String, Range<Int>) {
        guard try peekKind() == .string else { throw .wrongType(param: "model", expected: "string") }
        let range = try stringRange()
        return (try JSONScanner.decodeString(bytes, range), range)
    }

    /// Consumes an array, counting its elements.
    mutating func countElements() throws(Failure) -> Int {
        var count = 0
        try forEachElement { (scanner) throws(Failure) in
            count += 1
            try scanner.skipValue()
        }
        return count
    }

    /// A boolean member that may be null (read as false).
    mutating func readFlag(param: String) throws(Failure) -> Bool {
        switch try peekKind() {
        case .bool: return try readBool()
        case .null: _ = try readNull(); return false
        default: throw .wrongType(param: param, expected: "boolean")
        }
    }

    static func decodeString(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) throws(Failure) -> String {
        let raw = UnsafeRawBufferPointer(rebasing: bytes[range])
        if !raw.contains(UInt8(ascii: "\\")) { return String(decoding: raw, as: UTF8.self) }
        return try unescape(raw, at: range.lowerBound)
    }
}
