import Flagpole
import FlagpoleStore
import FlagpoleTesting
import Foundation
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

@Suite("The README example (Examples/HelloFlags), built and run", .timeLimit(.minutes(2)))
struct ExampleTests {
    /// The examples sit next to the test binary in the build folder.
    static func executable(_ name: String = "HelloFlags") -> URL {
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        while !FileManager.default.isExecutableFile(atPath: dir.appendingPathComponent(name).path), dir.path != "/" {
            dir = dir.deletingLastPathComponent()
        }
        return dir.appendingPathComponent(name)
    }

    func get(_ url: String) async -> (status: Int, body: String)? {
        guard let (data, response) = try? await URLSession.shared.data(from: URL(string: url)!) else { return nil }
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, String(decoding: data, as: UTF8.self))
    }

    @Test("serves HTTP, reads the flag on every request, follows a change, and reports outcomes")
    func example() async throws {
        try await RedisServer.withServer { server in
            let fx = try await Fixture(server)
            defer { fx.remove() }
            let port = try RedisServer.freePort()
            let process = Process()
            process.executableURL = Self.executable()
            var env = ProcessInfo.processInfo.environment
            env["FLAGPOLE_REDIS_URL"] = server.url
            env["FLAGPOLE_ENV"] = "prod"
            env["FLAGPOLE_FLAGS"] = fx.root.path
            env["PORT"] = String(port)
            env["TMPDIR"] = fx.root.path
            env["XDG_STATE_HOME"] = fx.root.path  // its snapshot, not in the user's home
            process.environment = env
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            defer { if process.isRunning { process.terminate() } }
            let base = "http://127.0.0.1:\(port)"
            try await waitUntil("the example is ready", timeout: .seconds(20), interval: .milliseconds(50)) {
                await get(base + "/readyz")?.status == 200
            }
            #expect(await get(base + "/checkout?user=ann")?.body == "classic checkout for ann\n")
            _ = try await fx.control.apply(.set(variant: "on"), flag: "new-checkout", actor: "ann", reason: nil)
            try await waitUntil("the next request takes the new path") {
                await get(base + "/checkout?user=ann")?.body == "new checkout for ann\n"
            }
            #expect(await get(base + "/checkout")?.status == 400)
            let minute = StoreLayout.unixMinute(Int64(Date().timeIntervalSince1970))
            try await waitUntil("its outcomes land in Redis") {
                let counts = try await fx.control.store.outcomes(flag: "new-checkout", minutes: (minute - 1)...(minute + 1))
                return (counts["off"]?.succeeded ?? 0) >= 1 && (counts["on"]?.succeeded ?? 0) >= 1 && counts["on"]?.failed == 1
            }
            #expect(try await fx.control.store.clients().clients.map(\.application) == ["hello-flags"])
            process.terminate()
            process.waitUntilExit()
            #expect(process.terminationStatus == 0)
            #expect(try await fx.control.store.clients().clients.isEmpty)
        }
    }

    @Test("the plain ServiceGroup example (Examples/PlainService) follows a change and stops on SIGTERM with exit 0")
    func plainService() async throws {
        try await RedisServer.withServer { server in
            let fx = try await Fixture(server)
            defer { fx.remove() }
            let process = Process()
            process.executableURL = Self.executable("PlainService")
            var env = ProcessInfo.processInfo.environment
            env["FLAGPOLE_REDIS_URL"] = server.url
            env["FLAGPOLE_ENV"] = "prod"
            env["XDG_STATE_HOME"] = fx.root.path  // its snapshot, not in the user's home
            process.environment = env
            let log = LogLines()
            let pipe = Pipe()
            process.standardError = pipe
            process.standardOutput = FileHandle.nullDevice
            pipe.fileHandleForReading.readabilityHandler = { handle in log.append(handle.availableData) }
            try process.run()
            defer { if process.isRunning { process.terminate() } }
            try await waitUntil("it serves the synced value", timeout: .seconds(20)) {
                log.text.contains("new-checkout for ann") && log.text.contains("value=false")
            }
            _ = try await fx.control.apply(.set(variant: "on"), flag: "new-checkout", actor: "ann", reason: nil)
            try await waitUntil("it logs the change") { log.text.contains("value=true") }
            #expect(try await fx.control.store.clients().clients.map(\.application) == ["plain-service"])
            process.terminate()
            process.waitUntilExit()
            #expect(process.terminationStatus == 0, "stderr: \(log.text)")
        }
    }
}

/// What a child process wrote, read as it arrives.
final class LogLines: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()

    func append(_ chunk: Data) { lock.withLock { data.append(chunk) } }
    var text: String { lock.withLock { String(decoding: data, as: UTF8.self) } }
}
