import Foundation
import TollgateCore

/// A budget as stored. Spend is not stored here: the ledger is the record of what was spent, and a
/// budget's spend for its current window is rebuilt from it (`spendSince`), so a crash can never leave
/// a budget and the ledger disagreeing.
public struct BudgetRecord: Sendable, Hashable {
    public var id: String
    /// `org`, `team`, `user` or `key`.
    public var scope: String
    public var subjectID: String
    public var subjectName: String
    /// Bound to the model that served the request, when set.
    public var model: String?
    public var limitUSD: Nanodollars?
    public var limitTokens: Int?
    /// `day`, `week`, `month` or `total`.
    public var period: String
    public var timeZone: String
    /// `strict` or `estimate`.
    public var mode: String
    /// `reject` or `downgrade`.
    public var onExhaust: String
    /// Parts per million of the limit (800_000 = 80 %).
    public var softThresholdPPM: Int?
    public var graceUSD: Nanodollars
    public var annualSalaryUSD: Nanodollars?
    public var salarySharePPM: Int?
    /// When the soft threshold was last crossed, and the start of the window it was crossed in (at most
    /// one webhook per budget per window, across restarts).
    public var softThresholdCrossedAt: Date?
    public var softThresholdWindowStart: Date?
    /// The same for the forecast's low bound going over the limit.
    public var forecastExceededAt: Date?
    public var forecastWindowStart: Date?
    public var createdAt: Date
    public var updatedAt: Date

    public init(id: String, scope: String, subjectID: String, subjectName: String, model: String?, limitUSD: Nanodollars?,
                limitTokens: Int?, period: String, timeZone: String, mode: String, onExhaust: String,
                softThresholdPPM: Int?, graceUSD: Nanodollars, annualSalaryUSD: Nanodollars?, salarySharePPM: Int?,
                softThresholdCrossedAt: Date? = nil, softThresholdWindowStart: Date? = nil, forecastExceededAt: Date? = nil,
                forecastWindowStart: Date? = nil, createdAt: Date, updatedAt: Date) {
        self.id = id; self.scope = scope; self.subjectID = subjectID; self.subjectName = subjectName; self.model = model
        self.limitUSD = limitUSD; self.limitTokens = limitTokens; self.period = period; self.timeZone = timeZone
        self.mode = mode; self.onExhaust = onExhaust; self.softThresholdPPM = softThresholdPPM; self.graceUSD = graceUSD
        self.annualSalaryUSD = annualSalaryUSD; self.salarySharePPM = salarySharePPM
        self.softThresholdCrossedAt = softThresholdCrossedAt; self.softThresholdWindowStart = softThresholdWindowStart
        self.forecastExceededAt = forecastExceededAt; self.forecastWindowStart = forecastWindowStart
        self.createdAt = createdAt; self.updatedAt = updatedAt
    }
}

/// What a budget's subject spent in a window, from the ledger.
public struct LedgerSpend: Sendable, Hashable {
    public var usd: Nanodollars
    /// Input (all kinds) plus output tokens.
    public var tokens: Int
    public init(usd: Nanodollars, tokens: Int) { self.usd = usd; self.tokens = tokens }
}
