import Foundation

/// Who is acting and from which tree: recorded with every change.
package enum Provenance {
    /// `user@host`: the default actor of every change.
    package static var defaultActor: String {
        let env = ProcessInfo.processInfo.environment
        let user = env["USER"] ?? env["LOGNAME"] ?? NSUserName()
        let host = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "localhost"
        return "\(user.isEmpty ? "unknown" : user)@\(host)"
    }

    /// The git commit of the tree holding `path`, and whether that tree has uncommitted changes
    /// under `path`; `nil` outside a git work tree (or without git).
    package struct Git: Sendable, Hashable {
        package var commit: String
        package var dirty: Bool
    }

    package static func git(at path: String) -> Git? {
        guard let commit = run(["git", "-C", path, "rev-parse", "HEAD"])?.trimmingCharacters(in: .whitespacesAndNewlines),
            commit.count >= 40
        else { return nil }
        let status = run(["git", "-C", path, "status", "--porcelain", "--", "."]) ?? ""
        return Git(commit: commit, dirty: !status.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty)
    }

    private static func run(_ arguments: [String]) -> String? {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = arguments
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        do { try p.run() } catch { return nil }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return p.terminationStatus == 0 ? String(decoding: data, as: UTF8.self) : nil
    }

    /// Now, in unix seconds.
    package static var now: Int64 { Int64(Date().timeIntervalSince1970) }
}
