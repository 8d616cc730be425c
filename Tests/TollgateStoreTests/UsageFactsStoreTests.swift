import Foundation
import GRDB
import PostgresNIO
import Testing
import TollgateCore
@testable import TollgateStore

@Suite("The ledger's usage facts in both stores")
struct UsageFactsStoreTests {
    static let facts = UsageFacts(client: .claudeCLI, sessionID: "3b9e5c1a-77d2-4e0f-9a61-0c2b8f4d5e6a",
                                  fingerprint: UInt64.max - 5, toolsOffered: 12, toolResults: true, messages: 9)

    @Test("client, session, fingerprint (all 64 bits), tools, tool results and messages are written and read back",
          arguments: StoreBackend.available)
    func roundTrip(_ backend: StoreBackend) throws {
        try backend.withStore { store throws in
            var agentic = request("r1", at: day0 + hour, user: "alice", team: "platform", key: "k1", cost: 70, input: 10, cached: 90, output: 5)
            agentic.facts = Self.facts
            let plain = request("r2", at: day0 + 2 * hour, user: "bob", key: "k2", cost: 3)
            try store.appendLedger([agentic, plain])
            let rows = try store.ledgerPage(limit: 10, cursor: nil).rows
            #expect(rows.map(\.id) == ["r2", "r1"])
            #expect(rows[1] == agentic)
            #expect(rows[0].facts == UsageFacts())

            var events: [UsageEvent] = []
            try store.forEachUsageEvent(from: nil, to: nil) { events.append($0) }
            #expect(events == [
                UsageEvent(at: day0 + hour, keyID: "k1", user: "alice", team: "platform", client: .claudeCLI,
                           sessionID: Self.facts.sessionID, fingerprint: UInt64.max - 5, toolResults: true, cost: Nanodollars(70),
                           usage: Usage(inputTokens: 10, cachedInputTokens: 90, outputTokens: 5)),
                UsageEvent(at: day0 + 2 * hour, keyID: "k2", user: "bob", cost: Nanodollars(3)),
            ])
        }
    }

    @Test("usage events come oldest first (then by id) within [from, to), across pages of the PostgreSQL reader",
          arguments: StoreBackend.available)
    func windowAndOrder(_ backend: StoreBackend) throws {
        try backend.withStore { store throws in
            // More rows than one page of the PostgreSQL reader, many sharing a millisecond.
            let count = PostgresStore.usagePageRows + 5
            let rows = (0..<count).map { index in
                request(String(format: "r%06d", count - index), at: day0 + Int64(index / 3), key: "k", cost: 1)
            }
            try store.appendLedger(rows.shuffled())
            var seen: [Int64] = []
            try store.forEachUsageEvent(from: nil, to: nil) { seen.append($0.at) }
            #expect(seen.count == count)
            #expect(seen == seen.sorted())
            var windowed = 0
            try store.forEachUsageEvent(from: date(day0 + 10), to: date(day0 + 20)) { event in
                windowed += 1
                #expect(event.at >= day0 + 10 && event.at < day0 + 20)
            }
            #expect(windowed == 30)
        }
    }

    @Test("rows written before the migration get its defaults: client other, no session, no tools, assisted",
          arguments: StoreBackend.available)
    func migrationDefaults(_ backend: StoreBackend) throws {
        try backend.withStore { store throws in
            let columns = ["client", "session_id", "session_fingerprint", "tools_offered", "tool_results", "messages"]
            func insertOld(no: String, yes: String) -> String {
                """
                INSERT INTO requests (id, created_at, endpoint, key_id, input_tokens, cached_input_tokens, cache_write_tokens,
                                      output_tokens, reasoning_tokens, usage_estimated, cost_nanos, status, latency_ms, stream, agentic)
                VALUES ('old', \(day0), 'chat.completions', 'k', 1, 0, 0, 1, 0, \(no), 5, 200, 3, \(no), \(yes))
                """
            }
            // Undo the migration, write a row as the schema before it had them, and migrate again.
            if let sqlite = store as? SQLiteStore {
                try sqlite.database.write { db in
                    for column in columns { try db.execute(sql: "ALTER TABLE requests DROP COLUMN \(column)") }
                    try db.execute(sql: "DELETE FROM grdb_migrations WHERE identifier = 'v9-usage-facts'")
                    try db.execute(sql: insertOld(no: "0", yes: "1"))
                }
                #expect(try store.migrate() == ["v9-usage-facts"])
            } else if let postgres = store as? PostgresStore {
                try postgres.pool.withConnection { session in
                    for column in columns { _ = try session.execute(PostgresQuery(unsafeSQL: "ALTER TABLE requests DROP COLUMN \(column)")) }
                    _ = try session.execute("DELETE FROM schema_migrations WHERE version = 6")
                    _ = try session.execute(PostgresQuery(unsafeSQL: insertOld(no: "false", yes: "true")))
                }
                #expect(try store.migrate() == ["6 usage facts"])
            }
            let row = try #require(try store.ledgerPage(limit: 1, cursor: nil).rows.first)
            #expect(row.id == "old" && row.agentic)
            #expect(row.facts == UsageFacts())
        }
    }
}
