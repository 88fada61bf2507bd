import Testing

@testable import FlagpoleCore

/// One validation case: a YAML flag file and the diagnostics it must produce, each written as
/// `"E|W line:column flag: message-prefix"`.
struct ValidationCase: CustomTestStringConvertible, Sendable {
    var name: String
    var text: String
    var expected: [String]
    var testDescription: String { name }
}

extension Diagnostic {
    /// `E 3:5 flag: message`, the compact form the tests compare.
    var brief: String { "\(severity == .error ? "E" : "W") \(line):\(column) \(flagKey ?? "-"): \(message)" }
}

func expectDiagnostics(_ load: FlagSetLoad, _ expected: [String], sourceLocation: Testing.SourceLocation = #_sourceLocation) {
    let actual = load.diagnostics.map(\.brief)
    #expect(actual.count == expected.count, "\(actual)", sourceLocation: sourceLocation)
    for (a, e) in zip(actual, expected) {
        #expect(a.hasPrefix(e), "\(a)\n  does not start with\n\(e)", sourceLocation: sourceLocation)
    }
}

@Suite("Validating flag definitions")
struct FlagValidationTests {
    static let structure: [ValidationCase] = [
        ValidationCase(
            name: "flags missing", text: "$schema: x\n",
            expected: [#"E 1:1 -: missing "flags""#]),
        ValidationCase(
            name: "flags of the wrong type", text: "flags: 3\n",
            expected: ["E 1:8 -: flags must be an object keyed by flag key, not number"]),
        ValidationCase(
            name: "root not an object", text: "- 1\n",
            expected: [#"E 1:1 -: a flag file must be an object with "flags", not array"#]),
        ValidationCase(
            name: "unknown top-level key", text: "flags: {}\nflag: {}\n",
            expected: [#"W 2:1 -: unknown top-level key "flag" is ignored"#]),
        ValidationCase(
            name: "flag not an object", text: "flags:\n  f: true\n",
            expected: ["E 2:6 f: a flag must be an object with state and variants, not boolean"]),
        ValidationCase(
            name: "state and variants missing", text: "flags:\n  f:\n    defaultVariant: null\n",
            expected: [#"E 2:3 f: missing "state""#, #"E 2:3 f: missing "variants""#]),
        ValidationCase(
            name: "state of the wrong type", text: "flags:\n  f:\n    state: true\n    variants: {a: 1}\n",
            expected: ["E 3:12 f: state must be the string ENABLED or DISABLED, not true"]),
        ValidationCase(
            name: "state not ENABLED or DISABLED", text: "flags:\n  f:\n    state: Disabled\n    variants: {a: 1}\n",
            expected: [#"E 3:12 f: state must be ENABLED or DISABLED, not "Disabled""#]),
        ValidationCase(
            name: "variants of the wrong type", text: "flags:\n  f:\n    state: ENABLED\n    variants: [1, 2]\n",
            expected: ["E 4:15 f: variants must be an object of name: value, not array"]),
        ValidationCase(
            name: "empty variants", text: "flags:\n  f:\n    state: ENABLED\n    variants: {}\n",
            expected: ["W 4:15 f: the flag has no variants"]),
        ValidationCase(
            name: "defaultVariant not a variant",
            text: "flags:\n  f:\n    state: ENABLED\n    variants: {red: 1, blue: 2}\n    defaultVariant: bleu\n",
            expected: [#"E 5:21 f: defaultVariant "bleu" is not one of the variants ("blue", "red")"#]),
        ValidationCase(
            name: "defaultVariant written as a YAML boolean",
            text: "flags:\n  f:\n    state: ENABLED\n    variants: {\"true\": 1, \"false\": 0}\n    defaultVariant: true\n",
            expected: ["E 5:21 f: defaultVariant must be a variant name (a string), not the boolean true"]),
        ValidationCase(
            name: "defaultVariant null or empty is no default",
            text:
                "flags:\n  f:\n    state: ENABLED\n    variants: {a: 1}\n    defaultVariant: \"\"\n  g:\n    state: ENABLED\n    variants: {a: 1}\n    defaultVariant: ~\n",
            expected: []),
        ValidationCase(
            name: "mixed variant types",
            text: "flags:\n  f:\n    state: ENABLED\n    variants: {\"on\": true, \"off\": \"false\"}\n",
            expected: [#"W 4:15 f: variants mix value types: boolean ("on"), string ("off")"#]),
        ValidationCase(
            name: "integers and floats are one type",
            text: "flags:\n  f:\n    state: ENABLED\n    variants: {a: 1, b: 1.5}\n",
            expected: []),
        ValidationCase(
            name: "array and null variant values",
            text: "flags:\n  f:\n    state: ENABLED\n    variants:\n      list: [1, 2]\n      nothing: null\n",
            expected: [#"W 5:13 f: variant "list" is an array"#, #"W 6:16 f: variant "nothing" is null"#]),
        ValidationCase(
            name: "unknown flag property",
            text: "flags:\n  f:\n    state: ENABLED\n    variants: {a: 1}\n    defaultvariant: a\n",
            expected: [#"W 5:5 f: unknown property "defaultvariant" is ignored"#]),
        ValidationCase(
            name: "metadata values must be scalars",
            text: "flags:\n  f:\n    state: ENABLED\n    variants: {a: 1}\n    metadata:\n      owner: {team: x}\nmetadata:\n  tags: [a]\n",
            expected: [#"W 6:14 f: metadata "owner" is object"#, #"W 8:9 -: metadata "tags" is array"#]),
        ValidationCase(
            name: "metadata must be an object",
            text: "flags:\n  f:\n    state: ENABLED\n    variants: {a: 1}\n    metadata: owner\n",
            expected: ["E 5:15 f: metadata must be an object of string, number or boolean values, not string"]),
        ValidationCase(
            name: "guard-policy metadata",
            text: """
                flags:
                  f:
                    state: ENABLED
                    variants: {a: 1}
                    metadata:
                      rollout.watch: soon
                      rollout.maxErrorRate: 2
                      rollout.minSamples: 1.5
                      rollout.maxP95Latency: 300ms
                      rollout.maxErrorIncrease: 0.005
                      rollout.steps: "5,50,25"
                      rollout.watchh: 1h
                """,
            expected: [
                #"E 6:22 f: rollout.watch "soon" is not a positive duration"#,
                "E 7:29 f: rollout.maxErrorRate must be a fraction between 0 and 1, not 2",
                "E 8:27 f: rollout.minSamples must be a whole number of at least 1, not 1.5",
                #"E 11:22 f: rollout.steps must be increasing percentages between 1 and 100, not "5,50,25""#,
                #"W 12:7 f: unknown guard-policy key "rollout.watchh" is ignored"#,
            ]),
        ValidationCase(
            name: "targeting that is not an object",
            text: "flags:\n  f:\n    state: ENABLED\n    variants: {a: 1}\n    targeting: a\n",
            expected: ["W 5:16 f: targeting should be a JsonLogic rule (an object), not string"]),
        ValidationCase(
            name: "empty targeting means none", text: "flags:\n  f:\n    state: ENABLED\n    variants: {a: 1}\n    targeting: {}\n",
            expected: []),
    ]

    @Test("structure", arguments: structure)
    func structureCases(_ c: ValidationCase) {
        expectDiagnostics(LoadingTestSupport.load(c.text), c.expected)
    }

    /// A flag with variants a, b, "true", "false" and the given targeting (YAML flow or block, at
    /// line 5 column 16 when written inline).
    static func targeting(_ rule: String, variants: String = "{a: 1, b: 2}", evaluators: String = "") -> String {
        "flags:\n  f:\n    state: ENABLED\n    variants: \(variants)\n    targeting: \(rule)\n" + evaluators
    }

    static let targetingCases: [ValidationCase] = [
        ValidationCase(
            name: "unknown operator",
            text: targeting("{invalid: [1]}"),
            expected: [#"W 5:17 f: unknown operator "invalid": flagd fails the evaluation with PARSE_ERROR"#]),
        ValidationCase(
            name: "unknown operator nested, with a suggestion",
            text: targeting("{if: [{endsWith: [{var: email}, x]}, a, b]}"),
            expected: [#"W 5:23 f: unknown operator "endsWith""#]),
        ValidationCase(
            name: "one-key objects inside arrays are operations too",
            text: targeting("{if: [{in: [{var: plan}, [{free: 1}, {}, {p: 1, q: 2}]]}, a, b]}"),
            expected: [
                #"W 5:43 f: unknown operator "free""#,
                #"W 5:57 f: an object with 2 keys ("p", "q") is not a JsonLogic operation"#,
            ]),
        ValidationCase(
            name: "$ref to a missing evaluator",
            text: targeting("{if: [{$ref: staf}, a, b]}", evaluators: "$evaluators:\n  staff: {==: [{var: x}, 1]}\n"),
            expected: [#"W 5:29 f: no evaluator named "staf""#]),
        ValidationCase(
            name: "$ref inside an evaluator",
            text: targeting("{if: [{$ref: outer}, a, b]}", evaluators: "$evaluators:\n  outer: {and: [{$ref: inner}]}\n  inner: {==: [1, 1]}\n"),
            expected: [#"W 7:24 -: evaluator "outer": a $ref inside an evaluator is not resolved"#]),
        ValidationCase(
            name: "unknown operator in an evaluator",
            text: targeting("{if: [{$ref: e}, a, b]}", evaluators: "$evaluators:\n  e: {nope: 1}\n"),
            expected: [#"W 7:7 -: evaluator "e": unknown operator "nope""#]),
        ValidationCase(
            name: "a literal variant name that is not a variant",
            text: targeting("{if: [{var: x}, a, c]}"),
            expected: [#"W 5:35 f: targeting can return "c", which is not a variant ("a", "b")"#]),
        ValidationCase(
            name: "a literal returned by an evaluator in a result position",
            text: targeting("{or: [{$ref: e}, a]}", evaluators: "$evaluators:\n  e: {if: [{var: x}, z]}\n"),
            expected: [#"W 5:22 f: the evaluator "e" can return "z", which is not a variant"#]),
        ValidationCase(
            name: "a boolean result needs variants named true and false",
            text: targeting("{ends_with: [{var: email}, \"@x.com\"]}", variants: "{\"true\": 1, b: 2}"),
            expected: [
                #"W 5:16 f: targeting returns the result of ends_with (true or false), which selects the variant named "true" or "false"; this flag has no "false""#
            ]),
        ValidationCase(
            name: "boolean literals select the variants named true and false",
            text: targeting("{if: [{var: x}, true, false]}", variants: "{\"true\": 1, \"false\": 0}"),
            expected: []),
        ValidationCase(
            name: "conditions are not results",
            text: targeting("{if: [{fractional: [[false, 0], [true, 100]]}, a, b]}"),
            expected: []),
        ValidationCase(
            name: "a fractional bucket's variant that is not a variant",
            text: targeting("{fractional: [[a, 50], [c, 50]]}"),
            expected: [#"W 5:40 f: targeting can return "c", which is not a variant ("a", "b")"#]),
        ValidationCase(
            name: "fractional weights",
            text: targeting("{fractional: [{var: id}, [a, -5], [b, 2.5], [a, \"25\"], [b, 3000000000]]}"),
            expected: [
                "W 5:45 f: the negative weight -5 counts as 0",
                "W 5:54 f: the weight 2.5 is not a whole number: fractional returns null",
                #"W 5:64 f: a weight must be a number, not the string "25": fractional returns null"#,
                "W 5:75 f: the weight 3000000000 is larger than 2147483647: fractional returns null",
            ]),
        ValidationCase(
            name: "fractional weights all zero",
            text: targeting("{fractional: [[a, 0], [b, -1]]}"),
            expected: ["W 5:29 f: every weight is 0", "W 5:42 f: the negative weight -1 counts as 0"]),
        ValidationCase(
            name: "fractional total above MaxInt32",
            text: targeting("{fractional: [[a, 2000000000], [b, 2000000000]]}"),
            expected: ["W 5:29 f: the weights add up to more than 2147483647"]),
        ValidationCase(
            name: "fractional with a constant bucketing value and a bad bucket",
            text: targeting("{fractional: [\"everyone\", [a], b]}"),
            expected: [
                #"W 5:30 f: the bucketing value is the constant "everyone": every user lands in the same bucket"#,
                #"W 5:47 f: a fractional bucket is [variant, weight] or [variant], not "b""#,
            ]),
        ValidationCase(
            name: "sem_ver operator, version and arity",
            text: targeting("{if: [{sem_ver: [{var: v}, \"===\", \"2.0.0.0\"]}, a, {sem_ver: [1]}]}"),
            expected: [
                #"W 5:43 f: "===" is not a sem_ver operator: sem_ver returns null"#,
                #"W 5:50 f: "2.0.0.0" is not a semantic version"#,
                #"W 5:66 f: targeting returns the result of sem_ver (true or false), which selects the variant named "true" or "false"; this flag has no "true", "false""#,
                "W 5:76 f: sem_ver takes 3 arguments [version, operator, version], not 1: it returns null",
            ]),
        ValidationCase(
            name: "starts_with and ends_with with a non-string literal",
            text: targeting("{if: [{starts_with: [{var: id}, 3]}, a, {if: [{ends_with: [x]}, a, b]}]}"),
            expected: [
                "W 5:48 f: starts_with compares strings; with the number 3 it returns null",
                "W 5:74 f: ends_with takes 2 arguments [text, suffix], not 1: it returns null",
            ]),
        ValidationCase(
            name: "an unknown $flagd property",
            text: targeting("{if: [{==: [{var: $flagd.invalidProp}, 1]}, a, b]}"),
            expected: [#"W 5:34 f: "$flagd.invalidProp" is always null"#]),
        ValidationCase(
            name: "JsonLogic built-ins with scoped data and literal arrays",
            text: targeting("{if: [{some: [{var: pies}, {==: [{var: filling}, apple]}]}, a, {if: [{in: [{var: plan}, [free, pro]]}, b, null]}]}"),
            expected: []),
    ]

    @Test("targeting", arguments: targetingCases)
    func targetingRules(_ c: ValidationCase) {
        expectDiagnostics(LoadingTestSupport.load(c.text), c.expected)
    }

    @Test("the v2 algorithm changes what a null bucketing value means")
    func nullBucketing() {
        let text = Self.targeting("{fractional: [null, [a, 1]]}")
        expectDiagnostics(
            LoadingTestSupport.load(text, algorithm: .v3), ["W 5:30 f: the bucketing value is null: fractional returns null (fractional v3)"])
        expectDiagnostics(
            LoadingTestSupport.load(text, algorithm: .v2),
            ["W 5:30 f: the bucketing value is null: it is skipped and the targeting key is used (fractional v2)"])
    }

    @Test("the same problems in JSON point at the JSON locations")
    func json() {
        let text = """
            {
              "flags": {
                "f": {
                  "state": "ENABLED",
                  "variants": {"a": 1, "b": 2},
                  "defaultVariant": "c",
                  "targeting": {"if": [{"invalid": 1}, "a", "d"]}
                },
                "g": {"state": "ENABLED", "variants": {"a": 1}},
                "g": {"state": "ENABLED", "variants": {"a": 1}}
              }
            }
            """
        let load = LoadingTestSupport.load(text, path: "flags/prod/x.json")
        #expect(
            load.diagnostics.map(\.description) == [
                #"flags/prod/x.json:6:25: f: defaultVariant "c" is not one of the variants ("a", "b") (hint: flagd refuses to load a flag set whose defaultVariant names no variant)"#,
                #"flags/prod/x.json:7:40: f: warning: unknown operator "invalid": flagd fails the evaluation with PARSE_ERROR and the caller gets its default (hint: flagd's operators are JsonLogic's plus fractional, sem_ver, starts_with and ends_with)"#,
                #"flags/prod/x.json:7:49: f: warning: targeting can return "d", which is not a variant ("a", "b"): flagd answers GENERAL and the caller gets its default"#,
                #"flags/prod/x.json:10:5: g: flag "g" is defined twice in this file (first at flags/prod/x.json:9:5) (hint: a flag key may appear once per environment; remove or rename one of them)"#,
            ])
    }

    @Test("a diagnostic prints as file:line:column: flag-key: message and as JSON")
    func formats() {
        let error = Diagnostic(.error, at: FileLocation(file: "a.yaml", line: 3, column: 5), flagKey: "f", message: "bad", hint: "fix it")
        let warning = Diagnostic(.warning, at: FileLocation(file: "a.yaml", line: 1, column: 1), message: "odd")
        #expect(error.description == "a.yaml:3:5: f: bad (hint: fix it)")
        #expect(warning.description == "a.yaml:1:1: warning: odd")
        #expect(error.jsonValue == ["severity": "error", "file": "a.yaml", "line": 3, "column": 5, "flag": "f", "message": "bad", "hint": "fix it"])
        #expect(warning.jsonValue == ["severity": "warning", "file": "a.yaml", "line": 1, "column": 1, "message": "odd"])
    }
}
