import Foundation
import TollgateCore
import Yams

extension GatewayConfig {
    /// Reads and validates a config file. `${NAME}` and `${NAME:-default}` in values resolve against
    /// `environment`.
    public static func load(
        path: String, environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(ConfigError) -> GatewayConfig {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ConfigError(file: path, line: nil, field: nil, problem: "cannot read: \(error.localizedDescription)")
        }
        return try parse(yaml: text, file: path, environment: environment)
    }

    /// Validates config text; `file` is the name refusals give.
    public static func parse(
        yaml text: String, file: String, environment: [String: String]
    ) throws(ConfigError) -> GatewayConfig {
        let source = ConfigSource(file: file, environment: environment)
        let shielded = ConfigSource.shieldingReferences(in: text)
        let root: Node?
        do {
            root = try Yams.compose(yaml: shielded)
        } catch let error as YamlError {
            throw source.refusal(of: error, in: shielded)
        } catch {
            throw ConfigError(file: file, line: nil, field: nil, problem: "invalid YAML: \(error)")
        }
        guard let root else { return GatewayConfig() }
        let document = ConfigNode(node: root, path: "", source: source)
        guard !document.isNull else { return GatewayConfig() }
        return try GatewayConfig(document)
    }

    init(_ document: ConfigNode) throws(ConfigError) {
        let sections = try document.mapping(allowing: [
            "server", "database", "ledger", "models", "routes", "budgets", "rate_limits", "webhooks", "forecasts", "metrics", "log", "economics", "tracing",
        ])
        self.init()
        if let node = sections["server"] { server = try ServerSettings(node) }
        if let node = sections["database"] { database = try DatabaseSettings(node) }
        if let node = sections["ledger"] { ledger = try LedgerSettings(node) }
        if let node = sections["forecasts"] { forecasts = try ForecastConfig(node) }
        if let node = sections["metrics"] { metrics = try MetricsConfig(node) }
        if let node = sections["economics"] {
            economicsFile = try node.mapping(allowing: ["file"]).required("file").nonEmptyText()
        }
        if let node = sections["tracing"] { tracing = try TracingConfig(node) }
        if let node = sections["log"] {
            let fields = try node.mapping(allowing: ["format", "level"])
            log = LogSettings(format: try fields.choice("format") ?? .text, level: try fields.choice("level"))
        }
        let modelNodes = try sections["models"]?.list() ?? []
        models = try modelNodes.map { node throws(ConfigError) in try ModelConfig(node) }
        let modelNames = Set(models.map(\.name))
        for (index, (node, model)) in zip(modelNodes, models).enumerated() {
            if let target = model.downgradeTo, !modelNames.contains(target) {
                throw try node.mapping(allowing: ModelConfig.keys).required("downgrade_to")
                    .failure("unknown model \(ConfigError.quoted(target))")
            }
            // Entries sharing a name are deployments of one model; the same upstream reached the same way twice
            // is a copy, not a second deployment.
            if let first = models[..<index].firstIndex(where: { $0.name == model.name && $0.reachesSameUpstream(as: model) }) {
                throw node.failure("the same deployment as models[\(first)] (same provider, base_url, api_key and upstream_model): give it its own base_url or api_key, or raise the first one's weight")
            }
        }
        routes = try (sections["routes"]?.entries() ?? []).map { name, node throws(ConfigError) in
            try RouteConfig(name: name, node, modelNames: modelNames)
        }
        budgets = try (sections["budgets"]?.list() ?? []).map { node throws(ConfigError) in
            try BudgetConfig(node, modelNames: modelNames)
        }
        rateLimits = try (sections["rate_limits"]?.list() ?? []).map { node throws(ConfigError) in
            try RateLimitConfig(node)
        }
        webhooks = try sections["webhooks"].map { node throws(ConfigError) in try WebhookConfig(node) }
    }
}

extension GatewayConfig.ServerSettings {
    init(_ node: ConfigNode) throws(ConfigError) {
        let fields = try node.mapping(allowing: ["host", "port", "max_body_bytes", "timeouts", "request_head_timeout_ms"])
        self.init()
        host = try fields["host"]?.nonEmptyText() ?? host
        port = try fields.integer("port", in: 0...65535) ?? port
        maxBodyBytes = try fields.integer("max_body_bytes", in: 1...Int.max) ?? maxBodyBytes
        requestHeadTimeoutMs = try fields.integer("request_head_timeout_ms", in: 100...3_600_000) ?? requestHeadTimeoutMs
        if let node = fields["timeouts"] {
            timeouts = try GatewayConfig.TimeoutOverrides(node).applied(to: timeouts)
        }
    }
}

extension GatewayConfig.DatabaseSettings {
    init(_ node: ConfigNode) throws(ConfigError) {
        let fields = try node.mapping(allowing: ["url", "on_loss", "lease_ttl_ms"])
        self.init()
        if let node = fields["url"] {
            let text = try node.text()
            guard text.hasPrefix("sqlite:") && text.count > "sqlite:".count
                    || text.hasPrefix("postgres://") || text.hasPrefix("postgresql://")
            else { throw node.failure("expected sqlite:PATH or postgres://…, got \(ConfigError.quoted(text))") }
            url = text
        }
        onLoss = try fields.choice("on_loss") ?? onLoss
        leaseTTLMs = try fields.integer("lease_ttl_ms", in: 1_000...3_600_000) ?? leaseTTLMs
    }
}

extension GatewayConfig.LedgerSettings {
    init(_ node: ConfigNode) throws(ConfigError) {
        let fields = try node.mapping(allowing: ["flush_ms"])
        self.init()
        // Under 10 ms the writer would wake so often that an idle gateway spends a fifth of a core on it.
        flushMs = try fields.integer("flush_ms", in: 10...60_000) ?? flushMs
    }
}

extension GatewayConfig.ForecastConfig {
    init(_ node: ConfigNode) throws(ConfigError) {
        let fields = try node.mapping(allowing: ["window_days", "check_ms"])
        self.init()
        windowDays = try fields.integer("window_days", in: 3...366) ?? windowDays
        checkMs = try fields.integer("check_ms", in: 100...86_400_000) ?? checkMs
    }
}

extension GatewayConfig.MetricsConfig {
    init(_ node: ConfigNode) throws(ConfigError) {
        let fields = try node.mapping(allowing: ["enabled", "public", "per_user"])
        self.init()
        enabled = try fields.boolean("enabled") ?? enabled
        isPublic = try fields.boolean("public") ?? isPublic
        perUser = try fields.boolean("per_user") ?? perUser
    }
}

extension GatewayConfig.TracingConfig {
    static let keys = ["endpoint", "protocol", "headers", "service_name", "sample_ratio", "flush_ms", "timeout_ms", "max_queue"]

    init(_ node: ConfigNode) throws(ConfigError) {
        let fields = try node.mapping(allowing: Self.keys)
        self.init(endpoint: try fields.required("endpoint").httpURL())
        wireProtocol = try fields.choice("protocol") ?? wireProtocol
        if let node = fields["headers"] {
            for (name, value) in try node.entries() {
                // The exporter writes them into each request's head as they are.
                guard !name.isEmpty, name.utf8.allSatisfy({ $0 > 32 && $0 < 127 && $0 != UInt8(ascii: ":") }) else {
                    throw value.failure("not a valid header name")
                }
                let text = try value.text()
                guard !text.utf8.contains(where: { $0 == 10 || $0 == 13 || $0 == 0 }) else {
                    throw value.failure("a header value cannot hold a line break")
                }
                headers[name] = text
            }
        }
        serviceName = try fields["service_name"]?.nonEmptyText() ?? serviceName
        sampleRatio = try fields.fraction("sample_ratio") ?? sampleRatio
        flushMs = try fields.integer("flush_ms", in: 10...60_000) ?? flushMs
        timeoutMs = try fields.integer("timeout_ms", in: 100...300_000) ?? timeoutMs
        maxQueue = try fields.integer("max_queue", in: 1...1_000_000) ?? maxQueue
    }
}

extension ConfigSource {
    /// Yams' own errors, given the same `file:line:` shape as every other refusal.
    func refusal(of error: YamlError, in text: String) -> ConfigError {
        switch error {
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _),
             .composer(_, let problem, let mark, _):
            return ConfigError(file: file, line: mark.line, field: nil, problem: "invalid YAML: \(problem)")
        case .duplicatedKeysInMapping(let duplicates, let context):
            return duplicateKey(duplicates.first ?? "", firstAt: context.mark, in: text)
        default:
            return ConfigError(file: file, line: nil, field: nil, problem: "invalid YAML: \(error)")
        }
    }

    /// Yams refuses a mapping with a key given twice before any tree exists, and tells only where the first
    /// one is. To name the field and the line of the second, the first is renamed and the text composed again.
    private func duplicateKey(_ key: String, firstAt mark: Mark, in text: String) -> ConfigError {
        let vague = ConfigError(file: file, line: mark.line, field: nil,
                                problem: "key \(ConfigError.quoted(key)) is given twice in one mapping")
        let marker = "tollgate-first-of-"
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard lines.indices.contains(mark.line - 1) else { return vague }
        var scalars = Array(lines[mark.line - 1].unicodeScalars)
        var column = mark.column - 1
        guard scalars.indices.contains(column) else { return vague }
        if scalars[column] == "\"" || scalars[column] == "'" { column += 1 }
        scalars.insert(contentsOf: marker.unicodeScalars, at: column)
        lines[mark.line - 1] = String(String.UnicodeScalarView(scalars))
        guard let root = try? Yams.compose(yaml: lines.joined(separator: "\n")),
              let (path, second) = Self.mapping(holding: marker + key, and: key, in: root, path: "")
        else { return vague }
        return ConfigError(file: file, line: second.mark?.line, field: path.isEmpty ? key : "\(path).\(key)",
                           problem: "given twice (first on line \(mark.line))")
    }

    /// The path of the mapping that has both keys, and the node of the second.
    private static func mapping(holding renamed: String, and key: String, in node: Node,
                                path: String) -> (path: String, key: Node)? {
        switch node {
        case .mapping(let mapping):
            let keys = Array(mapping.keys)
            if keys.contains(where: { $0.scalar?.string == renamed }),
               let second = keys.first(where: { $0.scalar?.string == key }) {
                return (path, second)
            }
            for (child, value) in mapping {
                let name = child.scalar?.string ?? "?"
                if let found = Self.mapping(holding: renamed, and: key, in: value,
                                            path: path.isEmpty ? name : "\(path).\(name)") {
                    return found
                }
            }
        case .sequence(let sequence):
            for (index, element) in sequence.enumerated() {
                if let found = Self.mapping(holding: renamed, and: key, in: element, path: "\(path)[\(index)]") {
                    return found
                }
            }
        case .scalar, .alias:
            break
        }
        return nil
    }
}
