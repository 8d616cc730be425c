import TollgateCore

/// CSV as RFC 4180 and spreadsheets read it, with the text cells guarded against formula injection: a team
/// named `=HYPERLINK(…)` or a tag `@SUM(…)` must reach the finance user who opens the export as text.
enum CSV {
    /// The characters a spreadsheet takes, at the start of a cell, for the start of a formula (OWASP's list).
    private static let formulaStarts: Set<Unicode.Scalar> = ["=", "+", "-", "@", "\t", "\r"]

    /// A cell of text (a user, team or model name, a tag, a key id): prefixed with `'` when it starts like a
    /// formula, and quoted when it holds `"`, `,`, LF or CR, or was prefixed. Scalars, not Characters: `\r\n`
    /// is one Character, equal to neither `\r` nor `\n`.
    static func text(_ text: String) -> String {
        if let first = text.unicodeScalars.first, formulaStarts.contains(first) {
            return quoted("'" + text)
        }
        guard text.unicodeScalars.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return text }
        return quoted(text)
    }

    /// A cell of money, never guarded: `decimalString` is digits with at most one `.`, and a leading `-` for a
    /// negative amount (savings are negative when a request cost more than its baseline). A spreadsheet reads
    /// `-0.25` as the number −0.25, not as a formula, and the text comes from an integer the gateway computed,
    /// never from anything a person typed; a `'` would turn it into text and break the column's sums.
    static func money(_ amount: Nanodollars) -> String {
        amount.decimalString
    }

    /// The spend report: one header line, then one line per group.
    static func spend(_ rows: [SpendRow], groupedBy grouping: SpendGrouping) -> String {
        var csv = "\(grouping.rawValue),requests,input_tokens,cached_input_tokens,output_tokens,cost_usd,baseline_cost_usd,savings_usd\n"
        for row in rows {
            csv += [text(row.group ?? ""), String(row.requests), String(row.inputTokens), String(row.cachedInputTokens),
                    String(row.outputTokens), money(row.cost), money(row.baselineCost), money(row.savings)].joined(separator: ",")
            csv += "\n"
        }
        return csv
    }

    private static func quoted(_ text: String) -> String {
        "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
