import Testing
@testable import TollgateCore

@Suite("Money: exact nano-dollars, read and written as decimal strings")
struct MoneyTests {
    @Test("a decimal string is read exactly, to the nano-dollar", arguments: [
        ("0.15", 150_000_000),
        ("1500", 1_500_000_000_000),
        ("-2.5", -2_500_000_000),
        ("0.000000001", 1),
        ("0.000025", 25_000),
        ("1.000000000", 1_000_000_000),
        ("+3", 3_000_000_000),
        ("0", 0),
        ("9223372036.854775807", Int64.max),
        ("-9223372036.854775807", -Int64.max),
    ] as [(String, Int64)])
    func parsesDecimal(text: String, nanodollars: Int64) {
        #expect(Nanodollars(decimalString: text) == Nanodollars(nanodollars))
    }

    @Test("anything but a plain decimal is refused, never rounded or guessed", arguments: [
        "0.0000000001",             // ten decimal places: refused rather than rounded
        "1e3", "1E-3",              // no exponents
        "", ".", "1.", "-", "+", "--1",
        " 1", "1 ", "1,5", "0x10", "１",
        "9223372036.854775808",     // one nano-dollar past Int64.max
        "99999999999",
        "-99999999999",
        "99999999999999999999999",
    ])
    func refusesNonDecimal(text: String) {
        #expect(Nanodollars(decimalString: text) == nil)
    }

    @Test("money is written without exponent and without trailing zeros", arguments: [
        (25_000, "0.000025"),
        (150_000_000, "0.15"),
        (1_500_000_000_000, "1500"),
        (-2_500_000_000, "-2.5"),
        (-1, "-0.000000001"),
        (1, "0.000000001"),
        (0, "0"),
        (1_000_000_001, "1.000000001"),
        (10_000_000_000, "10"),
        (Int64.max, "9223372036.854775807"),
        (Int64.min, "-9223372036.854775808"),
    ] as [(Int64, String)])
    func formatsDecimal(nanodollars: Int64, text: String) {
        #expect(Nanodollars(nanodollars).decimalString == text)
    }

    @Test("writing then reading gives back the same amount", arguments: [
        Int64(0), 1, -1, 7, 25_000, 123_456_789, 987_654_321_012, -42_000_000_001, Int64.max, -Int64.max,
    ])
    func roundTrips(nanodollars: Int64) {
        let amount = Nanodollars(nanodollars)
        #expect(Nanodollars(decimalString: amount.decimalString) == amount)
    }

    @Test("a price shows as dollars")
    func description() {
        #expect(Nanodollars(150_000_000).description == "$0.15")
    }

    @Test("amounts add, subtract and compare exactly")
    func arithmetic() {
        var total = Nanodollars(decimalString: "0.1")!
        total += Nanodollars(decimalString: "0.2")!
        #expect(total == Nanodollars(decimalString: "0.3")!)
        total -= Nanodollars(decimalString: "0.3")!
        #expect(total == .zero)
        #expect(Nanodollars(-1) < .zero)
    }
}
