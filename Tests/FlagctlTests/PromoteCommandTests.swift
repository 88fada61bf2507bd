import FlagpoleCore
import FlagpoleTesting
import Foundation
import Testing

@Suite("flagctl promote, the promotion gate and flagctl report (the binary)", .timeLimit(.minutes(3)))
struct PromoteCommandTests {
    /// test and prod, prod gated on test; `banner`'s "on" differs between them.
    func folder() throws -> URL {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("flagctl-promote-\(UUID().uuidString.prefix(8))")
        for (env, color) in [("test", "blue"), ("prod", "red")] {
            try FileManager.default.createDirectory(at: root.appendingPathComponent(env), withIntermediateDirectories: true)
            try """
            {"flags": {
              "checkout": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
                           "targeting": {"if": [{"==": [{"var": "country"}, "NL"]}, "on", "off"]},
                           "metadata": {"rollout.watch": "30m", "rollout.steps": "10,50,100"}},
              "banner": {"state": "ENABLED", "variants": {"on": "\(color)", "off": "none"}, "defaultVariant": "off"}
            }}
            """.write(to: root.appendingPathComponent("\(env)/flags.json"), atomically: true, encoding: .utf8)
        }
        try """
        version: 1
        environments:
          test: {}
          prod: {production: true, requirePassIn: test}
        alerts:
          - {name: on-call, type: webhook, urlEnv: FLAGPOLE_TEST_PROMOTE_HOOK}
        """.write(to: root.appendingPathComponent("flagpole.yaml"), atomically: true, encoding: .utf8)
        return root
    }

    @Test("rollout start in prod is refused until it completed in test; promote shows both diffs, asks, and starts")
    func promote() async throws {
        try await RedisServer.withServer { server in
            let root = try folder()
            defer { try? FileManager.default.removeItem(at: root) }
            let env = ["FLAGPOLE_REDIS_URL": server.url]
            func run(_ args: [String], stdin: String? = nil) throws -> FlagctlProcess.Result {
                try FlagctlProcess.run(args + ["--flags", root.path], environment: env, stdin: stdin)
            }
            for e in ["test", "prod"] { #expect(try run(["sync", "--env", e]).status == 0) }

            let refused = try run(["rollout", "start", "checkout", "--env", "prod", "--to", "on"])
            #expect(refused.status == 1)
            #expect(refused.stderr.contains("prod requires rollouts to complete in test first"), "\(refused.stderr)")
            #expect(refused.stderr.contains("run: flagctl rollout start checkout --env test --to on"))
            let nothing = try run(["promote", "checkout", "--to", "prod", "--dry-run"])
            #expect(nothing.status == 1 && nothing.stderr.contains("no rollout of 'checkout' completed in test"), "\(nothing.stderr)")

            #expect(try run(["rollout", "start", "checkout", "--env", "test", "--to", "on"]).status == 0)
            let running = try run(["rollout", "start", "checkout", "--env", "prod", "--to", "on"])
            #expect(running.status == 1 && running.stderr.contains("is running at 10%, not completed"), "\(running.stderr)")
            #expect(try run(["rollout", "promote", "checkout", "--env", "test"]).status == 0)

            let dry = try run(["promote", "checkout", "--to", "prod", "--dry-run"])
            #expect(dry.status == 0, "\(dry.stderr)")
            #expect(dry.stdout.contains("promote checkout from test to prod: variant on"))
            #expect(dry.stdout.contains("files (flags/test → flags/prod):\n    the same definition in both"))
            #expect(dry.stdout.contains(#"    defaultVariant: "off" → "on""#) && dry.stdout.contains("    targeting: {"))
            #expect(dry.stdout.contains("gate: passed: rollout checkout-") && dry.stdout.contains("(promoted by hand before the watch ended)"))
            #expect(dry.stdout.contains("rollout: steps 10% → 50% → 100%, each watched 30m"))
            #expect(dry.stdout.contains("dry run: nothing started"))
            let notAsked = try run(["promote", "checkout", "--to", "prod"])
            #expect(notAsked.status == 1 && notAsked.stderr.contains("standard input is not a terminal: pass --yes"), "\(notAsked.stderr)")
            let list = try run(["rollout", "list", "--env", "prod"])
            #expect(list.stdout.contains("no rollouts"))

            let started = try run(["promote", "checkout", "--to", "prod", "--yes", "--reason", "passed in test"])
            #expect(started.status == 0, "\(started.stderr)")
            #expect(started.stdout.contains("prod: rollout checkout-") && started.stdout.contains("checkout → on, steps 10% → 50% → 100%"))
            #expect(!started.stdout.contains("forced"))
            let status = try run(["rollout", "status", "checkout", "--env", "prod", "--json"])
            let record = try JSONParser.parse(status.stdout)["rollouts"]?.arrayValue?.first
            #expect(record?["status"] == "running" && record?["target"] == "on" && record?["reason"] == "passed in test")

            // banner: completed in test, but "on" is "blue" there and "red" in prod.
            #expect(try run(["rollout", "start", "banner", "--env", "test", "--to", "on"]).status == 0)
            #expect(try run(["rollout", "promote", "banner", "--env", "test"]).status == 0)
            let differs = try run(["rollout", "start", "banner", "--env", "prod", "--to", "on"])
            #expect(
                differs.status == 1 && differs.stderr.contains(#"variant 'on' of 'banner' is "blue" in test but "red" in prod"#), "\(differs.stderr)")
            let promoteDiffers = try run(["promote", "banner", "--to", "prod", "--yes"])
            #expect(promoteDiffers.status == 1 && promoteDiffers.stdout.contains("gate: REFUSED"))
            #expect(
                promoteDiffers.stdout.contains(#"    variants: {"off":"none","on":"blue"} → {"off":"none","on":"red"}"#), "\(promoteDiffers.stdout)")
            // --force: started, audited, and the alert path is taken (here it says why nothing was sent).
            let forced = try run([
                "rollout", "start", "banner", "--env", "prod", "--to", "on", "--force", "--reason", "marketing deadline", "--actor", "ann",
            ])
            #expect(forced.status == 0, "\(forced.stderr)")
            #expect(forced.stdout.contains(#"forced through the promotion gate: variant 'on' of 'banner' is "blue" in test but "red" in prod"#))
            #expect(forced.stderr.contains("no alert was sent") && forced.stderr.contains("FLAGPOLE_TEST_PROMOTE_HOOK"), "\(forced.stderr)")
            let history = try run(["history", "banner", "--env", "prod", "--json", "--limit", "1"])
            let audit = try JSONParser.parse(history.stdout).arrayValue?.first
            #expect(audit?["action"] == "rollout-start" && audit?["details"]?["promotionGate"]?["overridden"] == true)

            // The sign-off sheet of the week in prod.
            let md = try run(["report", "--env", "prod", "--since", "7d"])
            #expect(md.status == 0, "\(md.stderr)")
            #expect(md.stdout.hasPrefix("# Changes to prod: "))
            #expect(md.stdout.contains("banner by ann: marketing deadline\n  - ⚠️ forced through the promotion gate (requirePassIn: test)"))
            #expect(md.stdout.contains("### checkout → on (checkout-") && md.stdout.contains("| sync |"))
            let json = try run(["report", "--env", "prod", "--since", "2000-01-01", "--format", "json"])
            let parsed = try JSONParser.parse(json.stdout)
            #expect(parsed["environment"] == "prod" && parsed["summary"]?["forced"] == 1 && parsed["summary"]?["rollouts"] == 2)
            let bad = try run(["report", "--env", "prod", "--since", "last week"])
            #expect(bad.status == 2 && bad.stderr.contains("--since 'last week' is neither a duration nor a date"), "\(bad.stderr)")
            let help = try FlagctlProcess.run(["--help"])
            #expect(help.stdout.contains("promote") && help.stdout.contains("report"))
        }
    }

    @Test("validate: a requirePassIn naming no environment is an error with the file and line")
    func validateGate() throws {
        let root = try folder()
        defer { try? FileManager.default.removeItem(at: root) }
        try "version: 1\nenvironments:\n  test: {}\n  prod: {requirePassIn: tset}\n".write(
            to: root.appendingPathComponent("flagpole.yaml"), atomically: true, encoding: .utf8)
        let result = try FlagctlProcess.run(["validate", root.path])
        #expect(result.status == 1)
        #expect(
            result.stdout.contains(
                #"flagpole.yaml:4:25: requirePassIn names environment "tset", which is not one of the environments (hint: did you mean "test"?)"#),
            "\(result.stdout)")
    }
}
