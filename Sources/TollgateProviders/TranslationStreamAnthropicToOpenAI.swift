import TollgateCore

/// Rewrites an Anthropic Messages event stream as the OpenAI `chat.completion.chunk` stream an OpenAI client
/// expects, event by event, from byte chunks cut anywhere.
///
/// Events in order: `message_start` → the role chunk; `content_block_start` of a `tool_use` → a tool call's
/// id and name; `content_block_delta` → a text or arguments chunk; `message_delta` → the finish chunk;
/// `message_stop` → the usage chunk (when the client asked for it) and `[DONE]`. `ping`,
/// `content_block_stop` and thinking deltas write nothing; `error` writes an OpenAI error event.
public struct AnthropicToOpenAIStream: Sendable {
    private var splitter = SSEEventSplitter()
    private var state: State

    /// `includeUsage` is the client's `stream_options.include_usage`; `created` the Unix time to report.
    public init(includeUsage: Bool, created: Int) {
        state = State(includeUsage: includeUsage, created: created)
    }

    /// The usage reported so far (the upstream's, in the gateway's convention); nil before `message_start`.
    public var usage: Usage? { state.counts?.usage }

    /// The OpenAI stream bytes that the events completed by `chunk` translate to.
    public mutating func feed(_ chunk: UnsafeRawBufferPointer) -> [UInt8] {
        var out: [UInt8] = []
        splitter.feed(chunk) { state.translate($0, into: &out) }
        return out
    }

    /// At the end of the upstream stream: an event left without its closing blank line.
    public mutating func finish() -> [UInt8] {
        var out: [UInt8] = []
        splitter.finish { state.translate($0, into: &out) }
        return out
    }

    private struct State: Sendable {
        let includeUsage: Bool
        let created: Int
        var id: JSON = ""
        var model: JSON = ""
        var counts: AnthropicUsage.Counts?
        /// Anthropic content-block index → OpenAI tool-call index, for `tool_use` blocks.
        var toolIndices: [Int: Int] = [:]

        init(includeUsage: Bool, created: Int) {
            self.includeUsage = includeUsage
            self.created = created
        }

        mutating func translate(_ event: UnsafeRawBufferPointer, into out: inout [UInt8]) {
            guard let data = SSEFormat.data(of: event), let payload = try? JSON.parse(Array(data)) else { return }
            switch payload["type"]?.string {
            case "message_start":
                id = payload["message"]?["id"] ?? ""
                model = payload["message"]?["model"] ?? ""
                counts = Self.counts(payload["message"]?["usage"])
                out += chunk(delta: ["role": "assistant", "content": ""])
            case "content_block_start":
                guard let index = payload["index"]?.int, let block = payload["content_block"] else { return }
                if block["type"] == "tool_use" {
                    let toolIndex = toolIndices.count
                    toolIndices[index] = toolIndex
                    out += chunk(delta: ["tool_calls": [["index": .int(toolIndex), "id": block["id"] ?? "", "type": "function",
                                                          "function": ["name": block["name"] ?? "", "arguments": ""]]]])
                } else if block["type"] == "text", let text = block["text"]?.string, !text.isEmpty {
                    out += chunk(delta: ["content": .string(text)])
                }
            case "content_block_delta":
                let delta = payload["delta"]
                switch delta?["type"]?.string {
                case "text_delta":
                    out += chunk(delta: ["content": delta?["text"] ?? ""])
                case "input_json_delta":
                    guard let index = payload["index"]?.int, let toolIndex = toolIndices[index] else { return }
                    out += chunk(delta: ["tool_calls": [["index": .int(toolIndex), "function": ["arguments": delta?["partial_json"] ?? ""]]]])
                default:
                    return
                }
            case "message_delta":
                if let later = Self.counts(payload["usage"]) {
                    var merged = counts ?? AnthropicUsage.Counts()
                    merged.merge(later)
                    counts = merged
                }
                out += chunk(delta: [:], finishReason: OpenAIClientToAnthropicModel.finishReason(payload["delta"]?["stop_reason"]?.string))
            case "message_stop":
                if includeUsage {
                    var usageChunk = header
                    usageChunk["choices"] = []
                    usageChunk["usage"] = OpenAIClientToAnthropicModel.openAIUsage(usageJSON)
                    out += SSEFormat.openAIEvent(.object(usageChunk))
                }
                out += SSEFormat.openAIDone
            case "error":
                let error = payload["error"]
                out += SSEFormat.openAIEvent(["error": ["message": error?["message"] ?? "upstream error",
                                                        "type": error?["type"] ?? "api_error", "code": .null, "param": .null]])
            default:
                return
            }
        }

        private var header: [String: JSON] {
            var header: [String: JSON] = ["id": id, "object": "chat.completion.chunk", "created": .int(created), "model": model]
            if includeUsage { header["usage"] = .null }
            return header
        }

        private func chunk(delta: [String: JSON], finishReason: JSON = .null) -> [UInt8] {
            var object = header
            object["choices"] = [["index": 0, "delta": .object(delta), "logprobs": .null, "finish_reason": finishReason]]
            return SSEFormat.openAIEvent(.object(object))
        }

        private var usageJSON: JSON {
            let counts = counts ?? AnthropicUsage.Counts()
            return ["input_tokens": .int(counts.input ?? 0), "cache_read_input_tokens": .int(counts.cacheRead ?? 0),
                    "cache_creation_input_tokens": .int(counts.cacheWrite ?? 0), "output_tokens": .int(counts.output ?? 0)]
        }

        private static func counts(_ usage: JSON?) -> AnthropicUsage.Counts? {
            guard let usage else { return nil }
            return AnthropicUsage.Counts(input: usage["input_tokens"]?.int, cacheRead: usage["cache_read_input_tokens"]?.int,
                                         cacheWrite: usage["cache_creation_input_tokens"]?.int, output: usage["output_tokens"]?.int)
        }
    }
}
