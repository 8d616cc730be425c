import Foundation

/// Why a body could not be translated between the OpenAI and Anthropic wire formats; the gateway answers
/// 400 `invalid_request_error` with `param` set to `field`.
public enum TranslationError: Error, Equatable, Sendable {
    /// The field has no faithful counterpart in the other API: refused rather than dropped.
    case unsupported(field: String, reason: String)
    /// The body is not what its own API allows (not JSON, a member of the wrong type).
    case invalid(field: String, reason: String)

    /// The request field the error is about (`param` in the error body).
    public var field: String {
        switch self {
        case .unsupported(let field, _), .invalid(let field, _): field
        }
    }

    public var message: String {
        switch self {
        case .unsupported(let field, let reason): "`\(field)` cannot be translated: \(reason)"
        case .invalid(let field, let reason): "`\(field)` is invalid: \(reason)"
        }
    }
}

/// A decoded JSON value. Translated bodies are rebuilt whole, so here (unlike on the pass-through path)
/// full decoding is the simple and honest choice. Integers stay integers, so token counts and limits are
/// written back exactly as they came.
enum JSON: Hashable, Sendable {
    case null
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([JSON])
    case object([String: JSON])

    static func parse(_ bytes: [UInt8], field: String = "body") throws(TranslationError) -> JSON {
        do {
            return try JSONDecoder().decode(JSON.self, from: Data(bytes))
        } catch {
            throw .invalid(field: field, reason: "not valid JSON")
        }
    }

    static func parseObject(_ bytes: [UInt8], field: String = "body") throws(TranslationError) -> [String: JSON] {
        guard case .object(let object) = try parse(bytes, field: field) else {
            throw .invalid(field: field, reason: "expected a JSON object")
        }
        return object
    }

    subscript(key: String) -> JSON? {
        guard case .object(let object) = self, let value = object[key], value != .null else { return nil }
        return value
    }

    var string: String? { if case .string(let value) = self { value } else { nil } }
    var int: Int? { if case .int(let value) = self { value } else { nil } }
    var bool: Bool? { if case .bool(let value) = self { value } else { nil } }
    var array: [JSON]? { if case .array(let value) = self { value } else { nil } }
    var object: [String: JSON]? { if case .object(let value) = self { value } else { nil } }
    var number: Double? {
        switch self {
        case .int(let value): Double(value)
        case .double(let value): value
        default: nil
        }
    }

    /// Compact JSON with keys sorted, so that equal values are equal bytes.
    var serialized: [UInt8] {
        var out: [UInt8] = []
        write(into: &out)
        return out
    }

    var text: String { String(decoding: serialized, as: UTF8.self) }

    func write(into out: inout [UInt8]) {
        switch self {
        case .null: out += Array("null".utf8)
        case .bool(let value): out += Array((value ? "true" : "false").utf8)
        case .int(let value): out += Array(String(value).utf8)
        case .double(let value):
            if value == value.rounded(), abs(value) < 1e15 { out += Array(String(Int(value)).utf8) } else { out += Array("\(value)".utf8) }
        case .string(let value):
            out.append(UInt8(ascii: "\""))
            out += JSONString.escapedContents(value)
            out.append(UInt8(ascii: "\""))
        case .array(let values):
            out.append(UInt8(ascii: "["))
            for (index, value) in values.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                value.write(into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let members):
            out.append(UInt8(ascii: "{"))
            for (index, key) in members.keys.sorted().enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                JSON.string(key).write(into: &out)
                out.append(UInt8(ascii: ":"))
                members[key]!.write(into: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }
}

extension JSON: Decodable {
    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int.self) {
            self = .int(value)
        } else if let value = try? container.decode(Double.self) {
            self = .double(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSON].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSON].self))
        }
    }
}

extension JSON: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral {
    init(stringLiteral value: String) { self = .string(value) }
    init(integerLiteral value: Int) { self = .int(value) }
    init(booleanLiteral value: Bool) { self = .bool(value) }
    init(arrayLiteral elements: JSON...) { self = .array(elements) }
    init(dictionaryLiteral elements: (String, JSON)...) {
        self = .object(Dictionary(elements, uniquingKeysWith: { _, last in last }))
    }
}
