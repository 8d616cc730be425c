/// The program that made a request, told from its headers (see `ClientKind.detect`).
public enum ClientKind: String, CaseIterable, Sendable, Hashable {
    case claudeCLI = "claude-cli"
    case aider
    case openAIAgents = "openai-agents"
    case langchain
    case pydanticAI = "pydantic-ai"
    case openAISDK = "openai-sdk"
    case anthropicSDK = "anthropic-sdk"
    case llm
    case curl
    case other

    /// Clients that act on their own: every session they make is agentic, tool results or not (aider edits
    /// files from plain-text answers and never sends a tool result). Frameworks (LangChain, Pydantic AI) and
    /// SDKs are judged by what their requests do.
    public var isAgent: Bool {
        switch self {
        case .claudeCLI, .aider, .openAIAgents: true
        default: false
        }
    }

    /// The few header values the detection reads, as the request carried them.
    public struct Headers: Sendable {
        public var userAgent: String?
        /// `x-app` (Claude Code sends `cli`).
        public var app: String?
        /// `x-title` (aider sends `Aider`, through LiteLLM's OpenRouter headers or its own `extra_headers`).
        public var title: String?
        /// `x-claude-code-session-id` was present.
        public var claudeCodeSession: Bool
        /// Any `x-stainless-*` header was present: one of the Stainless-generated SDKs (OpenAI's or Anthropic's).
        public var stainless: Bool
        /// `anthropic-version` was present.
        public var anthropicVersion: Bool
        /// `x-tollgate-client`: a client's own name for itself, one of the raw values (others are ignored).
        public var declared: String?

        public init(userAgent: String? = nil, app: String? = nil, title: String? = nil, claudeCodeSession: Bool = false,
                    stainless: Bool = false, anthropicVersion: Bool = false, declared: String? = nil) {
            self.userAgent = userAgent; self.app = app; self.title = title; self.claudeCodeSession = claudeCodeSession
            self.stainless = stainless; self.anthropicVersion = anthropicVersion; self.declared = declared
        }
    }

    /// What each client sends, as captured from the clients themselves (`OpenAI/Python 3.60.0` and the packages
    /// built on it, `Anthropic/Python 2.17.0`, a loopback server recording the headers):
    /// - Claude Code: `User-Agent: claude-cli/2.0.62 (external, cli)`, `x-app: cli`, `x-claude-code-session-id`.
    /// - OpenAI Agents SDK: `User-Agent: Agents/Python 0.24.0` over the OpenAI SDK's `x-stainless-*` headers.
    /// - Pydantic AI: `User-Agent: pydantic-ai/2.68.0`, through either SDK.
    /// - LangChain: `User-Agent: langchain-anthropic/1.7.10`; langchain-openai sends only the OpenAI SDK's headers.
    /// - llm: only the OpenAI SDK's headers.
    /// - aider: only the OpenAI SDK's headers (through LiteLLM), `x-title: Aider` towards OpenRouter-style
    ///   gateways; its system prompt tells it (`ClientKind.systemPromptSignature`).
    /// - The SDKs: `User-Agent: OpenAI/Python 3.60.0` (`OpenAI/JS …` from Node), `Anthropic/Python 2.17.0`.
    /// - curl: `User-Agent: curl/8.x`.
    /// A client that sends no header of its own is counted as the SDK it speaks through; `x-tollgate-client`
    /// names the client outright (`ClientKind.Headers.declared`). A client's sessions are classified by what they
    /// do all the same: only agents must be told, and they are.
    public static func detect(_ headers: Headers) -> ClientKind {
        if let declared = headers.declared, let kind = ClientKind(rawValue: declared.lowercased()) { return kind }
        let agent = headers.userAgent.map { Substring($0) } ?? ""
        if headers.claudeCodeSession || agent.hasPrefixIgnoringCase("claude-cli/") || agent.hasPrefixIgnoringCase("claude-code/")
            || headers.app.map({ $0.equalsIgnoringCase("cli") }) == true {
            return .claudeCLI
        }
        if agent.containsIgnoringCase("aider") || headers.title.map({ $0.equalsIgnoringCase("aider") }) == true { return .aider }
        if agent.hasPrefixIgnoringCase("agents/") || agent.containsIgnoringCase("openai-agents") { return .openAIAgents }
        if agent.containsIgnoringCase("pydantic-ai") { return .pydanticAI }
        if agent.containsIgnoringCase("langchain") { return .langchain }
        if agent.hasPrefixIgnoringCase("llm/") { return .llm }
        if agent.hasPrefixIgnoringCase("openai/") { return .openAISDK }
        if agent.hasPrefixIgnoringCase("anthropic/") { return .anthropicSDK }
        if agent.hasPrefixIgnoringCase("curl/") { return .curl }
        if headers.stainless { return headers.anthropicVersion ? .anthropicSDK : .openAISDK }
        return .other
    }

    /// A client whose headers say nothing of it but whose system prompt does: aider reaches an OpenAI-compatible
    /// base URL through LiteLLM and the OpenAI SDK with no header of its own, and every one of its coders opens
    /// its system prompt with one of these sentences. `bytes` are the first bytes of the system prompt as they
    /// stand in the JSON (escapes undecoded).
    public static func systemPromptSignature(_ bytes: UnsafeRawBufferPointer) -> ClientKind? {
        for signature in aiderOpenings where bytes.count >= signature.count {
            if bytes.prefix(signature.count).elementsEqual(signature) { return .aider }
        }
        return nil
    }

    /// aider's coders (editblock, wholefile, udiff, editor, architect, ask): how `main_system` of each opens.
    static let aiderOpenings: [[UInt8]] = [
        "Act as an expert software developer", "Act as an expert architect engineer", "Act as an expert code analyst",
    ].map { Array($0.utf8) }

    /// Upgrades a client told from headers with what the system prompt said: only an SDK's or an unknown
    /// client's requests can be an agent's in disguise.
    public func refined(bySystemPrompt signature: ClientKind?) -> ClientKind {
        guard let signature else { return self }
        switch self {
        case .openAISDK, .anthropicSDK, .other: return signature
        default: return self
        }
    }
}

extension StringProtocol {
    func hasPrefixIgnoringCase(_ prefix: String) -> Bool {
        var mine = utf8.makeIterator()
        for expected in prefix.utf8 {
            guard let byte = mine.next(), byte.asciiLowercased == expected else { return false }
        }
        return true
    }

    func equalsIgnoringCase(_ other: String) -> Bool {
        utf8.count == other.utf8.count && hasPrefixIgnoringCase(other)
    }

    /// `needle` must be lowercase ASCII. Walks the UTF-8 view in place: no copy of the header is made.
    func containsIgnoringCase(_ needle: String) -> Bool {
        let view = utf8
        var start = view.startIndex
        while start != view.endIndex {
            var index = start
            var matched = true
            for expected in needle.utf8 {
                guard index != view.endIndex, view[index].asciiLowercased == expected else { matched = false; break }
                view.formIndex(after: &index)
            }
            if matched { return true }
            view.formIndex(after: &start)
        }
        return false
    }
}

extension UInt8 {
    var asciiLowercased: UInt8 { self >= 0x41 && self <= 0x5A ? self | 0x20 : self }
}
