import FlagpoleCore
import Foundation
import Testing

@Suite("flagctl eval (the binary)", .timeLimit(.minutes(3)))
struct EvalCommandTests {
    static let testbed = FlagctlProcess.packageRoot.deletingLastPathComponent().appendingPathComponent("shared/flagd-testbed")
    static var testkit: String { testbed.appendingPathComponent("evaluator/flags/testkit-flags.json").path }

    @Test("answers what a user gets, from a flags folder and an environment")
    func single() throws {
        let r = try FlagctlProcess.run([
            "eval", "new-checkout", "--env", "prod", "--context", #"{"targetingKey":"u1","email":"ann@example.com"}"#, "--flags", "flags", "--json",
        ])
        #expect(r.status == 0, "\(r.stderr)")
        let json = try JSONParser.parse(r.stdout)
        #expect(json["flag"] == "new-checkout")
        #expect(json["reason"]?.stringValue != nil)
        let text = try FlagctlProcess.run(["eval", "boolean-flag", "--flags", Self.testkit])
        #expect(text.stdout.contains("value:   true") && text.stdout.contains("variant: on") && text.stdout.contains("reason:  STATIC"))
        let mismatch = try FlagctlProcess.run(["eval", "integer-flag", "--type", "string", "--default", "fallback", "--flags", Self.testkit])
        #expect(mismatch.stdout.contains(#"value:   "fallback""#) && mismatch.stdout.contains("TYPE_MISMATCH"))
    }

    @Test("--jsonl answers every line in order, in the documented shape")
    func jsonLines() throws {
        let input = """
            {"flag": "boolean-flag"}
            {"flag": "string-flag", "context": {}, "default": "x"}
            {"flag": "targeting-key-flag", "context": {"targetingKey": "5c3d8535-f81a-4478-a6d3-afaa4d51199e"}}
            {"flag": "missing-flag", "type": "integer", "default": 7}

            {"flag": "float-flag", "type": "float"}
            not json
            """
        let r = try FlagctlProcess.run(["eval", "--flags", Self.testkit, "--jsonl"], stdin: input)
        #expect(r.status == 0, "\(r.stderr)")
        let lines = r.stdout.split(separator: "\n").map(String.init)
        #expect(lines.count == 6)
        #expect(lines[0] == #"{"flag":"boolean-flag","value":true,"variant":"on","reason":"STATIC","errorCode":null}"#)
        #expect(lines[2].contains(#""reason":"TARGETING_MATCH""#))
        #expect(lines[3] == #"{"flag":"missing-flag","value":7,"variant":null,"reason":"ERROR","errorCode":"FLAG_NOT_FOUND"}"#)
        #expect(lines[4].contains(#""value":0.5"#))
        #expect(lines[5].contains(#""errorCode":"PARSE_ERROR""#) && lines[5].contains("line 7"))
    }

    @Test("usage errors exit 2; invalid flag files exit 1")
    func exitCodes() throws {
        #expect(try FlagctlProcess.run(["eval"]).status == 2)
        #expect(try FlagctlProcess.run(["eval", "x", "--jsonl"]).status == 2)
        #expect(try FlagctlProcess.run(["eval", "x", "--flags", "/nonexistent"]).status == 2)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("eval-\(UUID().uuidString.prefix(6)).json")
        try #"{"flags": {"x": {"state": "ENABLED", "variants": {"a": 1}, "defaultVariant": "zz"}}}"#.write(to: dir, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try FlagctlProcess.run(["eval", "x", "--flags", dir.path])
        #expect(r.status == 1 && r.stderr.contains("x:"))
    }

    @Test(
        "--jsonl agrees with the reference evaluator line for line (openfeature-flagd-core)",
        .enabled(
            if: FileManager.default.isExecutableFile(atPath: "/usr/bin/python3")
                || FileManager.default.fileExists(atPath: "/root/.pyenv/shims/python3")))
    func referenceAgreement() throws {
        let tool = Self.testbed.deletingLastPathComponent().appendingPathComponent("tools/flagd-reference").path
        guard FileManager.default.isExecutableFile(atPath: tool) else {
            Issue.record("the reference tool is missing at \(tool)")
            return
        }
        let flags = try JSONParser.parse(String(contentsOfFile: Self.testkit, encoding: .utf8))
        let keys = (flags["flags"]?.objectValue ?? [:]).keys.sorted()
        // Every context names user.name: the testkit's fractional flags bucket on
        // cat($flagd.flagKey, user.name), and `cat` of a missing value is one of the engine's
        // documented differences from the Python reference (JsonLogic gives "", the Python reference does not).
        let contexts: [String] = [
            #"{"user":{"name":"ann"}}"#, #"{"targetingKey":"jon@company.com","user":{"name":"jon"}}"#,
            #"{"targetingKey":"user1","email":"ballmer@macrosoft.com","user":{"name":"ballmer"}}"#,
            #"{"targetingKey":"x","version":"2.1.0","user":{"name":"jon"},"email":"a@faas.com","time":1}"#,
            #"{"targetingKey":"5c3d8535-f81a-4478-a6d3-afaa4d51199e","age":20,"customer":true,"user":{"name":"zoe"}}"#,
        ]
        var lines: [String] = []
        for key in keys where !key.contains("timestamp") {
            for c in contexts { lines.append(#"{"flag":"\#(key)","context":\#(c)}"#) }
        }
        let input = lines.joined(separator: "\n") + "\n"
        let ours = try FlagctlProcess.run(["eval", "--flags", Self.testkit, "--jsonl"], stdin: input)
        let reference = try FlagctlProcess.runExternal(tool, [Self.testkit], stdin: input)
        guard reference.status == 0 else {
            // Only a missing Python package index makes this unrunnable; say so instead of passing silently.
            Issue.record("the reference evaluator did not run (status \(reference.status)): \(reference.stderr.suffix(300))")
            return
        }
        let a = ours.stdout.split(separator: "\n"), b = reference.stdout.split(separator: "\n")
        #expect(a.count == lines.count && b.count == lines.count)
        var mismatches: [String] = []
        for (i, (x, y)) in zip(a, b).enumerated() {
            let ox = try JSONParser.parse(String(x)), oy = try JSONParser.parse(String(y))
            for field in ["value", "variant", "reason", "errorCode"] where !Self.same(ox[field], oy[field]) {
                mismatches.append("\(lines[i]) → \(field): flagctl \(ox[field]?.jsonString ?? "nil"), reference \(oy[field]?.jsonString ?? "nil")")
            }
        }
        #expect(mismatches.isEmpty, "\(mismatches.count) mismatches:\n\(mismatches.prefix(20).joined(separator: "\n"))")
    }

    /// Equal as JSON values, with 1 and 1.0 equal (Python prints floats its own way).
    static func same(_ a: JSONValue?, _ b: JSONValue?) -> Bool {
        if let x = a?.numberValue, let y = b?.numberValue { return x == y }
        return (a ?? .null) == (b ?? .null)
    }
}
