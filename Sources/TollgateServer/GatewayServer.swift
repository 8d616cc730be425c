import Foundation
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import ServiceLifecycle
import TollgateCore
import TollgateStore

/// What `tollgate serve` was asked for on its command line; each set value overrides the config file.
public struct ServeOptions: Sendable {
    public var configPath: String?
    public var host: String?
    public var port: Int?
    public var database: String?
    public var demo: Bool

    public init(configPath: String? = nil, host: String? = nil, port: Int? = nil, database: String? = nil, demo: Bool = false) {
        self.configPath = configPath
        self.host = host
        self.port = port
        self.database = database
        self.demo = demo
    }
}

public enum StartupError: Error, CustomStringConvertible {
    /// A model's price is missing or incomplete (for a model the config file did not declare).
    case price(String)
    case badBaseURL(model: String, url: String)
    case database(String)
    case catalogue(String)
    case badWebhookURL(String)
    case routerWeights(route: String, detail: String)
    case deploymentsDisagree(model: String, field: String)
    case economics(String)

    public var description: String {
        switch self {
        case .price(let problem): problem
        case .badBaseURL(let model, let url): "model '\(model)': base_url '\(url)' is not an http(s) URL with a host"
        case .database(let message): message
        case .catalogue(let message): "the price catalogue shipped with Tollgate is broken: \(message)"
        case .badWebhookURL(let url): "webhooks.url '\(url)' is not an http(s) URL with a host"
        case .routerWeights(let route, let detail): "routes.\(route).weights: \(detail)"
        case .economics(let message): "economics data: \(message)"
        case .deploymentsDisagree(let model, let field):
            "the deployments of model '\(model)' differ in \(field): entries sharing a name are one model, billed and routed alike (give them the same \(field), or different names behind a loadbalance route)"
        }
    }
}

/// Builds the gateway from its config and runs it until SIGTERM or SIGINT: then it stops accepting,
/// drains in-flight requests and streams, flushes the ledger and closes the upstream pools.
public enum GatewayServer {
    public static func run(options: ServeOptions, environment: [String: String] = ProcessInfo.processInfo.environment) async throws {
        #if os(Linux)
        // A fixed mmap threshold: blocks of 256 KiB and more (a large admin answer, a bulk load's arrays) are
        // mapped on their own and unmapped when freed. glibc's default threshold rises to the largest block
        // ever freed, after which such blocks stay in the heap, resident, for the life of the process.
        _ = glibcMallocOption(glibcMmapThreshold, 256 << 10)
        #endif
        var config = try options.configPath.map { try GatewayConfig.load(path: $0, environment: environment) } ?? GatewayConfig()
        let logger = {
            var logger = config.log.format == .json ? Logger(label: "tollgate", factory: { JSONLogHandler(label: $0) })
                                                    : Logger(label: "tollgate")
            logger.logLevel = config.log.level.flatMap { Logger.Level(rawValue: $0.rawValue) }
                ?? environment["LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .info
            return logger
        }()
        if let host = options.host { config.server.host = host }
        if let port = options.port { config.server.port = port }
        if let database = options.database ?? environment["TOLLGATE_DB"] { config.database.url = database }

        let catalog = try loadCatalog()
        let economics = try loadEconomics(file: config.economicsFile)
        let deployments = try buildDeployments(config: config, catalog: catalog, demo: options.demo,
                                               useEnvironmentProviders: options.configPath == nil, environment: environment,
                                               logger: logger)
        let location = try storeLocation(config.database.url)
        let store = try openStore(location, logger: logger)
        let adminKey = try adminKey(store: store, environment: environment)

        let ledger = LedgerWriter(store: store, flushInterval: .milliseconds(config.ledger.flushMs))
        let keys = KeyIndex()
        let group = MultiThreadedEventLoopGroup.singleton
        let rateLimits = Dictionary(config.rateLimits.map { limit in
            ("\(limit.scope.rawValue):\(limit.name)", RateLimit(requestsPerMinute: limit.rpm, tokensPerMinute: limit.tpm))
        }, uniquingKeysWith: { _, last in last })
        let pools = try await UpstreamPools.make(group: group, tlsContext: try makeTLSContext(environment: environment))
        let webhook = try config.webhooks.map { settings in
            guard let endpoint = WebhookSender.endpoint(url: settings.url) else {
                throw StartupError.badWebhookURL(settings.url)
            }
            return WebhookSender(endpoint: endpoint, secret: settings.secret, pools: pools, eventLoop: group.next(), logger: logger)
        }
        let clock = GatewayClock(adjustable: environment["TOLLGATE_TEST_CLOCK"] == "1")
        // On PostgreSQL, budgets are shared by every instance on the same database (leases), and what any
        // instance changes reaches the others through the store's change feed.
        var fleet: FleetBudgets?
        var changesSeen: Int64 = 0
        if case .postgres = location {
            fleet = FleetBudgets(store: store, clock: clock,
                                 settings: .init(leaseTTL: Double(config.database.leaseTTLMs) / 1000,
                                                 policy: config.database.onLoss),
                                 logger: logger)
            changesSeen = try store.latestChangeID()
        }
        let budgets = BudgetLedger(store: store, ledger: ledger, webhook: webhook, fleet: fleet, logger: logger)
        try budgets.load(now: clock.now())
        try applyConfiguredBudgets(config.budgets, store: store, budgets: budgets, now: clock.now(), logger: logger)
        let expiry = group.next().scheduleRepeatedTask(initialDelay: .seconds(30), delay: .seconds(30)) { _ in
            budgets.expire(now: clock.now())
        }
        let metrics = config.metrics.enabled ? GatewayMetrics(modelNames: deployments.map(\.name), perUser: config.metrics.perUser) : nil
        if let metrics {
            let flush = metrics.ledgerFlush
            ledger.onFlushed { duration, _ in
                let (seconds, attoseconds) = duration.components
                flush.recordNanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
            }
        }
        let tracer = try config.tracing.map { settings in
            let tracer = try RequestTracer(settings, logger: logger)
            logger.info("traces of /v1 requests exported to \(settings.tracesURL) (\(settings.wireProtocol.rawValue))")
            return tracer
        }
        let gateway = Gateway(
            models: ModelRegistry(deployments, routes: config.routes, routers: try loadRouters(config.routes)), keys: keys, admission: Admission(configured: rateLimits), budgets: budgets, clock: clock,
            ledger: ledger, pools: pools,
            settings: ProxySettings(
                maxBodyBytes: config.server.maxBodyBytes,
                idleTimeout: .milliseconds(Int64(config.server.timeouts.idleMs)),
                requestHeadTimeout: .milliseconds(Int64(config.server.requestHeadTimeoutMs))),
            logger: logger, metrics: metrics, tracer: tracer)

        let forecasts = BudgetForecasts(store: store, budgets: budgets, ledger: ledger, webhook: webhook,
                                        settings: ForecastSettings(windowDays: config.forecasts.windowDays), logger: logger)
        let admin = AdminAPI(store: store, keys: keys, budgets: budgets, forecasts: forecasts, clock: clock, models: gateway.models,
                             health: gateway.health, calibrations: gateway.calibrations, ledger: ledger, adminKey: adminKey,
                             databaseKind: location.kind, traffic: gateway.traffic, economics: economics)
        try admin.loadKeys()
        #if os(Linux)
        // Loading keys and budgets leaves freed rows and arrays in malloc's arenas: give that memory back.
        _ = glibcMallocTrim(0)
        #endif
        let sync = fleet.map { fleet in
            fleet.start(budgets: budgets)
            let sync = FleetSync(store: store, lastSeen: changesSeen, logger: logger,
                                 reloadKeys: { try admin.loadKeys() },
                                 reloadBudget: { try budgets.reload(id: $0, now: clock.now()) })
            sync.start()
            logger.info("budgets shared with the fleet on this database as instance \(fleet.instance)")
            return sync
        }
        let router = Router(context: BasicRequestContext.self)
        admin.addRoutes(to: router)
        let (templates, stylesheet) = try Dashboard.loadTemplates()
        Dashboard(store: store, budgets: budgets, models: gateway.models, health: gateway.health, calibrations: gateway.calibrations,
                  clock: clock, access: admin.access, forecasts: forecasts,
                  templates: templates, stylesheet: stylesheet).addRoutes(to: router)
        if let metrics {
            MetricsEndpoint(metrics: metrics, isPublic: config.metrics.isPublic, access: admin.access, gateway: gateway,
                            budgets: budgets).addRoutes(to: router)
        }

        let host = config.server.host
        let port = config.server.port
        let names = deployments.map { $0.isSimulated ? "\($0.name) (simulated)" : $0.name }.sorted()
        let app = Application(
            router: router,
            server: HTTPServerBuilder { responder in TollgateChannel(responder: responder, gateway: gateway) },
            configuration: ApplicationConfiguration(address: .hostname(host, port: port), serverName: nil),
            onServerRunning: { channel in
                let address = channel.localAddress.map { "\($0.ipAddress ?? host):\($0.port ?? port)" } ?? "\(host):\(port)"
                logger.info("Tollgate listening on http://\(address) — models: \(names.joined(separator: ", "))")
            },
            eventLoopGroupProvider: .shared(group),
            logger: logger)

        // Stopped in reverse order: the tracer's exporter last, after the server drained and its last spans ended.
        let services: [any Service] = (tracer.map { [$0.service] } ?? []) + [
            LedgerService(ledger: ledger),
            ForecastService(forecasts: forecasts, clock: clock, interval: .milliseconds(config.forecasts.checkMs)), app,
        ]
        let serviceGroup = ServiceGroup(configuration: .init(
            services: services.map { .init(service: $0) },
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        try await serviceGroup.run()
        expiry.cancel()
        // The ledger's last batch is written: what this instance still holds of shared budgets goes back.
        sync?.stop()
        fleet?.stop(budgets: budgets)
        await gateway.pools.closeAll()
        store.close()
        logger.info("Tollgate stopped; ledger flushed")
    }

    /// Budgets from the config file are stored like those set through the admin API (upsert); one naming
    /// a subject that does not exist yet is skipped with a warning, not fatal: the admin may create it later.
    static func applyConfiguredBudgets(_ configured: [GatewayConfig.BudgetConfig], store: any Store, budgets: BudgetLedger,
                                       now: Date, logger: Logger) throws {
        for budget in configured {
            guard let subject = try BudgetSubject.resolve(scope: budget.scope.rawValue, reference: budget.name, store: store) else {
                logger.warning("config budget for \(budget.scope.rawValue) '\(budget.name)' skipped: no such \(budget.scope.rawValue)")
                continue
            }
            let ppm = { (share: Double) in Int((share * 1_000_000).rounded()) }
            var limitUSD: Nanodollars?
            var limitTokens: Int?
            switch budget.limit {
            case .usd(let usd): limitUSD = usd
            case .tokens(let tokens): limitTokens = tokens
            }
            try budgets.define(BudgetRecord(
                id: EntityID.make("budget"), scope: budget.scope.rawValue, subjectID: subject.id, subjectName: subject.name,
                model: budget.model, limitUSD: limitUSD, limitTokens: limitTokens, period: budget.period.rawValue,
                timeZone: budget.timezone.identifier, mode: budget.mode.rawValue, onExhaust: budget.onExhaust.rawValue,
                softThresholdPPM: budget.softThreshold.map(ppm), graceUSD: budget.grace,
                annualSalaryUSD: budget.salary?.annualSalary, salarySharePPM: budget.salary.map { ppm($0.share) },
                createdAt: now, updatedAt: now), now: now)
        }
    }

    /// The trained router of every `learned` route: its `weights` file, else the one shipped.
    static func loadRouters(_ routes: [GatewayConfig.RouteConfig]) throws -> [String: LearnedRouterWeights] {
        var routers: [String: LearnedRouterWeights] = [:]
        for route in routes {
            guard case .learned(_, _, _, let path, _) = route.strategy else { continue }
            do {
                routers[route.name] = try path.map { try LearnedRouterWeights.parse(json: Array(try Data(contentsOf: URL(fileURLWithPath: $0)))) }
                    ?? DefaultRouterWeights.load()
            } catch {
                throw StartupError.routerWeights(route: route.name, detail: "\(error)")
            }
        }
        return routers
    }

    static func loadCatalog() throws -> PriceCatalog {
        guard let url = Bundle.module.url(forResource: "prices", withExtension: "json") else {
            throw StartupError.catalogue("prices.json is missing from the bundle")
        }
        do {
            return try PriceCatalog.parse(json: Array(try Data(contentsOf: url)))
        } catch {
            throw StartupError.catalogue("\(error)")
        }
    }

    /// The shipped `economics.json`, with the config's `economics.file` laid over it.
    public static func loadEconomics(file: String?) throws -> EconomicsData {
        guard let url = Bundle.module.url(forResource: "economics", withExtension: "json") else {
            throw StartupError.economics("economics.json is missing from the bundle")
        }
        do {
            let shipped = try EconomicsData.parse(json: try Data(contentsOf: url), origin: "economics.json (shipped)")
            guard let file else { return shipped }
            let text: Data
            do {
                text = try Data(contentsOf: URL(fileURLWithPath: file))
            } catch {
                throw StartupError.economics("cannot read economics.file \(file): \(error.localizedDescription)")
            }
            return shipped.overlaid(with: try EconomicsOverlay.parse(json: text, origin: file))
        } catch let error as EconomicsDataError {
            throw StartupError.economics("\(error)")
        }
    }

    static func buildDeployments(config: GatewayConfig, catalog: PriceCatalog, demo: Bool, useEnvironmentProviders: Bool,
                                 environment: [String: String], logger: Logger) throws -> [Deployment] {
        var models = config.models
        let configured = Set(models.map(\.name))
        if demo {
            for name in ["demo-small", "demo-large"] where !configured.contains(name) {
                models.append(GatewayConfig.ModelConfig(name: name, provider: .demo))
            }
        }
        if useEnvironmentProviders, let key = environment["OPENAI_API_KEY"], !key.isEmpty {
            for entry in catalog.entries where entry.provider == "openai" && !configured.contains(entry.name) {
                models.append(GatewayConfig.ModelConfig(name: entry.name, provider: .openai, apiKey: key))
            }
        }
        if useEnvironmentProviders, let key = environment["ANTHROPIC_API_KEY"], !key.isEmpty {
            for entry in catalog.entries where entry.provider == "anthropic" && !configured.contains(entry.name) {
                models.append(GatewayConfig.ModelConfig(name: entry.name, provider: .anthropic, apiKey: key))
            }
        }
        let deployments = try models.map { model in try deployment(for: model, catalog: catalog, serverTimeouts: config.server.timeouts) }
        if let (model, field) = ModelRegistry.disagreement(in: deployments) {
            throw StartupError.deploymentsDisagree(model: model, field: field)
        }
        return deployments
    }

    static func deployment(for model: GatewayConfig.ModelConfig, catalog: PriceCatalog,
                           serverTimeouts: GatewayConfig.Timeouts = GatewayConfig.Timeouts()) throws -> Deployment {
        // A simulated model named freely is priced like the small demo model unless told otherwise.
        let catalogEntry = catalog.entry(for: model.upstreamModel) ?? catalog.entry(for: model.name)
            ?? (model.provider == .demo ? catalog.entry(for: "demo-small") : nil)
        func refusal(_ problem: String, field: String? = nil) -> any Error {
            model.place.map { $0.failure(problem, subfield: field) } ?? StartupError.price(problem)
        }
        let price: ModelPrice
        if let configured = model.price {
            // Rates the config leaves out follow the catalogue's entry, else the provider's rule.
            do {
                price = try configured.completed(catalogue: catalogEntry?.price, billing: model.provider.cacheBilling)
            } catch {
                let problem = "model '\(model.name)' bills cache reads, and no rate for them is given or known: give "
                    + "`\(error.field)` (\(model.provider.rawValue) prices them per model)"
                throw refusal(problem, field: "price")
            }
        } else if let catalogued = catalogEntry?.price {
            price = catalogued
        } else {
            let problem = "model '\(model.name)' has no price in the catalogue: give it `price: { input_per_mtok: …, "
                + "output_per_mtok: … }`, or `price: free` for a self-hosted model"
            throw refusal(problem)
        }
        let endpoint: Deployment.Endpoint
        switch model.provider {
        case .demo:
            let options = model.demo ?? GatewayConfig.DemoOptions()
            endpoint = .demo(DemoSettings(latencyMs: options.latencyMs, streamChunkMs: options.streamChunkMs,
                                          streamChunks: options.streamChunks))
        case .openai, .openaiCompatible, .anthropic:
            let base = model.baseURL ?? model.provider.defaultBaseURL ?? ""
            guard let url = URLComponents(string: base), let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https",
                  let host = url.host, !host.isEmpty else {
                throw StartupError.badBaseURL(model: model.name, url: base)
            }
            let tls = scheme == "https"
            let port = url.port ?? (tls ? 443 : 80)
            let defaultPort = (tls && port == 443) || (!tls && port == 80)
            var path = url.path
            while path.hasSuffix("/") { path.removeLast() }
            endpoint = .http(UpstreamTarget(tls: tls, host: host, port: port), basePath: path,
                             hostHeader: defaultPort ? host : "\(host):\(port)")
        }
        return Deployment(id: model.name, name: model.name, provider: model.provider.rawValue, upstreamModel: model.upstreamModel,
                          apiKey: model.apiKey, price: price, endpoint: endpoint,
                          maxOutputTokens: model.maxOutputTokens ?? catalogEntry?.maxOutputTokens,
                          tier: model.tier ?? catalogEntry?.tier, downgradeTo: model.downgradeTo,
                          wire: model.provider == .anthropic ? .anthropic : .openAI,
                          anthropicVersion: model.anthropicVersion ?? "2023-06-01",
                          capabilities: model.capabilities.map { Set($0.map(\.rawValue)) } ?? catalogEntry?.capabilities ?? [],
                          contextWindow: model.contextWindow ?? catalogEntry?.contextWindow, weight: model.weight,
                          timeouts: UpstreamTimeouts(model.timeouts?.applied(to: serverTimeouts) ?? serverTimeouts))
    }

    static func storeLocation(_ url: String) throws -> StoreLocation {
        do {
            return try StoreLocation(url: url)
        } catch let error as StoreError {
            throw StartupError.database(Self.message(error))
        }
    }

    /// Opens and migrates the store; an unreachable PostgreSQL stops the start with one line naming its
    /// host and port.
    static func openStore(_ location: StoreLocation, logger: Logger) throws -> any Store {
        do {
            let store = try location.open(migrate: false, logger: logger)
            for migration in try store.migrate() {
                logger.notice("database \(location): applied migration \(migration)")
            }
            return store
        } catch let error as StoreError {
            throw StartupError.database(Self.message(error))
        }
    }

    private static func message(_ error: StoreError) -> String {
        switch error {
        case .unavailable(let message), .invalid(let message): message
        case .duplicate, .notFound: "database: \(error)"
        }
    }

    /// The admin key: from `TOLLGATE_ADMIN_KEY`, else the one generated on the first start (shown once, only
    /// its hash kept). The generated key is written before its hash is stored and before the server accepts
    /// anything, with one unbuffered write each to stdout and stderr: `print` is buffered when stdout is a file
    /// or a pipe (systemd, Docker, nohup), and a crash would lose a key whose hash is already stored.
    static func adminKey(store: any Store, environment: [String: String]) throws -> AdminCredential {
        if let key = environment["TOLLGATE_ADMIN_KEY"], !key.isEmpty {
            return AdminCredential(fixed: key)
        }
        if let stored = try store.setting(AdminCredential.settingName), let hash = Hex.decode(stored) {
            return AdminCredential(stored: hash, store: store)
        }
        let key = AdminCredential.generateKey()
        let notice = Data("""
            Generated the admin key (shown once, keep it safe):
                export TOLLGATE_ADMIN_KEY=\(key)

            """.utf8)
        for output in [FileHandle.standardOutput, FileHandle.standardError] { try? output.write(contentsOf: notice) }
        try AdminCredential.store(key, in: store)
        return AdminCredential(stored: SHA256.hash(Array(key.utf8)), store: store)
    }

    /// `tollgate admin-key reset`: a new admin key, whose hash replaces the stored one; returns the key. Gateways
    /// on this database that use a generated key take it within a second (`AdminCredential`).
    public static func resetAdminKey(store: any Store) throws -> String {
        let key = AdminCredential.generateKey()
        try AdminCredential.store(key, in: store)
        return key
    }

    /// Trust roots for `https` upstreams: the system's, or the file in `SSL_CERT_FILE`.
    static func makeTLSContext(environment: [String: String]) throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        if let file = environment["SSL_CERT_FILE"], !file.isEmpty {
            configuration.trustRoots = .file(file)
        }
        return try NIOSSLContext(configuration: configuration)
    }
}

/// Keeps the ledger writer alive while the gateway runs, and flushes it last, after the server drained.
struct LedgerService: Service {
    let ledger: LedgerWriter

    func run() async throws {
        try? await gracefulShutdown()
        ledger.shutdown()
    }
}

#if os(Linux)
/// glibc's `malloc_trim` (malloc.h is not in Swift's Glibc module).
@_silgen_name("malloc_trim")
private func glibcMallocTrim(_ pad: Int) -> Int32

/// glibc's `mallopt`, and its `M_MMAP_THRESHOLD` parameter.
@_silgen_name("mallopt")
private func glibcMallocOption(_ parameter: Int32, _ value: Int32) -> Int32
private let glibcMmapThreshold: Int32 = -3
#endif
