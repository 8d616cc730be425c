/// Tokens a request consumed, in one convention: every field counts a disjoint set of tokens, so the
/// provider's own convention is translated once, at the edge (see `openAI(…)`), and never again.
public struct Usage: Hashable, Sendable {
    /// Input tokens billed at the plain input rate (cache reads and writes excluded).
    public var inputTokens: Int
    /// Input tokens read from the provider's prompt cache.
    public var cachedInputTokens: Int
    /// Input tokens written to the provider's prompt cache, for any lifetime.
    public var cacheWriteTokens: Int
    /// The part of `cacheWriteTokens` written for an hour rather than five minutes (Anthropic's
    /// `cache_creation.ephemeral_1h_input_tokens`), billed at its own, higher rate.
    public var cacheWrite1hTokens: Int
    /// All output tokens, reasoning included.
    public var outputTokens: Int
    /// The part of `outputTokens` spent on reasoning (informational: already inside `outputTokens`).
    public var reasoningTokens: Int

    public init(inputTokens: Int = 0, cachedInputTokens: Int = 0, cacheWriteTokens: Int = 0, cacheWrite1hTokens: Int = 0,
                outputTokens: Int = 0, reasoningTokens: Int = 0) {
        self.inputTokens = inputTokens
        self.cachedInputTokens = cachedInputTokens
        self.cacheWriteTokens = cacheWriteTokens
        self.cacheWrite1hTokens = min(max(cacheWrite1hTokens, 0), max(cacheWriteTokens, 0))
        self.outputTokens = outputTokens
        self.reasoningTokens = reasoningTokens
    }

    /// OpenAI's convention: `prompt_tokens` includes `prompt_tokens_details.cached_tokens`, and
    /// `completion_tokens` includes `completion_tokens_details.reasoning_tokens`.
    public static func openAI(promptTokens: Int, cachedTokens: Int = 0, completionTokens: Int,
                              reasoningTokens: Int = 0) -> Usage {
        let cached = min(max(cachedTokens, 0), max(promptTokens, 0))
        return Usage(inputTokens: max(promptTokens, 0) - cached, cachedInputTokens: cached,
                     outputTokens: max(completionTokens, 0), reasoningTokens: max(reasoningTokens, 0))
    }

    /// Every prompt token, whatever its cache state: what a long-context tier is chosen by. Saturates, so
    /// that absurd counts reported by an upstream cannot trap the process.
    public var totalPromptTokens: Int {
        let (partial, overflow1) = inputTokens.addingReportingOverflow(cachedInputTokens)
        let (total, overflow2) = partial.addingReportingOverflow(cacheWriteTokens)
        return overflow1 || overflow2 ? .max : total
    }
}
