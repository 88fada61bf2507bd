import FlagpoleRedis
import Foundation
import Synchronization

/// A real `redis-server` for tests: on a free loopback port (and a unix socket) in a temporary
/// folder of its own, with no persistence unless asked, stopped by ``withServer(_:_:)`` even when
/// the test fails.
///
/// ```swift
/// try await RedisServer.withServer { server in
///     let client = RedisClient(configuration: server.configuration)
///     …
/// }
/// ```
package final class RedisServer: Sendable {
    /// How to start the server.
    package struct Options: Sendable {
        /// Append-only-file persistence (`appendonly yes`, `appendfsync always`). Default: off.
        package var appendOnly = false
        /// `requirepass`. Default: none.
        package var password: String?
        /// Extra `redis-server` arguments, e.g. `["--maxmemory", "10mb"]`.
        package var extraArguments: [String] = []
        /// Lines of a config file written to the server's folder and passed first (Sentinel needs
        /// one it can rewrite). Default: none.
        package var configLines: [String] = []
        /// Run as a Sentinel (`redis-server sentinel.conf --sentinel`). Default: false.
        package var sentinel = false

        package init(
            appendOnly: Bool = false, password: String? = nil, extraArguments: [String] = [], configLines: [String] = [],
            sentinel: Bool = false
        ) {
            self.appendOnly = appendOnly
            self.password = password
            self.extraArguments = extraArguments
            self.configLines = configLines
            self.sentinel = sentinel
        }
    }

    /// The temporary folder holding the server's files (removed by ``remove()``).
    package let directory: URL
    /// The TCP port on 127.0.0.1.
    package let port: Int
    /// The unix socket path.
    package let socketPath: String
    package let options: Options
    private let process: Mutex<Process?>

    /// `redis://127.0.0.1:PORT` (with the password, if any).
    package var url: String {
        if let password = options.password { return "redis://:\(password)@127.0.0.1:\(port)" }
        return "redis://127.0.0.1:\(port)"
    }

    /// `unix:///…/redis.sock`.
    package var unixURL: String { "unix://\(socketPath)" + (options.password.map { "?password=\($0)" } ?? "") }

    /// A configuration for the TCP endpoint with short timeouts suited to tests.
    package var configuration: RedisConfiguration {
        RedisConfiguration.forTests(url: url)
    }

    private init(directory: URL, port: Int, options: Options) {
        self.directory = directory
        self.port = port
        self.socketPath = directory.appendingPathComponent("redis.sock").path
        self.options = options
        self.process = Mutex(nil)
    }

    /// Starts a server, runs `body`, and stops the server and removes its folder afterwards,
    /// whether `body` returns or throws.
    package static func withServer<T>(
        _ options: Options = Options(), _ body: (RedisServer) async throws -> T
    ) async throws -> T {
        let server = try await start(options)
        do {
            let result = try await body(server)
            server.remove()
            return result
        } catch {
            server.remove()
            throw error
        }
    }

    /// Starts a server and waits until it answers. Prefer ``withServer(_:_:)``.
    package static func start(_ options: Options = Options()) async throws -> RedisServer {
        guard let executable = findExecutable("redis-server") else {
            throw RedisServerError("redis-server not found on PATH; install it (Debian: apt-get install redis-server)")
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("flagpole-redis-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        var lastError: (any Error)?
        // A free port can be taken between probing and binding: try a few.
        for _ in 0..<5 {
            let server = RedisServer(directory: dir, port: try freePort(), options: options)
            do {
                try await server.launch(executable: executable)
                return server
            } catch {
                lastError = error
                server.kill()
            }
        }
        try? FileManager.default.removeItem(at: dir)
        throw lastError ?? RedisServerError("could not start redis-server")
    }

    private func arguments() throws -> [String] {
        var args: [String] = []
        if options.sentinel || !options.configLines.isEmpty {
            let file = directory.appendingPathComponent(options.sentinel ? "sentinel.conf" : "redis.conf")
            if !FileManager.default.fileExists(atPath: file.path) {
                try (options.configLines.joined(separator: "\n") + "\n").write(to: file, atomically: true, encoding: .utf8)
            }
            args += [file.path] + (options.sentinel ? ["--sentinel"] : [])
        }
        args += [
            "--port", "\(port)", "--bind", "127.0.0.1", "--unixsocket", socketPath, "--unixsocketperm", "700",
            "--dir", directory.path, "--daemonize", "no", "--protected-mode", "no",
            "--logfile", directory.appendingPathComponent("redis.log").path,
        ]
        if options.sentinel { return args + (options.password.map { ["--requirepass", $0] } ?? []) + options.extraArguments }
        args += ["--save", ""]
        if options.appendOnly {
            args += ["--appendonly", "yes", "--appendfsync", "always"]
        } else {
            args += ["--appendonly", "no"]
        }
        if let password = options.password { args += ["--requirepass", password] }
        return args + options.extraArguments
    }

    private func launch(executable: String) async throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = try arguments()
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        process.withLock { $0 = p }
        try await waitUntilReady(process: p)
    }

    private func waitUntilReady(process p: Process) async throws {
        var config = try RedisConfiguration(url: "unix://\(socketPath)")
        config.password = options.password
        config.connectTimeout = .milliseconds(200)
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            if !p.isRunning {
                let log = (try? String(contentsOf: directory.appendingPathComponent("redis.log"), encoding: .utf8)) ?? ""
                throw RedisServerError("redis-server exited at start (status \(p.terminationStatus)): \(log.suffix(400))")
            }
            if let c = try? RedisConnection(configuration: config), (try? c.send(["PING"])) != nil {
                return
            }
            try await Task.sleep(for: .milliseconds(5))
        }
        throw RedisServerError("redis-server did not answer within 10 s")
    }

    /// The server's process id, while it runs.
    package var pid: Int32? { process.withLock { p in p.flatMap { $0.isRunning ? $0.processIdentifier : nil } } }

    /// Kills the server at once (`SIGKILL`), as a crash would, and waits for it to be gone.
    package func kill() {
        signalAndWait(SIGKILL)
    }

    /// Stops the server (`SIGTERM`) and waits for it to exit.
    package func stop() {
        signalAndWait(SIGTERM)
    }

    private func signalAndWait(_ signal: Int32) {
        let p = process.withLock { p -> Process? in
            defer { p = nil }
            return p
        }
        guard let p, p.isRunning else { return }
        Foundation.kill(p.processIdentifier, signal)
        p.waitForExit()
    }

    /// Freezes the server (`SIGSTOP`): it keeps its connections but answers nothing.
    package func pause() {
        if let pid { Foundation.kill(pid, SIGSTOP) }
    }

    /// Thaws a paused server (`SIGCONT`).
    package func resume() {
        if let pid { Foundation.kill(pid, SIGCONT) }
    }

    /// Starts the server again on the same port, socket and folder (after ``kill()`` or ``stop()``);
    /// with append-only persistence it reloads its data.
    package func restart() async throws {
        stop()
        guard let executable = Self.findExecutable("redis-server") else { throw RedisServerError("redis-server not found") }
        try await launch(executable: executable)
    }

    /// Stops the server and removes its folder.
    package func remove() {
        resume()
        kill()
        try? FileManager.default.removeItem(at: directory)
    }

    deinit {
        let p = process.withLock { $0 }
        if let p, p.isRunning {
            Foundation.kill(p.processIdentifier, SIGCONT)
            Foundation.kill(p.processIdentifier, SIGKILL)
        }
    }

    static func findExecutable(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for dir in path.split(separator: ":") + ["/usr/bin", "/usr/sbin"] {
            let candidate = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// A TCP port on 127.0.0.1 that is free right now.
    package static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw RedisServerError("socket() failed") }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = 0
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
        guard bound == 0 else { throw RedisServerError("bind() failed") }
        let named = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        guard named == 0 else { throw RedisServerError("getsockname() failed") }
        return Int(UInt16(bigEndian: addr.sin_port))
    }
}

extension RedisConfiguration {
    /// The configuration of a test server's URL, with short timeouts and a fast backoff
    /// (connect 2 s, command 5 s, backoff 10 ms to 200 ms, subscribers back within 50 ms).
    static func forTests(url: String) -> RedisConfiguration {
        var c = try! RedisConfiguration(url: url)
        c.connectTimeout = .seconds(2)
        c.commandTimeout = .seconds(5)
        c.backoff = .init(initial: .milliseconds(10), maximum: .milliseconds(200), reconnectSpread: .milliseconds(50))
        return c
    }
}

/// A test server could not be started.
package struct RedisServerError: Error, CustomStringConvertible {
    package var description: String
    package init(_ description: String) { self.description = description }
}
