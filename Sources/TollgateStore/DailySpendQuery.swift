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

    static func days(_ quarters: [Quarter], from: Date, to: Date, timeZone: TimeZone) -> [DaySpend] {
        guard to > from else { return [] }
        let days = LocalDays(timeZone: timeZone)
        return days.days(from: days.date(of: from), through: days.date(of: to.addingTimeInterval(-0.001)), quarterHours: quarters.map { quarter in
            (Date(epochMilliseconds: quarter.index * quarterHourMilliseconds), Nanodollars(quarter.usd), quarter.tokens)
        })
    }
}
