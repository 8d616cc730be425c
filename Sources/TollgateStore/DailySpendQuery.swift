import Foundation
import TollgateCore

/// What both stores share of `dailySpend`: the ledger is summed per quarter hour in SQL (one integer
/// expression, the same in SQLite and PostgreSQL, which need no time-zone rules), and the quarter hours are
/// summed into local days here. Every zone's offset is a whole number of quarter hours, so no quarter hour
/// straddles a local midnight.
enum DailySpendQuery {
    static let quarterHourMilliseconds: Int64 = 900_000

    struct Quarter {
        /// Quarter hours since 1970.
        var index: Int64
        var usd: Int64
        var tokens: Int
    }

    /// The `requests` column that names a subject of `scope`.
    static func column(_ scope: BudgetScope) -> String {
        switch scope {
        case .org: "org_id"
        case .team: "team_id"
        case .user: "user_id"
        case .key: "key_id"
        }
    }

    /// The parts of [from, to) read from the per-day rollups (whole UTC days, when the zone's days are UTC days)
    /// and from the ledger's rows (the rest).
    static func plan(from: Date, to: Date, timeZone: TimeZone) -> RollupPlan {
        let utc = timeZone.secondsFromGMT(for: from) == 0 && timeZone.secondsFromGMT(for: to) == 0
            && timeZone.nextDaylightSavingTimeTransition(after: from).map { $0 >= to } ?? true
        return RollupPlan(from: from, to: to, localDays: !utc)
    }

    /// The rollup rows' day as a quarter hour (a UTC day starts on one).
    static let rollupSelect = """
        SELECT day / \(quarterHourMilliseconds) AS quarter, SUM(cost_nanos) AS usd,
               SUM(input_tokens + cached_input_tokens + cache_write_tokens + output_tokens) AS tokens
        FROM spend_daily
        """

    static func days(_ quarters: [Quarter], from: Date, to: Date, timeZone: TimeZone) -> [DaySpend] {
        guard to > from else { return [] }
        let days = LocalDays(timeZone: timeZone)
        return days.days(from: days.date(of: from), through: days.date(of: to.addingTimeInterval(-0.001)), quarterHours: quarters.map { quarter in
            (Date(epochMilliseconds: quarter.index * quarterHourMilliseconds), Nanodollars(quarter.usd), quarter.tokens)
        })
    }
}
