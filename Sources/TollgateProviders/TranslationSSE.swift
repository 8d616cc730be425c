/// Splits a server-sent event stream into events at blank lines (`\n\n` or `\r\n\r\n`), wherever the
/// byte chunks were cut. Only an incomplete event is copied; complete ones are handed over in place.
struct SSEEventSplitter: Sendable {
    private var partial: [UInt8] = []

    /// Whether an incomplete event is held back, waiting for its end.
    var isHolding: Bool { !partial.isEmpty }

    /// Calls `body` with each event that `chunk` completes, blank line included.
    mutating func feed(_ chunk: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) -> Void) {
        if partial.isEmpty {
            split(chunk, body)
            return
        }
        var joined = partial
        joined.append(contentsOf: chunk)
        partial.removeAll(keepingCapacity: true)
        joined.withUnsafeBytes { split($0, body) }
    }

    /// At the end of the stream: an event left without its closing blank line.
    mutating func finish(_ body: (UnsafeRawBufferPointer) -> Void) {
        let held = partial
        partial.removeAll()
        if !held.isEmpty { held.withUnsafeBytes(body) }
    }

    private mutating func split(_ bytes: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) -> Void) {
        var start = 0
        var index = 0
        let count = bytes.count
        while index < count {
            let byte = bytes[index]
            guard byte == 0x0A || byte == 0x0D else { index += 1; continue }
            var end: Int?
            if byte == 0x0A, index + 1 < count, bytes[index + 1] == 0x0A {
                end = index + 2
            } else if byte == 0x0D, index + 3 < count, bytes[index + 1] == 0x0A, bytes[index + 2] == 0x0D, bytes[index + 3] == 0x0A {
                end = index + 4
            }
            guard let eventEnd = end else { index += 1; continue }
            body(UnsafeRawBufferPointer(rebasing: bytes[start..<eventEnd]))
            start = eventEnd
            index = eventEnd
        }
        if start < count {
            partial.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[start..<count]))
        }
    }
}

/// Reading and writing the events of the two stream formats.
enum SSEFormat {
    /// The event's `data:` payload, or nil when it has none.
    static func data(of event: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer? {
        SSEUsageTap.dataPayload(event).map { UnsafeRawBufferPointer(rebasing: event[$0]) }
    }

    static func isDone(_ data: UnsafeRawBufferPointer) -> Bool {
        data.count == 6 && data.elementsEqual("[DONE]".utf8)
    }

    /// An OpenAI stream event: `data: {…}` and a blank line.
    static func openAIEvent(_ data: JSON) -> [UInt8] {
        var out = Array("data: ".utf8)
        data.write(into: &out)
        out += [0x0A, 0x0A]
        return out
    }

    static let openAIDone = Array("data: [DONE]\n\n".utf8)

    /// An Anthropic stream event: `event: <type>`, `data: {…}` (whose `type` repeats the name), a blank line.
    static func anthropicEvent(_ type: String, _ data: [String: JSON]) -> [UInt8] {
        var object = data
        object["type"] = .string(type)
        var out = Array("event: \(type)\ndata: ".utf8)
        JSON.object(object).write(into: &out)
        out += [0x0A, 0x0A]
        return out
    }
}
