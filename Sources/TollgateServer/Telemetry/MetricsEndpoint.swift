import Foundation
import Hummingbird
import NIOCore
import TollgateCore
import TollgateStore

/// `GET /metrics`: the Prometheus text format, for the admin key or a viewer key, or for anyone when
/// `metrics.public` is set.
struct MetricsEndpoint: Sendable {
    let metrics: GatewayMetrics
    let isPublic: Bool
    let access: AdminAccess
    let gateway: Gateway
    let budgets: BudgetLedger

    func addRoutes(to router: Router<BasicRequestContext>) {
        router.get("/metrics") { request, _ in
            guard isPublic || access.bearerRole(request) != nil else {
                throw AdminError(status: .unauthorized, code: "invalid_api_key",
                                 message: "/metrics needs 'Authorization: Bearer <admin or viewer key>' (or metrics.public: true).",
                                 param: nil)
            }
            let bytes = metrics.exposition(await snapshot())
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                            body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
        }
    }

    private func snapshot() async -> GatewayMetrics.Snapshot {
        let now = gateway.clock.now()
        let connections = await gateway.pools.connectionCounts()
        let health = gateway.health.snapshot()
        var snapshot = GatewayMetrics.Snapshot()
        snapshot.budgets = budgets.snapshots(now: now).map(\.0)
        snapshot.deployments = gateway.models.all.map { deployment in
            let entry = health[deployment.id]
            var count = (open: 0, idle: 0)
            if case .http(let target, _, _) = deployment.endpoint { count = connections[target] ?? (0, 0) }
            return GatewayMetrics.DeploymentState(
                id: deployment.id, model: deployment.name, provider: deployment.provider,
                breaker: entry?.breaker.state ?? .closed, breakerTrips: entry?.trips ?? 0, inFlight: entry?.inFlight ?? 0,
                openConnections: count.open, idleConnections: count.idle)
        }
        snapshot.ledgerQueue = gateway.ledger.queueDepth
        snapshot.refusedUnauthenticated = gateway.traffic.counts[.unauthenticated] ?? 0
        return snapshot
    }
}
