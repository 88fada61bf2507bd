import Flagpole
import FlagpoleRedis
import Foundation
import Synchronization

/// The parent's side: one child process, its "ready" line, and its "<revision> <nanos>" lines
/// (when all of its followers had applied that revision, on the monotonic clock).
enum PropagationParent {
    final class Child: @unchecked Sendable {
        // Written by the reader thread, read by the benchmark under `lock`.
        private var times: [Int64: Int64] = [:]
        private var ready = false
        private let lock = NSCondition()
        private let process = Process()
        private let input = Pipe()

        init(mode: String, url: String, count: Int) throws {
            process.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
            var env = ProcessInfo.processInfo.environment
            env["FLAGPOLE_BENCH_CHILD"] = mode
            env["FLAGPOLE_BENCH_URL"] = url
            env["FLAGPOLE_BENCH_COUNT"] = String(count)
            process.environment = env
            let output = Pipe()
            process.standardOutput = output
            process.standardInput = input
            process.standardError = FileHandle.nullDevice
            try process.run()
            let handle = output.fileHandleForReading
            Thread { [self] in
                var buffer = Data()
                while true {
                    let chunk = handle.availableData
                    if chunk.isEmpty { break }
                    buffer.append(chunk)
                    while let newline = buffer.firstIndex(of: 10) {
                        let line = String(decoding: buffer[buffer.startIndex..<newline], as: UTF8.self)
                        buffer.removeSubrange(buffer.startIndex...newline)
                        lock.lock()
                        if line == "ready" {
                            ready = true
                        } else {
                            let parts = line.split(separator: " ")
                            if parts.count == 2, let r = Int64(parts[0]), let t = Int64(parts[1]) { times[r] = t }
                        }
                        lock.broadcast()
                        lock.unlock()
                    }
                }
            }.start()
        }

        func waitReady() {
            lock.lock()
            while !ready { lock.wait() }
            lock.unlock()
        }

        /// When every follower in the child had `revision` (monotonic nanoseconds).
        func wait(for revision: Int64) -> Int64 {
            lock.lock()
            defer { lock.unlock() }
            while times[revision] == nil {
                if !lock.wait(until: Date().addingTimeInterval(30)) { fatalError("child never reported \(revision)") }
            }
            return times.removeValue(forKey: revision)!
        }

        func stop() {
            try? input.fileHandleForWriting.close()
            process.waitUntilExit()
        }
    }
}

/// The child's side: `count` clients (or raw subscribers) that report when all have applied a
/// revision (or received a sequence number).
enum PropagationChild {
    final class Tally: Sendable {
        let count: Int
        let state = Mutex<[Int64: (seen: Int, latest: Int64)]>([:])

        init(count: Int) { self.count = count }

        func saw(_ revision: Int64) {
            let now = monotonicNanos()
            let complete = state.withLock { s -> Int64? in
                var entry = s[revision] ?? (0, 0)
                entry.seen += 1
                entry.latest = max(entry.latest, now)
                if entry.seen == count {
                    s[revision] = nil
                    return entry.latest
                }
                s[revision] = entry
                return nil
            }
            if let complete { emit("\(revision) \(complete)") }
        }
    }

    final class Counter: Sendable {
        private let value = Atomic<Int>(0)
        /// Adds one; returns the new count.
        func increment() -> Int { value.add(1, ordering: .relaxed).newValue }
    }

    static let output = Mutex(())

    static func emit(_ line: String) {
        output.withLock { _ in
            FileHandle.standardOutput.write(Data((line + "\n").utf8))
        }
    }

    static func main() {
        let env = ProcessInfo.processInfo.environment
        let url = env["FLAGPOLE_BENCH_URL"]!
        let count = Int(env["FLAGPOLE_BENCH_COUNT"] ?? "50")!
        let raw = env["FLAGPOLE_BENCH_CHILD"] == "raw"
        let tally = Tally(count: count)
        let done = DispatchSemaphore(value: 0)
        Task {
            await withTaskGroup(of: Void.self) { group in
                let readyCount = Counter()
                for i in 0..<count {
                    if raw {
                        let subscriber = RedisSubscriber(configuration: try! RedisConfiguration(url: url))
                        group.addTask {
                            for await event in subscriber.subscribe(to: ["bench:raw"]) {
                                switch event {
                                case .subscribed:
                                    if readyCount.increment() == count { emit("ready") }
                                case .message(let m):
                                    if let n = Int64(String(decoding: m.payload, as: UTF8.self)) { tally.saw(n) }
                                case .disconnected:
                                    break
                                }
                            }
                        }
                    } else {
                        var c = FlagpoleClient.Configuration(
                            redis: try! RedisConfiguration(url: url), environment: "prop", application: "bench-\(getpid())-\(i)")
                        c.snapshotPath = nil
                        let client = FlagpoleClient(configuration: c)
                        let changes = client.changes()
                        group.addTask { try? await client.run() }
                        group.addTask {
                            _ = await client.waitUntilReady(timeout: .seconds(30))
                            if readyCount.increment() == count { emit("ready") }
                            for await _ in changes {
                                if let r = client.freshness.revision { tally.saw(r) }
                            }
                        }
                    }
                }
                // The parent closes standard input to stop the child.
                group.addTask {
                    await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                        Thread {
                            _ = FileHandle.standardInput.readDataToEndOfFile()
                            c.resume()
                        }.start()
                    }
                    exit(0)
                }
            }
            done.signal()
        }
        done.wait()
    }
}
