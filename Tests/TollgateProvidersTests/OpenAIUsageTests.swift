import TollgateCore
import Testing
@testable import TollgateProviders

/// Response bodies shaped like the examples of OpenAI's chat-completions and embeddings API reference.
@Suite("OpenAIUsage: what a response body reports it consumed")
struct OpenAIUsageTests {
    func usage(_ body: String) -> Usage? {
        Array(body.utf8).withUnsafeBytes { OpenAIUsage.scan(responseBody: $0) }
    }

    static let chatUsage = #"""
        {
            "prompt_tokens": 2006,
            "completion_tokens": 300,
            "total_tokens": 2306,
            "prompt_tokens_details": {"cached_tokens": 1920, "audio_tokens": 0},
            "completion_tokens_details": {
              "reasoning_tokens": 192,
              "audio_tokens": 0,
              "accepted_prediction_tokens": 0,
              "rejected_prediction_tokens": 0
            }
          }
        """#

    static func chatCompletion(usage: String) -> String {
        #"""
        {
          "id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG",
          "object": "chat.completion",
          "created": 1741570283,
          "model": "o4-mini-2025-04-16",
          "choices": [
            {
              "index": 0,
              "message": {
                "role": "assistant",
                "content": "The \"usage\" of a word is how it is used.",
                "refusal": null,
                "annotations": []
              },
              "logprobs": null,
              "finish_reason": "stop"
            }
          ],
          "usage": \#(usage),
          "service_tier": "default",
          "system_fingerprint": "fp_fc9f1d7035"
        }
        """#
    }

    @Test("a chat completion bills cached tokens apart from the rest of the prompt, and reasoning as output")
    func chatCompletionUsage() {
        #expect(usage(Self.chatCompletion(usage: Self.chatUsage))
            == Usage(inputTokens: 2006 - 1920, cachedInputTokens: 1920, outputTokens: 300, reasoningTokens: 192))
    }

    @Test("usage is found wherever it sits among the members")
    func usageFirst() {
        let body = #"{"usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}, "choices": []}"#
        #expect(usage(body) == Usage(inputTokens: 10, outputTokens: 5))
    }

    @Test("a usage without details, or with null details, counts nothing as cached or reasoning",
          arguments: [#"{"prompt_tokens": 19, "completion_tokens": 10, "total_tokens": 29}"#,
                      #"{"prompt_tokens": 19, "completion_tokens": 10, "total_tokens": 29, "prompt_tokens_details": null, "completion_tokens_details": null}"#])
    func noDetails(usageObject: String) {
        #expect(usage(Self.chatCompletion(usage: usageObject)) == Usage(inputTokens: 19, outputTokens: 10))
    }

    @Test("an embeddings response bills its prompt tokens only, whatever the encoding of the vectors",
          arguments: [#"[0.0023064255, -0.009327292, -0.0028842222]"#, #""AAAAgD8AAABAAABAQA==""#])
    func embeddings(embedding: String) {
        let body = #"""
            {
              "object": "list",
              "data": [{"object": "embedding", "embedding": \#(embedding), "index": 0}],
              "model": "text-embedding-3-small",
              "usage": {"prompt_tokens": 8, "total_tokens": 8}
            }
            """#
        #expect(usage(body) == Usage(inputTokens: 8))
    }

    @Test("no usage when it is null or absent", arguments: [
        OpenAIUsageTests.chatCompletion(usage: "null"),
        #"{"id": "chatcmpl-123", "object": "chat.completion", "choices": []}"#,
    ])
    func noUsage(body: String) {
        #expect(usage(body) == nil)
    }

    @Test("no usage from a body that is not a JSON object", arguments: ["", "[]", "null", "<html>Bad Gateway</html>"])
    func notAnObject(body: String) {
        #expect(usage(body) == nil)
    }
}
