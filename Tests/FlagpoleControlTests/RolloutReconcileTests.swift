import FlagpoleControl
import FlagpoleCore
import FlagpoleStore
import Foundation
import Testing

@Suite("Reconciling the files after a rollout")
struct RolloutReconcileTests {
    static let off: JSONValue = ["state": "ENABLED", "variants": ["on": true, "off": false], "defaultVariant": "off"]

    func row(file: JSONValue, override: FlagOverride, pinned: Bool) -> FlagDiff {
        FlagDiff(
            flag: "x", status: pinned ? .pinned : .overridden, location: nil, fileDefinition: file, liveDefinition: file,
            override: OverrideRecord(override: override, actor: "watcher", reason: nil, at: 1, revision: 2),
            pin: pinned ? PinRecord(by: "watcher", reason: "r", at: 1, revision: 2) : nil)
    }

    @Test("a revert over files that now say `on`: set defaultVariant back, then unpin")
    func revertedOverChangedFiles() {
        var on = Self.off.objectValue!
        on["defaultVariant"] = "on"
        let hint = row(file: .object(on), override: .definition(Self.off), pinned: true).reconcileHint
        #expect(hint == "set defaultVariant: off, then `flagctl sync --unpin x`")
    }

    @Test("a revert over files that already agree: only the pin is left to release")
    func revertedFilesAgree() {
        let hint = row(file: Self.off, override: .definition(Self.off), pinned: true).reconcileHint
        #expect(hint == "the files already say what is served; release the pin with `flagctl sync --unpin x`")
    }

    @Test("a running rollout says what the files should say once it completes")
    func running() {
        let hint = row(file: Self.off, override: .rollout(RolloutSplit(rolloutID: "r", targetVariant: "on", percent: 25)), pinned: false)
            .reconcileHint
        #expect(hint?.contains("rollout is in progress (25% → on)") == true && hint?.contains("set defaultVariant: on") == true)
    }
}

@Suite("reconcile --write's file replacement")
struct ReconcileWriteTests {
    @Test("a flag file that is a symbolic link is refused, and neither the link nor the file it points to changes")
    func symbolicLink() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("flagpole-reconcile-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let shared = folder.appendingPathComponent("shared.yaml").path
        let link = folder.appendingPathComponent("flags.yaml").path
        try "flags: {}\n".write(toFile: shared, atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: shared)
        #expect(throws: ReconcileError.self) { try EnvironmentControl.atomicWrite("flags: {x: 1}\n", to: link) }
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: link) == shared)
        #expect(try String(contentsOfFile: shared, encoding: .utf8) == "flags: {}\n")

        let plain = folder.appendingPathComponent("plain.yaml").path
        try "flags: {}\n".write(toFile: plain, atomically: true, encoding: .utf8)
        try EnvironmentControl.atomicWrite("flags: {x: 1}\n", to: plain)
        #expect(try String(contentsOfFile: plain, encoding: .utf8) == "flags: {x: 1}\n")
    }
}
