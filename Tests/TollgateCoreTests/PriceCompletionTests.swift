import Testing
@testable import TollgateCore

/// A price from config that leaves rates out is completed at start: from the catalogue's entry for the model
/// served, else by the provider's published rule, else refused. Never the plain input rate for cache writes.
@Suite("Price completion: rates a configured price leaves out follow the catalogue, then the provider")
struct PriceCompletionTests {
    static func usd(_ text: String) -> Nanodollars { Nanodollars(decimalString: text)! }

    /// Anthropic's `input 3.00, cached 0.30, output 15.00`, with no cache-write rate.
    static let override = ModelPrice(rates: .init(input: usd("3"), cachedInput: usd("0.30"), output: usd("15")))

    @Test("Anthropic without a catalogue entry: writes at 1.25× input for five minutes and 2× for an hour")
    func anthropicRule() throws {
        let price = try Self.override.completed(catalogue: nil, billing: .anthropic)
        #expect(price.rates.cacheWrite == Self.usd("3.75"))
        #expect(price.rates.cacheWrite1h == Self.usd("6"))
        #expect(price.rates.cachedInput == Self.usd("0.30"))
        // 40 five-minute writes at $3.75 and 30 one-hour writes at $6 per million: 150,000 + 180,000 nano-dollars.
        let usage = Usage(cacheWriteTokens: 70, cacheWrite1hTokens: 30)
        #expect(price.cost(of: usage) == Nanodollars(40 * 3_750 + 30 * 6_000))
        // Not the input rate, as before: 40 writes would have cost 120,000.
        #expect(price.cost(of: Usage(cacheWriteTokens: 40)) == Nanodollars(150_000))
    }

    @Test("Anthropic with nothing but input and output: cache reads at 0.1× input")
    func anthropicReads() throws {
        let bare = ModelPrice(rates: .init(input: Self.usd("0.80"), output: Self.usd("4")))
        let price = try bare.completed(catalogue: nil, billing: .anthropic)
        #expect(price.rates.cachedInput == Self.usd("0.08"))
        #expect(price.rates.cacheWrite == Self.usd("1"))
        #expect(price.rates.cacheWrite1h == Self.usd("1.60"))
    }

    @Test("a rate left out comes from the catalogue entry when it has one, before any rule")
    func fromCatalogue() throws {
        let catalogue = ModelPrice(rates: .init(input: Self.usd("1"), cachedInput: Self.usd("0.10"), cacheWrite: Self.usd("1.25"),
                                                cacheWrite1h: Self.usd("2"), output: Self.usd("5")))
        let bare = ModelPrice(rates: .init(input: Self.usd("0.80"), output: Self.usd("4")))
        let price = try bare.completed(catalogue: catalogue, billing: .anthropic)
        #expect(price.rates == .init(input: Self.usd("0.80"), cachedInput: Self.usd("0.10"), cacheWrite: Self.usd("1.25"),
                                     cacheWrite1h: Self.usd("2"), output: Self.usd("4")))
    }

    @Test("rates the price gives are kept as given")
    func givenRatesKept() throws {
        let given = ModelPrice(rates: .init(input: Self.usd("3"), cachedInput: Self.usd("0.25"), cacheWrite: Self.usd("3.50"),
                                            cacheWrite1h: Self.usd("5.5"), output: Self.usd("15")))
        #expect(try given.completed(catalogue: nil, billing: .anthropic) == given)
        #expect(try ModelPrice.free.completed(catalogue: nil, billing: .openAI) == .free)
    }

    @Test("OpenAI: a cached-input rate neither given nor catalogued stops the start, naming the key")
    func openAIRefused() throws {
        let bare = ModelPrice(rates: .init(input: Self.usd("1"), output: Self.usd("2")))
        #expect(throws: MissingRate(field: "cached_input_per_mtok")) { try bare.completed(catalogue: nil, billing: .openAI) }
        let catalogue = ModelPrice(rates: .init(input: Self.usd("2.50"), cachedInput: Self.usd("1.25"), output: Self.usd("10")))
        #expect(try bare.completed(catalogue: catalogue, billing: .openAI).rates.cachedInput == Self.usd("1.25"))
    }

    @Test("an operator-priced server bills cache reads at its input rate unless told otherwise")
    func operatorPriced() throws {
        let bare = ModelPrice(rates: .init(input: Self.usd("0.20"), output: Self.usd("0.60")))
        #expect(try bare.completed(catalogue: nil, billing: .operatorPriced).rates.cachedInput == Self.usd("0.20"))
    }

    @Test("a long-context tier is completed from the catalogue's tier, else by the rule")
    func longContext() throws {
        let tier = ModelPrice.LongContextTier(thresholdTokens: 200_000, rates: .init(input: Self.usd("6"), output: Self.usd("22.50")))
        let price = try ModelPrice(rates: Self.override.rates, longContext: tier).completed(catalogue: nil, billing: .anthropic)
        #expect(price.longContext?.rates.cacheWrite == Self.usd("7.50"))
        #expect(price.longContext?.rates.cacheWrite1h == Self.usd("12"))
        #expect(price.longContext?.rates.cachedInput == Self.usd("0.60"))
    }

    @Test("one-hour writes are a part of the writes, never more than all of them")
    func hourWritesArePart() {
        #expect(Usage(cacheWriteTokens: 10, cacheWrite1hTokens: 25).cacheWrite1hTokens == 10)
        let price = ModelPrice(rates: .init(input: Self.usd("1"), cacheWrite: Self.usd("1.25"), output: Self.usd("1")))
        // No one-hour rate at all: one-hour writes bill as writes.
        #expect(price.cost(of: Usage(cacheWriteTokens: 8, cacheWrite1hTokens: 8)) == Nanodollars(10_000))
    }
}
