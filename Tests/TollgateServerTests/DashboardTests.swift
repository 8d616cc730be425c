import Foundation
import Testing
import TollgateCore
@testable import TollgateServer

@Suite("Dashboard: sessions, money as people read it, charts")
struct DashboardTests {
    static let secret = Array("a secret of thirty-two bytes....".utf8)
    static let now = Date(timeIntervalSince1970: 1_796_000_000)

    @Test("a session cookie is accepted as signed, refused when forged, altered, signed with another secret or expired")
    func sessions() {
        let session = DashboardSession(role: .viewer(keyID: "key_0123456789abcdef"), expiresAt: Self.now.addingTimeInterval(60))
        let cookie = session.cookieValue(secret: Self.secret)
        #expect(DashboardSession(cookie: cookie, secret: Self.secret, now: Self.now) == session)
        #expect(DashboardSession(cookie: cookie.replacingOccurrences(of: "viewer-key", with: "admin.key"), secret: Self.secret, now: Self.now) == nil)
        let admin = "admin" + cookie.drop(while: { $0 != "." })
        #expect(DashboardSession(cookie: admin, secret: Self.secret, now: Self.now) == nil)
        #expect(DashboardSession(cookie: cookie, secret: Array("another secret".utf8), now: Self.now) == nil)
        #expect(DashboardSession(cookie: cookie, secret: Self.secret, now: Self.now.addingTimeInterval(61)) == nil)
        #expect(DashboardSession(cookie: "admin.99999999999999.00", secret: Self.secret, now: Self.now) == nil)
    }

    @Test("money shows cents with thousands separators, and amounts under a cent with four decimals", arguments: [
        (Int64(0), "$0.00"), (1_234_567_890_000, "$1,234.57"), (5_000_000, "$0.005"), (42_000, "$0.000042"), (1_234_560, "$0.0012"),
        (4_200_000, "$0.0042"), (10_000_000, "$0.01"), (-250_000_000, "−$0.25"), (1_000_000_000_000_000, "$1,000,000.00"),
    ])
    func money(nanos: Int64, shown: String) {
        #expect(Money.display(Nanodollars(nanos)) == shown)
    }

    @Test("percentages are exact integer arithmetic, one decimal under 10 %")
    func percent() {
        #expect(Dashboard.percent(1, of: 3) == "33 %")
        #expect(Dashboard.percent(1, of: 30) == "3.3 %")
        #expect(Dashboard.percent(0, of: 0) == "—")
        #expect(Dashboard.percent(93, of: 100) == "93 %")
    }

    @Test("a chart's axis ends at 1, 2 or 5 × 10ⁿ dollars above the largest column")
    func niceCeiling() {
        func usd(_ text: String) -> Nanodollars { Nanodollars(decimalString: text)! }
        #expect(Charts.niceCeiling(usd("23.26")) == usd("50"))
        #expect(Charts.niceCeiling(usd("0.004")) == usd("0.01"))
        #expect(Charts.niceCeiling(usd("150")) == usd("200"))
        #expect(Charts.niceCeiling(usd("1000")) == usd("1000"))
    }

    @Test("columns keep the largest series and sum the rest as other; every amount lands in its day")
    func stacked() {
        let points: [(label: String, series: String, amount: Nanodollars)] = (0..<10).map { ("d1", "s\($0)", Nanodollars(Int64(100 - $0))) }
            + [("d2", "s0", Nanodollars(5))]
        let chart = Charts.StackedColumns(labels: ["d1", "d2"], points: points, limit: 4)
        #expect(chart.series.map(\.name) == ["s0", "s1", "s2", "other"])
        #expect(chart.values[0].reduce(.zero, +) == Nanodollars((91...100).reduce(0, +)))
        #expect(chart.values[1] == [Nanodollars(5), .zero, .zero, .zero])
        let svg = Charts.stacked(chart, title: "t <x>")
        #expect(svg.hasPrefix("<svg") && svg.contains("t &lt;x&gt;") && !svg.contains("<x>"))
    }

    @Test("a period is the month to date by default, inclusive dates otherwise, and refuses nonsense")
    func period() throws {
        let now = RFC3339.parse("2026-12-04T15:00:00Z")!
        let month = try Period(from: nil, to: nil, now: now)
        #expect(month.days == ["2026-12-01", "2026-12-02", "2026-12-03", "2026-12-04"])
        #expect(month.to == RFC3339.parse("2026-12-05T00:00:00Z"))
        #expect(throws: (any Error).self) { try Period(from: "2026-12-05", to: "2026-12-01", now: now) }
        #expect(throws: (any Error).self) { try Period(from: "yesterday", to: nil, now: now) }
    }

    @Test("form fields are decoded: plus as space, percent escapes")
    func form() {
        #expect(Dashboard.formFields("key=tg-a%2Bb&next=%2Fdashboard%2Fmodels&x=a+b") == ["key": "tg-a+b", "next": "/dashboard/models", "x": "a b"])
    }
}
