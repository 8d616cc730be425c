/// How a provider bills the usage kinds a configured price may leave out (cache reads and writes), so that a
/// rate nobody gave is the provider's own and never silently the plain input rate.
public enum CacheBilling: Sendable, Hashable {
    /// Anthropic's published multipliers of the input rate: cache reads 0.1×, five-minute writes 1.25×,
    /// one-hour writes 2×.
    case anthropic
    /// OpenAI: cache reads at a discount that differs from model to model (0.1× to 0.5×), so no rule can stand
    /// in for it; its API reports no cache writes.
    case openAI
    /// A server the operator prices itself (OpenAI-compatible): no provider discount exists to follow, so
    /// cache reads bill at the input rate unless a rate is given; the wire format reports no cache writes.
    case operatorPriced
    /// Nothing is billed for real (the simulated models).
    case none
}

/// A rate neither the price, the catalogue nor the provider's rule can supply: `field` is the config key
/// that must be given (`cached_input_per_mtok`).
public struct MissingRate: Error, Hashable, Sendable {
    public var field: String
    public init(field: String) { self.field = field }
}

extension ModelPrice {
    /// This price with every rate it leaves out filled in: from `catalogue` (the catalogue's entry for the
    /// model served) when that has the rate, else by the provider's rule. Throws for a rate that matters
    /// (the provider reports such tokens) and that neither knows.
    public func completed(catalogue: ModelPrice?, billing: CacheBilling) throws(MissingRate) -> ModelPrice {
        if isFree { return self }
        var price = self
        price.rates = try rates.completed(catalogue: catalogue?.rates, billing: billing)
        if let tier = longContext {
            price.longContext = LongContextTier(
                thresholdTokens: tier.thresholdTokens,
                rates: try tier.rates.completed(catalogue: catalogue?.longContext?.rates, billing: billing))
        }
        return price
    }
}

extension ModelPrice.Rates {
    func completed(catalogue: Self?, billing: CacheBilling) throws(MissingRate) -> Self {
        var rates = self
        switch billing {
        case .anthropic:
            rates.cachedInput = cachedInput ?? catalogue?.cachedInput ?? input.scaled(by: 1, over: 10)
            rates.cacheWrite = cacheWrite ?? catalogue?.cacheWrite ?? input.scaled(by: 5, over: 4)
            rates.cacheWrite1h = cacheWrite1h ?? catalogue?.cacheWrite1h ?? input.scaled(by: 2, over: 1)
        case .openAI:
            guard let cached = cachedInput ?? catalogue?.cachedInput else {
                throw MissingRate(field: "cached_input_per_mtok")
            }
            rates.cachedInput = cached
            rates.cacheWrite = cacheWrite ?? catalogue?.cacheWrite
            rates.cacheWrite1h = cacheWrite1h ?? catalogue?.cacheWrite1h
        case .operatorPriced:
            rates.cachedInput = cachedInput ?? catalogue?.cachedInput ?? input
        case .none:
            break
        }
        return rates
    }
}

extension Nanodollars {
    /// `self × numerator ÷ denominator`, rounded half up: a rate derived from another by a published multiplier.
    func scaled(by numerator: Int64, over denominator: Int64) -> Nanodollars {
        let product = Int128(value) * Int128(numerator)
        let rounded = (product + Int128(denominator) / 2) / Int128(denominator)
        return Nanodollars(Int64(clamping: rounded))
    }
}
