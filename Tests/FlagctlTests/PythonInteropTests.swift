import Flagpole
import FlagpoleCore
import FlagpoleRedis
import FlagpoleStore
import FlagpoleTesting
import Foundation
import Testing

/// A Python virtualenv with interop/python/requirements.txt from PyPI (the OpenFeature SDK, its
/// OFREP provider, flagd's provider, and Selenium for the console's browser test), made once under
/// `~/.cache/flagpole-python-venv` (by scripts/install-deps.sh, or here) and reused while it imports
/// them. Made under a lock, in this process and across processes (`flock` on
/// `flagpole-python-venv.lock`): suites that run at once must not rebuild it under each other.
enum PythonEnvironment {
    static let directory: URL = {
        let home =
            ProcessInfo.processInfo.environment["HOME"].map { URL(fileURLWithPath: $0) }
            ?? FileManager.default.temporaryDirectory
        return home.appendingPathComponent(".cache/flagpole-python-venv")
    }()

    static var python: String { directory.appendingPathComponent("bin/python").path }

    static let requirements = FlagctlProcess.packageRoot.appendingPathComponent("interop/python/requirements.txt").path

    /// The venv's python, installing it first when needed. Throws a clear error when python3, venv
    /// or pip is missing, or PyPI cannot be reached.
    static func ensure() throws -> String {
        try lock.withLock {
            try FileManager.default.createDirectory(at: directory.deletingLastPathComponent(), withIntermediateDirectories: true)
            let lockFile = directory.path + ".lock"
            let fd = open(lockFile, O_CREAT | O_RDWR, 0o644)
            guard fd >= 0 else { throw DaemonTestError("cannot open the lock file \(lockFile) (errno \(errno))") }
            defer { close(fd) }
            guard flock(fd, LOCK_EX) == 0 else { throw DaemonTestError("cannot lock \(lockFile) (errno \(errno))") }
            defer { flock(fd, LOCK_UN) }
            return try ensureLocked()
        }
    }

    private static let lock = NSLock()

    private static func ensureLocked() throws -> String {
        if try usable() { return python }
        // A venv left broken (an interrupted install, a python upgraded underneath): start over.
        try? FileManager.default.removeItem(at: directory)
        try FileManager.default.createDirectory(at: directory.deletingLastPathComponent(), withIntermediateDirectories: true)
        guard let python3 = findExecutable("python3") else {
            throw DaemonTestError("python3 is not installed; the OFREP interop test needs it (Debian: apt-get install python3 python3-venv)")
        }
        let venv = try FlagctlProcess.runExternal(python3, ["-m", "venv", directory.path])
        guard venv.status == 0 else {
            throw DaemonTestError(
                "python3 -m venv \(directory.path) failed (Debian: apt-get install python3-venv):\n\(venv.stderr.suffix(800))")
        }
        let pip = try FlagctlProcess.runExternal(
            directory.appendingPathComponent("bin/pip").path,
            ["install", "--disable-pip-version-check", "--quiet", "-r", requirements])
        guard pip.status == 0 else {
            throw DaemonTestError(
                "pip install -r interop/python/requirements.txt failed (is PyPI reachable? is pip in the venv?):\n\(pip.stdout.suffix(400))\(pip.stderr.suffix(800))"
            )
        }
        guard try usable() else {
            throw DaemonTestError(
                "the venv at \(directory.path) still cannot import openfeature, its OFREP and flagd providers and selenium after pip install")
        }
        return python
    }

    private static func usable() throws -> Bool {
        guard FileManager.default.isExecutableFile(atPath: python) else { return false }
        let probe = try FlagctlProcess.runExternal(
            python, ["-c", "import openfeature.api, openfeature.contrib.provider.ofrep, openfeature.contrib.provider.flagd, selenium.webdriver"])
        return probe.status == 0
    }

    static func findExecutable(_ name: String) -> String? {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") + ["/usr/bin"] {
            let path = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return nil
    }
}

@Suite("OFREP interop: the Python OpenFeature SDK through flagctl daemon", .serialized, .timeLimit(.minutes(5)))
struct PythonInteropTests {
    static let example = FlagctlProcess.packageRoot.appendingPathComponent("interop/python/example.py")

    /// Runs the README's Python example against `daemon`; returns its exit status, its lines as
    /// JSON keyed by flag, and its standard error.
    static func runExample(python: String, daemon: DaemonProcess, token: String) throws -> (status: Int32, flags: [String: JSONValue], stderr: String)
    {
        let result = try FlagctlProcess.runExternal(
            python, [example.path], environment: ["FLAGPOLE_DAEMON_URL": daemon.baseURL, "FLAGPOLE_DAEMON_TOKEN": token])
        var flags: [String: JSONValue] = [:]
        for line in result.stdout.split(separator: "\n") {
            guard let json = try? JSONParser.parse(String(line)), let flag = json["flag"]?.stringValue else { continue }
            flags[flag] = json
        }
        return (result.status, flags, result.stderr)
    }

    @Test("the README's example reads every type with a context, sees `flagctl set`, reports outcomes, and fails clearly with a wrong token")
    func pythonThroughTheDaemon() async throws {
        let python = try PythonEnvironment.ensure()
        try await RedisServer.withServer { server in
            let flags = FlagctlProcess.packageRoot.appendingPathComponent("flags").path
            let sync = try FlagctlProcess.run(["sync", "--env", "prod", "--flags", flags, "--redis", server.url])
            #expect(sync.status == 0, "\(sync.stderr)")
            let token = "python-interop-token-0123456789"
            let daemon = try await DaemonProcess.start(
                ["--env", "prod", "--redis", server.url, "--flags", flags, "--no-watcher"], environment: ["FLAGPOLE_DAEMON_TOKENS": token])

            let first = try Self.runExample(python: python, daemon: daemon, token: token)
            #expect(first.status == 0, "\(first.stderr)")
            #expect(first.flags["new-checkout"]?["value"] == true && first.flags["new-checkout"]?["variant"] == "on")
            #expect(first.flags["new-checkout"]?["reason"] == "TARGETING_MATCH")
            #expect(first.flags["checkout-button-color"]?["value"] == "#2DA44E")
            #expect(first.flags["max-upload-mb"]?["value"] == 100)
            #expect(first.flags["search-ranking-weight"]?["value"] == 1.0)
            #expect(first.flags["homepage-banner"]?["value"] == [:] && first.flags["homepage-banner"]?["variant"] == "none")
            for (flag, json) in first.flags { #expect(json["error"] == .null, "\(flag): \(json)") }
            #expect(first.flags.count == 5)

            // A release manager flips a flag; the Python side sees it on its next evaluation.
            let set = try FlagctlProcess.run(["set", "checkout-button-color", "blue", "--env", "prod", "--redis", server.url, "--flags", flags])
            #expect(set.status == 0, "\(set.stderr)")
            try await waitUntil("the daemon serves blue") {
                try await daemon.request(
                    "/ofrep/v1/evaluate/flags/checkout-button-color", body: #"{"context": {"email": "ann@flagpole.dev"}}"#,
                    headers: ["Authorization": "Bearer \(token)"]
                ).body.contains("#1F6FEB")
            }
            let second = try Self.runExample(python: python, daemon: daemon, token: token)
            #expect(second.status == 0, "\(second.stderr)")
            #expect(second.flags["checkout-button-color"]?["value"] == "#1F6FEB")
            #expect(second.flags["checkout-button-color"]?["variant"] == "blue")

            // The outcomes the example reported land in the counters the watcher reads.
            let store = try FlagStore(client: RedisClient(configuration: server.configuration), environment: "prod")
            let minute = Int64(Date().timeIntervalSince1970) / 60
            try await waitUntil("two successes of new-checkout/on in Redis") {
                try await store.outcomes(flag: "new-checkout", minutes: (minute - 1)...(minute + 1))["on"]?.succeeded == 2
            }

            // A wrong token: every evaluation gives the code default with an error, and the
            // outcome report fails saying why.
            let wrong = try Self.runExample(python: python, daemon: daemon, token: "not-the-token-0123456789")
            #expect(wrong.status != 0)
            #expect(wrong.flags["new-checkout"]?["value"] == false && wrong.flags["new-checkout"]?["error"] == "GENERAL")
            #expect(wrong.flags["new-checkout"]?["message"] == "unauthorized")
            #expect(wrong.stderr.contains("HTTP 401") && wrong.stderr.contains("unknown token"), "\(wrong.stderr)")
            #expect(try await daemon.stop() == 0)
        }
    }

    @Test("docs/python.md's example is interop/python/example.py verbatim, and the README links to it")
    func readmeQuotesTheExample() throws {
        let doc = try String(contentsOf: FlagctlProcess.packageRoot.appendingPathComponent("docs/python.md"), encoding: .utf8)
        let readme = try String(contentsOf: FlagctlProcess.packageRoot.appendingPathComponent("README.md"), encoding: .utf8)
        let example = try String(contentsOf: Self.example, encoding: .utf8)
        #expect(doc.contains("# Use it from Python"))
        #expect(readme.contains("(docs/python.md)"))
        #expect(doc.contains("```python\n" + example + "```\n"), "docs/python.md's snippet differs from interop/python/example.py")
    }
}
