import FlagpoleControl
import FlagpoleCore
import FlagpoleRedis
import FlagpoleRollout
import FlagpoleStore
import FlagpoleTesting
import Foundation
import Testing

@Suite("flagctl reconcile (the binary, against a real Redis)", .timeLimit(.minutes(3)))
struct ReconcileCommandTests {
    static let yaml = """
        # Checkout flags: reviewed by the payments team.
        flags:
          new-checkout:
            state: ENABLED # always on in prod
            variants:
              "on": true
              "off": false
            defaultVariant: "off"   # the safe default
            metadata:
              owner: payments
          other:
            state: ENABLED
            variants: {a: 1, b: 2}
            defaultVariant: a

        """

    func folder(_ files: [String: String]) throws -> URL {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("flagctl-reconcile-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: root.appendingPathComponent("prod"), withIntermediateDirectories: true)
        for (name, text) in files { try text.write(to: root.appendingPathComponent("prod/\(name)"), atomically: true, encoding: .utf8) }
        return root
    }

    /// What the watcher writes when it reverts a running rollout: ``RolloutTransitions/revert(_:actor:at:decision:)``
    /// on the rollout's record, applied through the store's write script.
    func revert(_ flag: String, server: RedisServer) async throws {
        let store = try FlagStore(client: RedisClient(configuration: server.configuration), environment: "prod")
        let record = try #require(try await store.readRollouts().rollouts[flag], "no rollout record for \(flag)")
        let change = RolloutTransitions.revert(
            record, actor: "watcher@test", at: Int64(Date().timeIntervalSince1970),
            decision: RolloutDecision(verdict: .revert, reason: "treatment error rate 7.0% is above the ceiling 5%"))
        _ = try await store.apply(change, expectedRevision: try await store.revision())
    }

    @Test("after a real rollout is reverted: reconcile prints the diff; --write applies it, keeps comments and mode; then sync --unpin")
    func afterRevert() async throws {
        try await RedisServer.withServer { server in
            let root = try folder(["checkout.yaml": Self.yaml])
            defer { try? FileManager.default.removeItem(at: root) }
            let file = root.appendingPathComponent("prod/checkout.yaml")
            let env = ["FLAGPOLE_REDIS_URL": server.url, "FLAGPOLE_ENV": "prod"]
            let flags = ["--flags", root.path]
            #expect(try FlagctlProcess.run(["sync"] + flags, environment: env).status == 0)
            // The rollout is merged into the files (defaultVariant on) and synced while it runs.
            let start = try FlagctlProcess.run(["rollout", "start", "new-checkout", "--to", "on", "--steps", "25,100"] + flags, environment: env)
            #expect(start.status == 0, "\(start.stdout)\(start.stderr)")
            let rolledOut = Self.yaml.replacingOccurrences(
                of: "defaultVariant: \"off\"   # the safe default", with: "defaultVariant: \"on\"   # the safe default")
            try rolledOut.write(to: file, atomically: true, encoding: .utf8)
            try #require(chmod(file.path, 0o640) == 0)
            let during = try FlagctlProcess.run(["reconcile", "new-checkout"] + flags, environment: env)
            #expect(during.status == 1 && during.stderr.contains("is in a rollout (25% → on)"), "\(during.stderr)")

            try await revert("new-checkout", server: server)
            let dry = try FlagctlProcess.run(["reconcile", "new-checkout"] + flags, environment: env)
            #expect(dry.status == 0, "\(dry.stderr)")
            let path = "\(root.path)/prod/checkout.yaml".dropFirst()  // the diff names it without the leading /
            #expect(
                dry.stdout.contains(
                    """
                    --- a/\(path)
                    +++ b/\(path)
                    @@ -5,7 +5,7 @@
                         variants:
                           "on": true
                           "off": false
                    -    defaultVariant: "on"   # the safe default
                    +    defaultVariant: "off"   # the safe default
                         metadata:
                           owner: payments
                       other:
                    (not written: run again with --write to apply it)
                    then, to finish:
                    """), "\(dry.stdout)")
            #expect(dry.stdout.contains("flagctl sync --env prod --unpin new-checkout"))
            #expect(
                dry.stdout.contains("reverted (frozen definition: default \"off\") by watcher@test, pinned by watcher@test (rollout new-checkout-"))
            #expect(try String(contentsOf: file, encoding: .utf8) == rolledOut, "without --write nothing is written")

            let written = try FlagctlProcess.run(["reconcile", "new-checkout", "--write"] + flags, environment: env)
            #expect(written.status == 0, "\(written.stderr)")
            #expect(
                written.stdout.contains("wrote \(root.path)/prod/checkout.yaml; the folder validates and new-checkout now reads exactly as served"))
            #expect(written.stdout.contains("git add \(root.path)/prod/checkout.yaml"))
            #expect(try String(contentsOf: file, encoding: .utf8) == Self.yaml, "byte for byte the file before the rollout")
            let mode = try #require(try FileManager.default.attributesOfItem(atPath: file.path)[.posixPermissions] as? Int)
            #expect(mode == 0o640)
            let leftovers = try FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent("prod").path)
            #expect(leftovers == ["checkout.yaml"])

            let again = try FlagctlProcess.run(["reconcile", "new-checkout"] + flags, environment: env)
            #expect(again.status == 0 && again.stdout.contains("already says what is served"), "\(again.stdout)")
            #expect(again.stdout.contains("to finish:\n  flagctl sync --env prod --unpin new-checkout"))
            let unpin = try FlagctlProcess.run(["sync", "--unpin", "new-checkout"] + flags, environment: env)
            #expect(unpin.status == 0, "\(unpin.stderr)")
            let clean = try FlagctlProcess.run(["diff", "--exit-code"] + flags, environment: env)
            #expect(clean.status == 0, "\(clean.stdout)")
            let none = try FlagctlProcess.run(["reconcile", "new-checkout"] + flags, environment: env)
            #expect(none.status == 0 && none.stdout.contains("no override and no pin") && none.stdout.contains("nothing to change"))
        }
    }

    @Test("an override on a JSON file: the edit keeps the file's indentation; then sync and override clear")
    func overrideOnJSON() async throws {
        let json = """
            {
                "flags": {
                    "limit": {
                        "state": "ENABLED",
                        "variants": {"low": 10, "high": 100},
                        "defaultVariant": "low",
                        "targeting": {"if": [{"==": [{"var": "plan"}, "pro"]}, "high", "low"]}
                    }
                }
            }

            """
        try await RedisServer.withServer { server in
            let root = try folder(["limits.json": json])
            defer { try? FileManager.default.removeItem(at: root) }
            let env = ["FLAGPOLE_REDIS_URL": server.url, "FLAGPOLE_ENV": "prod"]
            let flags = ["--flags", root.path]
            #expect(try FlagctlProcess.run(["sync"] + flags, environment: env).status == 0)
            #expect(try FlagctlProcess.run(["set", "limit", "high"], environment: env).status == 0)
            let r = try FlagctlProcess.run(["reconcile", "limit", "--write"] + flags, environment: env)
            #expect(r.status == 0, "\(r.stderr)")
            let after = try String(contentsOf: root.appendingPathComponent("prod/limits.json"), encoding: .utf8)
            #expect(
                after == """
                    {
                        "flags": {
                            "limit": {
                                "state": "ENABLED",
                                "variants": {"low": 10, "high": 100},
                                "defaultVariant": "high"
                            }
                        }
                    }

                    """)
            #expect(r.stdout.contains("  flagctl sync --env prod\n  flagctl override clear limit --env prod"))
        }
    }

    @Test("a flag missing from the files, a flag not in Redis, a shared anchor, invalid files: a clear error and exit 1")
    func refusals() async throws {
        let anchored = """
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
        try await RedisServer.withServer { server in
            let root = try folder(["a.yaml": anchored])
            defer { try? FileManager.default.removeItem(at: root) }
            let env = ["FLAGPOLE_REDIS_URL": server.url, "FLAGPOLE_ENV": "prod"]
            let flags = ["--flags", root.path]
            #expect(try FlagctlProcess.run(["sync"] + flags, environment: env).status == 0)
            // A revert that serves a different set of variants for a: the change would be inside &bool.
            let store = try FlagStore(client: RedisClient(configuration: server.configuration), environment: "prod")
            var change = StoreChange(audit: AuditEntry(action: "revert", actor: "watcher", at: 1, flags: ["a"]))
            let frozen: JSONValue = ["state": "ENABLED", "variants": ["on": true, "off": false, "dark": false], "defaultVariant": "dark"]
            change.setOverrides["a"] = OverrideRecord(override: .definition(frozen), actor: "watcher", reason: "r", at: 1, revision: 0)
            change.setPins["a"] = PinRecord(by: "watcher", reason: "r", at: 1, revision: 0)
            _ = try await store.apply(change, expectedRevision: try await store.revision())
            let shared = try FlagctlProcess.run(["reconcile", "a", "--write"] + flags, environment: env)
            #expect(shared.status == 1 && shared.stderr.contains("prod/a.yaml:5:7: the value to change is the anchor &bool"), "\(shared.stderr)")
            #expect(try String(contentsOf: root.appendingPathComponent("prod/a.yaml"), encoding: .utf8) == anchored)

            try anchored.replacingOccurrences(of: "  b:\n", with: "  c:\n").write(
                to: root.appendingPathComponent("prod/a.yaml"), atomically: true, encoding: .utf8)
            let missing = try FlagctlProcess.run(["reconcile", "b"] + flags, environment: env)
            #expect(missing.status == 1 && missing.stderr.contains("flag 'b' is served in prod but defined in no file"), "\(missing.stderr)")
            let notLive = try FlagctlProcess.run(["reconcile", "c"] + flags, environment: env)
            #expect(notLive.status == 1 && notLive.stderr.contains("flag 'c' is not in prod in Redis"), "\(notLive.stderr)")
            try "flags: {x: {state: ENABLED}}\n".write(to: root.appendingPathComponent("prod/bad.yaml"), atomically: true, encoding: .utf8)
            let invalid = try FlagctlProcess.run(["reconcile", "a"] + flags, environment: env)
            #expect(invalid.status == 1 && invalid.stderr.contains("do not validate"), "\(invalid.stderr)")
            let usage = try FlagctlProcess.run(["reconcile"] + flags, environment: env)
            #expect(usage.status == 2)
        }
    }
}
