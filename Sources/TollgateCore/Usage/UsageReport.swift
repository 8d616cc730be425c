/// The dimensions a usage report can be grouped by.
public enum UsageGrouping: String, Sendable, CaseIterable {
    case user, team, client
}

/// One group's use over a window.
public struct UsageRow: Sendable, Equatable {
    /// The user or team name, or the client (`ClientKind.rawValue`); `nil` for requests with no user or team.
    public var group: String?
    public var requests = 0
    /// Sessions with at least one request in the group.
    public var sessions = 0
    public var agenticSessions = 0
    /// Requests that belong to agentic sessions, and what they cost.
    public var agenticRequests = 0
    public var agenticCost = Nanodollars.zero
    public var cost = Nanodollars.zero
    /// UTC days with at least one request.
    public var activeDays = 0
    /// Every token: uncached input, cached input, cache writes and output.
    public var tokens = 0
    /// Every prompt token (uncached, cached and cache writes), and the cached part of them.
    public var inputTokens = 0
    public var cachedInputTokens = 0

    public init(group: String?) { self.group = group }

    public var agenticRequestShare: Double { requests == 0 ? 0 : Double(agenticRequests) / Double(requests) }
    /// Of the cost; 0 when nothing was spent.
    public var agenticCostShare: Double { cost.value == 0 ? 0 : Double(agenticCost.value) / Double(cost.value) }
    public var cachedInputShare: Double { inputTokens == 0 ? 0 : Double(cachedInputTokens) / Double(inputTokens) }
    /// Rounded half up to the nano-dollar.
    public var costPerActiveDay: Nanodollars {
        activeDays == 0 ? .zero : Nanodollars((2 * cost.value + Int64(activeDays)) / (2 * Int64(activeDays)))
    }
    /// Rounded half up to the token.
    public var tokensPerActiveDay: Int { activeDays == 0 ? 0 : (2 * tokens + activeDays) / (2 * activeDays) }
}

/// One team's ISO week: of the people who made requests that week, how many had an agentic session.
public struct AdoptionWeek: Sendable, Equatable {
    public var team: String?
    public var week: ISOWeek
    public var people: Int
    public var agenticPeople: Int
    public var agenticShare: Double { people == 0 ? 0 : Double(agenticPeople) / Double(people) }

    public init(team: String?, week: ISOWeek, people: Int, agenticPeople: Int) {
        self.team = team; self.week = week; self.people = people; self.agenticPeople = agenticPeople
    }
}

/// An ISO 8601 week: it starts on Monday and belongs to the year of its Thursday.
public struct ISOWeek: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let monday: CalendarDate

    public init(containing day: CalendarDate) {
        // Day 0 (1970-01-01) was a Thursday: 3 days after a Monday.
        let sinceMonday = ((day.dayNumber + 3) % 7 + 7) % 7
        monday = day.adding(days: -sinceMonday)
    }

    public var year: Int { monday.adding(days: 3).components.year }
    public var number: Int {
        let thursday = monday.adding(days: 3)
        return (thursday.dayNumber - CalendarDate(year: thursday.components.year, month: 1, day: 1).dayNumber) / 7 + 1
    }

    /// `2026-W48`.
    public var description: String { "\(year)-W\(number < 10 ? "0" : "")\(number)" }

    public static func < (lhs: ISOWeek, rhs: ISOWeek) -> Bool { lhs.monday < rhs.monday }
}

/// Builds the usage report in one pass over a window's ledger rows, oldest first: sessions are inferred as
/// the rows pass (`SessionTracker`), and a session's kind is known once all of them have (a session becomes
/// agentic with its first tool result, which may come late).
public struct UsageAggregator: Sendable {
    public let groupings: Set<UsageGrouping>
    private var tracker = SessionTracker()
    private var sessions: [SessionSummary] = []

    private struct GroupTotals {
        var row: UsageRow
        var days: Set<Int> = []
        /// Per session of the group: its requests and their cost here.
        var perSession: [Int: (requests: Int, cost: Nanodollars)] = [:]

        mutating func add(session: Int, day: Int, cost: Nanodollars, prompt: Int, cached: Int, tokens: Int) {
            row.requests += 1
            row.cost += cost
            row.inputTokens += prompt
            row.cachedInputTokens += cached
            row.tokens += tokens
            days.insert(day)
            perSession[session, default: (0, .zero)].requests += 1
            perSession[session, default: (0, .zero)].cost += cost
        }
    }
    private struct TeamWeek: Hashable { var team: String?; var week: ISOWeek }

    private var groups: [UsageGrouping: [String?: GroupTotals]] = [:]
    /// Per team and week: each person's sessions with a request that week.
    private var weeks: [TeamWeek: [String: Set<Int>]] = [:]

    /// Groups by each of `groupings` in the same pass.
    public init(groupings: Set<UsageGrouping> = Set(UsageGrouping.allCases)) { self.groupings = groupings }

    public static let millisecondsPerDay: Int64 = 86_400_000

    public mutating func add(_ event: UsageEvent) {
        let session = tracker.session(of: event)
        if session == sessions.count { sessions.append(SessionSummary()) }
        sessions[session].add(event)

        let day = Int(event.at >= 0 ? event.at / Self.millisecondsPerDay : (event.at - Self.millisecondsPerDay + 1) / Self.millisecondsPerDay)
        let prompt = event.usage.totalPromptTokens
        for grouping in groupings {
            let name: String?
            switch grouping {
            case .user: name = event.user
            case .team: name = event.team
            case .client: name = event.client.rawValue
            }
            groups[grouping, default: [:]][name, default: GroupTotals(row: UsageRow(group: name))].add(
                session: session, day: day, cost: event.cost, prompt: prompt, cached: event.usage.cachedInputTokens,
                tokens: prompt + event.usage.outputTokens)
        }
        if let user = event.user {
            weeks[TeamWeek(team: event.team, week: ISOWeek(containing: CalendarDate(dayNumber: day))), default: [:]][user, default: []]
                .insert(session)
        }
    }

    /// One row per group, the costliest first (then by name); none for a grouping not asked for.
    public func rows(by grouping: UsageGrouping) -> [UsageRow] {
        (groups[grouping] ?? [:]).values.map { totals in
            var row = totals.row
            row.activeDays = totals.days.count
            row.sessions = totals.perSession.count
            for (session, part) in totals.perSession where sessions[session].kind == .agentic {
                row.agenticSessions += 1
                row.agenticRequests += part.requests
                row.agenticCost += part.cost
            }
            return row
        }.sorted { ($0.cost, $1.group ?? "") > ($1.cost, $0.group ?? "") }
    }

    /// Per team and ISO week, oldest week first, teams by name (no team last).
    public func adoption() -> [AdoptionWeek] {
        weeks.map { key, people in
            AdoptionWeek(team: key.team, week: key.week, people: people.count,
                         agenticPeople: people.values.filter { $0.contains { sessions[$0].kind == .agentic } }.count)
        }.sorted { a, b in
            if a.week != b.week { return a.week < b.week }
            switch (a.team, b.team) {
            case (let x?, let y?): return x < y
            case (nil, _?): return false
            case (_?, nil): return true
            case (nil, nil): return false
            }
        }
    }
}
