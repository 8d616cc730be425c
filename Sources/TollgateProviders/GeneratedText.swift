import TollgateCore

/// The size of the generated text one stream event carries, read from its JSON strings without decoding them:
/// ASCII bytes and other characters, escapes counted as the character they stand for.
struct GeneratedText {
    var asciiBytes = 0
    var otherCharacters = 0

    /// Consumes the string at the scanner's position and counts its text.
    mutating func measureString(_ scanner: inout JSONScanner) throws(JSONScanner.Failure) {
        let range = try scanner.stringRange()
        let bytes = scanner.bytes
        var i = range.lowerBound
        while i < range.upperBound {
            let byte = bytes[i]
            if byte == UInt8(ascii: "\\") {
                // The scanner validated the escape: `\uXXXX` (a low surrogate completes a pair already
                // counted) or a two-byte one.
                if bytes[i + 1] == UInt8(ascii: "u") {
                    let value = Self.hex4(bytes, at: i + 2)
                    if value < 0x80 { asciiBytes += 1 } else if !(0xDC00...0xDFFF).contains(value) { otherCharacters += 1 }
                    i += 6
                } else {
                    asciiBytes += 1
                    i += 2
                }
            } else if byte < 0x80 {
                asciiBytes += 1
                i += 1
            } else {
                // A UTF-8 lead byte starts a character; continuation bytes (10xxxxxx) do not.
                if byte & 0xC0 != 0x80 { otherCharacters += 1 }
                i += 1
            }
        }
    }

    /// Counts the value at the scanner's position if it is a string, else skips it.
    mutating func measureIfString(_ scanner: inout JSONScanner) throws(JSONScanner.Failure) {
        if try scanner.peekKind() == .string { try measureString(&scanner) } else { try scanner.skipValue() }
    }

    func add(to output: inout GeneratedOutput) {
        output.add(asciiBytes: asciiBytes, otherCharacters: otherCharacters)
    }

    private static func hex4(_ bytes: UnsafeRawBufferPointer, at start: Int) -> UInt32 {
        var value: UInt32 = 0
        for byte in bytes[start..<(start + 4)] {
            let digit: UInt32 = switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): UInt32(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): UInt32(byte - UInt8(ascii: "a") + 10)
            default: UInt32(byte - UInt8(ascii: "A") + 10)
            }
            value = value << 4 | digit
        }
        return value
    }
}
