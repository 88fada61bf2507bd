import Flagpole
import FlagpoleControl
import FlagpoleRedis
import FlagpoleTesting
import Foundation
import Synchronization
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A `flagctl daemon` process for tests: started on a free port (`--port 0`), its port read from
/// the line it prints, stopped with SIGTERM.
final class DaemonProcess: Sendable {
    let process: Process
    let port: Int
    /// The flagd sync (gRPC) port, when the daemon serves it.
    let syncPort: Int?
    private let output: OutputBuffer

    /// What the process printed so far.
    final class OutputBuffer: Sendable {
        let text = Mutex<(stdout: String, stderr: String)>(("", ""))
        func withLock<R>(_ body: (inout (stdout: String, stderr: String)) -> R) -> R { text.withLock { body(&$0) } }
    }

    private init(process: Process, port: Int, syncPort: Int?, output: OutputBuffer) {
        self.process = process
        self.port = port
        self.syncPort = syncPort
        self.output = output
    }

    var stdout: String { output.withLock { $0.stdout } }
    var stderr: String { output.withLock { $0.stderr } }
    var baseURL: String { "http://127.0.0.1:\(port)" }

    /// Starts `flagctl daemon ARGUMENTS --port 0` (and `--sync-port 0` unless the arguments name
    /// one or `--no-sync`) and waits until it says where it listens (both ports).
    static func start(_ arguments: [String], environment: [String: String] = [:]) async throws -> DaemonProcess {
        let p = Process()
        p.executableURL = FlagctlProcess.executable
        let syncOff = arguments.contains("--no-sync")
        let syncArguments = syncOff || arguments.contains("--sync-port") ? [] : ["--sync-port", "0"]
        p.arguments = ["daemon", "--port", "0"] + syncArguments + arguments
        var env = ProcessInfo.processInfo.environment
        env["FLAGPOLE_REDIS_URL"] = nil
        env["FLAGPOLE_ENV"] = nil
        env["FLAGPOLE_DAEMON_TOKENS"] = nil
        env["XDG_STATE_HOME"] = FlagctlProcess.stateHome
        for (k, v) in environment { env[k] = v }
        p.environment = env
        p.currentDirectoryURL = FlagctlProcess.packageRoot
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = FileHandle.nullDevice
        let output = OutputBuffer()
        out.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            output.withLock { $0.stdout += String(decoding: data, as: UTF8.self) }
        }
        err.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            output.withLock { $0.stderr += String(decoding: data, as: UTF8.self) }
        }
        try p.run()
        var port: Int?
        var syncPort: Int?
        do {
            try await waitUntil("flagctl daemon says where it listens", timeout: .seconds(20)) {
                if !p.isRunning { return true }
                let text = output.withLock { $0.stdout }
                if port == nil, let range = text.range(of: #"http://(127\.0\.0\.1|0\.0\.0\.0):[0-9]+"#, options: .regularExpression) {
                    port = Int(text[range].split(separator: ":").last!)
                }
                if syncPort == nil, let range = text.range(of: #"flagd sync \([^)]*\) on [0-9.]+:[0-9]+"#, options: .regularExpression) {
                    syncPort = Int(text[range].split(separator: ":").last!)
                }
                return port != nil && (syncOff || syncPort != nil)
            }
        } catch {
            p.terminate()
            throw error
        }
        guard let port else {
            p.waitUntilExit()
            let text = output.withLock { "stdout: \($0.stdout)\nstderr: \($0.stderr)" }
            throw DaemonTestError("flagctl daemon exited with status \(p.terminationStatus) before listening\n\(text)")
        }
        return DaemonProcess(process: p, port: port, syncPort: syncPort, output: output)
    }

    /// Sends SIGTERM and waits for the exit status.
    func stop() async throws -> Int32 {
        if process.isRunning { process.terminate() }
        let p = process
        try await waitUntil("flagctl daemon exits after SIGTERM", timeout: .seconds(20)) { !p.isRunning }
        return process.terminationStatus
    }

    /// Makes a request; returns the status, headers and body.
    func request(
        _ path: String, method: String = "POST", body: String? = nil, headers: [String: String] = [:]
    ) async throws -> (status: Int, headers: [String: String], body: String) {
        var request = URLRequest(url: URL(string: baseURL + path)!)
        request.httpMethod = method
        if let body {
            request.httpBody = Data(body.utf8)
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        for (k, v) in headers { request.setValue(v, forHTTPHeaderField: k) }
        let (data, response) = try await URLSession.shared.data(for: request)
        let http = response as! HTTPURLResponse
        var fields: [String: String] = [:]
        for (k, v) in http.allHeaderFields { fields[String(describing: k).lowercased()] = String(describing: v) }
        return (http.statusCode, fields, String(decoding: data, as: UTF8.self))
    }
}

struct DaemonTestError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Flags for the daemon tests, synced into a test server's `prod`.
func syncDaemonFlags(_ server: RedisServer) async throws -> URL {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("flagctl-daemon-\(UUID().uuidString.prefix(8))")
    try FileManager.default.createDirectory(at: root.appendingPathComponent("prod"), withIntermediateDirectories: true)
    try """
    {"flags": {
      "color": {"state": "ENABLED", "variants": {"blue": "#1F6FEB", "green": "#2DA44E"}, "defaultVariant": "blue"},
      "checkout": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
                   "targeting": {"if": [{"ends_with": [{"var": "email"}, "@flagpole.dev"]}, "on", null]}}
    }}
    """.write(to: root.appendingPathComponent("prod/flags.json"), atomically: true, encoding: .utf8)
    let sync = try FlagctlProcess.run(["sync", "--env", "prod", "--flags", root.path, "--redis", server.url])
    guard sync.status == 0 else { throw DaemonTestError("sync failed: \(sync.stdout)\(sync.stderr)") }
    return root
}

@Suite("flagctl daemon (the binary)", .timeLimit(.minutes(3)))
struct DaemonCommandTests {
    static let staff = #"{"context": {"targetingKey": "u1", "email": "ann@flagpole.dev"}}"#

    @Test("serves OFREP from Redis, follows `flagctl set`, and stops on SIGTERM with status 0")
    func servesAndStops() async throws {
        try await RedisServer.withServer { server in
            let root = try await syncDaemonFlags(server)
            defer { try? FileManager.default.removeItem(at: root) }
            let daemon = try await DaemonProcess.start(["--env", "prod", "--redis", server.url, "--flags", root.path, "--no-watcher"])
            #expect(daemon.stdout.contains("flagctl daemon: serving prod on http://127.0.0.1:\(daemon.port)"))
            #expect(daemon.stdout.contains("watcher off"))

            let checkout = try await daemon.request("/ofrep/v1/evaluate/flags/checkout", body: Self.staff)
            #expect(checkout.status == 200 && checkout.body.contains(#""value":true"#), "\(checkout)")
            #expect(try await daemon.request("/ofrep/v1/evaluate/flags/nope", body: Self.staff).status == 404)
            let bulk = try await daemon.request("/ofrep/v1/evaluate/flags", body: Self.staff)
            let tag = try #require(bulk.headers["etag"])
            #expect(try await daemon.request("/ofrep/v1/evaluate/flags", body: Self.staff, headers: ["If-None-Match": tag]).status == 304)
            #expect(try await daemon.request("/healthz", method: "GET").status == 200)
            // Ready once the client has read Redis and its subscription is confirmed.
            var ready = (status: 0, headers: [String: String](), body: "")
            try await waitUntil("/readyz answers 200") {
                ready = try await daemon.request("/readyz", method: "GET")
                return ready.status == 200
            }
            #expect(ready.body.contains("client: ready (redis, revision 1, in sync)"), "\(ready)")

            let set = try FlagctlProcess.run(["set", "color", "green", "--env", "prod", "--redis", server.url, "--flags", root.path])
            #expect(set.status == 0, "\(set.stderr)")
            try await waitUntil("the daemon serves the new variant") {
                try await daemon.request("/ofrep/v1/evaluate/flags/color", body: Self.staff).body.contains("#2DA44E")
            }
            let changed = try await daemon.request("/ofrep/v1/evaluate/flags", body: Self.staff, headers: ["If-None-Match": tag])
            #expect(changed.status == 200 && changed.headers["etag"] != tag)

            #expect(try await daemon.stop() == 0)
            #expect(daemon.stdout.contains("flagctl daemon: stopped"))
        }
    }

    @Test("the web console: served under /console and named at start; --no-console: 404 and not named")
    func console() async throws {
        try await RedisServer.withServer { server in
            let root = try await syncDaemonFlags(server)
            defer { try? FileManager.default.removeItem(at: root) }
            let common = ["--env", "prod", "--redis", server.url, "--flags", root.path, "--no-watcher"]
            let on = try await DaemonProcess.start(common)
            #expect(on.stdout.contains("flagctl daemon: web console at http://127.0.0.1:\(on.port)/console"))
            let page = try await on.request("/console/flags/color", method: "GET")
            #expect(page.status == 200 && page.body.contains("Evaluate for a context"), "no tokens on loopback: the console is open")
            #expect(try await on.stop() == 0)
            let off = try await DaemonProcess.start(common + ["--no-console"])
            #expect(!off.stdout.contains("web console"))
            #expect(try await off.request("/console", method: "GET").status == 404)
            #expect(try await off.request("/healthz", method: "GET").status == 200)
            #expect(try await off.stop() == 0)
        }
    }

    @Test("tokens from $FLAGPOLE_DAEMON_TOKENS: 401 without one or with a wrong one, 200 with it")
    func tokens() async throws {
        try await RedisServer.withServer { server in
            let root = try await syncDaemonFlags(server)
            defer { try? FileManager.default.removeItem(at: root) }
            let token = "daemon-test-token-0123456789"
            let daemon = try await DaemonProcess.start(
                ["--env", "prod", "--redis", server.url, "--flags", root.path, "--no-watcher"], environment: ["FLAGPOLE_DAEMON_TOKENS": token])
            #expect(daemon.stdout.contains("auth 1 token"))
            #expect(try await daemon.request("/ofrep/v1/evaluate/flags/color", body: Self.staff).status == 401)
            let wrong = try await daemon.request(
                "/ofrep/v1/evaluate/flags/color", body: Self.staff, headers: ["Authorization": "Bearer nope-nope-nope-nope"])
            #expect(wrong.status == 401 && wrong.body.contains("unknown token"))
            #expect(
                try await daemon.request("/ofrep/v1/evaluate/flags/color", body: Self.staff, headers: ["Authorization": "Bearer \(token)"]).status
                    == 200)
            #expect(try await daemon.request("/metrics", method: "GET").status == 200)
            #expect(try await daemon.stop() == 0)
        }
    }

    @Test("a port in use: a clear error naming the address, exit 1")
    func portInUse() async throws {
        try await RedisServer.withServer { server in
            let root = try await syncDaemonFlags(server)
            defer { try? FileManager.default.removeItem(at: root) }
            let first = try await DaemonProcess.start(["--env", "prod", "--redis", server.url, "--flags", root.path, "--no-watcher"])
            let second = try FlagctlProcess.run(
                [
                    "daemon", "--env", "prod", "--redis", server.url, "--flags", root.path, "--no-watcher", "--port", String(first.port),
                    "--sync-port", "0",
                ])
            #expect(second.status == 1)
            #expect(second.stderr.contains("cannot listen on 127.0.0.1:\(first.port): the address is in use"), "\(second.stderr)")
            // The flagd sync port likewise.
            let syncPort = try #require(first.syncPort)
            let third = try FlagctlProcess.run(
                [
                    "daemon", "--env", "prod", "--redis", server.url, "--flags", root.path, "--no-watcher", "--port", "0", "--sync-port",
                    String(syncPort),
                ])
            #expect(third.status == 1)
            #expect(
                third.stderr.contains("cannot listen for flagd sync on 127.0.0.1:\(syncPort): the address is in use"), "\(third.stderr)")
            #expect(try await first.stop() == 0)
        }
    }

    @Test("no tokens on an address other machines reach: refused at start (exit 1) saying how to fix it; --allow-unauthenticated starts and says so")
    func unauthenticatedBind() async throws {
        try await RedisServer.withServer { server in
            let root = try await syncDaemonFlags(server)
            defer { try? FileManager.default.removeItem(at: root) }
            let common = ["--env", "prod", "--redis", server.url, "--flags", root.path, "--no-watcher", "--host", "0.0.0.0"]
            let refused = try FlagctlProcess.run(["daemon", "--port", "0"] + common)
            #expect(refused.status == 1)
            for text in ["refusing to listen on 0.0.0.0 without tokens", "--tokens-file", "127.0.0.1", "--allow-unauthenticated"] {
                #expect(refused.stderr.contains(text), "\(text): \(refused.stderr)")
            }
            let open = try await DaemonProcess.start(common + ["--allow-unauthenticated"])
            #expect(open.stdout.contains("auth OFF on a reachable address (--allow-unauthenticated)"), "\(open.stdout)")
            let ready = try await open.request("/readyz", method: "GET")
            #expect(ready.body.contains("auth: OFF on 0.0.0.0"), "\(ready)")
            #expect(open.stderr.contains("AUTHENTICATION IS OFF"), "\(open.stderr)")
            #expect(try await open.stop() == 0)
            let tokens = try await DaemonProcess.start(common, environment: ["FLAGPOLE_DAEMON_TOKENS": "daemon-test-token-0123456789"])
            #expect(tokens.stdout.contains("auth 1 token"))
            #expect(try await tokens.stop() == 0)
        }
    }

    @Test(
        "usage errors exit 2 with what is wrong and how to fix it",
        arguments: [
            (["daemon", "--env", "prod", "--port", "70000"], "--port 70000 is not a TCP port"),
            (["daemon", "--env", "prod", "--max-body-size", "10"], "--max-body-size 10 is out of range"),
            (["daemon"], "no environment: pass --env NAME or set FLAGPOLE_ENV"),
            (["daemon", "--env", "prod", "--tokens-file", "/nonexistent/tokens"], "cannot read the token file /nonexistent/tokens"),
            (["daemon", "--env", "prod", "--report-rate-limit", "0"], "--report-rate-limit 0 is out of range"),
            (["daemon", "--env", "prod", "--no-watcher", "--watcher-redis", "redis://127.0.0.1:1"], "--no-watcher turns the watcher off"),
            (["acl", "--env", "prod", "--role", "app", "--all-environments"], "--all-environments is for --role writer"),
            (["acl", "--role", "daemon"], "no environment: pass --env NAME"),
            (["acl", "--env", "pr od"], "invalid environment name 'pr od'"),
        ])
    func usageErrors(arguments: [String], message: String) throws {
        let result = try FlagctlProcess.run(arguments)
        #expect(result.status == 2)
        #expect(result.stderr.contains(message), "\(result.stderr)")
    }

    @Test("a bad token file names the line and never prints the token")
    func badTokenFile() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("tokens-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: file) }
        try "# tokens\nshort-secret\n".write(to: file, atomically: true, encoding: .utf8)
        let result = try FlagctlProcess.run(["daemon", "--env", "prod", "--tokens-file", file.path])
        #expect(result.status == 2)
        #expect(result.stderr.contains("\(file.path):2: the token is 12 characters long; use at least 16"), "\(result.stderr)")
        #expect(!result.stderr.contains("short-secret"))
    }

    @Test("--help names the endpoints, the token sources and --no-watcher")
    func help() throws {
        let result = try FlagctlProcess.run(["daemon", "--help"])
        #expect(result.status == 0)
        for text in [
            "/ofrep/v1/evaluate/flags", "/flagpole/v1/outcomes", "--tokens-file", "FLAGPOLE_DAEMON_TOKENS", "--no-watcher", "default: 8016",
            "--allow-unauthenticated", "--report-rate-limit", "--watcher-redis", "flagctl acl", "415", "429", "--no-console", "/console",
        ] {
            #expect(result.stdout.contains(text), "missing \(text)")
        }
    }
}
