import Foundation

public enum BudgetScope: String, Hashable, Sendable, CaseIterable {
    case org, team, user, key
}

/// An amount a budget counts in: dollars or tokens.
public enum BudgetAmount: Hashable, Sendable {
    case usd(Nanodollars)
    case tokens(Int)

    public var isUSD: Bool {
        if case .usd = self { return true }
        return false
    }
}

/// A budget's cap, in the unit the budget counts.
public typealias BudgetLimit = BudgetAmount

public enum BudgetMode: String, Hashable, Sendable, CaseIterable {
    /// The claim is an upper bound of the cost: the cap is never passed.
    case strict
    /// The claim is an estimate: cheaper on agents' large `max_tokens`, may pass the cap by what the
    /// estimate missed, and the overshoot is reported.
    case estimate
}

public enum ExhaustAction: String, Hashable, Sendable, CaseIterable {
    case reject, downgrade
}

/// A share of a whole (0…1) in exact millionths, so that "0.8 of the limit" never goes through a binary float.
public struct PartsPerMillion: Hashable, Comparable, Sendable {
    public static let whole = 1_000_000

    public let value: Int

    /// `value` millionths; nil outside 0…1.
    public init?(_ value: Int) {
        guard (0...PartsPerMillion.whole).contains(value) else { return nil }
        self.value = value
    }

    /// Parses `"0.8"`, `"0.125"`, `"1"` as money is parsed. More than six fractional digits are refused rather
    /// than rounded.
    public init?(decimalString text: some StringProtocol) {
        guard let nanos = Nanodollars(decimalString: text)?.value, nanos % 1000 == 0,
              let value = Int(exactly: nanos / 1000) else { return nil }
        self.init(value)
    }

    /// `"0.8"`, `"1"`: no exponent, no trailing zeros, as money is written.
    public var decimalString: String {
        Nanodollars(Int64(value) * 1000).decimalString
    }

    public static func < (lhs: PartsPerMillion, rhs: PartsPerMillion) -> Bool { lhs.value < rhs.value }
}

/// A budget set as a share of a yearly salary, kept beside the limit it gives so that reports can show it.
public struct SalaryTemplate: Hashable, Sendable {
    public var annualSalaryUSD: Nanodollars
    public var share: PartsPerMillion

    public init(annualSalaryUSD: Nanodollars, share: PartsPerMillion) {
        self.annualSalaryUSD = annualSalaryUSD
        self.share = share
    }

    /// salary × share ÷ 12, rounded half up to the nano-dollar.
    public static func monthlyLimitUSD(annualSalaryUSD: Nanodollars, share: PartsPerMillion) -> Nanodollars {
        let divisor = Int128(12 * PartsPerMillion.whole)
        let product = Int128(annualSalaryUSD.value) * Int128(share.value)
        let rounded = (product + divisor / 2) / divisor
        return Nanodollars(Int64(clamping: rounded))
    }

    public var monthlyLimitUSD: Nanodollars {
        SalaryTemplate.monthlyLimitUSD(annualSalaryUSD: annualSalaryUSD, share: share)
    }
}

/// What a budget is: who it binds, how much, over which period, and what happens when it runs out.
public struct BudgetDefinition: Hashable, Sendable {
    public var id: String
    public var scope: BudgetScope
    /// The org, team, user or key id the budget binds.
    public var subjectID: String
    public var subjectName: String
    /// A per-model budget binds to the model that served the request; nil binds every model.
    public var model: String?
    public var limit: BudgetLimit
    public var period: BudgetPeriod
    public var timeZone: TimeZone
    public var mode: BudgetMode
    public var onExhaust: ExhaustAction
    /// The share of the limit whose crossing is announced once per window; nil announces nothing.
    public var softThreshold: PartsPerMillion?
    /// Extra room usable only by downgraded requests; the cap plus grace is never passed in `strict` mode.
    public var graceUSD: Nanodollars
    public var salary: SalaryTemplate?

    public init(id: String, scope: BudgetScope, subjectID: String, subjectName: String, model: String? = nil,
                limit: BudgetLimit, period: BudgetPeriod, timeZone: TimeZone = TimeZone(identifier: "UTC")!,
                mode: BudgetMode = .strict, onExhaust: ExhaustAction = .reject,
                softThreshold: PartsPerMillion? = nil, graceUSD: Nanodollars = .zero,
                salary: SalaryTemplate? = nil) {
        self.id = id
        self.scope = scope
        self.subjectID = subjectID
        self.subjectName = subjectName
        self.model = model
        self.limit = limit
        self.period = period
        self.timeZone = timeZone
        self.mode = mode
        self.onExhaust = onExhaust
        self.softThreshold = softThreshold
        self.graceUSD = graceUSD
        self.salary = salary
    }

    public func window(containing instant: Date) -> BudgetWindow {
        period.window(containing: instant, in: timeZone)
    }
}
