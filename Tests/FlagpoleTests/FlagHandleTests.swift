import Flagpole
import FlagpoleCore
import FlagpoleTestKit
import FlagpoleTesting
import Foundation
import Synchronization
import Testing

@Suite("Flag handles: the key's answers without the lookup, across updates, with hooks, from many threads")
struct FlagHandleTests {
    /// The example's flag file, and more flags of other types.
    static let flagFile =
        ExampleWithTestKitTests.flagFile + "\n"
            + """
              split:
                state: ENABLED
                variants: {"a": "A", "b": "B"}
                defaultVariant: "a"
                targeting: {fractional: [["a", 50], ["b", 50]]}
              banner: {state: ENABLED, variants: {"short": "Hi"}, defaultVariant: "short"}
              limit: {state: ENABLED, variants: {"low": 10}, defaultVariant: "low"}
              ratio: {state: ENABLED, variants: {"a": 0.25, "whole": 3}, defaultVariant: "a"}
              theme: {state: ENABLED, variants: {"dark": {"bg": "#000"}}, defaultVariant: "dark"}
              off-flag: {state: DISABLED, variants: {"on": true}, defaultVariant: "on"}
            """

    static let contexts = [
        EvaluationContext.empty, EvaluationContext(targetingKey: "bob@flagpole.dev"), EvaluationContext(targetingKey: "ann@example.com"),
        EvaluationContext(targetingKey: "user-1"), EvaluationContext(targetingKey: "user-2"), EvaluationContext(targetingKey: "user-3"),
    ]

    @Test("each typed handle gives exactly the key's value and details: static, targeting, split, disabled, missing, type mismatch")
    func sameAsKey() throws {
        let flags = try InMemoryFlags(yaml: Self.flagFile)
        let client = flags.client
        for context in Self.contexts {
            for key in ["new-checkout", "off-flag", "banner", "missing"] {
                let h = client.flag(key, default: false)
                #expect(h.key == key && h.defaultValue == false)
                #expect(h.value(for: context) == client.bool(key, default: false, context: context))
                #expect(h.details(for: context) == client.boolDetails(key, default: false, context: context), "\(key)")
            }
            for key in ["split", "banner", "limit", "missing"] {
                let h = client.flag(key, default: "dflt")
                #expect(h.value(for: context) == client.string(key, default: "dflt", context: context))
                #expect(h.details(for: context) == client.stringDetails(key, default: "dflt", context: context), "\(key)")
            }
            for key in ["limit", "ratio", "banner", "missing"] {
                let h = client.flag(key, default: 7)
                #expect(h.value(for: context) == client.integer(key, default: 7, context: context))
                #expect(h.details(for: context) == client.integerDetails(key, default: 7, context: context), "\(key)")
            }
            for key in ["ratio", "limit", "banner", "missing"] {
                let h = client.flag(key, default: 1.5)
                #expect(h.value(for: context) == client.double(key, default: 1.5, context: context))
                #expect(h.details(for: context) == client.doubleDetails(key, default: 1.5, context: context), "\(key)")
            }
            for key in ["theme", "banner", "missing"] {
                let h = client.flag(key, default: ["x": 1] as JSONValue)
                #expect(h.value(for: context) == client.object(key, default: ["x": 1], context: context))
                #expect(h.details(for: context) == client.objectDetails(key, default: ["x": 1], context: context), "\(key)")
            }
        }
        // The answers themselves, so that agreement is not agreement on something wrong.
        let checkout = flags.flag("new-checkout", default: false)
        #expect(checkout.value(for: EvaluationContext(targetingKey: "bob@flagpole.dev")) == true)
        #expect(checkout.details(for: EvaluationContext(targetingKey: "bob@flagpole.dev")).reason == .targetingMatch)
        #expect(checkout.details(for: .empty).variant == "off")
        #expect(flags.flag("limit", default: 0).value(for: .empty) == 10)
        #expect(flags.flag("ratio", default: 0.0).value(for: .empty) == 0.25)
        #expect(flags.flag("theme", default: JSONValue.null).value(for: .empty) == ["bg": "#000"])
        let mismatch = flags.flag("banner", default: 3).details(for: .empty)
        #expect(mismatch.value == 3 && mismatch.reason == .error && mismatch.errorCode == .typeMismatch)
        let missing = flags.flag("missing", default: true).details(for: .empty)
        #expect(missing.value == true && missing.reason == .error && missing.errorCode == .flagNotFound && missing.flagKey == "missing")
        let splits = Set((0..<200).map { flags.flag("split", default: "").value(for: EvaluationContext(targetingKey: "u\($0)")) })
        #expect(splits == ["A", "B"])
    }

    @Test("a flag removed while a handle is held gives the default with FLAG_NOT_FOUND; added back, it is found again, with its new value")
    func removedAndReAdded() throws {
        let flags = try InMemoryFlags(yaml: Self.flagFile)
        let banner = flags.flag("banner", default: "none")
        let limit = flags.flag("limit", default: -1)
        #expect(banner.value(for: .empty) == "Hi")
        try flags.remove("banner")
        let gone = banner.details(for: .empty)
        #expect(gone.value == "none" && gone.reason == .error && gone.errorCode == .flagNotFound && gone.variant == nil)
        #expect(banner.value(for: .empty) == "none")
        // The other flags moved in the table; their handles still find them.
        #expect(limit.value(for: .empty) == 10)
        try flags.update(["banner": ["state": "ENABLED", "variants": ["long": "Hello there"], "defaultVariant": "long"]])
        let back = banner.details(for: .empty)
        #expect(back.value == "Hello there" && back.variant == "long" && back.reason == .staticValue && back.errorCode == nil)
        #expect(limit.value(for: .empty) == 10)
        try flags.set("banner", variant: "long")
        #expect(banner.value(for: .empty) == "Hello there")
        try flags.disable("banner")
        #expect(banner.details(for: .empty).reason == .disabled && banner.value(for: .empty) == "none")
    }

    @Test("a handle made before its flag exists is found once the flag is added")
    func addedLater() throws {
        let flags = try InMemoryFlags(yaml: Self.flagFile)
        let later = flags.flag("later", default: 1)
        #expect(later.details(for: .empty).errorCode == .flagNotFound)
        #expect(later.value(for: .empty) == 1)
        try flags.update(["later": ["state": "ENABLED", "variants": ["v": 42], "defaultVariant": "v"]])
        #expect(later.value(for: .empty) == 42)
        #expect(later.details(for: .empty).reason == .staticValue)
    }

    @Test("hooks run for handle evaluations (value and details) exactly as for the key's")
    func hooks() throws {
        let flags = try InMemoryFlags(yaml: Self.flagFile)
        let recorder = Recorder()
        let checkout = flags.flag("new-checkout", default: false)
        _ = checkout.value(for: .empty)  // before the hook: nothing recorded
        #expect(recorder.stages.isEmpty)
        let registration = flags.addHook(RecordingHook("a", into: recorder))
        let context = EvaluationContext(targetingKey: "bob@flagpole.dev")
        #expect(checkout.value(for: context) == true)
        let viaHandle = recorder.calls.withLock { $0 }
        recorder.reset()
        _ = flags.bool("new-checkout", default: false, context: context)
        let viaKey = recorder.calls.withLock { $0 }
        #expect(viaHandle == viaKey)
        #expect(viaHandle.map(\.stage) == ["before", "after", "finally"])
        recorder.reset()
        #expect(checkout.details(for: context).variant == "on")
        #expect(recorder.calls.withLock { $0 } == viaKey)
        // A before hook's context is the one the handle evaluates with.
        flags.removeHook(registration)
        recorder.reset()
        flags.addHook(RecordingHook("b", into: recorder, replaceContext: EvaluationContext(targetingKey: "eve@flagpole.dev")))
        #expect(checkout.value(for: .empty) == true)
        // A missing flag goes to the error stage with FLAG_NOT_FOUND.
        recorder.reset()
        _ = flags.flag("missing", default: 0).value(for: .empty)
        #expect(recorder.calls.withLock { $0 }.map(\.stage) == ["before", "error", "finally"])
        #expect(recorder.calls.withLock { $0 }[1].errorCode == .flagNotFound)
        flags.removeAllHooks()
        recorder.reset()
        #expect(checkout.value(for: context) == true)
        #expect(recorder.stages.isEmpty)
    }

    /// Forwards to InMemoryFlags without its own handles: the protocol's default handle.
    struct ForwardingEvaluator: FlagEvaluator {
        let inner: InMemoryFlags
        func bool(_ k: String, default d: Bool, context c: EvaluationContext) -> Bool { inner.bool(k, default: d, context: c) }
        func boolDetails(_ k: String, default d: Bool, context c: EvaluationContext) -> EvaluationDetails<Bool> {
            inner.boolDetails(k, default: d, context: c)
        }
        func string(_ k: String, default d: String, context c: EvaluationContext) -> String { inner.string(k, default: d, context: c) }
        func stringDetails(_ k: String, default d: String, context c: EvaluationContext) -> EvaluationDetails<String> {
            inner.stringDetails(k, default: d, context: c)
        }
        func integer(_ k: String, default d: Int, context c: EvaluationContext) -> Int { inner.integer(k, default: d, context: c) }
        func integerDetails(_ k: String, default d: Int, context c: EvaluationContext) -> EvaluationDetails<Int> {
            inner.integerDetails(k, default: d, context: c)
        }
        func double(_ k: String, default d: Double, context c: EvaluationContext) -> Double { inner.double(k, default: d, context: c) }
        func doubleDetails(_ k: String, default d: Double, context c: EvaluationContext) -> EvaluationDetails<Double> {
            inner.doubleDetails(k, default: d, context: c)
        }
        func object(_ k: String, default d: JSONValue, context c: EvaluationContext) -> JSONValue { inner.object(k, default: d, context: c) }
        func objectDetails(_ k: String, default d: JSONValue, context c: EvaluationContext) -> EvaluationDetails<JSONValue> {
            inner.objectDetails(k, default: d, context: c)
        }
        func recordOutcome(flag: String, variant: String?, success: Bool, duration: Duration?) {}
    }

    @Test("the protocol's default handle (any FlagEvaluator) evaluates through the key-based accessors")
    func defaultHandle() throws {
        let flags = try InMemoryFlags(yaml: Self.flagFile)
        func handles(_ evaluator: some FlagEvaluator) -> (FlagHandle<Bool>, FlagHandle<Int>) {
            (evaluator.flag("new-checkout", default: false), evaluator.flag("limit", default: 0))
        }
        let (checkout, limit) = handles(ForwardingEvaluator(inner: flags))
        let context = EvaluationContext(targetingKey: "bob@flagpole.dev")
        #expect(checkout.value(for: context) == true)
        #expect(checkout.details(for: context) == flags.boolDetails("new-checkout", default: false, context: context))
        #expect(limit.value(for: .empty) == 10)
        try flags.remove("limit")
        #expect(limit.details(for: .empty).errorCode == .flagNotFound)
        // Through `some FlagEvaluator`, InMemoryFlags still hands out its client's handles.
        let (direct, _) = handles(flags)
        #expect(direct.value(for: context) == true)
    }

    @Test("threads evaluating handles while flags are removed, re-added and changed every few milliseconds: each answer is its own flag's")
    func concurrentUpdates() async throws {
        // Three flags whose positions shift as others come and go; each value names its flag, so
        // a handle that read another flag's position would be caught.
        func definition(_ key: String, _ generation: Int) -> JSONValue {
            ["state": "ENABLED", "variants": ["v": .string("\(key)#\(generation)")], "defaultVariant": "v"]
        }
        let keys = ["alpha", "beta", "gamma"]
        let flags = try InMemoryFlags(document: ["flags": .object(Dictionary(uniqueKeysWithValues: keys.map { ($0, definition($0, 0)) }))])
        let handles = keys.map { flags.flag($0, default: "default") }
        let done = Atomic<Bool>(false)
        let problems = Mutex<[String]>([])
        let evaluations = Atomic<Int>(0)
        let updates = 300
        // Evaluating threads of their own (not tasks: busy loops would hold the cooperative pool,
        // and the updates below run on it).
        let finished = Atomic<Int>(0)
        for _ in 0..<4 {
            Thread {
                var n = 0
                while !done.load(ordering: .acquiring) {
                    for (key, handle) in zip(keys, handles) {
                        let d = handle.details(for: EvaluationContext(targetingKey: "u\(n)"))
                        let ok =
                            d.errorCode == .flagNotFound
                            ? d.value == "default" && d.variant == nil : d.value.hasPrefix(key + "#") && d.variant == "v" && d.flagKey == key
                        if !ok { problems.withLock { $0.append("\(key): \(d)") } }
                        let v = handle.value(for: .empty)
                        if v != "default" && !v.hasPrefix(key + "#") { problems.withLock { $0.append("\(key): value \(v)") } }
                        n += 2
                    }
                }
                evaluations.add(n, ordering: .relaxed)
                finished.add(1, ordering: .releasing)
            }.start()
        }
        for g in 1...updates {
            let key = keys[g % keys.count]
            if g % 2 == 0 {
                try flags.remove(key)
            } else {
                try flags.update([key: definition(key, g)])
            }
            try await Task.sleep(for: .milliseconds(1))
        }
        done.store(true, ordering: .releasing)
        try await waitUntil("the 4 evaluating threads to stop") { finished.load(ordering: .acquiring) == 4 }
        #expect(problems.withLock { $0 }.isEmpty, "\(problems.withLock { Array($0.prefix(5)) })")
        #expect(evaluations.load(ordering: .relaxed) > 0)
        // After the last update every handle gives the final state.
        try flags.update(Dictionary(uniqueKeysWithValues: keys.map { ($0, definition($0, 999)) }))
        for (key, handle) in zip(keys, handles) { #expect(handle.value(for: .empty) == "\(key)#999") }
    }
}
