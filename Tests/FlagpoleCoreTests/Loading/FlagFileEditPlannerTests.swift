import FlagpoleCore
import Testing

@Suite("Planning the edit of a flag file by source spans (flagctl reconcile)")
struct FlagFileEditPlannerTests {
    static let served: JSONValue = [
        "state": "ENABLED", "variants": ["on": true, "off": false], "defaultVariant": "off", "metadata": ["rollout.watch": "1h"],
    ]

    func plan(_ path: String, _ text: String, flag: String, served: JSONValue, evaluators: [String: JSONValue] = [:]) throws -> FlagFileEditPlan {
        switch FlagFileEditPlanner.plan(path: path, text: text, flag: flag, served: served, evaluators: evaluators) {
        case .success(let plan): return plan
        case .failure(let refusal): throw refusal
        }
    }

    func refusal(_ path: String, _ text: String, flag: String, served: JSONValue) -> FlagFileEditRefusal? {
        if case .failure(let r) = FlagFileEditPlanner.plan(path: path, text: text, flag: flag, served: served, evaluators: [:]) { return r }
        return nil
    }

    static let commented = """
        # Checkout flags: reviewed by the payments team.
        flags:
          new-checkout:
            state: ENABLED # always on in prod
            variants:
              "on": true
              "off": false
            defaultVariant: "on"   # rolled out 2026-01-01
            targeting:
              # beta users first
              if:
                - in: ["@example.com", {var: email}]
                - "on"
                - "off"
            metadata:
              rollout.watch: 1h
          other:
            state: ENABLED
            variants: {a: 1, b: 2}
            defaultVariant: a

        """

    @Test("YAML with comments: only the changed value and the removed member change; comments, quoting, order stay")
    func yamlWithComments() throws {
        let p = try plan("flags/prod/checkout.yaml", Self.commented, flag: "new-checkout", served: Self.served)
        #expect(
            p.newText == """
                # Checkout flags: reviewed by the payments team.
                flags:
                  new-checkout:
                    state: ENABLED # always on in prod
                    variants:
                      "on": true
                      "off": false
                    defaultVariant: "off"   # rolled out 2026-01-01
                    metadata:
                      rollout.watch: 1h
                  other:
                    state: ENABLED
                    variants: {a: 1, b: 2}
                    defaultVariant: a

                """)
        #expect(p.edits.count == 2)
    }

    @Test("a kill switch: state becomes DISABLED in place, the comment after it stays")
    func state() throws {
        var served = Self.served.objectValue!
        served["state"] = "DISABLED"
        served["defaultVariant"] = "on"
        served["targeting"] = ["if": [["in": ["@example.com", ["var": "email"]]], "on", "off"]]
        let p = try plan("f.yaml", Self.commented, flag: "new-checkout", served: .object(served))
        #expect(p.newText == Self.commented.replacing("state: ENABLED # always", with: "state: DISABLED # always"))
    }

    @Test("a member the served definition adds goes after the last member, at the members' indentation")
    func yamlInsert() throws {
        let served: JSONValue = ["state": "ENABLED", "variants": ["a": 1, "b": 2], "defaultVariant": "b", "metadata": ["owner": "payments team"]]
        let p = try plan("f.yaml", Self.commented, flag: "other", served: served)
        #expect(
            p.newText.hasSuffix(
                """
                  other:
                    state: ENABLED
                    variants: {a: 1, b: 2}
                    defaultVariant: b
                    metadata:
                      owner: payments team

                """))
        #expect(p.newText.hasPrefix(String(Self.commented.prefix(300))))
    }

    @Test("a file that already says it: no edit")
    func agrees() throws {
        let file: JSONValue = ["state": "ENABLED", "variants": ["a": 1, "b": 2], "defaultVariant": "a"]
        let p = try plan("f.yaml", Self.commented, flag: "other", served: file)
        #expect(p.edits.isEmpty && p.newText == Self.commented)
    }

    static let anchors = """
        flags:
          a:
            state: ENABLED
            variants: &bool
              "on": true
              "off": false
            defaultVariant: "off"
          b:
            state: ENABLED
            variants: *bool
            defaultVariant: "off"

        """

    @Test("an alias whose value must change is replaced by the value written in place; the anchor and the other flag stay")
    func aliasWrittenInPlace() throws {
        let served: JSONValue = ["state": "ENABLED", "variants": ["on": true, "off": false, "dark": false], "defaultVariant": "off"]
        let p = try plan("f.yaml", Self.anchors, flag: "b", served: served)
        #expect(p.newText == Self.anchors.replacing("variants: *bool", with: #"variants: {"dark": false, "off": false, "on": true}"#))
    }

    @Test("a change inside an anchor other flags alias is refused, naming the anchor and where it is used")
    func sharedAnchorRefused() throws {
        let served: JSONValue = ["state": "ENABLED", "variants": ["on": true, "off": false, "dark": false], "defaultVariant": "off"]
        let r = try #require(refusal("f.yaml", Self.anchors, flag: "a", served: served))
        #expect(r.message.contains("&bool") && r.message.contains("(line 10)"), "\(r)")
        #expect(r.location?.file == "f.yaml" && r.location?.line == 5)
        // A change beside the anchor is fine.
        let beside: JSONValue = ["state": "ENABLED", "variants": ["on": true, "off": false], "defaultVariant": "on"]
        let p = try plan("f.yaml", Self.anchors, flag: "a", served: beside)
        #expect(p.newText == Self.anchors.replacing("    defaultVariant: \"off\"\n  b:", with: "    defaultVariant: \"on\"\n  b:"))
    }

    static let refs = """
        $evaluators:
          beta:
            in: ["@example.com", {var: email}]
        flags:
          f:
            state: ENABLED
            variants: {"on": true, "off": false}
            defaultVariant: "off"
            targeting:
              if: [{$ref: beta}, "on", "off"]
          g:
            state: ENABLED
            variants: {"on": true, "off": false}
            defaultVariant: "off"
            targeting: {if: [{$ref: beta}, "on", "off"]}

        """
    static let evaluators: [String: JSONValue] = ["beta": ["in": ["@example.com", ["var": "email"]]]]

    @Test("a $ref whose value must change is replaced in place; $evaluators and the other flag that uses it stay")
    func refWrittenInPlace() throws {
        let served: JSONValue = [
            "state": "ENABLED", "variants": ["on": true, "off": false], "defaultVariant": "off",
            "targeting": ["if": [["in": ["@example.org", ["var": "email"]]], "on", "off"]],
        ]
        let p = try plan("f.yaml", Self.refs, flag: "f", served: served, evaluators: Self.evaluators)
        #expect(
            p.newText
                == Self.refs.replacing(
                    #"      if: [{$ref: beta}, "on", "off"]"#, with: #"      if: [{"in": ["@example.org", {"var": "email"}]}, "on", "off"]"#))
    }

    @Test("targeting through a $ref that is no longer served is removed with its lines")
    func refRemoved() throws {
        let served: JSONValue = ["state": "ENABLED", "variants": ["on": true, "off": false], "defaultVariant": "on"]
        let p = try plan("f.yaml", Self.refs, flag: "g", served: served, evaluators: Self.evaluators)
        #expect(
            p.newText
                == Self.refs.replacing(
                    "    defaultVariant: \"off\"\n    targeting: {if: [{$ref: beta}, \"on\", \"off\"]}\n", with: "    defaultVariant: \"on\"\n"))
    }

    static let json = """
        {
            "flags": {
                "new-checkout": {
                    "state": "ENABLED",
                    "variants": {
                        "on": true,
                        "off": false
                    },
                    "defaultVariant": "on",
                    "targeting": {
                        "if": [{"in": ["@example.com", {"var": "email"}]}, "on", "off"]
                    }
                }
            }
        }

        """

    @Test("JSON: the value changes in place, the removed member goes with its comma, the indentation stays")
    func jsonFile() throws {
        let served: JSONValue = ["state": "ENABLED", "variants": ["on": true, "off": false], "defaultVariant": "off"]
        let p = try plan("flags/prod/f.json", Self.json, flag: "new-checkout", served: served)
        #expect(
            p.newText == """
                {
                    "flags": {
                        "new-checkout": {
                            "state": "ENABLED",
                            "variants": {
                                "on": true,
                                "off": false
                            },
                            "defaultVariant": "off"
                        }
                    }
                }

                """)
    }

    @Test("JSON: a new member is written after the last one, with the file's four-space indentation")
    func jsonInsert() throws {
        let served: JSONValue = [
            "state": "ENABLED", "variants": ["on": true, "off": false], "defaultVariant": "on",
            "targeting": ["if": [["in": ["@example.com", ["var": "email"]]], "on", "off"]], "metadata": ["owner": "payments"],
        ]
        let p = try plan("f.json", Self.json, flag: "new-checkout", served: served)
        #expect(
            p.newText
                == Self.json.replacing(
                    "\"on\", \"off\"]\n            }\n",
                    with: "\"on\", \"off\"]\n            },\n            \"metadata\": {\n                \"owner\": \"payments\"\n            }\n"))
    }

    @Test("a flag the file does not define is refused")
    func missing() {
        let r = refusal("f.yaml", Self.commented, flag: "nope", served: Self.served)
        #expect(r?.message.contains("flag \"nope\" is not a member") == true)
    }
}
