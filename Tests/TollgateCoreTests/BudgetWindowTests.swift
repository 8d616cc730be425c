import Foundation
import Testing
@testable import TollgateCore

@Suite("Budget windows: calendar periods aligned in the budget's time zone")
struct BudgetWindowTests {
    let utc = TimeZone(identifier: "UTC")!
    let newYork = TimeZone(identifier: "America/New_York")!
    let tokyo = TimeZone(identifier: "Asia/Tokyo")!

    @Test("a day in UTC runs from midnight to midnight")
    func dayUTC() throws {
        let window = BudgetPeriod.day.window(containing: try budgetInstant("2026-05-17T13:45:10Z"), in: utc)
        #expect(window == BudgetWindow(start: try budgetInstant("2026-05-17T00:00:00Z"),
                                       end: try budgetInstant("2026-05-18T00:00:00Z")))
    }

    @Test("a day starts at local midnight, not at UTC midnight")
    func dayLocal() throws {
        // 03:30 UTC on the 18th is still the evening of the 17th in New York.
        let window = BudgetPeriod.day.window(containing: try budgetInstant("2026-05-18T03:30:00Z"), in: newYork)
        #expect(window.start == (try budgetInstant("2026-05-17T00:00:00-04:00")))
        #expect(window.end == (try budgetInstant("2026-05-18T00:00:00-04:00")))
    }

    @Test("the day the clocks go forward lasts 23 hours")
    func springForward() throws {
        let window = BudgetPeriod.day.window(containing: try budgetInstant("2026-03-08T12:00:00-04:00"), in: newYork)
        #expect(window.start == (try budgetInstant("2026-03-08T00:00:00-05:00")))
        #expect(window.end == (try budgetInstant("2026-03-09T00:00:00-04:00")))
        #expect(try hours(window) == 23)
    }

    @Test("the day the clocks go back lasts 25 hours")
    func fallBack() throws {
        let window = BudgetPeriod.day.window(containing: try budgetInstant("2026-11-01T01:30:00-05:00"), in: newYork)
        #expect(window.start == (try budgetInstant("2026-11-01T00:00:00-04:00")))
        #expect(window.end == (try budgetInstant("2026-11-02T00:00:00-05:00")))
        #expect(try hours(window) == 25)
    }

    @Test("a day whose midnight does not exist starts at its first moment")
    func missingMidnight() throws {
        // São Paulo moved its clocks from 00:00 to 01:00 on 2018-11-04.
        let saoPaulo = try #require(TimeZone(identifier: "America/Sao_Paulo"))
        let window = BudgetPeriod.day.window(containing: try budgetInstant("2018-11-04T12:00:00-02:00"), in: saoPaulo)
        #expect(window.start == (try budgetInstant("2018-11-04T01:00:00-02:00")))
        #expect(window.end == (try budgetInstant("2018-11-05T00:00:00-02:00")))
        #expect(try hours(window) == 23)
    }

    @Test("the start is inclusive and the end exclusive")
    func boundaries() throws {
        let midnight = try budgetInstant("2026-05-18T00:00:00Z")
        let window = BudgetPeriod.day.window(containing: midnight, in: utc)
        #expect(window.start == midnight)
        #expect(!window.hasEnded(at: midnight.addingTimeInterval(86_399.999)))
        #expect(window.hasEnded(at: midnight.addingTimeInterval(86_400)))
        let before = BudgetPeriod.day.window(containing: midnight.addingTimeInterval(-0.001), in: utc)
        #expect(before.end == midnight)
    }

    @Test("a week runs from Monday to Monday, Sunday included")
    func weekUTC() throws {
        let sunday = BudgetPeriod.week.window(containing: try budgetInstant("2026-05-17T23:59:59Z"), in: utc)
        #expect(sunday == BudgetWindow(start: try budgetInstant("2026-05-11T00:00:00Z"),
                                       end: try budgetInstant("2026-05-18T00:00:00Z")))
        let monday = BudgetPeriod.week.window(containing: try budgetInstant("2026-05-18T00:00:00Z"), in: utc)
        #expect(monday.start == (try budgetInstant("2026-05-18T00:00:00Z")))
    }

    @Test("a week can straddle the new year")
    func weekAcrossYear() throws {
        let window = BudgetPeriod.week.window(containing: try budgetInstant("2026-01-01T10:00:00Z"), in: utc)
        #expect(window == BudgetWindow(start: try budgetInstant("2025-12-29T00:00:00Z"),
                                       end: try budgetInstant("2026-01-05T00:00:00Z")))
    }

    @Test("a week with a clock change lasts 167 or 169 hours")
    func weekDST() throws {
        let spring = BudgetPeriod.week.window(containing: try budgetInstant("2026-03-08T12:00:00-04:00"), in: newYork)
        #expect(spring.start == (try budgetInstant("2026-03-02T00:00:00-05:00")))
        #expect(spring.end == (try budgetInstant("2026-03-09T00:00:00-04:00")))
        #expect(try hours(spring) == 167)
        let autumn = BudgetPeriod.week.window(containing: try budgetInstant("2026-11-01T12:00:00-05:00"), in: newYork)
        #expect(autumn.start == (try budgetInstant("2026-10-26T00:00:00-04:00")))
        #expect(autumn.end == (try budgetInstant("2026-11-02T00:00:00-05:00")))
        #expect(try hours(autumn) == 169)
    }

    @Test("a month runs from the 1st to the 1st, February 28 or 29 days")
    func monthsUTC() throws {
        let february = BudgetPeriod.month.window(containing: try budgetInstant("2026-02-15T08:00:00Z"), in: utc)
        #expect(february == BudgetWindow(start: try budgetInstant("2026-02-01T00:00:00Z"),
                                         end: try budgetInstant("2026-03-01T00:00:00Z")))
        let leap = BudgetPeriod.month.window(containing: try budgetInstant("2028-02-29T23:59:59Z"), in: utc)
        #expect(leap == BudgetWindow(start: try budgetInstant("2028-02-01T00:00:00Z"),
                                     end: try budgetInstant("2028-03-01T00:00:00Z")))
        #expect(try hours(leap) == 29 * 24)
        let december = BudgetPeriod.month.window(containing: try budgetInstant("2026-12-31T23:59:59Z"), in: utc)
        #expect(december == BudgetWindow(start: try budgetInstant("2026-12-01T00:00:00Z"),
                                          end: try budgetInstant("2027-01-01T00:00:00Z")))
    }

    @Test("a month starts on the local 1st, even when UTC still reads the 30th")
    func monthLocal() throws {
        let window = BudgetPeriod.month.window(containing: try budgetInstant("2026-04-30T20:00:00Z"), in: tokyo)
        #expect(window.start == (try budgetInstant("2026-05-01T00:00:00+09:00")))
        #expect(window.end == (try budgetInstant("2026-06-01T00:00:00+09:00")))
        let march = BudgetPeriod.month.window(containing: try budgetInstant("2026-03-20T12:00:00Z"), in: newYork)
        #expect(try hours(march) == 31 * 24 - 1)
    }

    @Test("a total budget never resets")
    func total() throws {
        let window = BudgetPeriod.total.window(containing: try budgetInstant("2026-05-17T13:45:10Z"), in: newYork)
        #expect(window.end == nil)
        #expect(!window.hasEnded(at: .distantFuture))
    }

    @Test("periods read and write their API names")
    func rawValues() {
        #expect(BudgetPeriod.allCases.map(\.rawValue) == ["day", "week", "month", "total"])
        #expect(BudgetPeriod(rawValue: "week") == .week)
    }

    private func hours(_ window: BudgetWindow) throws -> Double {
        try #require(window.end).timeIntervalSince(window.start) / 3600
    }
}

/// An RFC 3339 time, for tests that speak in wall-clock times.
func budgetInstant(_ text: String) throws -> Date {
    try #require(ISO8601DateFormatter().date(from: text), "not an RFC 3339 time: \(text)")
}
