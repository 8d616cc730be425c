import TollgateCore

/// Where an upstream lives: one keep-alive pool per target and event loop.
struct UpstreamTarget: Hashable, Sendable {
    var tls: Bool
    var host: String
    var port: Int
}

/// How the built-in simulated model behaves.
struct DemoSettings: Sendable, Equatable {
    var latencyMs: Int = 0
    var streamChunkMs: Int = 20
    var streamChunks: Int = 16
}

/// One model a client can ask for, and how to reach it.
struct Deployment: Sendable {
    enum Endpoint: Sendable {
        /// An OpenAI-compatible HTTP server; `basePath` is the base URL's path (`/v1`).
        case http(UpstreamTarget, basePath: String, hostHeader: String)
        case demo(DemoSettings)
    }

    var name: String
    var provider: String
    var upstreamModel: String
    var apiKey: String?
    var price: ModelPrice
    var endpoint: Endpoint
    var maxOutputTokens: Int?

    var isSimulated: Bool {
        if case .demo = endpoint { return true }
        return false
    }
}

/// The models this gateway serves, by the name clients ask for.
struct ModelRegistry: Sendable {
    let deployments: [String: Deployment]
    let names: [String]

    init(_ deployments: [Deployment]) {
        self.deployments = Dictionary(deployments.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        self.names = self.deployments.keys.sorted()
    }

    subscript(name: String) -> Deployment? { deployments[name] }
}
