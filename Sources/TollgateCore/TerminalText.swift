/// Text laid out in a terminal's columns, where a character takes none, one or two of them.
public enum TerminalText {
    /// The columns `text` takes, as terminals draw it: a grapheme cluster (what a reader sees as one character)
    /// takes two when it is East Asian Wide or Fullwidth (CJK, kana, Hangul, fullwidth forms) or is an emoji
    /// drawn as one (emoji presentation by default, or asked for with U+FE0F; flags and ZWJ sequences too);
    /// none when it is a control, a format character or a combining mark alone; else one. Not UTF-16 units
    /// (`String.padding` counts those: 🦊 is two, 数 one) and not grapheme clusters alone (数 takes two columns).
    public static func width(_ text: some StringProtocol) -> Int {
        text.reduce(0) { $0 + width(of: $1) }
    }

    /// `text` followed by spaces up to `columns` (as it is when it is that wide already).
    public static func padded(_ text: String, toWidth columns: Int) -> String {
        text + String(repeating: " ", count: max(0, columns - width(text)))
    }

    /// Rows as lines, the cells of a column left-aligned to its widest cell, two spaces between columns; the
    /// last column is not padded.
    public static func table(_ rows: [[String]]) -> [String] {
        let columns = rows.map(\.count).max() ?? 0
        let widths = (0..<columns).map { column in rows.map { column < $0.count ? width($0[column]) : 0 }.max() ?? 0 }
        return rows.map { row in
            row.enumerated().map { column, cell in column == row.count - 1 ? cell : padded(cell, toWidth: widths[column]) }
                .joined(separator: "  ")
        }
    }

    private static func width(of character: Character) -> Int {
        let scalars = character.unicodeScalars
        guard let first = scalars.first else { return 0 }
        switch first.properties.generalCategory {
        case .control, .format, .nonspacingMark, .enclosingMark, .lineSeparator, .paragraphSeparator: return 0
        default: break
        }
        if scalars.contains("\u{FE0F}") { return 2 }
        if scalars.contains("\u{FE0E}") { return 1 }
        return first.properties.isEmojiPresentation || isWide(first.value) ? 2 : 1
    }

    /// East Asian Wide and Fullwidth code points (Unicode's EastAsianWidth.txt, `W` and `F`, folded into
    /// blocks; the emoji among them are also caught by their presentation).
    private static func isWide(_ value: UInt32) -> Bool {
        switch value {
        case 0x1100...0x115F, 0x2329...0x232A, 0x2E80...0x303E, 0x3041...0x33FF, 0x3400...0x4DBF, 0x4E00...0x9FFF,
             0xA000...0xA4CF, 0xA960...0xA97F, 0xAC00...0xD7A3, 0xF900...0xFAFF, 0xFE10...0xFE19, 0xFE30...0xFE6F,
             0xFF00...0xFF60, 0xFFE0...0xFFE6, 0x16FE0...0x16FE4, 0x17000...0x18CFF, 0x1B000...0x1B2FF,
             0x1F200...0x1F2FF, 0x20000...0x2FFFD, 0x30000...0x3FFFD:
            true
        default:
            false
        }
    }
}
