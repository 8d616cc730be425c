import Foundation
import Testing
@testable import TollgateCore

/// Milliseconds of `minute` past `hour` on the `day`-th day (1-based) from Monday 23 November 2026, UTC.
private func at(day: Int, _ hour: Int, _ minute: Int = 0) -> Int64 {
    let monday = Int64(CalendarDate(year: 2026, month: 11, day: 23).dayNumber)
    return ((monday + Int64(day - 1)) * 24 * 60 + Int64(hour * 60 + minute)) * 60_000
}

private func usd(_ text: String) -> Nanodollars { Nanodollars(decimalString: text)! }

@Suite("Sessions: named by the client, else inferred from the key, the fingerprint and a 30-minute gap")
struct SessionTrackerTests {
    @Test("an inferred session goes on across a pause of exactly 30 minutes and ends at one of 31")
    func gap() {
        var tracker = SessionTracker()
        let times = [at(day: 1, 9), at(day: 1, 9, 10), at(day: 1, 9, 40), at(day: 1, 10, 11), at(day: 1, 10, 12)]
        let sessions = times.map { tracker.session(of: UsageEvent(at: $0, keyID: "k1", fingerprint: 1)) }
        #expect(sessions == [0, 0, 0, 1, 1])
        #expect(tracker.count == 2)
    }

    @Test("another system prompt or another key is another session, even at the same minute")
    func fingerprintAndKey() {
        var tracker = SessionTracker()
        let a = tracker.session(of: UsageEvent(at: at(day: 1, 9), keyID: "k1", fingerprint: 1))
        let b = tracker.session(of: UsageEvent(at: at(day: 1, 9), keyID: "k1", fingerprint: 2))
        let c = tracker.session(of: UsageEvent(at: at(day: 1, 9), keyID: "k2", fingerprint: 1))
        let a2 = tracker.session(of: UsageEvent(at: at(day: 1, 9, 5), keyID: "k1", fingerprint: 1))
        #expect([a, b, c, a2] as [Int] == [0, 1, 2, 0])
    }

    @Test("a named session spans any pause, is its key's own, and never joins an inferred one")
    func named() {
        var tracker = SessionTracker()
        let first = tracker.session(of: UsageEvent(at: at(day: 1, 9), keyID: "k1", sessionID: "s", fingerprint: 1))
        let inferred = tracker.session(of: UsageEvent(at: at(day: 1, 9, 1), keyID: "k1", fingerprint: 1))
        let later = tracker.session(of: UsageEvent(at: at(day: 1, 15), keyID: "k1", sessionID: "s", fingerprint: 1))
        let otherKey = tracker.session(of: UsageEvent(at: at(day: 1, 15), keyID: "k2", sessionID: "s"))
        #expect([first, inferred, later, otherKey] as [Int] == [0, 1, 0, 2])
    }
}

@Suite("Classification: agentic when a session runs a tool loop or an agent client made it")
struct SessionClassificationTests {
    @Test("the rule")
    func rule() {
        #expect(SessionKind.classify(toolLoop: false, agentClient: false) == .assisted)
        #expect(SessionKind.classify(toolLoop: true, agentClient: false) == .agentic)
        #expect(SessionKind.classify(toolLoop: false, agentClient: true) == .agentic)
        #expect(SessionKind.classify(toolLoop: true, agentClient: true) == .agentic)
    }

    private func kind(_ events: [UsageEvent]) -> SessionKind {
        var summary = SessionSummary()
        for event in events { summary.add(event) }
        return summary.kind
    }

    @Test("real clients: agents are agentic without tool results, SDKs and frameworks by what they do")
    func clients() {
        let start = at(day: 1, 9)
        func event(_ client: ClientKind, toolResults: Bool = false) -> UsageEvent {
            UsageEvent(at: start, keyID: "k", client: client, toolResults: toolResults)
        }
        // Claude Code's title and quota calls carry no tool result; its session is agentic all the same.
        #expect(kind([event(.claudeCLI)]) == .agentic)
        // aider edits files from plain-text answers: it never sends a tool result.
        #expect(kind([event(.aider), event(.aider)]) == .agentic)
        #expect(kind([event(.openAIAgents)]) == .agentic)
        // A question asked through an SDK, with or without tools offered, is assisted...
        #expect(kind([event(.openAISDK), event(.openAISDK)]) == .assisted)
        #expect(kind([event(.anthropicSDK)]) == .assisted)
        #expect(kind([event(.curl)]) == .assisted)
        // ...until a tool result goes back: a LangChain or Pydantic AI agent loop, or an SDK's own.
        #expect(kind([event(.langchain), event(.langchain, toolResults: true)]) == .agentic)
        #expect(kind([event(.pydanticAI), event(.pydanticAI, toolResults: true)]) == .agentic)
        #expect(kind([event(.openAISDK), event(.openAISDK, toolResults: true)]) == .agentic)
        // Pydantic AI's structured output is a tool the model calls once, with no result sent back.
        #expect(kind([event(.pydanticAI)]) == .assisted)
        #expect(kind([event(.llm)]) == .assisted)
    }
}

@Suite("Clients told from their headers")
struct ClientDetectionTests {
    @Test("each client from what it sends")
    func detection() {
        typealias H = ClientKind.Headers
        #expect(ClientKind.detect(H(userAgent: "claude-cli/2.0.62 (external, cli)", app: "cli", stainless: true, anthropicVersion: true)) == .claudeCLI)
        #expect(ClientKind.detect(H(userAgent: "Anthropic/JS 0.70.0", claudeCodeSession: true, stainless: true)) == .claudeCLI)
        #expect(ClientKind.detect(H(userAgent: "OpenAI/Python 2.8.1", title: "Aider", stainless: true)) == .aider)
        // Captured from the packages themselves.
        #expect(ClientKind.detect(H(userAgent: "Agents/Python 0.24.0", stainless: true)) == .openAIAgents)
        #expect(ClientKind.detect(H(userAgent: "pydantic-ai/2.68.0", stainless: true)) == .pydanticAI)
        #expect(ClientKind.detect(H(userAgent: "pydantic-ai/2.68.0", stainless: true, anthropicVersion: true)) == .pydanticAI)
        #expect(ClientKind.detect(H(userAgent: "langchain-anthropic/1.7.10", stainless: true, anthropicVersion: true)) == .langchain)
        #expect(ClientKind.detect(H(userAgent: "OpenAI/Python 3.60.0", stainless: true)) == .openAISDK)
        #expect(ClientKind.detect(H(userAgent: "Anthropic/Python 2.17.0", stainless: true, anthropicVersion: true)) == .anthropicSDK)
        #expect(ClientKind.detect(H(userAgent: "OpenAI/JS 5.23.0", stainless: true)) == .openAISDK)
        // llm and langchain-openai send only the OpenAI SDK's headers; x-tollgate-client names them.
        #expect(ClientKind.detect(H(userAgent: "OpenAI/Python 3.60.0", stainless: true, declared: "llm")) == .llm)
        #expect(ClientKind.detect(H(userAgent: "OpenAI/Python 3.60.0", stainless: true, declared: "LangChain")) == .langchain)
        #expect(ClientKind.detect(H(userAgent: "OpenAI/Python 3.60.0", stainless: true, declared: "nonsense")) == .openAISDK)
        #expect(ClientKind.detect(H(userAgent: "curl/8.14.1")) == .curl)
        #expect(ClientKind.detect(H(userAgent: "python-httpx/0.28.1")) == .other)
        #expect(ClientKind.detect(H()) == .other)
        #expect(ClientKind.detect(H(stainless: true, anthropicVersion: true)) == .anthropicSDK)
    }

    @Test("aider's system prompt names it when its headers are only the SDK's; a named client keeps its name")
    func systemPrompt() {
        let opening = Array("Act as an expert software developer.\nAlways use best practices when coding.".utf8)
        let signature = opening.withUnsafeBytes { ClientKind.systemPromptSignature($0) }
        #expect(signature == .aider)
        #expect(Array("You are a helpful assistant.".utf8).withUnsafeBytes { ClientKind.systemPromptSignature($0) } == nil)
        #expect(ClientKind.openAISDK.refined(bySystemPrompt: signature) == .aider)
        #expect(ClientKind.langchain.refined(bySystemPrompt: signature) == .langchain)
        #expect(ClientKind.openAISDK.refined(bySystemPrompt: nil) == .openAISDK)
    }

    @Test("a session id is trimmed, empty as none, and cut at 128 bytes on a character boundary")
    func sessionIDs() {
        #expect(UsageFacts.sessionID("  abc") == "abc")
        #expect(UsageFacts.sessionID("   ") == nil)
        let long = String(repeating: "é", count: 100)   // 200 bytes
        #expect(UsageFacts.sessionID(long)?.utf8.count == 128)
    }
}

@Suite("Fingerprints of prompts")
struct FingerprintTests {
    private func fingerprint(_ text: String) -> UInt64 {
        var f = Fingerprint()
        Array(text.utf8).withUnsafeBytes { f.add($0) }
        return f.value
    }

    @Test("equal prompts share one; a changed byte or length changes it; a long prompt's middle is not read")
    func values() {
        #expect(fingerprint("You are a helpful assistant.") == fingerprint("You are a helpful assistant."))
        #expect(fingerprint("You are a helpful assistant.") != fingerprint("You are a helpful assistant!"))
        #expect(fingerprint("abc") != fingerprint("abcd"))
        let head = String(repeating: "h", count: 1024), tail = String(repeating: "t", count: 1024)
        #expect(fingerprint(head + String(repeating: "a", count: 500) + tail) == fingerprint(head + String(repeating: "b", count: 500) + tail))
        #expect(fingerprint(head + String(repeating: "a", count: 500) + tail) != fingerprint(head + String(repeating: "a", count: 501) + tail))
    }
}

@Suite("The usage report, computed by hand")
struct UsageAggregatorTests {
    /// alice (platform) works in Claude Code: session s1 on day 1 (three requests, the last two tool loops), s2 on
    /// day 2. bob (platform) asks questions through the OpenAI SDK: 9:00 and 9:20 are one session, 11:00 another.
    /// carol (data) runs a LangChain agent on day 8 (the next ISO week): its second request sends a tool result.
    static let events: [UsageEvent] = {
        let cached = Usage(inputTokens: 100, cachedInputTokens: 900, outputTokens: 50)
        var events: [UsageEvent] = []
        for (minute, loop) in [(0, false), (5, true), (10, true)] {
            events.append(UsageEvent(at: at(day: 1, 9, minute), keyID: "ka", user: "alice", team: "platform", client: .claudeCLI,
                                     sessionID: "s1", fingerprint: 11, toolResults: loop, cost: usd("0.10"), usage: cached))
        }
        events.append(UsageEvent(at: at(day: 2, 10), keyID: "ka", user: "alice", team: "platform", client: .claudeCLI,
                                 sessionID: "s2", fingerprint: 11, cost: usd("0.20"), usage: Usage(inputTokens: 200, outputTokens: 100)))
        for (hour, minute) in [(9, 0), (9, 20), (11, 0)] {
            events.append(UsageEvent(at: at(day: 1, hour, minute), keyID: "kb", user: "bob", team: "platform", client: .openAISDK,
                                     fingerprint: 7, cost: usd("0.01"), usage: Usage(inputTokens: 10, outputTokens: 5)))
        }
        for (minute, loop) in [(0, false), (1, true)] {
            events.append(UsageEvent(at: at(day: 8, 9, minute), keyID: "kc", user: "carol", team: "data", client: .langchain,
                                     fingerprint: 9, toolResults: loop, cost: usd("0.05"), usage: Usage(inputTokens: 50, outputTokens: 10)))
        }
        return events.sorted { $0.at < $1.at }
    }()

    private func report() -> UsageAggregator {
        var aggregator = UsageAggregator()
        for event in Self.events { aggregator.add(event) }
        return aggregator
    }

    @Test("per user")
    func perUser() throws {
        let rows = report().rows(by: .user)
        #expect(rows.map(\.group) == ["alice", "carol", "bob"])   // the costliest first
        let alice = rows[0], carol = rows[1], bob = rows[2]
        #expect(alice.requests == 4 && alice.sessions == 2 && alice.agenticSessions == 2)
        #expect(alice.agenticRequestShare == 1 && alice.agenticCostShare == 1)
        #expect(alice.cost == usd("0.5") && alice.activeDays == 2 && alice.costPerActiveDay == usd("0.25"))
        // 3 × (100 + 900 + 50) + (200 + 100) = 3,450 tokens over 2 days; input 3 × 1,000 + 200, of which 2,700 cached.
        #expect(alice.tokens == 3450 && alice.tokensPerActiveDay == 1725)
        #expect(alice.inputTokens == 3200 && alice.cachedInputTokens == 2700 && alice.cachedInputShare == 0.84375)
        #expect(bob.requests == 3 && bob.sessions == 2 && bob.agenticSessions == 0 && bob.agenticRequestShare == 0)
        #expect(bob.cost == usd("0.03") && bob.activeDays == 1 && bob.costPerActiveDay == usd("0.03") && bob.tokensPerActiveDay == 45)
        #expect(carol.requests == 2 && carol.sessions == 1 && carol.agenticSessions == 1 && carol.agenticRequests == 2)
        #expect(carol.costPerActiveDay == usd("0.1") && carol.cachedInputShare == 0)
    }

    @Test("per team and per client")
    func perTeamAndClient() {
        let teams = report().rows(by: .team)
        #expect(teams.map(\.group) == ["platform", "data"])
        let platform = teams[0]
        // alice's 2 agentic sessions and bob's 2 assisted ones; 4 of 7 requests and $0.50 of $0.53 agentic.
        #expect(platform.requests == 7 && platform.sessions == 4 && platform.agenticSessions == 2 && platform.agenticRequests == 4)
        #expect(platform.agenticCost == usd("0.5") && platform.cost == usd("0.53"))
        #expect(platform.agenticCostShare == 50.0 / 53.0)
        // Days 1 and 2: $0.265 a day; 3,450 + 45 = 3,495 tokens, 1,747.5 a day, rounded half up.
        #expect(platform.activeDays == 2 && platform.costPerActiveDay == usd("0.265") && platform.tokensPerActiveDay == 1748)
        let clients = report().rows(by: .client)
        #expect(clients.map(\.group) == ["claude-cli", "langchain", "openai-sdk"])
        #expect(clients.map(\.sessions) == [2, 1, 2])
        #expect(clients.map(\.agenticSessions) == [2, 1, 0])
    }

    @Test("a session's kind is known from all its requests: a late tool result makes its early requests agentic")
    func lateToolLoop() {
        var aggregator = UsageAggregator(groupings: [.user])
        aggregator.add(UsageEvent(at: at(day: 1, 9), keyID: "k", user: "dan", fingerprint: 1, cost: usd("1")))
        aggregator.add(UsageEvent(at: at(day: 1, 9, 20), keyID: "k", user: "dan", fingerprint: 1, cost: usd("1")))
        aggregator.add(UsageEvent(at: at(day: 1, 9, 40), keyID: "k", user: "dan", fingerprint: 1, toolResults: true, cost: usd("2")))
        aggregator.add(UsageEvent(at: at(day: 1, 12), keyID: "k", user: "dan", fingerprint: 1, cost: usd("4")))
        #expect(aggregator.rows(by: .team).isEmpty)
        let dan = aggregator.rows(by: .user)[0]
        #expect(dan.sessions == 2 && dan.agenticSessions == 1 && dan.agenticRequests == 3)
        #expect(dan.agenticRequestShare == 0.75 && dan.agenticCostShare == 0.5)
    }

    @Test("cost and tokens per active day round half up")
    func rounding() {
        var row = UsageRow(group: "x")
        row.activeDays = 2
        row.cost = Nanodollars(3)
        row.tokens = 3
        #expect(row.costPerActiveDay == Nanodollars(2) && row.tokensPerActiveDay == 2)
        row.cost = Nanodollars(1)
        row.tokens = 1
        #expect(row.costPerActiveDay == Nanodollars(1) && row.tokensPerActiveDay == 1)
    }

    @Test("the weekly trend: per team and ISO week, the share of its people with an agentic session")
    func adoption() {
        let weeks = report().adoption()
        #expect(weeks.map { "\($0.team ?? "-") \($0.week)" } == ["platform 2026-W48", "data 2026-W49"])
        #expect(weeks[0].people == 2 && weeks[0].agenticPeople == 1 && weeks[0].agenticShare == 0.5)
        #expect(weeks[1].people == 1 && weeks[1].agenticPeople == 1)
    }

    @Test("ISO weeks belong to the year of their Thursday")
    func isoWeeks() {
        #expect(ISOWeek(containing: CalendarDate(year: 2026, month: 1, day: 1)).description == "2026-W01")
        #expect(ISOWeek(containing: CalendarDate(year: 2027, month: 1, day: 1)).description == "2026-W53")
        #expect(ISOWeek(containing: CalendarDate(year: 2024, month: 12, day: 30)).description == "2025-W01")
        #expect(ISOWeek(containing: CalendarDate(year: 2026, month: 11, day: 29)).monday == CalendarDate(year: 2026, month: 11, day: 23))
    }
}
