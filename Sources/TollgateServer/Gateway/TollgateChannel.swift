import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1

/// Each accepted connection: NIO's HTTP/1 codec with pipelining assistance, then the relay (which keeps
/// `/v1/*`), then Hummingbird's own HTTP/1 tail and request loop for everything else. One port serves
/// both, and the `/v1` path never enters Swift concurrency.
struct TollgateChannel: ServerChildChannel, HTTPChannelHandler {
    typealias Value = NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>

    let responder: HTTPChannelHandler.Responder
    let gateway: Gateway

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            // A client that half-closes gets its connection closed: the relay then settles what it had.
            try channel.syncOptions?.setOption(ChannelOptions.allowRemoteHalfClosure, value: false)
            // Response headers are the gateway's own (from its config and counters), never a client's:
            // validating every byte of them again on each response cost ~5 % of the CPU.
            // Parser errors are answered by the relay, once (NIO's error handler answered every one of them, and
            // Hummingbird once more).
            try channel.pipeline.syncOperations.configureHTTPServerPipeline(
                withPipeliningAssistance: true,
                withErrorHandling: false,
                withOutboundHeaderValidation: false
            )
            // Slow request heads: the raw side starts the clock at a head's first byte, the parsed side (before
            // the pipelining handler, which may hold a parsed head back) stops it when the head is complete.
            let headTimer = RequestHeadTimer(timeout: gateway.settings.requestHeadTimeout, traffic: gateway.traffic)
            try channel.pipeline.syncOperations.addHandler(
                headTimer.partsWatcher,
                position: .before(try channel.pipeline.syncOperations.handler(type: HTTPServerPipelineHandler.self)))
            try channel.pipeline.syncOperations.addHandler(headTimer, position: .first)
            // In front of the relay: Hummingbird's own idle time-out never sees `/v1` traffic. Reads only: the
            // relay closes on it only when nothing is in flight, and watching writes too cost a promise and a
            // callback per write.
            try channel.pipeline.syncOperations.addHandler(IdleStateHandler(readTimeout: gateway.settings.idleTimeout),
                                                           position: .first)
            try channel.pipeline.syncOperations.addHandler(EagerReadHandler(), position: .first)
            try channel.pipeline.syncOperations.addHandler(RelayHandler(gateway: gateway))
            try channel.pipeline.syncOperations.addHandler(HTTP1ToHTTPServerCodec(secure: false))
            try channel.pipeline.syncOperations.addHandler(HTTPConnectionStateHandler(idleTimeout: nil, logger: logger))
            return try NIOAsyncChannel(wrappingChannelSynchronously: channel, configuration: .init(isOutboundHalfClosureEnabled: true))
        }
    }

    func handle(value asyncChannel: Value, logger: Logger) async {
        await handleHTTP(asyncChannel: asyncChannel, logger: logger)
    }
}

/// Closes a connection whose request head is not complete `timeout` after its first byte, however the bytes
/// trickle in: the idle time-out restarts on every byte, so a client sending one header line a second would
/// otherwise hold the connection for ever (slowloris). Nothing is answered: nginx closes the same way.
///
/// States: `awaitingHead` → (a byte) `readingHead` (clock running) → (the parser's head) `inRequest` → (the
/// parser's end) `awaitingHead`. Bytes arriving in `inRequest` (a body, a pipelined request) start no clock.
final class RequestHeadTimer: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private enum State {
        case awaitingHead
        case readingHead(Scheduled<Void>)
        case inRequest
    }

    private let timeout: TimeAmount
    private let traffic: TrafficLog
    private var state = State.awaitingHead
    /// Placed after the HTTP parser; tells this handler where each request's head and end are.
    private(set) var partsWatcher: PartsWatcher!

    init(timeout: TimeAmount, traffic: TrafficLog) {
        self.timeout = timeout
        self.traffic = traffic
        partsWatcher = PartsWatcher(timer: self)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .awaitingHead = state, unwrapInboundIn(data).readableBytes > 0 {
            let timeout = timeout
            let task = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { [weak self] in
                guard let self, case .readingHead = self.state else { return }
                self.traffic.warn(.badRequest, requestID: nil,
                                  "a request head was not complete within \(timeout.nanoseconds / 1_000_000) ms; connection closed")
                context.close(promise: nil)
            }
            state = .readingHead(task)
        }
        context.fireChannelRead(data)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        if case .readingHead(let task) = state { task.cancel() }
        state = .inRequest
    }

    fileprivate func headParsed() {
        if case .readingHead(let task) = state { task.cancel() }
        state = .inRequest
    }

    fileprivate func requestEnded() {
        if case .inRequest = state { state = .awaitingHead }
    }

    final class PartsWatcher: ChannelInboundHandler, RemovableChannelHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias InboundOut = HTTPServerRequestPart
        private weak var timer: RequestHeadTimer?

        fileprivate init(timer: RequestHeadTimer) {
            self.timer = timer
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head: timer?.headParsed()
            case .end: timer?.requestEnded()
            case .body: break
            }
            context.fireChannelRead(data)
        }
    }
}

/// Keeps the socket readable while a response is in flight. NIO's pipelining handler withholds `read()`
/// until the response ends, and each withheld read costs two `epoll_ctl` calls per request (interest
/// dropped, then added back): about 5 % of the gateway's CPU. This handler, next to the socket, asks for
/// the next read itself after every read burst, so the kernel's interest never changes; whatever a client
/// pipelines meanwhile is buffered by the pipelining handler as before, bounded here: after `limit` bytes
/// without a read asked for by the pipeline, it lets the pipeline's own back-pressure rule again. It stops
/// at once when the server quiesces, so a graceful shutdown reads nothing new.
final class EagerReadHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = NIOAny
    typealias OutboundOut = NIOAny

    private let limit: Int
    private var unasked = 0
    private var quiescing = false

    init(limit: Int = 1 << 20) {
        self.limit = limit
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        unasked += unwrapInboundIn(data).readableBytes
        context.fireChannelRead(data)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.fireChannelReadComplete()
        if !quiescing, unasked < limit, context.channel.isActive { context.read() }
    }

    func read(context: ChannelHandlerContext) {
        unasked = 0
        context.read()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent { quiescing = true }
        context.fireUserInboundEventTriggered(event)
    }
}
