/// The text a router reads from a request: the system and user messages' text, joined by newlines (text
/// parts only; assistant turns and tool traffic are the model's own words, not the task). Bounded: at most
/// `limit` bytes are collected.
public enum PromptText {
    public static func openAI(_ bytes: UnsafeRawBufferPointer, limit: Int = 32_768) -> String {
        var collector = Collector(limit: limit)
        var scanner = JSONScanner(bytes)
        try? scanner.forEachMember { (scanner, key) throws(JSONScanner.Failure) in
            guard key == "messages", try scanner.peekKind() == .array else { try scanner.skipValue(); return }
            try scanner.forEachElement { (scanner) throws(JSONScanner.Failure) in
                try collector.message(&scanner, roles: ["system", "developer", "user"])
            }
        }
        return collector.text
    }

    public static func anthropic(_ bytes: UnsafeRawBufferPointer, limit: Int = 32_768) -> String {
        var collector = Collector(limit: limit)
        var scanner = JSONScanner(bytes)
        try? scanner.forEachMember { (scanner, key) throws(JSONScanner.Failure) in
            switch key {
            case "system": try collector.content(&scanner)
            case "messages" where try scanner.peekKind() == .array:
                try scanner.forEachElement { (scanner) throws(JSONScanner.Failure) in
                    try collector.message(&scanner, roles: ["user"])
                }
            default: try scanner.skipValue()
            }
        }
        return collector.text
    }

    struct Collector {
        let limit: Int
        var text = ""

        mutating func append(_ piece: String) {
            guard text.utf8.count < limit else { return }
            if !text.isEmpty { text += "\n" }
            text += piece
        }

        /// A message object: its content is kept when its role is one of `roles`.
        mutating func message(_ scanner: inout JSONScanner, roles: Set<String>) throws(JSONScanner.Failure) {
            guard try scanner.peekKind() == .object else { try scanner.skipValue(); return }
            var role: String?
            var pieces = Collector(limit: limit)
            try scanner.forEachMember { (scanner, key) throws(JSONScanner.Failure) in
                switch key {
                case "role" where try scanner.peekKind() == .string: role = try scanner.readString()
                case "content": try pieces.content(&scanner)
                default: try scanner.skipValue()
                }
            }
            if let role, roles.contains(role), !pieces.text.isEmpty { append(pieces.text) }
        }

        /// A content value: a string, or a list of parts whose `text` members are kept.
        mutating func content(_ scanner: inout JSONScanner) throws(JSONScanner.Failure) {
            switch try scanner.peekKind() {
            case .string:
                append(try scanner.readString())
            case .array:
                try scanner.forEachElement { (scanner) throws(JSONScanner.Failure) in
                    guard try scanner.peekKind() == .object else { try scanner.skipValue(); return }
                    try scanner.forEachMember { (scanner, key) throws(JSONScanner.Failure) in
                        if key == "text", try scanner.peekKind() == .string { append(try scanner.readString()) } else { try scanner.skipValue() }
                    }
                }
            default:
                try scanner.skipValue()
            }
        }
    }
}
