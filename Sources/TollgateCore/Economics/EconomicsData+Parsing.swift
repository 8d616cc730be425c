import Foundation

/// Why an economics file was refused, naming the file, the row (by id, or `section[i]`) and the field.
public struct EconomicsDataError: Error, Hashable, Sendable, CustomStringConvertible {
    public var origin: String
    public var row: String?
    public var field: String?
    public var problem: String

    public init(origin: String, row: String? = nil, field: String? = nil, problem: String) {
        self.origin = origin; self.row = row; self.field = field; self.problem = problem
    }

    public var description: String {
        var place = origin
        if let row { place += ": " + row }
        if let field { place += "." + field }
        return place + ": " + problem
    }
}

extension EconomicsData {
    /// The shipped file: every section must be present.
    public static func parse(json: Data, origin: String) throws(EconomicsDataError) -> EconomicsData {
        let overlay = try EconomicsOverlay.parse(json: json, origin: origin)
        guard let operations = overlay.operations else {
            throw EconomicsDataError(origin: origin, field: "operations", problem: "is missing")
        }
        var settings = SizingSettings()
        overlay.applySettings(&settings)
        return EconomicsData(offers: overlay.offers, points: overlay.points, hosted: overlay.hosted, operations: operations,
                             settings: settings)
    }
}

extension EconomicsOverlay {
    static let sections: Set<String> = ["about", "settings", "operations", "gpu_offers", "throughput", "hosted_prices"]

    /// A user's file (or the shipped one): the same shape, every section optional.
    public static func parse(json: Data, origin: String) throws(EconomicsDataError) -> EconomicsOverlay {
        guard let object = try? JSONSerialization.jsonObject(with: json), let document = object as? [String: Any] else {
            throw EconomicsDataError(origin: origin, problem: "is not a JSON object")
        }
        if let unknown = document.keys.sorted().first(where: { !sections.contains($0) }) {
            throw EconomicsDataError(origin: origin, field: unknown, problem: "is not a known section (\(sections.sorted().joined(separator: ", ")))")
        }
        var overlay = EconomicsOverlay()
        if let settings = document["settings"] {
            let fields = try Fields(settings, origin: origin, row: "settings", known: [
                "slot_minutes", "percentile", "max_throughput_usable_share", "max_throughput_usable_share_source",
                "prefix_caching", "cached_prefix_weight",
            ])
            if let minutes = try fields.integer("slot_minutes") {
                guard (1...1440).contains(minutes) else { throw fields.error("slot_minutes", "must be 1 to 1440") }
                overlay.settings["slot_minutes"] = .int(minutes)
            }
            for name in ["percentile", "max_throughput_usable_share", "cached_prefix_weight"] {
                if let share = try fields.number(name) {
                    guard share > 0 || (name == "cached_prefix_weight" && share == 0), share <= 1 else {
                        throw fields.error(name, "must be a share between 0 and 1")
                    }
                    overlay.settings[name] = .double(share)
                }
            }
            if let text = try fields.string("max_throughput_usable_share_source") { overlay.settings["max_throughput_usable_share_source"] = .text(text) }
            if let on = try fields.bool("prefix_caching") { overlay.settings["prefix_caching"] = .bool(on) }
        }
        if let operations = document["operations"] {
            let fields = try Fields(operations, origin: origin, row: "operations", known: ["hours_per_month", "usd_per_hour", "source"])
            overlay.operations = OperationsOverhead(hoursPerMonthBillionths: try fields.required(fields.decimal("hours_per_month"), "hours_per_month").value,
                                                    perHour: try fields.required(fields.decimal("usd_per_hour"), "usd_per_hour"),
                                                    source: try fields.required(fields.string("source"), "source"))
        }
        overlay.offers = try rows(document, "gpu_offers", origin: origin, parseOffer)
        overlay.points = try rows(document, "throughput", origin: origin, parsePoint)
        overlay.hosted = try rows(document, "hosted_prices", origin: origin, parseHosted)
        return overlay
    }

    private static func rows<Row>(_ document: [String: Any], _ section: String, origin: String,
                                  _ parse: (Fields, String) throws(EconomicsDataError) -> Row) throws(EconomicsDataError) -> [Row] {
        guard let value = document[section] else { return [] }
        guard let list = value as? [Any] else { throw EconomicsDataError(origin: origin, field: section, problem: "must be a list") }
        var result: [Row] = []
        var seen: Set<String> = []
        for (index, item) in list.enumerated() {
            let position = "\(section)[\(index)]"
            let id = try Fields(item, origin: origin, row: position, known: nil).required(Fields(item, origin: origin, row: position, known: nil).string("id"), "id")
            guard seen.insert(id).inserted else { throw EconomicsDataError(origin: origin, row: id, field: "id", problem: "is used twice in \(section)") }
            result.append(try parse(try Fields(item, origin: origin, row: id, known: nil), id))
        }
        return result
    }

    private static func parseOffer(_ row: Fields, _ id: String) throws(EconomicsDataError) -> GPUOffer {
        try row.checkKnown(["id", "gpu", "provider", "provisioning", "usd_per_gpu_hour", "owned", "source", "checked", "note"])
        let text = try row.required(row.string("provisioning"), "provisioning")
        guard let provisioning = Provisioning(rawValue: text) else {
            throw row.error("provisioning", "\"\(text)\" is not one of \(Provisioning.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        var owned: OwnedHardware?
        let perHour: Nanodollars
        if provisioning == .owned {
            guard let object = row.values["owned"] else { throw row.error("owned", "is missing (an owned GPU needs capex, amortisation, power, $/kWh and PUE)") }
            let fields = try Fields(object, origin: row.origin, row: id + ".owned", known: [
                "capex_usd_per_gpu", "amortisation_months", "power_w_per_gpu", "usd_per_kwh", "pue",
            ])
            let hardware = OwnedHardware(
                capexPerGPU: try fields.required(fields.decimal("capex_usd_per_gpu"), "capex_usd_per_gpu"),
                amortisationMonths: try fields.required(fields.integer("amortisation_months"), "amortisation_months"),
                powerWattsPerGPU: try fields.required(fields.integer("power_w_per_gpu"), "power_w_per_gpu"),
                perKilowattHour: try fields.required(fields.decimal("usd_per_kwh"), "usd_per_kwh"),
                pueBillionths: try fields.required(fields.decimal("pue"), "pue").value)
            guard hardware.amortisationMonths > 0 else { throw fields.error("amortisation_months", "must be at least 1") }
            guard hardware.pueBillionths >= Nanodollars.perDollar else { throw fields.error("pue", "must be at least 1") }
            guard row.values["usd_per_gpu_hour"] == nil else { throw row.error("usd_per_gpu_hour", "is computed for an owned GPU: leave it out") }
            owned = hardware
            perHour = hardware.perGPUHour
        } else {
            perHour = try row.required(row.decimal("usd_per_gpu_hour"), "usd_per_gpu_hour")
            guard row.values["owned"] == nil else { throw row.error("owned", "belongs to provisioning \"owned\" only") }
        }
        return GPUOffer(id: id, gpu: try row.required(row.string("gpu"), "gpu").lowercased(),
                        provider: try row.required(row.string("provider"), "provider"), provisioning: provisioning,
                        perGPUHour: perHour, owned: owned, source: try row.required(row.string("source"), "source"),
                        checked: try row.checkedDate(), note: try row.string("note"))
    }

    private static func parsePoint(_ row: Fields, _ id: String) throws(EconomicsDataError) -> ThroughputPoint {
        try row.checkKnown(["id", "model", "applies_to", "precision", "engine", "engine_version", "gpu", "gpus", "input_tokens",
                            "output_tokens", "concurrency", "output_tokens_per_s", "requests_per_s", "ttft_ms", "at",
                            "latency_target", "source", "checked", "note"])
        let atText = try row.required(row.string("at"), "at")
        guard let at = OperatingPoint(rawValue: atText) else { throw row.error("at", "\"\(atText)\" is not latency_target or max_throughput") }
        let input = try row.required(row.number("input_tokens"), "input_tokens")
        let output = try row.required(row.number("output_tokens"), "output_tokens")
        let tokensPerSecond = try row.required(row.number("output_tokens_per_s"), "output_tokens_per_s")
        guard input >= 1, output >= 1 else { throw row.error("input_tokens", "input and output lengths must be at least 1 token") }
        guard tokensPerSecond > 0 else { throw row.error("output_tokens_per_s", "must be above 0") }
        // A fixed output length makes requests/s follow from output tokens/s; a source that gives both is taken as given.
        let requestsPerSecond = try row.number("requests_per_s") ?? tokensPerSecond / output
        guard requestsPerSecond > 0 else { throw row.error("requests_per_s", "must be above 0") }
        let gpus = try row.required(row.integer("gpus"), "gpus")
        guard gpus >= 1 else { throw row.error("gpus", "must be at least 1") }
        return ThroughputPoint(
            id: id, model: try row.required(row.string("model"), "model"), appliesTo: try row.strings("applies_to") ?? [],
            precision: try row.required(row.string("precision"), "precision").lowercased(),
            engine: try row.required(row.string("engine"), "engine"), engineVersion: try row.required(row.string("engine_version"), "engine_version"),
            gpu: try row.required(row.string("gpu"), "gpu").lowercased(), gpus: gpus, inputTokens: input, outputTokens: output,
            concurrency: try row.integer("concurrency"), outputTokensPerSecond: tokensPerSecond, requestsPerSecond: requestsPerSecond,
            ttftMs: try row.number("ttft_ms"), at: at, latencyTarget: try row.string("latency_target"),
            source: try row.required(row.string("source"), "source"), checked: try row.checkedDate(), note: try row.string("note"))
    }

    private static func parseHosted(_ row: Fields, _ id: String) throws(EconomicsDataError) -> HostedPrice {
        try row.checkKnown(["id", "model", "provider", "offered_as", "input_per_mtok", "cached_input_per_mtok", "output_per_mtok",
                            "source", "checked"])
        let rates = ModelPrice.Rates(input: try row.required(row.decimal("input_per_mtok"), "input_per_mtok"),
                                     cachedInput: try row.decimal("cached_input_per_mtok"),
                                     output: try row.required(row.decimal("output_per_mtok"), "output_per_mtok"))
        return HostedPrice(id: id, model: try row.required(row.string("model"), "model"),
                           provider: try row.required(row.string("provider"), "provider"),
                           offeredAs: try row.required(row.string("offered_as"), "offered_as"), price: ModelPrice(rates: rates),
                           source: try row.required(row.string("source"), "source"), checked: try row.checkedDate())
    }
}

/// One JSON object's fields, read with strict types; every failure names the file, the row and the field.
private struct Fields {
    let values: [String: Any]
    let origin: String
    let row: String

    init(_ value: Any, origin: String, row: String, known: Set<String>?) throws(EconomicsDataError) {
        guard let object = value as? [String: Any] else { throw EconomicsDataError(origin: origin, row: row, problem: "must be an object") }
        values = object
        self.origin = origin
        self.row = row
        if let known { try checkKnown(known) }
    }

    func checkKnown(_ known: Set<String>) throws(EconomicsDataError) {
        if let unknown = values.keys.sorted().first(where: { !known.contains($0) }) {
            throw error(unknown, "is not a known field")
        }
    }

    func error(_ field: String, _ problem: String) -> EconomicsDataError {
        EconomicsDataError(origin: origin, row: row, field: field, problem: problem)
    }

    func required<T>(_ value: T?, _ field: String) throws(EconomicsDataError) -> T {
        guard let value else { throw error(field, "is missing") }
        return value
    }

    private func present(_ field: String) -> Any? {
        guard let value = values[field], !(value is NSNull) else { return nil }
        return value
    }

    func string(_ field: String) throws(EconomicsDataError) -> String? {
        guard let value = present(field) else { return nil }
        guard let text = value as? String else { throw error(field, "must be a string") }
        return text
    }

    func strings(_ field: String) throws(EconomicsDataError) -> [String]? {
        guard let value = present(field) else { return nil }
        guard let list = value as? [String] else { throw error(field, "must be a list of strings") }
        return list
    }

    /// Money and other exact amounts travel as decimal strings, never through a binary float.
    func decimal(_ field: String) throws(EconomicsDataError) -> Nanodollars? {
        guard let value = present(field) else { return nil }
        guard let text = value as? String else { throw error(field, "must be a decimal string such as \"2.99\"") }
        guard let amount = Nanodollars(decimalString: text) else {
            throw error(field, "\"\(text)\" is not a decimal such as \"2.99\" (at most 9 decimal places)")
        }
        guard amount.value >= 0 else { throw error(field, "must not be negative") }
        return amount
    }

    func number(_ field: String) throws(EconomicsDataError) -> Double? {
        guard let value = present(field) else { return nil }
        guard !(value is String), !(value is Bool && !(value is NSNumber)), let number = value as? NSNumber,
              number.doubleValue.isFinite else { throw error(field, "must be a number") }
        return number.doubleValue
    }

    func integer(_ field: String) throws(EconomicsDataError) -> Int? {
        guard let number = try number(field) else { return nil }
        guard number == number.rounded(), abs(number) < 1e15 else { throw error(field, "must be a whole number") }
        return Int(number)
    }

    func bool(_ field: String) throws(EconomicsDataError) -> Bool? {
        guard let value = present(field) else { return nil }
        guard let flag = value as? Bool else { throw error(field, "must be true or false") }
        return flag
    }

    /// `YYYY-MM-DD`, or `YYYY-MM` when only the month is known.
    func checkedDate() throws(EconomicsDataError) -> String {
        let text = try required(string("checked"), "checked")
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        let shaped = (parts.count == 2 || parts.count == 3) && parts[0].count == 4 && parts.dropFirst().allSatisfy { $0.count == 2 }
            && parts.allSatisfy { $0.allSatisfy(\.isASCIIDigitCharacter) }
        let month = shaped ? Int(parts[1]) ?? 0 : 0
        let day = shaped && parts.count == 3 ? Int(parts[2]) ?? 0 : 1
        guard shaped, (1...12).contains(month), (1...31).contains(day) else { throw error("checked", "\"\(text)\" is not a date YYYY-MM-DD (or YYYY-MM)") }
        return text
    }
}
