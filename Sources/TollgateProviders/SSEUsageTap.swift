import TollgateCore

/// Watches an OpenAI-format event stream as it passes, to find the usage it reports and to count what was
/// generated if it never reports any. When the client did not ask for usage (the gateway asked for it on
/// its behalf), the tap also removes the usage-only chunk so the client sees what the provider would have
/// sent it.
///
/// Events are separated by a blank line. Bytes pass through untouched (`.all`) unless an event must be
/// removed, or, in hiding mode, an event is still incomplete at the end of a chunk (it is held back until
/// its end arrives, because it might be the one to remove).
public struct SSEUsageTap: Sendable {
    public enum Forward: Equatable, Sendable {
        /// Forward the chunk exactly as it came.
        case all
        /// Forward these bytes instead (possibly none).
        case bytes([UInt8])
    }

    public let hidesUsageChunk: Bool
    public private(set) var usage: Usage?
    /// Events that carried generated content (text, tool-call arguments): about one token each.
    public private(set) var contentEvents = 0
    public private(set) var sawDone = false
    private var partial: [UInt8] = []

    public init(hidesUsageChunk: Bool) {
        self.hidesUsageChunk = hidesUsageChunk
    }

    public mutating func feed(_ chunk: UnsafeRawBufferPointer) -> Forward {
        if partial.isEmpty {
            return process(chunk, heldBefore: false)
        }
        var joined = partial
        joined.append(contentsOf: chunk)
        partial.removeAll(keepingCapacity: true)
        return joined.withUnsafeBytes { process($0, heldBefore: true) }
    }

    /// At the end of the stream: an event left without its closing blank line is read, and returned to
    /// forward if it was held back.
    public mutating func finish() -> [UInt8] {
        let held = partial
        partial.removeAll()
        guard !held.isEmpty else { return [] }
        let usageOnly = held.withUnsafeBytes { inspect($0) }
        return hidesUsageChunk && !usageOnly ? held : []
    }

    private mutating func process(_ bytes: UnsafeRawBufferPointer, heldBefore: Bool) -> Forward {
        var kept: [UInt8] = []
        var dropped = false
        var start = 0
        var index = 0
        let count = bytes.count
        while index < count {
            let byte = bytes[index]
            guard byte == 0x0A || byte == 0x0D else { index += 1; continue }
            // Blank line: "\n\n", or "\r\n\r\n".
            var end: Int?
            if byte == 0x0A, index + 1 < count, bytes[index + 1] == 0x0A {
                end = index + 2
            } else if byte == 0x0D, index + 3 < count, bytes[index + 1] == 0x0A, bytes[index + 2] == 0x0D, bytes[index + 3] == 0x0A {
                end = index + 4
            }
            guard let eventEnd = end else { index += 1; continue }
            let event = UnsafeRawBufferPointer(rebasing: bytes[start..<eventEnd])
            let isUsageOnly = inspect(event)
            if hidesUsageChunk && isUsageOnly {
                dropped = true
            } else if hidesUsageChunk {
                kept.append(contentsOf: event)
            }
            start = eventEnd
            index = eventEnd
        }
        if start < count {
            partial.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[start..<count]))
        }
        guard hidesUsageChunk else { return .all }
        if !heldBefore && !dropped && start == count { return .all }
        return .bytes(kept)
    }

    /// Reads one complete event; returns whether it is the usage-only chunk.
    private mutating func inspect(_ event: UnsafeRawBufferPointer) -> Bool {
        guard let payload = Self.dataPayload(event) else { return false }
        let data = UnsafeRawBufferPointer(rebasing: event[payload])
        if data.count == 6, data.elementsEqual("[DONE]".utf8) {
            sawDone = true
            return false
        }
        if Self.hasNonEmptyString(data, after: #""content":""#) || Self.hasNonEmptyString(data, after: #""arguments":""#) {
            contentEvents += 1
        }
        guard Self.find(data, #""usage""#) != nil else { return false }
        var scanner = JSONScanner(data)
        var foundUsage: Usage?
        var choicesEmpty = false
        do {
            try scanner.forEachMember { (scanner, key) throws(JSONScanner.Failure) in
                switch key {
                case "usage" where try scanner.peekKind() == .object:
                    foundUsage = try OpenAIUsage.readUsage(&scanner)
                case "choices" where try scanner.peekKind() == .array:
                    let range = try scanner.skipValue()
                    choicesEmpty = !OpenAIRequestFields.arrayIsNonEmpty(data, range)
                default:
                    try scanner.skipValue()
                }
            }
        } catch {
            return false
        }
        guard let foundUsage else { return false }
        usage = foundUsage
        return choicesEmpty
    }

    /// The range of the event's `data:` value (single-line data, as the providers send).
    static func dataPayload(_ event: UnsafeRawBufferPointer) -> Range<Int>? {
        var lineStart = 0
        while lineStart < event.count {
            var lineEnd = lineStart
            while lineEnd < event.count, event[lineEnd] != 0x0A, event[lineEnd] != 0x0D { lineEnd += 1 }
            let line = UnsafeRawBufferPointer(rebasing: event[lineStart..<lineEnd])
            if line.count >= 5, line.starts(with: "data:".utf8) {
                var valueStart = lineStart + 5
                if valueStart < lineEnd, event[valueStart] == 0x20 { valueStart += 1 }
                return valueStart..<lineEnd
            }
            lineStart = lineEnd + 1
        }
        return nil
    }

    static func find(_ haystack: UnsafeRawBufferPointer, _ needle: StaticString) -> Int? {
        let n = needle.utf8CodeUnitCount
        guard n > 0, haystack.count >= n else { return nil }
        let first = needle.utf8Start[0]
        var i = 0
        outer: while i <= haystack.count - n {
            if haystack[i] == first {
                for j in 1..<n where haystack[i + j] != needle.utf8Start[j] { i += 1; continue outer }
                return i
            }
            i += 1
        }
        return nil
    }

    static func hasNonEmptyString(_ data: UnsafeRawBufferPointer, after marker: StaticString) -> Bool {
        guard let at = find(data, marker) else { return false }
        let next = at + marker.utf8CodeUnitCount
        return next < data.count && data[next] != UInt8(ascii: "\"")
    }
}
