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
            try channel.pipeline.syncOperations.configureHTTPServerPipeline(
                withPipeliningAssistance: true,
                withErrorHandling: true,
                withOutboundHeaderValidation: false
            )
            // In front of the relay: Hummingbird's own idle time-out never sees `/v1` traffic.
            try channel.pipeline.syncOperations.addHandler(IdleStateHandler(allTimeout: gateway.settings.idleTimeout),
                                                           position: .first)
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
