import Testing
import TollgateCore

@Suite("Terminal text: widths in columns, tables that line up")
struct TerminalTextTests {
    @Test("ASCII takes one column a character", arguments: ["", "alice", "team-platform", "a b"])
    func ascii(text: String) {
        #expect(TerminalText.width(text) == text.count)
    }

    @Test("CJK ideographs, kana, Hangul and fullwidth forms take two columns each", arguments: [
        ("数据团队", 8), ("データ", 6), ("데이터", 6), ("ＡＢ", 4), ("研究-lab", 8), ("\u{3000}", 2),
    ])
    func eastAsianWide(text: String, columns: Int) {
        #expect(TerminalText.width(text) == columns)
    }

    @Test("an emoji drawn as one takes two columns, however many scalars make it", arguments: [
        ("🦊", 2), ("🦊fox", 5), ("👩🏽‍💻", 2), ("👨‍👩‍👧‍👦", 2), ("🇫🇷", 2), ("❤️", 2), ("1️⃣", 2), ("😀😀", 4),
    ])
    func emoji(text: String, columns: Int) {
        #expect(TerminalText.width(text) == columns)
    }

    @Test("a symbol in text presentation takes one column, combining marks and format characters none", arguments: [
        ("❤", 1), ("☺︎", 1), ("e\u{301}", 1), ("Zoë", 3), ("a\u{200B}b", 2), ("\u{301}", 0),
    ])
    func narrowAndZero(text: String, columns: Int) {
        #expect(TerminalText.width(text) == columns)
    }

    @Test("padding fills to a width in columns and never cuts a cell that is wider")
    func padding() {
        #expect(TerminalText.padded("数据", toWidth: 6) == "数据  ")
        #expect(TerminalText.padded("🦊fox", toWidth: 5) == "🦊fox")
        #expect(TerminalText.padded("🦊fox", toWidth: 3) == "🦊fox")
    }

    @Test("a table's columns start at the same column on every line, whatever the names are made of")
    func table() {
        let lines = TerminalText.table([
            ["id", "name", "team"],
            ["user_1", "🦊fox", "platform"],
            ["user_2", "数据团队", "研究"],
            ["user_3", "👩🏽‍💻 dev", "-"],
        ])
        #expect(lines == [
            "id      name      team",
            "user_1  🦊fox     platform",
            "user_2  数据团队  研究",
            "user_3  👩🏽‍💻 dev    -",
        ])
    }
}
