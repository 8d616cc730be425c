import Foundation

/// Identifiers are prefixed random strings (`team_3f9a…`) so that an id can never be mistaken for a name.
public enum EntityID {
    public static func make(_ prefix: String) -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<8).map { _ in UInt8.random(in: 0...255, using: &generator) }
        return prefix + "_" + Hex.encode(bytes)
    }

    /// Whether `text` has the shape `make` gives an id: letters, `_`, 16 hex digits (in either case, so that
    /// `USER_EDE2…` is not a name that reads as an id either).
    public static func isShaped(_ text: some StringProtocol) -> Bool {
        let bytes = Array(text.utf8)
        guard let separator = bytes.lastIndex(of: UInt8(ascii: "_")), separator > 0,
              bytes.count - separator - 1 == 16 else { return false }
        let isLetter = { (byte: UInt8) in (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte | 0x20) }
        let isHexDigit = { (byte: UInt8) in
            (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte | 0x20)
        }
        return bytes[..<separator].allSatisfy(isLetter) && bytes[(separator + 1)...].allSatisfy(isHexDigit)
    }
}

/// What a reference (a path segment, `keys create --user …`, a config budget's `name`) names. Text shaped like
/// an id names an entity by its id and never by a name; any other text names it by its name. Names shaped like
/// ids are refused when entities are created, so a name can never stand for another entity's id.
public enum EntityReference: Hashable, Sendable {
    case id(String)
    case name(String)

    public init(_ text: String) {
        self = EntityID.isShaped(text) ? .id(text) : .name(text)
    }

    public func matches(id: String, name: String?) -> Bool {
        switch self {
        case .id(let reference): reference == id
        case .name(let reference): reference == name
        }
    }
}

public struct OrgRecord: Hashable, Sendable {
    public var id: String
    public var name: String
    public var createdAt: Date
    public init(id: String, name: String, createdAt: Date) {
        self.id = id; self.name = name; self.createdAt = createdAt
    }
}

public struct TeamRecord: Hashable, Sendable {
    public var id: String
    public var name: String
    public var orgID: String
    public var createdAt: Date
    public init(id: String, name: String, orgID: String, createdAt: Date) {
        self.id = id; self.name = name; self.orgID = orgID; self.createdAt = createdAt
    }
}

public struct UserRecord: Hashable, Sendable {
    public var id: String
    public var name: String
    public var teamID: String?
    public var orgID: String
    public var createdAt: Date
    public init(id: String, name: String, teamID: String?, orgID: String, createdAt: Date) {
        self.id = id; self.name = name; self.teamID = teamID; self.orgID = orgID; self.createdAt = createdAt
    }
}

/// A virtual key as stored: only the SHA-256 of the plain key is kept, never the key itself.
public struct KeyRecord: Hashable, Sendable {
    public var id: String
    public var name: String?
    /// Lower-case hex SHA-256 of the plain key.
    public var hashHex: String
    /// The first characters of the plain key (`tg-1a2b…`), enough to recognise it in a listing.
    public var prefix: String
    public var userID: String?
    public var teamID: String?
    public var orgID: String
    /// Requested names (models or routes) the key may use; `nil` means every one.
    public var allowedModels: [String]?
    public var expiresAt: Date?
    public var revokedAt: Date?
    public var rpm: Int?
    public var tpm: Int?
    public var createdAt: Date
    /// What the key may do: call models (`client`) or only read reports (`viewer`).
    public var role: KeyRole

    public init(id: String, name: String?, hashHex: String, prefix: String, userID: String?, teamID: String?,
                orgID: String, allowedModels: [String]?, expiresAt: Date?, revokedAt: Date?, rpm: Int?, tpm: Int?,
                createdAt: Date, role: KeyRole = .client) {
        self.id = id; self.name = name; self.hashHex = hashHex; self.prefix = prefix
        self.userID = userID; self.teamID = teamID; self.orgID = orgID
        self.allowedModels = allowedModels; self.expiresAt = expiresAt; self.revokedAt = revokedAt
        self.rpm = rpm; self.tpm = tpm; self.createdAt = createdAt; self.role = role
    }
}

/// A virtual key calls models through `/v1`; a viewer key reads the dashboard, `/metrics` and the admin API's
/// `GET` endpoints, and nothing else.
public enum KeyRole: String, Hashable, Sendable, CaseIterable {
    case client
    case viewer
}

public enum VirtualKey {
    public static let plainPrefix = "tg-"

    /// A new plain key: `tg-` and 48 hex digits (192 random bits).
    public static func generate() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<24).map { _ in UInt8.random(in: 0...255, using: &generator) }
        return plainPrefix + Hex.encode(bytes)
    }

    public static func hashHex(of plainKey: some StringProtocol) -> String {
        Hex.encode(SHA256.hash(Array(plainKey.utf8)))
    }

    /// What a listing shows of a key: enough to recognise it, far too little to use it.
    public static func displayPrefix(of plainKey: String) -> String {
        String(plainKey.prefix(plainPrefix.count + 6))
    }
}
