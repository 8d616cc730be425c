/// One ledger row as the usage report reads it.
public struct UsageEvent: Sendable, Equatable {
    /// Milliseconds since 1970 (UTC).
    public var at: Int64
    public var keyID: String?
    public var user: String?
    public var team: String?
    public var client: ClientKind
    public var sessionID: String?
    public var fingerprint: UInt64
    public var toolResults: Bool
    public var cost: Nanodollars
    public var usage: Usage

    public init(at: Int64, keyID: String?, user: String? = nil, team: String? = nil, client: ClientKind = .other,
                sessionID: String? = nil, fingerprint: UInt64 = 0, toolResults: Bool = false, cost: Nanodollars = .zero,
                usage: Usage = Usage()) {
        self.at = at; self.keyID = keyID; self.user = user; self.team = team; self.client = client
        self.sessionID = sessionID; self.fingerprint = fingerprint; self.toolResults = toolResults
        self.cost = cost; self.usage = usage
    }
}

/// Puts requests into sessions, fed oldest first.
///
/// - A request that names its session (`UsageFacts.sessionID`) belongs to that session of its key, however
///   long the pauses in it.
/// - Any other request continues the latest session of its key with the same fingerprint (system prompt and
///   end user) if that session's previous request came at most 30 minutes before; otherwise it starts a new one.
///
/// Sessions are inferred when the ledger is read, not when it is written: a fleet's instances each see only
/// part of a session's requests, and only the shared ledger sees them all, in order. The request path keeps
/// nothing for it.
public struct SessionTracker: Sendable {
    public static let gapMilliseconds: Int64 = 30 * 60 * 1000

    private enum Key: Hashable {
        case named(key: String?, session: String)
        case inferred(key: String?, fingerprint: UInt64)
    }

    private var open: [Key: (index: Int, last: Int64)] = [:]
    /// Sessions seen so far; their indexes are `0..<count`.
    public private(set) var count = 0

    public init() {}

    /// The index of the session `event` belongs to.
    public mutating func session(of event: UsageEvent) -> Int {
        let key: Key = event.sessionID.map { .named(key: event.keyID, session: $0) }
            ?? .inferred(key: event.keyID, fingerprint: event.fingerprint)
        if let current = open[key] {
            let continues: Bool
            switch key {
            case .named: continues = true
            case .inferred: continues = event.at - current.last <= Self.gapMilliseconds
            }
            if continues {
                open[key] = (current.index, max(current.last, event.at))
                return current.index
            }
        }
        let index = count
        count += 1
        open[key] = (index, event.at)
        return index
    }
}

/// What kind of use a session was.
///
/// **Agentic** when it ran a tool loop (one of its requests sent tool results back to the model) or an agent
/// client made it (`ClientKind.isAgent`: Claude Code, aider, the OpenAI Agents SDK); **assisted** otherwise:
/// questions and answers, even when tools were offered but never run.
public enum SessionKind: String, Sendable, Hashable {
    case agentic, assisted

    public static func classify(toolLoop: Bool, agentClient: Bool) -> SessionKind {
        toolLoop || agentClient ? .agentic : .assisted
    }
}

/// What is known of one session so far.
public struct SessionSummary: Sendable, Equatable {
    public var toolLoop = false
    public var agentClient = false

    public init() {}

    public mutating func add(_ event: UsageEvent) {
        toolLoop = toolLoop || event.toolResults
        agentClient = agentClient || event.client.isAgent
    }

    public var kind: SessionKind { .classify(toolLoop: toolLoop, agentClient: agentClient) }
}
