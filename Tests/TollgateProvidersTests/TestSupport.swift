import Foundation
@testable import TollgateProviders

/// Runs `body` over the UTF-8 bytes of `text`, as the gateway sees a request or response body.
func withUTF8<R>(_ text: String, _ body: (UnsafeRawBufferPointer) throws(JSONScanner.Failure) -> R) throws(JSONScanner.Failure) -> R {
    let result: Result<R, JSONScanner.Failure> = Array(text.utf8).withUnsafeBytes { bytes in
        Result { () throws(JSONScanner.Failure) in try body(bytes) }
    }
    return try result.get()
}

/// Checks that `text` is one well-formed JSON document, as a pass-through body is checked.
func validate(_ text: String) throws(JSONScanner.Failure) {
    try withUTF8(text) { (bytes) throws(JSONScanner.Failure) in
        var scanner = JSONScanner(bytes)
        try scanner.skipValue()
        try scanner.expectEnd()
    }
}

func scanRequest(_ body: String) throws(JSONScanner.Failure) -> OpenAIRequestFields {
    try withUTF8(body) { (bytes) throws(JSONScanner.Failure) in try OpenAIRequestFields.scan(bytes) }
}

/// Splices `edits` (ranges in the original bytes) into `original`, as the relay builds the upstream body.
func applying(_ edits: [BodyEdit], to original: [UInt8]) -> [UInt8] {
    var out: [UInt8] = []
    var cursor = 0
    for edit in edits.sorted(by: { $0.range.lowerBound < $1.range.lowerBound }) {
        precondition(edit.range.lowerBound >= cursor, "edits overlap")
        out += original[cursor..<edit.range.lowerBound]
        out += edit.replacement
        cursor = edit.range.upperBound
    }
    out += original[cursor...]
    return out
}

struct NotAnObject: Error {}

/// Decodes a top-level JSON object with Foundation: an oracle independent of the scanner under test.
func foundationObject(_ bytes: [UInt8]) throws -> [String: Any] {
    guard let object = try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else { throw NotAnObject() }
    return object
}

func foundationAccepts(_ text: String) -> Bool {
    (try? JSONSerialization.jsonObject(with: Data(text.utf8), options: .fragmentsAllowed)) != nil
}

/// The raw bytes of each top-level member's value, exactly as written.
func rawMembers(_ bytes: [UInt8]) throws(JSONScanner.Failure) -> [String: [UInt8]] {
    let result: Result<[String: [UInt8]], JSONScanner.Failure> = bytes.withUnsafeBytes { buffer in
        Result { () throws(JSONScanner.Failure) in
            var members: [String: [UInt8]] = [:]
            var scanner = JSONScanner(buffer)
            try scanner.forEachMember { (scanner, key) throws(JSONScanner.Failure) in
                members[key] = Array(buffer[try scanner.skipValue()])
            }
            try scanner.expectEnd()
            return members
        }
    }
    return try result.get()
}
