import Foundation
import Testing
@testable import TollgateCore

@Suite("Learned router: weights, score and threshold")
struct RoutingWeightsTests {
    static func weights(bias: Double = 0, sparse: [Int: Double] = [:], dense: [Double] = Array(repeating: 0, count: 6)) throws
        -> LearnedRouterWeights {
        try LearnedRouterWeights(dimensions: 16, bias: bias, sparse: sparse, dense: dense,
                                 thresholds: [(0.8, 0.2), (0.2, 0.6), (0.5, 0.4)], trainedOn: "synthetic", strong: "big",
                                 weak: "small", heldOut: ["virology"], metrics: ["apgr": 0.61])
    }

    @Test("the score is the sigmoid of bias plus the weighted features")
    func score() throws {
        // "a": one key u:a at index 13 of 16 with value 1; dense = [log 2, 1, 0, 0, 0, 0].
        let router = try Self.weights(bias: -1, sparse: [13: 2, 7: 5], dense: [1, 0.5, 9, 9, 9, 9])
        let logit = -1 + 2 + log(2.0) + 0.5
        #expect(abs(router.score(text: "a") - 1 / (1 + exp(-logit))) < 1e-12)
        #expect(abs(router.score(features: RouterFeatures(text: "a", dimensions: 16)) - router.score(text: "a")) < 1e-12)
        #expect(try Self.weights(bias: -800).score(text: "") == 0)
        #expect(try Self.weights(bias: 800).score(text: "") == 1)
    }

    @Test("a strong share becomes a threshold between the stored ones; 0 never and 1 always sends strong")
    func thresholds() throws {
        let router = try Self.weights()
        #expect(router.threshold(forStrongShare: 0) == .infinity)
        #expect(router.threshold(forStrongShare: -1) == .infinity)
        #expect(router.threshold(forStrongShare: 1) == 0)
        #expect(router.threshold(forStrongShare: 0.5) == 0.4)
        #expect(abs(router.threshold(forStrongShare: 0.35) - 0.5) < 1e-12)
        #expect(abs(router.threshold(forStrongShare: 0.1) - 0.8) < 1e-12)
        #expect(abs(router.threshold(forStrongShare: 0.9) - 0.1) < 1e-12)
    }

    @Test("decide sends a request strong when its score reaches the share's threshold")
    func decide() throws {
        let router = try Self.weights()
        // Bias 0 and no features: every prompt scores 0.5.
        #expect(router.decide(text: "anything", strongShare: 0.5) == RouteDecision(useStrong: true, score: 0.5))
        #expect(router.decide(text: "anything", strongShare: 0.2) == RouteDecision(useStrong: false, score: 0.5))
        #expect(!router.decide(text: "anything", strongShare: 0).useStrong)
        #expect(try Self.weights(bias: -800).decide(text: "", strongShare: 1).useStrong)
    }

    @Test("weights survive a JSON round trip")
    func roundTrip() throws {
        let router = try Self.weights(bias: -0.12, sparse: [0: 0.31, 13: -1e-4, 15: 2.5], dense: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
        let again = try LearnedRouterWeights.parse(json: router.json())
        #expect(again.dimensions == 16)
        #expect(again.bias == -0.12)
        #expect(again.sparse == [0: 0.31, 13: -1e-4, 15: 2.5])
        #expect(again.dense == router.dense)
        #expect(again.thresholds.map(\.share) == [0.2, 0.5, 0.8])
        #expect(again.thresholds.map(\.threshold) == [0.6, 0.4, 0.2])
        #expect(again.trainedOn == "synthetic" && again.strong == "big" && again.weak == "small")
        #expect(again.heldOut == ["virology"] && again.metrics == ["apgr": 0.61])
        for text in ["", "a", "What is the capital of France?"] { #expect(again.score(text: text) == router.score(text: text)) }
    }

    @Test("the trainer's file reads, NaN metrics and nested metrics included")
    func trainerFile() throws {
        let json = """
            {"version": 2, "dense_features": ["log_question_bytes", "mean_word_length", "statements", "log_math_symbols",
             "log_numbers", "log_negations"], "dimensions": 8, "bias": -0.5, "sparse": {"3": 0.25}, "dense": [0, 0, 0, 0, 0, 0],
             "thresholds": {"0.1": 0.7, "0.9": 0.2}, "trained_on": "x", "strong": "s", "weak": "w", "held_out": [],
             "metrics": {"apgr": 0.6, "cv": {"apgr": NaN}, "evaluated_on": "held-out"}}
            """
        let router = try LearnedRouterWeights.parse(json: Array(json.utf8))
        #expect(router.sparse == [3: 0.25])
        #expect(router.metrics == ["apgr": 0.6])
        #expect(router.threshold(forStrongShare: 0.1) == 0.7)
    }

    @Test("a weights file that does not fit is refused, naming the field")
    func refused() {
        func problem(_ json: String) -> LearnedRouterWeightsError? {
            do {
                _ = try LearnedRouterWeights.parse(json: Array(json.utf8))
                return nil
            } catch {
                return error
            }
        }
        let dense = "\"dense\": [0, 0, 0, 0, 0, 0]"
        #expect(problem("{\"version\": 1, \"dimensions\": 8, \"bias\": 0, \"sparse\": {}, \(dense)}")?.field == "version")
        #expect(problem("{\"version\": 2, \"dense_features\": [\"a\"], \"dimensions\": 8, \"bias\": 0, \"sparse\": {}, \(dense)}")?
            .field == "dense_features")
        #expect(problem("{\"version\": 2, \"dimensions\": 8, \"bias\": 0, \"sparse\": {}, \"dense\": [0]}")?.field == "dense")
        #expect(problem("{\"version\": 2, \"dimensions\": 8, \"bias\": 0, \"sparse\": {\"8\": 1}, \(dense)}")?.field == "sparse")
        #expect(problem("{\"version\": 2, \"dimensions\": 8, \"bias\": 0, \"sparse\": {\"x\": 1}, \(dense)}")?.field == "sparse")
        #expect(problem("{\"version\": 2, \"dimensions\": 0, \"bias\": 0, \"sparse\": {}, \(dense)}")?.field == "dimensions")
        #expect(problem("not json") != nil)
    }
}
