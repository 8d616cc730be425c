import NIOHTTP1
import TollgateCore
import TollgateProviders

extension Exchange {
    /// The request's client, session and shape for the ledger, from its headers and its body's scan. One walk
    /// over the headers that compares names only with the few it needs (no dictionary of them is built).
    static func usageFacts(_ headers: HTTPHeaders, _ fields: OpenAIRequestFields) -> UsageFacts {
        var client = ClientKind.Headers()
        var named: String?
        var claudeCode: String?
        for (name, value) in headers {
            let utf8 = name.utf8
            switch utf8.count {
            case 5 where isName(utf8, "x-app"): client.app = value
            case 7 where isName(utf8, "x-title"): client.title = value
            case 10 where isName(utf8, "user-agent"): client.userAgent = value
            case 17 where isName(utf8, "anthropic-version"): client.anthropicVersion = true
            case 17 where isName(utf8, "x-tollgate-client"): client.declared = value
            case 18 where isName(utf8, "x-tollgate-session"): named = value
            case 24 where isName(utf8, "x-claude-code-session-id"):
                claudeCode = value
                client.claudeCodeSession = true
            case 13... where isName(utf8.prefix(12), "x-stainless-"): client.stainless = true
            default: break
            }
        }
        return UsageFacts(
            client: ClientKind.detect(client).refined(bySystemPrompt: fields.systemPromptClient),
            sessionID: named.flatMap(UsageFacts.sessionID) ?? claudeCode.flatMap(UsageFacts.sessionID) ?? fields.sessionID,
            fingerprint: fields.fingerprint, toolsOffered: fields.toolsOffered, toolResults: fields.hasToolResults,
            messages: fields.messageCount)
    }

    /// `name` is lowercase ASCII.
    private static func isName(_ bytes: some Collection<UInt8>, _ name: StaticString) -> Bool {
        guard bytes.count == name.utf8CodeUnitCount else { return false }
        var index = 0
        for byte in bytes {
            let lower = byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte
            guard lower == name.utf8Start[index] else { return false }
            index += 1
        }
        return true
    }
}
