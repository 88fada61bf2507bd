import FlagpoleCore

/// Reads choices from a fuzzer's bytes, front to back; past the end every read is zero, so any
/// input — even an empty one — decodes to something.
public struct FuzzBytes {
    let bytes: [UInt8]
    var index = 0

    public init(_ bytes: [UInt8]) { self.bytes = bytes }

    /// Whether every byte has been read.
    public var isAtEnd: Bool { index >= bytes.count }

    public mutating func byte() -> UInt8 {
        defer { index += 1 }
        return index < bytes.count ? bytes[index] : 0
    }

    /// A number in 0..<n (n ≥ 1), from one byte (two when n > 256).
    public mutating func int(below n: Int) -> Int {
        if n <= 256 { return Int(byte()) % n }
        return (Int(byte()) << 8 | Int(byte())) % n
    }

    public mutating func pick<T>(_ items: [T]) -> T { items[int(below: items.count)] }

    /// Up to `limit` bytes as text (invalid UTF-8 repaired, as a file read would be).
    public mutating func text(limit: Int) -> String {
        let count = int(below: limit + 1)
        let end = min(bytes.count, index + count)
        let slice = index < end ? Array(bytes[index..<end]) : []
        index += count
        return String(decoding: slice, as: UTF8.self)
    }
}

/// Stops the fuzzer with a message when an invariant does not hold.
func require(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fatalError("fuzz invariant: " + message()) }
}

/// The contexts every loaded or generated flag is evaluated with.
let standardContexts: [EvaluationContext] = [
    .empty,
    EvaluationContext(targetingKey: "user-1", attributes: ["email": "a@example.com", "n": 3, "list": [1, "two", nil, [:]]]),
    EvaluationContext(targetingKey: "", attributes: ["user": ["name": "x", "age": 41], "targetingKey": 7, "version": "1.2.3"]),
]

/// Evaluates every flag of a compiled set as every type and checks what a result promises.
func evaluateEverything(_ set: CompiledFlagSet, contexts: [EvaluationContext]) {
    let types: [FlagValueType?] = [nil] + FlagValueType.allCases.map { $0 }
    for context in contexts {
        for key in set.flagKeys {
            for type in types {
                let r = set.evaluate(key, type: type, context: context)
                if r.reason == .error {
                    require(r.value == nil && r.errorCode != nil, "an error result for \(key) has a value or no code")
                }
                // Pure: the same question gives the same answer.
                let again = set.evaluate(key, type: type, context: context)
                require(again.value == r.value && again.variant == r.variant && again.reason == r.reason,
                    "\(key) evaluated twice gave two answers")
            }
        }
        _ = set.evaluateAll(context: context)
    }
}

/// The flag-file fuzzer: the first byte picks the file's kind, the rest is its text.
public enum FlagFileFuzz {
    /// The file name and text an input stands for.
    public static func decode(_ data: [UInt8]) -> (path: String, text: String) {
        let kind = data.first ?? 0
        let path = ["flags.yaml", "flags.json", "flags.yml", "flags.flagd.json"][Int(kind % 4)]
        return (path, String(decoding: data.dropFirst(), as: UTF8.self))
    }

    /// Loads the file under both fractional algorithms, then compiles and evaluates what loaded.
    public static func run(_ data: [UInt8]) {
        let (path, text) = decode(data)
        for algorithm in FractionalAlgorithm.allCases {
            let load = FlagSetLoader.load(path: path, text: text, options: .init(fractionalAlgorithm: algorithm))
            for d in load.diagnostics {
                _ = d.description  // every diagnostic can be printed
            }
            if !load.hasErrors {
                for key in load.flags.keys { _ = load.guardPolicy(forFlag: key) }
            }
            let set = CompiledFlagSet(load.document, options: .init(fractionalAlgorithm: algorithm, clock: { 1_700_000_000 }))
            evaluateEverything(set, contexts: standardContexts)
        }
    }
}

/// The JsonLogic fuzzer: a rule and a context, from JSON text or built from the bytes.
public enum JsonLogicFuzz {
    /// One case: the targeting rule and the evaluation context (an object; `targetingKey` and
    /// attributes as a client would pass them).
    public struct Case: Sendable, Hashable {
        public var rule: JSONValue
        public var context: JSONValue

        public init(rule: JSONValue, context: JSONValue) {
            self.rule = rule
            self.context = context
        }
    }

    static let operators = Array(JsonLogicOperators.all).sorted() + ["$ref", "bogus", "?:", "log", "cat "]
    static let strings = [
        "", "a", "email", "user.name", "user", "n", "list", "list.1", "list.9", "targetingKey", "$flagd.flagKey",
        "$flagd.timestamp", "1.2.3", "v1.2.3-rc.1+b", "1.2", "=", "^", "~", ">=", "é", "0x10", "1e3", " ", "true",
        "on", "off", "a@example.com", "@example.com", ".", "..", "version", "user.age",
    ]
    static let integers: [Int64] = [0, 1, -1, 2, 3, 7, 50, 100, 101, 255, 2_147_483_648, Int64.max, Int64.min]
    static let doubles: [Double] = [0.5, -0.0, 1e308, -1e-300, 25.0, 3.7, .infinity, -.infinity, .nan, 100.0000001]

    /// Decodes an input. First byte 0: the rest is `RULE` JSON, a NUL byte, then `CONTEXT` JSON
    /// (nil when either is not JSON). Otherwise the bytes steer a generator of rules and contexts.
    public static func decode(_ data: [UInt8]) -> Case? {
        if data.first == 0 {
            let rest = Array(data.dropFirst())
            let split = rest.firstIndex(of: 0) ?? rest.endIndex
            guard let rule = try? JSONParser.parse(bytes: Array(rest[..<split])) else { return nil }
            var context: JSONValue = [:]
            if split < rest.endIndex {
                guard let c = try? JSONParser.parse(bytes: Array(rest[(split + 1)...])) else { return nil }
                context = c
            }
            return Case(rule: rule, context: context)
        }
        var input = FuzzBytes(Array(data.dropFirst()))
        let rule = value(&input, depth: 0, operators: true)
        var attributes: [String: JSONValue] = [:]
        for _ in 0..<input.int(below: 6) {
            attributes[input.pick(strings)] = value(&input, depth: 2, operators: false)
        }
        if input.byte() % 2 == 0 { attributes["targetingKey"] = .string(input.pick(strings)) }
        return Case(rule: rule, context: .object(attributes))
    }

    static func value(_ input: inout FuzzBytes, depth: Int, operators: Bool) -> JSONValue {
        let kinds = depth > 4 || input.isAtEnd ? 7 : (operators ? 12 : 10)
        switch input.int(below: kinds) {
        case 0: return .null
        case 1: return .bool(input.byte() % 2 == 1)
        case 2: return .int(input.pick(integers))
        case 3: return .double(input.pick(doubles))
        case 4, 5: return .string(input.pick(strings))
        case 6: return .string(input.text(limit: 12))
        case 7, 8:
            let count = input.int(below: 5)
            return .array((0..<count).map { _ in value(&input, depth: depth + 1, operators: operators) })
        case 9:
            var o: [String: JSONValue] = [:]
            for _ in 0..<input.int(below: 3) { o[input.pick(strings)] = value(&input, depth: depth + 1, operators: operators) }
            return .object(o)
        default:
            let op = input.pick(Self.operators)
            let count = input.int(below: 5)
            let args = (0..<count).map { _ in value(&input, depth: depth + 1, operators: operators) }
            return .object([op: count == 1 && input.byte() % 2 == 0 ? args[0] : .array(args)])
        }
    }

    /// Runs an input.
    public static func run(_ data: [UInt8]) {
        guard let c = decode(data) else { return }
        run(c)
    }

    /// Compiles the rule as a flag's targeting and as a shared evaluator, under both fractional
    /// algorithms, and evaluates them with the case's context and the standard ones.
    public static func run(_ c: Case) {
        let document: JSONValue = [
            "$evaluators": ["e": c.rule],
            "flags": [
                "f": [
                    "state": "ENABLED", "variants": ["true": 1, "false": 0, "a": 2, "1": 3, "": 4],
                    "defaultVariant": "a", "targeting": c.rule,
                ],
                "g": ["state": "ENABLED", "variants": ["true": true, "false": false], "defaultVariant": "false",
                      "targeting": ["if": [["$ref": "e"], "true", "false"]]],
                "h": ["state": "ENABLED", "variants": ["x": "x", "y": ["k": 1]], "targeting": c.rule],
            ],
        ]
        let context = EvaluationContext(c.context)
        for algorithm in FractionalAlgorithm.allCases {
            let set = CompiledFlagSet(document, options: .init(fractionalAlgorithm: algorithm, clock: { 1_700_000_000 }))
            evaluateEverything(set, contexts: [context] + standardContexts)
        }
        // The validator reads the same rule (it walks it for warnings).
        _ = FlagSetLoader.load(path: "case.json", text: document.jsonString)
    }
}
