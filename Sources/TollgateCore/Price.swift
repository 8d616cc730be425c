/// List prices of one model, each in nano-dollars per million tokens.
public struct ModelPrice: Hashable, Sendable {
    public struct Rates: Hashable, Sendable {
        public var input: Nanodollars
        /// Cache reads; `nil` means the model has no discount and bills them as input.
        public var cachedInput: Nanodollars?
        /// Cache writes (five-minute ones where the provider has several lifetimes); `nil` means they bill
        /// as input. A price read from config is completed at start (`completed(…)`), so that a rate left
        /// out follows the provider instead.
        public var cacheWrite: Nanodollars?
        /// One-hour cache writes; `nil` means they bill as `cacheWrite`.
        public var cacheWrite1h: Nanodollars?
        public var output: Nanodollars

        public init(input: Nanodollars, cachedInput: Nanodollars? = nil, cacheWrite: Nanodollars? = nil,
                    cacheWrite1h: Nanodollars? = nil, output: Nanodollars) {
            self.input = input
            self.cachedInput = cachedInput
            self.cacheWrite = cacheWrite
            self.cacheWrite1h = cacheWrite1h
            self.output = output
        }
    }

    /// Above `thresholdTokens` of prompt (cached tokens included), the whole request bills at `rates`.
    public struct LongContextTier: Hashable, Sendable {
        public var thresholdTokens: Int
        public var rates: Rates
        public init(thresholdTokens: Int, rates: Rates) {
            self.thresholdTokens = thresholdTokens
            self.rates = rates
        }
    }

    public var rates: Rates
    public var longContext: LongContextTier?
    /// Explicitly free (a self-hosted model): the only way a model bills zero.
    public var isFree: Bool

    public init(rates: Rates, longContext: LongContextTier? = nil) {
        self.rates = rates
        self.longContext = longContext
        self.isFree = false
    }

    public static let free = ModelPrice(free: ())
    private init(free: Void) {
        rates = Rates(input: .zero, output: .zero)
        longContext = nil
        isFree = true
    }

    /// The rates a request with this many prompt tokens bills at.
    public func rates(forPromptTokens promptTokens: Int) -> Rates {
        if let tier = longContext, promptTokens > tier.thresholdTokens { return tier.rates }
        return rates
    }

    /// What `usage` costs: Σ tokens × rate ÷ 10⁶, rounded half up once per request.
    public func cost(of usage: Usage) -> Nanodollars {
        if isFree { return .zero }
        let r = rates(forPromptTokens: usage.totalPromptTokens)
        var total: Int128 = 0
        total += Int128(usage.inputTokens) * Int128(r.input.value)
        total += Int128(usage.cachedInputTokens) * Int128((r.cachedInput ?? r.input).value)
        let writeRate = r.cacheWrite ?? r.input
        let hourWrites = min(usage.cacheWrite1hTokens, usage.cacheWriteTokens)
        total += Int128(usage.cacheWriteTokens - hourWrites) * Int128(writeRate.value)
        total += Int128(hourWrites) * Int128((r.cacheWrite1h ?? writeRate).value)
        total += Int128(usage.outputTokens) * Int128(r.output.value)
        let million: Int128 = 1_000_000
        let rounded = (total + million / 2) / million
        return Nanodollars(Int64(clamping: rounded))
    }
}
