import Testing

@testable import FlagpoleCore

@Suite("flag sets")
struct CompiledFlagSetTests {
    static func set(_ text: String, algorithm: FractionalAlgorithm = .v3, now: Int64 = 1_700_000_000) throws -> CompiledFlagSet {
        CompiledFlagSet(try JSONParser.parse(text), options: .init(fractionalAlgorithm: algorithm, clock: { now }))
    }

    static let document = #"""
        {
          "metadata": {"flagSetId": "checkout", "version": "7", "team": "payments", "gone": null},
          "$evaluators": {
            "is_staff": {"ends_with": [{"var": "email"}, "@example.com"]},
            "is_beta": {"or": [{ "$ref" : "is_staff" }, {"in": [{"var": "email"}, ["beta@x.io"]]}]}
          },
          "flags": {
            "static-bool": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "on",
                            "metadata": {"team": "growth", "owner": "ana"}},
            "ratio": {"state": "ENABLED", "variants": {"low": 0.25, "high": 0.75, "count": 3}, "defaultVariant": "low",
                      "targeting": {"if": [{"var": "big"}, "count"]}},
            "list": {"state": "ENABLED", "variants": {"a": [1, 2]}, "defaultVariant": "a"},
            "staff": {"state": "ENABLED", "variants": {"yes": "yes", "no": "no"}, "defaultVariant": "no",
                      "targeting": {"if": [{"$ref":"is_staff"}, "yes", null]}},
            "beta": {"state": "ENABLED", "variants": {"yes": "yes", "no": "no"}, "defaultVariant": "no",
                     "targeting": {"if": [{"$ref": "is_beta"}, "yes", "no"]}},
            "dangling": {"state": "ENABLED", "variants": {"yes": "yes"}, "defaultVariant": "yes",
                         "targeting": {"if": [{"$ref": "nobody"}, "yes"]}},
            "numeric-name": {"state": "ENABLED", "variants": {"1": "one", "2.5": "two and a half"}, "defaultVariant": "1",
                             "targeting": {"+": [{"var": "n"}, 0.5]}},
            "time": {"state": "ENABLED", "variants": {"old": "old", "new": "new"}, "defaultVariant": "old",
                     "targeting": {"if": [{">=": [{"var": "$flagd.timestamp"}, 1700000000]}, "new", "old"]}},
            "broken-state": {"state": "ON", "variants": {"a": 1}, "defaultVariant": "a"},
            "broken-variants": {"state": "ENABLED", "variants": {}, "defaultVariant": "a"},
            "broken-targeting": {"state": "ENABLED", "variants": {"a": 1}, "defaultVariant": "a", "targeting": [1]},
            "missing-default": {"state": "ENABLED", "variants": {"a": 1}, "defaultVariant": "b"},
            "null-variant": {"state": "ENABLED", "variants": {"a": null, "b": 2}, "defaultVariant": "b",
                             "targeting": {"if": [true, "a"]}},
            "disabled-broken": {"state": "DISABLED", "variants": {"a": 1}, "defaultVariant": "a", "targeting": {"bogus": 1}},
            "not-an-object": 42
          }
        }
        """#

    @Test("a static flag returns its default variant with merged metadata (flag metadata wins)")
    func staticFlag() throws {
        let flags = try Self.set(Self.document)
        let d = flags.bool("static-bool", default: false)
        #expect(d.value == true)
        #expect(d.variant == "on")
        #expect(d.reason == .staticValue)
        #expect(d.errorCode == nil)
        #expect(d.metadata == ["flagSetId": "checkout", "version": "7", "team": "growth", "owner": "ana"])
        #expect(flags.metadata["gone"] == nil)
    }

    @Test("missing flags report FLAG_NOT_FOUND with the flag-set metadata")
    func notFound() throws {
        let flags = try Self.set(Self.document)
        let d = flags.string("nope", default: "fallback")
        #expect(d.value == "fallback")
        #expect(d.reason == .error)
        #expect(d.errorCode == .flagNotFound)
        #expect(d.metadata["flagSetId"] == "checkout")
    }

    @Test("type checks follow openfeature-flagd-core")
    func typeChecks() throws {
        let flags = try Self.set(Self.document)
        #expect(flags.integer("ratio", default: 9).errorCode == .typeMismatch)
        #expect(flags.integer("ratio", default: 9).value == 9)
        #expect(flags.double("ratio", default: 0).value == 0.25)
        let count = flags.double("ratio", default: 0, context: .init(attributes: ["big": true]))
        #expect(count.value == 3.0)
        #expect(count.reason == .targetingMatch)
        #expect(flags.evaluate("ratio", type: .float, context: .init(attributes: ["big": true])).value == .double(3))
        #expect(flags.evaluate("ratio", context: .init(attributes: ["big": true])).value == .int(3))
        #expect(flags.integer("ratio", default: 0, context: .init(attributes: ["big": true])).value == 3)
        #expect(flags.string("static-bool", default: "x").errorCode == .typeMismatch)
        #expect(flags.object("list", default: [:]).value == [1, 2])
        #expect(flags.bool("list", default: true).errorCode == .typeMismatch)
        // The code default is never type-checked.
        #expect(flags.integer("disabled-broken", default: 5).reason == .disabled)
    }

    @Test("$ref resolves structurally, nested evaluators included; a dangling $ref is PARSE_ERROR")
    func references() throws {
        let flags = try Self.set(Self.document)
        #expect(flags.string("staff", default: "x", context: .init(attributes: ["email": "a@example.com"])).value == "yes")
        let miss = flags.string("staff", default: "x", context: .init(attributes: ["email": "a@other.com"]))
        #expect(miss.value == "no")
        #expect(miss.reason == .defaultValue)
        #expect(flags.string("beta", default: "x", context: .init(attributes: ["email": "beta@x.io"])).value == "yes")
        #expect(flags.string("beta", default: "x", context: .init(attributes: ["email": "q@x.io"])).value == "no")
        let dangling = flags.string("dangling", default: "x")
        #expect(dangling.errorCode == .parseError)
        #expect(dangling.value == "x")
    }

    @Test(
        "$ref substitution does not depend on whitespace in the file",
        arguments: [
            #"{"$ref":"r"}"#, #"{"$ref": "r"}"#, #"{ "$ref" : "r" }"#, "{\n\t\"$ref\"\n:\n\"r\"\n}",
        ])
    func referenceWhitespace(reference: String) throws {
        let text =
            #"{"$evaluators": {"r": {"==": [{"var": "k"}, 1]}}, "flags": {"f": {"state": "ENABLED", "variants": {"a": "a", "b": "b"}, "defaultVariant": "b", "targeting": {"if": ["#
            + reference + #", "a", "b"]}}}}"#
        let flags = try Self.set(text)
        let d = flags.string("f", default: "x", context: .init(attributes: ["k": 1]))
        #expect(d.value == "a")
        #expect(d.reason == .targetingMatch)
    }

    @Test("a cycle of evaluators is a PARSE_ERROR, not a hang")
    func referenceCycle() throws {
        let flags = try Self.set(
            #"""
            {"$evaluators": {"a": {"!": {"$ref": "b"}}, "b": {"!": {"$ref": "a"}}},
             "flags": {"f": {"state": "ENABLED", "variants": {"true": 1}, "defaultVariant": "true", "targeting": {"$ref": "a"}}}}
            """#)
        #expect(flags.integer("f", default: 0).errorCode == .parseError)
    }

    @Test("targeting results name variants: numbers by their JavaScript text")
    func numericVariantNames() throws {
        let flags = try Self.set(Self.document)
        #expect(flags.string("numeric-name", default: "x", context: .init(attributes: ["n": 2])).value == "two and a half")
        let unknown = flags.string("numeric-name", default: "x", context: .init(attributes: ["n": 1]))
        #expect(unknown.errorCode == .general)
        #expect(unknown.value == "x")
    }

    @Test("$flagd.timestamp reads the injected clock")
    func timestamp() throws {
        #expect(try Self.set(Self.document, now: 1_700_000_000).string("time", default: "x").value == "new")
        #expect(try Self.set(Self.document, now: 1_699_999_999).string("time", default: "x").value == "old")
    }

    @Test(
        "unusable definitions evaluate to errors with the caller's default",
        arguments: [
            ("broken-state", EvaluationErrorCode.parseError),
            ("broken-variants", .parseError),
            ("broken-targeting", .parseError),
            ("not-an-object", .parseError),
            ("missing-default", .general),
            ("null-variant", .general),
        ])
    func brokenDefinitions(key: String, code: EvaluationErrorCode) throws {
        let flags = try Self.set(Self.document)
        let d = flags.integer(key, default: -1)
        #expect(d.value == -1)
        #expect(d.reason == .error)
        #expect(d.errorCode == code)
        #expect(d.variant == nil)
        #expect(d.metadata["flagSetId"] == "checkout")
    }

    @Test("a disabled flag is DISABLED even when its targeting is broken")
    func disabledSkipsTargeting() throws {
        let d = try Self.set(Self.document).evaluate("disabled-broken")
        #expect(d.reason == .disabled)
        #expect(d.value == nil)
        #expect(d.errorCode == nil)
    }

    @Test("one flag can be recompiled and swapped in; the rest is shared")
    func replacing() throws {
        let flags = try Self.set(Self.document)
        let changed = flags.compileFlag(
            key: "static-bool",
            definition: try JSONParser.parse(#"{"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off"}"#))
        let next = flags.replacing(changed)
        #expect(next.bool("static-bool", default: true).value == false)
        #expect(next.bool("static-bool", default: true).metadata["flagSetId"] == "checkout")
        #expect(flags.bool("static-bool", default: false).value == true)
        #expect(next.flagKeys == flags.flagKeys)
        let fewer = next.removing("staff")
        #expect(fewer.flagKeys.count == flags.flagKeys.count - 1)
        #expect(fewer.string("staff", default: "x").errorCode == .flagNotFound)
    }

    @Test("flags given as an array with keys (flagd daemon form)")
    func flagsArray() throws {
        let flags = try Self.set(#"{"flags": [{"key": "a", "state": "ENABLED", "variants": {"x": "x"}, "defaultVariant": "x"}]}"#)
        #expect(flags.flagKeys == ["a"])
        #expect(flags.string("a", default: "").value == "x")
    }

    @Test("contexts from JSON: a string targetingKey is the targeting key")
    func contextFromJSON() throws {
        let c = EvaluationContext(try JSONParser.parse(#"{"targetingKey": "u1", "email": "a@b.c"}"#))
        #expect(c.targetingKey == "u1")
        #expect(c.attributes == ["email": "a@b.c"])
        #expect(c.jsonValue == (try JSONParser.parse(#"{"targetingKey": "u1", "email": "a@b.c"}"#)))
        let odd = EvaluationContext(try JSONParser.parse(#"{"targetingKey": 5}"#))
        #expect(odd.targetingKey == nil)
        #expect(odd.attributes["targetingKey"] == 5)
        #expect(EvaluationContext(.array([])) == .empty)
    }

    @Test("bulk evaluation gives every flag in key order")
    func bulk() throws {
        let flags = try Self.set(Self.document)
        let all = flags.evaluateAll()
        #expect(all.map(\.flagKey) == flags.flagKeys)
        #expect(all.first { $0.flagKey == "staff" }?.reason == .defaultValue)
    }
}
