import TollgateCore

extension GatewayConfig.ModelConfig {
    static let keys = [
        "name", "provider", "base_url", "api_key", "upstream_model", "price", "tier", "capabilities",
        "context_window", "max_output_tokens", "weight", "downgrade_to", "anthropic_version", "timeouts", "demo",
    ]

    init(_ node: ConfigNode) throws(ConfigError) {
        let fields = try node.mapping(allowing: Self.keys)
        let name = try fields.required("name").nonEmptyText()
        let provider: GatewayConfig.Provider = try fields.required("provider").choice()
        // A key the provider would ignore is refused, so that nobody believes it took effect.
        let ignored = switch provider {
        case .demo: ["base_url", "api_key", "anthropic_version", "timeouts"]
        case .anthropic: ["demo"]
        case .openai, .openaiCompatible: ["demo", "anthropic_version"]
        }
        try fields.refuse(ignored, because: "to provider \(provider.rawValue)")
        let baseURL = try fields["base_url"]?.httpURL()
        if provider == .openaiCompatible && baseURL == nil {
            throw node.failure("missing required key \"base_url\" (provider openai-compatible has no default)")
        }
        self.init(
            name: name,
            provider: provider,
            baseURL: baseURL,
            apiKey: try fields.string("api_key"),
            upstreamModel: try fields.string("upstream_model"),
            price: try fields["price"].map { node throws(ConfigError) in try Self.price(node) },
            tier: try fields.choice("tier"),
            capabilities: try fields["capabilities"].map { node throws(ConfigError) in
                Set(try node.list().map { node throws(ConfigError) in try node.choice() })
            },
            contextWindow: try fields.integer("context_window", in: 1...Int.max),
            maxOutputTokens: try fields.integer("max_output_tokens", in: 1...Int.max),
            weight: try fields.integer("weight") ?? 1,
            downgradeTo: try fields.string("downgrade_to"),
            anthropicVersion: try fields.string("anthropic_version"),
            timeouts: try fields["timeouts"].map { node throws(ConfigError) in try GatewayConfig.TimeoutOverrides(node) },
            demo: try fields["demo"].map { node throws(ConfigError) in try GatewayConfig.DemoOptions(node) }
        )
        place = GatewayConfig.ConfigPlace(file: node.source.file, line: node.node.mark?.line, field: node.path)
    }

    /// Both send the same requests to the same place: same provider, base URL, key and upstream model (and,
    /// for the demo, the same behaviour).
    func reachesSameUpstream(as other: Self) -> Bool {
        provider == other.provider && baseURL == other.baseURL && apiKey == other.apiKey
            && upstreamModel == other.upstreamModel && demo == other.demo
    }

    private static let rateKeys = [
        "input_per_mtok", "cached_input_per_mtok", "cache_write_per_mtok", "cache_write_1h_per_mtok", "output_per_mtok",
    ]

    /// `free`, or prices in USD per million tokens, read as decimals from the text.
    static func price(_ node: ConfigNode) throws(ConfigError) -> ModelPrice {
        if node.node.scalar != nil {
            let text = try node.text()
            guard text == "free" else {
                throw node.failure("expected \"free\" or a mapping of prices, got \(ConfigError.quoted(text))")
            }
            return .free
        }
        let fields = try node.mapping(allowing: rateKeys + ["long_context"])
        let longContext = try fields["long_context"].map { node throws(ConfigError) in
            let fields = try node.mapping(allowing: ["threshold_tokens"] + rateKeys)
            return ModelPrice.LongContextTier(thresholdTokens: try fields.required("threshold_tokens").integer(),
                                              rates: try rates(fields))
        }
        return ModelPrice(rates: try rates(fields), longContext: longContext)
    }

    private static func rates(_ fields: ConfigMapping) throws(ConfigError) -> ModelPrice.Rates {
        ModelPrice.Rates(input: try fields.required("input_per_mtok").amount(),
                         cachedInput: try fields.amount("cached_input_per_mtok"),
                         cacheWrite: try fields.amount("cache_write_per_mtok"),
                         cacheWrite1h: try fields.amount("cache_write_1h_per_mtok"),
                         output: try fields.required("output_per_mtok").amount())
    }
}

extension GatewayConfig.TimeoutOverrides {
    init(_ node: ConfigNode) throws(ConfigError) {
        let fields = try node.mapping(allowing: ["connect_ms", "first_byte_ms", "idle_ms"])
        self.init(connectMs: try fields.integer("connect_ms"), firstByteMs: try fields.integer("first_byte_ms"),
                  idleMs: try fields.integer("idle_ms"))
    }
}

extension GatewayConfig.DemoOptions {
    init(_ node: ConfigNode) throws(ConfigError) {
        let fields = try node.mapping(allowing: ["latency_ms", "stream_chunk_ms", "stream_chunks"])
        self.init()
        latencyMs = try fields.integer("latency_ms") ?? latencyMs
        streamChunkMs = try fields.integer("stream_chunk_ms") ?? streamChunkMs
        streamChunks = try fields.integer("stream_chunks", in: 1...Int.max) ?? streamChunks
    }
}
