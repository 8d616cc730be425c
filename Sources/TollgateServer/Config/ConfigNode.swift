import Foundation
import TollgateCore
import Yams

/// The text being parsed and what `${ENV}` references resolve against.
struct ConfigSource {
    let file: String
    let environment: [String: String]

    // YAML ends a plain scalar at `{` and `}` inside a flow mapping, so the contract's own
    // `webhooks: { secret: ${SECRET} }` would not parse. Before composing, the braces of each `${…}` on one
    // line become two private-use characters (one scalar each, so lines and columns stay true), and
    // `original(_:)` turns them back when a scalar is read.
    private static let shieldedOpen: Character = "\u{E000}"
    private static let shieldedClose: Character = "\u{E001}"

    static func shieldingReferences(in text: String) -> String {
        guard text.contains("${") else { return text }
        var result = ""
        var rest = Substring(text)
        while let start = rest.range(of: "${") {
            let lineEnd = rest[start.upperBound...].firstIndex(of: "\n") ?? rest.endIndex
            guard let end = rest[start.upperBound..<lineEnd].firstIndex(of: "}") else { break }
            result += rest[..<start.lowerBound]
            result.append("$")
            result.append(shieldedOpen)
            result += rest[start.upperBound..<end]
            result.append(shieldedClose)
            rest = rest[rest.index(after: end)...]
        }
        return result + rest
    }

    func original(_ text: String) -> String {
        guard text.contains(Self.shieldedOpen) else { return text }
        return String(text.map { $0 == Self.shieldedOpen ? "{" : $0 == Self.shieldedClose ? "}" : $0 })
    }
}

/// One YAML node and the field path that leads to it, so that every refusal names file, line and field.
/// Values are read from the scalar's text (never through Yams' Double or Int), after `${ENV}` interpolation.
struct ConfigNode {
    let node: Node
    let path: String
    let source: ConfigSource

    func failure(_ problem: String, line: Int? = nil) -> ConfigError {
        ConfigError(file: source.file, line: line ?? node.mark?.line, field: path.isEmpty ? nil : path,
                    problem: problem)
    }

    /// A plain `~`, `null` or nothing at all: the same as leaving the key out.
    var isNull: Bool {
        guard let scalar = node.scalar, scalar.style == .plain else { return false }
        return ["", "~", "null", "Null", "NULL"].contains(scalar.string)
    }

    /// How a refusal shows what it found: the scalar's text, or the kind of node.
    var found: String {
        switch node {
        case .scalar(let scalar): ConfigError.quoted(source.original(scalar.string))
        case .mapping: "a mapping"
        case .sequence: "a list"
        case .alias: "an alias"
        }
    }

    // MARK: Structure

    /// The entries of a mapping whose keys are names chosen by the user (route names), in file order.
    func entries() throws(ConfigError) -> [(key: String, value: ConfigNode)] {
        try keyedEntries().map { ($0.key, $0.value) }
    }

    /// A mapping with a fixed set of keys: any other key is refused on its own line.
    func mapping(allowing keys: [String]) throws(ConfigError) -> ConfigMapping {
        var values: [String: ConfigNode] = [:]
        for (name, keyLine, value) in try keyedEntries() {
            guard keys.contains(name) else {
                throw value.failure("unknown key (expected one of \(keys.joined(separator: ", ")))", line: keyLine)
            }
            if !value.isNull { values[name] = value }
        }
        return ConfigMapping(node: self, values: values)
    }

    private func keyedEntries() throws(ConfigError) -> [(key: String, keyLine: Int?, value: ConfigNode)] {
        guard case .mapping(let mapping) = node else { throw failure("expected a mapping, got \(found)") }
        var entries: [(key: String, keyLine: Int?, value: ConfigNode)] = []
        for (key, value) in mapping {
            guard let name = key.scalar.map({ source.original($0.string) }), !name.isEmpty else {
                let keyNode = ConfigNode(node: key, path: path, source: source)
                throw keyNode.failure("expected a name as key, got \(keyNode.found)")
            }
            let child = ConfigNode(node: value, path: path.isEmpty ? name : "\(path).\(name)", source: source)
            entries.append((name, key.mark?.line, child))
        }
        return entries
    }

    func list() throws(ConfigError) -> [ConfigNode] {
        guard case .sequence(let sequence) = node else { throw failure("expected a list, got \(found)") }
        return sequence.enumerated().map { index, element in
            ConfigNode(node: element, path: "\(path)[\(index)]", source: source)
        }
    }

    // MARK: Scalars

    /// The scalar's text with `${NAME}` and `${NAME:-default}` replaced; `expected` says what a mapping or a
    /// list found here should have been.
    func text(expected: String = "a string") throws(ConfigError) -> String {
        guard let scalar = node.scalar else { throw failure("expected \(expected), got \(found)") }
        return try interpolate(source.original(scalar.string))
    }

    func nonEmptyText() throws(ConfigError) -> String {
        let text = try text()
        guard !text.isEmpty else { throw failure("expected a non-empty string, got \"\"") }
        return text
    }

    func integer(in range: ClosedRange<Int> = 0...Int.max) throws(ConfigError) -> Int {
        let text = try text(expected: "an integer")
        guard let value = Int(text.replacingOccurrences(of: "_", with: "")) else {
            throw failure("expected an integer, got \(ConfigError.quoted(text))")
        }
        guard range.contains(value) else {
            let bounds = switch (range.lowerBound, range.upperBound) {
            case (0, .max): "a non-negative integer"
            case (1, .max): "a positive integer"
            case (let low, let high): "an integer from \(low) to \(high)"
            }
            throw failure("expected \(bounds), got \(ConfigError.quoted(text))")
        }
        return value
    }

    /// `true` or `false` (YAML 1.2's spelling: no `yes`/`on`, which read as strings elsewhere).
    func boolean() throws(ConfigError) -> Bool {
        let text = try text(expected: "true or false")
        switch text {
        case "true", "True", "TRUE": return true
        case "false", "False", "FALSE": return false
        default: throw failure("expected true or false, got \(ConfigError.quoted(text))")
        }
    }

    /// A share such as `strong_share` or `soft_threshold`: a ratio, not money, so a Double is exact enough.
    func fraction() throws(ConfigError) -> Double {
        let text = try text(expected: "a number")
        guard let value = Double(text), value.isFinite else {
            throw failure("expected a number, got \(ConfigError.quoted(text))")
        }
        guard (0...1).contains(value) else {
            throw failure("expected a number from 0 to 1, got \(ConfigError.quoted(text))")
        }
        return value
    }

    /// A non-negative dollar amount read digit by digit from the text, refused rather than rounded when it
    /// has more digits than a nano-dollar holds.
    func amount() throws(ConfigError) -> Nanodollars {
        let text = try text(expected: "a decimal number")
        let unsigned = text.hasPrefix("-") ? text.dropFirst() : Substring(text)
        let parts = unsigned.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        guard !unsigned.isEmpty, parts.allSatisfy({ $0.allSatisfy(\.isASCIIDecimalDigit) }),
              parts.contains(where: { !$0.isEmpty }), parts.count == 1 || !parts[1].isEmpty
        else { throw failure("expected a decimal number, got \(ConfigError.quoted(text))") }
        guard parts.count == 1 || parts[1].count <= 9 else {
            throw failure("expected at most 9 decimal places, got \(ConfigError.quoted(text))")
        }
        guard !text.hasPrefix("-") else {
            throw failure("expected a non-negative amount, got \(ConfigError.quoted(text))")
        }
        guard let value = Nanodollars(decimalString: text) else {
            throw failure("expected an amount below 9 billion dollars, got \(ConfigError.quoted(text))")
        }
        return value
    }

    func choice<Choice: RawRepresentable & CaseIterable>(
        of type: Choice.Type = Choice.self
    ) throws(ConfigError) -> Choice where Choice.RawValue == String {
        let names = Choice.allCases.map(\.rawValue)
        let text = try text(expected: "one of \(names.joined(separator: ", "))")
        guard let value = Choice(rawValue: text) else {
            throw failure("expected one of \(names.joined(separator: ", ")), got \(ConfigError.quoted(text))")
        }
        return value
    }

    /// An `http` or `https` URL with a host, without trailing slashes so that paths can be appended.
    func httpURL() throws(ConfigError) -> String {
        let text = try text(expected: "a URL")
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(),
              scheme == "http" || scheme == "https", let host = components.host, !host.isEmpty
        else { throw failure("expected an http or https URL with a host, got \(ConfigError.quoted(text))") }
        var url = Substring(text)
        while url.hasSuffix("/") { url = url.dropLast() }
        return String(url)
    }

    private func interpolate(_ text: String) throws(ConfigError) -> String {
        var result = ""
        var rest = Substring(text)
        while let start = rest.range(of: "${") {
            result += rest[..<start.lowerBound]
            guard let end = rest[start.upperBound...].firstIndex(of: "}") else {
                throw failure("unterminated ${ in \(ConfigError.quoted(text))")
            }
            let reference = rest[start.upperBound..<end]
            let separator = reference.range(of: ":-")
            let name = separator.map { reference[..<$0.lowerBound] } ?? reference
            let fallback = separator.map { reference[$0.upperBound...] }
            guard let first = name.first, first == "_" || first.isLetter,
                  name.allSatisfy({ $0 == "_" || $0.isASCIIDecimalDigit || ($0.isASCII && $0.isLetter) })
            else {
                throw failure("expected ${NAME} or ${NAME:-default}, got \(ConfigError.quoted("${" + reference + "}"))")
            }
            // As in a shell, `:-` also replaces a variable that is set but empty.
            if let value = source.environment[String(name)], !(value.isEmpty && fallback != nil) {
                result += value
            } else if let fallback {
                result += fallback
            } else {
                throw failure("environment variable \(name) is not set")
            }
            rest = rest[rest.index(after: end)...]
        }
        return result + rest
    }
}

/// A mapping whose keys were checked; null values count as absent.
struct ConfigMapping {
    let node: ConfigNode
    let values: [String: ConfigNode]

    subscript(key: String) -> ConfigNode? { values[key] }

    func required(_ key: String) throws(ConfigError) -> ConfigNode {
        guard let value = values[key] else { throw node.failure("missing required key \(ConfigError.quoted(key))") }
        return value
    }

    /// An optional string; an empty one (`${UNSET:-}`) counts as absent.
    func string(_ key: String) throws(ConfigError) -> String? {
        guard let text = try values[key]?.text(), !text.isEmpty else { return nil }
        return text
    }

    func integer(_ key: String, in range: ClosedRange<Int> = 0...Int.max) throws(ConfigError) -> Int? {
        try values[key]?.integer(in: range)
    }

    func amount(_ key: String) throws(ConfigError) -> Nanodollars? { try values[key]?.amount() }

    func boolean(_ key: String) throws(ConfigError) -> Bool? { try values[key]?.boolean() }

    func fraction(_ key: String) throws(ConfigError) -> Double? { try values[key]?.fraction() }

    func choice<Choice: RawRepresentable & CaseIterable>(
        _ key: String, of type: Choice.Type = Choice.self
    ) throws(ConfigError) -> Choice? where Choice.RawValue == String {
        try values[key]?.choice(of: type)
    }

    /// Refuses a key that has no meaning in this entry (`demo` options on an OpenAI model, say).
    func refuse(_ keys: [String], because reason: String) throws(ConfigError) {
        for key in keys {
            if let value = values[key] { throw value.failure("does not apply \(reason)") }
        }
    }
}

extension ConfigError {
    /// How a refusal shows a value it found: `got "abc"`.
    static func quoted(_ text: some StringProtocol) -> String { "\"\(text)\"" }
}

private extension Character {
    var isASCIIDecimalDigit: Bool { isASCII && isWholeNumber }
}
