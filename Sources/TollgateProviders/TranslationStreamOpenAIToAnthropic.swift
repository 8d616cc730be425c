/// Rewrites an OpenAI `chat.completion.chunk` stream as the Anthropic Messages event stream an Anthropic
/// client expects, from byte chunks cut anywhere. The upstream request asked for usage, so the usage-only
/// chunk arrives after the finish chunk and before `[DONE]`.
///
/// The first chunk → `message_start` (OpenAI reports no usage until the end, so its counts are 0); content
/// → a text block (`content_block_start`, `text_delta`s); each new tool call → a `tool_use` block
/// (`content_block_start`, `input_json_delta`s), the open block stopped before the next one starts; a
/// finish reason stops the open block; `[DONE]` (or the end of the stream) → `message_delta` with the stop
/// reason and the full usage, then `message_stop`. An OpenAI error event → an Anthropic `error` event.
public struct OpenAIToAnthropicStream: Sendable {
    private var splitter = SSEEventSplitter()
    private var state = State()

    public init() {}

    public mutating func feed(_ chunk: UnsafeRawBufferPointer) -> [UInt8] {
        var out: [UInt8] = []
        splitter.feed(chunk) { state.translate($0, into: &out) }
        return out
    }

    /// At the end of the upstream stream: the last event, and the closing events if `[DONE]` never came
    /// after a finish reason.
    public mutating func finish() -> [UInt8] {
        var out: [UInt8] = []
        splitter.finish { state.translate($0, into: &out) }
        if state.finishReason != nil { state.close(into: &out) }
        return out
    }

    private struct State: Sendable {
        enum Block: Equatable, Sendable {
            case text(index: Int)
            /// An open `tool_use` block, for the OpenAI tool call at `call`.
            case tool(index: Int, call: Int)

            var index: Int {
                switch self {
                case .text(let index), .tool(let index, _): index
                }
            }
        }

        var started = false
        var closed = false
        var open: Block?
        var nextIndex = 0
        var finishReason: String?
        var usage: JSON?

        mutating func translate(_ event: UnsafeRawBufferPointer, into out: inout [UInt8]) {
            guard !closed, let data = SSEFormat.data(of: event) else { return }
            if SSEFormat.isDone(data) {
                close(into: &out)
                return
            }
            guard let payload = try? JSON.parse(Array(data)) else { return }
            if let error = payload["error"] {
                out += SSEFormat.anthropicEvent("error", ["error": ["type": "api_error", "message": error["message"] ?? "upstream error"]])
                closed = true
                return
            }
            if !started {
                started = true
                out += SSEFormat.anthropicEvent("message_start", ["message": [
                    "id": payload["id"] ?? "", "type": "message", "role": "assistant", "model": payload["model"] ?? "",
                    "content": [], "stop_reason": .null, "stop_sequence": .null,
                    "usage": ["input_tokens": 0, "output_tokens": 0],
                ]])
            }
            if let usage = payload["usage"] { self.usage = usage }
            guard let choice = payload["choices"]?.array?.first else { return }
            let delta = choice["delta"]
            if let text = delta?["content"]?.string, !text.isEmpty {
                if case .text? = open {} else {
                    stopOpenBlock(into: &out)
                    open = .text(index: nextIndex)
                    out += SSEFormat.anthropicEvent("content_block_start", ["index": .int(nextIndex), "content_block": ["type": "text", "text": ""]])
                    nextIndex += 1
                }
                out += SSEFormat.anthropicEvent("content_block_delta", ["index": .int(open!.index), "delta": ["type": "text_delta", "text": .string(text)]])
            }
            for call in delta?["tool_calls"]?.array ?? [] {
                let callIndex = call["index"]?.int ?? 0
                if case .tool(_, callIndex)? = open {} else {
                    stopOpenBlock(into: &out)
                    open = .tool(index: nextIndex, call: callIndex)
                    out += SSEFormat.anthropicEvent("content_block_start", ["index": .int(nextIndex), "content_block": [
                        "type": "tool_use", "id": call["id"] ?? "", "name": call["function"]?["name"] ?? "", "input": [:],
                    ]])
                    nextIndex += 1
                }
                if let arguments = call["function"]?["arguments"]?.string, !arguments.isEmpty {
                    out += SSEFormat.anthropicEvent("content_block_delta", ["index": .int(open!.index),
                                                                            "delta": ["type": "input_json_delta", "partial_json": .string(arguments)]])
                }
            }
            if let reason = choice["finish_reason"]?.string {
                finishReason = reason
                stopOpenBlock(into: &out)
            }
        }

        mutating func stopOpenBlock(into out: inout [UInt8]) {
            guard let block = open else { return }
            out += SSEFormat.anthropicEvent("content_block_stop", ["index": .int(block.index)])
            open = nil
        }

        mutating func close(into out: inout [UInt8]) {
            guard started, !closed else { return }
            closed = true
            stopOpenBlock(into: &out)
            out += SSEFormat.anthropicEvent("message_delta", [
                "delta": ["stop_reason": AnthropicClientToOpenAIModel.stopReason(finishReason ?? "stop"), "stop_sequence": .null],
                "usage": AnthropicClientToOpenAIModel.anthropicUsage(usage),
            ])
            out += SSEFormat.anthropicEvent("message_stop", [:])
        }
    }
}
