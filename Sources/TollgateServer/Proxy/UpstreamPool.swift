import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// What a relay hears from its upstream, always on the event loop it shares with that upstream.
protocol UpstreamResponseDelegate: AnyObject {
    func upstreamResponseHead(_ head: HTTPResponseHead)
    func upstreamResponseBody(_ buffer: ByteBuffer)
    func upstreamResponseEnd()
    /// The connection failed or closed before the response ended. `receivedResponse` says whether any
    /// part of the response had arrived; `wasReused` whether the connection had served a request before.
    func upstreamFailed(_ error: any Error, receivedResponse: Bool, wasReused: Bool)
}

enum UpstreamConnectionError: Error, CustomStringConvertible {
    case closedEarly

    var description: String {
        switch self {
        case .closedEarly: "the upstream closed the connection before the response ended"
        }
    }
}

/// One keep-alive HTTP/1.1 connection to an upstream, used by one request at a time and only from its
/// own event loop.
///
/// States: idle in the pool (no delegate) → in use (delegate set, request sent) → response ended: back to
/// idle if both sides keep it alive, else closed. A connection abandoned mid-response is closed, never
/// reused.
final class UpstreamConnection: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    let target: UpstreamTarget
    private(set) var channel: (any Channel)?
    private weak var pool: UpstreamPool?
    private var delegate: (any UpstreamResponseDelegate)?
    private var receivedResponse = false
    private var keepAlive = true
    private(set) var requestsServed = 0
    private(set) var isClosed = false
    /// When the connection last went back to the pool.
    var idleSince = NIODeadline.now()

    init(target: UpstreamTarget) {
        self.target = target
    }

    func attach(channel: any Channel, pool: UpstreamPool) {
        self.channel = channel
        self.pool = pool
    }

    /// Sends a request whose head is already encoded (`PrebuiltRequestEncoder`): a keep-alive `POST`.
    func send(head: ByteBuffer, body: ByteBuffer, delegate: any UpstreamResponseDelegate) {
        guard let channel, !isClosed else {
            delegate.upstreamFailed(UpstreamConnectionError.closedEarly, receivedResponse: false, wasReused: requestsServed > 0)
            return
        }
        self.delegate = delegate
        receivedResponse = false
        keepAlive = true
        // The response decoder learns the method from the head part (a HEAD answer has no body).
        channel.write(HTTPClientRequestPart.head(PrebuiltRequestEncoder.post), promise: nil)
        if body.readableBytes <= 8192 {
            var request = head
            var body = body
            request.writeBuffer(&body)
            channel.writeAndFlush(HTTPClientRequestPart.body(.byteBuffer(request)), promise: nil)
        } else {
            channel.write(HTTPClientRequestPart.body(.byteBuffer(head)), promise: nil)
            channel.writeAndFlush(HTTPClientRequestPart.body(.byteBuffer(body)), promise: nil)
        }
    }

    /// Stops reading while the client cannot take more (backpressure), and resumes.
    func setReading(_ reading: Bool) {
        _ = channel?.setOption(ChannelOptions.autoRead, value: reading)
    }

    /// Closes the connection; its delegate (if any) is dropped without further events.
    func close() {
        delegate = nil
        guard !isClosed else { return }
        isClosed = true
        pool?.forget(self)
        channel?.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            // Informational answers (100 Continue) are not the response.
            guard head.status.code >= 200 else { return }
            receivedResponse = true
            keepAlive = keepAlive && head.isKeepAlive
            delegate?.upstreamResponseHead(head)
        case .body(let buffer):
            delegate?.upstreamResponseBody(buffer)
        case .end:
            guard receivedResponse else { return }
            let finished = delegate
            delegate = nil
            requestsServed += 1
            if keepAlive && !isClosed {
                pool?.release(self)
            } else {
                close()
            }
            finished?.upstreamResponseEnd()
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAndClose(UpstreamConnectionError.closedEarly)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        failAndClose(error)
    }

    private func failAndClose(_ error: any Error) {
        let failed = delegate
        let wasReused = requestsServed > 0
        let received = receivedResponse
        close()
        failed?.upstreamFailed(error, receivedResponse: received, wasReused: wasReused)
    }
}

/// Sends requests whose bytes the relay wrote itself: a head part only tells the response decoder (which
/// sits between) the method; body parts go to the socket as they are; the end part writes nothing (the
/// request carries its `content-length`).
final class PrebuiltRequestEncoder: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = HTTPClientRequestPart
    typealias OutboundOut = IOData

    static let post = HTTPRequestHead(version: .http1_1, method: .POST, uri: "/")

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head, .end:
            promise?.succeed(())
        case .body(let body):
            context.write(wrapOutboundOut(body), promise: promise)
        }
    }
}

/// Keep-alive connections to every upstream, for one event loop: used only from that loop, so it needs
/// no lock, and a client connection and its upstream connection share a thread.
final class UpstreamPool {
    let eventLoop: any EventLoop
    private let tlsContext: NIOSSLContext?
    private var idle: [UpstreamTarget: [UpstreamConnection]] = [:]
    /// A pooled connection unused for longer than this is closed rather than trusted: servers and
    /// middleboxes drop idle connections silently, and a request sent on one would wait for a time-out.
    static let maxIdleTime = TimeAmount.seconds(50)
    private var open: [ObjectIdentifier: UpstreamConnection] = [:]

    init(eventLoop: any EventLoop, tlsContext: NIOSSLContext?) {
        self.eventLoop = eventLoop
        self.tlsContext = tlsContext
    }

    var openConnections: Int { open.count }

    /// Open and idle connections per target, for `/metrics`.
    func connectionCounts() -> [UpstreamTarget: (open: Int, idle: Int)] {
        var counts: [UpstreamTarget: (open: Int, idle: Int)] = [:]
        for connection in open.values { counts[connection.target, default: (0, 0)].open += 1 }
        for (target, connections) in idle { counts[target, default: (0, 0)].idle += connections.count }
        return counts
    }

    /// Calls back (on this loop) with an idle connection to `target`, or a new one.
    func acquire(_ target: UpstreamTarget, connectTimeout: TimeAmount,
                 _ completion: @escaping (Result<UpstreamConnection, any Error>) -> Void) {
        let now = NIODeadline.now()
        while let connection = idle[target]?.popLast() {
            if now - connection.idleSince > Self.maxIdleTime {
                connection.close()
            } else if !connection.isClosed, connection.channel?.isActive == true {
                return completion(.success(connection))
            }
        }
        connect(target, connectTimeout: connectTimeout, completion)
    }

    /// Calls back (on this loop) with a new connection, never one from the pool.
    func connect(_ target: UpstreamTarget, connectTimeout: TimeAmount,
                 _ completion: @escaping (Result<UpstreamConnection, any Error>) -> Void) {
        let tlsContext = target.tls ? self.tlsContext : nil
        if target.tls && tlsContext == nil {
            return completion(.failure(NIOSSLError.failedToLoadCertificate))
        }
        let serverHostname = target.host.isIPAddress ? nil : target.host
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(connectTimeout)
            .channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tlsContext {
                        let tls = try NIOSSLClientHandler(context: tlsContext, serverHostname: serverHostname)
                        try channel.pipeline.syncOperations.addHandler(tls)
                    }
                    // The upstream request's head is written by the relay as bytes; NIO's response decoder reads the
                    // answer (and watches the head part go by for its method).
                    try channel.pipeline.syncOperations.addHandler(PrebuiltRequestEncoder())
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(HTTPResponseDecoder(leftOverBytesStrategy: .dropBytes)))
                    try channel.pipeline.syncOperations.addHandler(UpstreamConnection(target: target))
                }
            }
        bootstrap.connect(host: target.host, port: target.port).assumeIsolated().whenComplete { result in
            completion(Result {
                let channel = try result.get()
                let connection = try channel.pipeline.syncOperations.handler(type: UpstreamConnection.self)
                connection.attach(channel: channel, pool: self)
                self.open[ObjectIdentifier(connection)] = connection
                return connection
            })
        }
    }

    func release(_ connection: UpstreamConnection) {
        connection.idleSince = .now()
        idle[connection.target, default: []].append(connection)
    }

    func forget(_ connection: UpstreamConnection) {
        open[ObjectIdentifier(connection)] = nil
        if let index = idle[connection.target]?.firstIndex(where: { $0 === connection }) {
            idle[connection.target]?.remove(at: index)
        }
    }

    func closeAll() {
        for connection in Array(open.values) { connection.close() }
        idle.removeAll()
    }
}

/// One pool per event loop of the group, fixed at start-up.
final class UpstreamPools: Sendable {
    private let pools: [ObjectIdentifier: NIOLoopBound<UpstreamPool>]

    private init(pools: [ObjectIdentifier: NIOLoopBound<UpstreamPool>]) {
        self.pools = pools
    }

    /// Creates each loop's pool on that loop.
    static func make(group: any EventLoopGroup, tlsContext: NIOSSLContext?) async throws -> UpstreamPools {
        var pools: [ObjectIdentifier: NIOLoopBound<UpstreamPool>] = [:]
        for loop in group.makeIterator() {
            pools[ObjectIdentifier(loop)] = try await loop.submit {
                NIOLoopBound(UpstreamPool(eventLoop: loop, tlsContext: tlsContext), eventLoop: loop)
            }.get()
        }
        return UpstreamPools(pools: pools)
    }

    /// The pool of `eventLoop`; call only on that loop.
    func pool(for eventLoop: any EventLoop) -> UpstreamPool? {
        pools[ObjectIdentifier(eventLoop)]?.value
    }

    /// Open and idle connections per target, summed over the loops (each counted on its own loop).
    func connectionCounts() async -> [UpstreamTarget: (open: Int, idle: Int)] {
        var total: [UpstreamTarget: (open: Int, idle: Int)] = [:]
        for (_, bound) in pools {
            guard let counts = try? await bound.eventLoop.submit({ bound.value.connectionCounts() }).get() else { continue }
            for (target, count) in counts {
                total[target, default: (0, 0)].open += count.open
                total[target, default: (0, 0)].idle += count.idle
            }
        }
        return total
    }

    func closeAll() async {
        for (_, bound) in pools {
            try? await bound.eventLoop.submit { bound.value.closeAll() }.get()
        }
    }
}

extension String {
    var isIPAddress: Bool {
        (try? SocketAddress(ipAddress: self, port: 0)) != nil
    }
}
