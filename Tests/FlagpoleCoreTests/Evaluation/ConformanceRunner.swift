import FlagpoleCore

/// Runs Gherkin cases of the flagd testbed against ``CompiledFlagSet``.
///
/// Steps about providers ("a stable flagd provider", the cache option) are no-ops for an
/// evaluator; the `selector` option picks the flag file, as flagd's selector picks a flag source.
struct ConformanceRunner {
    struct StepFailure: Error, CustomStringConvertible {
        var line: Int
        var message: String
        var description: String { "line \(line): \(message)" }
    }

    let testbed: Testbed
    /// The flag file cases use unless a `selector` option names another (testbed-relative).
    let defaultFlags: String
    let algorithm: FractionalAlgorithm
    /// `$flagd.timestamp` for every evaluation.
    let now: Int64

    private var cache: [String: CompiledFlagSet] = [:]

    init(testbed: Testbed, defaultFlags: String, algorithm: FractionalAlgorithm, now: Int64 = 1_767_225_600) {
        self.testbed = testbed
        self.defaultFlags = defaultFlags
        self.algorithm = algorithm
        self.now = now
    }

    private mutating func flagSet(_ file: String) throws -> CompiledFlagSet {
        if let s = cache[file] { return s }
        let now = self.now
        let set = CompiledFlagSet(
            try testbed.json(file), options: .init(fractionalAlgorithm: algorithm, clock: { now }))
        cache[file] = set
        return set
    }

    /// Maps a flagd selector (a flag source path inside the testbed's Docker image) to a file here.
    private func flagFile(forSelector selector: String) -> String {
        if selector == "flags/allFlags.json" { return "flags-combined/allFlags.json" }
        if selector.hasPrefix("rawflags/") { return "flags/" + selector.dropFirst("rawflags/".count) }
        return selector
    }

    private struct State {
        var flagFile: String
        var type = ""
        var key = ""
        var fallback = ""
        var context = EvaluationContext()
        var value: JSONValue?
        var variant: String?
        var reason: EvaluationReason?
        var errorCode: EvaluationErrorCode?
        var metadata: [String: JSONValue] = [:]
        var evaluated = false
    }

    /// Runs one case; throws the first failed step.
    mutating func run(_ c: Gherkin.Case) throws {
        var state = State(flagFile: defaultFlags)
        for step in c.steps {
            try perform(step, &state)
        }
    }

    private mutating func perform(_ step: Gherkin.Step, _ s: inout State) throws {
        let t = step.text
        func fail(_ message: String) -> StepFailure { StepFailure(line: step.line, message: message) }

        if t == "an evaluator" || t == "a stable flagd provider" || t == "a metadata flagd provider" { return }
        if let m = t.wholeMatch(of: /an option "(.*)" of type "(.*)" with value "(.*)"/) {
            if m.1 == "selector" { s.flagFile = flagFile(forSelector: String(m.3)) }
            return
        }
        if let m = t.wholeMatch(of: /a (\w+)-flag with key "(.*)" and a (?:fallback|default) value "(.*)"/) {
            s.type = String(m.1)
            s.key = String(m.2)
            s.fallback = String(m.3)
            return
        }
        if let m = t.wholeMatch(of: /a context containing a key "(.*)", with type "(\w+)" and with value "(.*)"/) {
            s.context.attributes[String(m.1)] = try typed(String(m.3), as: String(m.2), step)
            return
        }
        if let m = t.wholeMatch(of: /a context containing a targeting key with value "(.*)"/) {
            s.context.targetingKey = String(m.1)
            return
        }
        if let m = t.wholeMatch(of: /a context containing a nested property with outer key "(.*)" and inner key "(.*)", with value "(.*)"/) {
            var outer = s.context.attributes[String(m.1)]?.objectValue ?? [:]
            outer[String(m.2)] = .string(String(m.3))
            s.context.attributes[String(m.1)] = .object(outer)
            return
        }
        if t == "the flag was evaluated with details" {
            try evaluate(&s, step)
            return
        }
        guard s.evaluated else { throw fail("assertion before the flag was evaluated: \(t)") }
        if let m = t.wholeMatch(of: /the resolved details value should be "(.*)"/) {
            let expected = try typed(String(m.1), as: s.type, step)
            guard s.value.map({ sameValue($0, expected) }) == true else {
                throw fail(
                    "value: expected \(expected.jsonString), got \(s.value?.jsonString ?? "nil") (reason \(s.reason?.rawValue ?? "-"), error \(s.errorCode?.rawValue ?? "-"))"
                )
            }
            return
        }
        if let m = t.wholeMatch(of: /the reason should be "(.*)"/) {
            guard s.reason?.rawValue == String(m.1) else {
                throw fail("reason: expected \(m.1), got \(s.reason?.rawValue ?? "nil") (error \(s.errorCode?.rawValue ?? "-"))")
            }
            return
        }
        if let m = t.wholeMatch(of: /the error-code should be "(.*)"/) {
            let expected = String(m.1)
            guard (s.errorCode?.rawValue ?? "") == expected else {
                throw fail("error code: expected \"\(expected)\", got \"\(s.errorCode?.rawValue ?? "")\"")
            }
            return
        }
        if let m = t.wholeMatch(of: /the variant should be "(.*)"/) {
            guard s.variant == String(m.1) else { throw fail("variant: expected \(m.1), got \(s.variant ?? "nil")") }
            return
        }
        if t == "the resolved metadata is empty" {
            guard s.metadata.isEmpty else { throw fail("metadata: expected none, got \(JSONValue.object(s.metadata).jsonString)") }
            return
        }
        if t == "the resolved metadata should contain" {
            guard let header = step.table.first, header == ["key", "metadata_type", "value"] else {
                throw fail("metadata table must have columns key, metadata_type, value")
            }
            for row in step.table.dropFirst() {
                let expected = try typed(row[2], as: row[1], step)
                guard let actual = s.metadata[row[0]], sameValue(actual, expected), actual.isSameKind(as: expected) else {
                    throw fail("metadata \(row[0]): expected \(row[1]) \(row[2]), got \(s.metadata[row[0]]?.jsonString ?? "nothing")")
                }
            }
            return
        }
        throw fail("no step definition for: \(t)")
    }

    private mutating func evaluate(_ s: inout State, _ step: Gherkin.Step) throws {
        let set = try flagSet(s.flagFile)
        func record<V>(_ d: EvaluationDetails<V>, _ wrap: (V) -> JSONValue) {
            s.value = wrap(d.value)
            s.variant = d.variant
            s.reason = d.reason
            s.errorCode = d.errorCode
            s.metadata = d.metadata
        }
        let fallback = try typed(s.fallback, as: s.type, step)
        switch (s.type, fallback) {
        case ("Boolean", .bool(let b)): record(set.bool(s.key, default: b, context: s.context)) { .bool($0) }
        case ("String", .string(let v)): record(set.string(s.key, default: v, context: s.context)) { .string($0) }
        case ("Integer", .int(let v)): record(set.integer(s.key, default: v, context: s.context)) { .int($0) }
        case ("Float", .double(let v)): record(set.double(s.key, default: v, context: s.context)) { .double($0) }
        case ("Object", let v): record(set.object(s.key, default: v, context: s.context)) { $0 }
        default: throw StepFailure(line: step.line, message: "unsupported flag type \(s.type)")
        }
        s.evaluated = true
    }

    /// A step value converted to its Gherkin type (String, Integer, Float, Boolean, Object).
    private func typed(_ raw: String, as type: String, _ step: Gherkin.Step) throws -> JSONValue {
        func fail() -> StepFailure { StepFailure(line: step.line, message: "\"\(raw)\" is not a valid \(type)") }
        switch type {
        case "String": return .string(raw)
        case "Integer":
            guard let i = Int64(raw) else { throw fail() }
            return .int(i)
        case "Float":
            guard let d = Double(raw) else { throw fail() }
            return .double(d)
        case "Boolean":
            switch raw {
            case "true": return .bool(true)
            case "false": return .bool(false)
            default: throw fail()
            }
        case "Object":
            // Object cells escape their quotes (`{\"a\": 1}`) in some suites and not in others.
            if let v = try? JSONParser.parse(raw) { return v }
            guard let v = try? JSONParser.parse(raw.replacingAll("\\\"", with: "\"")) else { throw fail() }
            return v
        default:
            throw StepFailure(line: step.line, message: "unknown value type \(type)")
        }
    }

    /// Equality for expected values: numbers by value, everything else structurally.
    private func sameValue(_ a: JSONValue, _ b: JSONValue) -> Bool {
        switch (a, b) {
        case (.int, .double), (.double, .int), (.double, .double): return a.numberValue == b.numberValue
        default: return a == b
        }
    }
}

extension JSONValue {
    /// Integer and float metadata must keep their kinds.
    fileprivate func isSameKind(as other: JSONValue) -> Bool {
        switch (self, other) {
        case (.int, .int), (.double, .double), (.string, .string), (.bool, .bool): return true
        default: return false
        }
    }
}
