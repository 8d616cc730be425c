import Foundation

/// How capable (and how dear) a model is: what budget downgrades and the router step between.
public enum ModelTier: String, Sendable, Comparable, CaseIterable {
    case small, medium, large

    public static func < (lhs: ModelTier, rhs: ModelTier) -> Bool { lhs.rank < rhs.rank }

    private var rank: Int {
        switch self {
        case .small: 0
        case .medium: 1
        case .large: 2
        }
    }
}

/// Why a price catalogue was refused, naming the entry (its `name`, or `models[i]` before the name is known)
/// and the field, so that a wrong price is found at once and never billed.
public struct PriceCatalogError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Problem: Hashable, Sendable {
        case notJSON
        case missing
        case wrongType(expected: String)
        /// A price that is not a plain decimal string of at most nine fractional digits (`"1e3"`, `"0.1234567891"`).
        case notADecimal(String)
        case negative
        case notADate(String)
        case unknownTier(String)
        case unknownField
        /// A name or alias that an earlier entry already uses.
        case duplicate(String)
    }

    public var entry: String?
    public var field: String?
    public var problem: Problem

    public init(entry: String? = nil, field: String? = nil, problem: Problem) {
        self.entry = entry
        self.field = field
        self.problem = problem
    }

    public var description: String {
        var place = "price catalogue"
        if let entry { place += " entry \"\(entry)\"" }
        if let field { place += " field \"\(field)\"" }
        let what = switch problem {
        case .notJSON: "is not valid JSON"
        case .missing: "is missing"
        case .wrongType(let expected): "must be \(expected)"
        case .notADecimal(let text): "\"\(text)\" is not a decimal such as \"0.15\" (at most 9 decimal places)"
        case .negative: "must not be negative"
        case .notADate(let text): "\"\(text)\" is not a date YYYY-MM-DD"
        case .unknownTier(let text): "\"\(text)\" is not one of small, medium, large"
        case .unknownField: "is not a known field"
        case .duplicate(let name): "\"\(name)\" is already used by another entry"
        }
        return place + ": " + what
    }
}

/// List prices and limits of the models Tollgate knows, read from JSON in which every price is a decimal
/// string in USD per million tokens (a JSON number would pass through a binary float, so it is refused).
public struct PriceCatalog: Sendable {
    public struct Entry: Sendable, Hashable {
        public var name: String
        public var provider: String
        public var price: ModelPrice
        public var contextWindow: Int?
        public var maxOutputTokens: Int?
        public var tier: ModelTier?
        /// `tools`, `vision`, `json`, `reasoning`, `embeddings`, …
        public var capabilities: Set<String>
        /// Where the price was read: the provider's official pricing page.
        public var source: String
        /// The day the price was last known to be current, `YYYY-MM-DD`.
        public var checked: String
        /// Other names the provider accepts for the same model and price.
        public var aliases: [String]

        public init(name: String, provider: String, price: ModelPrice, contextWindow: Int? = nil,
                    maxOutputTokens: Int? = nil, tier: ModelTier? = nil, capabilities: Set<String> = [],
                    source: String, checked: String, aliases: [String] = []) {
            self.name = name
            self.provider = provider
            self.price = price
            self.contextWindow = contextWindow
            self.maxOutputTokens = maxOutputTokens
            self.tier = tier
            self.capabilities = capabilities
            self.source = source
            self.checked = checked
            self.aliases = aliases
        }
    }

    public private(set) var entries: [Entry]
    /// Every name and alias → its position in `entries`.
    private var index: [String: Int]

    public init(entries: [Entry]) throws(PriceCatalogError) {
        self.entries = entries
        index = [:]
        for (position, entry) in entries.enumerated() {
            for (field, name) in [("name", entry.name)] + entry.aliases.map({ ("aliases", $0) }) {
                guard index.updateValue(position, forKey: name) == nil else {
                    throw PriceCatalogError(entry: entry.name, field: field, problem: .duplicate(name))
                }
            }
        }
    }

    public static func parse(json: [UInt8]) throws(PriceCatalogError) -> PriceCatalog {
        let document: CatalogDocument
        do {
            document = try JSONDecoder().decode(CatalogDocument.self, from: Data(json))
        } catch let error as PriceCatalogError {
            throw error
        } catch {
            throw PriceCatalogError(problem: .notJSON)
        }
        return try PriceCatalog(entries: document.entries)
    }

    /// The entry for `model`, by name or alias; a dated snapshot (`gpt-4o-2024-08-06`,
    /// `claude-sonnet-4-5-20250929`) falls back to its undated name when it has no entry of its own.
    public func entry(for model: String) -> Entry? {
        if let position = index[model] { return entries[position] }
        if let undated = Self.undatedName(of: model), let position = index[undated] { return entries[position] }
        return nil
    }

    /// `model` without a trailing `-YYYY-MM-DD` or `-YYYYMMDD`, or nil when it carries no such date.
    static func undatedName(of model: String) -> String? {
        let bytes = Array(model.utf8)
        func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }
        func number(_ range: Range<Int>) -> Int {
            bytes[range].reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) }
        }
        func plausible(month: Int, day: Int) -> Bool { (1...12).contains(month) && (1...31).contains(day) }
        let dash = UInt8(ascii: "-")
        let n = bytes.count
        if n > 11, bytes[n - 11] == dash, bytes[n - 6] == dash, bytes[n - 3] == dash,
           (bytes[(n - 10)..<(n - 6)] + bytes[(n - 5)..<(n - 3)] + bytes[(n - 2)..<n]).allSatisfy(isDigit),
           plausible(month: number((n - 5)..<(n - 3)), day: number((n - 2)..<n)) {
            return String(decoding: bytes[..<(n - 11)], as: UTF8.self)
        }
        if n > 9, bytes[n - 9] == dash, bytes[(n - 8)..<n].allSatisfy(isDigit),
           plausible(month: number((n - 4)..<(n - 2)), day: number((n - 2)..<n)) {
            return String(decoding: bytes[..<(n - 9)], as: UTF8.self)
        }
        return nil
    }
}

// MARK: - Reading the JSON

private struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int?
    init(_ string: String) { stringValue = string }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { stringValue = String(intValue); self.intValue = intValue }
}

private struct CatalogDocument: Decodable {
    var entries: [PriceCatalog.Entry]

    init(from decoder: any Decoder) throws {
        let fields = try FieldReader(decoder, entry: nil, known: ["models"])
        let models = try fields.decode([EntryDocument].self, "models", expected: "an array of entries")
        entries = try fields.required(models, "models").map(\.entry)
    }
}

private struct EntryDocument: Decodable {
    var entry: PriceCatalog.Entry

    static let known: Set<String> = [
        "name", "provider", "input_per_mtok", "cached_input_per_mtok", "cache_write_per_mtok",
        "cache_write_1h_per_mtok", "output_per_mtok", "long_context", "context_window", "max_output_tokens", "tier", "capabilities", "source", "checked",
        "aliases",
    ]
    static let longContextKnown: Set<String> = [
        "threshold_tokens", "input_per_mtok", "cached_input_per_mtok", "cache_write_per_mtok",
        "cache_write_1h_per_mtok", "output_per_mtok",
    ]

    init(from decoder: any Decoder) throws {
        let position = decoder.codingPath.last?.intValue.map { "models[\($0)]" } ?? "models[?]"
        let name = try FieldReader(decoder, entry: position, known: []).text("name")
        let fields = try FieldReader(decoder, entry: name, known: Self.known)

        var longContext: ModelPrice.LongContextTier?
        if let tierFields = try fields.object("long_context", known: Self.longContextKnown) {
            let threshold = try tierFields.required(tierFields.count("threshold_tokens"), "threshold_tokens")
            longContext = ModelPrice.LongContextTier(thresholdTokens: threshold, rates: try tierFields.rates())
        }
        let tier: ModelTier?
        if let text = try fields.string("tier") {
            guard let known = ModelTier(rawValue: text) else {
                throw PriceCatalogError(entry: name, field: "tier", problem: .unknownTier(text))
            }
            tier = known
        } else {
            tier = nil
        }
        let checked = try fields.text("checked")
        guard Self.isDate(checked) else {
            throw PriceCatalogError(entry: name, field: "checked", problem: .notADate(checked))
        }
        entry = PriceCatalog.Entry(
            name: name,
            provider: try fields.text("provider"),
            price: ModelPrice(rates: try fields.rates(), longContext: longContext),
            contextWindow: try fields.count("context_window"),
            maxOutputTokens: try fields.count("max_output_tokens"),
            tier: tier,
            capabilities: Set(try fields.strings("capabilities") ?? []),
            source: try fields.text("source"),
            checked: checked,
            aliases: try fields.strings("aliases") ?? [])
    }

    /// `YYYY-MM-DD` with a month and day that can exist.
    static func isDate(_ text: String) -> Bool {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard text.utf8.count == 10, parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
              parts.allSatisfy({ $0.allSatisfy(\.isASCIIDigitCharacter) }),
              let month = Int(parts[1]), let day = Int(parts[2])
        else { return false }
        return (1...12).contains(month) && (1...31).contains(day)
    }
}

/// Reads one JSON object's fields with strict types, turning every failure into a `PriceCatalogError` that
/// names the entry and the field.
private struct FieldReader {
    let fields: KeyedDecodingContainer<AnyKey>
    let entry: String?
    /// Prefix of every field name reported, e.g. `long_context.`.
    let path: String

    /// With `known` empty, unknown fields are not checked (used to read the name before anything else).
    init(_ decoder: any Decoder, entry: String?, known: Set<String>) throws {
        do {
            fields = try decoder.container(keyedBy: AnyKey.self)
        } catch {
            throw PriceCatalogError(entry: entry, problem: .wrongType(expected: "an object"))
        }
        self.entry = entry
        path = ""
        try checkKnown(known)
    }

    private init(fields: KeyedDecodingContainer<AnyKey>, entry: String?, path: String, known: Set<String>) throws {
        self.fields = fields
        self.entry = entry
        self.path = path
        try checkKnown(known)
    }

    private func checkKnown(_ known: Set<String>) throws {
        guard !known.isEmpty else { return }
        if let unknown = fields.allKeys.map(\.stringValue).sorted().first(where: { !known.contains($0) }) {
            throw failure(unknown, .unknownField)
        }
    }

    func failure(_ key: String, _ problem: PriceCatalogError.Problem) -> PriceCatalogError {
        PriceCatalogError(entry: entry, field: path + key, problem: problem)
    }

    func required<T>(_ value: T?, _ key: String) throws -> T {
        guard let value else { throw failure(key, .missing) }
        return value
    }

    /// Absent and `null` both mean "not given".
    private func isGiven(_ key: String) throws -> Bool {
        let key = AnyKey(key)
        guard fields.contains(key) else { return false }
        return !(try fields.decodeNil(forKey: key))
    }

    func decode<T: Decodable>(_ type: T.Type, _ key: String, expected: String) throws -> T? {
        guard try isGiven(key) else { return nil }
        do {
            return try fields.decode(type, forKey: AnyKey(key))
        } catch let error as PriceCatalogError {
            throw error
        } catch {
            throw failure(key, .wrongType(expected: expected))
        }
    }

    func string(_ key: String) throws -> String? {
        try decode(String.self, key, expected: "a string")
    }

    /// A required string that is not empty.
    func text(_ key: String) throws -> String {
        let value = try required(string(key), key)
        guard !value.isEmpty else { throw failure(key, .missing) }
        return value
    }

    func strings(_ key: String) throws -> [String]? {
        try decode([String].self, key, expected: "an array of strings")
    }

    /// A token count: a non-negative integer.
    func count(_ key: String) throws -> Int? {
        guard let value = try decode(Int.self, key, expected: "a whole number of tokens") else { return nil }
        guard value >= 0 else { throw failure(key, .negative) }
        return value
    }

    /// A price: a decimal string of USD per million tokens, held as nano-dollars.
    func price(_ key: String) throws -> Nanodollars? {
        guard let text = try decode(String.self, key, expected: "a decimal string such as \"0.15\"") else {
            return nil
        }
        guard let amount = Nanodollars(decimalString: text) else { throw failure(key, .notADecimal(text)) }
        guard amount >= .zero else { throw failure(key, .negative) }
        return amount
    }

    func rates() throws -> ModelPrice.Rates {
        ModelPrice.Rates(
            input: try required(price("input_per_mtok"), "input_per_mtok"),
            cachedInput: try price("cached_input_per_mtok"),
            cacheWrite: try price("cache_write_per_mtok"),
            cacheWrite1h: try price("cache_write_1h_per_mtok"),
            output: try required(price("output_per_mtok"), "output_per_mtok"))
    }

    /// The object in field `key`, or nil when it is absent or null.
    func object(_ key: String, known: Set<String>) throws -> FieldReader? {
        guard try isGiven(key) else { return nil }
        let inner: KeyedDecodingContainer<AnyKey>
        do {
            inner = try fields.nestedContainer(keyedBy: AnyKey.self, forKey: AnyKey(key))
        } catch {
            throw failure(key, .wrongType(expected: "an object or null"))
        }
        return try FieldReader(fields: inner, entry: entry, path: path + key + ".", known: known)
    }
}
