import Testing

@testable import FlagpoleCore

@Suite("fractional properties")
struct FractionalPropertyTests {
    static let keyCount = 100_000

    static func keys() -> [String] {
        (0..<keyCount).map { "user-\($0)@example.com" }
    }

    /// A flag splitting the targeting key over `buckets` (name, weight), in that order.
    static func split(_ buckets: [(String, Int64)], algorithm: FractionalAlgorithm) -> CompiledFlagSet {
        var variants: [String: JSONValue] = ["none": "none"]
        for (name, _) in buckets { variants[name] = .string(name) }
        let fractional: JSONValue = .array(buckets.map { .array([.string($0.0), .int($0.1)]) })
        let doc: JSONValue = [
            "flags": [
                "rollout": [
                    "state": "ENABLED", "variants": .object(variants), "defaultVariant": "none",
                    "targeting": ["fractional": fractional],
                ]
            ]
        ]
        return CompiledFlagSet(doc, options: .init(fractionalAlgorithm: algorithm))
    }

    static func assign(_ set: CompiledFlagSet, _ keys: [String]) -> [String] {
        keys.map { set.string("rollout", default: "?", context: EvaluationContext(targetingKey: $0)).value }
    }

    @Test("every bucket gets its weight within 0.5 percentage points over 100,000 keys", arguments: FractionalAlgorithm.allCases)
    func distribution(algorithm: FractionalAlgorithm) {
        let weights: [(String, Int64)] = [("a", 50), ("b", 25), ("c", 15), ("d", 7), ("e", 2), ("f", 1)]
        let total = Double(weights.reduce(0) { $0 + $1.1 })
        let assigned = Self.assign(Self.split(weights, algorithm: algorithm), Self.keys())
        var counts: [String: Int] = [:]
        for v in assigned { counts[v, default: 0] += 1 }
        #expect(counts["?"] == nil && counts["none"] == nil)
        for (name, weight) in weights {
            let share = Double(counts[name, default: 0]) / Double(Self.keyCount) * 100
            let expected = Double(weight) / total * 100
            #expect(abs(share - expected) <= 0.5, "\(algorithm) bucket \(name): \(share)% for weight \(expected)%")
        }
    }

    @Test("a key always lands in the same bucket", arguments: FractionalAlgorithm.allCases)
    func stability(algorithm: FractionalAlgorithm) {
        let keys = Array(Self.keys().prefix(10_000))
        let weights: [(String, Int64)] = [("control", 50), ("treatment", 50)]
        let first = Self.assign(Self.split(weights, algorithm: algorithm), keys)
        let again = Self.assign(Self.split(weights, algorithm: algorithm), keys)
        #expect(first == again)
        let set = Self.split(weights, algorithm: algorithm)
        #expect(Self.assign(set, keys) == Self.assign(set, keys))
    }

    struct Growth: Sendable, CustomStringConvertible {
        var before: [(String, Int64)]
        var after: [(String, Int64)]
        var description: String { "\(before) → \(after)" }
    }

    static let growths: [Growth] = [
        Growth(before: [("treatment", 5), ("control", 95)], after: [("treatment", 25), ("control", 75)]),
        Growth(before: [("control", 95), ("treatment", 5)], after: [("control", 75), ("treatment", 25)]),
        Growth(
            before: [("treatment", 5), ("control-a", 45), ("control-b", 50)],
            after: [("treatment", 25), ("control-a", 25), ("control-b", 50)]),
        Growth(before: [("treatment", 25), ("control", 75)], after: [("treatment", 100), ("control", 0)]),
    ]

    /// Growing one bucket (taking weight from a neighbour, the total unchanged) only moves keys into it.
    @Test("growing one bucket moves keys only into it", arguments: growths)
    func growth(_ g: Growth) {
        let (before, after) = (g.before, g.after)
        for algorithm in FractionalAlgorithm.allCases {
            let keys = Self.keys()
            let old = Self.assign(Self.split(before, algorithm: algorithm), keys)
            let new = Self.assign(Self.split(after, algorithm: algorithm), keys)
            var moved = 0
            var wrong = 0
            for (o, n) in zip(old, new) where o != n {
                moved += 1
                if n != "treatment" { wrong += 1 }
            }
            let stayed = zip(old, new).allSatisfy { o, n in o != "treatment" || n == "treatment" }
            #expect(stayed, "\(algorithm): a key left the treatment bucket")
            #expect(wrong == 0, "\(algorithm): \(wrong) keys moved between buckets other than treatment")
            let grown = Double(after[after.firstIndex { $0.0 == "treatment" }!].1 - before[before.firstIndex { $0.0 == "treatment" }!].1)
            let share = Double(moved) / Double(keys.count) * 100
            #expect(abs(share - grown) <= 0.5, "\(algorithm): \(share)% of keys moved for a \(grown) point change")
        }
    }
}
