import Foundation

/// The learned router's view of a prompt, computed exactly as `tools/router/FEATURES.md` (v1) specifies, so that
/// the Swift gateway and the Python trainer score the same text the same way.
public struct RouterFeatures: Sendable {
    /// Only this many leading UTF-8 bytes of a prompt are read: it bounds the decision's latency.
    public static let maximumBytes = 32_768
    /// How many dense features follow the hashed ones.
    public static let denseCount = 7

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

    init(bytes all: UnsafeBufferPointer<UInt8>, dimensions: Int) {
        precondition(dimensions > 0 && dimensions < 1 << 31, "the feature space needs 1 to 2^31 - 1 dimensions")
        let bytes = UnsafeBufferPointer(rebasing: all.prefix(RouterFeatures.maximumBytes))
        let modulus = UInt32(truncatingIfNeeded: dimensions)
        let unigramSeed = RouterFeatures.fnv1a("u:".utf8)
        let bigramSeed = RouterFeatures.fnv1a("b:".utf8)

        var counts = IndexCounts(expectedKeys: bytes.count / 4)
        var tokens = 0, digits = 0, punctuation = 0, newlines = 0, questionMarks = 0, backquoteRun = 0
        var hasFence = false

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
                    tokens += 1
                    unigram = unigramSeed
                    nextBigramPrefix = bigramSeed
                    bigram = bigramPrefix
                }
                unigram = FNV1a.adding(unigram, byte)
                nextBigramPrefix = FNV1a.adding(nextBigramPrefix, byte)
                bigram = FNV1a.adding(bigram, byte)
                if isDigit { digits += 1 }
                backquoteRun = 0
                continue
            }
            if inToken {
                inToken = false
                counts.add(unigram % modulus)
                if hasPrevious { counts.add(bigram % modulus) }
                hasPrevious = true
                bigramPrefix = FNV1a.adding(nextBigramPrefix, 0x20)
            }
            switch byte {
            case 0x21...0x2F, 0x3A...0x40, 0x5B...0x60, 0x7B...0x7E: punctuation += 1
            default: break
            }
            if byte == 0x0A { newlines += 1 }
            if byte == 0x3F { questionMarks += 1 }
            if byte == 0x60 {
                backquoteRun += 1
                if backquoteRun >= 3 { hasFence = true }
            } else {
                backquoteRun = 0
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

        let byteCount = Double(bytes.count)
        dense = [
            log1p(byteCount) / 10,
            log1p(Double(tokens)) / 10,
            bytes.isEmpty ? 0 : Double(digits) / byteCount,
            bytes.isEmpty ? 0 : Double(punctuation) / byteCount,
            min(1, Double(newlines) / 50),
            hasFence ? 1 : 0,
            min(1, Double(questionMarks) / 5),
        ]
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
