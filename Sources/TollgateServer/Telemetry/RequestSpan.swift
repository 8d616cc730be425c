import NIOCore
import TollgateCore
import Tracing

/// `gen_ai.operation.name` of each forwarded endpoint (OpenTelemetry GenAI semantic conventions; Anthropic's
/// Messages API is a chat operation, and `count_tokens`, which the conventions do not name, keeps its own).
enum GenAIOperation: String, Sendable {
    case chat
    case embeddings
    case countTokens = "count_tokens"

    init(_ endpoint: ForwardedEndpoint?) {
        switch endpoint {
        case .embeddings: self = .embeddings
        case .countTokens: self = .countTokens
        case .chatCompletions, .messages, nil: self = .chat
        }
    }
}

/// What the budgets did with a request (`tollgate.budget.decision`).
enum BudgetDecision: String, Sendable {
    /// Reserved on every budget of the key's chain.
    case admitted
    /// Sent to a cheaper model by an exhausted `downgrade` budget.
    case downgraded
    /// Refused: a budget was exhausted, or the store that holds shared budgets was out of reach.
    case refused
    /// No budget applies to the key and model.
    case unbudgeted

    /// Read off a request as it settles: `nil` when it ended before the budgets were asked (refused by a
    /// rate limit, a bad body, an unknown model). After the rate limits admitted it, the only answers the
    /// gateway itself makes with 429 or 503 before any upstream answered are the budgets' refusals.
    init?(reserved: Bool, downgraded: Bool, passedRateLimits: Bool, upstreamAnswered: Bool, status: Int) {
        if reserved {
            self = downgraded ? .downgraded : .admitted
        } else if !passedRateLimits {
            return nil
        } else if !upstreamAnswered, status == 429 || status == 503 {
            self = .refused
        } else {
            self = .unbudgeted
        }
    }
}

/// The name, attributes and status of a request's span, made from its ledger row: the span and the ledger
/// say the same thing about tokens, cost and models because one is made from the other.
struct RequestSpanSummary: Equatable {
    var name: String
    var attributes: SpanAttributes
    var status: SpanStatus?

    /// `upstreamAnswered`: the status is the upstream's own answer rather than a refusal of the gateway.
    init(record: LedgerRecord, operation: GenAIOperation, path: String, budget: BudgetDecision?, upstreamAnswered: Bool) {
        name = record.requestedModel.map { "\(operation.rawValue) \($0)" } ?? operation.rawValue
        var attributes = SpanAttributes()
        attributes.reserveCapacity(26)
        // Typed values: the subscript's `SpanAttributeConvertible` would box each and cast arrays at run time.
        func set(_ name: String, _ value: String?) { if let value { attributes.set(name, value: .string(value)) } }
        func set(_ name: String, _ value: Int) { attributes.set(name, value: .int64(Int64(value))) }
        func set(_ name: String, _ value: Bool) { attributes.set(name, value: .bool(value)) }
        set("gen_ai.operation.name", operation.rawValue)
        set("gen_ai.provider.name", record.provider)
        set("gen_ai.request.model", record.requestedModel)
        set("gen_ai.response.model", record.model)
        // The conventions count every input token, cache reads and writes included, in `input_tokens`.
        set("gen_ai.usage.input_tokens", record.usage.totalPromptTokens)
        set("gen_ai.usage.output_tokens", record.usage.outputTokens)
        if record.usage.cachedInputTokens > 0 { set("gen_ai.usage.cache_read.input_tokens", record.usage.cachedInputTokens) }
        if record.usage.cacheWriteTokens > 0 { set("gen_ai.usage.cache_creation.input_tokens", record.usage.cacheWriteTokens) }
        set("http.request.method", "POST")
        set("url.path", path)
        set("http.response.status_code", record.status)
        set("tollgate.request_id", record.id)
        // Money as the ledger writes it: an exact decimal string, never a binary float.
        set("tollgate.cost_usd", record.cost.decimalString)
        set("tollgate.baseline_cost_usd", record.baselineCost?.decimalString)
        if record.usageEstimated { set("tollgate.usage_estimated", true) }
        set("tollgate.stream", record.stream)
        set("tollgate.route", record.route)
        set("tollgate.route_reason", record.routeReason)
        set("tollgate.budget.decision", budget?.rawValue)
        set("tollgate.key_id", record.keyID)
        set("tollgate.user", record.userName)
        set("tollgate.team", record.teamName)
        if !record.tags.isEmpty { attributes.set("tollgate.tags", value: .stringArray(record.tags)) }
        if let ttft = record.ttftMs { set("tollgate.ttft_ms", ttft) }
        // A fault of the gateway or of the upstream is an error; so is any 4xx the upstream answered. The
        // gateway's own refusals (401, 404, 429 of a budget…) did what was asked of them, and a client that
        // hung up (499) chose to.
        let status = record.status
        if status >= 500 || (status >= 400 && status != 499 && upstreamAnswered) {
            set("error.type", String(status))
            self.status = SpanStatus(code: .error, message: record.error)
        } else {
            self.status = nil
        }
        self.attributes = attributes
    }
}

/// One request's span, from its first byte to its ledger row.
struct RequestSpan {
    let span: any Span
    let tracer: any Tracer
    let operation: GenAIOperation

    /// `traceparent` (and `tracestate`) for the upstream request: this span is the parent of the provider's.
    func writeHeaders(into head: inout ByteBuffer) {
        tracer.inject(span.context, into: &head, using: UpstreamHeadWriter())
    }

    func end(_ record: LedgerRecord, path: String, budget: BudgetDecision?, upstreamAnswered: Bool) {
        // A span the sampler dropped records nothing: its attributes are not worth building.
        guard span.isRecording else { return span.end() }
        let summary = RequestSpanSummary(record: record, operation: operation, path: path, budget: budget,
                                         upstreamAnswered: upstreamAnswered)
        span.operationName = summary.name
        span.updateAttributes { $0.merge(summary.attributes) }
        if let status = summary.status { span.setStatus(status) }
        span.end()
    }

    /// Ends the span of a request that left no ledger row (a token count the gateway estimated itself).
    func endWithoutRecord(requestID: String) {
        span.updateAttributes { $0.set("tollgate.request_id", value: .string(requestID)) }
        span.end()
    }
}

extension Exchange {
    /// Ends the request's span, once, with its ledger row.
    func endSpan(_ record: LedgerRecord) {
        guard let span else { return }
        self.span = nil
        let upstreamAnswered = firstByteAt != nil
        span.end(record, path: endpoint?.clientPath ?? clientHead.uri,
                 budget: BudgetDecision(reserved: reservation != nil, downgraded: requestedDeployment != nil,
                                        passedRateLimits: admission != nil, upstreamAnswered: upstreamAnswered,
                                        status: record.status),
                 upstreamAnswered: upstreamAnswered)
    }
}

extension ForwardedEndpoint {
    /// The path the client called.
    var clientPath: String {
        switch self {
        case .chatCompletions: "/v1/chat/completions"
        case .embeddings: "/v1/embeddings"
        case .messages: "/v1/messages"
        case .countTokens: "/v1/messages/count_tokens"
        }
    }
}
