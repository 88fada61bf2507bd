import FlagpoleCore
import Testing

/// The flagd testbed's Gherkin suites, run against the evaluator.
///
/// * `evaluator/gherkin/*.feature` against `evaluator/flags/testkit-flags.json`;
/// * the evaluation cases of the provider suites (`gherkin/targeting.feature`, `evaluation.feature`,
///   `disabled.feature`, `metadata.feature`) against `flags-combined/allFlags.json`.
///
/// Each suite runs twice: under fractional v3 (every case except those tagged for another
/// algorithm) and under v2 (the `@fractional-v2` and `@fractional-nested` cases). The provider
/// suites' `selector` option picks the flag file (`rawflags/x.json` → `flags/x.json`), so the
/// flag-set metadata scenarios and the cross-flag-set disabled rows run too.
@Suite("flagd testbed conformance")
struct ConformanceTests {
    /// Cases this evaluator does not run, with the reason; listed, never dropped silently.
    static let outOfScope: [(tag: String, reason: String)] = [
        ("@fractional-v1", "legacy float bucketing of flagd before 7190878f; Flagpole implements v2 and v3 only"),
        ("@deprecated", "expects the old ERROR/FLAG_NOT_FOUND for flags without a default variant (superseded by @no-default-variant)"),
    ]

    struct Selection: Sendable {
        var name: String
        var algorithm: FractionalAlgorithm
        var includes: @Sendable (Set<String>) -> Bool
    }

    static let selections = [
        Selection(name: "v3", algorithm: .v3) { tags in
            !tags.contains("@fractional-v2")
        },
        Selection(name: "v2", algorithm: .v2) { tags in
            tags.contains("@fractional-v2") || tags.contains("@fractional-nested")
        },
    ]

    struct Totals: CustomStringConvertible {
        var ran = 0
        var passed = 0
        var outOfScope = 0
        var description: String { "ran \(ran), passed \(passed), out of scope \(outOfScope)" }
    }

    /// Runs the selected cases of `files` and reports totals per file and run.
    static func run(files: [String], flags: String, testbed: Testbed) throws -> [String: [String: Totals]] {
        var totals: [String: [String: Totals]] = [:]
        var excluded: [String] = []
        for file in files {
            let feature = try Gherkin.parse(try testbed.text(file), file: file)
            let cases = Gherkin.cases(of: feature)
            for selection in selections {
                var runner = ConformanceRunner(testbed: testbed, defaultFlags: flags, algorithm: selection.algorithm)
                var t = Totals()
                for c in cases {
                    if let rule = outOfScope.first(where: { c.tags.contains($0.tag) }) {
                        if selection.name == "v3" {
                            t.outOfScope += 1
                            excluded.append("\(c) — \(rule.reason)")
                        }
                        continue
                    }
                    guard selection.includes(c.tags) else { continue }
                    t.ran += 1
                    do {
                        try runner.run(c)
                        t.passed += 1
                    } catch {
                        Issue.record("[\(selection.name)] \(c): \(error)")
                    }
                }
                totals[file, default: [:]][selection.name] = t
            }
        }
        print("Out of scope (\(excluded.count)):\n  " + excluded.joined(separator: "\n  "))
        for file in files {
            print("\(file): v3 \(totals[file]!["v3"]!); v2 \(totals[file]!["v2"]!)")
        }
        return totals
    }

    @Test("evaluator suites (evaluator/gherkin) against testkit-flags.json")
    func evaluatorSuites() throws {
        let testbed = try Testbed.locate()
        let files = try testbed.features(in: "evaluator/gherkin")
        #expect(files.count == 11)
        let totals = try Self.run(files: files, flags: "evaluator/flags/testkit-flags.json", testbed: testbed)
        let v3 = totals.values.reduce(0) { $0 + $1["v3"]!.ran }
        let v2 = totals.values.reduce(0) { $0 + $1["v2"]!.ran }
        let skipped = totals.values.reduce(0) { $0 + $1["v3"]!.outOfScope }
        // 140 cases: 15 @fractional-v1 rows are out of scope, 21 rows are v2-only, 15 nested rows run twice.
        #expect(v3 == 104)
        #expect(v2 == 36)
        #expect(skipped == 15)
    }

    @Test("provider suites (targeting, evaluation, disabled, metadata) against allFlags.json")
    func providerSuites() throws {
        let testbed = try Testbed.locate()
        let files = ["targeting", "evaluation", "disabled", "metadata"].map { "gherkin/\($0).feature" }
        let totals = try Self.run(files: files, flags: "flags-combined/allFlags.json", testbed: testbed)
        #expect(totals["gherkin/targeting.feature"]!["v3"]!.ran == 209)
        #expect(totals["gherkin/targeting.feature"]!["v2"]!.ran == 36)
        #expect(totals["gherkin/targeting.feature"]!["v3"]!.outOfScope == 15)
        #expect(totals["gherkin/evaluation.feature"]!["v3"]!.ran == 23)
        #expect(totals["gherkin/evaluation.feature"]!["v3"]!.outOfScope == 7)
        #expect(totals["gherkin/disabled.feature"]!["v3"]!.ran == 7)
        #expect(totals["gherkin/metadata.feature"]!["v3"]!.ran == 4)
    }
}
