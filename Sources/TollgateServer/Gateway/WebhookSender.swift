import Foundation
import Logging
import NIOCore
import NIOHTTP1
import TollgateCore

/// Delivers JSON events (a budget's soft threshold crossed, …) to the configured webhook: a `POST` signed
/// with `x-tollgate-signature: sha256=<HMAC-SHA-256 of the body>`, retried with exponential back-off on
/// connection errors and non-2xx answers. It uses the relay's own upstream pools: no second HTTP client.
final class WebhookSender: Sendable {
    struct Endpoint: Sendable {
        var target: UpstreamTarget
        var path: String
        var hostHeader: String
    }

    let endpoint: Endpoint
    private let secret: [UInt8]
    private let pools: UpstreamPools
    private let eventLoop: any EventLoop
    private let logger: Logger
    /// Waits before the 2nd, 3rd, … attempt.
    let backoff: [TimeAmount]
    let timeout: TimeAmount

    init(endpoint: Endpoint, secret: String, pools: UpstreamPools, eventLoop: any EventLoop, logger: Logger,
         backoff: [TimeAmount] = [.seconds(1), .seconds(2), .seconds(4), .seconds(8), .seconds(16), .seconds(32)],
         timeout: TimeAmount = .seconds(10)) {
        self.endpoint = endpoint
        self.secret = Array(secret.utf8)
        self.pools = pools
        self.eventLoop = eventLoop
        self.logger = logger
        self.backoff = backoff
        self.timeout = timeout
    }

    static func endpoint(url: String) -> Endpoint? {
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased(),
              scheme == "http" || scheme == "https", let host = components.host, !host.isEmpty else { return nil }
        let tls = scheme == "https"
        let port = components.port ?? (tls ? 443 : 80)
        let path = components.percentEncodedPath.isEmpty ? "/" : components.percentEncodedPath
        let query = components.percentEncodedQuery.map { "?" + $0 } ?? ""
        let defaultPort = (tls && port == 443) || (!tls && port == 80)
        return Endpoint(target: UpstreamTarget(tls: tls, host: host, port: port), path: path + query,
                        hostHeader: defaultPort ? host : "\(host):\(port)")
    }

    func signature(of body: String) -> String {
        "sha256=" + Hex.encode(SHA256.hmac(key: secret, message: Array(body.utf8)))
    }

    /// Sends `body` (JSON) in the background; `delivered` is called once with whether it got through.
    func deliver(_ body: String, event: String, delivered: (@Sendable (Bool) -> Void)? = nil) {
        eventLoop.execute { self.attempt(body, event: event, number: 1, delivered: delivered) }
    }

    private func attempt(_ body: String, event: String, number: Int, delivered: (@Sendable (Bool) -> Void)?) {
        guard let pool = pools.pool(for: eventLoop) else { return }
        // The head as bytes, as the upstream connections send it (`PrebuiltRequestEncoder`).
        var head = ByteBuffer()
        head.writeString("POST \(endpoint.path) HTTP/1.1\r\nhost: \(endpoint.hostHeader)\r\ncontent-type: application/json\r\n")
        head.writeString("content-length: \(body.utf8.count)\r\nuser-agent: tollgate-webhook\r\n")
        head.writeString("x-tollgate-event: \(event)\r\nx-tollgate-signature: \(signature(of: body))\r\n\r\n")
        let exchange = WebhookExchange(eventLoop: eventLoop, timeout: timeout) { succeeded, detail in
            if succeeded {
                self.logger.info("webhook \(event) delivered", metadata: ["attempt": "\(number)"])
                delivered?(true)
            } else if number <= self.backoff.count {
                self.logger.warning("webhook \(event) failed (\(detail)); retrying", metadata: ["attempt": "\(number)"])
                self.eventLoop.assumeIsolated().scheduleTask(in: self.backoff[number - 1]) {
                    self.attempt(body, event: event, number: number + 1, delivered: delivered)
                }
            } else {
                self.logger.error("webhook \(event) given up after \(number) attempts (\(detail))")
                delivered?(false)
            }
        }
        pool.connect(endpoint.target, connectTimeout: timeout) { result in
            switch result {
            case .success(let connection):
                exchange.connection = connection
                connection.send(head: head, body: ByteBuffer(string: body), delegate: exchange)
            case .failure(let error):
                exchange.finish(false, "\(error)")
            }
        }
    }
}

/// One webhook request on the event loop: success is a 2xx answer within the time-out.
private final class WebhookExchange: UpstreamResponseDelegate {
    private var done = false
    private var status: UInt = 0
    private var timer: Scheduled<Void>?
    private let completion: (Bool, String) -> Void
    var connection: UpstreamConnection?

    init(eventLoop: any EventLoop, timeout: TimeAmount, completion: @escaping (Bool, String) -> Void) {
        self.completion = completion
        timer = eventLoop.assumeIsolated().scheduleTask(in: timeout) { [self] in
            connection?.close()
            finish(false, "no answer within \(timeout.nanoseconds / 1_000_000) ms")
        }
    }

    func finish(_ succeeded: Bool, _ detail: String) {
        guard !done else { return }
        done = true
        timer?.cancel()
        completion(succeeded, detail)
    }

    func upstreamResponseHead(_ head: HTTPResponseHead) { status = head.status.code }
    func upstreamResponseBody(_ buffer: ByteBuffer) {}
    func upstreamResponseEnd() {
        // A webhook endpoint is not a model upstream: do not keep its connection in the pool.
        connection?.close()
        finish((200..<300).contains(status), "answered \(status)")
    }
    func upstreamFailed(_ error: any Error, receivedResponse: Bool, wasReused: Bool) { finish(false, "\(error)") }
}
