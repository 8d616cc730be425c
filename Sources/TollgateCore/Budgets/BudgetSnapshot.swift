import Foundation

/// One budget as it stands at an instant: what `GET /v1/budget`, `/admin/budgets` and the 429 body show.
public struct BudgetSnapshot: Hashable, Sendable {
    public var definition: BudgetDefinition
    /// `window.end` is the API's `resets_at`.
    public var window: BudgetWindow
    public var spentUSD: Nanodollars
    public var spentTokens: Int
    public var reservedUSD: Nanodollars
    public var reservedTokens: Int
    public var softThresholdCrossedAt: Date?

    public init(definition: BudgetDefinition, window: BudgetWindow, spentUSD: Nanodollars, spentTokens: Int,
                reservedUSD: Nanodollars, reservedTokens: Int, softThresholdCrossedAt: Date?) {
        self.definition = definition
        self.window = window
        self.spentUSD = spentUSD
        self.spentTokens = spentTokens
        self.reservedUSD = reservedUSD
        self.reservedTokens = reservedTokens
        self.softThresholdCrossedAt = softThresholdCrossedAt
    }

    /// limit − spent − reserved, never below zero; nil for a token budget. Grace is not included: it is room
    /// for downgraded requests only.
    public var remainingUSD: Nanodollars? {
        guard case .usd(let limit) = definition.limit else { return nil }
        return max(.zero, limit - spentUSD - reservedUSD)
    }

    /// limit − spent − reserved in tokens, never below zero; nil for a USD budget.
    public var remainingTokens: Int? {
        guard case .tokens(let limit) = definition.limit else { return nil }
        return max(0, limit - spentTokens - reservedTokens)
    }
}
