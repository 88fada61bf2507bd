import AsyncHTTPClient
import Foundation
import NIOCore
import Synchronization

/// A real `prometheus` server for tests (Debian's `prometheus` package; `scripts/install-deps.sh`
/// installs it): on a free loopback port, in a temporary folder of its own (config and TSDB),
/// scraping the given targets' `/metrics` every ``scrapeInterval``, stopped and removed by
/// ``withServer(scrapeInterval:targets:_:)`` even when the test fails. Targets come from a file
/// Prometheus watches (`file_sd_configs`), so ``setTargets(_:)`` adds apps that started after
/// it, on ports they picked themselves.
///
/// ```swift
/// try await PrometheusServer.withServer(targets: ["127.0.0.1:9464"]) { prometheus in
///     let answer = try await prometheus.query("sum(flagpole_outcomes_total)")
///     …
/// }
/// ```
package final class PrometheusServer: Sendable {
    /// The temporary folder holding the config, the TSDB and the log (removed by ``remove()``).
    package let directory: URL
    /// The TCP port on 127.0.0.1.
    package let port: Int
    /// How often each target is scraped.
    package let scrapeInterval: Duration
    private let process: Mutex<Process?>

    /// `http://127.0.0.1:PORT`.
    package var url: String { "http://127.0.0.1:\(port)" }

    private init(directory: URL, port: Int, scrapeInterval: Duration) {
        self.directory = directory
        self.port = port
        self.scrapeInterval = scrapeInterval
        self.process = Mutex(nil)
    }

    /// Starts a server scraping `targets` (`host:port`, path `/metrics`), runs `body`, then stops
    /// the server and removes its folder, whether `body` returns or throws.
    package static func withServer<T>(
        scrapeInterval: Duration = .seconds(1), targets: [String], _ body: (PrometheusServer) async throws -> T
    ) async throws -> T {
        let server = try await start(scrapeInterval: scrapeInterval, targets: targets)
        do {
            let result = try await body(server)
            server.remove()
            return result
        } catch {
            server.remove()
            throw error
        }
    }

    /// Starts a server and waits until it is ready. Prefer ``withServer(scrapeInterval:targets:_:)``.
    ///
    /// - Throws: ``RedisServerError`` (a test-server error) when `prometheus` is not installed or
    ///   does not become ready within 15 s, with the end of its log.
    package static func start(scrapeInterval: Duration = .seconds(1), targets: [String]) async throws -> PrometheusServer {
        guard let executable = RedisServer.findExecutable("prometheus") else {
            throw RedisServerError(
                "prometheus not found on PATH; the tests with a real Prometheus need it: run scripts/install-deps.sh "
                    + "(Debian: apt-get install --no-install-recommends prometheus)")
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("flagpole-prometheus-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let interval = "\(max(1, Int(scrapeInterval.components.seconds * 1000 + scrapeInterval.components.attoseconds / 1_000_000_000_000_000)))ms"
        let config = """
            global:
              scrape_interval: \(interval)
              scrape_timeout: \(interval)
              evaluation_interval: 1m
            scrape_configs:
              - job_name: flagpole
                metrics_path: /metrics
                file_sd_configs:
                  - files: ['\(dir.appendingPathComponent("targets.json").path)']
            """
        try config.write(to: dir.appendingPathComponent("prometheus.yml"), atomically: true, encoding: .utf8)
        try Self.writeTargets(targets, in: dir)
        var lastError: (any Error)?
        // A free port can be taken between probing and binding: try a few.
        for _ in 0..<3 {
            let server = PrometheusServer(directory: dir, port: try RedisServer.freePort(), scrapeInterval: scrapeInterval)
            do {
                try await server.launch(executable: executable)
                return server
            } catch {
                lastError = error
                server.kill()
            }
        }
        try? FileManager.default.removeItem(at: dir)
        throw lastError ?? RedisServerError("could not start prometheus")
    }

    private func launch(executable: String) async throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = [
            "--config.file=\(directory.appendingPathComponent("prometheus.yml").path)",
            "--storage.tsdb.path=\(directory.appendingPathComponent("data").path)",
            "--web.listen-address=127.0.0.1:\(port)", "--log.level=warn",
        ]
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        p.standardOutput = log
        p.standardError = log
        p.standardInput = FileHandle.nullDevice
        try p.run()
        process.withLock { $0 = p }
        let deadline = ContinuousClock.now + .seconds(15)
        while ContinuousClock.now < deadline {
            if !p.isRunning {
                throw RedisServerError("prometheus exited at start (status \(p.terminationStatus)): \(logTail)")
            }
            if let answer = try? await get("/-/ready", timeout: .milliseconds(500)), answer.status == 200 { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw RedisServerError("prometheus did not become ready within 15 s: \(logTail)")
    }

    /// Scrapes `targets` (`host:port`) from now on, instead of the ones before.
    package func setTargets(_ targets: [String]) throws {
        try Self.writeTargets(targets, in: directory)
    }

    private static func writeTargets(_ targets: [String], in directory: URL) throws {
        let list = targets.map { "\"\($0)\"" }.joined(separator: ", ")
        try "[{\"targets\": [\(list)]}]\n".write(to: directory.appendingPathComponent("targets.json"), atomically: true, encoding: .utf8)
    }

    private var logPath: String { directory.appendingPathComponent("prometheus.log").path }

    /// The last lines of the server's log.
    package var logTail: String {
        String(((try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "").suffix(1500))
    }

    /// `GET path` on the server: the status and the body.
    package func get(_ path: String, timeout: Duration = .seconds(5)) async throws -> (status: Int, body: String) {
        var request = HTTPClientRequest(url: url + path)
        request.method = .GET
        let ms = timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000
        let response = try await HTTPClient.shared.execute(request, timeout: .milliseconds(ms))
        let body = try await response.body.collect(upTo: 8 << 20)
        return (Int(response.status.code), String(buffer: body))
    }

    /// An instant query's JSON answer (`/api/v1/query?query=…`), as text.
    package func query(_ promQL: String) async throws -> String {
        var components = URLComponents()
        components.queryItems = [URLQueryItem(name: "query", value: promQL)]
        let encoded = components.percentEncodedQuery?.replacingOccurrences(of: "+", with: "%2B") ?? ""
        return try await get("/api/v1/query?" + encoded).body
    }

    /// The server's process id, while it runs.
    package var pid: Int32? { process.withLock { p in p.flatMap { $0.isRunning ? $0.processIdentifier : nil } } }

    /// Freezes the server (`SIGSTOP`): it keeps accepting connections (the kernel does) but answers
    /// nothing, like an overloaded server.
    package func pause() {
        if let pid { Foundation.kill(pid, SIGSTOP) }
    }

    /// Whether the server is stopped by ``pause()`` (its state in `/proc` is `T`).
    package var isPaused: Bool {
        guard let pid, let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return false }
        return stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).hasPrefix("T")
    }

    /// Thaws a paused server (`SIGCONT`).
    package func resume() {
        if let pid { Foundation.kill(pid, SIGCONT) }
    }

    /// Stops the server (`SIGTERM`) and waits for it to exit: its port refuses connections.
    package func stop() {
        resume()
        let p = process.withLock { p -> Process? in
            defer { p = nil }
            return p
        }
        guard let p, p.isRunning else { return }
        Foundation.kill(p.processIdentifier, SIGTERM)
        p.waitForExit()
    }

    private func kill() {
        let p = process.withLock { p -> Process? in
            defer { p = nil }
            return p
        }
        guard let p, p.isRunning else { return }
        Foundation.kill(p.processIdentifier, SIGCONT)
        Foundation.kill(p.processIdentifier, SIGKILL)
        p.waitForExit()
    }

    /// Stops the server and removes its folder.
    package func remove() {
        stop()
        try? FileManager.default.removeItem(at: directory)
    }

    deinit {
        let p = process.withLock { $0 }
        if let p, p.isRunning {
            Foundation.kill(p.processIdentifier, SIGCONT)
            Foundation.kill(p.processIdentifier, SIGKILL)
        }
    }
}
