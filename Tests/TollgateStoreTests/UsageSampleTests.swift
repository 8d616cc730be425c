import Foundation
import Testing
import TollgateCore
@testable import TollgateStore

@Suite("Store: usage samples for the self-host estimate")
struct UsageSampleTests {
    @Test("one model's rows in [from, to), oldest first, with every column the estimate reads", arguments: StoreBackend.available)
    func window(_ backend: StoreBackend) throws {
        try backend.withStore { store throws in
            var routed = request("req_routed", at: day0 + 2000, model: "llama-a", cost: 5, input: 1, output: 1)
            routed.route = "cheap"
            var full = request("req_full", at: day0 + 1000, model: "llama-a", cost: 123_456, input: 900, cached: 100, output: 50)
            full.usage.cacheWriteTokens = 30
            full.usage.cacheWrite1hTokens = 10
            full.usage.reasoningTokens = 7
            full.latencyMs = 4321
            try store.appendLedger([
                request("req_before", at: day0 - 1, model: "llama-a", cost: 1),
                full,
                request("req_other", at: day0 + 1500, model: "gpt-4o", cost: 2),
                request("req_last", at: day0 + hour - 1, model: "llama-a", cost: 3, input: 5, output: 6),
                request("req_at_end", at: day0 + hour, model: "llama-a", cost: 4),
                routed,
            ].shuffled())
            var seen: [LedgerUsageSample] = []
            try store.forEachUsageSample(model: "llama-a", from: date(day0), to: date(day0 + hour)) { seen.append($0) }
            #expect(seen.map(\.startMilliseconds) == [day0 + 1000, day0 + 2000, day0 + hour - 1])
            #expect(seen[0] == LedgerUsageSample(
                startMilliseconds: day0 + 1000, latencyMilliseconds: 4321,
                usage: Usage(inputTokens: 900, cachedInputTokens: 100, cacheWriteTokens: 30, cacheWrite1hTokens: 10, outputTokens: 50,
                             reasoningTokens: 7),
                cost: Nanodollars(123_456)))
            // A route's name reaches the rows that asked for it, whatever model served them.
            var viaRoute: [Int64] = []
            try store.forEachUsageSample(model: "cheap", from: date(day0), to: date(day0 + hour)) { viaRoute.append($0.cost.value) }
            #expect(viaRoute == [5])
        }
    }

    @Test("25,000 rows arrive one at a time, in order, across the store's pages", arguments: StoreBackend.available)
    func manyRows(_ backend: StoreBackend) throws {
        try backend.withStore { store throws in
            // Pairs share a millisecond, so a page boundary can fall between two rows of one time.
            let rows = (0..<25_000).map { index in
                request(String(format: "req_%05d", index), at: day0 + Int64(index / 2), model: "m", cost: Int64(index))
            }
            try store.appendLedger(rows)
            var count = 0
            var total: Int64 = 0
            var previous = Int64.min
            try store.forEachUsageSample(model: "m", from: date(day0), to: date(day0 + hour)) { sample in
                #expect(sample.startMilliseconds >= previous)
                previous = sample.startMilliseconds
                count += 1
                total += sample.cost.value
            }
            #expect(count == 25_000)
            #expect(total == (0..<25_000).reduce(0) { $0 + Int64($1) })
        }
    }
}
