import Foundation
import Testing
import TollgateCore
@testable import TollgateServer

@Suite("Key index: authentication without a database read")
struct KeyIndexTests {
    static func key(_ plain: String, revoked: Date? = nil, expires: Date? = nil, models: [String]? = nil) -> ResolvedKey {
        ResolvedKey(
            record: KeyRecord(id: "key_1", name: nil, hashHex: VirtualKey.hashHex(of: plain), prefix: VirtualKey.displayPrefix(of: plain),
                              userID: "user_1", teamID: nil, orgID: "org_1", allowedModels: models, expiresAt: expires,
                              revokedAt: revoked, rpm: nil, tpm: nil, createdAt: Date()),
            userName: "alice", teamName: nil, allowedModels: models.map(Set.init))
    }

    @Test("a key is found by the SHA-256 of its plain text, and only by it")
    func lookup() {
        let index = KeyIndex()
        let plain = VirtualKey.generate()
        index.upsert(Self.key(plain))
        guard case .valid(let found) = index.authenticate(plainKey: plain, now: Date()) else {
            Issue.record("the key was not found")
            return
        }
        #expect(found.userName == "alice")
        guard case .refused(nil, _) = index.authenticate(plainKey: plain + "x", now: Date()) else {
            Issue.record("a different key was accepted")
            return
        }
    }

    @Test("a key stored again replaces its entry; replaceAll swaps the whole table; the digest is the hex hash's")
    func replace() {
        let index = KeyIndex()
        let (a, b) = (VirtualKey.generate(), VirtualKey.generate())
        index.upsert(Self.key(a))
        let first = Self.key(a)
        let renamed = ResolvedKey(record: first.record, userName: "bob", teamName: nil, allowedModels: nil)
        index.upsert(renamed)
        #expect(index.count == 1)
        guard case .valid(let found) = index.authenticate(plainKey: a, now: Date()) else {
            Issue.record("the key was not found")
            return
        }
        #expect(found.userName == "bob")
        index.replaceAll([(SHA256.digest(Array(b.utf8)), Self.key(b))])
        #expect(index.count == 1)
        guard case .refused(nil, _) = index.authenticate(plainKey: a, now: Date()),
              case .valid = index.authenticate(plainKey: b, now: Date()) else {
            Issue.record("replaceAll kept the old table")
            return
        }
        index.markRevoked(hashHex: VirtualKey.hashHex(of: a), at: Date())  // not in the table: nothing happens
        #expect(index.count == 1)
        #expect(Digest256(hex: VirtualKey.hashHex(of: b)) == SHA256.digest(Array(b.utf8)))
        #expect(Digest256(hex: "00") == nil && Digest256(hex: String(repeating: "g", count: 64)) == nil)
    }

    @Test("the index stores hashes, never the plain key")
    func storesHashes() {
        let plain = VirtualKey.generate()
        let entry = Self.key(plain)
        #expect(entry.record.hashHex.count == 64)
        #expect(!entry.record.hashHex.contains(plain))
        #expect(entry.record.hashHex == Hex.encode(SHA256.hash(Array(plain.utf8))))
        #expect(entry.record.prefix.count < 12)
    }

    @Test("a revoked key is refused from the next request on, and still attributed")
    func revoked() {
        let index = KeyIndex()
        let plain = VirtualKey.generate()
        let entry = Self.key(plain)
        index.upsert(entry)
        index.markRevoked(hashHex: entry.record.hashHex, at: Date())
        guard case .refused(let attributed?, let reason) = index.authenticate(plainKey: plain, now: Date()) else {
            Issue.record("a revoked key was accepted")
            return
        }
        #expect(attributed.record.id == "key_1")
        #expect(reason.contains("revoked"))
    }

    @Test("an expired key is refused")
    func expired() {
        let index = KeyIndex()
        let plain = VirtualKey.generate()
        let now = Date()
        index.upsert(Self.key(plain, expires: now.addingTimeInterval(-1)))
        guard case .refused(_, let reason) = index.authenticate(plainKey: plain, now: now) else {
            Issue.record("an expired key was accepted")
            return
        }
        #expect(reason.contains("expired"))
    }

    @Test("a key limited to some models may use only those")
    func allowList() {
        let limited = Self.key("tg-a", models: ["gpt-4o-mini"])
        #expect(limited.mayUse("gpt-4o-mini"))
        #expect(!limited.mayUse("gpt-4o"))
        #expect(Self.key("tg-b").mayUse("anything"))
    }
}

@Suite("Deployments from config and the price catalogue")
struct DeploymentTests {
    static let catalog = try! GatewayServer.loadCatalog()

    @Test("a model with no price in config or catalogue stops the start")
    func unpriced() throws {
        let model = GatewayConfig.ModelConfig(name: "mystery", provider: .openaiCompatible, baseURL: "http://127.0.0.1:9/v1")
        #expect(throws: StartupError.self) { try GatewayServer.deployment(for: model, catalog: Self.catalog) }
    }

    @Test("a refusal about a model's price names the config file, line and field")
    func priceRefusalsNameTheLine() throws {
        let config = try GatewayConfig.parse(yaml: """
            models:
              - { name: mystery, provider: openai-compatible, base_url: "http://127.0.0.1:9/v1" }
              - name: my-ft
                provider: openai
                price: { input_per_mtok: 1, output_per_mtok: 2 }
            """, file: "tollgate.yaml", environment: [:])
        #expect(throws: ConfigError(file: "tollgate.yaml", line: 2, field: "models[0]", problem: "model 'mystery' has no price in the catalogue: give it `price: { input_per_mtok: …, output_per_mtok: … }`, or `price: free` for a self-hosted model")) {
            try GatewayServer.deployment(for: config.models[0], catalog: Self.catalog)
        }
        #expect(throws: ConfigError(file: "tollgate.yaml", line: 3, field: "models[1].price", problem: "model 'my-ft' bills cache reads, and no rate for them is given or known: give `cached_input_per_mtok` (openai prices them per model)")) {
            try GatewayServer.deployment(for: config.models[1], catalog: Self.catalog)
        }
    }

    @Test("an Anthropic price override without cache-write rates bills writes as Anthropic does")
    func anthropicOverrideCompleted() throws {
        let config = try GatewayConfig.parse(yaml: """
            models:
              - { name: c, provider: anthropic, upstream_model: my-claude, price: { input_per_mtok: "3.00", cached_input_per_mtok: "0.30", output_per_mtok: "15.00" } }
            """, file: "tollgate.yaml", environment: [:])
        let deployment = try GatewayServer.deployment(for: config.models[0], catalog: Self.catalog)
        #expect(deployment.price.rates.cacheWrite == Nanodollars(decimalString: "3.75"))
        #expect(deployment.price.rates.cacheWrite1h == Nanodollars(decimalString: "6"))
        #expect(deployment.price.cost(of: Usage(cacheWriteTokens: 40)) == Nanodollars(150_000))
    }

    @Test("every Anthropic entry of the catalogue prices cache reads, writes and one-hour writes")
    func catalogueAnthropicComplete() {
        for entry in Self.catalog.entries where entry.provider == "anthropic" {
            let rates = [entry.price.rates] + (entry.price.longContext.map { [$0.rates] } ?? [])
            for rate in rates {
                #expect(rate.cachedInput != nil && rate.cacheWrite != nil && rate.cacheWrite1h != nil, "\(entry.name)")
                #expect(rate.cacheWrite1h == Nanodollars(rate.input.value * 2), "\(entry.name)")
            }
        }
    }

    @Test("price: free is the one way to bill zero")
    func free() throws {
        var model = GatewayConfig.ModelConfig(name: "local", provider: .openaiCompatible, baseURL: "http://127.0.0.1:8000/v1")
        model.price = .free
        let deployment = try GatewayServer.deployment(for: model, catalog: Self.catalog)
        #expect(deployment.price.cost(of: Usage(inputTokens: 1000, outputTokens: 1000)) == .zero)
    }

    @Test("a catalogue model gets the catalogue's price and the provider's default base URL")
    func catalogued() throws {
        let model = GatewayConfig.ModelConfig(name: "gpt-4o-mini", provider: .openai, apiKey: "sk-x")
        let deployment = try GatewayServer.deployment(for: model, catalog: Self.catalog)
        #expect(deployment.price == Self.catalog.entry(for: "gpt-4o-mini")?.price)
        guard case .http(let target, let basePath, let host) = deployment.endpoint else {
            Issue.record("not an HTTP deployment")
            return
        }
        #expect(target == UpstreamTarget(tls: true, host: "api.openai.com", port: 443))
        #expect(basePath == "/v1")
        #expect(host == "api.openai.com")
    }

    @Test("a base URL with a port keeps it in the Host header")
    func port() throws {
        var model = GatewayConfig.ModelConfig(name: "vllm", provider: .openaiCompatible, baseURL: "http://127.0.0.1:8000/v1/")
        model.price = .free
        let deployment = try GatewayServer.deployment(for: model, catalog: Self.catalog)
        guard case .http(let target, let basePath, let host) = deployment.endpoint else {
            Issue.record("not an HTTP deployment")
            return
        }
        #expect(target == UpstreamTarget(tls: false, host: "127.0.0.1", port: 8000))
        #expect(basePath == "/v1")
        #expect(host == "127.0.0.1:8000")
    }
}
