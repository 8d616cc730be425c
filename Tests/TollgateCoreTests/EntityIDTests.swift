import Testing
import TollgateCore

@Suite("Entity ids and references: an id is never taken for a name, nor a name for an id")
struct EntityIDTests {
    @Test("every id made has the shape of an id", arguments: ["org", "team", "user", "key", "budget"])
    func madeIDs(prefix: String) {
        for _ in 0..<100 { #expect(EntityID.isShaped(EntityID.make(prefix))) }
    }

    @Test("text of an id's shape, in either letter case, is shaped like an id", arguments: [
        "user_ede2504853e1c3df", "team_0123456789abcdef", "x_0000000000000000", "USER_EDE2504853E1C3DF", "Key_ABCDEF0123456789",
    ])
    func shaped(text: String) {
        #expect(EntityID.isShaped(text))
    }

    @Test("names are not shaped like ids", arguments: [
        "alice", "platform", "user_ede2504853e1c3d", "user_ede2504853e1c3df0", "user_ede2504853e1c3dg", "user-ede2504853e1c3df",
        "_ede2504853e1c3df", "user_", "my_team_0123456789abcdef", "user2_0123456789abcdef", "用户_0123456789abcdef",
        "user_０１２３４５６７８９ａｂｃｄｅｆ", "",
    ])
    func notShaped(text: String) {
        #expect(!EntityID.isShaped(text))
    }

    @Test("a reference shaped like an id matches only that id; any other matches only that name")
    func references() {
        let id = "user_ede2504853e1c3df"
        #expect(EntityReference(id) == .id(id))
        #expect(EntityReference("alice") == .name("alice"))
        #expect(EntityReference(id).matches(id: id, name: "alice"))
        #expect(!EntityReference(id).matches(id: "user_0000000000000000", name: id))
        #expect(EntityReference("alice").matches(id: "user_0000000000000000", name: "alice"))
        #expect(!EntityReference("alice").matches(id: "alice", name: "bob"))
        #expect(!EntityReference("alice").matches(id: "key_0000000000000000", name: nil))
    }
}
