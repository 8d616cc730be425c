import Testing
@testable import TollgateCore

@Suite("Learned routes: the strong share calibrated on the gateway's own traffic")
struct ShareCalibrationTests {
    @Test("the threshold is the score that sends the wanted share of the window strong")
    func threshold() {
        let scores = (1...10).map { Double($0) / 10 }  // 0.1 … 1.0
        #expect(ShareCalibration.threshold(sending: 0.3, of: scores) == 0.8)  // 0.8, 0.9, 1.0 go strong
        #expect(ShareCalibration.threshold(sending: 0.25, of: scores) == 0.8)  // rounded up to whole requests
        #expect(ShareCalibration.threshold(sending: 0.01, of: scores) == 1.0)
        #expect(ShareCalibration.threshold(sending: 0, of: scores) == .infinity)
        #expect(ShareCalibration.threshold(sending: 1, of: scores) == 0)
        #expect(ShareCalibration.threshold(sending: 0.5, of: []) == .infinity)
    }

    @Test("nothing is calibrated before the minimum; then the realised share follows the setting")
    func followsTraffic() {
        var calibration = ShareCalibration(strongShare: 0.2, window: 1_000, minimumSamples: 100, refreshEvery: 10)
        // Traffic whose scores all sit far above anything the trainer saw: a fixed threshold would send all of it.
        var generator = SplitMix64(seed: 7)
        for _ in 0..<99 { calibration.record(0.9 + 0.1 * generator.unit()) }
        #expect(calibration.threshold == nil)
        calibration.record(0.95)
        let first = try! #require(calibration.threshold)
        #expect(first > 0.9)
        for _ in 0..<2_000 { calibration.record(0.9 + 0.1 * generator.unit()) }
        let threshold = try! #require(calibration.threshold)
        var strong = 0
        for _ in 0..<10_000 where 0.9 + 0.1 * generator.unit() >= threshold { strong += 1 }
        #expect(abs(Double(strong) / 10_000 - 0.2) < 0.04)
        #expect(calibration.sampleCount == 1_000)
    }

    @Test("the window forgets: a shift in traffic moves the threshold")
    func forgets() {
        var calibration = ShareCalibration(strongShare: 0.5, window: 100, minimumSamples: 10, refreshEvery: 1)
        for _ in 0..<100 { calibration.record(0.2) }
        #expect(calibration.threshold == 0.2)
        for _ in 0..<100 { calibration.record(0.7) }
        #expect(calibration.threshold == 0.7)
        calibration.record(.nan)
        #expect(calibration.sampleCount == 100)
    }
}
