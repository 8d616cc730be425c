import Foundation
import Synchronization
import Testing
import TollgateCore
@testable import TollgateStore

@Suite("Database URLs")
struct DatabaseURLTests {
    @Test("a postgres URL gives host, port, user, password and database, and shows no password")
    func postgresURL() throws {
        let endpoint = try PostgresEndpoint(url: "postgres://tg%40ops:p%3Ass@db.internal:6543/ledger?sslmode=require")
        #expect(endpoint.host == "db.internal" && endpoint.port == 6543 && endpoint.database == "ledger")
        #expect(endpoint.user == "tg@ops" && endpoint.password == "p:ss" && endpoint.tls == .require)
        #expect(endpoint.description == "postgres://tg@ops@db.internal:6543/ledger")
        let defaults = try PostgresEndpoint(url: "postgresql://alice:secret@127.0.0.1")
        #expect(defaults.port == 5432 && defaults.database == "alice" && defaults.tls == .disable)
        #expect(try PostgresEndpoint(url: "postgres://u@[::1]:5433/d").hostAndPort == "[::1]:5433")
    }

    @Test("a URL that does not parse is refused without showing its password")
    func badURLs() {
        for url in ["postgres://secretless@/db", "postgres://:hunter2@host/db", "postgres://u:hunter2@host/db?sslmode=maybe",
                    "postgres://u:hunter2@host/db?search_path=x", "mysql://u:hunter2@host/db"] {
            do {
                _ = try StoreLocation(url: url)
                Issue.record("\(url) was accepted")
            } catch {
                #expect(!"\(error)".contains("hunter2"), "\(error)")
            }
        }
    }

    @Test("sqlite: URLs name a path, with or without //")
    func sqliteURL() throws {
        for url in ["sqlite:data/t.db", "sqlite://data/t.db"] {
            guard case .sqlite(let path) = try StoreLocation(url: url) else { Issue.record("\(url)"); continue }
            #expect(path == "data/t.db")
        }
        #expect(try StoreLocation(url: "sqlite::memory:").kind == "sqlite")
        #expect(try StoreLocation(url: "postgres://u@h/d").kind == "postgres")
    }
}

@Suite("PostgreSQL store without a server")
struct PostgresUnreachableTests {
    @Test("an unreachable server is named by host and port, never with the password")
    func unreachable() throws {
        let store = try PostgresStore(url: "postgres://tollgate:hunter2@127.0.0.1:1/x", migrate: false)
        #expect {
            try store.ping()
        } throws: { error in
            guard case StoreError.unavailable(let message) = error else { return false }
            return message.contains("127.0.0.1:1") && !message.contains("hunter2")
        }
    }
}

@Suite("SQLite store")
struct SQLiteStoreTests {
    @Test("an in-memory store is migrated on opening, and migrating again changes nothing")
    func inMemory() throws {
        let store = try SQLiteStore.inMemory()
        let org = try store.defaultOrg()
        #expect(try store.migrate() == [])
        #expect(try store.listOrgs() == [org])
    }

    @Test("migrate names the migrations it applied")
    func migrationNames() throws {
        let store = try SQLiteStore(path: ":memory:", migrate: false)
        #expect(try store.migrate() == ["v1", "v2-settings", "v3-budgets", "v4-fleet", "v5-cache-write-1h", "v6-forecast-crossing", "v7-spend-rollups",
                                         "v8-viewer-keys", "v9-usage-facts"])
        #expect(try store.migrate() == [])
    }
}

@Suite("PostgreSQL store", .enabled(if: StoreBackend.postgresURL != nil, Comment(rawValue: StoreBackend.postgresSkipped)))
struct PostgresStoreTests {
    @Test("four instances starting at once on an empty database apply each migration once")
    func concurrentMigrations() throws {
        let database = try PostgresScratch.createDatabase()
        defer { PostgresScratch.dropDatabase(database.name) }
        let stores = try (0..<4).map { _ in try PostgresStore(url: database.url, migrate: false) }
        defer { stores.forEach { $0.close() } }
        let applied = Mutex<[String]>([])
        let failures = Mutex<[String]>([])
        onThreads(stores.count) { index in
            do {
                let names = try stores[index].migrate()
                applied.withLock { $0 += names }
            } catch {
                failures.withLock { $0.append("\(error)") }
            }
        }
        #expect(failures.withLock { $0 } == [])
        #expect(applied.withLock { $0 }.sorted() == PostgresMigration.all.map { "\($0.version) \($0.name)" }.sorted())
        #expect(try stores[0].listOrgs().map(\.name) == ["default"])
        #expect(try stores[1].migrate() == [])
    }

    @Test("a wrong password is refused by the server, and the message does not repeat it")
    func wrongPassword() throws {
        var components = try #require(URLComponents(string: try PostgresScratch.baseURL()))
        components.password = "not-the-password"
        let store = try PostgresStore(url: try #require(components.string), migrate: false)
        #expect {
            try store.ping()
        } throws: { error in
            guard case StoreError.unavailable(let message) = error else { return false }
            return message.contains("refused") && !message.contains("not-the-password")
        }
    }

    @Test("a connection the server closed is replaced on its next use")
    func reconnect() throws {
        let database = try PostgresScratch.createDatabase()
        defer { PostgresScratch.dropDatabase(database.name) }
        let store = try PostgresStore(url: database.url, connections: 1)
        defer { store.close() }
        try store.ping()
        try #require(PostgresScratch.admin).pool.withConnection { session in
            let ended = try session.query("""
                SELECT pg_terminate_backend(pid) AS ended FROM pg_stat_activity WHERE datname = \(database.name)
                """)
            #expect(ended.count == 1)
        }
        // pg_terminate_backend only signals the backend: give it time to close the socket, so that the
        // first call finds the connection dead (and fails); the one after reconnects.
        Thread.sleep(forTimeInterval: 0.3)
        if (try? store.ping()) == nil { try store.ping() }
        #expect(try store.defaultOrg().name == "default")
    }

    @Test("callers wait while every connection is busy, and never use more connections than the pool holds")
    func poolLimit() throws {
        let store = try PostgresStore(url: try PostgresScratch.baseURL(), connections: 2, migrate: false)
        defer { store.close() }
        let inFlight = Mutex((now: 0, most: 0))
        onThreads(8) { _ in
            _ = try? store.pool.withConnection { session in
                inFlight.withLock { $0.now += 1; $0.most = max($0.most, $0.now) }
                defer { inFlight.withLock { $0.now -= 1 } }
                return try session.execute("SELECT pg_sleep(0.05)")
            }
        }
        #expect(inFlight.withLock { $0.most } == 2)
    }
}
