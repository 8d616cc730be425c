import Testing
@testable import TollgateProviders

@Suite("upstreamEdits: the client's body turned into the upstream's by splicing, never by re-encoding")
struct UpstreamEditsTests {
    struct Rewrite {
        var original: [UInt8]
        var edits: [BodyEdit]
        var result: [UInt8]
        var object: [String: Any]
    }

    func rewrite(_ body: String, upstreamModel: String) throws -> Rewrite {
        let original = Array(body.utf8)
        let edits = try scanRequest(body).upstreamEdits(upstreamModel: upstreamModel)
        let result = applying(edits, to: original)
        return Rewrite(original: original, edits: edits, result: result, object: try foundationObject(result))
    }

    /// Every member but `model` and `stream_options` comes through byte for byte, and none is lost or added.
    func expectOtherMembersUntouched(_ rewrite: Rewrite, sourceLocation: SourceLocation = #_sourceLocation) throws {
        var before = try rawMembers(rewrite.original)
        var after = try rawMembers(rewrite.result)
        for key in ["model", "stream_options"] {
            before[key] = nil
            after[key] = nil
        }
        #expect(after == before, sourceLocation: sourceLocation)
    }

    /// A client body with members a gateway must not disturb: odd spacing, numbers Foundation would reformat,
    /// escapes, a base64 blob, `tool_choice` and `metadata`.
    static func body(model: String = "gpt-4o", streamMembers: String) -> String {
        #"""
        {
          "model" :  "\#(model)",
          "messages": [
            {"role": "developer", "content": "Answer in \u00e9l\u00e9gant French.\nBe brief."},
            {"role": "user", "content": [{"type": "text", "text": "Hi \ud83d\ude00"},
              {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]}
          ],
          "temperature": 0.70, "top_p": 1.0e0, "seed": -0,
          "tool_choice": {"type": "function", "function": {"name": "lookup"}},
          "parallel_tool_calls": false,
          "metadata": {"trace": "a/b\/c"},
          "user": "user-1234"\#(streamMembers)
        }
        """#
    }

    @Test("a non-stream request whose model needs no rewrite passes through with no edits",
          arguments: ["", #", "stream": false"#, #", "stream": null"#, #", "stream": false, "stream_options": null"#])
    func noEdits(streamMembers: String) throws {
        #expect(try scanRequest(Self.body(streamMembers: streamMembers)).upstreamEdits(upstreamModel: "gpt-4o").isEmpty)
    }

    @Test("a model written with escapes is not rewritten when it decodes to the upstream name")
    func escapedSameModel() throws {
        let body = #"{"model": "gpt\u002d4o\/mini", "messages": []}"#
        #expect(try scanRequest(body).upstreamEdits(upstreamModel: "gpt-4o/mini").isEmpty)
    }

    @Test("a non-stream request gets only its model replaced")
    func modelOnly() throws {
        let rewrite = try rewrite(Self.body(model: "fast", streamMembers: ""), upstreamModel: "gpt-4o-mini-2024-07-18")
        #expect(rewrite.edits.count == 1)
        #expect(rewrite.object["model"] as? String == "gpt-4o-mini-2024-07-18")
        #expect(rewrite.object["stream_options"] == nil)
        #expect(String(decoding: rewrite.result, as: UTF8.self)
            == Self.body(model: "gpt-4o-mini-2024-07-18", streamMembers: ""))
    }

    struct StreamCase: CustomTestStringConvertible, Sendable {
        var members: String
        var why: String
        var testDescription: String { why }
    }

    static let streamsWithoutUsage: [StreamCase] = [
        StreamCase(members: #", "stream": true"#, why: "no stream_options"),
        StreamCase(members: #", "stream": true, "stream_options": null"#, why: "stream_options null"),
        StreamCase(members: #", "stream_options": null, "stream": true"#, why: "stream_options null, before stream"),
        StreamCase(members: #", "stream": true, "stream_options": {"include_usage": false}"#, why: "include_usage false"),
        StreamCase(members: #", "stream": true, "stream_options":{ "include_usage" :false }"#, why: "include_usage false, spaced"),
        StreamCase(members: #", "stream": true, "stream_options": {}"#, why: "empty stream_options"),
        StreamCase(members: #", "stream": true, "stream_options": {"include_usage": null}"#, why: "include_usage null"),
    ]

    @Test("a stream asks the upstream for usage when the client did not, and keeps every other member",
          arguments: streamsWithoutUsage, [("gpt-4o", "gpt-4o"), ("fast", "gpt-4o-mini")])
    func streamAsksForUsage(_ stream: StreamCase, models: (client: String, upstream: String)) throws {
        let rewrite = try rewrite(Self.body(model: models.client, streamMembers: stream.members), upstreamModel: models.upstream)
        #expect(rewrite.object["model"] as? String == models.upstream)
        #expect(rewrite.object["stream"] as? Bool == true)
        let options = try #require(rewrite.object["stream_options"] as? [String: Any])
        #expect(options["include_usage"] as? Bool == true)
        #expect(options.count == 1)
        try expectOtherMembersUntouched(rewrite)
    }

    @Test("other stream options the client set are kept when usage is asked for",
          arguments: [#"{"include_obfuscation": false}"#, #"{"include_usage": false, "include_obfuscation": false}"#,
                      #"{"include_obfuscation": false, "include_usage": false}"#])
    func keepsOtherStreamOptions(streamOptions: String) throws {
        let rewrite = try rewrite(Self.body(streamMembers: #", "stream": true, "stream_options": "# + streamOptions),
                                  upstreamModel: "gpt-4o")
        let options = try #require(rewrite.object["stream_options"] as? [String: Any])
        #expect(options["include_usage"] as? Bool == true)
        #expect(options["include_obfuscation"] as? Bool == false)
        #expect(options.count == 2)
        try expectOtherMembersUntouched(rewrite)
    }

    @Test("a stream whose client asked for usage has nothing added",
          arguments: [#", "stream": true, "stream_options": {"include_usage": true}"#,
                      #", "stream_options": {"include_obfuscation": false, "include_usage": true}, "stream": true"#])
    func clientAskedForUsage(streamMembers: String) throws {
        let body = Self.body(streamMembers: streamMembers)
        #expect(try scanRequest(body).upstreamEdits(upstreamModel: "gpt-4o").isEmpty)
        let rewrite = try rewrite(body, upstreamModel: "gpt-4.1")
        #expect(rewrite.edits.count == 1)
        #expect(String(decoding: rewrite.result, as: UTF8.self)
            == Self.body(model: "gpt-4.1", streamMembers: streamMembers))
    }

    @Test("a stream with no stream_options gets them inserted as the first member")
    func insertedFirst() throws {
        let body = #"{"model":"fast","stream":true,"messages":[{"role":"user","content":"Hi"}]}"#
        let rewrite = try rewrite(body, upstreamModel: "gpt-4o-mini")
        #expect(String(decoding: rewrite.result, as: UTF8.self)
            == #"{"stream_options":{"include_usage":true},"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"Hi"}]}"#)
    }

    @Test("edits are sorted and do not overlap")
    func sortedEdits() throws {
        let body = #"{"stream_options": null, "model": "fast", "stream": true}"#
        let edits = try scanRequest(body).upstreamEdits(upstreamModel: "gpt-4o")
        #expect(edits.count == 2)
        #expect(zip(edits, edits.dropFirst()).allSatisfy { $0.range.upperBound <= $1.range.lowerBound })
    }

    @Test("an upstream model name needing escapes is written as a valid JSON string",
          arguments: [#"acme "quoted" model"#, #"back\slash"#, "line\nbreak", "tab\tand\rreturn", "bell\u{07}",
                      "modèle-ü", "emoji-😀", "slash/is/fine", "\u{2028}separator"])
    func escapedUpstreamModel(upstreamModel: String) throws {
        let rewrite = try rewrite(Self.body(model: "alias", streamMembers: #", "stream": true"#), upstreamModel: upstreamModel)
        #expect(rewrite.object["model"] as? String == upstreamModel)
        #expect(try scanRequest(String(decoding: rewrite.result, as: UTF8.self)).model == upstreamModel)
        try expectOtherMembersUntouched(rewrite)
    }

    @Test("a client model written with escapes is replaced whole")
    func escapedClientModel() throws {
        let rewrite = try rewrite(#"{"model": "my \"alias\" \u00e9", "messages": []}"#, upstreamModel: "gpt-4o")
        #expect(String(decoding: rewrite.result, as: UTF8.self) == #"{"model": "gpt-4o", "messages": []}"#)
    }
}
