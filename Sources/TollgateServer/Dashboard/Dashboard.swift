import Foundation
import Hummingbird
import Mustache
import NIOCore
import TollgateCore
import TollgateStore

/// `/dashboard`: server-rendered pages over the rollups, the budgets and the deployments' health. Sign-in takes
/// the admin key or a viewer key and sets a signed session cookie (HttpOnly, SameSite=Strict);
/// `Authorization: Bearer <key>` works too, for scripts and tests. Every page reads aggregates (the per-day
/// rollups), never a scan of the ledger, so it renders in milliseconds on a month of traffic; Adoption alone reads
/// the window's rows, as sessions are found in them, on a queue of its own.
struct Dashboard: Sendable {
    let store: any Store
    let budgets: BudgetLedger
    let models: ModelRegistry
    let health: DeploymentHealth
    let calibrations: RouterCalibrations
    let clock: GatewayClock
    /// The admin key and the viewer keys.
    let access: AdminAccess
    let forecasts: BudgetForecasts
    let templates: MustacheLibrary
    let stylesheet: ByteBuffer

    struct BudgetForecastView: Sendable {
        var low: Nanodollars
        var point: Nanodollars
        var high: Nanodollars
        /// The local date the limit is projected to be reached, `YYYY-MM-DD`.
        var exhaustion: String?
    }

    enum Page: String, CaseIterable {
        case overview, people, adoption, models, routing, requests, deployments

        var title: String {
            switch self {
            case .overview: "Overview"
            case .people: "People and teams"
            case .adoption: "Adoption"
            case .models: "Models"
            case .routing: "Routing"
            case .requests: "Requests"
            case .deployments: "Deployments"
            }
        }

        var path: String { self == .overview ? "/dashboard" : "/dashboard/" + rawValue }
    }

    static func loadTemplates() throws -> (MustacheLibrary, ByteBuffer) {
        guard let folder = Bundle.module.url(forResource: "dashboard", withExtension: nil) else {
            throw StartupError.catalogue("the dashboard's templates are missing from the bundle")
        }
        var library = MustacheLibrary()
        for page in ["layout", "login"] + Page.allCases.map(\.rawValue) {
            let text = try String(contentsOf: folder.appendingPathComponent(page + ".mustache"), encoding: .utf8)
            try library.register(text, named: page)
        }
        let css = try Data(contentsOf: folder.appendingPathComponent("style.css"))
        return (library, ByteBuffer(bytes: css))
    }

    func addRoutes(to router: Router<BasicRequestContext>) {
        router.get("/dashboard/style.css") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/css; charset=utf-8", .cacheControl: "max-age=3600"],
                     body: .init(byteBuffer: stylesheet))
        }
        router.get("/dashboard/login") { request, _ in
            html(render("login", ["next": safeNext(request.uri.queryParameters.get("next"))]))
        }
        router.post("/dashboard/login") { request, _ in
            try await login(request)
        }
        router.get("/dashboard/logout") { _, _ in
            var response = redirect("/dashboard/login")
            response.headers[.setCookie] = "\(DashboardSession.cookieName)=; Path=/dashboard; Max-Age=0; HttpOnly; SameSite=Strict"
            return response
        }
        for page in Page.allCases {
            router.get(RouterPath(page.path)) { request, _ in
                guard let role = authenticate(request) else {
                    return redirect("/dashboard/login?next=" + (page.path.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""))
                }
                // Forecasts read the store on their own queue, off the event loops.
                let now = clock.now()
                let shown = page == .overview ? try await forecasts.forecasts(overviewSubjects(now: now).map(\.0), now: now) : []
                let views = Dictionary(zip(overviewSubjects(now: now).map(\.1), shown.map { forecast in
                    BudgetForecastView(low: Nanodollars(forecast.low), point: Nanodollars(forecast.projected), high: Nanodollars(forecast.high),
                                       exhaustion: forecast.exhaustion?.description)
                }), uniquingKeysWith: { first, _ in first })
                // Sessions need the window's ledger rows, not the rollups: read on a queue of their own.
                var usage: UsageAggregator?
                if page == .adoption {
                    let period = try Period(from: request.uri.queryParameters.get("from"), to: request.uri.queryParameters.get("to"), now: now)
                    let store = self.store
                    usage = try await AdminAPI.offRequestLoop {
                        try UsageReport.read(store, groupings: [.user, .client], from: period.from, to: period.to)
                    }
                }
                return try respond(page, request: request, role: role, forecasts: views, usage: usage)
            }
        }
    }

    // MARK: Signing in

    private func login(_ request: Request) async throws -> Response {
        let body = try await request.body.collect(upTo: 16 * 1024)
        let form = Self.formFields(String(buffer: body))
        let next = safeNext(form["next"])
        guard let key = form["key"], !key.isEmpty, let role = role(of: key) else {
            return html(render("login", ["error": "That key is not the admin key or a viewer key.", "next": next]), status: .unauthorized)
        }
        let session = DashboardSession(role: role, expiresAt: clock.now().addingTimeInterval(DashboardSession.lifetime))
        var response = redirect(next)
        response.headers[.setCookie] = "\(DashboardSession.cookieName)=\(session.cookieValue(secret: access.adminKey.sessionSecret())); "
            + "Path=/dashboard; Max-Age=\(Int(DashboardSession.lifetime)); HttpOnly; SameSite=Strict"
        return response
    }

    private func role(of key: String) -> DashboardRole? {
        access.role(of: key)
    }

    /// A bearer key, else the session cookie (whose viewer key must still be valid).
    private func authenticate(_ request: Request) -> DashboardRole? {
        if let authorization = request.headers[.authorization], authorization.lowercased().hasPrefix("bearer ") {
            return role(of: String(authorization.dropFirst(7)))
        }
        guard let cookie = request.cookies[DashboardSession.cookieName]?.value,
              let session = DashboardSession(cookie: cookie, secret: access.adminKey.sessionSecret(), now: clock.now()),
              access.stillValid(session.role)
        else { return nil }
        return session.role
    }

    /// Only a path of this dashboard: a login link cannot send anyone elsewhere.
    private func safeNext(_ next: String?) -> String {
        guard let next, next.hasPrefix("/dashboard"), !next.hasPrefix("//"), !next.contains("\\") else { return "/dashboard" }
        return next
    }

    static func formFields(_ body: String) -> [String: String] {
        var fields: [String: String] = [:]
        for pair in body.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ text: Substring) -> String {
                (String(text).replacingOccurrences(of: "+", with: " ").removingPercentEncoding) ?? String(text)
            }
            if let name = parts.first { fields[decode(name)] = parts.count > 1 ? decode(parts[1]) : "" }
        }
        return fields
    }

    // MARK: Pages

    /// The budgets the overview shows (org and team, in USD), with their forecast subjects.
    private func overviewSubjects(now: Date) -> [(ForecastSubject, String)] {
        forecasts.budgetSubjects(now: now)
            .filter { ($0.snapshot.definition.scope == .org || $0.snapshot.definition.scope == .team) && $0.snapshot.remainingUSD != nil }
            .map { ($0.subject, $0.snapshot.definition.id) }
    }

    private func respond(_ page: Page, request: Request, role: DashboardRole, forecasts: [String: BudgetForecastView],
                         usage: UsageAggregator?) throws -> Response {
        let query = request.uri.queryParameters
        let now = clock.now()
        let period = try Period(from: query.get("from"), to: query.get("to"), now: now)
        let content: [String: Any]
        switch page {
        case .overview: content = try overview(period, now: now, forecasts: forecasts)
        case .people: content = try people(period, now: now)
        case .adoption: content = adoption(usage ?? UsageAggregator(), now: now)
        case .models: content = try modelsPage(period)
        case .routing: content = try routing(period)
        case .requests: content = try requestsPage(request)
        case .deployments: content = deployments(now: now)
        }
        let body = render(page.rawValue, content)
        var layout: [String: Any] = [
            "title": page.title, "content": body, "generated": RFC3339.format(now),
            "who": role == .admin ? "admin" : "viewer",
            "nav": Page.allCases.map { ["href": $0.path, "label": $0.title, "current": $0 == page] as [String: Any] },
        ]
        if page != .requests && page != .deployments {
            layout["period"] = ["from": period.fromText, "to": period.toText, "label": period.label, "keep": [[String: Any]]()]
        }
        return html(render("layout", layout))
    }

    private func overview(_ period: Period, now: Date, forecasts: [String: BudgetForecastView]) throws -> [String: Any] {
        let totals = try store.rollups(RollupQuery(dimensions: [], from: period.from, to: period.to)).first?.measures ?? RollupMeasures()
        let budgetRows: [[String: Any]] = budgets.snapshots(now: now)
            .filter { $0.0.definition.scope == .org || $0.0.definition.scope == .team }
            .sorted { ($0.0.definition.scope.rawValue, $0.0.definition.subjectName) < ($1.0.definition.scope.rawValue, $1.0.definition.subjectName) }
            .compactMap { snapshot, _ in budgetRow(snapshot, forecast: forecasts[snapshot.definition.id]) }
        let byDayTeam = try store.rollups(RollupQuery(dimensions: [.day, .team], from: period.from, to: period.to))
        let byDayModel = try store.rollups(RollupQuery(dimensions: [.day, .model], from: period.from, to: period.to))
        let teamChart = Charts.StackedColumns(labels: period.days, points: byDayTeam.map { ($0.groups[0] ?? "", $0.groups[1] ?? "(no team)", $0.measures.cost) })
        let modelChart = Charts.StackedColumns(labels: period.days, points: byDayModel.map { ($0.groups[0] ?? "", $0.groups[1] ?? "(none)", $0.measures.cost) })
        let users = try store.rollups(RollupQuery(dimensions: [.user, .team], from: period.from, to: period.to))
        let topUsers: [[String: Any]] = users.filter { $0.groups[0] != nil }.prefix(10).map { row in
            ["user": row.groups[0] ?? "", "team": row.groups[1] ?? "—", "requests": Self.count(row.measures.requests),
             "cost": Money.display(row.measures.cost), "costExact": row.measures.cost.decimalString,
             "share": Self.percent(row.measures.cost.value, of: totals.cost.value)]
        }
        return [
            "totals": [
                "cost": Money.display(totals.cost), "costExact": totals.cost.decimalString, "requests": Self.count(totals.requests),
                "tokens": Self.count(totals.inputTokens + totals.cachedInputTokens + totals.cacheWriteTokens + totals.outputTokens),
                "savings": Money.display(totals.baselineCost - totals.cost), "savingsExact": (totals.baselineCost - totals.cost).decimalString,
                "agenticShare": Self.percent(Int64(totals.agentic), of: Int64(totals.requests)),
                "errorShare": Self.percent(Int64(totals.errors), of: Int64(totals.requests)),
            ] as [String: Any],
            "budgets": budgetRows, "hasBudgets": !budgetRows.isEmpty,
            "byTeamChart": Charts.stacked(teamChart, title: "Spend per day by team"),
            "byTeamLegend": teamChart.series.map { ["name": $0.name, "color": $0.color] },
            "byModelChart": Charts.stacked(modelChart, title: "Spend per day by model"),
            "byModelLegend": modelChart.series.map { ["name": $0.name, "color": $0.color] },
            "topUsers": topUsers,
        ]
    }

    private func budgetRow(_ snapshot: BudgetSnapshot, forecast: BudgetForecastView?) -> [String: Any]? {
        guard case .usd(let limit) = snapshot.definition.limit else { return nil }
        var row: [String: Any] = [
            "id": snapshot.definition.id, "scope": snapshot.definition.scope.rawValue, "name": snapshot.definition.subjectName,
            "period": snapshot.definition.period.rawValue, "spent": Money.display(snapshot.spentUSD),
            "spentExact": snapshot.spentUSD.decimalString, "limit": Money.display(limit), "limitExact": limit.decimalString,
            "percent": Self.percent(snapshot.spentUSD.value, of: limit.value),
            "bar": Charts.budgetBar(limit: limit, spent: snapshot.spentUSD, reserved: snapshot.reservedUSD,
                                    forecast: forecast.map { ($0.low, $0.point, $0.high) }),
        ]
        // Every key is set, false when there is nothing: Mustache would otherwise look it up in the enclosing
        // context (a user's row would show its team's budget).
        row["model"] = snapshot.definition.model ?? false
        row["forecast"] = false
        row["exhaustion"] = false
        row["softCrossed"] = false
        if let forecast {
            row["forecast"] = Money.display(forecast.point)
            row["forecastLow"] = Money.display(forecast.low)
            row["forecastHigh"] = Money.display(forecast.high)
            row["exhaustion"] = forecast.exhaustion ?? false
        }
        if let crossed = snapshot.softThresholdCrossedAt { row["softCrossed"] = Self.day(crossed) }
        return row
    }

    private func people(_ period: Period, now: Date) throws -> [String: Any] {
        let byUser = try store.rollups(RollupQuery(dimensions: [.team, .user], from: period.from, to: period.to))
        let days = try store.rollups(RollupQuery(dimensions: [.user, .day], from: period.from, to: period.to))
        var activeDays: [String: Int] = [:]
        for row in days where row.measures.requests > 0 { activeDays[row.groups[0] ?? "", default: 0] += 1 }
        let snapshots = budgets.snapshots(now: now).map(\.0)
        let userBudgets = Dictionary(snapshots.filter { $0.definition.scope == .user && $0.definition.model == nil }.map { ($0.definition.subjectName, $0) },
                                     uniquingKeysWith: { first, _ in first })
        let teamBudgets = Dictionary(snapshots.filter { $0.definition.scope == .team && $0.definition.model == nil }.map { ($0.definition.subjectName, $0) },
                                     uniquingKeysWith: { first, _ in first })
        var teams: [String: (cost: Nanodollars, requests: Int, users: [RollupRow])] = [:]
        for row in byUser {
            let team = row.groups[0] ?? "(no team)"
            teams[team, default: (.zero, 0, [])].cost += row.measures.cost
            teams[team, default: (.zero, 0, [])].requests += row.measures.requests
            teams[team, default: (.zero, 0, [])].users.append(row)
        }
        let ordered = teams.sorted { $0.value.cost != $1.value.cost ? $0.value.cost > $1.value.cost : $0.key < $1.key }
        return ["teams": ordered.map { name, team -> [String: Any] in
            var entry: [String: Any] = [
                "name": name, "cost": Money.display(team.cost), "costExact": team.cost.decimalString, "requests": Self.count(team.requests),
                "users": team.users.map { row -> [String: Any] in
                    let user = row.groups[1] ?? "(team key)"
                    let active = activeDays[row.groups[1] ?? ""] ?? 0
                    var cells: [String: Any] = [
                        "user": user, "cost": Money.display(row.measures.cost), "costExact": row.measures.cost.decimalString,
                        "requests": Self.count(row.measures.requests), "activeDays": active,
                        "perActiveDay": active > 0 ? Money.display(Nanodollars(row.measures.cost.value / Int64(active))) : "—",
                        "agenticShare": Self.percent(Int64(row.measures.agentic), of: Int64(row.measures.requests)),
                        "budget": false, "softCrossed": false,
                    ]
                    if let snapshot = userBudgets[user], let budget = budgetRow(snapshot, forecast: nil) {
                        cells["budget"] = budget
                        cells["softCrossed"] = budget["softCrossed"] ?? false
                    }
                    return cells
                },
            ]
            entry["budget"] = teamBudgets[name].flatMap { budgetRow($0, forecast: nil) } ?? false
            return entry
        }]
    }

    /// Agentic share per team over the weeks, people by $ per active day beside their budget, clients in use.
    private func adoption(_ usage: UsageAggregator, now: Date) -> [String: Any] {
        let weeks = usage.adoption()
        let labels = Array(Set(weeks.map(\.week))).sorted()
        var byTeam: [String: [ISOWeek: AdoptionWeek]] = [:]
        for week in weeks { byTeam[week.team ?? "(no team)", default: [:]][week.week] = week }
        let snapshots = budgets.snapshots(now: now).map(\.0)
        let userBudgets = Dictionary(snapshots.filter { $0.definition.scope == .user && $0.definition.model == nil }.map { ($0.definition.subjectName, $0) },
                                     uniquingKeysWith: { first, _ in first })
        let people = usage.rows(by: .user).filter { $0.group != nil }
            .sorted { ($0.costPerActiveDay, $1.group ?? "") > ($1.costPerActiveDay, $0.group ?? "") }
        return [
            "hasTeams": !byTeam.isEmpty,
            "weeks": labels.map { ["label": $0.description, "start": $0.monday.description] },
            "teams": byTeam.sorted { $0.key < $1.key }.map { name, cells -> [String: Any] in
                ["name": name, "cells": labels.map { label -> [String: Any] in
                    guard let week = cells[label] else { return ["empty": true] }
                    return ["empty": false, "share": Self.percent(Int64(week.agenticPeople), of: Int64(week.people)),
                            "people": week.people, "agentic": week.agenticPeople,
                            "bar": Charts.budgetBar(limit: Nanodollars(Int64(max(week.people, 1))), spent: Nanodollars(Int64(week.agenticPeople)),
                                                    reserved: .zero, forecast: nil, width: 60)]
                }]
            },
            "people": people.map { row -> [String: Any] in
                var cells: [String: Any] = [
                    "user": row.group ?? "", "perActiveDay": Money.display(row.costPerActiveDay),
                    "perActiveDayExact": row.costPerActiveDay.decimalString, "activeDays": row.activeDays,
                    "sessions": row.sessions, "agenticSessions": row.agenticSessions,
                    "agenticCostShare": Self.percent(row.agenticCost.value, of: row.cost.value), "budget": false,
                ]
                if let snapshot = userBudgets[row.group ?? ""], let budget = budgetRow(snapshot, forecast: nil) { cells["budget"] = budget }
                return cells
            },
            "clients": usage.rows(by: .client).map { row -> [String: Any] in
                ["client": row.group ?? "", "requests": Self.count(row.requests), "sessions": row.sessions,
                 "agenticSessions": row.agenticSessions, "cost": Money.display(row.cost), "costExact": row.cost.decimalString]
            },
        ]
    }

    private func modelsPage(_ period: Period) throws -> [String: Any] {
        let rows = try store.rollups(RollupQuery(dimensions: [.model], from: period.from, to: period.to))
        let total = rows.reduce(Int64(0)) { $0 + $1.measures.cost.value }
        return ["models": rows.map { row -> [String: Any] in
            let m = row.measures
            let tokens = [m.inputTokens, m.cachedInputTokens, m.cacheWriteTokens, m.outputTokens]
            return [
                "model": row.groups[0] ?? "(none)", "requests": Self.count(m.requests), "cost": Money.display(m.cost),
                "costExact": m.cost.decimalString, "share": Self.percent(m.cost.value, of: total),
                "shareBar": Charts.budgetBar(limit: Nanodollars(max(total, 1)), spent: m.cost, reserved: .zero, forecast: nil, width: 140),
                "input": Self.count(m.inputTokens), "cached": Self.count(m.cachedInputTokens), "cacheWrite": Self.count(m.cacheWriteTokens),
                "output": Self.count(m.outputTokens), "mixBar": Self.mixBar(tokens),
                "perRequest": m.requests > 0 ? Money.display(Nanodollars(m.cost.value / Int64(m.requests))) : "—",
                "latency": m.requests > 0 ? "\(m.latencyMs / m.requests) ms" : "—",
            ]
        }]
    }

    private func routing(_ period: Period) throws -> [String: Any] {
        let rows = try store.rollups(RollupQuery(dimensions: [.route, .model], from: period.from, to: period.to))
        let totals = try store.rollups(RollupQuery(dimensions: [], from: period.from, to: period.to)).first?.measures ?? RollupMeasures()
        var routes: [String: [RollupRow]] = [:]
        for row in rows { if let route = row.groups[0] { routes[route, default: []].append(row) } }
        let breakers = health.snapshot()
        let now = clock.now()
        return [
            "savings": Money.display(totals.baselineCost - totals.cost), "savingsExact": (totals.baselineCost - totals.cost).decimalString,
            "fallbacks": Self.count(totals.fallbacks), "downgrades": Self.count(totals.downgrades),
            "routes": routes.sorted { $0.key < $1.key }.map { name, rows -> [String: Any] in
                let requests = rows.reduce(0) { $0 + $1.measures.requests }
                var entry: [String: Any] = [
                    "name": name, "requests": Self.count(requests),
                    "fallbacks": rows.reduce(0) { $0 + $1.measures.fallbacks }, "downgrades": rows.reduce(0) { $0 + $1.measures.downgrades },
                    "models": rows.map { row -> [String: Any] in
                        ["model": row.groups[1] ?? "(none)", "requests": Self.count(row.measures.requests),
                         "share": Self.percent(Int64(row.measures.requests), of: Int64(requests)),
                         "cost": Money.display(row.measures.cost), "costExact": row.measures.cost.decimalString,
                         "baseline": Money.display(row.measures.baselineCost), "saved": Money.display(row.measures.baselineCost - row.measures.cost)]
                    },
                ]
                if let route = models.routes[name] {
                    switch route.strategy {
                    case .learned(let strong, _, let share, _, _):
                        let strongRequests = rows.filter { $0.groups[1] == strong }.reduce(0) { $0 + $1.measures.requests }
                        entry["strategy"] = "learned"
                        entry["strongShare"] = Self.percent(Int64(strongRequests), of: Int64(requests))
                        entry["target"] = Self.percent(Int64(((share ?? 0.5) * 1000).rounded()), of: 1000)
                    case .cheapestCapable: entry["strategy"] = "cheapest-capable"
                    case .fallback: entry["strategy"] = "fallback"
                    case .loadbalance: entry["strategy"] = "loadbalance"
                    }
                }
                return entry
            },
            "breakers": models.all.map { deployment -> [String: Any] in
                let entry = breakers[deployment.id]
                let circuit = entry.map { $0.breaker.isAvailable(at: now) && $0.breaker.state == .open ? "half_open" : $0.breaker.state.rawValue } ?? "closed"
                return ["id": deployment.id, "circuit": circuit, "circuitClass": circuit == "closed" ? "good" : "bad",
                        "failures": entry?.failures ?? 0, "lastError": entry?.lastError ?? ""]
            },
        ]
    }

    private func requestsPage(_ request: Request) throws -> [String: Any] {
        let query = request.uri.queryParameters
        func value(_ name: String) -> String? {
            guard let text = query.get(name)?.trimmingCharacters(in: .whitespaces), !text.isEmpty else { return nil }
            return text
        }
        var filter = LedgerFilter(user: value("user"), team: value("team"), model: value("model"),
                                  status: value("status").flatMap(Int.init), tag: value("tag"))
        if let day = value("day"), let start = Period.parseDay(day) {
            filter.from = start
            filter.to = start.addingTimeInterval(86_400)
        }
        let page = try store.ledgerPage(limit: 50, cursor: value("cursor"), filter: filter)
        var options: [String: [String]] = [:]
        for (dimension, name) in [(RollupDimension.user, "users"), (.team, "teams"), (.model, "models")] {
            // What the last 31 days saw: the suggestions stay cheap however long the ledger grows.
            options[name] = try store.rollups(RollupQuery(dimensions: [dimension], from: clock.now().addingTimeInterval(-31 * 86_400)))
                .compactMap { $0.groups[0] }.sorted()
        }
        var next: String?
        if let cursor = page.next {
            var parameters = ["user", "team", "model", "status", "tag", "day"].compactMap { name in value(name).map { (name, $0) } }
            parameters.append(("cursor", cursor))
            next = "/dashboard/requests?" + parameters.map { "\($0)=\($1.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")" }
                .joined(separator: "&")
        }
        return [
            "filter": ["user": value("user") ?? "", "team": value("team") ?? "", "model": value("model") ?? "",
                       "status": value("status") ?? "", "tag": value("tag") ?? "", "day": value("day") ?? ""],
            "options": options,
            "rows": page.rows.map { row -> [String: Any] in
                ["id": row.id, "time": String(RFC3339.format(row.createdAt).prefix(19)).replacingOccurrences(of: "T", with: " "),
                 "user": row.userName ?? "—", "team": row.teamName ?? "—", "model": row.model ?? "—", "status": row.status,
                 "statusClass": row.status >= 400 ? "bad" : "", "input": Self.count(row.usage.totalPromptTokens),
                 "output": Self.count(row.usage.outputTokens), "cost": Money.display(row.cost), "costExact": row.cost.decimalString,
                 "latency": "\(row.latencyMs) ms", "routeReason": row.routeReason ?? "", "tags": row.tags.joined(separator: ", ")]
            },
            "next": next as Any,
        ]
    }

    private func deployments(now: Date) -> [String: Any] {
        let entries = health.snapshot()
        return ["deployments": models.all.map { deployment -> [String: Any] in
            let entry = entries[deployment.id]
            let upstream: String
            switch deployment.endpoint {
            case .http(let target, let basePath, _): upstream = (target.tls ? "https://" : "http://") + target.host + ":" + String(target.port) + basePath
            case .demo: upstream = "simulated"
            }
            let circuit = entry.map { $0.breaker.isAvailable(at: now) && $0.breaker.state == .open ? "half_open" : $0.breaker.state.rawValue } ?? "closed"
            return ["id": deployment.id, "provider": deployment.provider, "upstream": upstream, "weight": deployment.weight,
                    "circuit": circuit, "circuitClass": circuit == "closed" ? "good" : "bad", "inFlight": entry?.inFlight ?? 0,
                    "requests": entry?.requests ?? 0, "failures": entry?.failures ?? 0,
                    "lastFailure": entry?.lastFailureAt.map { RFC3339.format($0) + " · " + (entry?.lastError ?? "") } ?? ""]
        }]
    }

    // MARK: Helpers

    private func render(_ template: String, _ object: [String: Any]) -> String {
        templates.render(object, withTemplate: template) ?? ""
    }

    private func html(_ body: String, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"],
                 body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    private func redirect(_ location: String) -> Response {
        Response(status: .seeOther, headers: [.location: location])
    }

    static func count(_ value: Int) -> String {
        let digits = String(value.magnitude)
        var grouped = ""
        for (index, digit) in digits.reversed().enumerated() {
            if index > 0, index % 3 == 0 { grouped.append(",") }
            grouped.append(digit)
        }
        return (value < 0 ? "−" : "") + String(grouped.reversed())
    }

    /// `part / whole` as a whole percentage (one decimal under 10 %), exact integer arithmetic.
    static func percent(_ part: Int64, of whole: Int64) -> String {
        guard whole > 0 else { return "—" }
        let tenths = (Int128(part) * 1000 + Int128(whole) / 2) / Int128(whole)
        return tenths < 100 ? "\(tenths / 10).\(tenths % 10) %" : "\((tenths + 5) / 10) %"
    }

    static func day(_ date: Date) -> String { String(RFC3339.format(date).prefix(10)) }

    /// The token mix of one model as a 100 % stacked bar.
    static func mixBar(_ tokens: [Int]) -> String {
        let total = max(tokens.reduce(0, +), 1)
        let colors = ["#2563eb", "#16a34a", "#f59e0b", "#7c3aed"]
        var x = 0.0
        var svg = #"<svg class="bar" viewBox="0 0 140 12" width="140" height="12" xmlns="http://www.w3.org/2000/svg">"#
        for (index, count) in tokens.enumerated() where count > 0 {
            let width = 140.0 * Double(count) / Double(total)
            svg += #"<rect x="\#(Charts.format(x))" y="0" width="\#(Charts.format(width))" height="12" fill="\#(colors[index])"/>"#
            x += width
        }
        return svg + "</svg>"
    }
}

/// The days a page reports on: `from` and `to` as dates (to inclusive, as people read a range), by default
/// the current month to date, in UTC.
struct Period {
    var from: Date
    /// Exclusive: the day after `to`.
    var to: Date
    var days: [String]

    init(from: String?, to: String?, now: Date) throws {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let today = calendar.startOfDay(for: now)
        let monthStart = calendar.date(from: calendar.dateComponents([.year, .month], from: now))!
        let start = try from.flatMap { $0.isEmpty ? nil : $0 }.map { text -> Date in
            guard let day = Period.parseDay(text) else { throw HTTPError(.badRequest, message: "from must be a date YYYY-MM-DD") }
            return day
        } ?? monthStart
        let last = try to.flatMap { $0.isEmpty ? nil : $0 }.map { text -> Date in
            guard let day = Period.parseDay(text) else { throw HTTPError(.badRequest, message: "to must be a date YYYY-MM-DD") }
            return day
        } ?? today
        guard last >= start, last.timeIntervalSince(start) <= 400 * 86_400 else {
            throw HTTPError(.badRequest, message: "the period must run forwards and last at most 400 days")
        }
        self.from = start
        self.to = last.addingTimeInterval(86_400)
        var days: [String] = []
        var day = start
        while day < self.to {
            days.append(Dashboard.day(day))
            day = day.addingTimeInterval(86_400)
        }
        self.days = days
    }

    var fromText: String { Dashboard.day(from) }
    var toText: String { Dashboard.day(to.addingTimeInterval(-86_400)) }
    var label: String { "\(days.count) day\(days.count == 1 ? "" : "s"), UTC" }

    static func parseDay(_ text: String) -> Date? {
        guard text.count == 10 else { return nil }
        return RFC3339.parse(text + "T00:00:00Z")
    }
}
