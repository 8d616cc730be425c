import ArgumentParser
import Foundation
import TollgateCore
import TollgateServer

struct RouteEval: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "route-eval",
        abstract: "Measure the learned router on labelled data: APGR, CPT and quality against random and length-only routing.",
        discussion: """
            tollgate route-eval --data gpt4_vs_mixtral_mmlu_train.jsonl --strong gpt-4-1106-preview --weak mixtral-8x7b-instruct-v0.1
            tollgate route-eval --data routerbench_mbpp_train.jsonl --strong gpt-4-1106-preview --weak mistralai/mixtral-8x7b-chat \\
                --models claude-instant-v1,gpt-3.5-turbo-1106,gpt-4-1106-preview
            """)

    @Option(help: "Labelled routing data, JSON Lines (prompt, scores and optional cost_usd per model).") var data: String
    @Option(help: "The strong model, as named in the data.") var strong: String
    @Option(help: "The weak model, as named in the data.") var weak: String
    @Option(help: "Router weights JSON (default: the router that ships with Tollgate).") var weights: String?
    @Option(help: "Comma-separated models with costs in the data: the portfolio's quality–cost curve.") var models: String?
    @Flag(help: "Print JSON instead of tables.") var json = false

    func run() throws {
        let router: LearnedRouterWeights
        let samples: [RoutingSample]
        do {
            router = try weights.map { try LearnedRouterWeights.parse(json: Array(Data(contentsOf: URL(fileURLWithPath: $0)))) }
                ?? DefaultRouterWeights.load()
            samples = try RoutingDataset.parse(jsonLines: Array(Data(contentsOf: URL(fileURLWithPath: data))))
        } catch {
            FileHandle.standardError.write(Data("tollgate: \(error)\n".utf8))
            throw ExitCode.failure
        }
        let portfolioModels = (models ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        let known = Set(samples.flatMap(\.scores.keys))
        for model in [strong, weak] + portfolioModels where !known.contains(model) {
            throw ValidationError("No row of \(data) has a score for \(model); its models: \(known.sorted().joined(separator: ", ")).")
        }

        var latencies: [Duration] = []
        latencies.reserveCapacity(samples.count)
        let clock = ContinuousClock()
        let scoreTimed = { (prompt: String) -> Double in
            var score = 0.0
            latencies.append(clock.measure { score = router.score(text: prompt) })
            return score
        }
        let pair = PairEvaluation(samples: samples, strong: strong, weak: weak, routerScore: scoreTimed)
        let portfolio = portfolioModels.isEmpty ? nil
            : PortfolioEvaluation(samples: samples, models: portfolioModels) { router.score(text: $0) }
        latencies.sort()
        let latency = (p50: Self.microseconds(latencies, 0.5), p99: Self.microseconds(latencies, 0.99))

        if json {
            printJSON(pair: pair, portfolio: portfolio, requestedPortfolio: !portfolioModels.isEmpty, latency: latency)
        } else {
            printTables(pair: pair, portfolio: portfolio, requestedPortfolio: !portfolioModels.isEmpty, latency: latency)
        }
    }

    static func microseconds(_ sorted: [Duration], _ quantile: Double) -> Double {
        guard !sorted.isEmpty else { return 0 }
        let duration = sorted[min(sorted.count - 1, Int((Double(sorted.count) * quantile).rounded(.down)))]
        return Double(duration.components.seconds) * 1e6 + Double(duration.components.attoseconds) / 1e12
    }

    private func printTables(pair: PairEvaluation, portfolio: PortfolioEvaluation?, requestedPortfolio: Bool,
                             latency: (p50: Double, p99: Double)) {
        print("\(data): \(strong) (strong) vs \(weak) (weak), \(pair.rows) rows" + (pair.skipped > 0 ? ", \(pair.skipped) skipped (missing a model)" : ""))
        print("quality alone: strong \(Self.fixed(pair.learned.strongQuality)), weak \(Self.fixed(pair.learned.weakQuality))")
        print("")
        let header = ["router", "APGR", "CPT(50%)", "CPT(80%)", "Q@20%", "Q@50%", "Q@80%"]
        let rows = [("learned", pair.learned), ("length-only", pair.lengthOnly), ("random", pair.random)].map { name, curve in
            let summary = RouterSummary(curve)
            return [name, Self.fixed(summary.apgr), Self.percent(summary.cpt50), Self.percent(summary.cpt80),
                    Self.fixed(summary.qualityAt20), Self.fixed(summary.qualityAt50), Self.fixed(summary.qualityAt80)]
        }
        Self.table([header] + rows)
        print("")
        print("router decision latency: p50 \(Self.fixed(latency.p50, digits: 1)) µs, p99 \(Self.fixed(latency.p99, digits: 1)) µs")

        guard requestedPortfolio else { return }
        print("")
        guard let portfolio else {
            print("portfolio: no row has a score and a cost for every one of --models")
            return
        }
        print("portfolio: \(portfolio.rows) rows" + (portfolio.skipped > 0 ? ", \(portfolio.skipped) skipped (missing a score or a cost)" : "")
            + "; USD per 1,000 queries")
        Self.table([["model", "quality", "USD/1k"]] + portfolio.singles.map { [$0.label, Self.fixed($0.quality), Self.fixed($0.costPer1000)] }
            + [[portfolio.oracle.label, Self.fixed(portfolio.oracle.quality), Self.fixed(portfolio.oracle.costPer1000)]])
        print("best single: \(portfolio.bestSingle.label); cheapest single: \(portfolio.cheapestSingle.label)")
        print("")
        print("learned portfolio router along the cost frontier (\(portfolio.frontier.joined(separator: " → "))):")
        Self.table([["step", "quality", "USD/1k"]] + portfolio.curve.map { [$0.label, Self.fixed($0.quality), Self.fixed($0.costPer1000)] })
        if let cost = portfolio.costToMatchBest {
            print("reaches the best single model's quality at \(Self.fixed(cost)) USD/1k (best single: \(Self.fixed(portfolio.bestSingle.costPer1000)))")
        } else {
            print("never reaches the best single model's quality")
        }
    }

    private func printJSON(pair: PairEvaluation, portfolio: PortfolioEvaluation?, requestedPortfolio: Bool,
                           latency: (p50: Double, p99: Double)) {
        func summary(_ curve: RoutingCurve) -> [String: Any] {
            let summary = RouterSummary(curve)
            return ["apgr": Self.number(summary.apgr), "cpt50": Self.number(summary.cpt50), "cpt80": Self.number(summary.cpt80),
                    "q20": summary.qualityAt20, "q50": summary.qualityAt50, "q80": summary.qualityAt80]
        }
        func point(_ point: PortfolioEvaluation.Point) -> [String: Any] {
            ["label": point.label, "quality": point.quality, "cost_per_1000_usd": point.costPer1000]
        }
        var object: [String: Any] = [
            "data": data, "strong": strong, "weak": weak, "rows": pair.rows, "skipped": pair.skipped,
            "quality_strong": pair.learned.strongQuality, "quality_weak": pair.learned.weakQuality,
            "learned": summary(pair.learned), "length_only": summary(pair.lengthOnly), "random": summary(pair.random),
            "latency_us": ["p50": latency.p50, "p99": latency.p99],
        ]
        if requestedPortfolio {
            object["portfolio"] = portfolio.map { portfolio -> Any in
                [
                    "rows": portfolio.rows, "skipped": portfolio.skipped, "singles": portfolio.singles.map(point),
                    "best_single": portfolio.bestSingle.label, "cheapest_single": portfolio.cheapestSingle.label,
                    "oracle": point(portfolio.oracle), "frontier": portfolio.frontier, "curve": portfolio.curve.map(point),
                    "cost_to_match_best_per_1000_usd": Self.number(portfolio.costToMatchBest),
                ]
            } ?? NSNull()
        }
        // Every value is a string, a finite number, NSNull, or an array or object of them.
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])) ?? Data()
        print(String(decoding: data, as: UTF8.self))
    }

    /// JSON has no NaN: an undefined figure is null.
    static func number(_ value: Double?) -> Any {
        guard let value, value.isFinite else { return NSNull() }
        return value
    }

    static func fixed(_ value: Double, digits: Int = 4) -> String {
        value.isFinite ? String(format: "%.\(digits)f", value) : "-"
    }

    static func percent(_ value: Double?) -> String {
        guard let value, value.isFinite else { return "-" }
        return String(format: "%.1f%%", value * 100)
    }

    static func table(_ rows: [[String]]) {
        let widths = rows[0].indices.map { column in rows.map { $0[column].count }.max() ?? 0 }
        for row in rows {
            print(row.enumerated().map { column, text in
                column == 0 ? text.padding(toLength: widths[column], withPad: " ", startingAt: 0)
                    : String(repeating: " ", count: widths[column] - text.count) + text
            }.joined(separator: "  "))
        }
    }
}
