import Foundation
import Testing
@testable import TollgateCore

/// Four measured shapes of model "m" on GPU "g", one GPU per replica, under a latency target (counted in full):
///   (100 in, 100 out) 10 req/s → 0.1 replica-s    (1100, 100) 5 req/s → 0.2
///   (100, 1100)        2 req/s → 0.5              (1100, 1100) 1 req/s → 1.0
private func rectanglePoints(at: OperatingPoint = .latencyTarget) -> [ThroughputPoint] {
    [(100.0, 100.0, 10.0), (1100, 100, 5), (100, 1100, 2), (1100, 1100, 1)].map { input, output, rate in
        ThroughputPoint(id: "p-\(Int(input))-\(Int(output))", model: "m", precision: "fp8", engine: "e", engineVersion: "1",
                        gpu: "g", gpus: 1, inputTokens: input, outputTokens: output, outputTokensPerSecond: rate * output,
                        requestsPerSecond: rate, at: at, source: "test", checked: "2026-01-01")
    }
}

private func sample(at start: Int64, latency: Int, input: Int, cached: Int = 0, output: Int, cost: Int64 = 0) -> LedgerUsageSample {
    LedgerUsageSample(startMilliseconds: start, latencyMilliseconds: latency,
                      usage: Usage(inputTokens: input, cachedInputTokens: cached, outputTokens: output), cost: Nanodollars(cost))
}

private let operations = OperationsOverhead(hoursPerMonthBillionths: 10 * Nanodollars.perDollar, perHour: Nanodollars(decimalString: "100")!,
                                            source: "test")

@Suite("Self-host economics")
struct SelfHostEconomicsTests {
    // MARK: Interpolation

    @Test("work is bilinear inside the rectangle of measured shapes")
    func bilinearInside() throws {
        let capacity = ReplicaCapacity(points: rectanglePoints(), maxThroughputUsableShare: 0.7)
        #expect(capacity.rectangles.count == 1)
        // At the corners: the measured 1/R.
        #expect(abs(try #require(capacity.work(input: 1100, output: 100)).seconds - 0.2) < 1e-12)
        // (600, 600): u = v = 0.5. w = 0.1 + (0.2−0.1)·0.5 + (0.5−0.1)·0.5 + (1.0−0.2−0.5+0.1)·0.25
        //   = 0.1 + 0.05 + 0.2 + 0.1 = 0.45 replica-seconds.
        let (seconds, method) = try #require(capacity.work(input: 600, output: 600))
        #expect(abs(seconds - 0.45) < 1e-12)
        guard case .bilinear(_, inside: true) = method else { Issue.record("expected inside, got \(method)"); return }
        // Decode-heavy costs more than prefill-heavy of the same total: (100, 1100) 0.5 s against (1100, 100) 0.2 s.
        #expect(try #require(capacity.work(input: 100, output: 1100)).seconds > 2 * (try #require(capacity.work(input: 1100, output: 100)).seconds))
    }

    @Test("beyond the rectangle the work grows with the tokens; below it, it is the smallest shape's")
    func extrapolation() throws {
        let capacity = ReplicaCapacity(points: rectanglePoints(), maxThroughputUsableShare: 0.7)
        // (2100, 100): u = 2, v = 0 → 0.1 + 0.1·2 = 0.3.
        let (longPrompt, method) = try #require(capacity.work(input: 2100, output: 100))
        #expect(abs(longPrompt - 0.3) < 1e-12)
        guard case .bilinear(_, inside: false) = method else { Issue.record("expected extrapolated, got \(method)"); return }
        // (2100, 2100): u = v = 2 → 0.1 + 0.2 + 0.8 + 0.4·4 = 2.7.
        #expect(abs(try #require(capacity.work(input: 2100, output: 2100)).seconds - 2.7) < 1e-12)
        // (10, 10): u and v floored at 0 → 0.1, never less than the smallest measured shape.
        #expect(abs(try #require(capacity.work(input: 10, output: 10)).seconds - 0.1) < 1e-12)
    }

    @Test("a point at maximum throughput counts at the usable share; two points of one shape keep the slower")
    func usableShare() throws {
        let atMax = ReplicaCapacity(points: rectanglePoints(at: .maxThroughput), maxThroughputUsableShare: 0.5)
        // 10 req/s at maximum throughput, half usable: 5 req/s → 0.2 s.
        #expect(abs(try #require(atMax.work(input: 100, output: 100)).seconds - 0.2) < 1e-12)
        var points = rectanglePoints()
        var slower = points[0]
        slower.id = "p-100-100-busy"
        slower.requestsPerSecond = 4
        points.append(slower)
        let capacity = ReplicaCapacity(points: points, maxThroughputUsableShare: 0.7)
        #expect(abs(try #require(capacity.work(input: 100, output: 100)).seconds - 0.25) < 1e-12)
    }

    @Test("without a rectangle, the nearest shape scaled by total tokens")
    func nearestScaled() throws {
        let capacity = ReplicaCapacity(points: [rectanglePoints()[0]], maxThroughputUsableShare: 0.7)
        #expect(capacity.rectangles.isEmpty)
        // (300, 100): 400 tokens against the point's 200 → 0.1 × 2 = 0.2.
        let (seconds, method) = try #require(capacity.work(input: 300, output: 100))
        #expect(abs(seconds - 0.2) < 1e-12)
        #expect(method == .nearestScaled(pointID: "p-100-100"))
    }

    // MARK: Bucketing and slots

    @Test("requests are bucketed by uncached input (with cache writes), cached input and output")
    func bucketing() {
        #expect(ShapeBucket(Usage(inputTokens: 300, outputTokens: 70)) == ShapeBucket(input: 1, cached: 0, output: 1))
        // 200 uncached + 100 written to the cache = 300 computed: the 256–1023 class.
        #expect(ShapeBucket(Usage(inputTokens: 200, cachedInputTokens: 5000, cacheWriteTokens: 100, outputTokens: 4096))
                == ShapeBucket(input: 1, cached: 2, output: 4))
        #expect(ShapeBucket.label(1, ShapeBucket.inputEdges) == "256–1023")
        #expect(ShapeBucket.label(0, ShapeBucket.cachedEdges) == "0")
        #expect(ShapeBucket.label(4, ShapeBucket.outputEdges) == "≥4096")
    }

    @Test("a request's flight is shared between the slots it spans; rows outside the window are left out")
    func slotShares() throws {
        var profile = TrafficProfile(from: 0, to: 900_000, slotSeconds: 300)
        // From 250 s for 100 s: 50 s in slot 0 and 50 s in slot 1 → shares 0.5 and 0.5.
        profile.add(sample(at: 250_000, latency: 100_000, input: 100, output: 100, cost: 7))
        // From 850 s for 100 s: 50 s before the window's end → share 0.5 in slot 2, the rest outside.
        profile.add(sample(at: 850_000, latency: 100_000, input: 100, output: 100, cost: 5))
        profile.add(sample(at: 900_000, latency: 1, input: 100, output: 100, cost: 1000))
        profile.add(sample(at: -1, latency: 1, input: 100, output: 100, cost: 1000))
        let totals = try #require(profile.buckets[ShapeBucket(input: 0, cached: 0, output: 1)])
        #expect(totals.slotShares == [0.5, 0.5, 0.5])
        #expect(profile.inFlightMilliseconds == [50_000, 50_000, 50_000])
        #expect(profile.requests == 2 && profile.ledgerCost == Nanodollars(12))
    }

    // MARK: Sizing

    @Test("the nearest-rank percentile sizes for the busy slots: not the peak, not the average")
    func percentile() {
        // 20 slots, one of load 5: rank ⌈0.95 × 20⌉ = 19 of the sorted loads is 1 → one replica, not five.
        #expect(SelfHostEstimate.percentile(Array(repeating: 1, count: 19) + [5], 0.95) == 1)
        // Half the slots idle, half at 2: the mean is 1, the p95 is 2 → two replicas.
        let loads = Array(repeating: 0.0, count: 10) + Array(repeating: 2.0, count: 10)
        #expect(SelfHostEstimate.replicas(forLoad: SelfHostEstimate.percentile(loads, 0.95)) == 2)
        #expect(SelfHostEstimate.replicas(forLoad: 2.000_000_000_1) == 2)
        #expect(SelfHostEstimate.replicas(forLoad: 2.01) == 3)
        #expect(SelfHostEstimate.replicas(forLoad: 0) == 1)
    }

    @Test("replicas, cost, utilisation and break-even of a small window, by hand")
    func estimate() throws {
        // Three 5-minute slots. Slot 0: 6,000 requests of (100, 100), each 1 s in flight → 6000 × 0.1 s ÷ 300 s
        // = load 2.0. Slot 1: 1,500 of them → 0.5. Slot 2: none → 0.
        var profile = TrafficProfile(from: 0, to: 900_000, slotSeconds: 300)
        for index in 0..<6000 { profile.add(sample(at: Int64(index % 299) * 1000, latency: 1000, input: 100, output: 100, cost: 100_000)) }
        for index in 0..<1500 { profile.add(sample(at: 300_000 + Int64(index % 299) * 1000, latency: 1000, input: 100, output: 100, cost: 100_000)) }
        let capacity = ReplicaCapacity(points: rectanglePoints(), maxThroughputUsableShare: 0.7)
        let apiCost = profile.ledgerCost
        #expect(apiCost == Nanodollars(750_000_000))  // 7,500 × $0.0001
        let estimate = try #require(SelfHostEstimate(
            profile: profile, capacity: capacity, settings: SizingSettings(), gpusPerReplica: 1,
            perGPUHour: Nanodollars(decimalString: "2.5")!, operations: operations, apiCost: apiCost, hostedCost: nil))
        #expect(abs(estimate.slotLoads[0] - 2.0) < 1e-9 && abs(estimate.slotLoads[1] - 0.5) < 1e-9 && estimate.slotLoads[2] == 0)
        // p95 of three slots: rank ⌈2.85⌉ = 3, the busiest: 2.0 → 2 replicas.
        #expect(estimate.replicas == 2)
        // 2 replicas × 1 GPU × $2.50 × 0.25 h = $1.25.
        #expect(estimate.gpuCost == Nanodollars(1_250_000_000))
        // 10 h × $100 = $1,000 a month of 730 h; × 0.25 h ÷ 730 h = $0.342465753… → 342,465,753 nano-dollars.
        #expect(estimate.operationsCost == Nanodollars(342_465_753))
        #expect(estimate.selfHostCost == Nanodollars(1_592_465_753))
        // Mean load (2.0 + 0.5 + 0) ÷ 3 = 0.8333…; utilisation = 0.8333 ÷ 2 replicas = 0.41667.
        #expect(abs(estimate.meanLoad - 2.5 / 3) < 1e-9)
        #expect(abs(estimate.utilisation - 2.5 / 6) < 1e-9)
        // Break-even: A = $0.75, C = one replica for the window = $0.625, O = $0.342465753, p95 = 2.
        // A/p95 − C = 0.375 − 0.625 < 0: a fully used replica costs more than the API for its traffic: none.
        #expect(estimate.breakEven == nil)
    }

    @Test("the break-even volume, by hand")
    func breakEven() throws {
        // A = $100 over one day, p95 load 2, one replica $10 for the window, overhead $50, 1,000 requests.
        // A/p95 − C = 50 − 10 = 40 → r* = ⌈50 ÷ 40⌉ = 2; k* = (2 × 10 + 50) ÷ 100 = 0.7 → 700 requests a day.
        // Check: at 0.7 × the traffic the load is 1.4 → 2 replicas, $20 + $50 = $70 = 0.7 × $100.
        let dollar = Nanodollars.perDollar
        let result = try #require(SelfHostEstimate.breakEven(
            comparisonCost: Nanodollars(100 * dollar), p95Load: 2, replicaCost: Nanodollars(10 * dollar),
            overhead: Nanodollars(50 * dollar), requests: 1000, windowMilliseconds: 86_400_000))
        #expect(result.replicas == 2)
        #expect(abs(result.factor - 0.7) < 1e-12)
        #expect(abs(result.requestsPerDay - 700) < 1e-9)
        // No overhead: one replica, k* = 10 ÷ 100 = 0.1 → 100 a day.
        let bare = try #require(SelfHostEstimate.breakEven(
            comparisonCost: Nanodollars(100 * dollar), p95Load: 2, replicaCost: Nanodollars(10 * dollar), overhead: .zero,
            requests: 1000, windowMilliseconds: 86_400_000))
        #expect(bare.replicas == 1 && abs(bare.requestsPerDay - 100) < 1e-9)
        // A replica dearer than the API's price for what it carries (A/p95 = 5 < 10): never.
        #expect(SelfHostEstimate.breakEven(comparisonCost: Nanodollars(10 * dollar), p95Load: 2, replicaCost: Nanodollars(10 * dollar),
                                           overhead: .zero, requests: 1000, windowMilliseconds: 86_400_000) == nil)
    }

    @Test("cached prompt tokens count at the cached-prefix weight when the engine caches prefixes")
    func cachedPrefixes() throws {
        var profile = TrafficProfile(from: 0, to: 300_000, slotSeconds: 300)
        // 100 uncached + 1,000 cached, 100 out: with weight 0.1 the engine computes 100 + 100 = 200 → u = 0.1,
        // w = 0.1 + 0.1 × 0.1 = 0.11; without prefix caching 1,100 → u = 1 → 0.2.
        profile.add(sample(at: 0, latency: 1000, input: 100, cached: 1000, output: 100))
        let capacity = ReplicaCapacity(points: rectanglePoints(), maxThroughputUsableShare: 0.7)
        func work(_ settings: SizingSettings) throws -> Double {
            try #require(SelfHostEstimate(profile: profile, capacity: capacity, settings: settings, gpusPerReplica: 1,
                                          perGPUHour: Nanodollars(1), operations: operations, apiCost: .zero, hostedCost: nil)).buckets[0].workSeconds
        }
        #expect(abs(try work(SizingSettings(cachedPrefixWeight: 0.1)) - 0.11) < 1e-12)
        #expect(abs(try work(SizingSettings(prefixCaching: false)) - 0.2) < 1e-12)
    }

    @Test("re-pricing applies each price per request, rounded once per request")
    func repricing() {
        // $0.00015 per million tokens is 0.15 nano-dollars a token: 3 tokens cost 0.45 → 0 each, rounded per
        // request (summed first, 6 tokens would make 0.9 → 1); 4 tokens → 0.6 → 1. Total 1, not 1.5 → 2.
        let price = ModelPrice(rates: ModelPrice.Rates(input: Nanodollars(decimalString: "0.00015")!, output: .zero))
        var profile = TrafficProfile(from: 0, to: 1000, slotSeconds: 1, pricings: [price])
        profile.add(sample(at: 0, latency: 1, input: 3, output: 0))
        profile.add(sample(at: 1, latency: 1, input: 3, output: 0))
        profile.add(sample(at: 2, latency: 1, input: 4, output: 0))
        #expect(profile.pricedCosts == [Nanodollars(1)])
    }

    @Test("an owned GPU's hour: capex over its months plus power at the PUE")
    func ownedRate() {
        // 35000 ÷ (48 × 730) = 0.998858447… + 1.275 kW × 1.56 × $0.13 = 0.25857 → $1.257428447488… → 1,257,428,447.
        let owned = OwnedHardware(capexPerGPU: Nanodollars(decimalString: "35000")!, amortisationMonths: 48, powerWattsPerGPU: 1275,
                                  perKilowattHour: Nanodollars(decimalString: "0.13")!, pueBillionths: 1_560_000_000)
        #expect(owned.perGPUHour == Nanodollars(1_257_428_447))
    }

    // MARK: Data

    private static var shippedURL: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Sources/TollgateServer/Resources/economics.json")
    }

    @Test("the shipped data parses, dates every row, and sizes Llama 3.1 8B and 70B on H100 from a rectangle")
    func shippedData() throws {
        let data = try EconomicsData.parse(json: try Data(contentsOf: Self.shippedURL), origin: "economics.json")
        for model in ["llama-3.1-8b-instruct", "Meta-Llama/Llama-3.1-70B-Instruct"] {
            let plan = try SelfHostPlan(data: data, ledgerModel: model, openModel: nil, gpu: "H100", provisioning: nil)
            #expect(!plan.capacity.rectangles.isEmpty, "\(model)")
            #expect(!plan.hosted.isEmpty, "\(model)")
            #expect(plan.offer.provisioning == .onDemand && plan.offer.id == "lambda-h100-sxm-on-demand")
            // Prefill-heavy and decode-heavy shapes differ: 128 in / 2048 out against 2048 in / 128 out is
            // (2048 ÷ 22,714) ÷ (128 ÷ 3,450) = 2.43 × for 8B and (2048 ÷ 6,651) ÷ (128 ÷ 762) = 1.83 × for 70B.
            let prefill = try #require(plan.capacity.work(input: 2048, output: 128)).seconds
            let decode = try #require(plan.capacity.work(input: 128, output: 2048)).seconds
            #expect(decode > 1.8 * prefill, "\(model)")
        }
        #expect(data.offers.contains { $0.provisioning == .owned })
        #expect(data.points.allSatisfy { !$0.source.isEmpty && !$0.checked.isEmpty })
        #expect(data.hosted.allSatisfy { !$0.source.isEmpty && !$0.checked.isEmpty })
    }

    @Test("a user's rows replace shipped rows by id and add the others; a price as a float is refused, naming the row")
    func overlay() throws {
        let base = try EconomicsData.parse(json: try Data(contentsOf: Self.shippedURL), origin: "economics.json")
        let user = try EconomicsOverlay.parse(json: Data("""
            {"gpu_offers": [{"id": "lambda-h100-sxm-on-demand", "gpu": "h100", "provider": "Lambda", "provisioning": "on-demand",
                             "usd_per_gpu_hour": "1.99", "source": "our quote", "checked": "2026-11-01"},
                            {"id": "ours-3y", "gpu": "h100", "provider": "Us", "provisioning": "3-year", "usd_per_gpu_hour": "1.50",
                             "source": "contract", "checked": "2026-11-01"}],
             "operations": {"hours_per_month": "2.5", "usd_per_hour": "80", "source": "us"},
             "settings": {"percentile": 0.99}}
            """.utf8), origin: "mine.json")
        let merged = base.overlaid(with: user)
        #expect(merged.offers.count == base.offers.count + 1)
        #expect(merged.offers.first { $0.id == "lambda-h100-sxm-on-demand" }?.perGPUHour == Nanodollars(decimalString: "1.99"))
        #expect(merged.operations.perMonth == Nanodollars(200 * Nanodollars.perDollar))
        #expect(merged.settings.percentile == 0.99 && merged.settings.slotSeconds == 300)
        let plan = try SelfHostPlan(data: merged, ledgerModel: "llama-3.1-8b-instruct", openModel: nil, gpu: "h100", provisioning: .threeYear)
        #expect(plan.offer.id == "ours-3y")
        #expect(throws: EconomicsDataError(origin: "bad.json", row: "x", field: "usd_per_gpu_hour",
                                           problem: "must be a decimal string such as \"2.99\"")) {
            try EconomicsOverlay.parse(json: Data("""
                {"gpu_offers": [{"id": "x", "gpu": "h100", "provider": "p", "provisioning": "spot", "usd_per_gpu_hour": 2.5,
                                 "source": "s", "checked": "2026-01-01"}]}
                """.utf8), origin: "bad.json")
        }
    }

    @Test("sizing another model than the ledger's says its quality is not known to be equivalent")
    func qualityNote() throws {
        let data = EconomicsData(offers: [GPUOffer(id: "o", gpu: "g", provider: "P", provisioning: .onDemand, perGPUHour: Nanodollars(1),
                                                   source: "s", checked: "2026-01-01")],
                                 points: rectanglePoints(), hosted: [], operations: operations, settings: SizingSettings())
        let plan = try SelfHostPlan(data: data, ledgerModel: "gpt-4o-mini", openModel: "M", gpu: "G", provisioning: nil)
        var profile = TrafficProfile(from: 0, to: 300_000, slotSeconds: 300)
        profile.add(sample(at: 0, latency: 10, input: 100, output: 100))
        let estimate = try #require(SelfHostEstimate(profile: profile, capacity: plan.capacity, settings: plan.settings, gpusPerReplica: 1,
                                                     perGPUHour: plan.offer.perGPUHour, operations: operations, apiCost: .zero, hostedCost: nil))
        let lines = plan.assumptions(estimate, from: Date(timeIntervalSince1970: 0), to: Date(timeIntervalSince1970: 300),
                                     apiCost: .zero, repricedAPICost: nil, cheapestHosted: nil)
        #expect(lines.contains { $0.contains("quality of M is not known to be equivalent") })
        #expect(lines.contains { $0.hasPrefix("Idle hours billed") })
        #expect(lines.contains { $0.hasPrefix("Operations: 10 hours a month at $100") })
        #expect(throws: SelfHostPlanError.self) {
            try SelfHostPlan(data: data, ledgerModel: "gpt-4o-mini", openModel: "other", gpu: "g", provisioning: nil)
        }
        #expect(throws: SelfHostPlanError.self) {
            try SelfHostPlan(data: data, ledgerModel: "m", openModel: nil, gpu: "g", provisioning: .owned)
        }
    }

    @Test("a vllm bench serve result becomes a throughput point")
    func vllmImport() throws {
        // The fields `vllm bench serve --save-result` writes (a shortened file).
        let json = Data("""
            {"date": "20251001-120000", "backend": "vllm", "model_id": "meta-llama/Llama-3.1-8B-Instruct", "num_prompts": 100,
             "request_rate": "inf", "max_concurrency": 32, "duration": 8.0, "completed": 100, "total_input_tokens": 102400,
             "total_output_tokens": 12800, "request_throughput": 12.5, "output_throughput": 1600.0, "total_token_throughput": 14400.0,
             "mean_ttft_ms": 85.2, "median_ttft_ms": 80.1, "p99_ttft_ms": 240.7, "mean_tpot_ms": 18.3, "p99_tpot_ms": 25.04}
            """.utf8)
        let point = try VLLMBenchmark.point(json: json, origin: "run.json", id: "vllm-run",
                                            setup: .init(model: nil, gpu: "H100", gpus: 1, precision: "BF16", engineVersion: "0.11.0"),
                                            checked: "2026-12-01")
        #expect(point.model == "meta-llama/Llama-3.1-8B-Instruct" && point.serves("llama-3.1-8b-instruct"))
        // 102,400 ÷ 100 = 1,024 in; 12,800 ÷ 100 = 128 out.
        #expect(point.inputTokens == 1024 && point.outputTokens == 128)
        #expect(point.requestsPerSecond == 12.5 && point.outputTokensPerSecond == 1600 && point.concurrency == 32)
        #expect(point.at == .latencyTarget && point.latencyTarget == "TTFT p99 241 ms, TPOT p99 25.0 ms")
        #expect(point.gpu == "h100" && point.precision == "bf16" && point.ttftMs == 85.2)
        // Written to a file and read back, it is the same point.
        let file = try JSONSerialization.data(withJSONObject: ["throughput": [point.fileObject]])
        var back = try #require(try EconomicsOverlay.parse(json: file, origin: "mine.json").points.first)
        back.fromUserFile = point.fromUserFile
        #expect(back == point)
        #expect(throws: EconomicsDataError.self) {
            try VLLMBenchmark.point(json: Data("{\"completed\": 0}".utf8), origin: "x.json", id: "x",
                                    setup: .init(model: "m", gpu: "g", gpus: 1, precision: "fp8", engineVersion: "1"), checked: "2026-01-01")
        }
    }
}
