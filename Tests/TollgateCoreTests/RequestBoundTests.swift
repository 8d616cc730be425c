import Testing
@testable import TollgateCore

@Suite("Request bounds: the most a request can cost, from the request alone")
struct RequestBoundTests {
    static let price = ModelPrice(rates: .init(input: Nanodollars(2_500_000_000), cachedInput: Nanodollars(1_250_000_000),
                                               cacheWrite: Nanodollars(3_125_000_000), output: Nanodollars(10_000_000_000)))

    @Test("the strict prompt bound is the body's bytes plus an allowance per media part")
    func strictBound() {
        let bound = RequestBound(bodyBytes: 4_000, promptBytes: 3_600, mediaParts: 2, outputTokens: 500)
        #expect(bound.promptTokensUpper == 4_000 + 2 * RequestBound.mediaTokensUpper)
        #expect(bound.promptTokensEstimate == 900 + 2 * RequestBound.mediaTokensEstimate)
    }

    @Test("the worst case prices every prompt token at the dearest input rate, and the output limit as output")
    func worstCase() {
        let bound = RequestBound(bodyBytes: 1_000, promptBytes: 800, mediaParts: 0, outputTokens: 100)
        // 1,000 tokens at the $3.125/M cache-write rate ($0.003125) + 100 at $10/M ($0.001).
        #expect(bound.worstCase(Self.price) == BudgetCharge(usd: Nanodollars(3_125_000 + 1_000_000), tokens: 1_100))
        // The estimate: 200 tokens at the $2.50/M input rate ($0.0005) + the same output.
        #expect(bound.estimate(Self.price) == BudgetCharge(usd: Nanodollars(500_000 + 1_000_000), tokens: 300))
    }

    @Test("a byte-level tokenizer never produces more tokens than bytes, so real usage stays under the strict bound")
    func usageUnderBound() {
        let body = #"{"model":"m","messages":[{"role":"user","content":"héllo wörld, ça va ? 你好"}]}"#
        let bound = RequestBound(bodyBytes: body.utf8.count, promptBytes: body.utf8.count, mediaParts: 0, outputTokens: 0)
        // Even one token per Unicode scalar of the content plus four per message stays below the bytes.
        let content = "héllo wörld, ça va ? 你好"
        #expect(content.unicodeScalars.count + 4 < bound.promptTokensUpper)
    }
}
