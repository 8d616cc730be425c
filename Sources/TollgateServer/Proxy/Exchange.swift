import Foundation
import NIOCore
import NIOHTTP1
import TollgateCore
import TollgateProviders

/// The endpoints the relay forwards.
enum ForwardedEndpoint: String {
    case chatCompletions = "chat.completions"
    case embeddings
    case messages
    case countTokens = "messages.count_tokens"

    /// The path below the upstream's base URL (OpenAI bases end in `/v1`, Anthropic's do not).
    var upstreamPath: String {
        switch self {
        case .chatCompletions: "/chat/completions"
        case .embeddings: "/embeddings"
        case .messages: "/v1/messages"
        case .countTokens: "/v1/messages/count_tokens"
        }
    }
}

/// Reads usage from a stream as it passes, in the upstream's format, and, when the client speaks the
/// other format, translates the events for it.
enum StreamTap {
    case openAI(SSEUsageTap)
    case anthropic(AnthropicStreamTap)
    /// An OpenAI client served by an Anthropic model.
    case anthropicToOpenAI(AnthropicStreamTap, AnthropicToOpenAIStream)
    /// An Anthropic client served by an OpenAI-compatible model.
    case openAIToAnthropic(SSEUsageTap, OpenAIToAnthropicStream)

    /// The stream's own last event passed (`[DONE]`, `message_stop`): it was delivered whole.
    var sawEnd: Bool {
        switch self {
        case .openAI(let tap), .openAIToAnthropic(let tap, _): tap.sawDone
        case .anthropic(let tap), .anthropicToOpenAI(let tap, _): tap.sawMessageStop
        }
    }

    mutating func feed(_ bytes: UnsafeRawBufferPointer) -> SSEUsageTap.Forward {
        switch self {
        case .openAI(var tap):
            let forward = tap.feed(bytes)
            self = .openAI(tap)
            return forward
        case .anthropic(var tap):
            tap.feed(bytes)
            self = .anthropic(tap)
            return .all
        case .anthropicToOpenAI(var tap, var translator):
            tap.feed(bytes)
            let out = translator.feed(bytes)
            self = .anthropicToOpenAI(tap, translator)
            return .bytes(out)
        case .openAIToAnthropic(var tap, var translator):
            _ = tap.feed(bytes)
            let out = translator.feed(bytes)
            self = .openAIToAnthropic(tap, translator)
            return .bytes(out)
        }
    }

    /// What was held back, to forward at the end.
    mutating func finish() -> [UInt8] {
        switch self {
        case .openAI(var tap):
            let rest = tap.finish()
            self = .openAI(tap)
            return rest
        case .anthropic(var tap):
            tap.finish()
            self = .anthropic(tap)
            return []
        case .anthropicToOpenAI(var tap, var translator):
            tap.finish()
            let rest = translator.finish()
            self = .anthropicToOpenAI(tap, translator)
            return rest
        case .openAIToAnthropic(var tap, var translator):
            _ = tap.finish()
            let rest = translator.finish()
            self = .openAIToAnthropic(tap, translator)
            return rest
        }
    }

    /// The usage to bill: the provider's, or, for a stream that ended without it, what is known of it
    /// (Anthropic reports the input side first) with at least the output the stream relayed, counted from
    /// its parsed deltas; `estimated` says which.
    func billedUsage(promptBound: Usage) -> (usage: Usage, estimated: Bool) {
        switch self {
        case .openAI(let tap), .openAIToAnthropic(let tap, _):
            if let usage = tap.usage { return (usage, false) }
            var estimate = promptBound
            estimate.outputTokens = tap.generated.tokens
            return (estimate, true)
        case .anthropic(let tap), .anthropicToOpenAI(let tap, _):
            if tap.sawFinalUsage, let usage = tap.usage { return (usage, false) }
            var partial = tap.usage ?? promptBound
            partial.outputTokens = max(partial.outputTokens, tap.generated.tokens)
            return (partial, true)
        }
    }
}

/// Where an exchange's response comes from.
enum ResponseSource {
    case upstream(UpstreamConnection)
    case demo(DemoUpstream)

    func abandon() {
        switch self {
        case .upstream(let connection): connection.close()
        case .demo(let demo): demo.cancel()
        }
    }
}

/// One request on the forwarding path, from its last body byte to its ledger row.
///
/// Phases: `awaitingUpstream` (request sent, no answer yet) → `buffering` (a non-streamed answer, held
/// whole because its cost goes into a header) or `streaming` (the head is sent; chunks pass as they come)
/// or `upstreamFault` (a 5xx or auth failure upstream, to become a 502) → `settled` (ledger row queued).
final class Exchange {
    enum Phase {
        case awaitingUpstream
        case buffering(HTTPResponseHead, ByteBuffer?)
        case streaming(StreamTap)
        case upstreamFault(HTTPResponseStatus)
        case settled
    }

    let id: String
    let createdAt: Date
    let startedAt: NIODeadline
    let clientHead: HTTPRequestHead
    var endpoint: ForwardedEndpoint?
    /// The client's wire format: what its errors look like.
    var clientFormat = WireFormat.openAI
    /// False for calls that cost nothing and leave no ledger row (`count_tokens`).
    var recordsLedger = true
    /// The client and the model speak different formats: request and response are translated.
    var translated: Bool { deployment.map { $0.wire != clientFormat } ?? false }
    var key: ResolvedKey?
    var requestedModel: String?
    var deployment: Deployment?
    var fields = OpenAIRequestFields()
    var tags: [String] = []
    var phase: Phase = .awaitingUpstream
    var source: ResponseSource?
    /// The upstream request as sent: its head's bytes, and its body.
    var upstreamRequest: (head: ByteBuffer, body: ByteBuffer)?
    var retriedOnFreshConnection = false
    /// What the admission stage admitted, settled with the ledger row.
    var admission: Admission.Ticket?
    /// The budget reservation, settled with the request's actual cost.
    var reservation: ReservationID?
    /// How many times the fleet's store was asked for a larger lease for this request (a few at most:
    /// concurrent requests may spend a grant before this one is retried).
    var leaseAttempts = 0
    /// The smallest USD remainder on the key's chain after this request's reservation.
    var budgetRemainingUSD: Nanodollars?
    /// The model the client asked for, when a budget downgrade serves another.
    var requestedDeployment: Deployment?
    /// What a route would have used without its choice (a learned route's strong model), for savings.
    var baselineDeployment: Deployment?
    /// The route the client asked for, and why the model serving it was chosen.
    var route: String?
    var routeReason: String?
    /// Deployments still to try (a route's, or the other deployments of a model asked for by name) if the
    /// current one fails before the first byte reaches the client.
    var fallbacks: [Deployment] = []
    /// The client's body and its Anthropic fields, kept to send again to a fallback.
    var clientBody: ByteBuffer?
    /// The id of the deployment this exchange counts as in flight on.
    var inFlightOn: String?
    /// Attempts made on the current deployment of a route.
    var attemptsOnDeployment = 1
    var anthropicFields: AnthropicRequestFields?
    /// When the upstream's answer began (its head).
    var firstByteAt: NIODeadline?
    /// When the first chunk of a stream passed to the client: time to first token.
    var firstChunkAt: NIODeadline?
    /// When the upstream must have begun its answer (set while one is awaited).
    var firstByteDeadline: NIODeadline?
    /// When a stream that has sent nothing since is cut (moved on every chunk).
    var idleDeadline: NIODeadline?
    /// The back-off before a route tries the same deployment again.
    var retryTimer: Scheduled<Void>?
    /// The request's span, while it is open (tracing on).
    var span: RequestSpan?

    init(clientHead: HTTPRequestHead, startedAt: NIODeadline, createdAt: Date) {
        self.id = RequestID.make()
        self.createdAt = createdAt
        self.startedAt = startedAt
        self.clientHead = clientHead
        self.tags = Exchange.tags(from: clientHead.headers)
    }

    deinit {
        // swift-otel holds every open span until it ends: one whose request left no ledger row (a token count
        // the gateway estimated) ends with its exchange.
        span?.endWithoutRecord(requestID: id)
    }

    var isSettled: Bool {
        if case .settled = phase { return true }
        return false
    }

    /// Drops the response source: an upstream connection is closed (never reused), the demo stopped.
    func abandonSource() {
        source?.abandon()
        source = nil
    }

    func cancelTimers() {
        firstByteDeadline = nil
        idleDeadline = nil
        retryTimer?.cancel()
        retryTimer = nil
    }

    /// The earlier of its deadlines.
    var nextDeadline: NIODeadline? {
        switch (firstByteDeadline, idleDeadline) {
        case (let a?, let b?): min(a, b)
        case (let a?, nil): a
        case (nil, let b): b
        }
    }

    /// `x-tollgate-tags: a,b` — trimmed, empties dropped, at most 16 of at most 64 bytes each.
    static func tags(from headers: HTTPHeaders) -> [String] {
        var tags: [String] = []
        for value in headers["x-tollgate-tags"] {
            for part in value.split(separator: ",") {
                let tag = part.trimmingCharacters(in: .whitespaces)
                if !tag.isEmpty, tag.utf8.count <= 64, !tags.contains(tag), tags.count < 16 { tags.append(tag) }
            }
        }
        return tags
    }

    /// The ledger row for this exchange as it ends, priced from `usage`.
    func ledgerRecord(status: Int, usage: Usage, usageEstimated: Bool, error: String?, now: NIODeadline) -> LedgerRecord {
        let cost = deployment?.price.cost(of: usage) ?? .zero
        let baseline = (requestedDeployment ?? baselineDeployment)?.price.cost(of: usage)
        let latency = Int((now - startedAt).nanoseconds / 1_000_000)
        let ttft = (firstChunkAt ?? firstByteAt).map { Int(($0 - startedAt).nanoseconds / 1_000_000) }
        return LedgerRecord(
            id: id, createdAt: createdAt, endpoint: endpoint?.rawValue ?? clientHead.uri,
            keyID: key?.record.id, userID: key?.record.userID, userName: key?.userName,
            teamID: key?.record.teamID, teamName: key?.teamName, orgID: key?.record.orgID,
            requestedModel: requestedModel, model: deployment?.name, provider: deployment?.provider,
            usage: usage, usageEstimated: usageEstimated, cost: cost, baselineCost: baseline, status: status, latencyMs: latency,
            ttftMs: ttft, stream: fields.stream, tags: tags, agentic: fields.agentic,
            facts: Exchange.usageFacts(clientHead.headers, fields), route: route,
            routeReason: routeReason, error: error)
    }

    /// The input side of a stream that never reported its usage: the prompt estimated from its size.
    var promptEstimate: Usage {
        Usage(inputTokens: TokenEstimate.promptTokens(bytes: fields.promptBytes))
    }

    /// The usage to bill for a stream as it ends (normally or cut short).
    func billedUsage(_ tap: StreamTap) -> (usage: Usage, estimated: Bool) {
        tap.billedUsage(promptBound: promptEstimate)
    }
}
