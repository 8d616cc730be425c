/// An exact amount of US dollars in billionths: money never travels through a binary float.
public struct Nanodollars: Hashable, Comparable, Sendable {
    public var value: Int64

    public static let perDollar: Int64 = 1_000_000_000
    public static let zero = Nanodollars(0)

    public init(_ value: Int64) { self.value = value }

    public static func < (lhs: Nanodollars, rhs: Nanodollars) -> Bool { lhs.value < rhs.value }
    public static func + (lhs: Nanodollars, rhs: Nanodollars) -> Nanodollars { Nanodollars(lhs.value + rhs.value) }
    public static func - (lhs: Nanodollars, rhs: Nanodollars) -> Nanodollars { Nanodollars(lhs.value - rhs.value) }
    public static func += (lhs: inout Nanodollars, rhs: Nanodollars) { lhs.value += rhs.value }
    public static func -= (lhs: inout Nanodollars, rhs: Nanodollars) { lhs.value -= rhs.value }

    /// Parses a decimal dollar amount such as `"1500"`, `"0.15"` or `"-2.5"`. More than nine fractional
    /// digits are refused rather than rounded, so that a price is never silently changed.
    public init?(decimalString text: some StringProtocol) {
        var digits = Substring(text)
        var negative = false
        if digits.first == "-" { negative = true; digits = digits.dropFirst() }
        else if digits.first == "+" { digits = digits.dropFirst() }
        let parts = digits.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        let whole = parts[0]
        let fraction = parts.count == 2 ? parts[1] : ""
        guard !(whole.isEmpty && fraction.isEmpty), fraction.count <= 9,
              whole.allSatisfy(\.isASCIIDigitCharacter), fraction.allSatisfy(\.isASCIIDigitCharacter),
              !(parts.count == 2 && fraction.isEmpty)
        else { return nil }
        var result: Int64 = 0
        for character in whole {
            let (m, o1) = result.multipliedReportingOverflow(by: 10)
            let (a, o2) = m.addingReportingOverflow(Int64(character.asciiValue! - 48))
            guard !o1, !o2 else { return nil }
            result = a
        }
        let (scaled, overflow) = result.multipliedReportingOverflow(by: Nanodollars.perDollar)
        guard !overflow else { return nil }
        var fractional: Int64 = 0
        var scale = Nanodollars.perDollar
        for character in fraction {
            scale /= 10
            fractional += Int64(character.asciiValue! - 48) * scale
        }
        let (total, overflow2) = scaled.addingReportingOverflow(fractional)
        guard !overflow2 else { return nil }
        value = negative ? -total : total
    }

    /// The amount as a decimal string with no exponent and no trailing zeros: `"0.000025"`, `"12"`.
    public var decimalString: String {
        let magnitude = value.magnitude
        let whole = magnitude / UInt64(Nanodollars.perDollar)
        var fraction = magnitude % UInt64(Nanodollars.perDollar)
        var text = (value < 0 ? "-" : "") + String(whole)
        if fraction != 0 {
            var digits = 9
            while fraction % 10 == 0 { fraction /= 10; digits -= 1 }
            let fractionText = String(fraction)
            text += "." + String(repeating: "0", count: digits - fractionText.count) + fractionText
        }
        return text
    }
}

extension Nanodollars: CustomStringConvertible {
    public var description: String { "$" + decimalString }
}

extension Character {
    var isASCIIDigitCharacter: Bool { asciiValue.map { $0 >= 48 && $0 <= 57 } ?? false }
}
