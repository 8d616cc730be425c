import Testing
@testable import TollgateProviders

/// Request bodies shaped like the examples of OpenAI's chat-completions and embeddings API reference.
@Suite("OpenAIRequestFields: what admission reads from a request body")
struct OpenAIRequestFieldsTests {
    /// A body whose `messages` value is `messages` verbatim, so that `promptBytes` can be checked exactly.
    static func chat(model: String = "gpt-4o", messages: String, extra: String = "") -> String {
        "{\n  \"model\": \"\(model)\",\n  \"messages\": \(messages)\(extra)\n}"
    }

    static let systemAndUser = #"""
        [
            {"role": "developer", "content": "You are a helpful assistant."},
            {"role": "user", "content": "Hello!"}
          ]
        """#

    @Test("a system and a user message: model, its byte range and the prompt size, nothing agentic")
    func systemAndUserMessages() throws {
        let body = Self.chat(messages: Self.systemAndUser)
        let fields = try scanRequest(body)
        #expect(fields.model == "gpt-4o")
        let modelRange = try #require(fields.modelRange)
        #expect(Array(body.utf8)[modelRange] == Array("gpt-4o".utf8)[...])
        #expect(fields.stream == false)
        #expect(fields.maxOutputTokens == nil)
        #expect(fields.clientIncludeUsage == false)
        #expect(fields.streamOptionsRange == nil)
        #expect(fields.hasTools == false)
        #expect(fields.hasToolResults == false)
        #expect(fields.agentic == false)
        #expect(fields.promptBytes == Self.systemAndUser.utf8.count)
        #expect(fields.promptBytes > 0)
    }

    @Test("bodyStart is just after the top-level brace")
    func bodyStart() throws {
        #expect(try scanRequest(#"{"model":"m"}"#).bodyStart == 1)
        #expect(try scanRequest(" \n {\"model\":\"m\"}").bodyStart == 4)
    }

    @Test("multi-part content with an image_url counts the whole content into the prompt")
    func imageContent() throws {
        let messages = #"""
            [
                {
                  "role": "user",
                  "content": [
                    {"type": "text", "text": "What is in this image?"},
                    {
                      "type": "image_url",
                      "image_url": {
                        "url": "https://upload.wikimedia.org/wikipedia/commons/thumb/d/dd/Gfp-wisconsin-madison-the-nature-boardwalk.jpg/2560px-Gfp-wisconsin-madison-the-nature-boardwalk.jpg",
                        "detail": "high"
                      }
                    }
                  ]
                }
              ]
            """#
        let fields = try scanRequest(Self.chat(model: "gpt-4.1", messages: messages, extra: #",  "max_tokens": 300"#))
        #expect(fields.model == "gpt-4.1")
        #expect(fields.maxOutputTokens == 300)
        #expect(fields.promptBytes == messages.utf8.count)
        #expect(fields.agentic == false)
    }

    static let weatherTool = #"""
        [
            {
              "type": "function",
              "function": {
                "name": "get_current_weather",
                "description": "Get the current weather in a given location",
                "parameters": {
                  "type": "object",
                  "properties": {
                    "location": {"type": "string", "description": "The city and state, e.g. San Francisco, CA"},
                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}
                  },
                  "required": ["location"]
                }
              }
            }
          ]
        """#

    @Test("tools with tool_choice make a request agentic, whatever the form of tool_choice",
          arguments: [#""auto""#, #""required""#, #""none""#, #"{"type": "function", "function": {"name": "get_current_weather"}}"#])
    func toolsAndToolChoice(toolChoice: String) throws {
        let messages = #"[{"role": "user", "content": "What is the weather like in Boston today?"}]"#
        let body = Self.chat(model: "gpt-4.1", messages: messages,
                             extra: ",\n  \"tools\": \(Self.weatherTool),\n  \"tool_choice\": \(toolChoice)")
        let fields = try scanRequest(body)
        #expect(fields.hasTools)
        #expect(fields.hasToolResults == false)
        #expect(fields.agentic)
        #expect(fields.promptBytes == messages.utf8.count, "tool definitions are not part of messages")
    }

    @Test("an empty tools list is not tools", arguments: ["[]", "[ ]", "[\n\t]", "null"])
    func emptyTools(tools: String) throws {
        let fields = try scanRequest(Self.chat(messages: Self.systemAndUser, extra: ", \"tools\": \(tools)"))
        #expect(fields.hasTools == false)
        #expect(fields.agentic == false)
    }

    @Test("legacy functions make a request agentic")
    func legacyFunctions() throws {
        let fields = try scanRequest(Self.chat(messages: Self.systemAndUser,
                                               extra: #", "functions": [{"name": "f", "parameters": {}}]"#))
        #expect(fields.hasTools)
        #expect(fields.agentic)
    }

    @Test("an assistant tool_calls message followed by a tool result makes a request agentic")
    func toolResult() throws {
        let messages = #"""
            [
                {"role": "user", "content": "What is the weather like in Boston today?"},
                {
                  "role": "assistant",
                  "content": null,
                  "tool_calls": [
                    {
                      "id": "call_abc123",
                      "type": "function",
                      "function": {"name": "get_current_weather", "arguments": "{\"location\": \"Boston, MA\"}"}
                    }
                  ]
                },
                {"role": "tool", "tool_call_id": "call_abc123", "content": "{\"temperature\": \"22\", \"unit\": \"celsius\"}"}
              ]
            """#
        let fields = try scanRequest(Self.chat(model: "gpt-4.1", messages: messages))
        #expect(fields.hasToolResults)
        #expect(fields.hasTools == false)
        #expect(fields.agentic)
        #expect(fields.promptBytes == messages.utf8.count)
    }

    @Test("a legacy function-role result makes a request agentic")
    func functionResult() throws {
        let messages = #"[{"role": "user", "content": "hi"}, {"role": "function", "name": "f", "content": "42"}]"#
        #expect(try scanRequest(Self.chat(messages: messages)).hasToolResults)
    }

    // MARK: Output limit

    @Test("the output limit is max_completion_tokens if present, whichever comes first, else max_tokens",
          arguments: [
              (#""max_tokens": 300"#, 300),
              (#""max_completion_tokens": 1000"#, 1000),
              (#""max_tokens": 300, "max_completion_tokens": 1000"#, 1000),
              (#""max_completion_tokens": 1000, "max_tokens": 300"#, 1000),
              (#""max_tokens": 32000, "max_completion_tokens": null"#, 32000),
              (#""max_completion_tokens": null, "max_tokens": 32000"#, 32000),
              (#""max_tokens": 0"#, 0),
              (#""max_tokens": null"#, nil),
              (#""temperature": 0.7"#, nil),
          ] as [(String, Int?)])
    func outputLimit(members: String, expected: Int?) throws {
        let fields = try scanRequest(Self.chat(messages: Self.systemAndUser, extra: ", " + members))
        #expect(fields.maxOutputTokens == expected)
    }

    // MARK: Streaming

    @Test("stream and stream_options as the client sent them",
          arguments: [
              ("", false, false, false),
              (#""stream": true"#, true, false, false),
              (#""stream": false"#, false, false, false),
              (#""stream": null"#, false, false, false),
              (#""stream": true, "stream_options": {"include_usage": true}"#, true, true, true),
              (#""stream": true, "stream_options": {"include_usage": false}"#, true, false, true),
              (#""stream": true, "stream_options": null"#, true, false, true),
              (#""stream": true, "stream_options": {}"#, true, false, true),
              (#""stream_options": {"include_obfuscation": false, "include_usage": true}, "stream": true"#, true, true, true),
          ])
    func streamOptions(members: String, stream: Bool, includeUsage: Bool, hasStreamOptions: Bool) throws {
        let extra = members.isEmpty ? "" : ", " + members
        let body = Self.chat(messages: Self.systemAndUser, extra: extra)
        let fields = try scanRequest(body)
        #expect(fields.stream == stream)
        #expect(fields.clientIncludeUsage == includeUsage)
        #expect((fields.streamOptionsRange != nil) == hasStreamOptions)
    }

    @Test("streamOptionsRange covers exactly the stream_options value")
    func streamOptionsRange() throws {
        let value = #"{"include_usage": false, "include_obfuscation": true}"#
        let body = Self.chat(messages: Self.systemAndUser, extra: #", "stream": true, "stream_options":   "# + value)
        let range = try #require(try scanRequest(body).streamOptionsRange)
        #expect(Array(body.utf8)[range] == Array(value.utf8)[...])
    }

    // MARK: JSON mode

    @Test("a response_format of type json_object or json_schema asks for JSON mode, wherever its type member is",
          arguments: [
              #"{"type": "json_object"}"#,
              #"{"type": "json_schema", "json_schema": {"name": "weather", "strict": true, "schema": {"type": "object", "properties": {"type": {"type": "string"}}}}}"#,
              #"{"json_schema": {"name": "weather", "schema": {"type": "object"}}, "type": "json_schema"}"#,
              #"{"type":"json_object"}"#,
          ])
    func jsonResponseFormat(format: String) throws {
        let fields = try scanRequest(Self.chat(messages: Self.systemAndUser, extra: ", \"response_format\": \(format)"))
        #expect(fields.jsonResponse)
        #expect(fields.model == "gpt-4o" && fields.promptBytes == Self.systemAndUser.utf8.count)
    }

    @Test("plain text, no response_format, or one without a JSON type does not ask for JSON mode",
          arguments: [nil, #"{"type": "text"}"#, "null", "{}", #"{"type": "json"}"#, #"{"type": null}"#,
                      #"{"schema": {"type": "json_object"}}"#])
    func noJSONResponseFormat(format: String?) throws {
        let extra = format.map { ", \"response_format\": \($0)" } ?? ""
        #expect(try scanRequest(Self.chat(messages: Self.systemAndUser, extra: extra)).jsonResponse == false)
    }

    @Test("a malformed response_format is refused like any malformed body")
    func malformedResponseFormat() {
        #expect(throws: JSONScanner.Failure.self) {
            try scanRequest(#"{"model": "m", "response_format": {"type": "json_object",}}"#)
        }
    }

    // MARK: Embeddings

    @Test("embeddings input counts into the prompt, as a string or as a list",
          arguments: [#""The food was delicious and the waiter...""#, #"["first text", "second text"]"#,
                      "[[1, 18, 2013], [99]]"])
    func embeddingsInput(input: String) throws {
        let body = "{\n  \"input\": \(input),\n  \"model\": \"text-embedding-3-small\",\n  \"encoding_format\": \"base64\"\n}"
        let fields = try scanRequest(body)
        #expect(fields.model == "text-embedding-3-small")
        #expect(fields.promptBytes == input.utf8.count)
        #expect(fields.stream == false)
        #expect(fields.agentic == false)
    }

    // MARK: Refusals

    @Test("a member of the wrong type is refused naming the parameter",
          arguments: [
              (#"{"model": 4}"#, "model", "string"),
              (#"{"model": null}"#, "model", "string"),
              (#"{"model": "m", "stream": "true"}"#, "stream", "boolean"),
              (#"{"model": "m", "stream": 1}"#, "stream", "boolean"),
              (#"{"model": "m", "max_tokens": "300"}"#, "max_tokens", "integer"),
              (#"{"model": "m", "max_completion_tokens": [1]}"#, "max_completion_tokens", "integer"),
              (#"{"model": "m", "max_tokens": -1}"#, "max_tokens", "non-negative integer"),
              (#"{"model": "m", "max_tokens": 300.5}"#, "max_tokens", "non-negative integer"),
              (#"{"model": "m", "max_completion_tokens": 1e3}"#, "max_completion_tokens", "non-negative integer"),
              (#"{"model": "m", "max_tokens": 99999999999999999999}"#, "max_tokens", "non-negative integer"),
              (#"{"model": "m", "stream_options": true}"#, "stream_options", "object"),
              (#"{"model": "m", "stream_options": "include_usage"}"#, "stream_options", "object"),
              (#"{"model": "m", "messages": "Hello!"}"#, "messages", "array"),
              (#"{"model": "m", "messages": {"role": "user"}}"#, "messages", "array"),
          ])
    func wrongType(body: String, param: String, expected: String) {
        #expect(throws: JSONScanner.Failure.wrongType(param: param, expected: expected)) { try scanRequest(body) }
    }

    @Test("a body that is not one JSON object is refused as malformed",
          arguments: [("[]", 0), (#""model""#, 0), ("", 0), (#"{"model": "m"} {}"#, 15), (#"{"model": "m""#, 13),
                      (#"{"model": "m", "metadata": {"k": 01}}"#, 34)])
    func notAnObject(body: String, offset: Int) {
        #expect(throws: JSONScanner.Failure.malformed(offset: offset)) { try scanRequest(body) }
    }

    @Test("a request nesting deeper than 128 anywhere is refused as tooDeep")
    func tooDeep() {
        let deep = String(repeating: "[", count: 200) + String(repeating: "]", count: 200)
        #expect(throws: JSONScanner.Failure.tooDeep) { try scanRequest(#"{"model": "m", "metadata": "# + deep + "}") }
        #expect(throws: JSONScanner.Failure.tooDeep) {
            try scanRequest(#"{"model": "m", "messages": [{"role": "user", "content": "# + deep + "}]}")
        }
    }

    @Test("a model name with escapes is decoded, and its range covers the escaped form")
    func escapedModel() throws {
        let body = #"{"model": "ft:gpt-4o:acme\/team:\u00e9\"x\"", "messages": []}"#
        let fields = try scanRequest(body)
        #expect(fields.model == "ft:gpt-4o:acme/team:é\"x\"")
        let range = try #require(fields.modelRange)
        #expect(String(decoding: Array(body.utf8)[range], as: UTF8.self) == #"ft:gpt-4o:acme\/team:\u00e9\"x\""#)
    }
}

@Suite("OpenAIRequestFields: media parts, whose tokens their bytes do not bound")
struct OpenAIRequestMediaTests {
    @Test("image and audio parts are counted, text parts are not")
    func mediaParts() throws {
        let body = #"""
        {"model":"gpt-4o","messages":[
          {"role":"system","content":"Describe images."},
          {"role":"user","content":[{"type":"text","text":"What is this?"},
                                    {"type":"image_url","image_url":{"url":"https://example.com/a.png","detail":"high"}},
                                    {"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo="}}]},
          {"role":"user","content":[{"type":"input_audio","input_audio":{"data":"UklGRg==","format":"wav"}}]}]}
        """#
        let fields = try Array(body.utf8).withUnsafeBytes { bytes in try OpenAIRequestFields.scan(bytes) }
        #expect(fields.mediaParts == 3)
        #expect(fields.model == "gpt-4o")
    }
}

@Suite("AnthropicRequestFields: what admission reads from a Messages request")
struct AnthropicRequestFieldsTests {
    @Test("a coding agent's request: tools, a tool result, an image, cache breakpoints, stream")
    func agentRequest() throws {
        let body = #"""
        {"model":"claude-sonnet-4-5","max_tokens":32000,"stream":true,
         "system":[{"type":"text","text":"You are a coding agent.","cache_control":{"type":"ephemeral"}}],
         "tools":[{"name":"read_file","description":"Read a file","input_schema":{"type":"object","properties":{"path":{"type":"string"}}}}],
         "messages":[
           {"role":"user","content":[{"type":"text","text":"Fix the bug"},
                                     {"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0KGgo="}}]},
           {"role":"assistant","content":[{"type":"tool_use","id":"toolu_1","name":"read_file","input":{"path":"a.swift"}}]},
           {"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":"let x = 1"}]}]}
        """#
        let fields = try Array(body.utf8).withUnsafeBytes { bytes in try AnthropicRequestFields.scan(bytes) }
        #expect(fields.model == "claude-sonnet-4-5")
        #expect(fields.stream)
        #expect(fields.maxTokens == 32000)
        #expect(fields.hasTools && fields.hasToolResults && fields.agentic)
        #expect(fields.mediaParts == 1)
        #expect(fields.promptBytes > 300)
        let edits = fields.upstreamEdits(upstreamModel: "claude-sonnet-4-5-20250929")
        #expect(edits.count == 1)
        #expect(fields.upstreamEdits(upstreamModel: "claude-sonnet-4-5").isEmpty)
    }

    @Test("a plain text request is not agentic, and a wrong type names the field")
    func plain() throws {
        let fields = try Array(#"{"model":"m","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}"#.utf8)
            .withUnsafeBytes { bytes in try AnthropicRequestFields.scan(bytes) }
        #expect(!fields.agentic && !fields.stream && fields.mediaParts == 0)
        #expect(throws: JSONScanner.Failure.wrongType(param: "max_tokens", expected: "non-negative integer")) {
            try Array(#"{"model":"m","max_tokens":"10"}"#.utf8).withUnsafeBytes { bytes in try AnthropicRequestFields.scan(bytes) }
        }
    }
}

@Suite("PromptText: what the router reads of a request")
struct PromptTextTests {
    @Test("system and user text of an OpenAI request, text parts only, assistant turns left out")
    func openAI() {
        let body = #"{"model":"auto","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":[{"type":"text","text":"Prove it."},{"type":"image_url","image_url":{"url":"https://x"}}]},{"role":"assistant","content":"No."},{"role":"user","content":"Why?"}]}"#
        let text = Array(body.utf8).withUnsafeBytes { PromptText.openAI($0) }
        #expect(text == "Be brief.\nProve it.\nWhy?")
    }

    @Test("system blocks and user text of an Anthropic request")
    func anthropic() {
        let body = #"{"model":"auto","system":[{"type":"text","text":"You code."}],"messages":[{"role":"user","content":"Fix it"},{"role":"assistant","content":[{"type":"text","text":"Done"}]}]}"#
        let text = Array(body.utf8).withUnsafeBytes { PromptText.anthropic($0) }
        #expect(text == "You code.\nFix it")
    }
}
