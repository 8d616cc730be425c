import Testing
import TollgateCore
@testable import TollgateServer

@Suite("CSV exports: quoted as RFC 4180 says, text cells never read as formulas")
struct CSVTests {
    @Test("a plain text cell is written as it is", arguments: ["alice", "gpt-4o-mini", "2026-03-01", "数据 team", "a'b", ""])
    func plain(text: String) {
        #expect(CSV.text(text) == text)
    }

    @Test("a cell holding a quote, a comma, a line feed or a bare carriage return is quoted, its quotes doubled", arguments: [
        ("say \"hi\"", "\"say \"\"hi\"\"\""), ("a,b", "\"a,b\""), ("line\nbreak", "\"line\nbreak\""),
        ("bare\rreturn", "\"bare\rreturn\""), ("crlf\r\nend", "\"crlf\r\nend\""),
    ])
    func quoted(text: String, cell: String) {
        #expect(CSV.text(text) == cell)
    }

    @Test("a cell starting with =, +, -, @, a tab or a carriage return gets a ' in front, inside quotes", arguments: [
        ("=HYPERLINK(\"http://evil\",\"x\")", "\"'=HYPERLINK(\"\"http://evil\"\",\"\"x\"\")\""), ("+1+2", "\"'+1+2\""),
        ("-2+3", "\"'-2+3\""), ("@SUM(A1:A9)", "\"'@SUM(A1:A9)\""), ("\t=1", "\"'\t=1\""), ("\r=1", "\"'\r=1\""),
        ("\r\n=1", "\"'\r\n=1\""), ("=1,2", "\"'=1,2\""),
    ])
    func formulas(text: String, cell: String) {
        #expect(CSV.text(text) == cell)
    }

    @Test("money stays a number: a negative saving is written bare, with its minus sign", arguments: [
        (Nanodollars(-250_000_000), "-0.25"), (Nanodollars(-3), "-0.000000003"), (Nanodollars(1_500_000_000), "1.5"), (Nanodollars(0), "0"),
    ])
    func money(amount: Nanodollars, cell: String) {
        #expect(CSV.money(amount) == cell)
    }

    @Test("the spend report guards its group cells and leaves its counts and money as numbers")
    func spendReport() {
        let rows = [
            SpendRow(group: "=cmd|' /C calc'!A0", requests: 2, inputTokens: 10, cachedInputTokens: 0, outputTokens: 5,
                     cost: Nanodollars(1_250_000_000), baselineCost: Nanodollars(1_000_000_000)),
            SpendRow(group: "team, \"core\"", requests: 1, inputTokens: 3, cachedInputTokens: 1, outputTokens: 2,
                     cost: Nanodollars(25_000), baselineCost: nil),
            SpendRow(group: nil, requests: 1, inputTokens: 0, cachedInputTokens: 0, outputTokens: 0, cost: Nanodollars(0)),
        ]
        #expect(CSV.spend(rows, groupedBy: .team) == #"""
            team,requests,input_tokens,cached_input_tokens,output_tokens,cost_usd,baseline_cost_usd,savings_usd
            "'=cmd|' /C calc'!A0",2,10,0,5,1.25,1,-0.25
            "team, ""core""",1,3,1,2,0.000025,0.000025,0
            ,1,0,0,0,0,0,0

            """#)
    }
}
