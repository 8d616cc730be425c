import Synchronization
import TollgateCore

/// The `strong_share` calibration of every `learned` route, shared by all event loops: one small lock per
/// learned decision, and a sort of the window every 50 decisions.
final class RouterCalibrations: Sendable {
    private final class Entry: Sendable {
        let state: Mutex<ShareCalibration>
        init(_ calibration: ShareCalibration) { state = Mutex(calibration) }
    }

    private let entries: [String: Entry]

    init(routes: some Sequence<GatewayConfig.RouteConfig>) {
        var entries: [String: Entry] = [:]
        for route in routes {
            guard case .learned(_, _, let share, _, let after) = route.strategy, after > 0 else { continue }
            entries[route.name] = Entry(ShareCalibration(strongShare: share ?? 0.5, window: max(2_000, after),
                                                         minimumSamples: after))
        }
        self.entries = entries
    }

    /// Records a decision's score; the threshold calibrated on the route's recent traffic, nil until enough
    /// decisions are in (or when the route does not calibrate).
    func record(route: String, score: Double) -> Double? {
        entries[route]?.state.withLock { calibration in
            calibration.record(score)
            return calibration.threshold
        }
    }

    /// For `GET /admin/deployments`: each calibrating route's decisions seen and current threshold.
    func snapshot() -> [String: (samples: Int, threshold: Double?)] {
        entries.mapValues { entry in entry.state.withLock { ($0.sampleCount, $0.threshold) } }
    }
}
