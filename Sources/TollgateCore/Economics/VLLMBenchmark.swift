import Foundation

/// A throughput point from the JSON that `vllm bench serve --save-result` (formerly
/// `benchmarks/benchmark_serving.py`) writes: `completed`, `total_input_tokens`, `total_output_tokens`,
/// `request_throughput`, `output_throughput`, `mean_ttft_ms`, `p99_ttft_ms`, `mean_tpot_ms`, `p99_tpot_ms`,
/// `max_concurrency`, `request_rate`, `model_id`, `date`.
public enum VLLMBenchmark {
    public struct Setup: Sendable {
        public var model: String?
        public var gpu: String
        public var gpus: Int
        public var precision: String
        public var engineVersion: String
        public init(model: String?, gpu: String, gpus: Int, precision: String, engineVersion: String) {
            self.model = model; self.gpu = gpu; self.gpus = gpus; self.precision = precision; self.engineVersion = engineVersion
        }
    }

    public static func point(json: Data, origin: String, id: String, setup: Setup, checked: String) throws(EconomicsDataError) -> ThroughputPoint {
        guard let object = try? JSONSerialization.jsonObject(with: json), let result = object as? [String: Any] else {
            throw EconomicsDataError(origin: origin, problem: "is not a JSON object (expected the file `vllm bench serve --save-result` writes)")
        }
        func number(_ field: String) -> Double? {
            guard let value = result[field] as? NSNumber, !(result[field] is String) else { return nil }
            let double = value.doubleValue
            return double.isFinite ? double : nil
        }
        func required(_ field: String) throws(EconomicsDataError) -> Double {
            guard let value = number(field) else { throw EconomicsDataError(origin: origin, field: field, problem: "is missing or not a number") }
            return value
        }
        let completed = try required("completed")
        guard completed >= 1 else { throw EconomicsDataError(origin: origin, field: "completed", problem: "no request completed") }
        let input = try required("total_input_tokens") / completed
        let output = try required("total_output_tokens") / completed
        guard input >= 1, output >= 1 else {
            throw EconomicsDataError(origin: origin, field: "total_output_tokens", problem: "the requests averaged under one token in or out")
        }
        let requestsPerSecond = try required("request_throughput")
        let outputPerSecond = try required("output_throughput")
        guard requestsPerSecond > 0, outputPerSecond > 0 else {
            throw EconomicsDataError(origin: origin, field: "request_throughput", problem: "must be above 0")
        }
        guard let model = setup.model ?? (result["model_id"] as? String) else {
            throw EconomicsDataError(origin: origin, field: "model_id", problem: "is missing: name the model with --model")
        }
        let concurrency = number("max_concurrency").map { Int($0) }
        // A finite request rate or a concurrency cap is a serving point whose latencies are its target; with
        // neither, every request was sent at once: maximum throughput.
        let rate = number("request_rate")
        let limited = concurrency != nil || (rate.map { $0 > 0 } ?? false)
        var target: [String] = []
        if let ttft = number("p99_ttft_ms") { target.append("TTFT p99 \(Int(ttft.rounded())) ms") }
        if let tpot = number("p99_tpot_ms") { target.append("TPOT p99 \(String(format: "%.1f", tpot)) ms") }
        if let rate, limited, concurrency == nil { target.append("at \(rate) requests/s") }
        return ThroughputPoint(
            id: id, model: model, precision: setup.precision.lowercased(), engine: "vllm", engineVersion: setup.engineVersion,
            gpu: setup.gpu.lowercased(), gpus: setup.gpus, inputTokens: input.rounded(), outputTokens: output.rounded(),
            concurrency: concurrency, outputTokensPerSecond: outputPerSecond, requestsPerSecond: requestsPerSecond,
            ttftMs: number("mean_ttft_ms"), at: limited ? .latencyTarget : .maxThroughput,
            latencyTarget: limited && !target.isEmpty ? target.joined(separator: ", ") : nil,
            source: "vllm bench serve result \(origin)\((result["date"] as? String).map { " of " + $0 } ?? "")",
            checked: checked, note: nil)
    }
}

extension ThroughputPoint {
    /// The row as the economics file holds it.
    public var fileObject: [String: Any] {
        var row: [String: Any] = [
            "id": id, "model": model, "precision": precision, "engine": engine, "engine_version": engineVersion, "gpu": gpu,
            "gpus": gpus, "input_tokens": inputTokens, "output_tokens": outputTokens, "output_tokens_per_s": outputTokensPerSecond,
            "requests_per_s": requestsPerSecond, "at": at.rawValue, "source": source, "checked": checked,
        ]
        if !appliesTo.isEmpty { row["applies_to"] = appliesTo }
        if let concurrency { row["concurrency"] = concurrency }
        if let ttftMs { row["ttft_ms"] = ttftMs }
        if let latencyTarget { row["latency_target"] = latencyTarget }
        if let note { row["note"] = note }
        return row
    }
}
