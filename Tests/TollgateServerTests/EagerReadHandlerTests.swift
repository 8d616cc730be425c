import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing
@testable import TollgateServer

/// Counts the reads that reach the socket.
private final class ReadCounter: ChannelOutboundHandler {
    typealias OutboundIn = NIOAny
    var reads = 0
    func read(context: ChannelHandlerContext) {
        reads += 1
        context.read()
    }
}

/// Withholds every read, as NIO's pipelining handler does while a response is in flight.
private final class ReadWithholder: ChannelOutboundHandler {
    typealias OutboundIn = NIOAny
    var withholding = true
    func read(context: ChannelHandlerContext) {
        if !withholding { context.read() }
    }
}

@Suite("Eager reads: the socket stays readable while a response is in flight")
struct EagerReadHandlerTests {
    @Test("after each read burst it asks for the next read itself, up to its limit; the pipeline's own read resets it")
    func readsOnItsOwn() throws {
        let counter = ReadCounter()
        let withholder = ReadWithholder()
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandlers([counter, EagerReadHandler(limit: 100), withholder])
        try channel.connect(to: .init(ipAddress: "127.0.0.1", port: 1)).wait()
        let before = counter.reads

        try channel.writeInbound(ByteBuffer(string: "GET / HTTP/1.1\r\n"))  // a read and a read-complete
        #expect(counter.reads == before + 1)  // the withholder kept its read; the eager handler asked anyway

        try channel.writeInbound(ByteBuffer(string: String(repeating: "pipelined ", count: 10)))
        #expect(counter.reads == before + 1)  // 116 bytes unasked, past the limit: back-pressure is the pipeline's again

        withholder.withholding = false
        channel.read()  // the pipeline asks again (the response ended): the count starts over
        #expect(counter.reads == before + 2)
        try channel.writeInbound(ByteBuffer(string: "x"))
        #expect(counter.reads == before + 3)
        _ = try channel.finish(acceptAlreadyClosed: true)
    }

    @Test("once the server quiesces it asks for nothing more")
    func quiesce() throws {
        let counter = ReadCounter()
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandlers([counter, EagerReadHandler(), ReadWithholder()])
        try channel.connect(to: .init(ipAddress: "127.0.0.1", port: 1)).wait()
        let before = counter.reads
        channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        try channel.writeInbound(ByteBuffer(string: "GET / HTTP/1.1\r\n"))  // a read and a read-complete
        #expect(counter.reads == before)
        _ = try channel.finish(acceptAlreadyClosed: true)
    }
}
