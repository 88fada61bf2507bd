/// A JsonLogic rule compiled once into a flat program: an array of instructions with trivial
/// payloads (indexes into pools of constants, argument lists, `var` paths and custom-operator
/// tables). Evaluating walks the array, so following a child costs an index, not a retain, and
/// never parses JSON.
///
/// Built by ``init(compiling:flagKey:algorithm:)``; evaluated by the methods in
/// `RuleProgram+Evaluation.swift`.
final class RuleProgram: Sendable {
    /// A run of argument nodes in ``arguments``.
    struct Arguments: Sendable {
        var start: Int32
        var count: Int32

        static let none = Arguments(start: 0, count: 0)

        @inline(__always) var isEmpty: Bool { count == 0 }
    }

    /// One instruction. Every payload is trivial, so reading an instruction copies a few words.
    enum Node: Sendable {
        /// A constant (also objects that are data, not operators: zero or several keys).
        case literal(constant: Int32)
        /// A constant in result position that names a variant of the flag being compiled; evaluates
        /// like `literal`, but lets the flag skip the name lookup.
        case variant(constant: Int32, index: Int32)
        /// An array literal with rules inside, evaluated element by element.
        case array(Arguments)
        /// `var` with a constant path. `fallback` is a node, or -1; `rest` are extra arguments.
        case variable(path: Int32, fallback: Int32, rest: Arguments)
        /// `var` with a computed path (argument 0), fallback (argument 1), extra arguments.
        case dynamicVariable(Arguments)
        case missing(Arguments)
        case missingSome(Arguments)
        /// `if`: condition, result pairs, then an optional else.
        case condition(Arguments)
        case equality(EqualityOperator, Arguments)
        case comparison(ComparisonOperator, Arguments)
        /// `!` (negated) and `!!`.
        case truthiness(negated: Bool, Arguments)
        case and(Arguments)
        case or(Arguments)
        case arithmetic(ArithmeticOperator, Arguments)
        case cat(Arguments)
        case substr(Arguments)
        case contains(Arguments)
        case merge(Arguments)
        /// `map`, `filter`, `all`, `none`, `some`: argument 0 is evaluated in the current scope,
        /// argument 1 once per element with that element as the data.
        case iteration(IterationOperator, Arguments)
        case reduce(Arguments)
        case stringAffix(suffix: Bool, Arguments)
        /// `starts_with` / `ends_with` whose affix (argument 1) is a constant string: `operand` is
        /// a node, `affix` an index into ``strings``.
        case constantAffix(suffix: Bool, operand: Int32, affix: Int32)
        /// `in` over a constant array of strings (argument 1): `needle` is a node, `set` an index
        /// into ``stringSets``.
        case inStrings(needle: Int32, set: Int32)
        case semVer(Int32)
        case fractional(Int32)
        /// An operator outside the dialect (or a `$ref` that named no evaluator): evaluating it is an
        /// error, which makes the flag resolve to PARSE_ERROR. The payload is the name's constant.
        case unknownOperator(name: Int32)
    }

    enum EqualityOperator: Sendable {
        case equal, notEqual, strictEqual, strictNotEqual
    }

    enum ComparisonOperator: Sendable {
        case less, lessOrEqual, greater, greaterOrEqual
    }

    enum ArithmeticOperator: Sendable {
        case add, subtract, multiply, divide, modulo, min, max
    }

    enum IterationOperator: Sendable {
        case map, filter, all, none, some
    }

    /// The flag the rule belongs to (`$flagd.flagKey`).
    let flagKey: String
    let nodes: [Node]
    /// Argument lists: node indexes, referenced by ``Arguments``.
    let arguments: [Int32]
    let constants: [JSONValue]
    let paths: [VariablePath]
    let semVers: [SemVerRule]
    let fractionals: [FractionalRule]
    /// Constant strings of ``Node/constantAffix``.
    let strings: [String]
    /// Constant string arrays of ``Node/inStrings``.
    let stringSets: [StringSet]
    /// The node the rule starts at.
    let root: Int32
    /// Whether evaluating can read `$flagd.timestamp`, so the clock is read only for rules that need it.
    let readsTimestamp: Bool

    init(
        flagKey: String, nodes: [Node], arguments: [Int32], constants: [JSONValue], paths: [VariablePath],
        semVers: [SemVerRule], fractionals: [FractionalRule], strings: [String], stringSets: [StringSet], root: Int32,
        readsTimestamp: Bool
    ) {
        self.strings = strings
        self.stringSets = stringSets
        self.flagKey = flagKey
        self.nodes = nodes
        self.arguments = arguments
        self.constants = constants
        self.paths = paths
        self.semVers = semVers
        self.fractionals = fractionals
        self.root = root
        self.readsTimestamp = readsTimestamp
    }

    /// The node index of argument `i` of a list.
    @inline(__always)
    func argument(_ list: Arguments, _ i: Int) -> Int {
        Int(arguments[Int(list.start) + i])
    }
}

/// A `var` path split at dots once, with the flagd-injected roots recognised up front.
struct VariablePath: Sendable {
    /// How the first component resolves against the evaluation context.
    enum Head: Sendable {
        /// `""` or `null`: the whole data.
        case whole
        /// `targetingKey`: the OpenFeature targeting key, else a `targetingKey` attribute.
        case targetingKey
        /// `$flagd.flagKey`.
        case flagKey
        /// `$flagd.timestamp`.
        case timestamp
        /// `$flagd` itself or another member of it.
        case flagd
        /// A user attribute.
        case attribute(String)
    }

    /// One component: an object key, and its value as an array index when it is a canonical one.
    struct Component: Sendable {
        var key: String
        var index: Int?

        init(key: String) {
            self.key = key
            if let i = Int(key), i >= 0, String(i) == key { index = i }
        }
    }

    let head: Head
    /// Every component, for data scopes other than the root (inside `map`, `filter`, …).
    let components: [Component]
    /// How many leading components ``head`` stands for at the root.
    let headCount: Int

    /// Splits a path at dots, the way json-logic-js does (`String(key).split(".")`).
    init(_ text: String) {
        if text.isEmpty {
            head = .whole
            components = []
            headCount = 0
            return
        }
        let parts = text.split(separator: ".", omittingEmptySubsequences: false).map { Component(key: String($0)) }
        components = parts
        switch parts[0].key {
        case "targetingKey":
            head = .targetingKey
            headCount = 1
        case "$flagd":
            if parts.count >= 2 && parts[1].key == "flagKey" {
                head = .flagKey
                headCount = 2
            } else if parts.count >= 2 && parts[1].key == "timestamp" {
                head = .timestamp
                headCount = 2
            } else {
                head = .flagd
                headCount = 1
            }
        default:
            head = .attribute(parts[0].key)
            headCount = 1
        }
    }

    var readsTimestamp: Bool {
        switch head {
        case .whole, .timestamp, .flagd: return true
        default: return false
        }
    }

    /// Walks `components[from...]` down from `value`; nil when a step is missing ("undefined").
    @inline(__always)
    func walk(_ value: JSONValue, from start: Int) -> JSONValue? {
        var current = value
        var i = start
        while i < components.count {
            switch current {
            case .object(let o):
                guard let next = o[components[i].key] else { return nil }
                current = next
            case .array(let a):
                if let index = components[i].index {
                    guard index < a.count else { return nil }
                    current = a[index]
                } else if components[i].key == "length" {
                    current = .int(Int64(a.count))
                } else {
                    return nil
                }
            case .string(let s) where components[i].key == "length":
                current = .int(Int64(s.utf16.count))
            default:
                return nil
            }
            i += 1
        }
        return current
    }
}

/// `sem_ver`, with whatever could be decided at compile time already decided. A class, so the
/// evaluator compares against the constant versions in place.
final class SemVerRule: Sendable {
    /// The compiled arguments (all evaluated whenever the rule runs, as JsonLogic does).
    let arguments: RuleProgram.Arguments
    /// Whether each argument is a constant.
    let leftIsConstant: Bool
    let comparisonIsConstant: Bool
    let rightIsConstant: Bool
    /// Whether the constants are a valid version or operator; an invalid one makes the operator
    /// give null.
    let constantsAreValid: Bool
    /// The constant versions (``SemanticVersion/zero`` where not constant).
    let left: SemanticVersion
    let right: SemanticVersion
    /// The constant operator.
    let comparison: SemVerOperator

    init(arguments: RuleProgram.Arguments, constants: [JSONValue?]) {
        self.arguments = arguments
        guard constants.count == 3 else {
            leftIsConstant = true
            comparisonIsConstant = true
            rightIsConstant = true
            constantsAreValid = false
            left = .zero
            right = .zero
            comparison = .equal
            return
        }
        var valid = true
        func version(_ v: JSONValue?) -> SemanticVersion {
            guard let v else { return .zero }
            guard let parsed = SemanticVersion(semVerOperand: v) else {
                valid = false
                return .zero
            }
            return parsed
        }
        leftIsConstant = constants[0] != nil
        comparisonIsConstant = constants[1] != nil
        rightIsConstant = constants[2] != nil
        left = version(constants[0])
        right = version(constants[2])
        switch constants[1] {
        case nil:
            comparison = .equal
        case .string(let s)?:
            if let op = SemVerOperator(rawValue: s) {
                comparison = op
            } else {
                comparison = .equal
                valid = false
            }
        default:
            comparison = .equal
            valid = false
        }
        constantsAreValid = valid
    }
}

/// A rule that cannot be compiled or evaluated; the flag resolves to PARSE_ERROR.
struct RuleError: Error, Sendable, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// The strings of a constant array that `in` searches, with their in-memory representations so
/// that most comparisons are two integer compares.
struct StringSet: Sendable {
    let strings: [String]
    let bits: [StringBits]

    init(_ strings: [String]) {
        self.strings = strings
        self.bits = strings.map(StringBits.init)
    }

    /// Whether `s` is one of the strings, byte for byte (JavaScript `===` on strings).
    @inline(__always)
    func contains(_ s: String) -> Bool {
        let b = StringBits(s)
        for i in 0..<strings.count where bits[i] == b || JSONValue.utf8Equal(strings[i], s) { return true }
        return false
    }
}
