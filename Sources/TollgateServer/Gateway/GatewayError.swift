import Foundation
import NIOCore
import NIOHTTP1
import TollgateCore
import TollgateProviders

/// Every refusal the gateway itself makes, mapped to HTTP in one place.
enum GatewayError: Error, Equatable {
    case invalidAPIKey(reason: String)
    case modelNotAllowed(model: String)
    /// A viewer key reads reports; it calls no model.
    case viewerKey
    case modelNotFound(model: String)
    case invalidRequest(message: String, param: String?)
    case bodyTooLarge(limit: Int)
    case notFound(path: String)
    case methodNotAllowed(method: String, path: String)
    /// The client is told `summary` (what happened, never where: no address, no upstream error text);
    /// `detail` goes to the log and the ledger row.
    case upstreamFault(model: String, summary: String, detail: String)
    case upstreamTimeout(model: String, afterMs: Int)
    case rateLimited(RateDecision.Dimension, retryAfterSeconds: Int?, RateLimitStatus)
    case budgetExceeded(BudgetSnapshot, now: Date)
    case internalError(String)
    /// The database is out of reach and the policy is to fail closed (or the ledger's backlog is full).
    case storeUnavailable(String)
    /// The upstream refused the request (a 4xx) and the client speaks the other format: its message in
    /// the client's shape, with the upstream's status.
    case upstreamRejected(status: HTTPResponseStatus, model: String, detail: String)

    var status: HTTPResponseStatus {
        switch self {
        case .invalidAPIKey: .unauthorized
        case .modelNotAllowed, .viewerKey: .forbidden
        case .modelNotFound, .notFound: .notFound
        case .invalidRequest: .badRequest
        case .bodyTooLarge: .payloadTooLarge
        case .methodNotAllowed: .methodNotAllowed
        case .upstreamFault: .badGateway
        case .upstreamTimeout: .gatewayTimeout
        case .rateLimited, .budgetExceeded: .tooManyRequests
        case .internalError: .internalServerError
        case .storeUnavailable: .serviceUnavailable
        case .upstreamRejected(let status, _, _): status
        }
    }

    var type: String {
        switch self {
        case .invalidAPIKey: "authentication_error"
        case .modelNotAllowed, .viewerKey: "permission_error"
        case .modelNotFound, .notFound: "not_found_error"
        case .invalidRequest, .bodyTooLarge, .methodNotAllowed: "invalid_request_error"
        case .upstreamFault: "upstream_error"
        case .upstreamTimeout: "timeout_error"
        case .rateLimited(let dimension, _, _): dimension.rawValue
        case .budgetExceeded: "insufficient_quota"
        case .internalError: "server_error"
        case .storeUnavailable: "service_unavailable"
        case .upstreamRejected(let status, _, _): status.code == 429 ? "rate_limit_error" : "invalid_request_error"
        }
    }

    var code: String {
        switch self {
        case .invalidAPIKey: "invalid_api_key"
        case .modelNotAllowed: "model_not_allowed"
        case .viewerKey: "viewer_key"
        case .modelNotFound: "model_not_found"
        case .notFound: "unknown_url"
        case .invalidRequest: "invalid_request_error"
        case .bodyTooLarge: "request_too_large"
        case .methodNotAllowed: "method_not_allowed"
        case .upstreamFault: "upstream_error"
        case .upstreamTimeout: "upstream_timeout"
        case .rateLimited: "rate_limit_exceeded"
        case .budgetExceeded: "budget_exceeded"
        case .internalError: "internal_error"
        case .storeUnavailable: "store_unavailable"
        case .upstreamRejected: "upstream_rejected"
        }
    }

    var param: String? {
        switch self {
        case .invalidRequest(_, let param): param
        case .modelNotAllowed, .modelNotFound: "model"
        default: nil
        }
    }

    var message: String {
        switch self {
        case .invalidAPIKey(let reason): reason
        case .modelNotAllowed(let model): "This key may not use the model '\(model)'."
        case .viewerKey: "This is a viewer key: it reads the dashboard, /metrics and the admin reports, and cannot call models."
        case .modelNotFound(let model): "The model '\(model)' does not exist on this gateway."
        case .invalidRequest(let message, _): message
        case .bodyTooLarge(let limit): "The request body is larger than the limit of \(limit) bytes."
        case .notFound(let path): "Unknown URL: \(path)."
        case .methodNotAllowed(let method, let path): "\(method) is not allowed on \(path)."
        case .upstreamFault(let model, let summary, _): "The upstream for model '\(model)' failed: \(summary)."
        case .upstreamTimeout(let model, let afterMs): "The upstream for model '\(model)' did not answer within \(afterMs) ms."
        case .rateLimited(let dimension, let retry, let status):
            switch (dimension, retry) {
            case (.requests, _):
                "Rate limit reached: \(status.limitRequests ?? 0) requests per minute. Retry in \(retry ?? 60) s."
            case (.tokens, let retry?):
                "Rate limit reached: \(status.limitTokens ?? 0) tokens per minute. Retry in \(retry) s."
            case (.tokens, nil):
                "This request alone may use more than the limit of \(status.limitTokens ?? 0) tokens per minute: lower max_tokens or the prompt."
            }
        case .budgetExceeded(let snapshot, _):
            "The \(["day": "daily ", "week": "weekly ", "month": "monthly ", "total": ""][snapshot.definition.period.rawValue] ?? "")budget of "
                + "\(snapshot.definition.scope.rawValue) '\(snapshot.definition.subjectName)'"
                + (snapshot.definition.model.map { " for \($0)" } ?? "")
                + " cannot cover this request"
                + (snapshot.window.end.map { " until it resets at \(RFC3339.format($0))" } ?? "")
                + ": lower max_tokens, or ask for more budget."
        case .internalError(let detail): "Internal error: \(detail)."
        case .storeUnavailable(let detail): "The gateway cannot record or check spend right now: \(detail). Try again shortly."
        case .upstreamRejected(let status, let model, let detail): "The upstream for model '\(model)' refused the request (\(status.code)): \(detail)"
        }
    }

    /// What the log and the ledger row keep of the error: the message, and for an upstream fault the detail
    /// the client is not shown.
    var logDetail: String {
        if case .upstreamFault(let model, _, let detail) = self { return "The upstream for model '\(model)' failed: \(detail)." }
        return message
    }

    /// Headers that go with the error: `Retry-After` when waiting helps, else `x-should-retry: false` so
    /// that the SDKs do not retry in vain.
    var headers: [(String, String)] {
        switch self {
        case .rateLimited(_, let retry, let status):
            var headers = RateLimitHeaders.fields(status)
            if let retry { headers.append(("retry-after", String(retry))) } else { headers.append(("x-should-retry", "false")) }
            return headers
        case .budgetExceeded(let snapshot, let now):
            // Waiting seconds cannot help: the SDKs must not retry it.
            var headers = [("x-should-retry", "false")]
            if let end = snapshot.window.end {
                headers.append(("retry-after", String(max(1, Int(end.timeIntervalSince(now).rounded(.up))))))
            }
            return headers
        case .storeUnavailable:
            return [("retry-after", "5")]
        default:
            return []
        }
    }

    /// The OpenAI error shape: `{"error": {"message", "type", "code", "param"}}`.
    func openAIBody() -> String {
        JSONValue.object([("error", .object(members(type: type)))]).rendered
    }

    /// Anthropic's shape, for `/v1/messages`: `{"type": "error", "error": {"type", "message", …}}`, the
    /// same extra fields inside `error`.
    func anthropicBody() -> String {
        JSONValue.object([("type", .string("error")), ("error", .object(members(type: anthropicType)))]).rendered
    }

    func body(for format: WireFormat) -> String {
        format == .anthropic ? anthropicBody() : openAIBody()
    }

    private func members(type: String) -> [(String, JSONValue)] {
        var members: [(String, JSONValue)] = [("type", .string(type)), ("message", .string(message)), ("code", .string(code)),
                                              ("param", .string(param))]
        if case .budgetExceeded(let snapshot, _) = self {
            members.append(("budget", BudgetView.json(snapshot, nil)))
        }
        return members
    }

    /// Anthropic's error types, by status.
    var anthropicType: String {
        switch status.code {
        case 400, 405: "invalid_request_error"
        case 401: "authentication_error"
        case 403: "permission_error"
        case 404: "not_found_error"
        case 413: "request_too_large"
        case 429: "rate_limit_error"
        case 503: "overloaded_error"
        default: "api_error"
        }
    }

    static func from(_ failure: JSONScanner.Failure) -> GatewayError {
        switch failure {
        case .malformed(let offset): .invalidRequest(message: "The request body is not valid JSON (at byte \(offset)).", param: nil)
        case .tooDeep: .invalidRequest(message: "The request body nests too deeply.", param: nil)
        case .wrongType(let param, let expected): .invalidRequest(message: "'\(param)' must be a \(expected).", param: param)
        }
    }
}

enum RateLimitHeaders {
    static func fields(_ status: RateLimitStatus) -> [(String, String)] {
        var fields: [(String, String)] = []
        if let limit = status.limitRequests { fields.append(("x-ratelimit-limit-requests", String(limit))) }
        if let remaining = status.remainingRequests { fields.append(("x-ratelimit-remaining-requests", String(remaining))) }
        if let limit = status.limitTokens { fields.append(("x-ratelimit-limit-tokens", String(limit))) }
        if let remaining = status.remainingTokens { fields.append(("x-ratelimit-remaining-tokens", String(remaining))) }
        return fields
    }
}
