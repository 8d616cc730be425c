import Foundation
import TollgateCore

extension GatewayConfig.RouteConfig {
    private enum StrategyName: String, CaseIterable {
        case learned
        case cheapestCapable = "cheapest-capable"
        case fallback, loadbalance
    }

    init(name: String, _ node: ConfigNode, modelNames: Set<String>) throws(ConfigError) {
        guard !modelNames.contains(name) else { throw node.failure("a route cannot have the name of a model") }
        let fields = try node.mapping(allowing: [
            "strategy", "models", "strong", "weak", "strong_share", "balance", "weights", "calibrate_after",
        ])
        func model(_ node: ConfigNode) throws(ConfigError) -> String {
            let model = try node.nonEmptyText()
            guard modelNames.contains(model) else { throw node.failure("unknown model \(ConfigError.quoted(model))") }
            return model
        }
        let strategyName: StrategyName = try fields.required("strategy").choice()
        let reason = "to strategy \(strategyName.rawValue)"
        switch strategyName {
        case .learned:
            try fields.refuse(["models", "balance"], because: reason)
            strategy = .learned(strong: try model(fields.required("strong")),
                                weak: try model(fields.required("weak")),
                                strongShare: try fields.fraction("strong_share"),
                                weightsPath: try fields.string("weights"),
                                calibrateAfter: try fields.integer("calibrate_after", in: 0...1_000_000) ?? 200)
        case .cheapestCapable, .fallback, .loadbalance:
            try fields.refuse(["strong", "weak", "strong_share", "weights", "calibrate_after"], because: reason)
            let list = try fields.required("models")
            let models = try list.list().map { node throws(ConfigError) in try model(node) }
            guard !models.isEmpty else { throw list.failure("expected at least one model") }
            switch strategyName {
            case .cheapestCapable:
                try fields.refuse(["balance"], because: reason)
                strategy = .cheapestCapable(models: models)
            case .fallback:
                try fields.refuse(["balance"], because: reason)
                strategy = .fallback(models: models)
            case .loadbalance, .learned:
                strategy = .loadbalance(models: models, balance: try fields.choice("balance") ?? .weighted)
            }
        }
        self.name = name
    }
}

extension GatewayConfig.BudgetConfig {
    init(_ node: ConfigNode, modelNames: Set<String>) throws(ConfigError) {
        let fields = try node.mapping(allowing: [
            "scope", "name", "model", "limit_usd", "limit_tokens", "period", "mode", "on_exhaust",
            "soft_threshold", "timezone", "grace_usd", "salary_share", "annual_salary_usd",
        ])
        let limit: GatewayConfig.BudgetLimit
        switch (try fields.amount("limit_usd"), try fields.integer("limit_tokens")) {
        case (let usd?, nil):
            limit = .usd(usd)
        case (nil, let tokens?):
            try fields.refuse(["grace_usd", "salary_share", "annual_salary_usd"], because: "to a token budget")
            limit = .tokens(tokens)
        case (.some, .some):
            throw try fields.required("limit_tokens").failure("cannot be given with limit_usd")
        case (nil, nil):
            throw node.failure("missing required key \"limit_usd\" or \"limit_tokens\"")
        }
        let salary: GatewayConfig.Salary?
        switch (try fields.amount("annual_salary_usd"), try fields.fraction("salary_share")) {
        case (let annualSalary?, let share?):
            salary = GatewayConfig.Salary(annualSalary: annualSalary, share: share)
        case (.some, nil):
            throw try fields.required("annual_salary_usd").failure("needs salary_share too")
        case (nil, .some):
            throw try fields.required("salary_share").failure("needs annual_salary_usd too")
        case (nil, nil):
            salary = nil
        }
        var timezone = TimeZone(identifier: "UTC")!
        if let node = fields["timezone"] {
            let identifier = try node.text()
            guard let zone = TimeZone(identifier: identifier) else {
                throw node.failure("expected a time zone such as Europe/Paris, got \(ConfigError.quoted(identifier))")
            }
            timezone = zone
        }
        let model = try fields["model"].map { node throws(ConfigError) in
            let model = try node.nonEmptyText()
            guard modelNames.contains(model) else { throw node.failure("unknown model \(ConfigError.quoted(model))") }
            return model
        }
        self.init(scope: try fields.required("scope").choice(), name: try fields.required("name").nonEmptyText(),
                  model: model, limit: limit, period: try fields.required("period").choice(),
                  mode: try fields.choice("mode") ?? .strict, onExhaust: try fields.choice("on_exhaust") ?? .reject,
                  softThreshold: try fields.fraction("soft_threshold"), timezone: timezone,
                  grace: try fields.amount("grace_usd") ?? .zero, salary: salary)
    }
}

extension GatewayConfig.RateLimitConfig {
    init(_ node: ConfigNode) throws(ConfigError) {
        let fields = try node.mapping(allowing: ["scope", "name", "rpm", "tpm"])
        self.init(scope: try fields.required("scope").choice(), name: try fields.required("name").nonEmptyText(),
                  rpm: try fields.integer("rpm"), tpm: try fields.integer("tpm"))
        guard rpm != nil || tpm != nil else { throw node.failure("missing required key \"rpm\" or \"tpm\"") }
    }
}

extension GatewayConfig.WebhookConfig {
    init(_ node: ConfigNode) throws(ConfigError) {
        let fields = try node.mapping(allowing: ["url", "secret"])
        self.init(url: try fields.required("url").httpURL(), secret: try fields.required("secret").nonEmptyText())
    }
}
