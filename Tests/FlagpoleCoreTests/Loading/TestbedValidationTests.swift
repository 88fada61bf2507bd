import Foundation
import Testing

@testable import FlagpoleCore

@Suite("The flagd testbed validates", .enabled(if: LoadingTestSupport.hasTestbed, "needs ../shared/flagd-testbed"))
struct TestbedValidationTests {
    static func load(_ relative: String) throws -> FlagSetLoad {
        let url = LoadingTestSupport.testbed.appendingPathComponent(relative)
        return FlagSetLoader.load(path: relative, text: try LoadingTestSupport.read(url))
    }

    @Test(
        "the conformance flag files load with no errors; only the deliberately odd flags warn",
        arguments: [
            (
                "flags-combined/allFlags.json", 71,
                [
                    "ends-with-wrong-args-flag", "equal-greater-lesser-version-flag", "error-targeting-flag",
                    "fractional-negative-weight-flag", "fractional-zero-weights-flag", "missing-variant-targeting-flag",
                    "ref-to-nonexistent-evaluator-flag", "semver-invalid-operator-flag", "semver-wrong-args-flag",
                    "starts-ends-flag", "starts-with-wrong-args-flag", "targeting-null-flag",
                ]
            ),
            (
                "evaluator/flags/testkit-flags.json", 60,
                [
                    "ends-with-wrong-args-flag", "fractional-negative-weight-flag", "fractional-zero-weights-flag",
                    "ref-to-nonexistent-evaluator-flag", "semver-invalid-operator-flag", "semver-wrong-args-flag",
                    "starts-with-wrong-args-flag",
                ]
            ),
        ])
    func conformanceFiles(path: String, flagCount: Int, warned: [String]) throws {
        let load = try Self.load(path)
        #expect(load.errorCount == 0, "\(load.diagnostics.filter(\.isError))")
        #expect(load.flags.count == flagCount)
        #expect(Set(load.diagnostics.compactMap(\.flagKey)) == Set(warned))
        #expect(load.evaluators.keys.sorted() == ["is_ballmer"])
    }

    static let positiveFlagFixtures = [
        "example-simple.flagd.json", "example.flagd.json", "example.flagdimport.map.json", "no-default-variant.json",
        "null-default-variant.json", "undefined-default-variant.json", "with-metadata.json", "with-valid-targeting.json",
    ]

    @Test("the schema's positive flag fixtures are clean", arguments: positiveFlagFixtures)
    func positive(_ name: String) throws {
        let load = try Self.load("schemas/test/flags/positive/" + name)
        #expect(load.diagnostics.isEmpty, "\(load.diagnostics)")
    }

    @Test("flagd's list form loads with one warning")
    func listForm() throws {
        let list = try Self.load("schemas/test/flags/positive/example.flagdimport.array.json")
        let map = try Self.load("schemas/test/flags/positive/example.flagdimport.map.json")
        #expect(
            list.diagnostics.map(\.brief) == [
                "W 3:12 -: flags is a list (flagd's import form); Flagpole reads it as an object keyed by each flag's \"key\""
            ])
        #expect(list.document == map.document)
    }

    @Test(
        "the schema's negative flag fixtures are each reported",
        arguments: [
            (
                "empty-variants.json",
                [#"W 6:19 myBoolFlag: the flag has no variants"#, #"E 7:25 myBoolFlag: defaultVariant "on" is not one of the variants"#]
            ),
            ("malformed-flag.json", [#"E 12:19 not-a-flag: missing "state""#, #"E 12:19 not-a-flag: missing "variants""#]),
            ("missing-variants.json", [#"E 4:19 myBoolFlag: missing "variants""#]),
            ("mixed-variant-types.ffconfig.json", [#"W 6:19 myBoolFlag: variants mix value types: boolean ("on"), string ("off")"#]),
            ("state-set-incorrectly.json", [#"E 5:16 myBoolFlag: state must be ENABLED or DISABLED, not "WILL-FAIL""#]),
            ("with-array-flags.json", ["W 3:12 -: flags is a list"]),
            ("with-invalid-flag-metadata.json", [#"W 12:20 myBoolFlag: metadata "invalid" is object"#]),
            ("with-invalid-flag-set-metadata.json", [#"W 14:16 -: metadata "invalid" is object"#]),
            ("with-invalid-targeting.json", [#"W 12:28 targetedFlag: unknown operator "not-a-real-rule""#]),
        ])
    func negative(name: String, expected: [String]) throws {
        expectDiagnostics(try Self.load("schemas/test/flags/negative/" + name), expected)
    }

    /// Static analysis of a bare targeting fixture.
    static func analyse(_ relative: String) throws -> [Diagnostic] {
        let url = LoadingTestSupport.testbed.appendingPathComponent("schemas/test/targeting/" + relative)
        let document = SourceDocument.parse(path: relative, text: try LoadingTestSupport.read(url))
        let analyzer = TargetingAnalyzer(
            evaluators: ["some-ref": ["==": [1, 1]]], algorithm: .v3, flagKey: "f", evaluatorName: nil)
        var sink = DiagnosticSink(document: document)
        analyzer.check(try #require(document.value), at: "", into: &sink)
        return sink.diagnostics
    }

    @Test(
        "the schema's positive targeting fixtures raise nothing",
        arguments: [
            "basic-json-ops.json", "custom-ops.json", "fractional-dynamic-weights.json", "fractional-mixed-weights.json",
            "fractional-non-string.json", "fractional-single-entry.json", "if-shorthand.json",
        ])
    func positiveTargeting(_ name: String) throws {
        let diagnostics = try Self.analyse("positive/" + name)
        #expect(diagnostics.isEmpty, "\(diagnostics)")
    }

    @Test(
        "the schema's negative targeting fixtures each warn",
        arguments: [
            ("fractional-decimal-weighting.json", "W 4:18 f: the weight 25.5 is not a whole number"),
            ("fractional-invalid-bucketing.json", #"W 3:5 f: the bucketing value is the constant "invalid""#),
            ("fractional-invalid-weighting.json", #"W 4:18 f: a weight must be a number, not the string "25""#),
            ("fractional-negative-weighting.json", "W 4:18 f: the negative weight -25 counts as 0"),
            ("invalid-ends-with-param.json", "W 4:38 f: ends_with compares strings; with the number 0 it returns null"),
            ("invalid-flagd-props.json", #"W 4:23 f: "$flagd.invalidProp" is always null"#),
            ("invalid-starts-with-param.json", "W 4:40 f: starts_with compares strings; with the number 0 it returns null"),
            ("sem-ver-invalid-range-specifier.json", #"W 4:41 f: "*" is not a sem_ver operator"#),
            ("sem-ver-invalid-ver-expression.json", #"W 4:46 f: "2.0.0.0" is not a semantic version"#),
        ])
    func negativeTargeting(name: String, expected: String) throws {
        let diagnostics = try Self.analyse("negative/" + name)
        #expect(diagnostics.count == 1, "\(diagnostics)")
        #expect(diagnostics.first?.brief.hasPrefix(expected) == true, "\(diagnostics.map(\.brief))")
    }
}
