/// An OpenAI chat-completions client served by an Anthropic model: its request rewritten as a Messages
/// request, and the model's `message` rewritten as a `chat.completion`.
public enum OpenAIClientToAnthropicModel {
    /// The Anthropic Messages request for an OpenAI chat request. `defaultMaxTokens` is used when the client
    /// sent no output limit (Anthropic requires one). Every member is either translated or refused by name.
    public static func upstreamRequest(_ body: [UInt8], model: String, defaultMaxTokens: Int) throws(TranslationError) -> [UInt8] {
        let request = try JSON.parseObject(body)
        var out: [String: JSON] = ["model": .string(model)]
        var maxTokens: Int?
        var maxCompletionTokens: Int?
        var parallelToolCalls = true
        // Sorted, so that when several members are refused the one named does not depend on hashing.
        for (key, value) in request.sorted(by: { $0.key < $1.key }) where value != .null {
            switch key {
            case "model", "stream_options":
                // `stream_options` shapes the stream the gateway itself writes (`AnthropicToOpenAIStream`).
                continue
            case "messages":
                let (system, messages) = try translateMessages(value)
                if !system.isEmpty { out["system"] = .array(system) }
                out["messages"] = .array(messages)
            case "max_tokens": maxTokens = try positiveInteger(value, key)
            case "max_completion_tokens": maxCompletionTokens = try positiveInteger(value, key)
            case "stop":
                let sequences: [JSON]
                if case .string = value { sequences = [value] } else if let list = value.array, list.allSatisfy({ $0.string != nil }) {
                    sequences = list
                } else {
                    throw .invalid(field: key, reason: "expected a string or an array of strings")
                }
                if !sequences.isEmpty { out["stop_sequences"] = .array(sequences) }
            case "temperature":
                guard let number = value.number else { throw .invalid(field: key, reason: "expected a number") }
                guard number <= 1 else { throw .unsupported(field: key, reason: "Anthropic accepts 0 to 1, not \(number)") }
                out[key] = value
            case "top_p":
                guard value.number != nil else { throw .invalid(field: key, reason: "expected a number") }
                out[key] = value
            case "stream":
                guard value.bool != nil else { throw .invalid(field: key, reason: "expected a boolean") }
                out[key] = value
            case "user":
                guard value.string != nil else { throw .invalid(field: key, reason: "expected a string") }
                out["metadata"] = ["user_id": value]
            case "tools":
                let tools = try translateTools(value)
                if !tools.isEmpty { out["tools"] = .array(tools) }
            case "tool_choice": out["tool_choice"] = try translateToolChoice(value)
            case "parallel_tool_calls":
                guard let flag = value.bool else { throw .invalid(field: key, reason: "expected a boolean") }
                parallelToolCalls = flag
            case "n" where value == .int(1),
                 "logprobs" where value == .bool(false),
                 "store" where value == .bool(false),
                 "logit_bias" where value.object?.isEmpty == true,
                 "presence_penalty" where value.number == 0,
                 "frequency_penalty" where value.number == 0,
                 "modalities" where value == ["text"],
                 "response_format" where value["type"] == "text":
                // The value every Anthropic response already has.
                continue
            default:
                throw .unsupported(field: key, reason: "the Anthropic Messages API has no equivalent")
            }
        }
        out["max_tokens"] = .int(maxCompletionTokens ?? maxTokens ?? defaultMaxTokens)
        if !parallelToolCalls, out["tools"] != nil {
            var choice = out["tool_choice"]?.object ?? ["type": "auto"]
            if choice["type"] != "none" { choice["disable_parallel_tool_use"] = true }
            out["tool_choice"] = .object(choice)
        }
        return JSON.object(out).serialized
    }

    /// The `chat.completion` for an Anthropic `message`. `created` is the Unix time to report (Anthropic
    /// responses carry none).
    public static func clientResponse(_ body: [UInt8], created: Int) throws(TranslationError) -> [UInt8] {
        let message = JSON.object(try JSON.parseObject(body))
        var text = ""
        var toolCalls: [JSON] = []
        for block in message["content"]?.array ?? [] {
            switch block["type"]?.string {
            case "text": text += block["text"]?.string ?? ""
            case "tool_use": toolCalls.append(toolCall(id: block["id"], name: block["name"], input: block["input"]))
            // Thinking is billed through `output_tokens`; chat completions have no member to show it in.
            default: continue
            }
        }
        var reply: [String: JSON] = ["role": "assistant", "content": text.isEmpty ? .null : .string(text), "refusal": .null]
        if !toolCalls.isEmpty { reply["tool_calls"] = .array(toolCalls) }
        var out: [String: JSON] = [
            "id": message["id"] ?? "", "object": "chat.completion", "created": .int(created),
            "model": message["model"] ?? "",
            "choices": [["index": 0, "message": .object(reply), "logprobs": .null,
                         "finish_reason": finishReason(message["stop_reason"]?.string)]],
        ]
        if let usage = message["usage"] { out["usage"] = openAIUsage(usage) }
        return JSON.object(out).serialized
    }

    // MARK: Shared with the stream translator

    /// OpenAI's `finish_reason` for Anthropic's `stop_reason`.
    static func finishReason(_ stopReason: String?) -> JSON {
        switch stopReason {
        case nil: .null
        case "max_tokens", "model_context_window_exceeded": "length"
        case "tool_use": "tool_calls"
        case "refusal": "content_filter"
        default: "stop"  // end_turn, stop_sequence, pause_turn
        }
    }

    /// OpenAI's usage for Anthropic's: OpenAI's `prompt_tokens` counts every prompt token, cached or not.
    static func openAIUsage(_ usage: JSON) -> JSON {
        let input = usage["input_tokens"]?.int ?? 0
        let cacheRead = usage["cache_read_input_tokens"]?.int ?? 0
        let cacheWrite = usage["cache_creation_input_tokens"]?.int ?? 0
        let output = usage["output_tokens"]?.int ?? 0
        let prompt = input + cacheRead + cacheWrite
        return ["prompt_tokens": .int(prompt), "completion_tokens": .int(output), "total_tokens": .int(prompt + output),
                "prompt_tokens_details": ["cached_tokens": .int(cacheRead)]]
    }

    static func toolCall(id: JSON?, name: JSON?, input: JSON?) -> JSON {
        ["id": id ?? "", "type": "function",
         "function": ["name": name ?? "", "arguments": .string((input ?? [:]).text)]]
    }

    // MARK: Request parts

    private static func positiveInteger(_ value: JSON, _ field: String) throws(TranslationError) -> Int {
        guard let number = value.int, number > 0 else { throw .invalid(field: field, reason: "expected a positive integer") }
        return number
    }

    private static func translateMessages(_ value: JSON) throws(TranslationError) -> (system: [JSON], messages: [JSON]) {
        guard let list = value.array else { throw .invalid(field: "messages", reason: "expected an array") }
        var system: [JSON] = []
        var turns: [(role: String, blocks: [JSON])] = []
        // Anthropic alternates roles: tool results and a following user message become one user turn.
        func append(_ role: String, _ blocks: [JSON]) {
            if let last = turns.last, last.role == role {
                turns[turns.count - 1].blocks += blocks
            } else {
                turns.append((role, blocks))
            }
        }
        for (index, message) in list.enumerated() {
            let path = "messages[\(index)]"
            guard let members = message.object, let role = message["role"]?.string else {
                throw .invalid(field: path, reason: "expected an object with a `role`")
            }
            let allowed: Set<String> = switch role {
            case "assistant": ["role", "content", "tool_calls"]
            case "tool": ["role", "content", "tool_call_id"]
            default: ["role", "content"]
            }
            for key in members.keys.sorted() where !allowed.contains(key) && members[key] != .null {
                throw .unsupported(field: "\(path).\(key)", reason: "Anthropic messages have no `\(key)`")
            }
            let content = message["content"]
            switch role {
            case "system", "developer":
                // Anthropic has one system prompt, before the conversation.
                system += try textBlocks(content, path: "\(path).content")
            case "user":
                append("user", try userBlocks(content, path: "\(path).content"))
            case "assistant":
                var blocks = try textBlocks(content, path: "\(path).content").filter { $0["text"] != "" }
                for (callIndex, call) in (message["tool_calls"]?.array ?? []).enumerated() {
                    blocks.append(try toolUse(call, path: "\(path).tool_calls[\(callIndex)]"))
                }
                append("assistant", blocks)
            case "tool":
                guard let id = message["tool_call_id"]?.string else {
                    throw .invalid(field: "\(path).tool_call_id", reason: "a tool message needs the id of its call")
                }
                let result: JSON = if let text = content?.string { .string(text) } else {
                    .array(try textBlocks(content, path: "\(path).content"))
                }
                append("user", [["type": "tool_result", "tool_use_id": .string(id), "content": result]])
            default:
                throw .unsupported(field: "\(path).role", reason: "role `\(role)` has no Anthropic equivalent")
            }
        }
        return (system, turns.map { ["role": .string($0.role), "content": .array($0.blocks)] })
    }

    /// Content that may only hold text: a string, or `text` parts.
    private static func textBlocks(_ content: JSON?, path: String) throws(TranslationError) -> [JSON] {
        switch content {
        case nil: return []
        case .string(let text)?: return [["type": "text", "text": .string(text)]]
        case .array(let parts)?:
            var blocks: [JSON] = []
            for (index, part) in parts.enumerated() {
                guard part["type"] == "text", let text = part["text"]?.string else {
                    throw .unsupported(field: "\(path)[\(index)].type", reason: "only text is allowed here")
                }
                blocks.append(["type": "text", "text": .string(text)])
            }
            return blocks
        default: throw .invalid(field: path, reason: "expected a string or an array of parts")
        }
    }

    private static func userBlocks(_ content: JSON?, path: String) throws(TranslationError) -> [JSON] {
        guard case .array(let parts)? = content else { return try textBlocks(content, path: path) }
        var blocks: [JSON] = []
        for (index, part) in parts.enumerated() {
            let partPath = "\(path)[\(index)]"
            switch part["type"]?.string {
            case "text": blocks += try textBlocks(.array([part]), path: path)
            case "image_url":
                // `detail` is a resolution hint; Anthropic sizes images itself.
                guard let url = part["image_url"]?["url"]?.string ?? part["image_url"]?.string else {
                    throw .invalid(field: "\(partPath).image_url.url", reason: "missing")
                }
                blocks.append(["type": "image", "source": try imageSource(url, path: "\(partPath).image_url.url")])
            default:
                throw .unsupported(field: "\(partPath).type",
                                   reason: "content of type `\(part["type"]?.string ?? "?")` has no Anthropic equivalent")
            }
        }
        return blocks
    }

    static let imageMediaTypes: Set<String> = ["image/jpeg", "image/png", "image/gif", "image/webp"]

    private static func imageSource(_ url: String, path: String) throws(TranslationError) -> JSON {
        if url.hasPrefix("http://") || url.hasPrefix("https://") {
            return ["type": "url", "url": .string(url)]
        }
        guard url.hasPrefix("data:"), let comma = url.firstIndex(of: ",") else {
            throw .unsupported(field: path, reason: "only http(s) and base64 data: URLs can be sent")
        }
        let header = url[url.index(url.startIndex, offsetBy: 5)..<comma]
        guard header.hasSuffix(";base64") else { throw .unsupported(field: path, reason: "data: URLs must be base64") }
        let mediaType = String(header.dropLast(";base64".count))
        guard imageMediaTypes.contains(mediaType) else {
            throw .unsupported(field: path, reason: "media type `\(mediaType)` is not accepted by Anthropic")
        }
        return ["type": "base64", "media_type": .string(mediaType), "data": .string(String(url[url.index(after: comma)...]))]
    }

    private static func toolUse(_ call: JSON, path: String) throws(TranslationError) -> JSON {
        guard call["type"] == nil || call["type"] == "function" else {
            throw .unsupported(field: "\(path).type", reason: "only function tool calls exist in Anthropic")
        }
        guard let id = call["id"]?.string, let name = call["function"]?["name"]?.string else {
            throw .invalid(field: path, reason: "a tool call needs `id` and `function.name`")
        }
        let arguments = call["function"]?["arguments"]?.string ?? ""
        let input: JSON = arguments.isEmpty ? [:] : try JSON.parse(Array(arguments.utf8), field: "\(path).function.arguments")
        guard input.object != nil else { throw .invalid(field: "\(path).function.arguments", reason: "expected a JSON object") }
        return ["type": "tool_use", "id": .string(id), "name": .string(name), "input": input]
    }

    private static func translateTools(_ value: JSON) throws(TranslationError) -> [JSON] {
        guard let tools = value.array else { throw .invalid(field: "tools", reason: "expected an array") }
        var out: [JSON] = []
        for (index, tool) in tools.enumerated() {
            let path = "tools[\(index)]"
            guard tool["type"] == "function" else {
                throw .unsupported(field: "\(path).type", reason: "only function tools can be translated")
            }
            guard let function = tool["function"], let name = function["name"]?.string else {
                throw .invalid(field: "\(path).function.name", reason: "missing")
            }
            if function["strict"] == true {
                throw .unsupported(field: "\(path).function.strict", reason: "strict schemas are not translated")
            }
            var definition: [String: JSON] = [
                "name": .string(name),
                "input_schema": function["parameters"] ?? ["type": "object", "properties": [:]],
            ]
            if let description = function["description"] { definition["description"] = description }
            out.append(.object(definition))
        }
        return out
    }

    private static func translateToolChoice(_ value: JSON) throws(TranslationError) -> JSON {
        switch value {
        case "auto": return ["type": "auto"]
        case "none": return ["type": "none"]
        case "required": return ["type": "any"]
        default:
            guard value["type"] == "function", let name = value["function"]?["name"]?.string else {
                throw .unsupported(field: "tool_choice", reason: "only auto, none, required or one named function")
            }
            return ["type": "tool", "name": .string(name)]
        }
    }
}
