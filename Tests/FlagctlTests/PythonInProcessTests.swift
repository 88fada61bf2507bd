import Flagpole
import FlagpoleCore
import FlagpoleRedis
import FlagpoleTesting
import Foundation
import Synchronization
import Testing

/// interop/python/inprocess_driver.py: flagd's Python provider (PyPI `openfeature-provider-flagd`)
/// in in-process mode, connected to a daemon's flagd sync port, answering JSON lines.
final class PythonInProcessDriver: Sendable {
    static let script = FlagctlProcess.packageRoot.appendingPathComponent("interop/python/inprocess_driver.py")

    private let process: Process
    private let input: FileHandle
    private struct Output {
        var lines: [String] = []
        var partial = Data()
        var stderr = ""
        var consumed = 0
    }
    private final class OutputBox: Sendable {
        let state = Mutex(Output())
        func withLock<R>(_ body: (inout Output) -> R) -> R { state.withLock { body(&$0) } }
    }
    private let output = OutputBox()

    /// Starts the driver and waits until the provider has its first flag set.
    init(python: String, syncPort: Int, token: String?) async throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: python)
        p.arguments = [Self.script.path]
        var env = ProcessInfo.processInfo.environment
        env["FLAGPOLE_SYNC_HOST"] = "127.0.0.1"
        env["FLAGPOLE_SYNC_PORT"] = String(syncPort)
        env["FLAGPOLE_DAEMON_TOKEN"] = token
        env["PYTHONUNBUFFERED"] = "1"
        p.environment = env
        p.currentDirectoryURL = Self.script.deletingLastPathComponent()
        let stdin = Pipe(), stdout = Pipe(), stderr = Pipe()
        p.standardInput = stdin
        p.standardOutput = stdout
        p.standardError = stderr
        let output = self.output
        stdout.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            output.withLock { o in
                o.partial.append(data)
                while let newline = o.partial.firstIndex(of: UInt8(ascii: "\n")) {
                    o.lines.append(String(decoding: o.partial[o.partial.startIndex..<newline], as: UTF8.self))
                    o.partial.removeSubrange(o.partial.startIndex...newline)
                }
            }
        }
        stderr.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            output.withLock { $0.stderr += String(decoding: data, as: UTF8.self) }
        }
        process = p
        input = stdin.fileHandleForWriting
        try p.run()
        let ready: JSONValue
        do {
            ready = try await nextLine(timeout: .seconds(30))
        } catch {
            stop()
            throw DaemonTestError("the Python driver did not get ready: \(error)")
        }
        guard ready["ready"] == true else {
            stop()
            throw DaemonTestError("the Python driver did not get ready: \(ready)\n\(stderrText)")
        }
    }

    var stderrText: String { output.withLock { String($0.stderr.suffix(3000)) } }

    /// The next line the driver prints, as JSON.
    func nextLine(timeout: Duration) async throws -> JSONValue {
        var line: String?
        let p = process
        try await waitUntil("the Python driver answers", timeout: timeout) {
            line = self.output.withLock { o -> String? in
                guard o.consumed < o.lines.count else { return nil }
                o.consumed += 1
                return o.lines[o.consumed - 1]
            }
            if line == nil, !p.isRunning { throw DaemonTestError("the Python driver exited (\(p.terminationStatus)):\n\(self.stderrText)") }
            return line != nil
        }
        return try JSONParser.parse(line!)
    }

    /// Sends one command and returns its answer.
    func send(_ command: JSONValue, timeout: Duration = .seconds(60)) async throws -> JSONValue {
        input.write(Data((command.jsonString + "\n").utf8))
        return try await nextLine(timeout: timeout)
    }

    func stop() {
        try? input.close()
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
    }
}

/// One typed evaluation: what Python is asked and the Swift client answers.
struct InteropCase {
    var flag: String
    var type: FlagValueType
    var context: [String: JSONValue]

    var json: JSONValue {
        let defaults: [FlagValueType: JSONValue] = [.boolean: false, .string: "fallback", .integer: 7, .float: 0.5, .object: ["fallback": true]]
        return ["flag": .string(flag), "type": .string(type.rawValue), "default": defaults[type]!, "context": .object(context)]
    }

    /// The Swift client's answer, as the driver writes Python's.
    func evaluate(_ client: FlagpoleClient) -> JSONValue {
        let context = EvaluationContext(.object(self.context))
        func result<V>(_ d: EvaluationDetails<V>, _ value: JSONValue) -> JSONValue {
            [
                "value": value, "variant": d.variant.map { .string($0) } ?? .null, "reason": .string(d.reason.rawValue),
                "error": d.errorCode.map { .string($0.rawValue) } ?? .null,
            ]
        }
        switch type {
        case .boolean:
            let d = client.boolDetails(flag, default: false, context: context)
            return result(d, .bool(d.value))
        case .string:
            let d = client.stringDetails(flag, default: "fallback", context: context)
            return result(d, .string(d.value))
        case .integer:
            let d = client.integerDetails(flag, default: 7, context: context)
            return result(d, .int(Int64(d.value)))
        case .float:
            let d = client.doubleDetails(flag, default: 0.5, context: context)
            return result(d, .double(d.value))
        case .object:
            let d = client.objectDetails(flag, default: ["fallback": true], context: context)
            return result(d, d.value)
        }
    }

    /// The type a flag's variants have; nil when they mix types (no typed read is meaningful).
    static func type(of definition: JSONValue) -> FlagValueType? {
        guard case .object(let variants)? = definition["variants"], !variants.isEmpty else { return nil }
        let values = Array(variants.values)
        if values.allSatisfy({ if case .bool = $0 { true } else { false } }) { return .boolean }
        if values.allSatisfy({ if case .string = $0 { true } else { false } }) { return .string }
        if values.allSatisfy({ if case .int = $0 { true } else { false } }) { return .integer }
        if values.allSatisfy({ $0.numberValue != nil }) { return .float }
        if values.allSatisfy({ $0.objectValue != nil }) { return .object }
        return nil
    }

    /// Deterministic contexts over the attributes the flags of flags/ and of the conformance files
    /// read (email, plan, appVersion, age, locale, version, user.name, …), some without a targeting key.
    static func contexts(count: Int) -> [[String: JSONValue]] {
        let emails: [JSONValue] = ["ann@flagpole.dev", "bob@example.com", "ballmer@macrosoft.com", "eve@faas.com", "x@y.z"]
        let plans: [JSONValue] = ["free", "business", "enterprise"]
        let versions: [JSONValue] = ["4.3.0", "3.9.1", "5.0.0-beta.1", "1.0.0", "2.1.3"]
        let locales: [JSONValue] = ["us", "ca", "de", "fr"]
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next(_ n: Int) -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((state >> 33) % UInt64(n))
        }
        return (0..<count).map { i in
            var c: [String: JSONValue] = [:]
            if i % 7 != 6 { c["targetingKey"] = .string("user-\(i)") }
            if next(3) > 0 { c["email"] = emails[next(emails.count)] }
            if next(2) > 0 { c["plan"] = plans[next(plans.count)] }
            if next(2) > 0 { c["appVersion"] = versions[next(versions.count)] }
            if next(2) > 0 { c["version"] = versions[next(versions.count)] }
            if next(2) > 0 { c["age"] = .int(Int64(next(80))) }
            if next(2) > 0 { c["locale"] = locales[next(locales.count)] }
            if next(3) == 0 { c["user"] = ["name": .string(["alice", "bob", "carol"][next(3)])] }
            if next(4) == 0 { c["id"] = .string("id-\(next(100))") }
            return c
        }
    }
}

/// Python's answer and the Swift client's agree: value (numbers by value), variant, reason, error code.
func interopAgree(_ python: JSONValue, _ swift: JSONValue) -> Bool {
    let sameValue: Bool
    if let a = python["value"]?.numberValue, let b = swift["value"]?.numberValue {
        sameValue = a == b
    } else {
        sameValue = python["value"] == swift["value"]
    }
    return sameValue && python["variant"] == swift["variant"] && python["reason"] == swift["reason"] && python["error"] == swift["error"]
}

@Suite("flagd sync interop: flagd's Python provider in-process against flagctl daemon", .serialized, .timeLimit(.minutes(8)))
struct PythonInProcessTests {
    static let token = "python-inprocess-token-0123456789"

    /// Every case, evaluated by Python and by the Swift client; the disagreements, described.
    static func disagreements(_ cases: [InteropCase], python driver: PythonInProcessDriver, swift client: FlagpoleClient) async throws -> [String] {
        var problems: [String] = []
        for chunk in stride(from: 0, to: cases.count, by: 500).map({ Array(cases[$0..<min($0 + 500, cases.count)]) }) {
            let answer = try await driver.send(["op": "eval", "cases": .array(chunk.map(\.json))])
            guard case .array(let results)? = answer["results"], results.count == chunk.count else {
                throw DaemonTestError("the driver answered \(answer)")
            }
            for (c, python) in zip(chunk, results) {
                let swift = c.evaluate(client)
                if !interopAgree(python, swift) {
                    problems.append("\(c.flag) as \(c.type) for \(JSONValue.object(c.context)): Python \(python), Swift \(swift)")
                }
            }
        }
        return problems
    }

    /// A Swift client following the same environment, ready.
    static func withSwiftClient<T>(redis: String, environment: String, _ body: (FlagpoleClient) async throws -> T) async throws -> T {
        let client = FlagpoleClient(
            configuration: .init(redis: try RedisConfiguration(url: redis), environment: environment, application: "interop-reference"))
        let task = Task { try await client.run() }
        defer { task.cancel() }
        guard await client.waitUntilReady(timeout: .seconds(10)) else { throw DaemonTestError("the reference Swift client did not get ready") }
        return try await body(client)
    }

    /// Cases: every flag the client serves with a typed read, under each context.
    static func cases(_ client: FlagpoleClient, contexts: Int) -> [InteropCase] {
        let document = client.effectiveFlags().document
        var cases: [InteropCase] = []
        for (key, definition) in (document["flags"]?.objectValue ?? [:]).sorted(by: { $0.key < $1.key }) {
            guard let type = InteropCase.type(of: definition) else { continue }
            for context in InteropCase.contexts(count: contexts) { cases.append(InteropCase(flag: key, type: type, context: context)) }
        }
        return cases
    }

    @Test(
        "flags/: every flag agrees with the Swift client for generated contexts; set, disable, a rollout step and its abort reach Python (timed); with the daemon stopped Python serves the last set and catches up"
    )
    func projectFlags() async throws {
        let python = try PythonEnvironment.ensure()
        try await RedisServer.withServer { server in
            let flags = FlagctlProcess.packageRoot.appendingPathComponent("flags").path
            let common = ["--env", "test", "--redis", server.url, "--flags", flags]
            let sync = try FlagctlProcess.run(["sync"] + common)
            #expect(sync.status == 0, "\(sync.stderr)")
            let daemon = try await DaemonProcess.start(common + ["--no-watcher"], environment: ["FLAGPOLE_DAEMON_TOKENS": Self.token])
            let syncPort = try #require(daemon.syncPort, "the daemon printed no flagd sync port:\n\(daemon.stdout)")
            #expect(daemon.stdout.contains("flagd sync (gRPC flagd.sync.v1, in-process providers) on 127.0.0.1:\(syncPort); auth 1 token"))

            // Without the token the provider cannot sync: it never gets ready.
            await #expect {
                _ = try await PythonInProcessDriver(python: python, syncPort: syncPort, token: "wrong-token-0123456789abc")
            } throws: { error in
                "\(error)".contains("did not get ready")
            }

            let driver = try await PythonInProcessDriver(python: python, syncPort: syncPort, token: Self.token)
            defer { driver.stop() }
            try await Self.withSwiftClient(redis: server.url, environment: "test") { client in
                let cases = Self.cases(client, contexts: 60)
                #expect(Set(cases.map(\.flag)).count >= 5, "flags/ should give at least 5 typed flags")
                var problems = try await Self.disagreements(cases, python: driver, swift: client)
                #expect(problems.isEmpty, "\(problems.count) disagreements, first: \(problems.prefix(5))")

                /// Runs flagctl; once the Swift client answers differently for one of `flag`'s cases,
                /// times until Python gives that answer too (from flagctl's start), then checks
                /// every case again.
                func change(_ arguments: [String], flag: String) async throws -> Double {
                    let mine = cases.filter { $0.flag == flag }
                    let before = mine.map { $0.evaluate(client) }
                    let started = Int64(Date().timeIntervalSince1970 * 1e9)
                    let r = try FlagctlProcess.run(arguments + common)
                    #expect(r.status == 0, "\(arguments): \(r.stderr)")
                    var changed: (InteropCase, JSONValue)?
                    try await waitUntil("the Swift client sees \(arguments)") {
                        changed = zip(mine, before).lazy.map { ($0.0, $0.0.evaluate(client), $0.1) }.first { $0.1 != $0.2 }.map { ($0.0, $0.1) }
                        return changed != nil
                    }
                    let (c, now) = try #require(changed)
                    let expect: JSONValue = ["variant": now["variant"] ?? .null, "reason": now["reason"] ?? .null]
                    let seen = try await driver.send(["op": "watch", "case": c.json, "expect": expect, "timeout": 20])
                    #expect(seen["seen"] == true, "Python did not see \(arguments): \(seen)")
                    problems = try await Self.disagreements(cases, python: driver, swift: client)
                    #expect(problems.isEmpty, "after \(arguments): \(problems.count) disagreements, first: \(problems.prefix(3))")
                    return ((seen["at_ns"]?.numberValue ?? 0) - Double(started)) / 1e6
                }
                var timings: [(String, Double)] = []
                timings.append(("set", try await change(["set", "checkout-button-color", "blue"], flag: "checkout-button-color")))
                timings.append(("disable", try await change(["disable", "new-checkout"], flag: "new-checkout")))
                timings.append(("enable", try await change(["enable", "new-checkout"], flag: "new-checkout")))
                let step = ["rollout", "start", "new-checkout", "--to", "on", "--steps", "50,100", "--watch", "1h"]
                timings.append(("rollout step 50%", try await change(step, flag: "new-checkout")))
                timings.append(("rollout abort (revert)", try await change(["rollout", "abort", "new-checkout"], flag: "new-checkout")))
                print(
                    "flagd sync propagation, from flagctl's start to Python serving it (ms, includes flagctl's own start-up): "
                        + timings.map { "\($0.0) \(String(format: "%.1f", $0.1))" }.joined(separator: ", "))
                let color = InteropCase(
                    flag: "checkout-button-color", type: .string,
                    context: ["targetingKey": "u42", "email": "ann@flagpole.dev", "plan": "business", "appVersion": "4.3.0"])

                // The daemon stops: Python keeps serving the last set. A change made meanwhile
                // arrives when a daemon serves again on the same port.
                #expect(try await daemon.stop() == 0)
                problems = try await Self.disagreements(cases, python: driver, swift: client)
                #expect(problems.isEmpty, "with the daemon stopped: \(problems.prefix(3))")
                let r = try FlagctlProcess.run(["set", "checkout-button-color", "green"] + common)
                #expect(r.status == 0, "\(r.stderr)")
                let again = try await DaemonProcess.start(
                    common + ["--no-watcher", "--sync-port", String(syncPort)], environment: ["FLAGPOLE_DAEMON_TOKENS": Self.token])
                let seen = try await driver.send(["op": "watch", "case": color.json, "expect": ["variant": "green"], "timeout": 30])
                #expect(seen["seen"] == true, "Python did not catch up after the daemon came back: \(seen)")
                #expect(try await again.stop() == 0)
            }
        }
    }

    @Test(
        "the conformance flags (flagd-testbed flags-combined/allFlags.json, synced as an environment): every typed flag agrees with the Swift client for generated contexts"
    )
    func conformanceFlags() async throws {
        let python = try PythonEnvironment.ensure()
        let allFlags = EvalCommandTests.testbed.appendingPathComponent("flags-combined/allFlags.json")
        guard FileManager.default.fileExists(atPath: allFlags.path) else {
            throw DaemonTestError("the flagd conformance flags are missing at \(allFlags.path): the tests need ../shared/flagd-testbed")
        }
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("flagpole-conformance-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: root.appendingPathComponent("conformance"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: root) }
        try FileManager.default.copyItem(at: allFlags, to: root.appendingPathComponent("conformance/allFlags.json"))
        try await RedisServer.withServer { server in
            let common = ["--env", "conformance", "--redis", server.url, "--flags", root.path]
            let sync = try FlagctlProcess.run(["sync"] + common)
            #expect(sync.status == 0, "\(sync.stderr)")
            let daemon = try await DaemonProcess.start(common + ["--no-watcher"])
            let syncPort = try #require(daemon.syncPort, "the daemon printed no flagd sync port:\n\(daemon.stdout)")
            let driver = try await PythonInProcessDriver(python: python, syncPort: syncPort, token: nil)
            defer { driver.stop() }
            try await Self.withSwiftClient(redis: server.url, environment: "conformance") { client in
                let cases = Self.cases(client, contexts: 40)
                let flags = Set(cases.map(\.flag))
                #expect(flags.count >= 50, "allFlags.json should give at least 50 typed flags, got \(flags.count)")
                let problems = try await Self.disagreements(cases, python: driver, swift: client)
                #expect(problems.isEmpty, "\(problems.count) of \(cases.count) disagree, first: \(problems.prefix(8).joined(separator: "\n"))")
                print(
                    "flagd sync interop, conformance flags: \(cases.count) typed evaluations of \(flags.count) flags, \(problems.count) disagreements"
                )
            }
            #expect(try await daemon.stop() == 0)
        }
    }
}

@Suite("docs/python.md quotes the in-process example")
struct PythonInProcessDocsTests {
    @Test("docs/python.md's in-process snippet is interop/python/example_inprocess.py verbatim (the file the interop test connects with)")
    func docsQuoteTheExample() throws {
        let root = FlagctlProcess.packageRoot
        let doc = try String(contentsOf: root.appendingPathComponent("docs/python.md"), encoding: .utf8)
        let example = try String(contentsOf: root.appendingPathComponent("interop/python/example_inprocess.py"), encoding: .utf8)
        #expect(doc.contains("```python\n" + example + "```\n"), "docs/python.md's snippet differs from interop/python/example_inprocess.py")
        #expect(doc.contains("## In-process: flagd's provider on the sync port") && doc.contains("## OFREP: one HTTP request per evaluation"))
    }
}
