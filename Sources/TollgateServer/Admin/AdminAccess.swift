import Foundation
import Hummingbird
import TollgateCore

/// Who may read and who may change: the admin key does both; a viewer key reads the dashboard, `/metrics`
/// and the admin API's `GET` endpoints. One place decides, for the admin API, the dashboard and `/metrics`.
struct AdminAccess: Sendable {
    let adminKey: AdminCredential
    let keys: KeyIndex
    let clock: GatewayClock

    /// The role of a presented key: the admin key, a live viewer key, or nothing.
    func role(of presented: some StringProtocol) -> DashboardRole? {
        if adminKey.accepts(presented) { return .admin }
        return keys.viewer(plainKey: presented, now: clock.now()).map { .viewer(keyID: $0.record.id) }
    }

    /// A viewer session is only as good as its key: revoking the key ends it on the next page.
    func stillValid(_ role: DashboardRole) -> Bool {
        switch role {
        case .admin: true
        case .viewer(let id): keys.viewer(id: id, now: clock.now()) != nil
        }
    }

    /// The role of `Authorization: Bearer <key>`, if any.
    func bearerRole(_ request: Request) -> DashboardRole? {
        guard let authorization = request.headers[.authorization], authorization.lowercased().hasPrefix("bearer ") else { return nil }
        return role(of: authorization.dropFirst(7))
    }
}

/// The admin API: the admin key for everything, a viewer key for reading (`GET`, `HEAD`).
struct AdminAuthMiddleware: RouterMiddleware {
    typealias Context = BasicRequestContext
    let access: AdminAccess

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        switch access.bearerRole(request) {
        case .admin?:
            return try await next(request, context)
        case .viewer?:
            guard request.method == .get || request.method == .head else {
                throw AdminError(status: .forbidden, code: "viewer_key",
                                 message: "A viewer key can only read: \(request.method) \(request.uri.path) needs the admin key.", param: nil)
            }
            return try await next(request, context)
        case nil:
            throw AdminError(status: .unauthorized, code: "invalid_api_key",
                             message: "The admin API needs 'Authorization: Bearer <admin key>' (or a viewer key, to read).", param: nil)
        }
    }
}
