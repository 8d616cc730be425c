import Foundation
import Logging
import TollgateProviders

/// `log.format: json`: one JSON object per line on standard error, for log collectors —
/// `{"time", "level", "label", "message", …metadata}`, metadata flattened into the object.
struct JSONLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var fields: [String: String] = [:]
        for (key, value) in metadata.merging(event.metadata ?? [:], uniquingKeysWith: { $1 }) { fields[key] = "\(value)" }
        var line = #"{"time":"# + JSONString.quoted(RFC3339.format(Date())) + #","level":"# + JSONString.quoted(event.level.rawValue)
            + #","label":"# + JSONString.quoted(label) + #","source":"# + JSONString.quoted(event.source)
            + #","message":"# + JSONString.quoted(event.message.description)
        for key in fields.keys.sorted() where !["time", "level", "label", "source", "message"].contains(key) {
            line += "," + JSONString.quoted(key) + ":" + JSONString.quoted(fields[key]!)
        }
        line += "}\n"
        FileHandle.standardError.write(Data(line.utf8))
    }
}
