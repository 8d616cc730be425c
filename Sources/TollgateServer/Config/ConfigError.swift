/// Why a config file was refused: `tollgate.yaml:12: models[0].price.input_per_mtok: expected a decimal
/// number, got "abc"`. A config is all or nothing, so the first problem found is the one reported.
public struct ConfigError: Error, Hashable, Sendable, CustomStringConvertible {
    public var file: String
    /// 1-based; `nil` when the problem is not on one line (the file cannot be read).
    public var line: Int?
    /// The field path (`server.timeouts.connect_ms`, `models[0].price`); `nil` for the document itself.
    public var field: String?
    public var problem: String

    public init(file: String, line: Int?, field: String?, problem: String) {
        self.file = file
        self.line = line
        self.field = field
        self.problem = problem
    }

    public var description: String {
        var text = file
        if let line { text += ":\(line)" }
        text += ": "
        if let field { text += field + ": " }
        return text + problem
    }
}
