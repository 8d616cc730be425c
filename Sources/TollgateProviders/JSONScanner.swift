/// A validating, allocation-light walk over JSON bytes: it checks the whole document is well formed
/// while handing back only the few members the gateway needs. Full decoding is for bodies that must be
/// rewritten; a pass-through body is only ever scanned.
public struct JSONScanner {
    public enum Failure: Error, Equatable, Sendable {
        case malformed(offset: Int)
        case tooDeep
        /// A member has the wrong JSON type (`param` names it, e.g. `stream`).
        case wrongType(param: String, expected: String)
    }

    let bytes: UnsafeRawBufferPointer
    var position: Int
    static let maxDepth = 128

    public init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
        self.position = 0
    }

    public var offset: Int { position }
    var atEnd: Bool { position >= bytes.count }

    @inline(__always) func peek() -> UInt8? { position < bytes.count ? bytes[position] : nil }

    public mutating func skipWhitespace() {
        while position < bytes.count {
            switch bytes[position] {
            case 0x20, 0x09, 0x0A, 0x0D: position += 1
            default: return
            }
        }
    }

    mutating func expect(_ byte: UInt8) throws(Failure) {
        skipWhitespace()
        guard peek() == byte else { throw .malformed(offset: position) }
        position += 1
    }

    /// After the whole document: only whitespace may remain.
    public mutating func expectEnd() throws(Failure) {
        skipWhitespace()
        guard atEnd else { throw .malformed(offset: position) }
    }

    /// The kind of the next value, without consuming it.
    public enum Kind: Equatable, Sendable { case object, array, string, number, bool, null }

    public mutating func peekKind() throws(Failure) -> Kind {
        skipWhitespace()
        guard let byte = peek() else { throw .malformed(offset: position) }
        switch byte {
        case UInt8(ascii: "{"): return .object
        case UInt8(ascii: "["): return .array
        case UInt8(ascii: "\""): return .string
        case UInt8(ascii: "t"), UInt8(ascii: "f"): return .bool
        case UInt8(ascii: "n"): return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number
        default: throw .malformed(offset: position)
        }
    }

    /// Walks an object's members, calling `body` with each key positioned before its value; `body` must
    /// consume the value (read it or `skipValue()`).
    public mutating func forEachMember(_ body: (inout JSONScanner, String) throws(Failure) -> Void) throws(Failure) {
        try expect(UInt8(ascii: "{"))
        skipWhitespace()
        if peek() == UInt8(ascii: "}") { position += 1; return }
        while true {
            skipWhitespace()
            let key = try readString()
            try expect(UInt8(ascii: ":"))
            try body(&self, key)
            skipWhitespace()
            switch peek() {
            case UInt8(ascii: ","): position += 1
            case UInt8(ascii: "}"): position += 1; return
            default: throw .malformed(offset: position)
            }
        }
    }

    /// Walks an array's elements; `body` must consume each.
    public mutating func forEachElement(_ body: (inout JSONScanner) throws(Failure) -> Void) throws(Failure) {
        try expect(UInt8(ascii: "["))
        skipWhitespace()
        if peek() == UInt8(ascii: "]") { position += 1; return }
        while true {
            try body(&self)
            skipWhitespace()
            switch peek() {
            case UInt8(ascii: ","): position += 1
            case UInt8(ascii: "]"): position += 1; return
            default: throw .malformed(offset: position)
            }
        }
    }

    /// Reads a string value, decoding escapes.
    public mutating func readString() throws(Failure) -> String {
        let range = try stringRange()
        let raw = UnsafeRawBufferPointer(rebasing: bytes[range])
        if !raw.contains(UInt8(ascii: "\\")) { return String(decoding: raw, as: UTF8.self) }
        return try Self.unescape(raw, at: range.lowerBound)
    }

    /// Consumes a string and returns the byte range of its contents (between the quotes, escapes undecoded).
    public mutating func stringRange() throws(Failure) -> Range<Int> {
        skipWhitespace()
        guard peek() == UInt8(ascii: "\"") else { throw .malformed(offset: position) }
        position += 1
        let start = position
        while position < bytes.count {
            let byte = bytes[position]
            if byte == UInt8(ascii: "\"") {
                position += 1
                return start..<(position - 1)
            }
            if byte == UInt8(ascii: "\\") {
                try skipEscape()
                continue
            }
            guard byte >= 0x20 else { throw .malformed(offset: position) }
            position += 1
        }
        throw .malformed(offset: position)
    }

    /// Consumes an escape (at its backslash) after checking it is one JSON allows, so that a skipped string
    /// is validated as strictly as a decoded one.
    mutating func skipEscape() throws(Failure) {
        position += 1
        guard let escaped = peek() else { throw .malformed(offset: position) }
        position += 1
        switch escaped {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
             UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
            return
        case UInt8(ascii: "u"):
            for _ in 0..<4 {
                guard let digit = peek(), digit.isHexDigit else { throw .malformed(offset: position) }
                position += 1
            }
        default:
            throw .malformed(offset: position - 1)
        }
    }

    public mutating func readBool() throws(Failure) -> Bool {
        skipWhitespace()
        if matchLiteral("true") { return true }
        if matchLiteral("false") { return false }
        throw .malformed(offset: position)
    }

    /// Reads a number that must be an integer (no fraction or exponent); nil when it is not.
    public mutating func readInteger() throws(Failure) -> Int? {
        let range = try numberRange()
        var value = 0
        var negative = false
        for index in range {
            let byte = bytes[index]
            if byte == UInt8(ascii: "-") { negative = true; continue }
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            let (m, o1) = value.multipliedReportingOverflow(by: 10)
            let (a, o2) = m.addingReportingOverflow(Int(byte - UInt8(ascii: "0")))
            guard !o1, !o2 else { return nil }
            value = a
        }
        return negative ? -value : value
    }

    public mutating func readNull() throws(Failure) -> Bool {
        skipWhitespace()
        return matchLiteral("null")
    }

    /// Consumes any value; returns its byte range.
    @discardableResult
    public mutating func skipValue() throws(Failure) -> Range<Int> {
        try skipValue(depth: 0)
    }

    mutating func skipValue(depth: Int) throws(Failure) -> Range<Int> {
        skipWhitespace()
        let start = position
        let kind = try peekKind()
        // Depth counts containers: a scalar inside the deepest allowed container is fine.
        if kind == .object || kind == .array, depth >= Self.maxDepth { throw .tooDeep }
        switch kind {
        case .object:
            try forEachMember { (scanner, _) throws(Failure) in _ = try scanner.skipValue(depth: depth + 1) }
        case .array:
            try forEachElement { (scanner) throws(Failure) in _ = try scanner.skipValue(depth: depth + 1) }
        case .string:
            _ = try stringRange()
        case .number:
            _ = try numberRange()
        case .bool:
            _ = try readBool()
        case .null:
            guard matchLiteral("null") else { throw .malformed(offset: position) }
        }
        return start..<position
    }

    mutating func numberRange() throws(Failure) -> Range<Int> {
        skipWhitespace()
        let start = position
        if peek() == UInt8(ascii: "-") { position += 1 }
        var digits = 0
        while let byte = peek(), byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") { position += 1; digits += 1 }
        guard digits > 0 else { throw .malformed(offset: position) }
        // JSON forbids leading zeros: "0" and "-0" stand alone, "01" is not a number.
        if digits > 1, bytes[position - digits] == UInt8(ascii: "0") { throw .malformed(offset: position - digits + 1) }
        if peek() == UInt8(ascii: ".") {
            position += 1
            var fraction = 0
            while let byte = peek(), byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") { position += 1; fraction += 1 }
            guard fraction > 0 else { throw .malformed(offset: position) }
        }
        if peek() == UInt8(ascii: "e") || peek() == UInt8(ascii: "E") {
            position += 1
            if peek() == UInt8(ascii: "+") || peek() == UInt8(ascii: "-") { position += 1 }
            var exponent = 0
            while let byte = peek(), byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") { position += 1; exponent += 1 }
            guard exponent > 0 else { throw .malformed(offset: position) }
        }
        return start..<position
    }

    mutating func matchLiteral(_ literal: StaticString) -> Bool {
        let count = literal.utf8CodeUnitCount
        guard position + count <= bytes.count else { return false }
        let pointer = literal.utf8Start
        for i in 0..<count where bytes[position + i] != pointer[i] { return false }
        position += count
        return true
    }

    static func unescape(_ raw: UnsafeRawBufferPointer, at base: Int) throws(Failure) -> String {
        var out = [UInt8]()
        out.reserveCapacity(raw.count)
        var i = 0
        func hex4(_ at: Int) throws(Failure) -> UInt32 {
            guard at + 4 <= raw.count else { throw .malformed(offset: base + at) }
            var value: UInt32 = 0
            for j in at..<(at + 4) {
                let c = raw[j]
                let digit: UInt32
                switch c {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(c - UInt8(ascii: "0"))
                case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(c - UInt8(ascii: "a") + 10)
                case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(c - UInt8(ascii: "A") + 10)
                default: throw .malformed(offset: base + j)
                }
                value = value << 4 | digit
            }
            return value
        }
        while i < raw.count {
            let c = raw[i]
            guard c == UInt8(ascii: "\\") else { out.append(c); i += 1; continue }
            guard i + 1 < raw.count else { throw .malformed(offset: base + i) }
            let e = raw[i + 1]
            i += 2
            switch e {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try hex4(i)
                i += 4
                if scalar >= 0xD800, scalar < 0xDC00, i + 6 <= raw.count, raw[i] == UInt8(ascii: "\\"), raw[i + 1] == UInt8(ascii: "u") {
                    let low = try hex4(i + 2)
                    if low >= 0xDC00, low < 0xE000 {
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                        i += 6
                    }
                }
                let unicode = Unicode.Scalar(scalar) ?? "\u{FFFD}"
                out.append(contentsOf: Array(String(Character(unicode)).utf8))
            default: throw .malformed(offset: base + i - 1)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}

private extension UInt8 {
    var isHexDigit: Bool {
        switch self {
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "f"), UInt8(ascii: "A")...UInt8(ascii: "F"): true
        default: false
        }
    }
}
