import Foundation

/// The learned router's view of a prompt, computed exactly as `tools/router/FEATURES.md` (v2) specifies, so that
/// the Swift gateway and the Python trainer score the same text the same way.
public struct RouterFeatures: Sendable {
    /// Only this many leading UTF-8 bytes of a prompt are read: it bounds the decision's latency.
    public static let maximumBytes = 32_768
    /// The prompt statistics that follow the hashed features, in order (a weights file names them).
    public static let denseNames = ["log_question_bytes", "mean_word_length", "statements", "log_math_symbols",
                                    "log_numbers", "log_negations"]
    public static var denseCount: Int { denseNames.count }

    /// Hashed unigram and bigram features, L2-normalised, sorted by index, zero entries left out.
    public var sparse: [(index: Int, value: Double)]
    /// The prompt statistics, in the order of FEATURES.md.
    public var dense: [Double]

    public init(text: String, dimensions: Int) {
        self.init(scan: PromptScan(text: text, dimensions: dimensions))
    }

    public init(bytes: [UInt8], dimensions: Int) {
        self.init(scan: bytes.withUnsafeBufferPointer { PromptScan(bytes: $0, dimensions: dimensions) })
    }

    init(scan: PromptScan) {
        let norm = scan.norm
        sparse = zip(scan.indices, scan.logCounts).sorted { $0.0 < $1.0 }
            .map { (index: $0.0, value: norm > 0 ? $0.1 / norm : $0.1) }
        dense = scan.dense
    }

    /// FNV-1a, 32 bits, of `bytes`: the hash that places a key among the sparse features.
    public static func fnv1a(_ bytes: some Sequence<UInt8>) -> UInt32 {
        bytes.reduce(FNV1a.offsetBasis, FNV1a.adding)
    }
}

enum FNV1a {
    static let offsetBasis: UInt32 = 2_166_136_261
    static let prime: UInt32 = 16_777_619

    @inline(__always)
    static func adding(_ hash: UInt32, _ byte: UInt8) -> UInt32 { (hash ^ UInt32(byte)) &* prime }
}

/// One pass over a prompt's bytes: the hashed key counts (already `log(1 + count)`), their L2 norm and the dense
/// features. Scoring uses it directly, without sorting the sparse entries.
struct PromptScan {
    /// `log(1 + n)` for the counts almost every key has.
    static let smallCountLogs = (0..<64).map { log1p(Double($0)) }

    /// The feature indices that occur, unordered, and `log(1 + count)` for each. Keys that collide on an index add
    /// up their counts first, as a hashed count vector does.
    var indices: [Int]
    var logCounts: [Double]
    var norm: Double
    var dense: [Double]

    init(text: String, dimensions: Int) {
        var text = text
        self = text.withUTF8 { PromptScan(bytes: $0, dimensions: dimensions) }
    }

    /// `hashing: false` computes the prompt statistics alone (for weights without hashed-word weights).
    init(bytes all: UnsafeBufferPointer<UInt8>, dimensions: Int, hashing: Bool = true) {
        precondition(dimensions > 0 && dimensions < 1 << 31, "the feature space needs 1 to 2^31 - 1 dimensions")
        let bytes = UnsafeBufferPointer(rebasing: all.prefix(RouterFeatures.maximumBytes))
        dense = PromptStatistics.compute(bytes)
        guard hashing else {
            indices = []
            logCounts = []
            norm = 0
            return
        }
        let modulus = UInt32(truncatingIfNeeded: dimensions)
        let unigramSeed = RouterFeatures.fnv1a("u:".utf8)
        let bigramSeed = RouterFeatures.fnv1a("b:".utf8)

        var counts = IndexCounts(expectedKeys: bytes.count / 4)

        // While a token is read: its unigram key's hash, the hash of "b:" + token (the next bigram's start) and
        // the hash of the bigram that ends with it, so every key is hashed as its bytes go by.
        var inToken = false, hasPrevious = false
        var unigram: UInt32 = 0, nextBigramPrefix: UInt32 = 0, bigram: UInt32 = 0, bigramPrefix: UInt32 = 0

        for raw in bytes {
            let byte = (raw &- 0x41) < 26 ? raw | 0x20 : raw
            let isLetter = (byte &- 0x61) < 26, isDigit = (byte &- 0x30) < 10
            if isLetter || isDigit || byte >= 0x80 {
                if !inToken {
                    inToken = true
                    unigram = unigramSeed
                    nextBigramPrefix = bigramSeed
                    bigram = bigramPrefix
                }
                unigram = FNV1a.adding(unigram, byte)
                nextBigramPrefix = FNV1a.adding(nextBigramPrefix, byte)
                bigram = FNV1a.adding(bigram, byte)
                continue
            }
            if inToken {
                inToken = false
                counts.add(unigram % modulus)
                if hasPrevious { counts.add(bigram % modulus) }
                hasPrevious = true
                bigramPrefix = FNV1a.adding(nextBigramPrefix, 0x20)
            }
        }
        if inToken {
            counts.add(unigram % modulus)
            if hasPrevious { counts.add(bigram % modulus) }
        }

        var indices: [Int] = [], logCounts: [Double] = []
        indices.reserveCapacity(counts.count)
        logCounts.reserveCapacity(counts.count)
        var squares = 0.0
        counts.forEach { index, count in
            let value = count < Self.smallCountLogs.count ? Self.smallCountLogs[count] : log1p(Double(count))
            indices.append(Int(index))
            logCounts.append(value)
            squares += value * value
        }
        self.indices = indices
        self.logCounts = logCounts
        norm = squares.squareRoot()

    }
}

/// The six prompt statistics of FEATURES.md v2, on the prompt's bytes with their case kept.
enum PromptStatistics {
    static func compute(_ bytes: UnsafeBufferPointer<UInt8>) -> [Double] {
        let count = bytes.count
        @inline(__always) func isLetter(_ byte: UInt8) -> Bool { (byte | 0x20) &- 0x61 < 26 }
        @inline(__always) func isDigit(_ byte: UInt8) -> Bool { byte &- 0x30 < 10 }
        @inline(__always) func lower(_ byte: UInt8) -> UInt8 { byte &- 0x41 < 26 ? byte | 0x20 : byte }
        /// Whether the bytes at `offset` are `pattern`, letters compared in lower case when `folding`.
        func matches(_ pattern: StaticString, at offset: Int, folding: Bool) -> Bool {
            let length = pattern.utf8CodeUnitCount
            guard offset + length <= count else { return false }
            let start = pattern.utf8Start
            for k in 0..<length where (folding ? lower(bytes[offset + k]) : bytes[offset + k]) != start[k] {
                return false
            }
            return true
        }

        // The question: the bytes before the first line whose first non-blank bytes are "A.", "A)" or "(A)".
        var question = count
        var lineStart = 0
        lines: while lineStart < count {
            var offset = lineStart
            while offset < count, bytes[offset] == 0x20 || bytes[offset] == 0x09 { offset += 1 }
            if matches("A.", at: offset, folding: false) || matches("A)", at: offset, folding: false)
                || matches("(A)", at: offset, folding: false) {
                question = lineStart
                break
            }
            while offset < count {
                offset += 1
                if bytes[offset - 1] == 0x0A {
                    lineStart = offset
                    continue lines
                }
            }
            break
        }

        var statements = false, negations = 0, words = 0, letters = 0, symbols = 0, numbers = 0
        var index = 0
        while index < count {
            let byte = bytes[index]
            if isLetter(byte) {
                var end = index + 1, hasS = byte | 0x20 == 0x73
                while end < count, isLetter(bytes[end]) {
                    if bytes[end] | 0x20 == 0x73 { hasS = true }
                    end += 1
                }
                let length = end - index
                words += 1
                letters += length
                if length == 2, byte == 0x49, bytes[index + 1] == 0x49 { statements = true }  // "II"
                if length == 1, byte == 0x49, end + 1 < count, bytes[end] == 0x2E {           // "I." + blank
                    switch bytes[end + 1] {
                    case 0x20, 0x09, 0x0A, 0x0D: statements = true
                    default: break
                    }
                }
                if isNegation(bytes, index, length) { negations += 1 }
                // "statement 1", "scenario 1" (any case) and "sqrt" count wherever they start inside a word
                for start in index..<end where hasS && bytes[start] | 0x20 == 0x73 {
                    if matches("statement 1", at: start, folding: true) || matches("scenario 1", at: start, folding: true) {
                        statements = true
                    }
                    if matches("sqrt", at: start, folding: false) { symbols += 1 }
                }
                index = end
                continue
            }
            switch byte {
            case 0x3D, 0x2B, 0x5E, 0x2A, 0x2F, 0x3C, 0x3E: symbols += 1  // = + ^ * / < >
            case 0x27:  // "n't"
                if index > 0, lower(bytes[index - 1]) == 0x6E, index + 1 < count, lower(bytes[index + 1]) == 0x74 {
                    negations += 1
                }
            case 0x2E:  // "3.14" is one number
                if index > 0, index + 1 < count, isDigit(bytes[index - 1]), isDigit(bytes[index + 1]) { numbers -= 1 }
            default:
                if isDigit(byte), index == 0 || !isDigit(bytes[index - 1]) { numbers += 1 }
            }
            index += 1
        }
        return [
            log1p(Double(question)),
            words == 0 ? 0 : Double(letters) / Double(words),
            statements ? 1 : 0,
            log1p(Double(symbols)),
            log1p(Double(numbers)),
            log1p(Double(negations)),
        ]
    }

    /// not, except, least, false, incorrect, never, cannot, unlikely (any case), as whole words: the word's
    /// letters lower-cased and packed into an integer, compared with the packed negations of its length.
    @inline(__always)
    private static func isNegation(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int, _ length: Int) -> Bool {
        guard length >= 3, length <= 9 else { return false }
        var packed: UInt64 = 0
        for k in 0..<min(length, 8) { packed = packed << 8 | UInt64(bytes[start + k] | 0x20) }
        switch length {
        case 3: return packed == Packed.not
        case 5: return packed == Packed.least || packed == Packed.false || packed == Packed.never
        case 6: return packed == Packed.except || packed == Packed.cannot
        case 8: return packed == Packed.unlikely
        case 9: return packed == Packed.incorrec && bytes[start + 8] | 0x20 == 0x74  // "incorrec" + "t"
        default: return false
        }
    }

    private enum Packed {
        static func pack(_ word: StaticString) -> UInt64 {
            var packed: UInt64 = 0
            for k in 0..<word.utf8CodeUnitCount { packed = packed << 8 | UInt64(word.utf8Start[k]) }
            return packed
        }
        static let not = pack("not"), least = pack("least"), `false` = pack("false"), never = pack("never")
        static let except = pack("except"), cannot = pack("cannot"), unlikely = pack("unlikely")
        static let incorrec = pack("incorrec")
    }
}

/// How often each feature index occurs in one prompt: an open-addressing table, because a general dictionary
/// costs most of a long prompt's decision time.
struct IndexCounts {
    /// Index + 1 per slot, 0 where the slot is free.
    private var keys: [UInt32]
    private var counts: [UInt32]
    private(set) var count = 0

    /// Sized so that `expectedKeys` keys fit without growing (prose has about one key per four bytes).
    init(expectedKeys: Int) {
        var capacity = 256
        while capacity < 2 * expectedKeys { capacity *= 2 }
        keys = [UInt32](repeating: 0, count: capacity)
        counts = [UInt32](repeating: 0, count: capacity)
    }

    @inline(__always)
    mutating func add(_ index: UInt32) {
        if 2 * (count + 1) > keys.count { grow() }
        let key = index &+ 1
        let mask = keys.count - 1
        var slot = Int(truncatingIfNeeded: (key &* 0x9E37_79B1) >> 8) & mask
        while true {
            let found = keys[slot]
            if found == key {
                counts[slot] += 1
                return
            }
            if found == 0 {
                keys[slot] = key
                counts[slot] = 1
                count += 1
                return
            }
            slot = (slot + 1) & mask
        }
    }

    func forEach(_ body: (_ index: UInt32, _ count: Int) -> Void) {
        for slot in keys.indices where keys[slot] != 0 { body(keys[slot] &- 1, Int(counts[slot])) }
    }

    private mutating func grow() {
        let old = (keys, counts)
        keys = [UInt32](repeating: 0, count: old.0.count * 2)
        counts = [UInt32](repeating: 0, count: old.0.count * 2)
        let mask = keys.count - 1
        for (key, value) in zip(old.0, old.1) where key != 0 {
            var slot = Int(truncatingIfNeeded: (key &* 0x9E37_79B1) >> 8) & mask
            while keys[slot] != 0 { slot = (slot + 1) & mask }
            keys[slot] = key
            counts[slot] = value
        }
    }
}
