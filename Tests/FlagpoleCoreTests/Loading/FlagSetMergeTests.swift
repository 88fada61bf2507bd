import FlagpoleRollout
import Testing

@testable import FlagpoleCore

@Suite("Merging the files of an environment")
struct FlagSetMergeTests {
    static let shared = FlagSource(
        path: "flags/prod/shared.yaml",
        text: """
            $evaluators:
              staff:
                ends_with: [{var: email}, "@example.com"]
            metadata:
              flagSetId: shop/prod
            """)

    @Test("flags, evaluators and metadata merge into one flagd document")
    func merge() {
        let a = FlagSource(
            path: "flags/prod/a.yaml",
            text: """
                flags:
                  color:
                    state: ENABLED
                    variants: {red: "#f00", blue: "#00f"}
                    defaultVariant: red
                    targeting: {if: [{$ref: staff}, blue]}
                metadata:
                  version: "7"
                """)
        let b = FlagSource(
            path: "flags/prod/b.json",
            text:
                #"{"flags": {"limit": {"state": "DISABLED", "variants": {"low": 1, "high": 9}, "defaultVariant": "low"}}, "metadata": {"flagSetId": "shop/prod"}}"#
        )
        let load = FlagSetLoader.load([a, b, Self.shared])
        #expect(load.diagnostics.isEmpty)
        #expect(load.files == ["flags/prod/a.yaml", "flags/prod/b.json", "flags/prod/shared.yaml"])
        #expect(
            load.document == [
                "flags": [
                    "color": [
                        "state": "ENABLED", "variants": ["red": "#f00", "blue": "#00f"], "defaultVariant": "red",
                        "targeting": ["if": [["$ref": "staff"], "blue"]],
                    ],
                    "limit": ["state": "DISABLED", "variants": ["low": 1, "high": 9], "defaultVariant": "low"],
                ],
                "$evaluators": ["staff": ["ends_with": [["var": "email"], "@example.com"]]],
                "metadata": ["flagSetId": "shop/prod", "version": "7"],
            ])
        #expect(load.flagLocations["color"]?.description == "flags/prod/a.yaml:2:3")
        #expect(load.flagLocations["limit"]?.description == "flags/prod/b.json:1:21")
        #expect(load.evaluatorLocations["staff"]?.description == "flags/prod/shared.yaml:2:3")
    }

    @Test("a flag key in two files is an error naming both places")
    func duplicateAcrossFiles() {
        let a = FlagSource(path: "flags/prod/a.yaml", text: "flags:\n  f:\n    state: ENABLED\n    variants: {a: 1}\n")
        let b = FlagSource(
            path: "flags/prod/b.yaml",
            text: "flags:\n  g:\n    state: ENABLED\n    variants: {a: 1}\n  f:\n    state: DISABLED\n    variants: {a: 1}\n")
        let load = FlagSetLoader.load([a, b])
        #expect(
            load.diagnostics.map(\.description) == [
                #"flags/prod/b.yaml:5:3: f: flag "f" is defined twice in this environment: here and at flags/prod/a.yaml:2:3 (hint: a flag key may appear once per environment; remove or rename one of them)"#
            ])
        #expect(load.flags["f"]?["state"] == "ENABLED")
        #expect(load.hasErrors)
    }

    @Test("an evaluator in two files is an error; conflicting flag-set metadata is an error, equal is fine")
    func evaluatorsAndMetadata() {
        let other = FlagSource(
            path: "flags/prod/z.yaml",
            text: "flags: {}\n$evaluators:\n  staff: {==: [1, 1]}\nmetadata:\n  flagSetId: shop/test\n")
        let same = FlagSource(path: "flags/prod/y.yaml", text: "flags: {}\nmetadata:\n  flagSetId: shop/prod\n")
        let load = FlagSetLoader.load([Self.shared, same, other])
        expectDiagnostics(
            load,
            [
                #"E 3:3 -: evaluator "staff" is defined twice in this environment: here and at flags/prod/shared.yaml:2:3"#,
                #"E 5:14 -: flag-set metadata "flagSetId" is "shop/test" here but "shop/prod" at flags/prod/shared.yaml:5:14"#,
            ])
    }

    @Test("evaluators of one file serve the flags of another")
    func crossFileReference() {
        let flags = FlagSource(
            path: "flags/prod/a.yaml",
            text: "flags:\n  f:\n    state: ENABLED\n    variants: {a: 1, b: 2}\n    targeting: {if: [{$ref: staff}, a, b]}\n")
        #expect(FlagSetLoader.load([flags, Self.shared]).diagnostics.isEmpty)
        expectDiagnostics(FlagSetLoader.load([flags]), [#"W 5:29 f: no evaluator named "staff""#])
    }

    @Test("flagd's list form of flags is read by key, with a warning, and locations follow")
    func flagList() {
        let text = """
            {"flags": [
              {"key": "a", "state": "ENABLED", "variants": {"x": 1}, "defaultVariant": "y"},
              {"state": "ENABLED"}
            ]}
            """
        let load = FlagSetLoader.load(path: "flags/prod/list.json", text: text)
        #expect(load.flags["a"] == ["state": "ENABLED", "variants": ["x": 1], "defaultVariant": "y"])
        expectDiagnostics(
            load,
            [
                "W 1:11 -: flags is a list (flagd's import form)",
                #"E 2:76 a: defaultVariant "y" is not one of the variants ("x")"#,
                #"E 3:3 -: each flag in the flags list needs a "key""#,
            ])
    }

    @Test("a malformed file is reported and the others still load")
    func malformedFile() {
        let good = FlagSource(path: "flags/prod/a.yaml", text: "flags:\n  f:\n    state: ENABLED\n    variants: {a: 1}\n")
        let bad = FlagSource(path: "flags/prod/b.json", text: "{\"flags\": {\"g\": }}")
        let load = FlagSetLoader.load([good, bad])
        #expect(load.diagnostics.map(\.description) == ["flags/prod/b.json:1:17: malformed JSON: unexpected character '}', expected a value"])
        #expect(load.flags.keys.sorted() == ["f"])
    }

    @Test("guard policies come from rollout.* metadata, over the project's and the built-in defaults")
    func guardPolicy() {
        let load = LoadingTestSupport.load(
            "flags:\n  f:\n    state: ENABLED\n    variants: {a: 1}\n    metadata: {rollout.watch: 30m, rollout.steps: \"10,100\"}\n")
        let policy = load.guardPolicy(forFlag: "f")
        #expect(policy == GuardPolicy(watch: .seconds(1800), steps: [10, 100]))
        let config = ProjectConfig(guardPolicy: GuardPolicy(watch: .seconds(7200), minSamples: 50))
        let effective = config.guardPolicy(forFlagMetadata: load.flags["f"]?["metadata"])
        #expect(effective.watch == .seconds(1800))
        #expect(effective.minSamples == 50)
        #expect(effective.maxErrorRate == GuardPolicy.builtIn.maxErrorRate)
        #expect(load.guardPolicy(forFlag: "missing") == nil)
    }
}
