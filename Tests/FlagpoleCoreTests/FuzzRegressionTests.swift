import Foundation
import Testing

@testable import FlagpoleCore

/// Every input the fuzzers in `Fuzz/` found (and a few hand-written hard cases), replayed the way
/// the fuzzers run them: no trap, and every result keeps its promises.
///
/// `Tests/FlagpoleCoreTests/Fuzz/flagfile/` holds flag files as the loader reads them (the name's
/// extension picks YAML or JSON); `Fuzz/jsonlogic/` holds `{"rule": …, "context": …}` cases, as
/// `fuzz-decode jsonlogic CRASH` prints them.
@Suite("Fuzz regressions")
struct FuzzRegressionTests {
    /// …/Tests/FlagpoleCoreTests/Fuzz/.
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fuzz")

    /// The files of one corpus folder, sorted by name, with their bytes.
    static func files(_ kind: String) -> [(name: String, bytes: [UInt8])] {
        let dir = folder.appendingPathComponent(kind)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        return names.filter { !$0.hasPrefix(".") }.sorted().compactMap { name in
            FileManager.default.contents(atPath: dir.appendingPathComponent(name).path).map { (name, [UInt8]($0)) }
        }
    }

    static let contexts: [EvaluationContext] = [
        .empty,
        EvaluationContext(targetingKey: "user-1", attributes: ["email": "a@example.com", "n": 3, "list": [1, "two", nil, [:]]]),
        EvaluationContext(targetingKey: "", attributes: ["user": ["name": "x", "age": 41], "targetingKey": 7, "version": "1.2.3"]),
    ]

    /// Evaluates every flag as every type; an error has no value and a code, and twice is the same.
    static func evaluateEverything(_ set: CompiledFlagSet, _ contexts: [EvaluationContext], _ name: String) {
        let types: [FlagValueType?] = [nil] + FlagValueType.allCases.map { $0 }
        for context in contexts {
            for key in set.flagKeys {
                for type in types {
                    let r = set.evaluate(key, type: type, context: context)
                    if r.reason == .error { #expect(r.value == nil && r.errorCode != nil, "\(name): \(key)") }
                    let again = set.evaluate(key, type: type, context: context)
                    #expect(again.value == r.value && again.variant == r.variant && again.reason == r.reason, "\(name): \(key)")
                }
            }
        }
    }

    @Test("the corpus folders are there")
    func corpus() {
        #expect(!Self.files("flagfile").isEmpty)
        #expect(!Self.files("jsonlogic").isEmpty)
    }

    @Test("flag files the fuzzer found load, compile and evaluate without trapping")
    func flagFiles() {
        for (name, bytes) in Self.files("flagfile") {
            let text = String(decoding: bytes, as: UTF8.self)
            for algorithm in FractionalAlgorithm.allCases {
                let load = FlagSetLoader.load(path: name, text: text, options: .init(fractionalAlgorithm: algorithm))
                for d in load.diagnostics { #expect(!d.description.isEmpty, "\(name)") }
                let set = CompiledFlagSet(load.document, options: .init(fractionalAlgorithm: algorithm, clock: { 1_700_000_000 }))
                Self.evaluateEverything(set, Self.contexts, name)
            }
        }
    }

    @Test("JsonLogic cases the fuzzer found compile and evaluate without trapping")
    func jsonLogic() throws {
        for (name, bytes) in Self.files("jsonlogic") {
            let c = try JSONParser.parse(bytes: bytes)
            let rule = try #require(c["rule"], "\(name) has no rule")
            let context = EvaluationContext(c["context"] ?? [:])
            let document: JSONValue = [
                "$evaluators": ["e": rule],
                "flags": [
                    "f": [
                        "state": "ENABLED", "variants": ["true": 1, "false": 0, "a": 2, "1": 3, "": 4],
                        "defaultVariant": "a", "targeting": rule,
                    ],
                    "g": [
                        "state": "ENABLED", "variants": ["true": true, "false": false], "defaultVariant": "false",
                        "targeting": ["if": [["$ref": "e"], "true", "false"]],
                    ],
                    "h": ["state": "ENABLED", "variants": ["x": "x", "y": ["k": 1]], "targeting": rule],
                ],
            ]
            for algorithm in FractionalAlgorithm.allCases {
                let set = CompiledFlagSet(document, options: .init(fractionalAlgorithm: algorithm, clock: { 1_700_000_000 }))
                Self.evaluateEverything(set, [context] + Self.contexts, name)
            }
            _ = FlagSetLoader.load(path: name, text: document.jsonString)
        }
    }
}
