import Foundation

/// Why a router weights file was refused, naming the field.
public struct LearnedRouterWeightsError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Problem: Hashable, Sendable {
        case notJSON(String)
        case unsupportedVersion(Int)
        case outOfRange(String)
        case wrongCount(expected: Int, found: Int)
        case notANumber(String)
        case unknownFeatures([String])
    }

    public var field: String?
    public var problem: Problem

    public init(field: String? = nil, problem: Problem) {
        self.field = field
        self.problem = problem
    }

    public var description: String {
        let place = field.map { "router weights field \"\($0)\"" } ?? "router weights"
        let what = switch problem {
        case .notJSON(let detail): "are not a weights document: \(detail)"
        case .unsupportedVersion(let version): "version \(version) is not supported (only 2)"
        case .outOfRange(let text): "\(text) is out of range"
        case .wrongCount(let expected, let found): "must have \(expected) values, has \(found)"
        case .notANumber(let text): "\"\(text)\" is not a number"
        case .unknownFeatures(let names):
            "names \(names) but this gateway computes \(RouterFeatures.denseNames) (FEATURES.md v2)"
        }
        return place + ": " + what
    }
}

/// Where one request goes, and the score that sent it there.
public struct RouteDecision: Sendable, Hashable {
    public var useStrong: Bool
    /// The predicted probability that the strong model is needed.
    public var score: Double

    public init(useStrong: Bool, score: Double) {
        self.useStrong = useStrong
        self.score = score
    }
}

/// A logistic regression over `RouterFeatures`, as exported by `tools/router/train.py` (format v2 of
/// `tools/router/FEATURES.md`).
public struct LearnedRouterWeights: Sendable {
    /// The largest feature space accepted: the weights live in one array of this many entries.
    public static let maximumDimensions = 1 << 24

    public var dimensions: Int { sparseTable.count }
    public var bias: Double
    public var dense: [Double]
    /// The score threshold that sends a given share of the training prompts to the strong model, by share,
    /// ascending in share.
    public var thresholds: [(share: Double, threshold: Double)]
    public var trainedOn: String?
    public var strong: String?
    public var weak: String?
    public var heldOut: [String]
    public var metrics: [String: Double]

    /// One weight per feature index, zero where the file has none: a lookup per key on the request path.
    private var sparseTable: [Double]
    /// Whether any hashed-word weight is non-zero; without one, a prompt's words are not hashed at all.
    private var hasSparse: Bool

    /// The non-zero sparse weights, by feature index.
    public var sparse: [Int: Double] {
        var weights: [Int: Double] = [:]
        for (index, weight) in sparseTable.enumerated() where weight != 0 { weights[index] = weight }
        return weights
    }

    public init(dimensions: Int, bias: Double, sparse: [Int: Double], dense: [Double],
                thresholds: [(share: Double, threshold: Double)], trainedOn: String? = nil, strong: String? = nil,
                weak: String? = nil, heldOut: [String] = [], metrics: [String: Double] = [:]) throws(LearnedRouterWeightsError) {
        guard dimensions > 0, dimensions <= Self.maximumDimensions else {
            throw LearnedRouterWeightsError(field: "dimensions", problem: .outOfRange(String(dimensions)))
        }
        guard dense.count == RouterFeatures.denseCount else {
            throw LearnedRouterWeightsError(field: "dense", problem: .wrongCount(expected: RouterFeatures.denseCount, found: dense.count))
        }
        var table = [Double](repeating: 0, count: dimensions)
        for (index, weight) in sparse {
            guard (0..<dimensions).contains(index) else {
                throw LearnedRouterWeightsError(field: "sparse", problem: .outOfRange(String(index)))
            }
            table[index] = weight
        }
        for (share, _) in thresholds where !(0...1).contains(share) {
            throw LearnedRouterWeightsError(field: "thresholds", problem: .outOfRange(String(share)))
        }
        self.sparseTable = table
        self.hasSparse = !sparse.values.allSatisfy { $0 == 0 }
        self.bias = bias
        self.dense = dense
        self.thresholds = thresholds.sorted { $0.share < $1.share }
        self.trainedOn = trainedOn
        self.strong = strong
        self.weak = weak
        self.heldOut = heldOut
        self.metrics = metrics
    }

    /// Reads a weights file (JSON, format v2).
    public static func parse(json: [UInt8]) throws(LearnedRouterWeightsError) -> LearnedRouterWeights {
        let document: WeightsDocument
        let decoder = JSONDecoder()
        // Python's json module writes NaN for an undefined metric; JSON5 reads it.
        decoder.allowsJSON5 = true
        do {
            document = try decoder.decode(WeightsDocument.self, from: Data(json))
        } catch {
            throw LearnedRouterWeightsError(problem: .notJSON(String(describing: error)))
        }
        guard document.version == 2 else {
            throw LearnedRouterWeightsError(field: "version", problem: .unsupportedVersion(document.version))
        }
        if let names = document.dense_features, names != RouterFeatures.denseNames {
            throw LearnedRouterWeightsError(field: "dense_features", problem: .unknownFeatures(names))
        }
        var sparse: [Int: Double] = [:]
        sparse.reserveCapacity(document.sparse.count)
        for (key, weight) in document.sparse {
            guard let index = Int(key) else { throw LearnedRouterWeightsError(field: "sparse", problem: .notANumber(key)) }
            sparse[index] = weight
        }
        var thresholds: [(share: Double, threshold: Double)] = []
        for (key, threshold) in document.thresholds ?? [:] {
            guard let share = Double(key) else { throw LearnedRouterWeightsError(field: "thresholds", problem: .notANumber(key)) }
            thresholds.append((share, threshold))
        }
        return try LearnedRouterWeights(
            dimensions: document.dimensions, bias: document.bias, sparse: sparse, dense: document.dense,
            thresholds: thresholds, trainedOn: document.trained_on, strong: document.strong, weak: document.weak,
            heldOut: document.held_out ?? [], metrics: document.metrics?.values ?? [:])
    }

    /// The weights as a format v2 JSON document, keys sorted.
    public func json() -> [UInt8] {
        var sparse: [String: Double] = [:]
        for (index, weight) in sparseTable.enumerated() where weight != 0 { sparse[String(index)] = weight }
        var thresholds: [String: Double] = [:]
        for (share, threshold) in self.thresholds { thresholds[String(share)] = threshold }
        let document = WeightsDocument(
            version: 2, dense_features: RouterFeatures.denseNames, dimensions: dimensions, bias: bias, sparse: sparse, dense: dense, thresholds: thresholds,
            trained_on: trainedOn, strong: strong, weak: weak, held_out: heldOut, metrics: LenientNumbers(values: metrics))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        // Encoding plain strings and finite numbers cannot fail; non-finite metrics are dropped by LenientNumbers.
        return (try? Array(encoder.encode(document))) ?? []
    }

    /// The predicted probability that the strong model is needed for `text`.
    public func score(text: String) -> Double {
        var text = text
        return text.withUTF8 { score(PromptScan(bytes: $0, dimensions: dimensions, hashing: hasSparse)) }
    }

    public func score(features: RouterFeatures) -> Double {
        var logit = bias
        for (index, value) in features.sparse where index < sparseTable.count { logit += sparseTable[index] * value }
        for (weight, value) in zip(dense, features.dense) { logit += weight * value }
        return Self.sigmoid(logit)
    }

    func score(_ scan: PromptScan) -> Double {
        var sparseSum = 0.0
        sparseTable.withUnsafeBufferPointer { table in
            for (index, value) in zip(scan.indices, scan.logCounts) { sparseSum += table[index] * value }
        }
        var logit = bias + (scan.norm > 0 ? sparseSum / scan.norm : sparseSum)
        for (weight, value) in zip(dense, scan.dense) { logit += weight * value }
        return Self.sigmoid(logit)
    }

    /// The score at or above which a request goes to the strong model so that about `strongShare` of the
    /// training prompts would: linear between the stored shares, `+∞` at 0 (never strong), 0 at 1 (always).
    public func threshold(forStrongShare strongShare: Double) -> Double {
        if strongShare.isNaN || strongShare <= 0 { return .infinity }
        if strongShare >= 1 { return 0 }
        // A score never exceeds 1, so 1 is the threshold for a share just above 0.
        let anchors = [(share: 0.0, threshold: 1.0)] + thresholds.filter { $0.share > 0 && $0.share < 1 } + [(share: 1.0, threshold: 0.0)]
        let upper = anchors.firstIndex { $0.share >= strongShare } ?? anchors.count - 1
        let (high, low) = (anchors[upper], anchors[upper - 1])
        if high.share == strongShare { return high.threshold }
        let fraction = (strongShare - low.share) / (high.share - low.share)
        return low.threshold + fraction * (high.threshold - low.threshold)
    }

    public func decide(text: String, strongShare: Double) -> RouteDecision {
        let score = score(text: text)
        return RouteDecision(useStrong: score >= threshold(forStrongShare: strongShare), score: score)
    }

    static func sigmoid(_ logit: Double) -> Double {
        logit >= 0 ? 1 / (1 + exp(-logit)) : exp(logit) / (1 + exp(logit))
    }
}

/// The JSON shape of FEATURES.md; field names as written there.
private struct WeightsDocument: Codable {
    var version: Int
    var dense_features: [String]?
    var dimensions: Int
    var bias: Double
    var sparse: [String: Double]
    var dense: [Double]
    var thresholds: [String: Double]?
    var trained_on: String?
    var strong: String?
    var weak: String?
    var held_out: [String]?
    var metrics: LenientNumbers?
}

/// A JSON object of which only the finite numbers matter: `metrics` is informative, and a trainer may write
/// `null` or text there.
private struct LenientNumbers: Codable {
    var values: [String: Double]

    init(values: [String: Double]) { self.values = values }

    private struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Key.self)
        var values: [String: Double] = [:]
        for key in container.allKeys {
            if let value = try? container.decode(Double.self, forKey: key) { values[key.stringValue] = value }
        }
        self.values = values
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Key.self)
        for (key, value) in values where value.isFinite { try container.encode(value, forKey: Key(stringValue: key)) }
    }
}
