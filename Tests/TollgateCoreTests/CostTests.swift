import Foundation
import Testing
@testable import TollgateCore

/// Cost of a request from the provider's own `usage` object. Every expected value is worked out by hand:
/// Σ tokens × (nano-dollars per million tokens) ÷ 10⁶, rounded half up once.
@Suite("Cost: what a request's usage bills")
struct CostTests {
    // MARK: Provider payloads, decoded as the provider sends them

    /// OpenAI's chat `usage`: `prompt_tokens` includes the cached tokens and `completion_tokens` includes the
    /// reasoning tokens. Gemini's OpenAI-compatible endpoint reports the same shape.
    struct OpenAIUsage: Decodable {
        struct PromptDetails: Decodable { var cached_tokens: Int? }
        struct CompletionDetails: Decodable { var reasoning_tokens: Int? }
        var prompt_tokens: Int
        var completion_tokens: Int
        var prompt_tokens_details: PromptDetails?
        var completion_tokens_details: CompletionDetails?

        var usage: Usage {
            .openAI(promptTokens: prompt_tokens, cachedTokens: prompt_tokens_details?.cached_tokens ?? 0,
                    completionTokens: completion_tokens,
                    reasoningTokens: completion_tokens_details?.reasoning_tokens ?? 0)
        }
    }

    /// Anthropic's messages `usage`: `input_tokens` excludes cache reads and cache writes, so each field
    /// is already a disjoint count.
    struct AnthropicUsage: Decodable {
        var input_tokens: Int
        var cache_creation_input_tokens: Int?
        var cache_read_input_tokens: Int?
        var output_tokens: Int

        var usage: Usage {
            Usage(inputTokens: input_tokens, cachedInputTokens: cache_read_input_tokens ?? 0,
                  cacheWriteTokens: cache_creation_input_tokens ?? 0, outputTokens: output_tokens)
        }
    }

    static func openAI(_ json: String) throws -> Usage {
        try JSONDecoder().decode(OpenAIUsage.self, from: Data(json.utf8)).usage
    }

    static func anthropic(_ json: String) throws -> Usage {
        try JSONDecoder().decode(AnthropicUsage.self, from: Data(json.utf8)).usage
    }

    static func dollars(_ text: String) -> Nanodollars { Nanodollars(decimalString: text)! }

    static func rates(input: String, cached: String? = nil, write: String? = nil, output: String) -> ModelPrice.Rates {
        ModelPrice.Rates(input: dollars(input), cachedInput: cached.map(dollars), cacheWrite: write.map(dollars),
                         output: dollars(output))
    }

    // MARK: List prices used below (USD per million tokens)

    static let gpt4oMini = ModelPrice(rates: rates(input: "0.15", cached: "0.075", output: "0.60"))
    static let o4Mini = ModelPrice(rates: rates(input: "1.10", cached: "0.275", output: "4.40"))
    static let claudeSonnet45 = ModelPrice(
        rates: rates(input: "3", cached: "0.30", write: "3.75", output: "15"),
        longContext: .init(thresholdTokens: 200_000,
                           rates: rates(input: "6", cached: "0.60", write: "7.50", output: "22.50")))
    static let gemini25Pro = ModelPrice(
        rates: rates(input: "1.25", cached: "0.125", output: "10"),
        longContext: .init(thresholdTokens: 200_000, rates: rates(input: "2.50", cached: "0.25", output: "15")))
    static let claudeOpus41 = ModelPrice(rates: rates(input: "15", cached: "1.50", write: "18.75", output: "75"))

    // MARK: Usage conventions

    @Test("OpenAI: cached tokens are inside prompt_tokens, so only prompt − cached bills at the input rate")
    func openAICachedTokens() throws {
        let usage = try Self.openAI("""
            {"prompt_tokens": 2006, "completion_tokens": 300, "total_tokens": 2306,
             "prompt_tokens_details": {"cached_tokens": 1920, "audio_tokens": 0},
             "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                           "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}
            """)
        #expect(usage == Usage(inputTokens: 86, cachedInputTokens: 1920, outputTokens: 300))
        // 86 × 150_000_000 + 1920 × 75_000_000 + 300 × 600_000_000 = 336_900_000_000 → ÷10⁶
        // (billing all 2006 prompt tokens as input and the 1920 again as cached would give 624_900)
        #expect(Self.gpt4oMini.cost(of: usage) == Nanodollars(336_900))
    }

    @Test("OpenAI: a usage object without details bills every prompt token as input")
    func openAIWithoutDetails() throws {
        let usage = try Self.openAI(#"{"prompt_tokens": 1000, "completion_tokens": 100, "total_tokens": 1100}"#)
        // 1000 × 150_000_000 + 100 × 600_000_000 = 210_000_000_000
        #expect(Self.gpt4oMini.cost(of: usage) == Nanodollars(210_000))
    }

    @Test("reasoning tokens are inside completion_tokens and are not billed twice")
    func reasoningTokensBilledOnce() throws {
        let usage = try Self.openAI("""
            {"prompt_tokens": 1200, "completion_tokens": 2500, "total_tokens": 3700,
             "prompt_tokens_details": {"cached_tokens": 0},
             "completion_tokens_details": {"reasoning_tokens": 2048}}
            """)
        #expect(usage.outputTokens == 2500)
        #expect(usage.reasoningTokens == 2048)
        // 1200 × 1_100_000_000 + 2500 × 4_400_000_000 = 12_320_000_000_000
        // (adding the 2048 reasoning tokens again would add 9_011_200)
        #expect(Self.o4Mini.cost(of: usage) == Nanodollars(12_320_000))
    }

    @Test("Anthropic: cache reads and cache writes come on top of input_tokens, each at its own rate")
    func anthropicCacheReadAndWrite() throws {
        let usage = try Self.anthropic("""
            {"input_tokens": 50, "cache_creation_input_tokens": 2000, "cache_read_input_tokens": 30000,
             "output_tokens": 500, "service_tier": "standard"}
            """)
        // 50 × 3_000_000_000 + 2000 × 3_750_000_000 + 30000 × 300_000_000 + 500 × 15_000_000_000
        //   = 150e9 + 7_500e9 + 9_000e9 + 7_500e9 = 24_150_000_000_000
        #expect(Self.claudeSonnet45.cost(of: usage) == Nanodollars(24_150_000))
    }

    @Test("a cache write costs 1.25× input; a model without cache rates bills reads and writes as input")
    func cacheRatesDefaultToInput() {
        let writes = Usage(cacheWriteTokens: 100_000)
        // 100_000 × 3_750_000_000: 1.25 × the 100_000 × 3_000_000_000 the same tokens cost as input
        #expect(Self.claudeSonnet45.cost(of: writes) == Nanodollars(375_000_000))
        let noCacheRates = ModelPrice(rates: Self.rates(input: "0.88", output: "0.88"))
        let usage = Usage(inputTokens: 1_000, cachedInputTokens: 2_000, cacheWriteTokens: 3_000)
        // 6000 × 880_000_000 = 5_280_000_000_000
        #expect(noCacheRates.cost(of: usage) == Nanodollars(5_280_000))
    }

    // MARK: Long-context tier

    @Test("Anthropic: the long-context tier is chosen by the whole prompt, cache reads included",
          arguments: [
              // (uncached input, total prompt, cost): 190_000 cache reads and 1_000 output each time
              (9_999, 101_997_000),   // 199_999: 9_999×3e9 + 190_000×0.3e9 + 1_000×15e9
              (10_000, 102_000_000),  // 200_000 is not above the threshold: still the base rates
              (10_001, 196_506_000),  // 200_001: 10_001×6e9 + 190_000×0.6e9 + 1_000×22.5e9, every token repriced
          ] as [(Int, Int64)])
    func anthropicLongContextTier(inputTokens: Int, expected: Int64) throws {
        let usage = try Self.anthropic("""
            {"input_tokens": \(inputTokens), "cache_creation_input_tokens": 0,
             "cache_read_input_tokens": 190000, "output_tokens": 1000}
            """)
        #expect(Self.claudeSonnet45.cost(of: usage) == Nanodollars(expected))
    }

    @Test("Gemini (OpenAI-compatible): prompt_tokens includes cached tokens and picks the tier",
          arguments: [
              // (prompt_tokens, cost): 150_000 cached and 2_000 completion tokens each time
              (199_999, 101_248_750),  // 49_999×1.25e9 + 150_000×0.125e9 + 2_000×10e9
              (200_000, 101_250_000),  // 50_000×1.25e9 + 150_000×0.125e9 + 2_000×10e9
              (200_001, 192_502_500),  // 50_001×2.5e9 + 150_000×0.25e9 + 2_000×15e9
          ] as [(Int, Int64)])
    func geminiLongContextTier(promptTokens: Int, expected: Int64) throws {
        let usage = try Self.openAI("""
            {"prompt_tokens": \(promptTokens), "completion_tokens": 2000, "total_tokens": \(promptTokens + 2000),
             "prompt_tokens_details": {"cached_tokens": 150000}}
            """)
        #expect(Self.gemini25Pro.cost(of: usage) == Nanodollars(expected))
    }

    @Test("cache writes count toward the long-context threshold too")
    func cacheWritesCountTowardThreshold() {
        let usage = Usage(inputTokens: 1, cacheWriteTokens: 200_000)
        // 1 × 6e9 + 200_000 × 7.5e9 = 1_500_006_000_000_000
        #expect(Self.claudeSonnet45.cost(of: usage) == Nanodollars(1_500_006_000))
    }

    // MARK: Rounding

    /// With list prices of at most six decimal places every token costs a whole number of nano-dollars;
    /// rounding matters for finer prices, so these use them.
    @Test("the cost is rounded half up once per request, not once per component",
          arguments: [
              // (input rate, output rate, input tokens, output tokens, cost)
              ("0.0005", "0.0005", 1, 1, 1),          // 0.5 + 0.5 = 1.0 → 1 (per component: 1 + 1 = 2)
              ("0.0004", "0.0004", 1, 1, 1),          // 0.4 + 0.4 = 0.8 → 1 (per component: 0 + 0 = 0)
              ("0.00025", "0.00025", 1, 1, 1),        // 0.25 + 0.25 = 0.5 → 1, half rounds up
              ("0.000499999", "0", 1, 0, 0),          // 0.499999 → 0
              ("0.0015", "0.0025", 3, 1, 7),          // 4.5 + 2.5 = 7.0 → 7 (per component: 5 + 3 = 8)
              ("0.000000001", "0.000000001", 499_999, 1, 1),  // 0.499999 + 0.000001 = 0.5 → 1
          ] as [(String, String, Int, Int, Int64)])
    func roundsOncePerRequest(input: String, output: String, inputTokens: Int, outputTokens: Int,
                              expected: Int64) {
        let price = ModelPrice(rates: Self.rates(input: input, output: output))
        #expect(price.cost(of: Usage(inputTokens: inputTokens, outputTokens: outputTokens)) == Nanodollars(expected))
    }

    // MARK: Edges

    @Test("a model explicitly marked free costs zero, whatever it used")
    func freeModel() {
        let usage = Usage(inputTokens: 1_000_000, cachedInputTokens: 5, cacheWriteTokens: 7, outputTokens: 9_999)
        #expect(ModelPrice.free.cost(of: usage) == .zero)
        #expect(ModelPrice.free.isFree)
        #expect(!Self.gpt4oMini.isFree)
    }

    @Test("no usage costs nothing")
    func emptyUsage() {
        #expect(Self.claudeOpus41.cost(of: Usage()) == .zero)
    }

    @Test("large token counts do not overflow")
    func largeCounts() {
        // 2e9 × 15e9 + 2e9 × 75e9 = 1.8e20, past Int64 before the division: $180,000 after it
        let usage = Usage(inputTokens: 2_000_000_000, outputTokens: 2_000_000_000)
        #expect(Self.claudeOpus41.cost(of: usage) == Nanodollars(180_000_000_000_000))
    }

    @Test("an absurd token count saturates at the largest amount instead of trapping")
    func saturates() {
        let usage = Usage(inputTokens: Int.max, cachedInputTokens: Int.max / 2, outputTokens: Int.max)
        #expect(Self.claudeOpus41.cost(of: usage) == Nanodollars(Int64.max))
    }
}
