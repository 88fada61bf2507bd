import Flagpole
import FlagpoleCore
import FlagpoleRedis
import FlagpoleTestKit
import FlagpoleTesting
import Foundation
import Synchronization
import Testing

/// What a recording hook saw, one entry per stage call.
struct HookCall: Sendable, Equatable {
    var hook: String
    var stage: String
    var flagKey: String
    var valueType: FlagValueType
    var defaultValue: JSONValue
    var context: EvaluationContext
    var value: JSONValue?
    var variant: String?
    var reason: EvaluationReason?
    var errorCode: EvaluationErrorCode?
    var hookErrorCode: FlagHookError.Code?
}

/// A hook that records every stage into a shared log; optionally replaces the context in
/// `before`, or throws from `before` or `after`.
struct RecordingHook: FlagHook {
    struct Failure: Error, CustomStringConvertible {
        var description: String { "hook failure" }
    }

    let name: String
    let recorder: Recorder
    var replaceContext: EvaluationContext?
    var throwInBefore = false
    var throwInAfter = false

    init(_ name: String, into recorder: Recorder, replaceContext: EvaluationContext? = nil, throwInBefore: Bool = false, throwInAfter: Bool = false) {
        self.name = name
        self.recorder = recorder
        self.replaceContext = replaceContext
        self.throwInBefore = throwInBefore
        self.throwInAfter = throwInAfter
    }

    private func record(_ stage: String, _ e: FlagHookContext, _ details: EvaluationDetails<JSONValue>? = nil, _ error: FlagHookError? = nil) {
        recorder.calls.withLock {
            $0.append(
                HookCall(
                    hook: name, stage: stage, flagKey: e.flagKey, valueType: e.valueType, defaultValue: e.defaultValue, context: e.context,
                    value: details?.value, variant: details?.variant, reason: details?.reason,
                    errorCode: details?.errorCode ?? error?.evaluationErrorCode,
                    hookErrorCode: error?.code))
        }
    }

    func before(_ evaluation: FlagHookContext) throws -> EvaluationContext? {
        record("before", evaluation)
        if throwInBefore { throw Failure() }
        return replaceContext
    }

    func after(_ evaluation: FlagHookContext, details: EvaluationDetails<JSONValue>, duration: Duration) throws {
        record("after", evaluation, details)
        recorder.durations.withLock { $0.append(duration) }
        if throwInAfter { throw Failure() }
    }

    func error(_ evaluation: FlagHookContext, error: FlagHookError) {
        record("error", evaluation, nil, error)
    }

    func finally(_ evaluation: FlagHookContext, details: EvaluationDetails<JSONValue>, duration: Duration) {
        record("finally", evaluation, details)
    }
}

/// Where recording hooks write.
final class Recorder: Sendable {
    let calls = Mutex<[HookCall]>([])
    let durations = Mutex<[Duration]>([])

    /// `hook.stage` for every call so far.
    var stages: [String] { calls.withLock { $0.map { "\($0.hook).\($0.stage)" } } }

    func reset() {
        calls.withLock { $0.removeAll() }
        durations.withLock { $0.removeAll() }
    }
}

/// A hook that counts its `finally` calls and does nothing else.
final class CountingHook: FlagHook {
    let count = Atomic<Int>(0)
    func finally(_ evaluation: FlagHookContext, details: EvaluationDetails<JSONValue>, duration: Duration) {
        count.add(1, ordering: .relaxed)
    }
}

@Suite("Evaluation hooks: order, data, errors, removal, on the client and on InMemoryFlags")
struct FlagHookTests {
    /// The example's flag file, and more flags of other types.
    static let flagFile =
        ExampleWithTestKitTests.flagFile + "\n"
            + """
              banner: {state: ENABLED, variants: {"short": "Hi"}, defaultVariant: "short"}
              limit: {state: ENABLED, variants: {"low": 10}, defaultVariant: "low"}
              ratio: {state: ENABLED, variants: {"a": 0.25}, defaultVariant: "a"}
              theme: {state: ENABLED, variants: {"dark": {"bg": "#000"}}, defaultVariant: "dark"}
            """

    @Test("stages run before in registration order, after and finally in reverse; each sees the key, type, default, context, details")
    func orderAndData() throws {
        let flags = try InMemoryFlags(yaml: Self.flagFile)
        let recorder = Recorder()
        flags.addHook(RecordingHook("a", into: recorder))
        flags.addHook(RecordingHook("b", into: recorder))
        let context = EvaluationContext(targetingKey: "bob@flagpole.dev", attributes: ["plan": "pro"])
        let details = flags.boolDetails("new-checkout", default: false, context: context)
        #expect(details.value == true && details.variant == "on" && details.reason == .targetingMatch)
        #expect(recorder.stages == ["a.before", "b.before", "b.after", "a.after", "b.finally", "a.finally"])
        for call in recorder.calls.withLock({ $0 }) {
            #expect(call.flagKey == "new-checkout" && call.valueType == .boolean && call.defaultValue == false && call.context == context)
            if call.stage == "after" || call.stage == "finally" {
                #expect(call.value == true && call.variant == "on" && call.reason == .targetingMatch && call.errorCode == nil)
            }
        }
        let durations = recorder.durations.withLock { $0 }
        #expect(durations.count == 2 && durations.allSatisfy { $0 >= .zero && $0 < .seconds(1) })
    }

    @Test("every typed accessor runs the hooks with its value type and its value as JSON")
    func everyType() throws {
        let flags = try InMemoryFlags(yaml: Self.flagFile)
        let recorder = Recorder()
        flags.addHook(RecordingHook("a", into: recorder))
        #expect(flags.string("banner", default: "x") == "Hi")
        #expect(flags.integer("limit", default: 1) == 10)
        #expect(flags.double("ratio", default: 1) == 0.25)
        #expect(flags.object("theme", default: [:], context: .empty) == ["bg": "#000"])
        #expect(flags.bool("new-checkout", default: true) == false)
        let finals = recorder.calls.withLock { $0.filter { $0.stage == "finally" } }
        #expect(finals.map(\.valueType) == [.string, .integer, .float, .object, .boolean])
        #expect(finals.map { $0.value ?? .null } == ["Hi", 10, 0.25, ["bg": "#000"], false] as [JSONValue])
        #expect(finals.map(\.defaultValue) == ["x", 1, 1.0, [:], true] as [JSONValue])
    }

    @Test("a before hook's context replaces the caller's: the evaluation and later hooks use it")
    func beforeReplacesContext() throws {
        let flags = try InMemoryFlags(yaml: Self.flagFile)
        let recorder = Recorder()
        let staff = EvaluationContext(targetingKey: "ann@flagpole.dev")
        flags.addHook(RecordingHook("a", into: recorder, replaceContext: staff))
        flags.addHook(RecordingHook("b", into: recorder))
        #expect(flags.bool("new-checkout", default: false, context: EvaluationContext(targetingKey: "ann")) == true)
        let b = recorder.calls.withLock { $0.filter { $0.hook == "b" } }
        #expect(!b.isEmpty && b.allSatisfy { $0.context == staff })
    }

    @Test("an ERROR evaluation goes to the error stage with its code, not to after; finally still runs")
    func evaluationError() throws {
        let flags = try InMemoryFlags(yaml: Self.flagFile)
        let recorder = Recorder()
        flags.addHook(RecordingHook("a", into: recorder))
        flags.addHook(RecordingHook("b", into: recorder))
        #expect(flags.string("nope", default: "fallback") == "fallback")
        #expect(recorder.stages == ["a.before", "b.before", "b.error", "a.error", "b.finally", "a.finally"])
        let errors = recorder.calls.withLock { $0.filter { $0.stage == "error" } }
        #expect(errors.allSatisfy { $0.hookErrorCode == .evaluation && $0.errorCode == .flagNotFound })
        recorder.reset()
        #expect(flags.integer("banner", default: 3) == 3)
        #expect(recorder.calls.withLock { $0.filter { $0.stage == "error" }.map(\.errorCode) } == [.typeMismatch, .typeMismatch])
        #expect(recorder.calls.withLock { $0.last?.value } == 3)
    }

    @Test("a throwing before or after hook never breaks the evaluation: its value is returned, every hook hears the error, one warning is logged")
    func throwingHooks() throws {
        let log = LogCapture()
        let client = FlagpoleClient(configuration: Self.offlineConfiguration(), logger: log.logger)
        let document = try JSONParser.parse(#"{"flags": {"f": {"state": "ENABLED", "variants": {"on": true}, "defaultVariant": "on"}}}"#)
        #expect(client.serve(document: document, algorithm: .v3).isEmpty)
        let recorder = Recorder()
        client.addHook(RecordingHook("a", into: recorder))
        let thrower = client.addHook(RecordingHook("t", into: recorder, throwInBefore: true))
        #expect(client.bool("f", default: false) == true)
        #expect(recorder.stages == ["a.before", "t.before", "t.error", "a.error", "t.after", "a.after", "t.finally", "a.finally"])
        #expect(recorder.calls.withLock { $0.filter { $0.stage == "error" }.allSatisfy { $0.hookErrorCode == .beforeHook } })
        client.removeHook(thrower)

        recorder.reset()
        client.addHook(RecordingHook("t", into: recorder, throwInAfter: true))
        #expect(client.boolDetails("f", default: false).value == true)
        #expect(recorder.stages == ["a.before", "t.before", "t.after", "a.after", "t.error", "a.error", "t.finally", "a.finally"])
        #expect(recorder.calls.withLock { $0.filter { $0.stage == "error" }.allSatisfy { $0.hookErrorCode == .afterHook } })

        #expect(log.warnings().count == 1, "\(log.text)")
        #expect(log.contains("A flag hook threw; the evaluation returned its value"))
        #expect(log.contains("A flag hook threw", level: .debug))
    }

    @Test("a removed hook runs no more; removing twice says false; removeAllHooks empties the list")
    func removal() throws {
        let flags = try InMemoryFlags(yaml: Self.flagFile)
        let a = CountingHook(), b = CountingHook()
        let ra = flags.addHook(a)
        flags.addHook(b)
        _ = flags.bool("new-checkout", default: false)
        #expect(a.count.load(ordering: .relaxed) == 1 && b.count.load(ordering: .relaxed) == 1)
        #expect(flags.removeHook(ra))
        #expect(!flags.removeHook(ra))
        _ = flags.bool("new-checkout", default: false)
        #expect(a.count.load(ordering: .relaxed) == 1 && b.count.load(ordering: .relaxed) == 2)
        flags.removeAllHooks()
        _ = flags.bool("new-checkout", default: false)
        #expect(a.count.load(ordering: .relaxed) == 1 && b.count.load(ordering: .relaxed) == 2)
    }

    @Test("per-call hooks run after the client's, for that call only")
    func perCall() throws {
        let flags = try InMemoryFlags(yaml: Self.flagFile)
        let recorder = Recorder()
        flags.addHook(RecordingHook("client", into: recorder))
        let d = flags.client.stringDetails("banner", default: "", context: .empty, hooks: [RecordingHook("call", into: recorder)])
        #expect(d.value == "Hi")
        #expect(
            recorder.stages == ["client.before", "call.before", "call.after", "client.after", "call.finally", "client.finally"])
        recorder.reset()
        _ = flags.string("banner", default: "")
        #expect(recorder.stages == ["client.before", "client.after", "client.finally"])
    }

    @Test("a hook that changes the flags and evaluates again meanwhile: the outer evaluation finishes on its snapshot, the next sees the change")
    func reentrantHook() throws {
        let flags = try InMemoryFlags(yaml: Self.flagFile)
        final class Seen: Sendable { let values = Mutex<[String]>([]) }
        let inner = Seen()
        struct Reentrant: FlagHook {
            let flags: InMemoryFlags
            let inner: Seen
            func before(_ evaluation: FlagHookContext) throws -> EvaluationContext? {
                let first = inner.values.withLock { seen -> Bool in
                    guard seen.isEmpty else { return false }
                    seen.append("started")
                    return true
                }
                guard first else { return nil }
                try flags.update(["banner": ["state": "ENABLED", "variants": ["long": "Hello"], "defaultVariant": "long"]])
                let seen = flags.client.string("banner", default: "")  // re-enters the client on this thread
                inner.values.withLock { $0.append(seen) }
                return nil
            }
        }
        flags.addHook(Reentrant(flags: flags, inner: inner))
        #expect(flags.string("banner", default: "") == "Hi")
        #expect(inner.values.withLock { $0 } == ["started", "Hello"])
        flags.removeAllHooks()
        #expect(flags.string("banner", default: "") == "Hello")
    }

    @Test("a hook added on one thread runs on a thread that evaluated before (the published list reaches every thread)")
    func publication() async throws {
        let flags = try InMemoryFlags(yaml: Self.flagFile)
        let hook = CountingHook()
        let worker = EvaluatingThread(flags.client)
        #expect(await worker.evaluate() == false)  // the thread caches the snapshot without hooks
        flags.addHook(hook)
        #expect(await worker.evaluate() == false)
        #expect(hook.count.load(ordering: .relaxed) == 1)
        flags.removeAllHooks()
        #expect(await worker.evaluate() == false)
        #expect(hook.count.load(ordering: .relaxed) == 1)
        worker.stop()
    }

    static func offlineConfiguration() -> FlagpoleClient.Configuration {
        var c = FlagpoleClient.Configuration(
            redis: RedisConfiguration(endpoint: .unix(path: "/nonexistent/hooks.sock")), environment: "test", application: "hook-tests")
        c.snapshotPath = nil
        return c
    }
}

/// One long-lived thread that evaluates `new-checkout` on request (its thread slot persists
/// between requests).
final class EvaluatingThread: Sendable {
    private let requests = Mutex<[CheckedContinuation<Bool, Never>?]>([])
    private let bell = DispatchSemaphore(value: 0)

    init(_ client: FlagpoleClient) {
        Thread { [self] in
            while true {
                bell.wait()
                guard let next = requests.withLock({ $0.removeFirst() }) else { return }  // nil: stop
                next.resume(returning: client.bool("new-checkout", default: false))
            }
        }.start()
    }

    func evaluate() async -> Bool {
        await withCheckedContinuation { c in
            requests.withLock { $0.append(c) }
            bell.signal()
        }
    }

    func stop() {
        requests.withLock { $0.append(nil) }
        bell.signal()
    }
}
