import Testing
@testable import TollgateProviders

@Suite("JSONScanner: one validating pass over a body")
struct JSONScannerTests {
    // MARK: Well-formed documents

    static let wellFormed: [String] = [
        "{}", "[]", #""""#, "0", "-0", "7", "-12", "3.25", "-0.5", "0.001", "1e10", "1E+2", "2.5e-3", "-1.0E-0",
        "true", "false", "null",
        #"{"a":{"b":{"c":[1,[2,[3,{"d":null}]]]}}}"#,
        #"[{"x":[]},{"y":{}},[[]],"",0,false,true,null]"#,
        " \t\r\n{ \"a\" : [ 1 , 2.0 , \"three\" ] ,\n\t\"b\" : { } } \r\n",
        #""quote \" backslash \\ slash \/ controls \b\f\n\r\t""#,
        #""\u00e9\u20AC\uD83D\uDE00\ud83d\ude00\u0000""#,
        "\"raw UTF-8: é € 😀\"",
        #"{"key with \"escapes\"\n":"value","":""}"#,
    ]

    @Test("accepts well-formed documents of every kind", arguments: wellFormed)
    func acceptsWellFormed(document: String) throws {
        #expect(foundationAccepts(document), "the fixture itself must be valid JSON")
        try validate(document)
    }

    @Test("skipValue returns the value's exact byte range, without surrounding whitespace")
    func skipValueRange() throws {
        let range = try withUTF8("  [1, {\"a\": 2}]  ") { (bytes) throws(JSONScanner.Failure) in
            var scanner = JSONScanner(bytes)
            return try scanner.skipValue()
        }
        #expect(range == 2..<15)
    }

    @Test("peekKind names the next value without consuming it",
          arguments: [("{}", JSONScanner.Kind.object), ("[]", .array), (#""s""#, .string), ("-1", .number),
                      ("9", .number), ("true", .bool), ("false", .bool), ("null", .null), ("  \n{}", .object)])
    func peekKind(document: String, kind: JSONScanner.Kind) throws {
        let (peeked, offsetAfter) = try withUTF8(document) { (bytes) throws(JSONScanner.Failure) in
            var scanner = JSONScanner(bytes)
            let peeked = try scanner.peekKind()
            let offsetAfter = scanner.offset
            try scanner.skipValue()
            try scanner.expectEnd()
            return (peeked, offsetAfter)
        }
        #expect(peeked == kind)
        #expect(offsetAfter == document.utf8.count - document.drop(while: \.isWhitespace).utf8.count)
    }

    @Test("forEachMember hands over every key, decoded, in document order")
    func membersInOrder() throws {
        let keys = try withUTF8(#"{ "b" : 1, "a":[true], "c\u0041":"x", "\"q\"": {"nested": 0} }"#) {
            (bytes) throws(JSONScanner.Failure) in
            var scanner = JSONScanner(bytes)
            var keys: [String] = []
            try scanner.forEachMember { (scanner, key) throws(JSONScanner.Failure) in
                keys.append(key)
                try scanner.skipValue()
            }
            try scanner.expectEnd()
            return keys
        }
        #expect(keys == ["b", "a", "cA", "\"q\""])
    }

    @Test("forEachElement hands over every element")
    func elements() throws {
        let values = try withUTF8("[ 1,2 ,\n3 ]") { (bytes) throws(JSONScanner.Failure) in
            var scanner = JSONScanner(bytes)
            var values: [Int?] = []
            try scanner.forEachElement { (scanner) throws(JSONScanner.Failure) in values.append(try scanner.readInteger()) }
            return values
        }
        #expect(values == [1, 2, 3])
    }

    // MARK: Strings

    @Test("readString decodes every escape",
          arguments: [
              (#""plain""#, "plain"),
              (#""quote \" backslash \\ slash \/""#, "quote \" backslash \\ slash /"),
              (#""\b\f\n\r\t""#, "\u{08}\u{0C}\n\r\t"),
              (#""\u00e9\u20AC\u0041\u0000""#, "é€A\u{0}"),
              (#""caf\u00E9 na\u00efve""#, "café naïve"),
              ("\"raw UTF-8 é 😀\"", "raw UTF-8 é 😀"),
          ])
    func decodesEscapes(literal: String, expected: String) throws {
        #expect(try readString(literal) == expected)
    }

    @Test("a \\u surrogate pair decodes to the one scalar it encodes, in either case of hex",
          arguments: [#""\uD83D\uDE00""#, #""\ud83d\ude00""#, #""\uD83D\ude00""#])
    func surrogatePair(literal: String) throws {
        #expect(try readString(literal) == "😀")
        #expect(try readString(literal).unicodeScalars.count == 1)
    }

    @Test("an unpaired surrogate decodes to U+FFFD instead of failing",
          arguments: [(#""\uD83D""#, "\u{FFFD}"), (#""\uD83Dx""#, "\u{FFFD}x"), (#""\uDE00""#, "\u{FFFD}"),
                      (#""\uD83D\u0041""#, "\u{FFFD}A")])
    func unpairedSurrogate(literal: String, expected: String) throws {
        #expect(try readString(literal) == expected)
    }

    @Test("stringRange covers the contents between the quotes, escapes undecoded")
    func stringRange() throws {
        let range = try withUTF8(#"  "a\"b"  "#) { (bytes) throws(JSONScanner.Failure) in
            var scanner = JSONScanner(bytes)
            return try scanner.stringRange()
        }
        #expect(range == 3..<7)
    }

    func readString(_ literal: String) throws(JSONScanner.Failure) -> String {
        try withUTF8(literal) { (bytes) throws(JSONScanner.Failure) in
            var scanner = JSONScanner(bytes)
            let value = try scanner.readString()
            try scanner.expectEnd()
            return value
        }
    }

    // MARK: Numbers

    @Test("readInteger reads integers and gives nil for fractions, exponents and overflow",
          arguments: [("42", 42), ("-7", -7), ("0", 0), ("-0", 0), ("9223372036854775807", Int.max),
                      ("9223372036854775808", nil), ("1.5", nil), ("1e3", nil), ("300.0", nil)] as [(String, Int?)])
    func readInteger(literal: String, expected: Int?) throws {
        let value = try withUTF8(literal) { (bytes) throws(JSONScanner.Failure) in
            var scanner = JSONScanner(bytes)
            let value = try scanner.readInteger()
            try scanner.expectEnd()
            return value
        }
        #expect(value == expected)
    }

    // MARK: Malformed documents

    struct Malformed: CustomTestStringConvertible, Sendable {
        var document: String
        var offset: Int
        var why: String
        /// Foundation's parser tolerates some invalid JSON (trailing commas), so it cannot vouch for these.
        var foundationIsLenient = false
        var testDescription: String { why }
    }

    static let malformed: [Malformed] = [
        Malformed(document: "", offset: 0, why: "empty input"),
        Malformed(document: "   ", offset: 3, why: "only whitespace"),
        Malformed(document: #"{"a":1} x"#, offset: 8, why: "trailing garbage after the document"),
        Malformed(document: "[1]]", offset: 3, why: "a stray closing bracket"),
        Malformed(document: "{} {}", offset: 3, why: "two documents"),
        Malformed(document: #""abc"#, offset: 4, why: "unterminated string"),
        Malformed(document: #"{"a":"abc"#, offset: 9, why: "unterminated string inside an object"),
        Malformed(document: #""abc\"#, offset: 5, why: "string cut inside an escape"),
        Malformed(document: "\"a\u{01}b\"", offset: 2, why: "a control character in a string"),
        Malformed(document: "\"tab\there\"", offset: 4, why: "a raw tab in a string"),
        Malformed(document: "\"line\nbreak\"", offset: 5, why: "a raw newline in a string"),
        Malformed(document: #""\x""#, offset: 2, why: "an unknown escape"),
        Malformed(document: #"{"a":"\q"}"#, offset: 7, why: "an unknown escape in a skipped value"),
        Malformed(document: #"["\u12G4"]"#, offset: 6, why: "a \\u escape with a non-hex digit"),
        Malformed(document: #""\u12""#, offset: 5, why: "a \\u escape with too few digits"),
        Malformed(document: "01", offset: 1, why: "a leading zero"),
        Malformed(document: "-01", offset: 2, why: "a leading zero after a minus"),
        Malformed(document: "[00]", offset: 2, why: "a double zero"),
        Malformed(document: #"{"n":012}"#, offset: 6, why: "a leading zero in a member"),
        Malformed(document: "1.", offset: 2, why: "a fraction without digits"),
        Malformed(document: ".5", offset: 0, why: "a fraction without an integer part"),
        Malformed(document: "1e", offset: 2, why: "an exponent without digits"),
        Malformed(document: "1e+", offset: 3, why: "a signed exponent without digits"),
        Malformed(document: "+1", offset: 0, why: "a plus sign"),
        Malformed(document: "-", offset: 1, why: "a lone minus"),
        Malformed(document: "NaN", offset: 0, why: "NaN"),
        Malformed(document: "tru", offset: 0, why: "a truncated literal"),
        Malformed(document: "nul", offset: 0, why: "a truncated null"),
        Malformed(document: "[1,]", offset: 3, why: "a trailing comma in an array", foundationIsLenient: true),
        Malformed(document: #"{"a":1,}"#, offset: 7, why: "a trailing comma in an object", foundationIsLenient: true),
        Malformed(document: #"{"a" 1}"#, offset: 5, why: "a missing colon"),
        Malformed(document: #"{"a":}"#, offset: 5, why: "a missing value"),
        Malformed(document: "{a:1}", offset: 1, why: "an unquoted key"),
        Malformed(document: "[1 2]", offset: 3, why: "a missing comma"),
        Malformed(document: "[1,2", offset: 4, why: "an unclosed array"),
    ]

    @Test("refuses malformed documents with the offset of the first bad byte", arguments: malformed)
    func refusesMalformed(_ example: Malformed) {
        if !example.foundationIsLenient {
            #expect(!foundationAccepts(example.document), "the fixture itself must be invalid JSON")
        }
        #expect(throws: JSONScanner.Failure.malformed(offset: example.offset)) { try validate(example.document) }
    }

    // MARK: Depth

    static func nestedArrays(_ depth: Int, innermost: String = "") -> String {
        String(repeating: "[", count: depth) + innermost + String(repeating: "]", count: depth)
    }

    static func nestedObjects(_ depth: Int) -> String {
        String(repeating: #"{"a":"#, count: depth - 1) + "{}" + String(repeating: "}", count: depth - 1)
    }

    @Test("accepts nesting 128 deep, with or without a value inside")
    func accepts128Deep() throws {
        try validate(Self.nestedArrays(128))
        try validate(Self.nestedArrays(128, innermost: "1"))
        try validate(Self.nestedArrays(128, innermost: #""leaf""#))
        try validate(Self.nestedObjects(128))
    }

    @Test("refuses nesting deeper than 128 as tooDeep")
    func refuses129Deep() {
        #expect(throws: JSONScanner.Failure.tooDeep) { try validate(Self.nestedArrays(129)) }
        #expect(throws: JSONScanner.Failure.tooDeep) { try validate(Self.nestedArrays(129, innermost: "1")) }
        #expect(throws: JSONScanner.Failure.tooDeep) { try validate(Self.nestedObjects(129)) }
    }

    @Test("refuses a hostile 100,000-deep document without exhausting the stack")
    func refusesHostileDepth() {
        #expect(throws: JSONScanner.Failure.tooDeep) { try validate(Self.nestedArrays(100_000)) }
        #expect(throws: JSONScanner.Failure.tooDeep) { try validate(String(repeating: "[", count: 100_000)) }
    }
}
