import Testing

@testable import FlagpoleCore

/// A small deterministic generator (SplitMix64) so failures reproduce.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite("robustness")
struct RobustnessTests {
    static let operators = Array(JsonLogicOperators.all).sorted() + ["bogus", "$ref", "?:", "log"]

    static func randomValue(_ rng: inout SplitMix64, depth: Int) -> JSONValue {
        let pick = Int.random(in: 0..<(depth > 3 ? 7 : 11), using: &rng)
        switch pick {
        case 0: return .null
        case 1: return .bool(Bool.random(using: &rng))
        case 2: return .int([0, 1, -1, 2, 100, Int64.max, Int64.min, 2_147_483_648].randomElement(using: &rng)!)
        case 3: return .double([0.5, -0.0, 1e308, -1e-300, 25.0, 3.7].randomElement(using: &rng)!)
        case 4: return .string(["", "a", "1.2.3", "v1", "x.y", "targetingKey", "$flagd.flagKey", "é", "0x10"].randomElement(using: &rng)!)
        case 5: return .string(["email", "user.name", "n", "list", "list.1", ""].randomElement(using: &rng)!)
        case 6: return .object([:])
        case 7, 8:
            let count = Int.random(in: 0...4, using: &rng)
            return .array((0..<count).map { _ in randomValue(&rng, depth: depth + 1) })
        default:
            let op = operators.randomElement(using: &rng)!
            let count = Int.random(in: 0...4, using: &rng)
            let args = (0..<count).map { _ in randomValue(&rng, depth: depth + 1) }
            return .object([op: Bool.random(using: &rng) && count == 1 ? args[0] : .array(args)])
        }
    }

    @Test("random rules never trap, under both fractional algorithms")
    func randomRules() throws {
        var rng = SplitMix64(state: 0xF1A6_901E)
        let contexts: [EvaluationContext] = [
            .empty,
            EvaluationContext(targetingKey: "user-1", attributes: ["email": "a@b.c", "n": 3, "list": [1, "two", nil, [:]]]),
            EvaluationContext(targetingKey: "", attributes: ["user": ["name": "x"], "targetingKey": 7]),
        ]
        var outcomes: [EvaluationReason: Int] = [:]
        for i in 0..<20_000 {
            let rule = Self.randomValue(&rng, depth: 0)
            let document: JSONValue = [
                "$evaluators": ["e": rule],
                "flags": [
                    "f": [
                        "state": "ENABLED", "variants": ["true": 1, "false": 0, "a": 2, "1": 3, "": 4],
                        "defaultVariant": "a", "targeting": rule,
                    ],
                    "g": ["state": "ENABLED", "variants": ["true": 1], "targeting": ["!": ["$ref": "e"]]],
                ],
            ]
            for algorithm in FractionalAlgorithm.allCases {
                let set = CompiledFlagSet(document, options: .init(fractionalAlgorithm: algorithm, clock: { 1 }))
                for context in contexts {
                    let r = set.evaluate("f", context: context)
                    _ = set.evaluate("g", type: .integer, context: context)
                    outcomes[r.reason, default: 0] += 1
                    if r.reason == .error {
                        #expect(r.value == nil && r.errorCode != nil, "rule #\(i): \(rule.jsonString)")
                    }
                }
            }
        }
        // The generator reaches every outcome a targeted flag can have.
        #expect(outcomes[.targetingMatch, default: 0] > 0)
        #expect(outcomes[.defaultValue, default: 0] > 0)
        #expect(outcomes[.error, default: 0] > 0)
        #expect(outcomes[.staticValue, default: 0] > 0)
    }

    @Test("garbage flag documents compile to something that evaluates")
    func garbageDocuments() {
        var rng = SplitMix64(state: 42)
        for _ in 0..<2_000 {
            let flags = Self.randomValue(&rng, depth: 1)
            let doc: JSONValue = ["flags": ["f": flags, "g": ["state": "ENABLED", "variants": flags, "defaultVariant": flags]], "metadata": flags]
            let set = CompiledFlagSet(doc)
            for key in ["f", "g", "h"] {
                _ = set.evaluate(key, type: .boolean, context: .empty)
            }
            _ = CompiledFlagSet(flags).evaluateAll()
        }
    }

    @Test("rules nested too deeply are a PARSE_ERROR, not a stack overflow")
    func deepRules() {
        var rule: JSONValue = ["var": "x"]
        for _ in 0..<1_000 { rule = ["!": rule] }
        let set = CompiledFlagSet(["flags": ["f": ["state": "ENABLED", "variants": ["true": 1], "targeting": rule]]])
        #expect(set.evaluate("f").errorCode == .parseError)
    }

    @Test("deeply nested constant arrays are a PARSE_ERROR too")
    func deepArrays() {
        var rule: JSONValue = [1]
        for _ in 0..<1_000 { rule = [rule] }
        let set = CompiledFlagSet(["flags": ["f": ["state": "ENABLED", "variants": ["true": 1], "targeting": ["in": [1, rule]]]]])
        #expect(set.evaluate("f").errorCode == .parseError)
    }

    @Test("evaluator references that explode in size are refused")
    func referenceBomb() {
        var evaluators: [String: JSONValue] = ["e0": ["var": "x"]]
        for i in 1...40 {
            evaluators["e\(i)"] = ["and": [["$ref": .string("e\(i - 1)")], ["$ref": .string("e\(i - 1)")]]]
        }
        let set = CompiledFlagSet([
            "$evaluators": .object(evaluators),
            "flags": ["f": ["state": "ENABLED", "variants": ["true": 1], "targeting": ["$ref": "e40"]]],
        ])
        #expect(set.evaluate("f").errorCode == .parseError)
    }
}
