import Foundation

/// One request as the ledger keeps it. The cost is the one charged at the time: a later price change
/// never reprices it.
public struct LedgerRecord: Hashable, Sendable {
    public var id: String
    public var createdAt: Date
    /// `chat.completions`, `embeddings`, `messages`, …
    public var endpoint: String
    public var keyID: String?
    public var userID: String?
    public var userName: String?
    public var teamID: String?
    public var teamName: String?
    public var orgID: String?
    public var requestedModel: String?
    public var model: String?
    public var provider: String?
    public var usage: Usage
    /// Set when the usage was counted by the gateway (a stream cut short) rather than reported upstream.
    public var usageEstimated: Bool
    public var cost: Nanodollars
    public var baselineCost: Nanodollars?
    public var status: Int
    public var latencyMs: Int
    public var ttftMs: Int?
    public var stream: Bool
    public var tags: [String]
    public var agentic: Bool
    /// Client, session and the request's shape, for the usage report.
    public var facts: UsageFacts
    public var route: String?
    public var routeReason: String?
    public var error: String?

    public init(id: String, createdAt: Date, endpoint: String, keyID: String? = nil, userID: String? = nil,
                userName: String? = nil, teamID: String? = nil, teamName: String? = nil, orgID: String? = nil,
                requestedModel: String? = nil, model: String? = nil, provider: String? = nil,
                usage: Usage = Usage(), usageEstimated: Bool = false, cost: Nanodollars = .zero,
                baselineCost: Nanodollars? = nil, status: Int, latencyMs: Int, ttftMs: Int? = nil,
                stream: Bool = false, tags: [String] = [], agentic: Bool = false, facts: UsageFacts = UsageFacts(), route: String? = nil,
                routeReason: String? = nil, error: String? = nil) {
        self.id = id; self.createdAt = createdAt; self.endpoint = endpoint; self.keyID = keyID
        self.userID = userID; self.userName = userName; self.teamID = teamID; self.teamName = teamName
        self.orgID = orgID; self.requestedModel = requestedModel; self.model = model; self.provider = provider
        self.usage = usage; self.usageEstimated = usageEstimated; self.cost = cost
        self.baselineCost = baselineCost; self.status = status; self.latencyMs = latencyMs
        self.ttftMs = ttftMs; self.stream = stream; self.tags = tags; self.agentic = agentic; self.facts = facts
        self.route = route; self.routeReason = routeReason; self.error = error
    }
}

/// The dimensions a spend report can be grouped by.
public enum SpendGrouping: String, Sendable, CaseIterable {
    case user, team, key, model, tag, day
}

public struct SpendRow: Hashable, Sendable {
    /// The group's value: a user or team name, key id, model, tag, or `YYYY-MM-DD`.
    public var group: String?
    public var requests: Int
    public var inputTokens: Int
    public var cachedInputTokens: Int
    public var outputTokens: Int
    public var cost: Nanodollars
    /// What the same requests would have cost on the model asked for (or a route's strong model): the
    /// cost itself for requests that were not rerouted.
    public var baselineCost: Nanodollars
    /// What routing and downgrades saved.
    public var savings: Nanodollars { baselineCost - cost }

    public init(group: String?, requests: Int, inputTokens: Int, cachedInputTokens: Int, outputTokens: Int,
                cost: Nanodollars, baselineCost: Nanodollars? = nil) {
        self.group = group; self.requests = requests; self.inputTokens = inputTokens
        self.cachedInputTokens = cachedInputTokens; self.outputTokens = outputTokens; self.cost = cost
        self.baselineCost = baselineCost ?? cost
    }
}
