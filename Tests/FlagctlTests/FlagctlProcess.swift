import Foundation

/// Runs the built `flagctl` binary and captures what it prints.
struct FlagctlProcess {
    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
        var elapsed: Duration
    }

    /// The package root (…/Tests/FlagctlTests/FlagctlProcess.swift → …).
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// `flagctl` sits next to the test binary in the build folder.
    static var executable: URL {
        let testBinary = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var dir = testBinary.deletingLastPathComponent()
        // swift test may run …/debug/FlagpolePackageTests.xctest (a binary on Linux).
        while !FileManager.default.isExecutableFile(atPath: dir.appendingPathComponent("flagctl").path), dir.path != "/" {
            dir = dir.deletingLastPathComponent()
        }
        return dir.appendingPathComponent("flagctl")
    }

    /// `$XDG_STATE_HOME` for the programs the tests run (the daemon's disk snapshot), so that no
    /// test writes into the user's home: one temporary folder per user, reused by every run.
    static let stateHome = FileManager.default.temporaryDirectory.appendingPathComponent("flagctl-tests-state-\(geteuid())").path

    static func run(_ arguments: [String], environment: [String: String] = [:], stdin: String? = nil, in directory: URL? = nil) throws -> Result {
        try runExternal(executable.path, arguments, environment: environment, stdin: stdin, in: directory)
    }

    /// Runs any program the same way.
    static func runExternal(
        _ path: String, _ arguments: [String], environment: [String: String] = [:], stdin: String? = nil, in directory: URL? = nil
    ) throws -> Result {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        env["FLAGPOLE_REDIS_URL"] = nil
        env["FLAGPOLE_ENV"] = nil
        env["XDG_STATE_HOME"] = stateHome
        for (k, v) in environment { env[k] = v }
        p.environment = env
        p.currentDirectoryURL = directory ?? packageRoot
        let out = Pipe(), err = Pipe(), input = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = input
        let start = ContinuousClock.now
        try p.run()
        // Read both pipes on their own threads while writing stdin, so no side blocks on a full pipe.
        let errData = ReadAll(err.fileHandleForReading)
        let outRead = ReadAll(out.fileHandleForReading)
        if let stdin { input.fileHandleForWriting.write(Data(stdin.utf8)) }
        try input.fileHandleForWriting.close()
        let outData = outRead.wait()
        p.waitUntilExit()
        return Result(
            status: p.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
            stderr: String(decoding: errData.wait(), as: UTF8.self), elapsed: start.duration(to: .now))
    }
}

/// Reads a file handle to its end on a thread of its own.
final class ReadAll: @unchecked Sendable {
    private var data = Data()
    private let done = DispatchSemaphore(value: 0)

    init(_ handle: FileHandle) {
        Thread {
            self.data = handle.readDataToEndOfFile()
            self.done.signal()
        }.start()
    }

    func wait() -> Data {
        done.wait()
        return data
    }
}
