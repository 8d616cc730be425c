import Foundation
import Testing
@testable import TollgateCore

/// The router's features, as `tools/router/FEATURES.md` defines them: the Swift gateway must compute what the
/// Python trainer computed, or the shipped weights mean nothing.
@Suite("Router features: the same numbers as the trainer")
struct RoutingFeaturesTests {
    @Test("FNV-1a 32-bit matches its published test vectors")
    func fnvVectors() {
        #expect(RouterFeatures.fnv1a([UInt8]()) == 2_166_136_261)
        #expect(RouterFeatures.fnv1a("a".utf8) == 0xE40C_292C)
        #expect(RouterFeatures.fnv1a("foobar".utf8) == 0xBF9C_F968)
        #expect(RouterFeatures.fnv1a("u:a".utf8) == 1_594_182_125)
    }

    @Test("a repeated word: log(1 + count) per key, then unit length")
    func repeatedWord() {
        // "a a a": the key u:a three times, b:a a twice; in 16 dimensions they land on 13 and 7.
        let features = RouterFeatures(text: "a a a", dimensions: 16)
        #expect(RouterFeatures.fnv1a("u:a".utf8) % 16 == 13)
        #expect(RouterFeatures.fnv1a("b:a a".utf8) % 16 == 7)
        let norm = (log(4.0) * log(4.0) + log(3.0) * log(3.0)).squareRoot()
        #expect(features.sparse.map(\.index) == [7, 13])
        #expect(abs(features.sparse[0].value - log(3.0) / norm) < 1e-12)
        #expect(abs(features.sparse[1].value - log(4.0) / norm) < 1e-12)
        #expect(Self.close(features.dense, [log(6.0), 1, 0, 0, 0, 0]))
    }

    @Test("ASCII letters are lower-cased, other bytes kept: É is not é")
    func caseFolding() {
        let lower = RouterFeatures(text: "what is this", dimensions: 262_144)
        let upper = RouterFeatures(text: "WHAT Is tHiS", dimensions: 262_144)
        #expect(lower.sparse.map(\.index) == upper.sparse.map(\.index))
        #expect(RouterFeatures(text: "café", dimensions: 262_144).sparse.map(\.index)
            != RouterFeatures(text: "cafÉ", dimensions: 262_144).sparse.map(\.index))
        let index = Int(RouterFeatures.fnv1a("u:café".utf8) % 262_144)
        #expect(RouterFeatures(text: "Café", dimensions: 262_144).sparse.map(\.index) == [index])
    }

    @Test("keys that collide on an index add their counts before the logarithm")
    func collisions() {
        // In one dimension every key collides: "x y" has u:x, u:y and b:x y, so one entry of log(1 + 3), normalised.
        let features = RouterFeatures(text: "x y", dimensions: 1)
        #expect(features.sparse.count == 1)
        #expect(features.sparse[0].index == 0)
        #expect(features.sparse[0].value == 1)
    }

    @Test("the six prompt statistics")
    func dense() {
        // The question ends where the line "  (A) ..." starts; words: Statement, I, II, isn, t, not, sqrt, x, A, y,
        // B, z (12 words, 28 letters); "II" marks statements; symbols = + / and one sqrt; numbers 3.14, 2, 10;
        // negations isn't, not.
        let text = "Statement I. II isn't not = 3.14+2/10 sqrt(x)\n  (A) y\nB. z"
        let question = Double(text.utf8.count - "  (A) y\nB. z".utf8.count)
        let features = RouterFeatures(text: text, dimensions: 16)
        #expect(Self.close(features.dense, [log1p(question), 28.0 / 12, 1, log(5.0), log(4.0), log(3.0)]))
        #expect(RouterFeatures(text: "", dimensions: 16).dense == [0, 0, 0, 0, 0, 0])
        #expect(RouterFeatures(text: "", dimensions: 16).sparse.isEmpty)
        // "A." mid-line starts no options; "Scenario 1" inside a word still counts; "I.x" is no numeral
        let plain = RouterFeatures(text: "Is A. right? xScenario 1 I.x", dimensions: 16).dense
        #expect(plain[0] == log1p(Double("Is A. right? xScenario 1 I.x".utf8.count)))
        #expect(plain[2] == 1)
        #expect(RouterFeatures(text: "I.x and 1.2.3", dimensions: 16).dense[2] == 0)
        #expect(RouterFeatures(text: "I.x and 1.2.3", dimensions: 16).dense[4] == log(2.0))
    }

    @Test("only the first 32,768 bytes count")
    func cap() {
        let long = String(repeating: "word ", count: 10_000)
        let capped = String(long.utf8.prefix(RouterFeatures.maximumBytes))!
        let features = RouterFeatures(text: long, dimensions: 262_144)
        let expected = RouterFeatures(text: capped, dimensions: 262_144)
        #expect(features.dense == expected.dense)
        #expect(features.sparse.map(\.index) == expected.sparse.map(\.index))
        #expect(Self.close([features.dense[0]], [log(32_769.0)]))
    }

    @Test("the trainer's parity fixtures: features to 1e-9, scores to 1e-6")
    func parity() throws {
        let root = try #require(Self.repositoryRoot(), "tools/router/parity.json not found above \(#filePath)")
        let parity = try JSONDecoder().decode(ParityFile.self, from: Data(contentsOf: root.appending(path: "tools/router/parity.json")))
        let weights = try LearnedRouterWeights.parse(json: Array(Data(contentsOf: root.appending(path: parity.weights))))
        #expect(weights.dimensions == parity.dimensions)
        #expect(parity.cases.count >= 5)
        for fixture in parity.cases {
            let features = RouterFeatures(text: fixture.text, dimensions: parity.dimensions)
            #expect(features.sparse.map(\.index) == fixture.sparse_indices, "\(fixture.name)")
            for (value, expected) in zip(features.sparse.map(\.value), fixture.sparse_values) {
                #expect(abs(value - expected) < 1e-9, "\(fixture.name)")
            }
            #expect(features.dense.count == fixture.dense.count)
            for (value, expected) in zip(features.dense, fixture.dense) { #expect(abs(value - expected) < 1e-9, "\(fixture.name)") }
            #expect(abs(weights.score(text: fixture.text) - fixture.score) < 1e-6, "\(fixture.name)")
            #expect(abs(weights.score(features: features) - fixture.score) < 1e-6, "\(fixture.name)")
        }
    }

    static func close(_ values: [Double], _ expected: [Double]) -> Bool {
        values.count == expected.count && zip(values, expected).allSatisfy { abs($0 - $1) < 1e-12 }
    }

    struct ParityFile: Decodable {
        struct Case: Decodable {
            var name: String
            var text: String
            var sparse_indices: [Int]
            var sparse_values: [Double]
            var dense: [Double]
            var score: Double
        }

        var weights: String
        var dimensions: Int
        var cases: [Case]
    }

    static func repositoryRoot() -> URL? {
        var directory = URL(fileURLWithPath: #filePath).resolvingSymlinksInPath().deletingLastPathComponent()
        while directory.path != "/" {
            if FileManager.default.fileExists(atPath: directory.appending(path: "tools/router/parity.json").path) { return directory }
            directory.deleteLastPathComponent()
        }
        return nil
    }
}
