import Flagpole
import FlagpoleTestKit
import Testing

@testable import HelloFlags

/// The example's request logic tested the way an app tests its own: in-memory flags from
/// FlagpoleTestKit, the production engine, no Redis.
@Suite("The example, tested with InMemoryFlags (no Redis)")
struct ExampleWithTestKitTests {
    static let flagFile = """
        flags:
          new-checkout:
            state: ENABLED
            variants: {"on": true, "off": false}
            defaultVariant: "off"
            targeting:
              if:
                - ends_with: [{var: targetingKey}, "@flagpole.dev"]
                - "on"
                - null
        """

    @Test("the page follows the flag, its targeting and a flagctl-style set; outcomes are recorded per variant")
    func checkoutFollowsTheFlag() throws {
        let flags = try InMemoryFlags(yaml: Self.flagFile)
        #expect(try checkoutPage(user: "ann", flags: flags) == "classic checkout for ann\n")
        #expect(try checkoutPage(user: "bob@flagpole.dev", flags: flags) == "new checkout for bob@flagpole.dev\n")
        try flags.set("new-checkout", variant: "on")
        #expect(try checkoutPage(user: "ann", flags: flags) == "new checkout for ann\n")
        #expect(throws: CheckoutError.self) { try checkoutPage(user: "", flags: flags) }
        try flags.disable("new-checkout")
        #expect(try checkoutPage(user: "ann", flags: flags) == "classic checkout for ann\n")
        #expect(
            flags.outcomes.map { [$0.variant ?? "-", $0.success ? "ok" : "err"] } == [
                ["off", "ok"], ["on", "ok"], ["on", "ok"], ["on", "err"], ["-", "ok"],
            ])
    }

    @Test("changes that name no flag or no variant are clear errors; a removed flag gives FLAG_NOT_FOUND; an update is served")
    func changes() throws {
        let flags = try InMemoryFlags(yaml: Self.flagFile)
        #expect(throws: InMemoryFlagsError.self) { try flags.set("nope", variant: "on") }
        do {
            try flags.set("new-checkout", variant: "purple")
            Issue.record("an unknown variant was accepted")
        } catch {
            #expect(error.description == "'purple' is not a variant of 'new-checkout' (its variants: off, on)")
        }
        try flags.update(["limit": ["state": "ENABLED", "variants": ["low": 10, "high": 100], "defaultVariant": "high"]])
        #expect(flags.integer("limit", default: 0) == 100)
        try flags.remove("limit")
        #expect(flags.integerDetails("limit", default: 7, context: .empty).errorCode == .flagNotFound)
        #expect(throws: InMemoryFlagsError.self) { try InMemoryFlags(yaml: "flags:\n  bad:\n    state: MAYBE\n") }
    }
}
