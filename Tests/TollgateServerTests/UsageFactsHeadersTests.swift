import NIOHTTP1
import Testing
import TollgateCore
import TollgateProviders
@testable import TollgateServer

@Suite("The ledger's client and session from a request's headers")
struct UsageFactsHeadersTests {
    /// Claude Code's headers as it sends them (names in its own case).
    static let claudeCode: HTTPHeaders = [
        "Accept": "application/json", "Anthropic-Beta": "claude-code-20250219,interleaved-thinking-2025-05-14",
        "Anthropic-Version": "2023-06-01", "User-Agent": "claude-cli/2.0.62 (external, cli)", "X-App": "cli",
        "X-Claude-Code-Session-Id": "3b9e5c1a-77d2-4e0f-9a61-0c2b8f4d5e6a", "X-Stainless-Lang": "js",
        "X-Stainless-Package-Version": "0.70.0",
    ]

    @Test("Claude Code: its client and its session header")
    func claudeCode() {
        var fields = OpenAIRequestFields()
        fields.sessionID = "from-the-body"
        fields.toolsOffered = 12
        fields.messageCount = 9
        fields.hasToolResults = true
        let facts = Exchange.usageFacts(Self.claudeCode, fields)
        #expect(facts.client == .claudeCLI)
        #expect(facts.sessionID == "3b9e5c1a-77d2-4e0f-9a61-0c2b8f4d5e6a")
        #expect(facts.toolsOffered == 12 && facts.messages == 9 && facts.toolResults)
    }

    @Test("x-tollgate-session wins over the client's own session id, which wins over the body's")
    func precedence() {
        var fields = OpenAIRequestFields()
        fields.sessionID = "from-the-body"
        var headers = Self.claudeCode
        headers.add(name: "x-tollgate-session", value: "ticket-1234")
        #expect(Exchange.usageFacts(headers, fields).sessionID == "ticket-1234")
        let sdk: HTTPHeaders = ["user-agent": "OpenAI/Python 3.60.0", "x-stainless-lang": "python"]
        #expect(Exchange.usageFacts(sdk, fields).sessionID == "from-the-body")
        #expect(Exchange.usageFacts(sdk, OpenAIRequestFields()).sessionID == nil)
    }

    @Test("the SDKs and the agents built on them, from headers captured from each; aider from its system prompt")
    func clients() {
        let stainless = "x-stainless-package-version"
        func client(_ agent: String, _ extra: [(String, String)] = [], systemPrompt: ClientKind? = nil) -> ClientKind {
            var headers: HTTPHeaders = ["user-agent": agent, stainless: "3.60.0"]
            for (name, value) in extra { headers.add(name: name, value: value) }
            var fields = OpenAIRequestFields()
            fields.systemPromptClient = systemPrompt
            return Exchange.usageFacts(headers, fields).client
        }
        #expect(client("Agents/Python 0.24.0") == .openAIAgents)
        #expect(client("pydantic-ai/2.68.0") == .pydanticAI)
        #expect(client("OpenAI/Python 3.60.0") == .openAISDK)
        #expect(client("Anthropic/Python 2.17.0", [("anthropic-version", "2023-06-01")]) == .anthropicSDK)
        #expect(client("OpenAI/Python 3.60.0", systemPrompt: .aider) == .aider)
        #expect(client("OpenAI/Python 3.60.0", [("X-Tollgate-Client", "llm")]) == .llm)
        #expect(Exchange.usageFacts(["User-Agent": "curl/8.14.1"], OpenAIRequestFields()).client == .curl)
        #expect(Exchange.usageFacts([:], OpenAIRequestFields()).client == .other)
    }
}
