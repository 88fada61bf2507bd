import FlagpoleTesting
import Foundation

/// A long-running program started by a test (`flagctl daemon`, `flagpole-traffic`): its output
/// is collected line by line as it comes, and it is stopped with SIGTERM (then SIGKILL) at the end.
final class BackgroundProcess: @unchecked Sendable {
    let name: String
    private let process = Process()
    private let lock = NSLock()
    private var stdoutLines: [String] = []
    private var stderrText = ""
    private var partial = Data()

    /// Starts `path` with `arguments`; FLAGPOLE_REDIS_URL and FLAGPOLE_ENV are not inherited.
    init(_ path: String, _ arguments: [String], environment: [String: String] = [:], in directory: URL? = nil) throws {
        name = URL(fileURLWithPath: path).lastPathComponent
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        env["FLAGPOLE_REDIS_URL"] = nil
        env["FLAGPOLE_ENV"] = nil
        env["XDG_STATE_HOME"] = FlagctlProcess.stateHome
        for (k, v) in environment { env[k] = v }
        process.environment = env
        if let directory { process.currentDirectoryURL = directory }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        out.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let data = handle.availableData
            guard let self, !data.isEmpty else { return }
            self.lock.withLock {
                self.partial.append(data)
                while let newline = self.partial.firstIndex(of: UInt8(ascii: "\n")) {
                    self.stdoutLines.append(String(decoding: self.partial[self.partial.startIndex..<newline], as: UTF8.self))
                    self.partial.removeSubrange(self.partial.startIndex...newline)
                }
            }
        }
        err.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let data = handle.availableData
            guard let self, !data.isEmpty else { return }
            self.lock.withLock { self.stderrText += String(decoding: data, as: UTF8.self) }
        }
        try process.run()
    }

    /// The complete lines printed so far.
    var lines: [String] { lock.withLock { stdoutLines } }

    /// Everything printed to standard error so far.
    var stderr: String { lock.withLock { stderrText } }

    var isRunning: Bool { process.isRunning }

    /// Waits until a line printed so far (from `after` on) satisfies `predicate`, or fails with
    /// what the program printed.
    @discardableResult
    func waitForLine(
        after index: Int = 0, timeout: Duration, _ what: String, where predicate: @escaping @Sendable (String) -> Bool
    ) async throws -> (index: Int, line: String) {
        var found: (Int, String)?
        do {
            try await waitUntil(what, timeout: timeout, interval: .milliseconds(50)) {
                let lines = self.lines
                if index < lines.count, let i = lines[index...].firstIndex(where: predicate) { found = (i, lines[i]) }
                return found != nil
            }
        } catch {
            throw BackgroundProcessError(
                message: "\(name): \(what) did not happen within \(timeout); last output:\n"
                    + lines.suffix(15).joined(separator: "\n") + "\nstderr:\n" + String(stderr.suffix(3000)))
        }
        return found!
    }

    /// SIGTERM, then SIGKILL after `grace`; returns the exit status.
    @discardableResult
    func stop(grace: Duration = .seconds(10)) async -> Int32 {
        if process.isRunning {
            process.terminate()
            let deadline = ContinuousClock.now.advanced(by: grace)
            while process.isRunning, ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(20)) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        process.waitUntilExit()
        return process.terminationStatus
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }
}

struct BackgroundProcessError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}
