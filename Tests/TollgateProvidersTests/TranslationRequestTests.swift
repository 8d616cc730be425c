import Testing
@testable import TollgateProviders

func translated(_ translate: ([UInt8]) throws(TranslationError) -> [UInt8], _ body: String) throws -> JSON {
    try JSON.parse(try translate(Array(body.utf8)))
}

func toAnthropic(_ body: String, defaultMaxTokens: Int = 4096) throws -> JSON {
    try translated({ (bytes) throws(TranslationError) in
        try OpenAIClientToAnthropicModel.upstreamRequest(bytes, model: "claude-sonnet-4-5", defaultMaxTokens: defaultMaxTokens)
    }, body)
}

func toOpenAI(_ body: String) throws -> JSON {
    try translated({ (bytes) throws(TranslationError) in
        try AnthropicClientToOpenAIModel.upstreamRequest(bytes, model: "qwen3-coder")
    }, body)
}

/// The field a refused translation names, or nil when it was not refused.
func refusedField(_ translate: () throws(TranslationError) -> [UInt8]) -> String? {
    do {
        _ = try translate()
        return nil
    } catch {
        return error.field
    }
}

func refusedToAnthropic(_ body: String) -> String? {
    refusedField { () throws(TranslationError) in
        try OpenAIClientToAnthropicModel.upstreamRequest(Array(body.utf8), model: "claude-sonnet-4-5", defaultMaxTokens: 4096)
    }
}

func refusedToOpenAI(_ body: String) -> String? {
    refusedField { () throws(TranslationError) in
        try AnthropicClientToOpenAIModel.upstreamRequest(Array(body.utf8), model: "qwen3-coder")
    }
}

/// Requests shaped like the OpenAI Chat Completions API reference.
@Suite("OpenAI chat request → Anthropic Messages request")
struct TranslationOpenAIRequestTests {
    @Test("system and developer messages become `system`; text turns, limits, sampling, stop, user and stream carry over")
    func textConversation() throws {
        let body = try toAnthropic(#"""
        {"model":"claude","messages":[
          {"role":"developer","content":"You are terse."},
          {"role":"system","content":[{"type":"text","text":"Answer in English."}]},
          {"role":"user","content":"Hello!"},
          {"role":"assistant","content":"Hi."},
          {"role":"user","content":[{"type":"text","text":"Count to 3."}]}],
         "max_completion_tokens":256,"max_tokens":100,"temperature":0.7,"top_p":0.9,"stop":"\n\n",
         "user":"user-1234","stream":true,"stream_options":{"include_usage":true},"n":1,"logprobs":false}
        """#)
        #expect(body == [
            "model": "claude-sonnet-4-5",
            "system": [["type": "text", "text": "You are terse."], ["type": "text", "text": "Answer in English."]],
            "messages": [
                ["role": "user", "content": [["type": "text", "text": "Hello!"]]],
                ["role": "assistant", "content": [["type": "text", "text": "Hi."]]],
                ["role": "user", "content": [["type": "text", "text": "Count to 3."]]],
            ],
            "max_tokens": 256, "temperature": .double(0.7), "top_p": .double(0.9), "stop_sequences": ["\n\n"],
            "metadata": ["user_id": "user-1234"], "stream": true,
        ])
    }

    @Test("max_tokens is used when max_completion_tokens is absent, and the default when both are")
    func outputLimit() throws {
        #expect(try toAnthropic(#"{"messages":[{"role":"user","content":"Hi"}],"max_tokens":50}"#)["max_tokens"] == 50)
        #expect(try toAnthropic(#"{"messages":[{"role":"user","content":"Hi"}]}"#, defaultMaxTokens: 8192)["max_tokens"] == 8192)
        #expect(try toAnthropic(#"{"messages":[{"role":"user","content":"Hi"}],"stop":["END","STOP"],"n":null}"#)["stop_sequences"] == ["END", "STOP"])
    }

    @Test("image_url parts: data URLs become base64 sources, http(s) URLs become url sources")
    func images() throws {
        let body = try toAnthropic(#"""
        {"messages":[{"role":"user","content":[
          {"type":"text","text":"What is in these images?"},
          {"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="}},
          {"type":"image_url","image_url":{"url":"https://upload.wikimedia.org/wikipedia/commons/a/a7/Camponotus_flavomarginatus_ant.jpg","detail":"high"}}]}]}
        """#)
        #expect(body["messages"] == [["role": "user", "content": [
            ["type": "text", "text": "What is in these images?"],
            ["type": "image", "source": ["type": "base64", "media_type": "image/png",
                                         "data": "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="]],
            ["type": "image", "source": ["type": "url", "url": "https://upload.wikimedia.org/wikipedia/commons/a/a7/Camponotus_flavomarginatus_ant.jpg"]],
        ]]])
        #expect(refusedToAnthropic(#"{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/tiff;base64,AAAA"}}]}]}"#)
            == "messages[0].content[0].image_url.url")
    }

    @Test("tools, tool_calls and consecutive tool results translate to tool definitions, tool_use and one user turn of tool_result")
    func toolRoundTrip() throws {
        let body = try toAnthropic(#"""
        {"messages":[
          {"role":"user","content":"Weather in Paris and Tokyo?"},
          {"role":"assistant","content":null,"tool_calls":[
            {"id":"call_abc","type":"function","function":{"name":"get_weather","arguments":"{\"location\":\"Paris, France\"}"}},
            {"id":"call_def","type":"function","function":{"name":"get_weather","arguments":"{\"location\":\"Tokyo, Japan\"}"}}]},
          {"role":"tool","tool_call_id":"call_abc","content":"18°C, cloudy"},
          {"role":"tool","tool_call_id":"call_def","content":[{"type":"text","text":"24°C, sunny"}]},
          {"role":"user","content":"Which is warmer?"}],
         "tools":[{"type":"function","function":{"name":"get_weather","description":"Get the current weather",
           "parameters":{"type":"object","properties":{"location":{"type":"string"}},"required":["location"]}}},
                  {"type":"function","function":{"name":"now"}}],
         "tool_choice":"required","parallel_tool_calls":false}
        """#)
        #expect(body["messages"] == [
            ["role": "user", "content": [["type": "text", "text": "Weather in Paris and Tokyo?"]]],
            ["role": "assistant", "content": [
                ["type": "tool_use", "id": "call_abc", "name": "get_weather", "input": ["location": "Paris, France"]],
                ["type": "tool_use", "id": "call_def", "name": "get_weather", "input": ["location": "Tokyo, Japan"]]]],
            ["role": "user", "content": [
                ["type": "tool_result", "tool_use_id": "call_abc", "content": "18°C, cloudy"],
                ["type": "tool_result", "tool_use_id": "call_def", "content": [["type": "text", "text": "24°C, sunny"]]],
                ["type": "text", "text": "Which is warmer?"]]],
        ])
        #expect(body["tools"] == [
            ["name": "get_weather", "description": "Get the current weather",
             "input_schema": ["type": "object", "properties": ["location": ["type": "string"]], "required": ["location"]]],
            ["name": "now", "input_schema": ["type": "object", "properties": [:]]],
        ])
        #expect(body["tool_choice"] == ["type": "any", "disable_parallel_tool_use": true])
    }

    @Test("tool_choice forms", arguments: [
        (#""auto""#, ["type": "auto"]), (#""none""#, ["type": "none"]), (#""required""#, ["type": "any"]),
        (#"{"type":"function","function":{"name":"get_weather"}}"#, ["type": "tool", "name": "get_weather"]),
    ] as [(String, JSON)])
    func toolChoice(form: String, expected: JSON) throws {
        let body = try toAnthropic(#"{"messages":[{"role":"user","content":"Hi"}],"tools":[{"type":"function","function":{"name":"get_weather"}}],"tool_choice":\#(form)}"#)
        #expect(body["tool_choice"] == expected)
    }

    @Test("what has no faithful Anthropic form is refused, naming the field", arguments: [
        (#""n":2"#, "n"), (#""logprobs":true"#, "logprobs"), (#""top_logprobs":3"#, "top_logprobs"),
        (#""response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{}}}"#, "response_format"),
        (#""logit_bias":{"50256":-100}"#, "logit_bias"), (#""seed":42"#, "seed"), (#""temperature":1.5"#, "temperature"),
        (#""presence_penalty":0.5"#, "presence_penalty"), (#""reasoning_effort":"high""#, "reasoning_effort"),
        (#""functions":[{"name":"f"}]"#, "functions"), (#""tool_choice":{"type":"allowed_tools"}"#, "tool_choice"),
        (#""tools":[{"type":"custom","custom":{"name":"x"}}]"#, "tools[0].type"),
        (#""tools":[{"type":"function","function":{"name":"f","strict":true}}]"#, "tools[0].function.strict"),
        (#""modalities":["text","audio"]"#, "modalities"),
    ])
    func refusedFields(member: String, field: String) {
        #expect(refusedToAnthropic(#"{"messages":[{"role":"user","content":"Hi"}],\#(member)}"#) == field)
    }

    @Test("message content without an Anthropic form is refused, naming the message and part")
    func refusedContent() {
        #expect(refusedToAnthropic(#"{"messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"UklGR","format":"wav"}}]}]}"#)
            == "messages[0].content[0].type")
        #expect(refusedToAnthropic(#"{"messages":[{"role":"user","name":"alice","content":"Hi"}]}"#) == "messages[0].name")
        #expect(refusedToAnthropic(#"{"messages":[{"role":"function","name":"f","content":"1"}]}"#) == "messages[0].name")
        #expect(refusedToAnthropic(#"{"messages":[{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{oops"}}]}]}"#)
            == "messages[0].tool_calls[0].function.arguments")
        #expect(refusedToAnthropic("not json") == "body")
    }
}

/// Requests shaped like the Anthropic Messages API reference.
@Suite("Anthropic Messages request → OpenAI chat request")
struct TranslationAnthropicRequestTests {
    @Test("system, text, limits, sampling, stop sequences, user and streaming with usage asked for")
    func textConversation() throws {
        let body = try toOpenAI(#"""
        {"model":"claude-sonnet-4-5","max_tokens":1024,
         "system":[{"type":"text","text":"You are terse.","cache_control":{"type":"ephemeral"}}],
         "messages":[{"role":"user","content":"Hello, Claude"},{"role":"assistant","content":"Hi."},
                     {"role":"user","content":[{"type":"text","text":"Count to 3."}]}],
         "stop_sequences":["END"],"temperature":0.5,"top_p":0.9,"stream":true,"metadata":{"user_id":"13803d75"}}
        """#)
        #expect(body == [
            "model": "qwen3-coder", "max_completion_tokens": 1024,
            "messages": [
                ["role": "system", "content": "You are terse."],
                ["role": "user", "content": "Hello, Claude"],
                ["role": "assistant", "content": "Hi."],
                ["role": "user", "content": [["type": "text", "text": "Count to 3."]]],
            ],
            "stop": ["END"], "temperature": .double(0.5), "top_p": .double(0.9), "stream": true,
            "stream_options": ["include_usage": true], "user": "13803d75",
        ])
    }

    @Test("the output limit goes in the member the upstream knows")
    func outputLimitField() throws {
        let bytes = try AnthropicClientToOpenAIModel.upstreamRequest(
            Array(#"{"max_tokens":32000,"messages":[{"role":"user","content":"Hi"}]}"#.utf8), model: "llama3", outputLimit: .maxTokens)
        #expect(try JSON.parse(bytes)["max_tokens"] == 32000)
    }

    @Test("base64 and url image sources become image_url parts")
    func images() throws {
        let body = try toOpenAI(#"""
        {"max_tokens":1024,"messages":[{"role":"user","content":[
          {"type":"image","source":{"type":"base64","media_type":"image/jpeg","data":"/9j/4AAQSkZJRg=="}},
          {"type":"image","source":{"type":"url","url":"https://upload.wikimedia.org/wikipedia/commons/a/a7/Camponotus_flavomarginatus_ant.jpg"}},
          {"type":"text","text":"Describe these images."}]}]}
        """#)
        #expect(body["messages"] == [["role": "user", "content": [
            ["type": "image_url", "image_url": ["url": "data:image/jpeg;base64,/9j/4AAQSkZJRg=="]],
            ["type": "image_url", "image_url": ["url": "https://upload.wikimedia.org/wikipedia/commons/a/a7/Camponotus_flavomarginatus_ant.jpg"]],
            ["type": "text", "text": "Describe these images."],
        ]]])
    }

    @Test("tool definitions, tool_use and tool_result (errors flagged in the text) translate to functions, tool_calls and tool messages")
    func toolRoundTrip() throws {
        let body = try toOpenAI(#"""
        {"max_tokens":1024,
         "tools":[{"name":"get_weather","description":"Get the current weather in a given location",
                   "input_schema":{"type":"object","properties":{"location":{"type":"string"}},"required":["location"]},
                   "cache_control":{"type":"ephemeral"}}],
         "tool_choice":{"type":"any","disable_parallel_tool_use":true},
         "messages":[
          {"role":"user","content":"What's the weather like in San Francisco?"},
          {"role":"assistant","content":[
            {"type":"text","text":"I'll check."},
            {"type":"tool_use","id":"toolu_01A09q90qw90lq917835lq9","name":"get_weather","input":{"location":"San Francisco, CA"}}]},
          {"role":"user","content":[
            {"type":"tool_result","tool_use_id":"toolu_01A09q90qw90lq917835lq9","content":[{"type":"text","text":"15 degrees"}]},
            {"type":"tool_result","tool_use_id":"toolu_02","content":"timeout","is_error":true},
            {"type":"text","text":"And tomorrow?"}]}]}
        """#)
        #expect(body["messages"] == [
            ["role": "user", "content": "What's the weather like in San Francisco?"],
            ["role": "assistant", "content": "I'll check.", "tool_calls": [
                ["id": "toolu_01A09q90qw90lq917835lq9", "type": "function",
                 "function": ["name": "get_weather", "arguments": #"{"location":"San Francisco, CA"}"#]]]],
            ["role": "tool", "tool_call_id": "toolu_01A09q90qw90lq917835lq9", "content": "15 degrees"],
            ["role": "tool", "tool_call_id": "toolu_02", "content": "Error: timeout"],
            ["role": "user", "content": [["type": "text", "text": "And tomorrow?"]]],
        ])
        #expect(body["tools"] == [["type": "function", "function": [
            "name": "get_weather", "description": "Get the current weather in a given location",
            "parameters": ["type": "object", "properties": ["location": ["type": "string"]], "required": ["location"]]]]])
        #expect(body["tool_choice"] == "required")
        #expect(body["parallel_tool_calls"] == false)
    }

    @Test("tool_choice forms", arguments: [
        (#"{"type":"auto"}"#, "auto"), (#"{"type":"any"}"#, "required"), (#"{"type":"none"}"#, "none"),
        (#"{"type":"tool","name":"get_weather"}"#, ["type": "function", "function": ["name": "get_weather"]]),
    ] as [(String, JSON)])
    func toolChoice(form: String, expected: JSON) throws {
        let body = try toOpenAI(#"{"max_tokens":10,"messages":[{"role":"user","content":"Hi"}],"tools":[{"name":"get_weather","input_schema":{"type":"object"}}],"tool_choice":\#(form)}"#)
        #expect(body["tool_choice"] == expected)
        #expect(body["parallel_tool_calls"] == nil)
    }

    @Test("what has no faithful OpenAI form is refused, naming the field", arguments: [
        (#""thinking":{"type":"enabled","budget_tokens":10000}"#, "thinking"), (#""top_k":40"#, "top_k"),
        (#""service_tier":"auto""#, "service_tier"), (#""mcp_servers":[]"#, "mcp_servers"),
        (#""tools":[{"type":"web_search_20250305","name":"web_search"}]"#, "tools[0].type"),
        (#""metadata":{"user_id":"u","tenant":"x"}"#, "metadata.tenant"),
        (#""tool_choice":{"type":"sometimes"}"#, "tool_choice.type"),
    ])
    func refusedFields(member: String, field: String) {
        #expect(refusedToOpenAI(#"{"max_tokens":10,"messages":[{"role":"user","content":"Hi"}],\#(member)}"#) == field)
    }

    @Test("content blocks without an OpenAI form are refused, naming the block")
    func refusedContent() {
        #expect(refusedToOpenAI(#"{"max_tokens":10,"messages":[{"role":"user","content":[{"type":"document","source":{"type":"base64","media_type":"application/pdf","data":"JVBER"}}]}]}"#)
            == "messages[0].content[0].type")
        #expect(refusedToOpenAI(#"{"max_tokens":10,"messages":[{"role":"user","content":"Hi"},{"role":"assistant","content":[{"type":"thinking","thinking":"hmm","signature":"sig"}]}]}"#)
            == "messages[1].content[0].type")
        #expect(refusedToOpenAI(#"{"max_tokens":10,"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":[{"type":"image","source":{"type":"url","url":"https://x"}}]}]}]}"#)
            == "messages[0].content[0].content[0].type")
    }
}
