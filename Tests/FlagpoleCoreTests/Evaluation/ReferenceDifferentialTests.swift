import Foundation
import Testing

@testable import FlagpoleCore

/// Differential test against the reference evaluator, `openfeature-flagd-core` 2.0.0 (Python,
/// fractional v3), through `../shared/tools/flagd-reference`.
///
/// Skipped, with the reason printed, only when python3 is missing or the tool cannot set up its
/// virtualenv (it installs from PyPI); any disagreement after that fails.
///
/// The generated cases stay off the few places where the reference's Python semantics differ from
/// JsonLogic's JavaScript ones on purpose (see the evaluation notes): `cat` of a missing value,
/// a float read of a boolean flag, integral-float variant names.
@Suite("differential: openfeature-flagd-core")
struct ReferenceDifferentialTests {
    static var hasPython3: Bool {
        (try? Self.run("/usr/bin/env", ["python3", "--version"], stdin: nil, stdout: nil).status) == 0
    }

    struct ProcessResult {
        var status: Int32
        var stderr: String
    }

    static func run(_ executable: String, _ arguments: [String], stdin: URL?, stdout: URL?) throws -> ProcessResult {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = arguments
        p.standardInput = try stdin.map { try FileHandle(forReadingFrom: $0) } ?? FileHandle.nullDevice
        if let stdout {
            _ = FileManager.default.createFile(atPath: stdout.path, contents: nil)
            p.standardOutput = try FileHandle(forWritingTo: stdout)
        } else {
            p.standardOutput = FileHandle.nullDevice
        }
        let errURL = FileManager.default.temporaryDirectory.appendingPathComponent("flagd-ref-\(UUID().uuidString).err")
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        p.standardError = try FileHandle(forWritingTo: errURL)
        try p.run()
        p.waitUntilExit()
        let err = (try? String(contentsOf: errURL, encoding: .utf8)) ?? ""
        try? FileManager.default.removeItem(at: errURL)
        return ProcessResult(status: p.terminationStatus, stderr: err)
    }

    /// Flags beyond the testbed's, exercising the operators with inputs both dialects agree on.
    static let extraFlags = #"""
        {
          "diff-email": {"state": "ENABLED", "variants": {"staff": "staff", "beta": "beta", "other": "other"}, "defaultVariant": "other",
            "targeting": {"if": [{"ends_with": [{"var": "email"}, "@example.com"]}, "staff",
                                 {"in": [{"var": "email"}, ["a@beta.io", "b@beta.io"]]}, "beta", null]}},
          "diff-age": {"state": "ENABLED", "variants": {"adult": "adult", "minor": "minor", "senior": "senior"}, "defaultVariant": "adult",
            "targeting": {"if": [{"and": [{">=": [{"var": "age"}, 18]}, {"<": [{"var": "age"}, 65]}]}, "adult",
                                 {"<": [{"var": "age"}, 18]}, "minor", "senior"]}},
          "diff-between": {"state": "ENABLED", "variants": {"teen": "teen", "not": "not"}, "defaultVariant": "not",
            "targeting": {"if": [{"<=": [13, {"var": "age"}, 19]}, "teen", "not"]}},
          "diff-version": {"state": "ENABLED", "variants": {"new": "new", "mid": "mid", "old": "old"}, "defaultVariant": "old",
            "targeting": {"if": [{"sem_ver": [{"var": "version"}, ">=", "2.1.0"]}, "new",
                                 {"sem_ver": [{"var": "version"}, "~", "2.0.0"]}, "mid", "old"]}},
          "diff-version-raw": {"state": "ENABLED", "variants": {"true": "t", "false": "f", "d": "d"}, "defaultVariant": "d",
            "targeting": {"sem_ver": [{"var": "version"}, "<", "v2.0.0-rc.2"]}},
          "diff-split": {"state": "ENABLED", "variants": {"a": "a", "b": "b", "c": "c", "d": "d"}, "defaultVariant": "d",
            "targeting": {"fractional": [["a", 10], ["b", 30], ["c", 60]]}},
          "diff-split-email": {"state": "ENABLED", "variants": {"a": "a", "b": "b", "d": "d"}, "defaultVariant": "d",
            "targeting": {"fractional": [{"var": "email"}, ["a", 1], ["b", 1]]}},
          "diff-split-age": {"state": "ENABLED", "variants": {"a": "a", "b": "b", "c": "c", "d": "d"}, "defaultVariant": "d",
            "targeting": {"fractional": [{"var": "age"}, ["a", 2], ["b", 3], ["c", 5]]}},
          "diff-split-object": {"state": "ENABLED", "variants": {"a": "a", "b": "b", "d": "d"}, "defaultVariant": "d",
            "targeting": {"fractional": [{"var": "profile"}, ["a", 1], ["b", 1]]}},
          "diff-split-nested": {"state": "ENABLED", "variants": {"a": "a", "b": "b", "d": "d"}, "defaultVariant": "d",
            "targeting": {"fractional": [{"cat": [{"var": "$flagd.flagKey"}, {"var": "email"}]},
                                         ["a", {"if": [{"==": [{"var": "tier"}, "gold"]}, 80, 20]}], ["b", 20]]}},
          "diff-split-bool": {"state": "ENABLED", "variants": {"true": true, "false": false}, "defaultVariant": "false",
            "targeting": {"fractional": [[true, 50], [false, 50]]}},
          "diff-arith": {"state": "ENABLED", "variants": {"high": 100, "low": 1}, "defaultVariant": "low",
            "targeting": {"if": [{">": [{"+": [{"var": "age"}, {"*": [2, {"var": "bonus"}]}, {"-": [{"%": [{"var": "age"}, 7]}]}]}, 50]}, "high", "low"]}},
          "diff-missing": {"state": "ENABLED", "variants": {"incomplete": "i", "complete": "c"}, "defaultVariant": "complete",
            "targeting": {"if": [{"missing": ["email", "age"]}, "incomplete", {"missing_some": [1, ["tier", "tags"]]}, "incomplete", "complete"]}},
          "diff-substr": {"state": "ENABLED", "variants": {"a-user": "a", "other": "o", "tail": "t"}, "defaultVariant": "other",
            "targeting": {"if": [{"==": [{"substr": [{"var": "email"}, 0, 1]}, "a"]}, "a-user",
                                 {"==": [{"substr": [{"var": "email"}, -3]}, ".io"]}, "tail", "other"]}},
          "diff-tags": {"state": "ENABLED", "variants": {"vip": "vip", "regular": "regular", "none": "none"}, "defaultVariant": "none",
            "targeting": {"if": [{"some": [{"var": "tags"}, {"==": [{"var": ""}, "vip"]}]}, "vip",
                                 {"all": [{"var": "tags"}, {"in": [{"var": ""}, ["a", "b", "vip"]]}]}, "regular",
                                 {"none": [{"var": "tags"}, {"==": [{"var": ""}, "b"]}]}, "none", null]}},
          "diff-bool": {"state": "ENABLED", "variants": {"true": true, "false": false}, "defaultVariant": "false",
            "targeting": {"starts_with": [{"var": "email"}, "a"]}},
          "diff-object": {"state": "ENABLED", "variants": {"blue": {"color": "blue", "size": 2}, "red": {"color": "red"}}, "defaultVariant": "red",
            "targeting": {"if": [{"!": [{"var": "tier"}]}, "blue"]}},
          "diff-float": {"state": "ENABLED", "variants": {"small": 0.25, "big": 2.5}, "defaultVariant": "small",
            "targeting": {"if": [{"!!": [{"var": "tags"}]}, "big"]}},
          "diff-nodefault": {"state": "ENABLED", "variants": {"yes": "yes", "no": "no"},
            "targeting": {"if": [{"===": [{"var": "tier"}, "gold"]}, "yes", {"!==": [{"var": "tier"}, "silver"]}, null, "no"]}},
          "diff-number-name": {"state": "ENABLED", "variants": {"1": "one", "2": "two", "3": "three"}, "defaultVariant": "1",
            "targeting": {"max": [1, {"min": [3, {"var": "age"}]}]}},
          "diff-merge": {"state": "ENABLED", "variants": {"yes": "yes", "no": "no"}, "defaultVariant": "no",
            "targeting": {"if": [{"in": ["vip", {"merge": [{"var": "tags"}, ["x"]]}]}, "yes", "no"]}},
          "diff-reduce": {"state": "ENABLED", "variants": {"many": "many", "few": "few"}, "defaultVariant": "few",
            "targeting": {"if": [{">": [{"reduce": [{"map": [{"var": "tags"}, 1]}, {"+": [{"var": "current"}, {"var": "accumulator"}]}, 0]}, 1]}, "many", "few"]}}
        }
        """#

    @Test("agrees with the reference evaluator", .enabled(if: hasPython3, "python3 is not installed"))
    func agreesWithReference() throws {
        let testbed = try Testbed.locate()
        let tool = testbed.root.deletingLastPathComponent().appendingPathComponent("tools/flagd-reference")
        guard FileManager.default.isExecutableFile(atPath: tool.path) else {
            Issue.record("flagd-reference not found at \(tool.path)")
            return
        }
        // The merged document: the testbed's flags, plus ours.
        var document = try testbed.json("flags-combined/allFlags.json")
        guard case .object(var root) = document, case .object(var flags)? = root["flags"],
            case .object(let extra) = try JSONParser.parse(Self.extraFlags)
        else {
            Issue.record("unexpected flag document shape")
            return
        }
        for (k, v) in extra { flags[k] = v }
        root["flags"] = .object(flags)
        root["metadata"] = ["flagSetId": "differential"]
        document = .object(root)

        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("flagpole-diff-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let flagsFile = dir.appendingPathComponent("flags.json")
        try document.jsonString.write(to: flagsFile, atomically: true, encoding: .utf8)

        // Set up the reference once; only this may skip the test.
        let empty = dir.appendingPathComponent("empty.jsonl")
        try "".write(to: empty, atomically: true, encoding: .utf8)
        let setup = try Self.run(tool.path, [flagsFile.path], stdin: empty, stdout: nil)
        guard setup.status == 0 else {
            print("skipped: the reference evaluator could not be set up (exit \(setup.status)): \(setup.stderr.suffix(500))")
            return
        }

        let cases = Self.cases(flagKeys: flags.keys.sorted(), flags: flags)
        let input = dir.appendingPathComponent("cases.jsonl")
        try cases.map(\.jsonString).joined(separator: "\n").write(to: input, atomically: true, encoding: .utf8)
        let output = dir.appendingPathComponent("results.jsonl")
        let result = try Self.run(tool.path, [flagsFile.path], stdin: input, stdout: output)
        try #require(result.status == 0, "flagd-reference failed: \(result.stderr.suffix(2000))")
        let lines = try String(contentsOf: output, encoding: .utf8).split(separator: "\n")
        try #require(lines.count == cases.count, "expected \(cases.count) results, got \(lines.count)")

        let set = CompiledFlagSet(document)
        var disagreements = 0
        var reasons: [String: Int] = [:]
        for (c, line) in zip(cases, lines) {
            let expected = try JSONParser.parse(String(line))
            reasons[(expected["errorCode"]?.stringValue ?? expected["reason"]?.stringValue) ?? "?", default: 0] += 1
            let actual = Self.evaluate(set, c)
            if !Self.agree(expected, actual) {
                disagreements += 1
                if disagreements <= 25 {
                    Issue.record("case \(c.jsonString)\n  reference: \(expected.jsonString)\n  flagpole:  \(actual.jsonString)")
                }
            }
        }
        print("differential: \(cases.count) cases, \(disagreements) disagreements; outcomes \(reasons.sorted { $0.key < $1.key })")
        #expect(disagreements == 0)
        // The cases reach every outcome.
        for outcome in ["STATIC", "TARGETING_MATCH", "DEFAULT", "DISABLED", "FLAG_NOT_FOUND", "TYPE_MISMATCH", "PARSE_ERROR", "GENERAL"] {
            #expect(reasons[outcome, default: 0] > 0, "no case gave \(outcome)")
        }
    }

    /// Evaluates a case the way the reference tool does, and reports it in the tool's shape.
    static func evaluate(_ set: CompiledFlagSet, _ c: JSONValue) -> JSONValue {
        let key = c["flag"]!.stringValue!
        let type = c["type"]!.stringValue!
        let fallback = c["default"]!
        let context = EvaluationContext(c["context"] ?? .object([:]))
        func shape<V>(_ d: EvaluationDetails<V>, _ value: (V) -> JSONValue) -> JSONValue {
            [
                "flag": .string(key), "type": .string(type), "value": value(d.value),
                "variant": d.variant.map(JSONValue.string) ?? .null, "reason": .string(d.reason.rawValue),
                "errorCode": d.errorCode.map { .string($0.rawValue) } ?? .null,
            ]
        }
        switch type {
        case "boolean": return shape(set.bool(key, default: fallback.boolValue!, context: context)) { .bool($0) }
        case "string": return shape(set.string(key, default: fallback.stringValue!, context: context)) { .string($0) }
        case "integer":
            guard case .int(let i) = fallback else { return .null }
            return shape(set.integer(key, default: i, context: context)) { .int($0) }
        case "float": return shape(set.double(key, default: fallback.numberValue!, context: context)) { .double($0) }
        default: return shape(set.object(key, default: fallback, context: context)) { $0 }
        }
    }

    static func agree(_ a: JSONValue, _ b: JSONValue) -> Bool {
        for field in ["variant", "reason", "errorCode"] where a[field] != b[field] { return false }
        switch (a["value"], b["value"]) {
        case (let x?, let y?) where x.numberValue != nil && y.numberValue != nil: return x.numberValue == y.numberValue
        case (let x, let y): return x == y
        }
    }

    /// The variant type of a flag, as the tool infers it.
    static func variantType(_ flag: JSONValue) -> String {
        guard case .object(let variants)? = flag["variants"] else { return "boolean" }
        let values = Array(variants.values)
        if values.allSatisfy({ $0.boolValue != nil }) { return "boolean" }
        if values.allSatisfy({ $0.stringValue != nil }) { return "string" }
        if values.allSatisfy({ if case .int = $0 { true } else { false } }) { return "integer" }
        if values.allSatisfy({ $0.numberValue != nil }) { return "float" }
        return "object"
    }

    static let defaults: [String: JSONValue] = [
        "boolean": true, "string": "code-default", "integer": 42, "float": 4.5, "object": ["code": "default"],
    ]

    /// A few thousand cases: every flag under many contexts, the flag's own type and some others.
    static func cases(flagKeys: [String], flags: [String: JSONValue]) -> [JSONValue] {
        var rng = SplitMix64(state: 2026)
        let targetingKeys: [JSONValue?] = [
            nil, "", "user-1", "user-2", "jon@company.com", "5c3d8535-f81a-4478-a6d3-afaa4d51199e", "ünïcødé-ключ", "水",
        ]
        let emails: [JSONValue] = [
            "ballmer@macrosoft.com", "a@example.com", "b@example.com", "a@beta.io", "b@beta.io", "zed@other.io",
            "jobs@orange.com", "wozniak@orange.com", "", "ärger@example.com", 123,
        ]
        let versions: [JSONValue] = [
            "2.0.0", "2.1.0", "1.9.0", "2.0.0-alpha", "2.0.0.0", "v2.0.0", "V2.0.5", "2", "2.1", "3.0.1", "3.1.0",
            "1.0.0+build", "2.0.0-rc.1", "2.0.0-rc.10", "not-a-version", "01.0.0", 2, 2.5, true,
        ]
        var out: [JSONValue] = []
        for _ in 0..<150 {
            var context: [String: JSONValue] = [:]
            if let tk = targetingKeys.randomElement(using: &rng)! { context["targetingKey"] = tk }
            context["email"] = emails.randomElement(using: &rng)!
            if Int.random(in: 0..<5, using: &rng) > 0 {
                context["age"] = [JSONValue.int(Int64.random(in: -5...90, using: &rng)), "30", 17.5].randomElement(using: &rng)!
            }
            context["version"] = versions.randomElement(using: &rng)!
            if Bool.random(using: &rng) { context["tier"] = ["gold", "silver", "bronze", ""].randomElement(using: &rng)! }
            if Bool.random(using: &rng) {
                context["tags"] = [[], ["vip"], ["a", "b"], ["a"], ["vip", "a", "x"]].randomElement(using: &rng)!
            }
            if Bool.random(using: &rng) { context["bonus"] = .int(Int64.random(in: 0...30, using: &rng)) }
            if Bool.random(using: &rng) {
                context["profile"] = [["plan": "pro", "seats": 3], ["z": 1.5, "aa": [true, nil]], [:]].randomElement(using: &rng)!
            }
            context["user"] = ["name": ["jack", "queen", "seven", "ten"].randomElement(using: &rng)!]
            context["time"] = [1, 4_133_980_802].randomElement(using: &rng)!
            context["fn"] = ["Sulisław", "Jan"].randomElement(using: &rng)!
            context["ln"] = "Świętopełk"
            context["customer"] = .bool(Bool.random(using: &rng))
            context["hashing_input"] = [1, "user1", 2.5, ["a": 1], true].randomElement(using: &rng)!

            for key in flagKeys + ["no-such-flag"] {
                let own = flags[key].map(variantType) ?? "boolean"
                var types = [own]
                switch own {
                case "integer": types.append(contentsOf: ["float", "boolean", "string"])
                case "float": types.append(contentsOf: ["integer", "object"])
                case "string": types.append(contentsOf: ["integer", "float"])
                case "boolean": types.append(contentsOf: ["integer", "string"])
                default: types.append("string")
                }
                let type = Bool.random(using: &rng) ? own : types.randomElement(using: &rng)!
                out.append([
                    "flag": .string(key), "type": .string(type), "default": defaults[type]!,
                    "context": .object(context),
                ])
            }
        }
        return out
    }
}
