import FlagpoleCore
import Testing

@testable import Flagpole

@Suite("The effective flag document flagd sync sends: `cat` of a variable gets an explicit \"\" default")
struct EffectiveFlagsTests {
    @Test("a {\"var\": X} directly inside a cat becomes {\"var\": [X, \"\"]}; every other var, and one with a default, is left alone")
    func rewrite() throws {
        let rule = try JSONParser.parse(
            #"{"if": [{"var": "vip"}, {"fractional": [{"cat": [{"var": "$flagd.flagKey"}, {"var": ["user.name"]}, "-", {"var": ["a", "x"]}]}, ["on", 1]]}, {"cat": [{"var": "id"}]}]}"#
        )
        let expected = try JSONParser.parse(
            #"{"if": [{"var": "vip"}, {"fractional": [{"cat": [{"var": ["$flagd.flagKey", ""]}, {"var": ["user.name", ""]}, "-", {"var": ["a", "x"]}]}, ["on", 1]]}, {"cat": [{"var": ["id", ""]}]}]}"#
        )
        #expect(rule.withExplicitCatDefaults == expected)
        #expect(expected.withExplicitCatDefaults == expected, "applying it twice changes nothing")
    }

    @Test("for this engine the rewritten rules are the same rules: equal results with the attribute, without it, and null")
    func sameForThisEngine() throws {
        let original = try JSONParser.parse(
            #"""
            {"flags": {
              "split": {"state": "ENABLED", "variants": {"a": "a", "b": "b", "c": "c"}, "defaultVariant": "a",
                "targeting": {"fractional": [{"cat": [{"var": "$flagd.flagKey"}, {"var": "user.name"}]}, ["a", 1], ["b", 1], ["c", 1]]}},
              "rollout": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
                "targeting": {"if": [{"==": [{"fractional": [{"cat": ["seed-1", {"var": "targetingKey"}]}, ["t", 50], ["c", 50]]}, "t"]}, "on", "off"]}},
              "joined": {"state": "ENABLED", "variants": {"k": "k", "knull": "knull", "kann": "kann", "k0": "k0"}, "defaultVariant": "k",
                "targeting": {"cat": ["k", {"var": "name"}]}}
            }}
            """#)
        guard case .object(var root) = original, case .object(let flags)? = root["flags"] else { throw EffectiveFlagsTestError() }
        root["flags"] = .object(
            flags.mapValues { definition in
                guard case .object(var flag) = definition else { return definition }
                flag["targeting"] = flag["targeting"]?.withExplicitCatDefaults
                return .object(flag)
            })
        #expect(JSONValue.object(root) != original)
        let before = CompiledFlagSet(original), after = CompiledFlagSet(.object(root))
        var contexts: [JSONValue] = [[:], ["name": .null], ["name": "ann"], ["name": 0], ["user": ["name": .null]]]
        for i in 0..<40 {
            contexts.append(["targetingKey": .string("user-\(i)"), "user": ["name": .string("n\(i)")]])
            contexts.append(["user": ["name": .string("n\(i)")]])
        }
        for context in contexts.map(EvaluationContext.init) {
            for key in ["split", "joined"] {
                let a = before.string(key, default: "?", context: context), b = after.string(key, default: "?", context: context)
                #expect(a.value == b.value && a.variant == b.variant && a.reason == b.reason, "\(key)")
            }
            let a = before.boolean("rollout", default: false, context: context), b = after.boolean("rollout", default: false, context: context)
            #expect(a.value == b.value && a.variant == b.variant && a.reason == b.reason)
        }
    }
}

private struct EffectiveFlagsTestError: Error {}
