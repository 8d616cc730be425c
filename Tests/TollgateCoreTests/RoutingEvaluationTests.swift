import Foundation
import Testing
@testable import TollgateCore

/// The route-eval figures on data small enough to work out by hand. Four rows: the strong model answers all,
/// the weak one only the last two, so quality_S = 1, quality_W = 0.5, and only rows 0 and 1 gain from strong.
@Suite("Route evaluation: APGR, CPT and the portfolio curve")
struct RoutingEvaluationTests {
    let strong = [1.0, 1, 1, 1]
    let weak = [0.0, 0, 1, 1]

    func close(_ value: Double?, _ expected: Double) -> Bool { value.map { abs($0 - expected) < 1e-12 } ?? false }

    @Test("a perfect router recovers the whole gap with half the strong calls")
    func perfect() {
        let curve = RoutingCurve(strongScores: strong, weakScores: weak, routerScores: [4, 3, 2, 1])
        #expect(curve.qualities == [0.5, 0.75, 1, 1, 1])
        // PGR 0, .5, 1, 1, 1 at shares 0, ¼, ½, ¾, 1.
        #expect(close(curve.apgr, 0.75))
        let summary = RouterSummary(curve)
        #expect(close(summary.cpt50, 0.25))
        #expect(close(summary.cpt80, 0.4))
        #expect(close(summary.qualityAt20, 0.7))
        #expect(close(summary.qualityAt50, 1))
        #expect(close(summary.qualityAt80, 1))
    }

    @Test("a reversed router does worse than random")
    func reversed() {
        let curve = RoutingCurve(strongScores: strong, weakScores: weak, routerScores: [1, 2, 3, 4])
        #expect(curve.qualities == [0.5, 0.5, 0.5, 0.75, 1])
        #expect(close(curve.apgr, 0.25))
        #expect(close(curve.strongShare(reachingPGR: 0.5), 0.75))
        #expect(close(curve.strongShare(reachingPGR: 0.8), 0.9))
    }

    @Test("random routing: APGR 0.5, CPT(50 %) 50 %, CPT(80 %) 80 %, quality on the straight line")
    func random() {
        let curve = RoutingCurve.random(strongQuality: 1, weakQuality: 0.5)
        let summary = RouterSummary(curve)
        #expect(close(summary.apgr, 0.5))
        #expect(close(summary.cpt50, 0.5))
        #expect(close(summary.cpt80, 0.8))
        #expect(close(summary.qualityAt20, 0.6))
        #expect(close(summary.qualityAt80, 0.9))
    }

    @Test("a router that scores every row alike is random routing: ties share their mean")
    func constant() {
        let curve = RoutingCurve(strongScores: strong, weakScores: weak, routerScores: [7, 7, 7, 7])
        #expect(curve.qualities == [0.5, 0.625, 0.75, 0.875, 1])
        #expect(close(curve.apgr, 0.5))
        #expect(close(curve.strongShare(reachingPGR: 0.8), 0.8))
    }

    @Test("equal models leave PGR undefined rather than divide by zero")
    func noGap() {
        let curve = RoutingCurve(strongScores: [1, 0], weakScores: [1, 0], routerScores: [1, 2])
        #expect(curve.apgr.isNaN)
        #expect(curve.strongShare(reachingPGR: 0.5) == nil)
        #expect(RoutingCurve(strongScores: [], weakScores: [], routerScores: []).apgr.isNaN)
    }

    @Test("rows without both models are skipped and counted; length-only ranks longer prompts first")
    func pair() {
        let samples = [
            RoutingSample(prompt: "a long and hard question", scores: ["S": 1, "W": 0]),
            RoutingSample(prompt: "easy", scores: ["S": 1, "W": 1]),
            RoutingSample(prompt: "only strong", scores: ["S": 1]),
            RoutingSample(prompt: "other", scores: ["W": 1, "X": 0]),
        ]
        let evaluation = PairEvaluation(samples: samples, strong: "S", weak: "W") { $0 == "easy" ? 0.9 : 0.1 }
        #expect(evaluation.rows == 2 && evaluation.skipped == 2)
        #expect(evaluation.learned.qualities == [0.5, 0.5, 1])
        #expect(evaluation.lengthOnly.qualities == [0.5, 1, 1])
        #expect(evaluation.random.qualities == [0.5, 1])
        #expect(close(evaluation.lengthOnly.apgr, 0.75) && close(evaluation.learned.apgr, 0.25))
    }

    @Test("portfolio: single models, the cheapest-correct oracle and the learned curve along the cost frontier")
    func portfolio() throws {
        let costs = ["A": 0.001, "B": 0.01, "C": 0.005]
        let samples = [
            RoutingSample(prompt: "r1", scores: ["A": 1, "B": 1, "C": 0], costs: costs),
            RoutingSample(prompt: "r2", scores: ["A": 0, "B": 1, "C": 0], costs: costs),
            RoutingSample(prompt: "r3", scores: ["A": 0, "B": 0, "C": 1], costs: costs),
            RoutingSample(prompt: "r4", scores: ["A": 1, "B": 1, "C": 1], costs: costs),
            RoutingSample(prompt: "no cost", scores: ["A": 1, "B": 1, "C": 1]),
        ]
        let routerScores = ["r1": 0.5, "r2": 0.9, "r3": 0.2, "r4": 0.1]
        let portfolio = try #require(PortfolioEvaluation(samples: samples, models: ["A", "B", "C"]) { routerScores[$0] ?? 0 })
        #expect(portfolio.rows == 4 && portfolio.skipped == 1)
        #expect(portfolio.singles.map(\.quality) == [0.5, 0.75, 0.5])
        #expect(portfolio.bestSingle.label == "B" && portfolio.cheapestSingle.label == "A")
        // C costs more than A and scores no better: it is not on the frontier.
        #expect(portfolio.frontier == ["A", "B"])
        #expect(close(portfolio.oracle.quality, 1) && close(portfolio.oracle.costPer1000, 4.25))
        #expect(portfolio.curve.count == 11)
        #expect(close(portfolio.curve[0].quality, 0.5) && close(portfolio.curve[0].costPer1000, 1))
        // 10 %: 0.4 of row r2 goes to B; 30 %: all of r2 and 0.2 of r1.
        #expect(close(portfolio.curve[1].quality, 0.6) && close(portfolio.curve[1].costPer1000, 1.9))
        #expect(close(portfolio.curve[3].quality, 0.75) && close(portfolio.curve[3].costPer1000, 3.7))
        #expect(close(portfolio.curve[10].quality, 0.75) && close(portfolio.curve[10].costPer1000, 10))
        #expect(close(portfolio.costToMatchBest, 3.7))
        #expect(PortfolioEvaluation(samples: samples, models: ["A", "Z"]) { _ in 0 } == nil)
    }

    @Test("JSON Lines: blank lines skipped, null results dropped, a bad line named")
    func dataset() throws {
        let text = """
            {"id": "x/1", "source": "s", "group": "g", "prompt": "hi", "scores": {"S": 1.0, "W": null}, "cost_usd": {"S": 0.002}}

            {"prompt": "two", "scores": {"S": 0, "W": 1}}
            """
        let samples = try RoutingDataset.parse(jsonLines: Array(text.utf8))
        #expect(samples == [
            RoutingSample(id: "x/1", source: "s", group: "g", prompt: "hi", scores: ["S": 1], costs: ["S": 0.002]),
            RoutingSample(prompt: "two", scores: ["S": 0, "W": 1]),
        ])
        #expect(throws: RoutingDatasetError.self) { try RoutingDataset.parse(jsonLines: Array("{\"prompt\": 1}\n".utf8)) }
        do {
            _ = try RoutingDataset.parse(jsonLines: Array("\n{\"prompt\": \"a\", \"scores\": {}}\n{oops\n".utf8))
            Issue.record("a bad line was accepted")
        } catch {
            #expect(error.line == 3)
        }
    }
}
