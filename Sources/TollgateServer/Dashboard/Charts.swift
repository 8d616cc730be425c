import Foundation
import TollgateCore

/// Charts drawn on the server as SVG: no script, no external asset, readable offline and in any browser.
enum Charts {
    /// Colours of the series in order, the last for everything else ("other").
    static let palette = ["#2563eb", "#16a34a", "#f59e0b", "#dc2626", "#7c3aed", "#0891b2", "#db2777", "#9ca3af"]

    struct Series {
        var name: String
        var color: String
    }

    /// Columns of stacked amounts, one per label (a day), one segment per series; the largest `limit − 1`
    /// series by total are kept, the rest summed as "other".
    struct StackedColumns {
        var labels: [String]
        var series: [Series]
        /// values[label][series]
        var values: [[Nanodollars]]

        init(labels: [String], points: [(label: String, series: String, amount: Nanodollars)], limit: Int = palette.count) {
            var totals: [String: Nanodollars] = [:]
            for point in points { totals[point.series, default: .zero] += point.amount }
            let ranked = totals.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.map(\.key)
            var kept = Array(ranked.prefix(ranked.count > limit ? limit - 1 : limit))
            let hasOther = ranked.count > kept.count
            var index = Dictionary(uniqueKeysWithValues: kept.enumerated().map { ($1, $0) })
            if hasOther {
                kept.append("other")
                for name in ranked where index[name] == nil { index[name] = kept.count - 1 }
            }
            series = kept.enumerated().map { Series(name: $1, color: $0 == kept.count - 1 && hasOther ? palette.last! : palette[$0 % palette.count]) }
            self.labels = labels
            let row = Dictionary(uniqueKeysWithValues: labels.enumerated().map { ($1, $0) })
            var values = Array(repeating: Array(repeating: Nanodollars.zero, count: kept.count), count: labels.count)
            for point in points {
                guard let at = row[point.label], let column = index[point.series] else { continue }
                values[at][column] += point.amount
            }
            self.values = values
        }
    }

    /// A stacked column chart with a dollar axis; each segment's exact amount in its `<title>`.
    static func stacked(_ chart: StackedColumns, width: Int = 760, height: Int = 220, title: String) -> String {
        let left = 56, bottom = 28, top = 10
        let plotWidth = width - left - 8, plotHeight = height - top - bottom
        let totals = chart.values.map { $0.reduce(Nanodollars.zero, +) }
        let maximum = niceCeiling(totals.max() ?? .zero)
        // Round steps: 1 and 5 × 10ⁿ in fifths, 2 × 10ⁿ in quarters.
        let steps = Self.leadingDigit(maximum.value) == 2 ? 4 : 5
        var svg = #"<svg class="chart" viewBox="0 0 \#(width) \#(height)" role="img" aria-label="\#(escape(title))" xmlns="http://www.w3.org/2000/svg">"#
        for step in 0...steps {
            let value = Nanodollars(maximum.value * Int64(step) / Int64(steps))
            let y = top + plotHeight - plotHeight * step / steps
            svg += #"<line x1="\#(left)" x2="\#(width - 8)" y1="\#(y)" y2="\#(y)" class="grid"/>"#
            svg += #"<text x="\#(left - 6)" y="\#(y + 4)" class="axis" text-anchor="end">\#(escape(Money.short(value)))</text>"#
        }
        let count = max(chart.labels.count, 1)
        let slot = Double(plotWidth) / Double(count)
        let barWidth = max(1, slot * 0.72)
        for (column, label) in chart.labels.enumerated() {
            let x = Double(left) + slot * Double(column) + (slot - barWidth) / 2
            var y = Double(top + plotHeight)
            for (index, amount) in chart.values[column].enumerated() where amount > .zero {
                let h = maximum.value > 0 ? Double(plotHeight) * Double(amount.value) / Double(maximum.value) : 0
                y -= h
                svg += #"<rect x="\#(format(x))" y="\#(format(y))" width="\#(format(barWidth))" height="\#(format(h))" fill="\#(chart.series[index].color)"><title>\#(escape(label)) · \#(escape(chart.series[index].name)): \#(Money.display(amount))</title></rect>"#
            }
            // Every label when they fit, else every seventh (weeks of days).
            if count <= 16 || column % 7 == 0 {
                svg += #"<text x="\#(format(x + barWidth / 2))" y="\#(height - 10)" class="axis" text-anchor="middle">\#(escape(String(label.suffix(5))))</text>"#
            }
        }
        svg += "</svg>"
        return svg
    }

    /// One budget as a horizontal bar: spent (solid), reserved (light), the forecast's 80 % band (hatched
    /// outline) and its point (a tick), the limit at the end.
    static func budgetBar(limit: Nanodollars, spent: Nanodollars, reserved: Nanodollars,
                          forecast: (low: Nanodollars, point: Nanodollars, high: Nanodollars)?, width: Int = 320) -> String {
        let height = 18
        let scale = max(limit.value, forecast?.high.value ?? 0, spent.value + reserved.value, 1)
        func x(_ amount: Nanodollars) -> Double { Double(width) * Double(min(max(amount.value, 0), scale)) / Double(scale) }
        var svg = #"<svg class="bar" viewBox="0 0 \#(width) \#(height)" width="\#(width)" height="\#(height)" xmlns="http://www.w3.org/2000/svg">"#
        svg += #"<rect x="0" y="3" width="\#(format(x(limit)))" height="12" class="bar-track"/>"#
        let over = spent > limit
        svg += #"<rect x="0" y="3" width="\#(format(x(spent)))" height="12" class="\#(over ? "bar-over" : "bar-spent")"><title>spent \#(Money.display(spent))</title></rect>"#
        if reserved > .zero {
            svg += #"<rect x="\#(format(x(spent)))" y="3" width="\#(format(x(spent + reserved) - x(spent)))" height="12" class="bar-reserved"><title>reserved \#(Money.display(reserved))</title></rect>"#
        }
        if let forecast {
            svg += #"<rect x="\#(format(x(forecast.low)))" y="1" width="\#(format(max(1, x(forecast.high) - x(forecast.low))))" height="16" class="bar-band"><title>forecast \#(Money.display(forecast.low)) – \#(Money.display(forecast.high))</title></rect>"#
            svg += #"<line x1="\#(format(x(forecast.point)))" x2="\#(format(x(forecast.point)))" y1="0" y2="18" class="bar-forecast"/>"#
        }
        svg += #"<line x1="\#(format(x(limit)))" x2="\#(format(x(limit)))" y1="0" y2="18" class="bar-limit"/>"#
        svg += "</svg>"
        return svg
    }

    /// The smallest of 1, 2 or 5 × 10ⁿ dollars (or cents) at or above `amount`, so the axis reads in round steps.
    static func niceCeiling(_ amount: Nanodollars) -> Nanodollars {
        guard amount.value > 0 else { return Nanodollars(Nanodollars.perDollar) }
        var step: Int64 = 10_000_000 // one cent
        while true {
            for multiple: Int64 in [1, 2, 5] where step * multiple >= amount.value { return Nanodollars(step * multiple) }
            step *= 10
        }
    }

    static func leadingDigit(_ value: Int64) -> Int64 {
        var v = value
        while v >= 10 { v /= 10 }
        return v
    }

    static func format(_ value: Double) -> String { String(format: "%.1f", value) }

    static func escape(_ text: String) -> String {
        var out = ""
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(character)
            }
        }
        return out
    }
}

/// Money as people read it: `$1,234.56`, and amounts under a dollar with enough digits to be seen
/// (`$0.0042`). Exact amounts stay in the pages' `data-usd` attributes.
enum Money {
    static func display(_ amount: Nanodollars) -> String {
        let negative = amount.value < 0
        let magnitude = amount.value.magnitude
        let perDollar = UInt64(Nanodollars.perDollar)
        let text: String
        if magnitude >= perDollar / 100 || magnitude == 0 {
            let cents = (magnitude + 5_000_000) / 10_000_000
            let dollars = String(cents / 100)
            var grouped = ""
            for (index, digit) in dollars.reversed().enumerated() {
                if index > 0, index % 3 == 0 { grouped.append(",") }
                grouped.append(digit)
            }
            text = "$" + String(grouped.reversed()) + "." + (cents % 100 < 10 ? "0" : "") + String(cents % 100)
        } else {
            // Under a cent: two significant digits, e.g. $0.0042 or $0.000042 (truncated, never rounded up).
            let digits = Nanodollars(Int64(magnitude)).decimalString
            var kept = ""
            var significant = 0
            for character in digits where significant < 2 {
                kept.append(character)
                if character.isNumber, character != "0" || significant > 0 { significant += 1 }
            }
            text = "$" + kept
        }
        return negative ? "−" + text : text
    }

    /// For an axis: `$1.2k`, `$350`, `$0.50`.
    static func short(_ amount: Nanodollars) -> String {
        let dollars = Double(amount.value) / Double(Nanodollars.perDollar)
        switch dollars {
        case 1_000_000...: return String(format: "$%.1fM", dollars / 1_000_000)
        case 1_000...: return String(format: "$%.1fk", dollars / 1_000)
        case 10...: return dollars == dollars.rounded() ? String(format: "$%.0f", dollars) : String(format: "$%.1f", dollars)
        case 0: return "$0"
        default: return String(format: "$%.2f", dollars)
        }
    }
}
