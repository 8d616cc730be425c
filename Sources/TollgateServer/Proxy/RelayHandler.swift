import Foundation
import NIOCore
import NIOHTTP1
import TollgateCore
import TollgateProviders
import TollgateStore

/// The front of every connection: `/v1/*` requests are answered here, on the event loop (authenticate,
/// scan, forward to an upstream or the demo model, tap usage, queue the ledger row); every other request
/// passes on to Hummingbird behind it. `HTTPServerPipelineHandler` sits in front, so at most one request is
/// in flight per connection and the two paths never interleave bytes.
///
/// States: `idle` → (`/v1` head) `readingBody` → (end) `responding` → (response end written) `idle`;
/// or `idle` → (other head) `passingThrough` → (end) `idle`.
final class RelayHandler: ChannelDuplexHandler, RemovableChannelHandler, UpstreamResponseDelegate {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private struct IncomingRequest {
        var head: HTTPRequestHead
        var body: ByteBuffer?
        var tooLarge: Bool
        var startedAt: NIODeadline
    }

    private enum State {
        case idle
        case passingThrough
        case readingBody(IncomingRequest)
        case responding(Exchange)
    }

    private let gateway: Gateway
    private var state = State.idle
    private var context: ChannelHandlerContext?
    /// Set when the client asked to close, or when the connection cannot carry another request.
    private var closeAfterResponse = false
    /// The key the last request on this connection presented, and its SHA-256.
    private var lastPresentedKey: (bytes: [UInt8], digest: Digest256)?
    /// A request passed on to Hummingbird has not been answered to its end yet.
    private var passThroughResponding = false
    /// A malformed request was answered: the connection is closing, and later parser errors are not answered.
    private var answeredMalformedRequest = false
    /// The connection's one timer for upstream deadlines (see `watch`), and when it is due.
    private var watchdog: Scheduled<Void>?
    private var watchdogDue: NIODeadline?

    init(gateway: Gateway) {
        self.gateway = gateway
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        watchdog?.cancel()
        watchdog = nil
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        switch (state, part) {
        case (.idle, .head(let head)):
            if RelayHandler.isRelayed(uri: head.uri) {
                let declared = head.headers.first(name: "content-length").flatMap(Int.init) ?? 0
                let tooLarge = declared > gateway.settings.maxBodyBytes
                state = .readingBody(IncomingRequest(head: head, body: nil, tooLarge: tooLarge, startedAt: .now()))
                // curl asks before sending bodies over 1 KiB, and would otherwise wait a second.
                if !tooLarge, head.version == .http1_1,
                   head.headers.first(name: "expect")?.lowercased() == "100-continue" {
                    context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .continue))),
                                          promise: nil)
                }
            } else {
                state = .passingThrough
                passThroughResponding = true
                context.fireChannelRead(data)
            }
        case (.passingThrough, .end):
            state = .idle
            context.fireChannelRead(data)
        case (.passingThrough, _):
            context.fireChannelRead(data)
        case (.readingBody(var request), .body(var buffer)):
            guard !request.tooLarge else { return }
            let size = (request.body?.readableBytes ?? 0) + buffer.readableBytes
            if size > gateway.settings.maxBodyBytes {
                request.tooLarge = true
                request.body = nil
            } else if request.body == nil {
                request.body = buffer
            } else {
                request.body!.writeBuffer(&buffer)
            }
            state = .readingBody(request)
        case (.readingBody(let request), .end):
            let exchange = Exchange(clientHead: request.head, startedAt: request.startedAt, createdAt: gateway.clock.now())
            state = .responding(exchange)
            closeAfterResponse = closeAfterResponse || !request.head.isKeepAlive
            handle(exchange, body: request.body ?? context.channel.allocator.buffer(capacity: 0), tooLarge: request.tooLarge,
                   context: context)
        default:
            // The pipeline handler delivers one well-formed request at a time; anything else is a bug
            // upstream of here, and the connection is not trustworthy any more.
            context.close(promise: nil)
        }
    }

    /// A request NIO's parser could not read (a bad request line, HTTP/0.9, smuggling shapes such as two
    /// Content-Lengths) gets one 400 in the OpenAI error shape, then the connection closes. Hummingbird never
    /// sees the error: it would answer again, and so would NIO's own error handler (which is not installed).
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let parserError = error as? HTTPParserError else { return context.fireErrorCaught(error) }
        guard !answeredMalformedRequest else { return }
        answeredMalformedRequest = true
        gateway.traffic.warn(.badRequest, requestID: nil, "refused a malformed HTTP request (\(parserError)) and closed the connection")
        switch state {
        case .idle, .readingBody:
            state = .idle
            let body = GatewayError.invalidRequest(message: "The request is not valid HTTP/1.1 (\(parserError)).", param: nil).openAIBody()
            var headers = HTTPHeaders()
            headers.add(name: "content-type", value: "application/json")
            headers.add(name: "content-length", value: String(body.utf8.count))
            headers.add(name: "connection", value: "close")
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .badRequest, headers: headers))), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        case .passingThrough, .responding:
            // An answer is under way on this connection: it cannot be followed by a second one.
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if case .responding(let exchange) = state, !exchange.isSettled {
            clientGone(exchange)
        }
        state = .idle
        context.fireChannelInactive()
    }

    /// A keep-alive connection that has sent nothing for `idle_ms` and has nothing in flight is closed; one
    /// waiting on its upstream is left to the upstream time-outs.
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            if case .idle = state, !passThroughResponding { context.close(promise: nil) }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    /// Watches only for the end of a response to a request passed on (Hummingbird's).
    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if passThroughResponding, case .end = unwrapOutboundIn(data) { passThroughResponding = false }
        context.write(data, promise: promise)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if case .responding(let exchange) = state, case .upstream(let connection) = exchange.source {
            connection.setReading(context.channel.isWritable)
        }
        context.fireChannelWritabilityChanged()
    }

    static func isRelayed(uri: String) -> Bool {
        uri.hasPrefix("/v1/") || uri == "/v1" || uri.hasPrefix("/v1?")
    }

    // MARK: Handling a request

    private func handle(_ exchange: Exchange, body: ByteBuffer, tooLarge: Bool, context: ChannelHandlerContext) {
        let path = exchange.clientHead.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? exchange.clientHead.uri
        let method = exchange.clientHead.method
        switch path {
        case "/v1/chat/completions", "/v1/embeddings":
            guard method == .POST else {
                return refuse(exchange, .methodNotAllowed(method: method.rawValue, path: path), record: false)
            }
            exchange.endpoint = path == "/v1/embeddings" ? .embeddings : .chatCompletions
            forward(exchange, body: body, tooLarge: tooLarge, context: context)
        case "/v1/messages", "/v1/messages/count_tokens":
            exchange.clientFormat = .anthropic
            guard method == .POST else {
                return refuse(exchange, .methodNotAllowed(method: method.rawValue, path: path), record: false)
            }
            exchange.endpoint = path == "/v1/messages" ? .messages : .countTokens
            forward(exchange, body: body, tooLarge: tooLarge, context: context)
        case "/v1/budget":
            guard method == .GET else {
                return refuse(exchange, .methodNotAllowed(method: method.rawValue, path: path), record: false)
            }
            guard let key = authenticate(exchange) else { return }
            let snapshots = gateway.budgets.snapshots(for: key, now: gateway.clock.now())
            respondJSON(exchange, JSONValue.object([("data", .array(snapshots.map { BudgetView.json($0, nil) }))]).rendered)
        case "/v1/models":
            guard method == .GET else {
                return refuse(exchange, .methodNotAllowed(method: method.rawValue, path: path), record: false)
            }
            guard let key = authenticate(exchange) else { return }
            respondModels(exchange, key: key)
        default:
            refuse(exchange, .notFound(path: path), record: false)
        }
    }

    /// The caller's key, or nil after answering 401.
    private func authenticate(_ exchange: Exchange) -> ResolvedKey? {
        let headers = exchange.clientHead.headers
        var presented: Substring?
        if let authorization = headers.first(name: "authorization") {
            let value = Substring(authorization)
            if value.utf8.count > 7, RelayHandler.isBearer(value.utf8.prefix(7)) {
                presented = value.dropFirst(7).drop(while: { $0 == " " })
            }
        } else if let apiKey = headers.first(name: "x-api-key") {
            presented = Substring(apiKey)
        }
        // A refusal before a key is recognised is counted and logged, never written to the ledger: anyone who
        // can reach the port could otherwise grow the database without limit.
        guard let presented, !presented.isEmpty else {
            gateway.traffic.warn(.unauthenticated, requestID: exchange.id, "refused a request without an API key")
            refuse(exchange, .invalidAPIKey(reason: "Missing API key: send it as 'Authorization: Bearer tg-…'."), record: false)
            return nil
        }
        switch gateway.keys.authenticate(digest: digest(of: presented), now: gateway.clock.now()) {
        case .valid(let key):
            guard key.record.role == .client else {
                refuse(exchange, .viewerKey, record: false)
                return nil
            }
            exchange.key = key
            return key
        case .refused(let key, let reason):
            gateway.traffic.warn(.unauthenticated, requestID: exchange.id,
                                 key.map { "refused key \($0.record.id): \(reason)" } ?? "refused an unknown API key")
            refuse(exchange, .invalidAPIKey(reason: reason), record: false)
            return nil
        }
    }

    /// The SHA-256 of the presented key. A keep-alive connection presents the same key on every request:
    /// its digest is kept with the key and reused when the next request's key is byte for byte the same
    /// (compared in constant time), which saves hashing on every request after the first.
    private func digest(of presented: Substring) -> Digest256 {
        let bytes = presented.utf8
        if let last = lastPresentedKey, last.bytes.count == bytes.count {
            var difference: UInt8 = 0
            for (a, b) in zip(last.bytes, bytes) { difference |= a ^ b }
            if difference == 0 { return last.digest }
        }
        let digest = SHA256.digest(bytes)
        lastPresentedKey = (Array(bytes), digest)
        return digest
    }

    /// `Bearer ` in any case.
    private static func isBearer(_ prefix: Substring.UTF8View.SubSequence) -> Bool {
        var matches = true
        for (byte, expected) in zip(prefix, "bearer ".utf8) {
            let lower = byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte
            matches = matches && lower == expected
        }
        return matches
    }

    private func forward(_ exchange: Exchange, body: ByteBuffer, tooLarge: Bool, context: ChannelHandlerContext) {
        guard let key = authenticate(exchange) else { return }
        guard !tooLarge else { return refuse(exchange, .bodyTooLarge(limit: gateway.settings.maxBodyBytes), record: true) }
        // Settled rows are never dropped: when the store has been away so long that the queue is full, stop
        // taking requests rather than let it grow without bound.
        guard !gateway.ledger.isBacklogged else {
            return refuse(exchange, .storeUnavailable("the ledger cannot be written and \(gateway.ledger.backlogLimit) rows wait"), record: false)
        }
        exchange.span = gateway.tracer?.begin(exchange)
        var anthropicFields: AnthropicRequestFields?
        do {
            if exchange.clientFormat == .anthropic {
                let fields = try body.withUnsafeReadableBytes { bytes throws(JSONScanner.Failure) in
                    try AnthropicRequestFields.scan(bytes)
                }
                anthropicFields = fields
                exchange.fields = RelayHandler.summary(of: fields)
            } else {
                exchange.fields = try body.withUnsafeReadableBytes { bytes throws(JSONScanner.Failure) in
                    try OpenAIRequestFields.scan(bytes)
                }
            }
        } catch {
            let refusal = GatewayError.from(error)
            gateway.traffic.warn(.badRequest, requestID: exchange.id, "refused a request body: \(refusal.message)")
            return refuse(exchange, refusal, record: true)
        }
        if exchange.endpoint == .embeddings { exchange.fields.stream = false }
        guard let model = exchange.fields.model, !model.isEmpty else {
            return refuse(exchange, .invalidRequest(message: "You must provide a model parameter.", param: "model"), record: true)
        }
        exchange.requestedModel = model
        let deployment: Deployment
        if let route = gateway.models.routes[model] {
            guard key.mayUse(model) else { return refuse(exchange, .modelNotAllowed(model: model), record: true) }
            let needs = RouteNeeds(tools: exchange.fields.hasTools, vision: exchange.fields.mediaParts > 0,
                                   json: exchange.fields.jsonResponse,
                                   contextTokens: TokenEstimate.promptTokens(bytes: exchange.fields.promptBytes)
                                       + (exchange.fields.maxOutputTokens ?? 0))
            var random = SystemRandomNumberGenerator()
            var decision: RouteDecision?
            if case .learned(_, _, let share, _, _) = route.strategy, let router = gateway.models.routers[route.name] {
                let text = body.withUnsafeReadableBytes { bytes in
                    exchange.clientFormat == .anthropic ? PromptText.anthropic(bytes) : PromptText.openAI(bytes)
                }
                let score = router.score(text: text)
                let threshold = gateway.calibrations.record(route: route.name, score: score)
                    ?? router.threshold(forStrongShare: share ?? 0.5)
                decision = RouteDecision(useStrong: score >= threshold, score: score)
            }
            let plan: RoutePlan
            do {
                plan = try RoutePlanner.plan(route, needs: needs, registry: gateway.models, inFlight: gateway.health.inFlight,
                                             learned: decision, random: &random)
            } catch {
                switch error {
                case .noCapableModel(let route, let needs):
                    return refuse(exchange, .invalidRequest(message: "No model of route '\(route)' can serve this request (it needs \(needs)).",
                                                            param: "model"), record: true)
                case .unknownModel(let route, let model):
                    return refuse(exchange, .internalError("route '\(route)' names the unknown model '\(model)'"), record: true)
                }
            }
            let candidates = gateway.health.ordered(plan.candidates, at: gateway.clock.now())
            exchange.route = route.name
            exchange.routeReason = candidates.first?.id == plan.candidates.first?.id
                ? plan.reason : plan.reason + "; \(plan.candidates[0].id) circuit open"
            exchange.fallbacks = Array(candidates.dropFirst())
            deployment = candidates[0]
            if let baseline = plan.baseline, baseline.name != deployment.name { exchange.baselineDeployment = baseline }
        } else {
            guard let group = gateway.models.deployments[model] else { return refuse(exchange, .modelNotFound(model: model), record: true) }
            guard key.mayUse(model) else { return refuse(exchange, .modelNotAllowed(model: model), record: true) }
            if group.count == 1 {
                deployment = group[0]
            } else {
                // One deployment drawn by weight; the others (open breakers last) are its fallbacks.
                var random = SystemRandomNumberGenerator()
                let candidates = gateway.health.ordered(gateway.models.spread(model, random: &random), at: gateway.clock.now())
                exchange.fallbacks = Array(candidates.dropFirst())
                deployment = candidates[0]
            }
        }
        exchange.deployment = deployment
        if exchange.endpoint == .countTokens {
            return countTokens(exchange, deployment: deployment, body: body, anthropicFields: anthropicFields, context: context)
        }
        if deployment.wire == .anthropic, exchange.endpoint == .embeddings {
            return refuse(exchange, .invalidRequest(message: "The model '\(model)' does not serve embeddings.", param: "model"), record: true)
        }
        let now = exchange.createdAt
        let tokenBound = TokenEstimate.promptTokens(bytes: exchange.fields.promptBytes) + outputBound(for: deployment, exchange)
        switch gateway.admission.admit(key: key, tokenBound: tokenBound, now: now) {
        case .admitted(let ticket):
            exchange.admission = ticket
        case .rateLimited(let dimension, let retry, let status):
            return refuse(exchange, .rateLimited(dimension, retryAfterSeconds: retry, status), record: true)
        }
        exchange.clientBody = body
        exchange.anthropicFields = anthropicFields
        dispatch(exchange, key: key, deployment: deployment, context: context)
    }

    /// Admits the request on `deployment`'s budgets and sends it there (translated if need be). Called
    /// again with the next model of a route when one fails before the first byte.
    private func dispatch(_ exchange: Exchange, key: ResolvedKey, deployment: Deployment, context: ChannelHandlerContext) {
        guard let body = exchange.clientBody else { return }
        let anthropicFields = exchange.anthropicFields
        exchange.deployment = deployment
        switch admitBudgets(exchange, key: key, deployment: deployment, bodyBytes: body.readableBytes, now: gateway.clock.now()) {
        case .refused:
            return
        case .needsLease(let needs, let fleet):
            // The instance holds too little of a shared budget: ask the fleet's store (one round trip for many
            // requests), then try once more.
            exchange.leaseAttempts += 1
            fleet.acquire(needs, into: gateway.budgets, on: context.eventLoop).assumeIsolated().whenComplete { [self] _ in
                guard !exchange.isSettled, case .responding(let current) = state, current === exchange else { return }
                dispatch(exchange, key: key, deployment: deployment, context: context)
            }
            return
        case .admitted:
            break
        }
        guard let deployment = exchange.deployment else { return }

        let upstreamBody: ByteBuffer
        if exchange.translated {
            do {
                upstreamBody = context.channel.allocator.buffer(bytes: try RelayHandler.translate(body, for: exchange, to: deployment))
            } catch {
                return refuse(exchange, .invalidRequest(message: error.message, param: error.field), record: true)
            }
        } else {
            let edits = anthropicFields?.upstreamEdits(upstreamModel: deployment.upstreamModel)
                ?? exchange.fields.upstreamEdits(upstreamModel: deployment.upstreamModel)
            upstreamBody = RelayHandler.apply(edits, to: body, allocator: context.channel.allocator)
        }
        switch deployment.endpoint {
        case .demo(let settings):
            // The demo model speaks OpenAI's format; a Messages request reaches it translated.
            let demo = DemoUpstream(eventLoop: context.eventLoop, settings: settings, deployment: deployment,
                                    endpoint: exchange.endpoint == .embeddings ? .embeddings : .chatCompletions, fields: exchange.fields,
                                    allocator: context.channel.allocator)
            exchange.source = .demo(demo)
            demo.start(delegate: self)
        case .http(let target, let basePath, let hostHeader):
            exchange.upstreamRequest = (upstreamHead(exchange, deployment, basePath: basePath, hostHeader: hostHeader,
                                                     bodyLength: upstreamBody.readableBytes), upstreamBody)
            gateway.health.begin(deployment.id)
            exchange.inFlightOn = deployment.id
            sendUpstream(exchange, target: target, fresh: false)
        }
    }


    /// The request rewritten in the model's format (every field translated, or refused by name).
    static func translate(_ body: ByteBuffer, for exchange: Exchange, to deployment: Deployment) throws(TranslationError) -> [UInt8] {
        let bytes = Array(body.readableBytesView)
        switch exchange.clientFormat {
        case .openAI:
            return try OpenAIClientToAnthropicModel.upstreamRequest(bytes, model: deployment.upstreamModel,
                                                                   defaultMaxTokens: deployment.maxOutputTokens ?? 4096)
        case .anthropic:
            return try AnthropicClientToOpenAIModel.upstreamRequest(bytes, model: deployment.upstreamModel)
        }
    }

    /// The upstream request's head, as the bytes sent: the provider's key (never the caller's), and for
    /// Anthropic the client's `anthropic-version` (else the model's) and every `anthropic-beta` it sent.
    /// Written straight into a buffer: every name and value is the gateway's own or one the client's HTTP
    /// parser accepted, and building an `HTTPHeaders` for NIO's encoder to write again cost about 1.5 µs.
    private func upstreamHead(_ exchange: Exchange, _ deployment: Deployment, basePath: String, hostHeader: String,
                              bodyLength: Int) -> ByteBuffer {
        // A translated request goes to the model's own endpoint.
        var endpoint = exchange.endpoint ?? .chatCompletions
        switch (deployment.wire, endpoint) {
        case (.anthropic, .chatCompletions): endpoint = .messages
        case (.openAI, .messages): endpoint = .chatCompletions
        default: break
        }
        var head = context?.channel.allocator.buffer(capacity: 320) ?? ByteBuffer()
        head.writeStaticString("POST ")
        head.writeString(basePath)
        head.writeString(endpoint.upstreamPath)
        // Coding agents call `/v1/messages?beta=true`: the query goes on as it came.
        if deployment.wire == .anthropic, exchange.clientFormat == .anthropic,
           let query = exchange.clientHead.uri.split(separator: "?", maxSplits: 1).dropFirst().first {
            head.writeStaticString("?")
            head.writeSubstring(query)
        }
        head.writeStaticString(" HTTP/1.1\r\nhost: ")
        head.writeString(hostHeader)
        head.writeStaticString("\r\ncontent-type: application/json\r\ncontent-length: ")
        head.writeString(String(bodyLength))
        head.writeStaticString(exchange.fields.stream ? "\r\naccept: text/event-stream" : "\r\naccept: application/json")
        head.writeStaticString("\r\nuser-agent: tollgate\r\n")
        func header(_ name: StaticString, _ value: String) {
            head.writeStaticString(name)
            head.writeStaticString(": ")
            head.writeString(value)
            head.writeStaticString("\r\n")
        }
        switch deployment.wire {
        case .openAI:
            if let apiKey = deployment.apiKey {
                head.writeStaticString("authorization: Bearer ")
                head.writeString(apiKey)
                head.writeStaticString("\r\n")
            }
        case .anthropic:
            if let apiKey = deployment.apiKey { header("x-api-key", apiKey) }
            let client = exchange.clientHead.headers
            header("anthropic-version", client.first(name: "anthropic-version") ?? deployment.anthropicVersion)
            let betas = client["anthropic-beta"]
            if !betas.isEmpty { header("anthropic-beta", betas.joined(separator: ",")) }
        }
        exchange.span?.writeHeaders(into: &head)
        head.writeStaticString("\r\n")
        return head
    }

    /// `POST /v1/messages/count_tokens`: forwarded to Anthropic models (free there, so no ledger row and
    /// no admission); for other models, estimated from the prompt's size and said so.
    private func countTokens(_ exchange: Exchange, deployment: Deployment, body: ByteBuffer,
                             anthropicFields: AnthropicRequestFields?, context: ChannelHandlerContext) {
        exchange.recordsLedger = false
        guard deployment.wire == .anthropic, case .http(let target, let basePath, let hostHeader) = deployment.endpoint else {
            let estimate = TokenEstimate.promptTokens(bytes: exchange.fields.promptBytes)
            return respondJSON(exchange, #"{"input_tokens":\#(estimate)}"#, extraHeaders: [("x-tollgate-token-count", "estimated")])
        }
        let upstreamBody = RelayHandler.apply(anthropicFields?.upstreamEdits(upstreamModel: deployment.upstreamModel) ?? [], to: body,
                                              allocator: context.channel.allocator)
        exchange.upstreamRequest = (upstreamHead(exchange, deployment, basePath: basePath, hostHeader: hostHeader,
                                                 bodyLength: upstreamBody.readableBytes), upstreamBody)
        sendUpstream(exchange, target: target, fresh: false)
    }

    /// An Anthropic request described in the terms admission and the ledger use.
    static func summary(of fields: AnthropicRequestFields) -> OpenAIRequestFields {
        var summary = OpenAIRequestFields()
        summary.model = fields.model
        summary.stream = fields.stream
        summary.maxOutputTokens = fields.maxTokens
        summary.toolsOffered = fields.toolsOffered
        summary.hasToolResults = fields.hasToolResults
        summary.messageCount = fields.messageCount
        summary.fingerprint = fields.fingerprint
        summary.sessionID = fields.sessionID
        summary.systemPromptClient = fields.systemPromptClient
        summary.promptBytes = fields.promptBytes
        summary.mediaParts = fields.mediaParts
        return summary
    }

    /// The request's output limit, else the model's.
    private func outputBound(for deployment: Deployment, _ exchange: Exchange) -> Int {
        exchange.endpoint == .embeddings ? 0 : exchange.fields.maxOutputTokens ?? deployment.maxOutputTokens ?? 16_384
    }

    private enum BudgetAdmission {
        case admitted
        /// Answered already (429, 503).
        case refused
        /// Shared budgets need a larger lease first.
        case needsLease([LeaseNeed], FleetBudgets)
    }

    /// Reserves the request's worst case on every budget of its chain. An exhausted `downgrade` budget
    /// sends the request to a cheaper model if that one's worst case fits.
    private func admitBudgets(_ exchange: Exchange, key: ResolvedKey, deployment: Deployment, bodyBytes: Int, now: Date) -> BudgetAdmission {
        let chain = gateway.budgets.chain(for: key, model: deployment.name)
        guard !chain.isEmpty else { return .admitted }
        if let fleet = gateway.budgets.fleet, fleet.refusesBudgetedRequests {
            refuse(exchange, .storeUnavailable("the database is out of reach"), record: true)
            return .refused
        }
        let expiresAt = now.addingTimeInterval(Double(deployment.timeouts.firstByte.nanoseconds) / 1e9 + 4 * 3600)
        func claim(_ deployment: Deployment, _ chain: [BudgetDefinition], downgraded: Bool) -> BudgetBook.Claim {
            let bound = RequestBound(bodyBytes: bodyBytes, promptBytes: exchange.fields.promptBytes,
                                     mediaParts: exchange.fields.mediaParts, outputTokens: outputBound(for: deployment, exchange))
            let worst = bound.worstCase(deployment.price)
            return BudgetBook.Claim(budgetIDs: chain.map(\.id), usd: worst.usd, tokens: worst.tokens,
                                    estimate: bound.estimate(deployment.price), downgraded: downgraded, expiresAt: expiresAt)
        }
        let (decision, remaining) = gateway.budgets.reserve(claim(deployment, chain, downgraded: false), now: now)
        let exhausted: BudgetSnapshot
        switch decision {
        case .reserved(let reservation):
            exchange.reservation = reservation
            exchange.budgetRemainingUSD = remaining
            return .admitted
        case .unknownBudget(let id):
            refuse(exchange, .internalError("budget \(id) is not loaded"), record: true)
            return .refused
        case .needsLease(let needs):
            if let fleet = gateway.budgets.fleet {
                // The store is away: nothing more can be leased (serve_leased serves what is held, no more).
                if fleet.lostSince != nil {
                    refuse(exchange, .storeUnavailable("the database is out of reach and this instance's budget lease is used up"),
                           record: true)
                    return .refused
                }
                if exchange.leaseAttempts < 4 { return .needsLease(needs, fleet) }
            }
            // The store granted too little (or could not be reached): the fleet has spent or leased the rest.
            guard let snapshot = needs.first.flatMap({ gateway.budgets.snapshot(budgetID: $0.budgetID, now: now) }) else {
                refuse(exchange, .storeUnavailable("no budget lease could be had"), record: true)
                return .refused
            }
            exhausted = snapshot
        case .exhausted(let snapshot):
            exhausted = snapshot
        }
        if exhausted.definition.onExhaust == .downgrade,
           let target = gateway.models.downgradeTarget(for: deployment, allowed: key.mayUse) {
            let targetChain = gateway.budgets.chain(for: key, model: target.name)
            let (retry, remaining) = gateway.budgets.reserve(claim(target, targetChain, downgraded: true), now: now)
            if case .reserved(let reservation) = retry {
                exchange.reservation = reservation
                exchange.budgetRemainingUSD = remaining
                exchange.requestedDeployment = deployment
                exchange.deployment = target
                exchange.routeReason = "budget downgrade"
                return .admitted
            }
        }
        refuse(exchange, .budgetExceeded(exhausted, now: now), record: true)
        return .refused
    }

    private func sendUpstream(_ exchange: Exchange, target: UpstreamTarget, fresh: Bool) {
        guard let context, let pool = gateway.pools.pool(for: context.eventLoop), let request = exchange.upstreamRequest,
              let timeouts = exchange.deployment?.timeouts else {
            gateway.traffic.warn(.upstreamConnect, requestID: exchange.id, model: exchange.deployment?.id,
                                 "no upstream connection pool on this event loop")
            return failUpstream(exchange, summary: "the gateway could not reach it", detail: "no upstream connection pool on this event loop")
        }
        let completion: (Result<UpstreamConnection, any Error>) -> Void = { result in
            guard case .responding(let current) = self.state, current === exchange, !exchange.isSettled else {
                if case .success(let connection) = result { pool.release(connection) }
                return
            }
            switch result {
            case .success(let connection):
                exchange.source = .upstream(connection)
                exchange.firstByteDeadline = .now() + timeouts.firstByte
                self.watch(exchange)
                connection.send(head: request.head, body: request.body, delegate: self)
            case .failure(let error):
                if let id = exchange.deployment?.id {
                    self.gateway.health.recordFailure(id, error: "could not connect", at: self.gateway.clock.now())
                }
                self.gateway.traffic.warn(.upstreamConnect, requestID: exchange.id, model: exchange.deployment?.id,
                                          "could not connect to the upstream: \(error)")
                if self.failover(exchange, reason: "fallback after connect error") { return }
                self.failUpstream(exchange, summary: "it could not be reached", detail: "could not connect (\(error))")
            }
        }
        if fresh {
            pool.connect(target, connectTimeout: timeouts.connect, completion)
        } else {
            pool.acquire(target, connectTimeout: timeouts.connect, completion)
        }
    }

    private static func apply(_ edits: [BodyEdit], to body: ByteBuffer, allocator: ByteBufferAllocator) -> ByteBuffer {
        guard !edits.isEmpty else { return body }
        var out = allocator.buffer(capacity: body.readableBytes + edits.reduce(0) { $0 + $1.replacement.count })
        var cursor = 0
        var source = body
        for edit in edits {
            if let slice = source.getSlice(at: source.readerIndex + cursor, length: edit.range.lowerBound - cursor) {
                out.writeImmutableBuffer(slice)
            }
            out.writeBytes(edit.replacement)
            cursor = edit.range.upperBound
        }
        source.moveReaderIndex(forwardBy: cursor)
        out.writeBuffer(&source)
        return out
    }

    // MARK: Upstream events

    func upstreamResponseHead(_ head: HTTPResponseHead) {
        guard case .responding(let exchange) = state, !exchange.isSettled else { return }
        exchange.firstByteDeadline = nil
        exchange.firstByteAt = exchange.firstByteAt ?? .now()
        let code = head.status.code
        if code >= 500 || code == 429 {
            gateway.health.recordFailure(exchange.deployment?.id ?? "", error: "answered \(code)", at: gateway.clock.now())
        } else if exchange.inFlightOn != nil {
            gateway.health.recordSuccess(exchange.deployment?.id ?? "")
        }
        if code >= 500 || code == 401 || code == 403 || code == 407 {
            gateway.traffic.warn(.upstreamStatus, requestID: exchange.id, model: exchange.deployment?.id,
                                 "the upstream answered \(code) \(head.status.reasonPhrase)")
            exchange.phase = .upstreamFault(head.status)
        } else if exchange.fields.stream, code == 200,
                  head.headers.first(name: "content-type")?.contains("text/event-stream") == true {
            let tap: StreamTap
            switch (exchange.deployment?.wire ?? .openAI, exchange.clientFormat) {
            case (.openAI, .openAI): tap = .openAI(SSEUsageTap(hidesUsageChunk: !exchange.fields.clientIncludeUsage))
            case (.anthropic, .anthropic): tap = .anthropic(AnthropicStreamTap())
            case (.anthropic, .openAI):
                tap = .anthropicToOpenAI(AnthropicStreamTap(), AnthropicToOpenAIStream(
                    includeUsage: exchange.fields.clientIncludeUsage, created: Int(exchange.createdAt.timeIntervalSince1970)))
            case (.openAI, .anthropic): tap = .openAIToAnthropic(SSEUsageTap(hidesUsageChunk: false), OpenAIToAnthropicStream())
            }
            exchange.phase = .streaming(tap)
            var headers = responseHeaders(exchange)
            headers.add(name: "content-type", value: "text/event-stream")
            headers.add(name: "cache-control", value: "no-cache")
            writeHead(HTTPResponseHead(version: exchange.clientHead.version, status: .ok, headers: headers))
            armIdleTimer(exchange)
        } else {
            exchange.phase = .buffering(head, nil)
        }
    }

    func upstreamResponseBody(_ buffer: ByteBuffer) {
        guard case .responding(let exchange) = state, let context else { return }
        switch exchange.phase {
        case .buffering(let head, var body):
            var incoming = buffer
            if body == nil { body = incoming } else { body!.writeBuffer(&incoming) }
            exchange.phase = .buffering(head, body)
        case .streaming(var tap):
            armIdleTimer(exchange)
            if case .none = exchange.firstChunkAt { exchange.firstChunkAt = .now() }
            let forward = buffer.withUnsafeReadableBytes { tap.feed($0) }
            exchange.phase = .streaming(tap)
            switch forward {
            case .all:
                context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
            case .bytes(let bytes) where !bytes.isEmpty:
                context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: bytes)))), promise: nil)
            case .bytes:
                break
            }
        case .awaitingUpstream, .upstreamFault, .settled:
            break
        }
    }

    func upstreamResponseEnd() {
        guard case .responding(let exchange) = state, !exchange.isSettled else { return }
        exchange.cancelTimers()
        // The response is complete: the connection has gone back to its pool and is no longer ours.
        exchange.source = nil
        if case .buffering(let head, _) = exchange.phase, head.status == .tooManyRequests,
           failover(exchange, reason: "fallback after 429") {
            return
        }
        switch exchange.phase {
        case .buffering(let head, let body):
            let wire = exchange.deployment?.wire ?? .openAI
            let usage = body.flatMap { body in
                body.withUnsafeReadableBytes { bytes in
                    wire == .anthropic ? AnthropicUsage.scan(responseBody: bytes) : OpenAIUsage.scan(responseBody: bytes)
                }
            }
            let record = exchange.ledgerRecord(status: Int(head.status.code), usage: usage ?? Usage(), usageEstimated: false,
                                               error: head.status.code >= 400 ? "upstream answered \(head.status.code)" : nil,
                                               now: .now())
            var body = body
            if exchange.translated, let upstream = body {
                guard head.status == .ok else {
                    settle(exchange, record)
                    return refuse(exchange, .upstreamRejected(status: head.status, model: exchange.deployment?.name ?? "unknown",
                                                              detail: RelayHandler.errorMessage(in: upstream)), record: false)
                }
                do throws(TranslationError) {
                    body = ByteBuffer(bytes: try RelayHandler.translateResponse(upstream, for: exchange))
                } catch {
                    settle(exchange, record)
                    return refuse(exchange, .upstreamFault(model: exchange.deployment?.name ?? "unknown",
                                                           summary: "its answer could not be translated",
                                                           detail: "its answer could not be translated (\(error.message))"), record: false)
                }
            }
            var headers = responseHeaders(exchange)
            headers.add(name: "content-type", value: exchange.translated ? "application/json"
                                                     : head.headers.first(name: "content-type") ?? "application/json")
            headers.add(name: "content-length", value: String(body?.readableBytes ?? 0))
            headers.add(name: "x-tollgate-cost-usd", value: record.cost.decimalString)
            settle(exchange, record)
            writeHead(HTTPResponseHead(version: exchange.clientHead.version, status: head.status, headers: headers))
            if let body, body.readableBytes > 0 { context?.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil) }
            finishResponse()
        case .streaming(var tap):
            let rest = tap.finish()
            if !rest.isEmpty, let context {
                context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: rest)))), promise: nil)
            }
            let billed = exchange.billedUsage(tap)
            settle(exchange, exchange.ledgerRecord(status: 200, usage: billed.usage, usageEstimated: billed.estimated, error: nil, now: .now()))
            finishResponse()
        case .upstreamFault(let status):
            if failover(exchange, reason: "fallback after \(status.code)") { return }
            failUpstream(exchange, summary: "it answered \(status.code) \(status.reasonPhrase)",
                         detail: "it answered \(status.code) \(status.reasonPhrase)")
        case .awaitingUpstream, .settled:
            break
        }
    }

    static func translateResponse(_ body: ByteBuffer, for exchange: Exchange) throws(TranslationError) -> [UInt8] {
        let bytes = Array(body.readableBytesView)
        switch exchange.clientFormat {
        case .openAI: return try OpenAIClientToAnthropicModel.clientResponse(bytes, created: Int(exchange.createdAt.timeIntervalSince1970))
        case .anthropic: return try AnthropicClientToOpenAIModel.clientResponse(bytes)
        }
    }

    /// The message of an error body in either format, else its first 300 bytes.
    static func errorMessage(in body: ByteBuffer) -> String {
        let object = (try? JSONSerialization.jsonObject(with: Data(body.readableBytesView))) as? [String: Any]
        if let message = (object?["error"] as? [String: Any])?["message"] as? String { return message }
        return String(decoding: body.readableBytesView.prefix(300), as: UTF8.self)
    }

    func upstreamFailed(_ error: any Error, receivedResponse: Bool, wasReused: Bool) {
        guard case .responding(let exchange) = state, !exchange.isSettled else { return }
        // A kept-alive connection the upstream had already closed: the request never reached it.
        if !receivedResponse, wasReused, !exchange.retriedOnFreshConnection,
           case .http(let target, _, _) = exchange.deployment?.endpoint {
            exchange.retriedOnFreshConnection = true
            exchange.cancelTimers()
            exchange.source = nil
            return sendUpstream(exchange, target: target, fresh: true)
        }
        exchange.cancelTimers()
        exchange.source = nil
        if case .streaming(var tap) = exchange.phase {
            _ = tap.finish()
            let billed = exchange.billedUsage(tap)
            gateway.traffic.warn(.streamCut, requestID: exchange.id, model: exchange.deployment?.id,
                                 "the upstream closed a stream before its end: \(error)")
            settle(exchange, exchange.ledgerRecord(status: 200, usage: billed.usage, usageEstimated: billed.estimated,
                                                   error: "upstream closed mid-stream: \(error)", now: .now()))
            finishResponse()
        } else {
            gateway.traffic.warn(.upstreamConnect, requestID: exchange.id, model: exchange.deployment?.id,
                                 receivedResponse ? "the upstream's answer broke off: \(error)" : "the upstream connection failed: \(error)")
            if failover(exchange, reason: receivedResponse ? "fallback after a broken answer" : "fallback after connect error") { return }
            failUpstream(exchange,
                         summary: receivedResponse ? "its answer broke off" : "the connection to it failed before it answered",
                         detail: "\(error)")
        }
    }

    /// The exchange no longer counts as in flight on its deployment.
    private func leaveDeployment(_ exchange: Exchange) {
        guard let id = exchange.inFlightOn else { return }
        exchange.inFlightOn = nil
        gateway.health.end(id)
    }

    /// Sends the request to the next deployment (of the route, or of the model asked for by name), if there
    /// is one and nothing has reached the client yet: the failed attempt's budget reservation is released
    /// first (it cost nothing).
    ///
    /// Within a route, the same deployment is first tried once more after a jittered back-off (a blip is
    /// more common than an outage). A request for a model by name only moves on to the model's other
    /// deployments: the same one is not retried, since the client's SDK does that, and a gateway retrying
    /// too would multiply the attempts.
    private func failover(_ exchange: Exchange, reason: String, mayRetrySame: Bool = true) -> Bool {
        guard let key = exchange.key, let context else { return false }
        switch exchange.phase {
        case .awaitingUpstream, .buffering, .upstreamFault: break
        case .streaming, .settled: return false
        }
        let retrySame = mayRetrySame && exchange.route != nil && exchange.attemptsOnDeployment < RelayHandler.attemptsPerDeployment
        guard retrySame || !exchange.fallbacks.isEmpty, let current = exchange.deployment else { return false }
        exchange.cancelTimers()
        exchange.abandonSource()
        leaveDeployment(exchange)
        if let reservation = exchange.reservation {
            gateway.budgets.settle(reservation, actualUSD: .zero, actualTokens: 0, now: gateway.clock.now())
            exchange.reservation = nil
        }
        exchange.phase = .awaitingUpstream
        exchange.retriedOnFreshConnection = false
        exchange.firstByteAt = nil
        if retrySame {
            exchange.attemptsOnDeployment += 1
            let backoff = RelayHandler.retryBackoff(attempt: exchange.attemptsOnDeployment)
            exchange.retryTimer = context.eventLoop.assumeIsolated().scheduleTask(in: backoff) {
                guard case .responding(let live) = self.state, live === exchange, !exchange.isSettled else { return }
                exchange.retryTimer = nil
                self.dispatch(exchange, key: key, deployment: exchange.requestedDeployment ?? current, context: context)
            }
            return true
        }
        exchange.requestedDeployment = nil
        exchange.routeReason = reason
        exchange.attemptsOnDeployment = 1
        let next = exchange.fallbacks.removeFirst()
        dispatch(exchange, key: key, deployment: next, context: context)
        return true
    }

    /// Attempts on one deployment of a route before the next is tried.
    static let attemptsPerDeployment = 2

    /// 100 ms doubled per attempt, with ±50 % jitter so that many clients retrying do not arrive together.
    static func retryBackoff(attempt: Int) -> TimeAmount {
        let base = 100_000_000 << max(0, attempt - 2)
        return .nanoseconds(Int64(Double(base) * Double.random(in: 0.5...1.5)))
    }

    /// Keeps the connection's one watchdog task due no later than the exchange's next deadline. Deadlines
    /// move with every request and every stream chunk, and moving one is a store: a task scheduled and
    /// cancelled per request and per chunk cost about 3 % of the CPU. The task, when it fires, acts on the
    /// deadlines that have passed and follows the ones that moved.
    private func watch(_ exchange: Exchange) {
        guard let context, let deadline = exchange.nextDeadline else { return }
        if let due = watchdogDue, due <= deadline { return }
        watchdog?.cancel()
        watchdogDue = deadline
        watchdog = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [weak self] in
            self?.watchdogFired()
        }
    }

    private func watchdogFired() {
        watchdog = nil
        watchdogDue = nil
        guard case .responding(let exchange) = state, !exchange.isSettled else { return }
        let now = NIODeadline.now()
        if let deadline = exchange.firstByteDeadline, deadline <= now {
            firstByteTimedOut(exchange)
        } else if let deadline = exchange.idleDeadline, deadline <= now {
            idleTimedOut(exchange)
        } else {
            watch(exchange)
        }
    }

    private func firstByteTimedOut(_ exchange: Exchange) {
        guard case .responding(let current) = state, current === exchange, !exchange.isSettled else { return }
        exchange.firstByteDeadline = nil
        let timeout = exchange.deployment?.timeouts.firstByte ?? .zero
        if let id = exchange.deployment?.id {
            gateway.health.recordFailure(id, error: "no answer within the first-byte time-out", at: gateway.clock.now())
        }
        // The abandoned connection is closed (never reused) before a route tries elsewhere.
        exchange.abandonSource()
        gateway.traffic.warn(.upstreamTimeout, requestID: exchange.id, model: exchange.deployment?.id,
                             "no answer from the upstream within \(timeout.nanoseconds / 1_000_000) ms")
        // A deployment that kept a request waiting for the whole time-out is not waited on twice.
        if failover(exchange, reason: "fallback after time-out", mayRetrySame: false) { return }
        refuse(exchange, .upstreamTimeout(model: exchange.deployment?.name ?? "unknown", afterMs: Int(timeout.nanoseconds / 1_000_000)),
               record: true)
    }

    private func armIdleTimer(_ exchange: Exchange) {
        guard let idle = exchange.deployment?.timeouts.idle else { return }
        exchange.idleDeadline = .now() + idle
        watch(exchange)
    }

    private func idleTimedOut(_ exchange: Exchange) {
        guard case .responding(let current) = state, current === exchange, !exchange.isSettled,
              case .streaming(let tap) = exchange.phase else { return }
        exchange.idleDeadline = nil
        exchange.abandonSource()
        gateway.traffic.warn(.upstreamTimeout, requestID: exchange.id, model: exchange.deployment?.id,
                             "a stream went silent for longer than the idle time-out and was cut")
        let billed = exchange.billedUsage(tap)
        settle(exchange, exchange.ledgerRecord(status: 200, usage: billed.usage, usageEstimated: billed.estimated,
                                               error: "upstream idle for longer than the idle time-out", now: .now()))
        finishResponse()
    }

    /// The client went away mid-exchange: the upstream is abandoned (its connection closed, never
    /// reused) and what was generated is billed.
    private func clientGone(_ exchange: Exchange) {
        exchange.cancelTimers()
        exchange.abandonSource()
        let usage: Usage
        var estimated = false
        var complete = false
        if case .streaming(let tap) = exchange.phase {
            (usage, estimated) = exchange.billedUsage(tap)
            // Clients close as soon as the stream's last event arrives, often before the upstream's own end
            // of the body: that stream was delivered whole.
            complete = tap.sawEnd
        } else {
            usage = Usage()
        }
        settle(exchange, exchange.ledgerRecord(status: complete ? 200 : 499, usage: usage, usageEstimated: estimated,
                                               error: complete ? nil : "client closed the connection", now: .now()))
    }

    // MARK: Answers

    /// A 502 naming the model; `summary` is what the client is told, `detail` (an address, an error's own
    /// text) only goes to the log and the ledger row.
    private func failUpstream(_ exchange: Exchange, summary: String, detail: String) {
        exchange.abandonSource()
        refuse(exchange, .upstreamFault(model: exchange.deployment?.name ?? "unknown", summary: summary, detail: detail), record: true)
    }

    /// Answers with a gateway error; `record` adds a ledger row (every billable endpoint does).
    private func refuse(_ exchange: Exchange, _ error: GatewayError, record: Bool) {
        exchange.cancelTimers()
        if record {
            settle(exchange, exchange.ledgerRecord(status: Int(error.status.code), usage: Usage(), usageEstimated: false,
                                                   error: error.logDetail, now: .now()))
        } else {
            exchange.phase = .settled
        }
        writeJSON(exchange, status: error.status, error.body(for: exchange.clientFormat), extraHeaders: error.headers)
    }

    /// A whole answer made by the gateway itself (nothing upstream).
    private func respondJSON(_ exchange: Exchange, _ body: String, extraHeaders: [(String, String)] = []) {
        exchange.phase = .settled
        writeJSON(exchange, status: .ok, body, extraHeaders: extraHeaders)
    }

    private func writeJSON(_ exchange: Exchange, status: HTTPResponseStatus, _ body: String, extraHeaders: [(String, String)]) {
        var headers = responseHeaders(exchange)
        for (name, value) in extraHeaders { headers.add(name: name, value: value) }
        headers.add(name: "content-type", value: "application/json")
        headers.add(name: "content-length", value: String(body.utf8.count))
        writeHead(HTTPResponseHead(version: exchange.clientHead.version, status: status, headers: headers))
        if let context { context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))), promise: nil) }
        finishResponse()
    }

    private func respondModels(_ exchange: Exchange, key: ResolvedKey) {
        var body = #"{"object":"list","data":["#
        var first = true
        for name in gateway.models.names where key.mayUse(name) {
            let owner: String
            if let deployment = gateway.models[name] {
                owner = deployment.isSimulated ? "tollgate-demo (simulated)" : deployment.provider
            } else {
                owner = "tollgate-route"
            }
            if !first { body += "," }
            first = false
            body += #"{"id":"# + JSONString.quoted(name) + #","object":"model","created":0,"owned_by":"# + JSONString.quoted(owner) + "}"
        }
        body += "]}"
        respondJSON(exchange, body)
    }

    private func responseHeaders(_ exchange: Exchange) -> HTTPHeaders {
        var headers = HTTPHeaders()
        headers.reserveCapacity(8)
        headers.add(name: "x-tollgate-request-id", value: exchange.id)
        if let deployment = exchange.deployment { headers.add(name: "x-tollgate-model", value: deployment.name) }
        if let remaining = exchange.budgetRemainingUSD {
            headers.add(name: "x-tollgate-budget-remaining-usd", value: remaining.decimalString)
        }
        if let status = exchange.admission?.status {
            for (name, value) in RateLimitHeaders.fields(status) { headers.add(name: name, value: value) }
        }
        if closeAfterResponse { headers.add(name: "connection", value: "close") }
        return headers
    }

    private func writeHead(_ head: HTTPResponseHead) {
        context?.write(wrapOutboundOut(.head(head)), promise: nil)
    }

    private func settle(_ exchange: Exchange, _ record: consuming LedgerRecord) {
        guard !exchange.isSettled else { return }
        exchange.phase = .settled
        leaveDeployment(exchange)
        exchange.endSpan(record)
        guard exchange.recordsLedger else { return }
        let tokens = record.usage.totalPromptTokens + record.usage.outputTokens
        if let ticket = exchange.admission {
            gateway.admission.settle(ticket, actualTokens: tokens, now: gateway.clock.now())
        }
        var settlements: [LeaseSettlement] = []
        if let reservation = exchange.reservation {
            settlements = gateway.budgets.settle(reservation, actualUSD: record.cost, actualTokens: tokens, requestID: record.id,
                                                 now: gateway.clock.now())
        }
        gateway.metrics?.record(record)
        gateway.ledger.enqueue(record, settling: settlements)
    }

    /// Writes the end of the response. The state goes back to idle first: writing the end lets the
    /// pipeline handler deliver the next request at once, re-entrantly.
    private func finishResponse() {
        state = .idle
        guard let context else { return }
        if closeAfterResponse {
            context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        } else {
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
    }
}
