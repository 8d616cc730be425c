/// An Anthropic Messages client served by an OpenAI-compatible model: its request rewritten as a chat
/// request, and the model's `chat.completion` rewritten as a `message`.
public enum AnthropicClientToOpenAIModel {
    /// Which member carries the output limit upstream: OpenAI's reasoning models take only
    /// `max_completion_tokens`; some OpenAI-compatible servers know only `max_tokens`.
    public enum OutputLimitField: String, Sendable {
        case maxTokens = "max_tokens"
        case maxCompletionTokens = "max_completion_tokens"
    }

    /// The OpenAI chat request for an Anthropic Messages request. A streamed request asks for usage
    /// (`stream_options.include_usage`), which the stream translator turns into `message_delta` usage.
    public static func upstreamRequest(_ body: [UInt8], model: String,
                                       outputLimit: OutputLimitField = .maxCompletionTokens) throws(TranslationError) -> [UInt8] {
        let request = try JSON.parseObject(body)
        var out: [String: JSON] = ["model": .string(model)]
        var system: [JSON] = []
        var messages: [JSON] = []
        for (key, value) in request.sorted(by: { $0.key < $1.key }) where value != .null {
            switch key {
            case "model": continue
            case "system": system = [["role": "system", "content": .string(try systemText(value))]]
            case "messages": messages = try translateMessages(value)
            case "max_tokens":
                guard let limit = value.int, limit > 0 else { throw .invalid(field: key, reason: "expected a positive integer") }
                out[outputLimit.rawValue] = value
            case "stop_sequences":
                guard let list = value.array, list.allSatisfy({ $0.string != nil }) else {
                    throw .invalid(field: key, reason: "expected an array of strings")
                }
                if !list.isEmpty { out["stop"] = value }
            case "temperature", "top_p":
                guard value.number != nil else { throw .invalid(field: key, reason: "expected a number") }
                out[key] = value
            case "stream":
                guard let flag = value.bool else { throw .invalid(field: key, reason: "expected a boolean") }
                out[key] = value
                if flag { out["stream_options"] = ["include_usage": true] }
            case "metadata":
                guard let members = value.object else { throw .invalid(field: key, reason: "expected an object") }
                for name in members.keys.sorted() where name != "user_id" && members[name] != .null {
                    throw .unsupported(field: "metadata.\(name)", reason: "the OpenAI chat API has no equivalent")
                }
                if let user = value["user_id"] { out["user"] = user }
            case "tools":
                let tools = try translateTools(value)
                if !tools.isEmpty { out["tools"] = .array(tools) }
            case "tool_choice":
                let (choice, parallel) = try translateToolChoice(value)
                out["tool_choice"] = choice
                if let parallel { out["parallel_tool_calls"] = .bool(parallel) }
            case "thinking" where value["type"] == "disabled":
                continue
            default:
                throw .unsupported(field: key, reason: "the OpenAI chat API has no equivalent")
            }
        }
        guard !messages.isEmpty else { throw .invalid(field: "messages", reason: "at least one message is required") }
        out["messages"] = .array(system + messages)
        return JSON.object(out).serialized
    }

    /// The Anthropic `message` for an OpenAI `chat.completion`.
    public static func clientResponse(_ body: [UInt8]) throws(TranslationError) -> [UInt8] {
        let completion = JSON.object(try JSON.parseObject(body))
        guard let choice = completion["choices"]?.array?.first else {
            throw .invalid(field: "choices", reason: "the upstream returned no choice")
        }
        let reply = choice["message"]
        var content: [JSON] = []
        if let text = reply?["content"]?.string, !text.isEmpty { content.append(["type": "text", "text": .string(text)]) }
        for call in reply?["tool_calls"]?.array ?? [] {
            content.append(toolUse(id: call["id"]?.string ?? "", name: call["function"]?["name"]?.string ?? "",
                                   arguments: call["function"]?["arguments"]?.string ?? ""))
        }
        let out: [String: JSON] = [
            "id": completion["id"] ?? "", "type": "message", "role": "assistant", "model": completion["model"] ?? "",
            "content": .array(content), "stop_reason": stopReason(choice["finish_reason"]?.string),
            "stop_sequence": .null, "usage": anthropicUsage(completion["usage"]),
        ]
        return JSON.object(out).serialized
    }

    // MARK: Shared with the stream translator

    /// Anthropic's `stop_reason` for OpenAI's `finish_reason`. OpenAI does not say which stop sequence
    /// matched, so a stop sequence reads as `end_turn`.
    static func stopReason(_ finishReason: String?) -> JSON {
        switch finishReason {
        case nil: .null
        case "length": "max_tokens"
        case "tool_calls", "function_call": "tool_use"
        case "content_filter": "refusal"
        default: "end_turn"
        }
    }

    /// Anthropic's usage for OpenAI's: Anthropic's `input_tokens` excludes the cached tokens that OpenAI's
    /// `prompt_tokens` includes.
    static func anthropicUsage(_ usage: JSON?) -> JSON {
        let prompt = usage?["prompt_tokens"]?.int ?? 0
        let cached = min(usage?["prompt_tokens_details"]?["cached_tokens"]?.int ?? 0, prompt)
        return ["input_tokens": .int(prompt - cached), "cache_read_input_tokens": .int(cached),
                "cache_creation_input_tokens": 0, "output_tokens": .int(usage?["completion_tokens"]?.int ?? 0)]
    }

    /// A `tool_use` block; arguments that are not a JSON object (a model's malformed output) are kept as
    /// the string they were, under `input`, rather than lost.
    static func toolUse(id: String, name: String, arguments: String) -> JSON {
        let input: JSON = arguments.isEmpty ? [:] : ((try? JSON.parse(Array(arguments.utf8))) ?? .string(arguments))
        return ["type": "tool_use", "id": .string(id), "name": .string(name), "input": input]
    }

    // MARK: Request parts

    private static func systemText(_ value: JSON) throws(TranslationError) -> String {
        if let text = value.string { return text }
        guard let blocks = value.array else { throw .invalid(field: "system", reason: "expected a string or text blocks") }
        var texts: [String] = []
        for (index, block) in blocks.enumerated() {
            // `cache_control` is a caching hint; OpenAI-compatible servers cache prefixes on their own.
            guard block["type"] == "text", let text = block["text"]?.string else {
                throw .unsupported(field: "system[\(index)].type", reason: "only text system blocks can be translated")
            }
            texts.append(text)
        }
        return texts.joined(separator: "\n\n")
    }

    private static func translateMessages(_ value: JSON) throws(TranslationError) -> [JSON] {
        guard let list = value.array else { throw .invalid(field: "messages", reason: "expected an array") }
        var out: [JSON] = []
        for (index, message) in list.enumerated() {
            let path = "messages[\(index)]"
            guard let role = message["role"]?.string, role == "user" || role == "assistant" else {
                throw .invalid(field: "\(path).role", reason: "expected `user` or `assistant`")
            }
            guard case .array(let blocks)? = message["content"] else {
                guard let text = message["content"]?.string else { throw .invalid(field: "\(path).content", reason: "missing") }
                out.append(["role": .string(role), "content": .string(text)])
                continue
            }
            var parts: [JSON] = []
            var toolCalls: [JSON] = []
            for (blockIndex, block) in blocks.enumerated() {
                let blockPath = "\(path).content[\(blockIndex)]"
                switch (role, block["type"]?.string) {
                case (_, "text"):
                    parts.append(["type": "text", "text": block["text"] ?? ""])
                case ("user", "image"):
                    parts.append(["type": "image_url", "image_url": ["url": .string(try imageURL(block["source"], path: "\(blockPath).source"))]])
                case ("user", "tool_result"):
                    // OpenAI's tool messages follow the assistant's calls, before any user text.
                    out.append(try toolMessage(block, path: blockPath))
                case ("assistant", "tool_use"):
                    guard let id = block["id"]?.string, let name = block["name"]?.string else {
                        throw .invalid(field: blockPath, reason: "a tool_use block needs `id` and `name`")
                    }
                    toolCalls.append(OpenAIClientToAnthropicModel.toolCall(id: .string(id), name: .string(name), input: block["input"]))
                default:
                    throw .unsupported(field: "\(blockPath).type",
                                       reason: "a `\(block["type"]?.string ?? "?")` block in a \(role) message has no OpenAI equivalent")
                }
            }
            if role == "assistant" {
                guard !parts.isEmpty || !toolCalls.isEmpty else { continue }
                let text = parts.compactMap { $0["text"]?.string }.joined()
                var reply: [String: JSON] = ["role": "assistant", "content": text.isEmpty ? .null : .string(text)]
                if !toolCalls.isEmpty { reply["tool_calls"] = .array(toolCalls) }
                out.append(.object(reply))
            } else if !parts.isEmpty {
                out.append(["role": "user", "content": .array(parts)])
            }
        }
        return out
    }

    private static func imageURL(_ source: JSON?, path: String) throws(TranslationError) -> String {
        switch source?["type"]?.string {
        case "base64":
            guard let mediaType = source?["media_type"]?.string, let data = source?["data"]?.string else {
                throw .invalid(field: path, reason: "a base64 source needs `media_type` and `data`")
            }
            return "data:\(mediaType);base64,\(data)"
        case "url":
            guard let url = source?["url"]?.string else { throw .invalid(field: "\(path).url", reason: "missing") }
            return url
        default:
            throw .unsupported(field: "\(path).type", reason: "only base64 and url image sources can be translated")
        }
    }

    private static func toolMessage(_ block: JSON, path: String) throws(TranslationError) -> JSON {
        guard let id = block["tool_use_id"]?.string else { throw .invalid(field: "\(path).tool_use_id", reason: "missing") }
        var text: String
        switch block["content"] {
        case nil: text = ""
        case .string(let value)?: text = value
        case .array(let parts)?:
            var texts: [String] = []
            for (index, part) in parts.enumerated() {
                guard part["type"] == "text", let value = part["text"]?.string else {
                    throw .unsupported(field: "\(path).content[\(index)].type", reason: "OpenAI tool results hold text only")
                }
                texts.append(value)
            }
            text = texts.joined(separator: "\n")
        default: throw .invalid(field: "\(path).content", reason: "expected a string or text blocks")
        }
        // OpenAI tool messages have no error flag: the model learns of the failure from the text.
        if block["is_error"] == true { text = "Error: " + text }
        return ["role": "tool", "tool_call_id": .string(id), "content": .string(text)]
    }

    private static func translateTools(_ value: JSON) throws(TranslationError) -> [JSON] {
        guard let tools = value.array else { throw .invalid(field: "tools", reason: "expected an array") }
        var out: [JSON] = []
        for (index, tool) in tools.enumerated() {
            let path = "tools[\(index)]"
            // Server tools (web search, code execution, computer use…) run at Anthropic; only client tools translate.
            guard tool["type"] == nil || tool["type"] == "custom" else {
                throw .unsupported(field: "\(path).type", reason: "server tool `\(tool["type"]?.string ?? "?")` runs only at Anthropic")
            }
            guard let name = tool["name"]?.string else { throw .invalid(field: "\(path).name", reason: "missing") }
            var function: [String: JSON] = ["name": .string(name), "parameters": tool["input_schema"] ?? ["type": "object", "properties": [:]]]
            if let description = tool["description"] { function["description"] = description }
            out.append(["type": "function", "function": .object(function)])
        }
        return out
    }

    private static func translateToolChoice(_ value: JSON) throws(TranslationError) -> (choice: JSON, parallel: Bool?) {
        let parallel: Bool? = value["disable_parallel_tool_use"] == true ? false : nil
        switch value["type"]?.string {
        case "auto": return ("auto", parallel)
        case "any": return ("required", parallel)
        case "none": return ("none", parallel)
        case "tool":
            guard let name = value["name"]?.string else { throw .invalid(field: "tool_choice.name", reason: "missing") }
            return (["type": "function", "function": ["name": .string(name)]], parallel)
        default: throw .unsupported(field: "tool_choice.type", reason: "expected auto, any, none or tool")
        }
    }
}
