import Testing
import TollgateCore
@testable import TollgateProviders

private func scanAnthropic(_ body: String) throws(JSONScanner.Failure) -> AnthropicRequestFields {
    try withUTF8(body) { (bytes) throws(JSONScanner.Failure) in try AnthropicRequestFields.scan(bytes) }
}

@Suite("The scan reads sessions, tools and messages in its one pass")
struct UsageFactsScanTests {
    static func openAI(system: String = "You are terse.", user: String = "hi", extra: String = "") -> String {
        #"{"model":"gpt-4o","messages":[{"role":"system","content":"\#(system)"},{"role":"user","content":"\#(user)"}]\#(extra)}"#
    }

    @Test("OpenAI: tools and functions counted, messages counted, a tool message is a tool loop")
    func openAICounts() throws {
        let body = #"""
            {"model":"m","tools":[{"type":"function","function":{"name":"a"}},{"type":"function","function":{"name":"b"}}],
             "functions":[{"name":"c"}],
             "messages":[{"role":"user","content":"q"},{"role":"assistant","tool_calls":[]},{"role":"tool","tool_call_id":"1","content":"42"}]}
            """#
        let fields = try scanRequest(body)
        #expect(fields.toolsOffered == 3 && fields.hasTools)
        #expect(fields.messageCount == 3 && fields.hasToolResults)
        let empty = try scanRequest(#"{"model":"m","tools":[],"messages":[]}"#)
        #expect(empty.toolsOffered == 0 && !empty.hasTools && empty.messageCount == 0)
    }

    @Test("OpenAI: the fingerprint follows the system prompt and the end user, not the question")
    func openAIFingerprint() throws {
        let a = try scanRequest(Self.openAI(user: "first question")).fingerprint
        #expect(a != 0)
        #expect(try scanRequest(Self.openAI(user: "second question")).fingerprint == a)
        #expect(try scanRequest(Self.openAI(system: "You are verbose.")).fingerprint != a)
        #expect(try scanRequest(Self.openAI(extra: #","user":"u-1""#)).fingerprint != a)
        #expect(try scanRequest(Self.openAI(extra: #","user":"u-1""#)).fingerprint == scanRequest(Self.openAI(user: "x", extra: #","user":"u-1""#)).fingerprint)
        // Content before role: the same system prompt.
        let reversed = #"{"model":"gpt-4o","messages":[{"content":"You are terse.","role":"system"},{"role":"user","content":"q"}]}"#
        #expect(try scanRequest(reversed).fingerprint == a)
        // A developer message is a system prompt too.
        let developer = #"{"model":"gpt-4o","messages":[{"role":"developer","content":"You are terse."},{"role":"user","content":"q"}]}"#
        #expect(try scanRequest(developer).fingerprint == a)
    }

    @Test("OpenAI: metadata.session_id names the session; aider's system prompt names the client")
    func openAISessionAndSignature() throws {
        let named = try scanRequest(Self.openAI(extra: #","metadata":{"team":"x","session_id":"run-7"}"#))
        #expect(named.sessionID == "run-7")
        #expect(try scanRequest(Self.openAI(extra: #","metadata":null"#)).sessionID == nil)
        let aider = try scanRequest(Self.openAI(system: #"Act as an expert software developer.\nAlways use best practices when coding."#))
        #expect(aider.systemPromptClient == .aider)
        #expect(try scanRequest(Self.openAI()).systemPromptClient == nil)
    }

    @Test("Anthropic: Claude Code's metadata.user_id names its session; another user_id is an end user")
    func anthropicSession() throws {
        let claudeCode = #"""
            {"model":"claude-sonnet-4-5","max_tokens":32000,
             "system":[{"type":"text","text":"You are Claude Code, Anthropic's official CLI for Claude.","cache_control":{"type":"ephemeral"}}],
             "tools":[{"name":"Bash","input_schema":{}},{"name":"Read","input_schema":{}},{"name":"Edit","input_schema":{}}],
             "metadata":{"user_id":"user_2f1c0b_account__session_3b9e5c1a-77d2-4e0f-9a61-0c2b8f4d5e6a"},
             "messages":[{"role":"user","content":[{"type":"text","text":"fix it"}]},
                         {"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"Bash","input":{}}]},
                         {"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":"ok"}]}]}
            """#
        let fields = try scanAnthropic(claudeCode)
        #expect(fields.sessionID == "3b9e5c1a-77d2-4e0f-9a61-0c2b8f4d5e6a")
        #expect(fields.toolsOffered == 3 && fields.messageCount == 3 && fields.hasToolResults)
        let plain = #"{"model":"m","max_tokens":5,"system":"Be brief.","metadata":{"user_id":"customer-42"},"messages":[{"role":"user","content":"q"}]}"#
        let other = #"{"model":"m","max_tokens":5,"system":"Be brief.","metadata":{"user_id":"customer-43"},"messages":[{"role":"user","content":"q"}]}"#
        #expect(try scanAnthropic(plain).sessionID == nil)
        #expect(try scanAnthropic(plain).fingerprint != scanAnthropic(other).fingerprint)
        #expect(try scanAnthropic(plain).messageCount == 1 && scanAnthropic(plain).toolsOffered == 0)
    }

    @Test("Anthropic: the system prompt's opening names aider, as a string or a first text block")
    func anthropicSignature() throws {
        let text = #"{"model":"m","max_tokens":5,"system":"Act as an expert software developer.","messages":[]}"#
        let blocks = #"{"model":"m","max_tokens":5,"system":[{"type":"text","text":"Act as an expert architect engineer and provide direction"}],"messages":[]}"#
        #expect(try scanAnthropic(text).systemPromptClient == .aider)
        #expect(try scanAnthropic(blocks).systemPromptClient == .aider)
        #expect(try scanAnthropic(#"{"model":"m","max_tokens":5,"system":"Be brief.","messages":[]}"#).systemPromptClient == nil)
        #expect(try scanAnthropic(text).fingerprint != scanAnthropic(blocks).fingerprint)
    }
}
