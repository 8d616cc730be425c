import NIOCore
import NIOHTTP1
import TollgateCore
import TollgateProviders

/// Every refusal the gateway itself makes, mapped to HTTP in one place.
enum GatewayError: Error, Equatable {
    case invalidAPIKey(reason: String)
    case modelNotAllowed(model: String)
    case modelNotFound(model: String)
    case invalidRequest(message: String, param: String?)
    case bodyTooLarge(limit: Int)
    case notFound(path: String)
    case methodNotAllowed(method: String, path: String)
    case upstreamFault(model: String, detail: String)
    case upstreamTimeout(model: String, afterMs: Int)

    var status: HTTPResponseStatus {
        switch self {
        case .invalidAPIKey: .unauthorized
        case .modelNotAllowed: .forbidden
        case .modelNotFound, .notFound: .notFound
        case .invalidRequest: .badRequest
        case .bodyTooLarge: .payloadTooLarge
        case .methodNotAllowed: .methodNotAllowed
        case .upstreamFault: .badGateway
        case .upstreamTimeout: .gatewayTimeout
        }
    }

    var type: String {
        switch self {
        case .invalidAPIKey: "authentication_error"
        case .modelNotAllowed: "permission_error"
        case .modelNotFound, .notFound: "not_found_error"
        case .invalidRequest, .bodyTooLarge, .methodNotAllowed: "invalid_request_error"
        case .upstreamFault: "upstream_error"
        case .upstreamTimeout: "timeout_error"
        }
    }

    var code: String {
        switch self {
        case .invalidAPIKey: "invalid_api_key"
        case .modelNotAllowed: "model_not_allowed"
        case .modelNotFound: "model_not_found"
        case .notFound: "unknown_url"
        case .invalidRequest: "invalid_request_error"
        case .bodyTooLarge: "request_too_large"
        case .methodNotAllowed: "method_not_allowed"
        case .upstreamFault: "upstream_error"
        case .upstreamTimeout: "upstream_timeout"
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
        case .modelNotFound(let model): "The model '\(model)' does not exist on this gateway."
        case .invalidRequest(let message, _): message
        case .bodyTooLarge(let limit): "The request body is larger than the limit of \(limit) bytes."
        case .notFound(let path): "Unknown URL: \(path)."
        case .methodNotAllowed(let method, let path): "\(method) is not allowed on \(path)."
        case .upstreamFault(let model, let detail): "The upstream for model '\(model)' failed: \(detail)."
        case .upstreamTimeout(let model, let afterMs): "The upstream for model '\(model)' did not answer within \(afterMs) ms."
        }
    }

    /// The OpenAI error shape: `{"error": {"message", "type", "code", "param"}}`.
    func openAIBody() -> String {
        let param = self.param.map(JSONString.quoted) ?? "null"
        return #"{"error":{"message":"# + JSONString.quoted(message) + #","type":"# + JSONString.quoted(type)
            + #","code":"# + JSONString.quoted(code) + #","param":"# + param + "}}"
    }

    static func from(_ failure: JSONScanner.Failure) -> GatewayError {
        switch failure {
        case .malformed(let offset): .invalidRequest(message: "The request body is not valid JSON (at byte \(offset)).", param: nil)
        case .tooDeep: .invalidRequest(message: "The request body nests too deeply.", param: nil)
        case .wrongType(let param, let expected): .invalidRequest(message: "'\(param)' must be a \(expected).", param: param)
        }
    }
}
