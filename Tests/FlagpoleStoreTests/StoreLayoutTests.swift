import FlagpoleStore
import Testing

@Suite("Store layout")
struct StoreLayoutTests {
    @Test("every key of an environment shares one hash tag")
    func hashTag() throws {
        let layout = try StoreLayout(environment: "prod")
        for key in layout.scriptKeys + [layout.changes] {
            #expect(key.hasPrefix("flagpole:{prod}:"))
        }
    }

    @Test("rejects environment names that would break the hash tag", arguments: ["", "a}b", "{x}", "a b", "-x", String(repeating: "a", count: 65)])
    func invalidNames(name: String) {
        #expect(throws: StoreError.self) { try StoreLayout(environment: name) }
    }
}
