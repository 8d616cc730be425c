import Foundation
import Testing
@testable import TollgateCore

@Suite("Price catalogue: decimal prices per million tokens, with their source and date")
struct PriceCatalogTests {
    static func catalogue(_ entries: String...) -> [UInt8] {
        Array(#"{"models": ["#.utf8) + Array(entries.joined(separator: ",").utf8) + Array("]}".utf8)
    }

    static func parseError(_ json: [UInt8]) -> PriceCatalogError? {
        do {
            _ = try PriceCatalog.parse(json: json)
            return nil
        } catch {
            return error
        }
    }

    static func dollars(_ text: String) -> Nanodollars { Nanodollars(decimalString: text)! }

    static let miniJSON = """
        {"name": "gpt-4o-mini", "provider": "openai", "input_per_mtok": "0.15", "cached_input_per_mtok": "0.075",
         "output_per_mtok": "0.60", "cache_write_per_mtok": null, "long_context": null,
         "context_window": 128000, "max_output_tokens": 16384, "tier": "small",
         "capabilities": ["tools", "vision", "json"],
         "source": "https://openai.com/api/pricing", "checked": "2025-06-01"}
        """
    static let gpt4oJSON = """
        {"name": "gpt-4o", "provider": "openai", "input_per_mtok": "2.50", "output_per_mtok": "10",
         "source": "https://openai.com/api/pricing", "checked": "2025-06-01"}
        """
    static let sonnetJSON = """
        {"name": "claude-sonnet-4-5", "provider": "anthropic", "input_per_mtok": "3",
         "cached_input_per_mtok": "0.30", "cache_write_per_mtok": "3.75", "output_per_mtok": "15",
         "long_context": {"threshold_tokens": 200000, "input_per_mtok": "6", "cached_input_per_mtok": "0.60",
                          "cache_write_per_mtok": "7.50", "output_per_mtok": "22.50"},
         "tier": "large", "aliases": ["claude-sonnet-4-5-latest"],
         "source": "https://docs.claude.com/en/docs/about-claude/pricing", "checked": "2025-11-24"}
        """

    static func small() throws -> PriceCatalog {
        try PriceCatalog.parse(json: catalogue(miniJSON, gpt4oJSON, sonnetJSON))
    }

    // MARK: Reading

    @Test("an inline catalogue is read with every price exact, in nano-dollars per million tokens")
    func parsesInlineCatalogue() throws {
        let catalog = try Self.small()
        #expect(catalog.entries.map(\.name) == ["gpt-4o-mini", "gpt-4o", "claude-sonnet-4-5"])

        let mini = try #require(catalog.entry(for: "gpt-4o-mini"))
        #expect(mini.provider == "openai")
        #expect(mini.price == ModelPrice(rates: .init(input: Nanodollars(150_000_000),
                                                      cachedInput: Nanodollars(75_000_000),
                                                      output: Nanodollars(600_000_000))))
        #expect(mini.contextWindow == 128_000)
        #expect(mini.maxOutputTokens == 16_384)
        #expect(mini.tier == .small)
        #expect(mini.capabilities == ["tools", "vision", "json"])
        #expect(mini.source == "https://openai.com/api/pricing")
        #expect(mini.checked == "2025-06-01")
        #expect(mini.aliases.isEmpty)
    }

    @Test("optional fields may be absent or null")
    func optionalFields() throws {
        let gpt4o = try #require(try Self.small().entry(for: "gpt-4o"))
        #expect(gpt4o.price.rates.cachedInput == nil)
        #expect(gpt4o.price.rates.cacheWrite == nil)
        #expect(gpt4o.price.longContext == nil)
        #expect(gpt4o.contextWindow == nil)
        #expect(gpt4o.maxOutputTokens == nil)
        #expect(gpt4o.tier == nil)
        #expect(gpt4o.capabilities.isEmpty)
    }

    @Test("a long-context tier is read with its threshold and its own rates")
    func longContext() throws {
        let sonnet = try #require(try Self.small().entry(for: "claude-sonnet-4-5"))
        #expect(sonnet.price.rates == .init(input: Self.dollars("3"), cachedInput: Self.dollars("0.30"),
                                            cacheWrite: Self.dollars("3.75"), output: Self.dollars("15")))
        #expect(sonnet.price.longContext == .init(
            thresholdTokens: 200_000,
            rates: .init(input: Self.dollars("6"), cachedInput: Self.dollars("0.60"),
                         cacheWrite: Self.dollars("7.50"), output: Self.dollars("22.50"))))
    }

    @Test("tiers are ordered small < medium < large")
    func tierOrder() {
        #expect(ModelTier.small < .medium)
        #expect(ModelTier.medium < .large)
        #expect(ModelTier.allCases.sorted() == [.small, .medium, .large])
        #expect(ModelTier.allCases.max() == .large)
    }

    // MARK: Lookup

    @Test("a dated snapshot finds its undated entry", arguments: [
        ("gpt-4o", "gpt-4o"),
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
        ("claude-sonnet-4-5-latest", "claude-sonnet-4-5"),
    ])
    func datedSnapshot(requested: String, found: String) throws {
        #expect(try Self.small().entry(for: requested)?.name == found)
    }

    @Test("names are matched whole: no prefixes, no guessing, no impossible dates", arguments: [
        "gpt-4", "gpt-4o-m", "gpt-4o-mini-high", "GPT-4O", "gpt-4o-2024-13-01", "gpt-4o-20241301",
        "gpt-4o-2024-08", "gpt-4o-240806", "gpt-4o2024-08-06", "-2024-08-06", "claude-sonnet-4-5@20250929", "",
    ])
    func noFuzzyMatch(requested: String) throws {
        #expect(try Self.small().entry(for: requested) == nil)
    }

    @Test("an entry of its own for a dated snapshot wins over the undated one")
    func datedEntryWins() throws {
        let dated = """
            {"name": "gpt-4o-2024-05-13", "provider": "openai", "input_per_mtok": "5", "output_per_mtok": "15",
             "source": "https://openai.com/api/pricing", "checked": "2025-06-01"}
            """
        let catalog = try PriceCatalog.parse(json: Self.catalogue(Self.gpt4oJSON, dated))
        #expect(catalog.entry(for: "gpt-4o-2024-05-13")?.price.rates.input == Self.dollars("5"))
        #expect(catalog.entry(for: "gpt-4o-2024-08-06")?.price.rates.input == Self.dollars("2.50"))
    }

    @Test("undated names strip exactly one trailing date", arguments: [
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("claude-3-5-haiku-20241022", "claude-3-5-haiku"),
        ("o3-mini-2025-01-31", "o3-mini"),
        ("gpt-4o", nil),
        ("gpt-4o-2024-08-06-2024-08-06", "gpt-4o-2024-08-06"),
    ] as [(String, String?)])
    func undatedName(model: String, undated: String?) {
        #expect(PriceCatalog.undatedName(of: model) == undated)
    }

    // MARK: Refusals

    @Test("a bad field is refused with the entry and the field named", arguments: [
        // (the entry's fields after its name, entry, field, problem)
        (#""input_per_mtok": 0.15, "output_per_mtok": "1""#, "m", "input_per_mtok",
         PriceCatalogError.Problem.wrongType(expected: #"a decimal string such as "0.15""#)),
        (#""input_per_mtok": "1e3", "output_per_mtok": "1""#, "m", "input_per_mtok", .notADecimal("1e3")),
        (#""input_per_mtok": "0.0000000001", "output_per_mtok": "1""#, "m", "input_per_mtok",
         .notADecimal("0.0000000001")),
        (#""input_per_mtok": "", "output_per_mtok": "1""#, "m", "input_per_mtok", .notADecimal("")),
        (#""input_per_mtok": "-1", "output_per_mtok": "1""#, "m", "input_per_mtok", .negative),
        (#""input_per_mtok": "1""#, "m", "output_per_mtok", .missing),
        (#""input_per_mtok": "1", "output_per_mtok": null"#, "m", "output_per_mtok", .missing),
        (#""input_per_mtok": "1", "output_per_mtok": "1", "cached_input_per_mtok": 0.5"#, "m",
         "cached_input_per_mtok", .wrongType(expected: #"a decimal string such as "0.15""#)),
        (#""input_per_mtok": "1", "output_per_mtok": "1", "long_context": {"threshold_tokens": 200000, "input_per_mtok": "2", "output_per_mtok": 3}"#,
         "m", "long_context.output_per_mtok", .wrongType(expected: #"a decimal string such as "0.15""#)),
        (#""input_per_mtok": "1", "output_per_mtok": "1", "long_context": {"input_per_mtok": "2", "output_per_mtok": "3"}"#,
         "m", "long_context.threshold_tokens", .missing),
        (#""input_per_mtok": "1", "output_per_mtok": "1", "long_context": {"threshold_tokens": 1, "input_per_mtok": "2", "output_per_mtok": "3", "output": "4"}"#,
         "m", "long_context.output", .unknownField),
        (#""input_per_mtok": "1", "output_per_mtok": "1", "long_context": "200k""#, "m", "long_context",
         .wrongType(expected: "an object or null")),
        (#""input_per_mtok": "1", "output_per_mtok": "1", "output_per_mtoks": "2""#, "m", "output_per_mtoks",
         .unknownField),
        (#""input_per_mtok": "1", "output_per_mtok": "1", "tier": "huge""#, "m", "tier", .unknownTier("huge")),
        (#""input_per_mtok": "1", "output_per_mtok": "1", "context_window": "128000""#, "m", "context_window",
         .wrongType(expected: "a whole number of tokens")),
        (#""input_per_mtok": "1", "output_per_mtok": "1", "max_output_tokens": 1.5"#, "m", "max_output_tokens",
         .wrongType(expected: "a whole number of tokens")),
        (#""input_per_mtok": "1", "output_per_mtok": "1", "max_output_tokens": -1"#, "m", "max_output_tokens",
         .negative),
        (#""input_per_mtok": "1", "output_per_mtok": "1", "capabilities": "tools""#, "m", "capabilities",
         .wrongType(expected: "an array of strings")),
    ] as [(String, String, String, PriceCatalogError.Problem)])
    func fieldErrors(fields: String, entry: String, field: String, problem: PriceCatalogError.Problem) throws {
        let json = Self.catalogue(#"{"name": "m", "provider": "p", "source": "s", "checked": "2025-01-01", "#
                                  + fields + "}")
        let error = try #require(Self.parseError(json))
        #expect(error == PriceCatalogError(entry: entry, field: field, problem: problem))
        #expect(error.description.contains(#"entry "\#(entry)""#))
        #expect(error.description.contains(#"field "\#(field)""#))
    }

    @Test("source, provider and the checked date are required", arguments: [
        (#"{"name": "m", "provider": "p", "input_per_mtok": "1", "output_per_mtok": "1", "checked": "2025-01-01"}"#,
         "source", PriceCatalogError.Problem.missing),
        (#"{"name": "m", "provider": "p", "input_per_mtok": "1", "output_per_mtok": "1", "source": "", "checked": "2025-01-01"}"#,
         "source", .missing),
        (#"{"name": "m", "input_per_mtok": "1", "output_per_mtok": "1", "source": "s", "checked": "2025-01-01"}"#,
         "provider", .missing),
        (#"{"name": "m", "provider": "p", "input_per_mtok": "1", "output_per_mtok": "1", "source": "s"}"#,
         "checked", .missing),
        (#"{"name": "m", "provider": "p", "input_per_mtok": "1", "output_per_mtok": "1", "source": "s", "checked": "2025-1-1"}"#,
         "checked", .notADate("2025-1-1")),
        (#"{"name": "m", "provider": "p", "input_per_mtok": "1", "output_per_mtok": "1", "source": "s", "checked": "2025-13-01"}"#,
         "checked", .notADate("2025-13-01")),
        (#"{"name": "m", "provider": "p", "input_per_mtok": "1", "output_per_mtok": "1", "source": "s", "checked": "June 2025"}"#,
         "checked", .notADate("June 2025")),
    ] as [(String, String, PriceCatalogError.Problem)])
    func requiredFields(entryJSON: String, field: String, problem: PriceCatalogError.Problem) {
        #expect(Self.parseError(Self.catalogue(entryJSON)) == PriceCatalogError(entry: "m", field: field,
                                                                                problem: problem))
    }

    @Test("an entry without a name is named by its position")
    func unnamedEntry() {
        let json = Self.catalogue(Self.gpt4oJSON, #"{"provider": "p", "input_per_mtok": "1"}"#)
        #expect(Self.parseError(json) == PriceCatalogError(entry: "models[1]", field: "name", problem: .missing))
        #expect(Self.parseError(Self.catalogue(Self.gpt4oJSON, "42"))
                == PriceCatalogError(entry: "models[1]", problem: .wrongType(expected: "an object")))
    }

    @Test("a name or alias listed twice is refused")
    func duplicates() {
        #expect(Self.parseError(Self.catalogue(Self.gpt4oJSON, Self.gpt4oJSON))
                == PriceCatalogError(entry: "gpt-4o", field: "name", problem: .duplicate("gpt-4o")))
        let aliasClash = Self.sonnetJSON.replacingOccurrences(of: "claude-sonnet-4-5-latest", with: "gpt-4o")
        #expect(Self.parseError(Self.catalogue(Self.gpt4oJSON, aliasClash))
                == PriceCatalogError(entry: "claude-sonnet-4-5", field: "aliases", problem: .duplicate("gpt-4o")))
    }

    @Test("the document must be JSON with a models array", arguments: [
        ("{\"models\": [", PriceCatalogError(problem: .notJSON)),
        ("", PriceCatalogError(problem: .notJSON)),
        ("[]", PriceCatalogError(problem: .wrongType(expected: "an object"))),
        ("{}", PriceCatalogError(field: "models", problem: .missing)),
        ("{\"models\": {}}", PriceCatalogError(field: "models", problem: .wrongType(expected: "an array of entries"))),
        ("{\"models\": [], \"version\": 2}", PriceCatalogError(field: "version", problem: .unknownField)),
    ])
    func documentErrors(json: String, error: PriceCatalogError) {
        #expect(Self.parseError(Array(json.utf8)) == error)
    }

    @Test("an empty catalogue is valid and knows no model")
    func emptyCatalogue() throws {
        let catalog = try PriceCatalog.parse(json: Array(#"{"models": []}"#.utf8))
        #expect(catalog.entries.isEmpty)
        #expect(catalog.entry(for: "gpt-4o") == nil)
    }

    // MARK: The catalogue shipped with Tollgate

    /// `Sources/TollgateServer/Resources/prices.json` of the package these tests belong to, found by walking up
    /// from this file (through a symlinked test folder too).
    static func shippedCatalogueURL() throws -> URL {
        let file = URL(fileURLWithPath: #filePath)
        for start in [file, file.resolvingSymlinksInPath()] {
            var directory = start.deletingLastPathComponent()
            while directory.path != "/" {
                let candidate = directory.appendingPathComponent("Sources/TollgateServer/Resources/prices.json")
                if FileManager.default.fileExists(atPath: directory.appendingPathComponent("Package.swift").path),
                   FileManager.default.fileExists(atPath: candidate.path) {
                    return candidate
                }
                directory = directory.deletingLastPathComponent()
            }
        }
        throw CocoaError(.fileNoSuchFile, userInfo: [NSFilePathErrorKey: "Sources/TollgateServer/Resources/prices.json"])
    }

    static func shipped() throws -> PriceCatalog {
        try PriceCatalog.parse(json: Array(try Data(contentsOf: shippedCatalogueURL())))
    }

    @Test("the shipped prices.json parses")
    func shippedParses() throws {
        #expect(try Self.shipped().entries.count > 20)
    }

    @Test("every shipped entry names its source and the date its price was checked")
    func shippedSources() throws {
        for entry in try Self.shipped().entries {
            #expect(entry.checked.count == 10, "\(entry.name)")
            #expect(entry.checked >= "2024-01-01", "\(entry.name): \(entry.checked)")
            if entry.provider == "demo" {
                #expect(entry.source == "simulated (tollgate demo provider)", "\(entry.name)")
            } else {
                #expect(entry.source.hasPrefix("https://"), "\(entry.name): \(entry.source)")
            }
        }
    }

    @Test("no shipped model is priced at zero by accident")
    func shippedNothingFree() throws {
        for entry in try Self.shipped().entries {
            let isEmbedding = entry.capabilities.contains("embeddings")
            #expect(!entry.price.isFree, "\(entry.name)")
            #expect(entry.price.rates.input > .zero, "\(entry.name)")
            if isEmbedding {
                #expect(entry.price.rates.output == .zero, "\(entry.name)")
            } else {
                #expect(entry.price.rates.output > .zero, "\(entry.name)")
                #expect(entry.tier != nil, "\(entry.name)")
            }
            for rate in [entry.price.rates.cachedInput, entry.price.rates.cacheWrite].compactMap({ $0 }) {
                #expect(rate > .zero, "\(entry.name)")
            }
            if let tier = entry.price.longContext {
                #expect(tier.rates.input > entry.price.rates.input, "\(entry.name)")
                #expect(tier.rates.output > entry.price.rates.output, "\(entry.name)")
            }
        }
    }

    @Test("the shipped catalogue covers the models users ask for first", arguments: [
        "gpt-5", "gpt-5-mini", "gpt-5-nano", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "gpt-4o", "gpt-4o-mini",
        "o3", "o4-mini", "o3-mini", "text-embedding-3-small", "text-embedding-3-large", "text-embedding-ada-002",
        "claude-opus-4-5", "claude-opus-4-1", "claude-sonnet-4-5", "claude-sonnet-4", "claude-haiku-4-5",
        "claude-3-5-haiku", "gemini-2.5-pro", "gemini-2.5-flash", "gemini-2.5-flash-lite", "demo-small",
        "demo-large",
        // as the providers' responses name them
        "gpt-4o-mini-2024-07-18", "claude-sonnet-4-5-20250929", "claude-3-5-haiku-20241022",
    ])
    func shippedCoverage(model: String) throws {
        #expect(try Self.shipped().entry(for: model) != nil)
    }

    @Test("shipped Anthropic prices: 5-minute cache writes at 1.25× input, reads at 0.1×")
    func shippedAnthropicCacheRates() throws {
        let anthropic = try Self.shipped().entries.filter { $0.provider == "anthropic" }
        #expect(anthropic.count >= 6)
        for entry in anthropic {
            for rates in [entry.price.rates] + [entry.price.longContext?.rates].compactMap({ $0 }) {
                let input = rates.input.value
                #expect(rates.cacheWrite.map { $0.value * 4 } == input * 5, "\(entry.name)")
                #expect(rates.cachedInput.map { $0.value * 10 } == input, "\(entry.name)")
            }
        }
    }

    @Test("shipped long-context tiers start above 200k prompt tokens")
    func shippedLongContext() throws {
        let catalog = try Self.shipped()
        for name in ["claude-sonnet-4-5", "gemini-2.5-pro"] {
            #expect(catalog.entry(for: name)?.price.longContext?.thresholdTokens == 200_000, "\(name)")
        }
    }

    @Test("the demo models are priced like the models they imitate")
    func shippedDemoModels() throws {
        let catalog = try Self.shipped()
        let small = try #require(catalog.entry(for: "demo-small"))
        let large = try #require(catalog.entry(for: "demo-large"))
        #expect(small.tier == .small)
        #expect(large.tier == .large)
        #expect(small.price.rates.cachedInput != nil)
        #expect(small.price == catalog.entry(for: "gpt-4o-mini")?.price)
        #expect(large.price == catalog.entry(for: "gpt-4o")?.price)
    }
}
