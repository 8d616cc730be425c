import Foundation

/// One labelled prompt of the shared routing data: how well each model answered it and what each answer cost.
public struct RoutingSample: Sendable, Hashable {
    public var id: String?
    public var source: String?
    public var group: String?
    public var prompt: String
    /// Score in [0, 1] per model name.
    public var scores: [String: Double]
    /// What each model's answer cost in USD, where the data has it.
    public var costs: [String: Double]

    public init(id: String? = nil, source: String? = nil, group: String? = nil, prompt: String,
                scores: [String: Double], costs: [String: Double] = [:]) {
        self.id = id
        self.source = source
        self.group = group
        self.prompt = prompt
        self.scores = scores
        self.costs = costs
    }
}

/// A line of a routing data file that could not be read.
public struct RoutingDatasetError: Error, Hashable, Sendable, CustomStringConvertible {
    /// 1-based line number in the file.
    public var line: Int
    public var detail: String

    public var description: String { "line \(line): \(detail)" }
}

public enum RoutingDataset {
    /// Reads JSON Lines in the format of `shared/data/routing/README.md`; blank lines are skipped.
    public static func parse(jsonLines: [UInt8]) throws(RoutingDatasetError) -> [RoutingSample] {
        let decoder = JSONDecoder()
        var samples: [RoutingSample] = []
        for (offset, line) in jsonLines.split(separator: 0x0A, omittingEmptySubsequences: false).enumerated() {
            guard line.contains(where: { $0 != 0x20 && $0 != 0x0D && $0 != 0x09 }) else { continue }
            let row: Row
            do {
                row = try decoder.decode(Row.self, from: Data(line))
            } catch {
                throw RoutingDatasetError(line: offset + 1, detail: String(describing: error))
            }
            samples.append(RoutingSample(id: row.id, source: row.source, group: row.group, prompt: row.prompt,
                                         scores: row.scores.compactMapValues { $0 },
                                         costs: (row.cost_usd ?? [:]).compactMapValues { $0 }))
        }
        return samples
    }

    private struct Row: Decodable {
        var id: String?
        var source: String?
        var group: String?
        var prompt: String
        // A model without a result (`null`) counts as missing from the row.
        var scores: [String: Double?]
        var cost_usd: [String: Double?]?
    }
}
