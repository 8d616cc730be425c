import Foundation

/// How long one replica is busy with one request of a given shape, interpolated from throughput points of one
/// engine setup (model, GPU, GPUs per replica, precision, engine and version).
///
/// A replica delivering R requests/s of a shape spends 1/R replica-seconds on each: its *work*. The points
/// that form a rectangle in (input length, output length) — four shapes (i₀, o₀), (i₁, o₀), (i₀, o₁), (i₁, o₁)
/// — give the work anywhere by bilinear interpolation: w = w₀₀ + (w₁₀−w₀₀)·u + (w₀₁−w₀₀)·v + (w₁₁−w₁₀−w₀₁+w₀₀)·u·v
/// with u = (i−i₀)/(i₁−i₀), v = (o−o₀)/(o₁−o₀). The u term is prefill, the v term decode, and u·v the
/// longer attention of decoding after a long prompt, which is why prefill-heavy and decode-heavy shapes differ
/// several-fold. Beyond the rectangle the same formula extrapolates (u, v > 1: more tokens, more work); a
/// request smaller than the smallest shape counts as that shape (u, v floored at 0), never as less.
public struct ReplicaCapacity: Sendable {
    public struct Rectangle: Sendable, Hashable {
        public var inputs: (Double, Double)
        public var outputs: (Double, Double)
        /// Work in replica-seconds at (i₀,o₀), (i₁,o₀), (i₀,o₁), (i₁,o₁).
        public var work: (Double, Double, Double, Double)

        public static func == (lhs: Rectangle, rhs: Rectangle) -> Bool {
            lhs.inputs == rhs.inputs && lhs.outputs == rhs.outputs && lhs.work == rhs.work
        }

        public func hash(into hasher: inout Hasher) {
            hasher.combine(inputs.0); hasher.combine(inputs.1); hasher.combine(outputs.0); hasher.combine(outputs.1)
        }

        func contains(input: Double, output: Double) -> Bool {
            input >= inputs.0 && input <= inputs.1 && output >= outputs.0 && output <= outputs.1
        }

        /// How far (input, output) lies outside, in doublings of length; 0 inside.
        func distance(input: Double, output: Double) -> Double {
            func outside(_ value: Double, _ low: Double, _ high: Double) -> Double {
                let v = Swift.max(value, 1)
                if v < low { return log2(low / v) }
                if v > high { return log2(v / high) }
                return 0
            }
            let di = outside(input, inputs.0, inputs.1), doo = outside(output, outputs.0, outputs.1)
            return (di * di + doo * doo).squareRoot()
        }

        var area: Double { log2(inputs.1 / inputs.0) * log2(outputs.1 / outputs.0) }

        func work(input: Double, output: Double) -> Double {
            let u = Swift.max(0, (input - inputs.0) / (inputs.1 - inputs.0))
            let v = Swift.max(0, (output - outputs.0) / (outputs.1 - outputs.0))
            let (w00, w10, w01, w11) = work
            return w00 + (w10 - w00) * u + (w01 - w00) * v + (w11 - w10 - w01 + w00) * u * v
        }
    }

    public let points: [ThroughputPoint]
    public let rectangles: [Rectangle]
    /// The share of a maximum-throughput point that counts as capacity (the rest is the headroom that keeps
    /// latency interactive); points measured under a latency target count in full.
    public let maxThroughputUsableShare: Double

    public init(points: [ThroughputPoint], maxThroughputUsableShare: Double) {
        self.points = points
        self.maxThroughputUsableShare = maxThroughputUsableShare
        var work: [Shape: Double] = [:]
        for point in points {
            let shape = Shape(input: point.inputTokens, output: point.outputTokens)
            let seconds = Self.work(of: point, usableShare: maxThroughputUsableShare)
            // Two points of one shape (two concurrencies): the slower one, so that capacity is never overstated.
            work[shape] = Swift.max(work[shape] ?? 0, seconds)
        }
        let inputs = Set(work.keys.map(\.input)).sorted()
        let outputs = Set(work.keys.map(\.output)).sorted()
        var rectangles: [Rectangle] = []
        for (a, i0) in inputs.enumerated() {
            for i1 in inputs[(a + 1)...] {
                for (c, o0) in outputs.enumerated() {
                    for o1 in outputs[(c + 1)...] {
                        guard let w00 = work[Shape(input: i0, output: o0)], let w10 = work[Shape(input: i1, output: o0)],
                              let w01 = work[Shape(input: i0, output: o1)], let w11 = work[Shape(input: i1, output: o1)]
                        else { continue }
                        rectangles.append(Rectangle(inputs: (i0, i1), outputs: (o0, o1), work: (w00, w10, w01, w11)))
                    }
                }
            }
        }
        self.rectangles = rectangles
    }

    private struct Shape: Hashable {
        var input: Double
        var output: Double
    }

    /// Replica-seconds one request of the point's shape takes, with the headroom of a maximum-throughput point.
    public static func work(of point: ThroughputPoint, usableShare: Double) -> Double {
        let share = point.at == .maxThroughput ? usableShare : 1
        return 1 / (point.requestsPerSecond * share)
    }

    public enum Method: Sendable, Hashable {
        /// Bilinear over a rectangle of four measured shapes (extrapolated when `inside` is false).
        case bilinear(Rectangle, inside: Bool)
        /// No rectangle: the nearest measured shape, scaled by the request's total tokens.
        case nearestScaled(pointID: String)
    }

    /// The replica-seconds a request of `input` (uncached-equivalent) prompt tokens and `output` tokens takes.
    public func work(input: Double, output: Double) -> (seconds: Double, method: Method)? {
        // The tightest rectangle holding the shape; else the nearest one, extrapolated.
        let inside = rectangles.filter { $0.contains(input: input, output: output) }
        if let best = inside.min(by: { $0.area < $1.area }) {
            return (best.work(input: input, output: output), .bilinear(best, inside: true))
        }
        if let nearest = rectangles.min(by: { ($0.distance(input: input, output: output), $0.area) < ($1.distance(input: input, output: output), $1.area) }) {
            return (nearest.work(input: input, output: output), .bilinear(nearest, inside: false))
        }
        func distance(_ point: ThroughputPoint) -> Double {
            let di = log2(Swift.max(input, 1) / point.inputTokens), doo = log2(Swift.max(output, 1) / point.outputTokens)
            return di * di + doo * doo
        }
        guard let point = points.min(by: { distance($0) < distance($1) }) else { return nil }
        let scale = Swift.max(1, input + output) / (point.inputTokens + point.outputTokens)
        return (Self.work(of: point, usableShare: maxThroughputUsableShare) * Swift.max(scale, 1), .nearestScaled(pointID: point.id))
    }
}
