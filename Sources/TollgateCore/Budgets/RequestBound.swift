/// How much a request may cost at most, worked out from the request alone before it is forwarded: what
/// budgets reserve and rate limits count.
///
/// The `strict` prompt bound rests on byte-level tokenizers (GPT, Claude, Llama): a token always covers at
/// least one byte of text, so the body's size bounds its text and its JSON syntax more than covers the
/// per-message tokens. Media parts are the exception — a short URL can stand for an image of thousands of
/// tokens — so each gets a fixed allowance. The `estimate` bound uses about four bytes per token.
public struct RequestBound: Sendable, Hashable {
    /// Tokens a media part (image, audio, file) may cost at most: a large image on a model that bills
    /// images at a multiple (gpt-4o-mini) can reach tens of thousands.
    public static let mediaTokensUpper = 50_000
    public static let mediaTokensEstimate = 1_500
    public static let bytesPerTokenEstimate = 4

    public var promptTokensUpper: Int
    public var promptTokensEstimate: Int
    public var outputTokens: Int

    /// - Parameters:
    ///   - bodyBytes: the whole request body (everything that can become prompt tokens is inside it).
    ///   - promptBytes: the prompt itself (messages, input), for the estimate.
    ///   - outputTokens: the request's output limit, else the model's.
    public init(bodyBytes: Int, promptBytes: Int, mediaParts: Int, outputTokens: Int) {
        promptTokensUpper = bodyBytes + mediaParts * Self.mediaTokensUpper
        promptTokensEstimate = (promptBytes + Self.bytesPerTokenEstimate - 1) / Self.bytesPerTokenEstimate
            + mediaParts * Self.mediaTokensEstimate
        self.outputTokens = outputTokens
    }

    /// The most the request can cost at `price`: every prompt token at the dearest input rate (a cache
    /// write, where the model charges more for it than for plain input).
    public func worstCase(_ price: ModelPrice) -> BudgetCharge {
        let plain = price.cost(of: Usage(inputTokens: promptTokensUpper, outputTokens: outputTokens))
        let written = price.cost(of: Usage(cacheWriteTokens: promptTokensUpper, outputTokens: outputTokens))
        return BudgetCharge(usd: max(plain, written), tokens: promptTokensUpper + outputTokens)
    }

    public func estimate(_ price: ModelPrice) -> BudgetCharge {
        let usage = Usage(inputTokens: promptTokensEstimate, outputTokens: outputTokens)
        return BudgetCharge(usd: price.cost(of: usage), tokens: usage.inputTokens + usage.outputTokens)
    }
}
