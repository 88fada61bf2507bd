/// A JsonLogic rule compiled once into a tree: operators resolved to cases, constant arrays
/// folded, `var` paths split, `sem_ver` literals parsed, fractional tables precomputed.
/// Evaluating it never parses JSON.
indirect enum RuleNode: Sendable {
    /// A constant (also objects that are data, not operators: zero or several keys).
    case literal(JSONValue)
    /// A string or boolean constant in result position that names a variant of the flag being
    /// compiled; evaluates like `.literal(value)`, but lets the flag skip the name lookup.
    case variant(JSONValue, index: Int)
    /// An array literal with rules inside, evaluated element by element.
    case array([RuleNode])
    /// `var` with a constant path.
    case variable(VariablePath, default: RuleNode?, rest: [RuleNode])
    /// `var` with a computed path.
    case dynamicVariable(RuleNode?, default: RuleNode?, rest: [RuleNode])
    case missing([RuleNode])
    case missingSome([RuleNode])
    /// `if`: condition, result pairs, then an optional else.
    case condition([RuleNode])
    case equality(EqualityOperator, [RuleNode])
    case comparison(ComparisonOperator, [RuleNode])
    /// `!` (negated) and `!!`.
    case truthiness(negated: Bool, [RuleNode])
    case and([RuleNode])
    case or([RuleNode])
    case arithmetic(ArithmeticOperator, [RuleNode])
    case cat([RuleNode])
    case substr([RuleNode])
    case contains([RuleNode])
    case merge([RuleNode])
    /// `map`, `filter`, `all`, `none`, `some`: the first argument is evaluated in the current scope,
    /// the second once per element with that element as the data.
    case iteration(IterationOperator, RuleNode?, RuleNode?, rest: [RuleNode])
    case reduce([RuleNode])
    case stringAffix(suffix: Bool, [RuleNode])
    case semVer(SemVerRule)
    case fractional(FractionalRule)
    /// An operator outside the dialect (or a `$ref` that named no evaluator): evaluating it is an
    /// error, which makes the flag resolve to PARSE_ERROR.
    case unknownOperator(String)

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

    /// Whether evaluating this node can read `$flagd.timestamp`, so the clock is read only for
    /// rules that need it.
    var readsTimestamp: Bool {
        switch self {
        case .literal, .variant, .unknownOperator: return false
        case .variable(let path, let d, let rest):
            return path.readsTimestamp || (d?.readsTimestamp ?? false) || rest.contains { $0.readsTimestamp }
        case .dynamicVariable, .missing, .missingSome: return true
        case .array(let a), .condition(let a), .equality(_, let a), .comparison(_, let a),
            .truthiness(_, let a), .and(let a), .or(let a), .arithmetic(_, let a), .cat(let a),
            .substr(let a), .contains(let a), .merge(let a), .reduce(let a), .stringAffix(_, let a):
            return a.contains { $0.readsTimestamp }
        case .iteration(_, let a, let b, let rest):
            return (a?.readsTimestamp ?? false) || (b?.readsTimestamp ?? false) || rest.contains { $0.readsTimestamp }
        case .semVer(let s): return s.arguments.contains { $0.readsTimestamp }
        case .fractional(let f): return f.arguments.contains { $0.readsTimestamp }
        }
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
    }

    let head: Head
    /// Every component, for data scopes other than the root (inside `map`, `filter`, …).
    let components: [Component]
    /// The components after the head, for the root scope.
    let rest: ArraySlice<Component>

    /// Splits a path at dots, the way json-logic-js does (`String(key).split(".")`).
    init(_ text: String) {
        if text.isEmpty {
            head = .whole
            components = []
            rest = []
            return
        }
        let parts = text.split(separator: ".", omittingEmptySubsequences: false).map { part -> Component in
            let key = String(part)
            var index: Int?
            if let i = Int(key), i >= 0, String(i) == key { index = i }
            return Component(key: key, index: index)
        }
        components = parts
        switch parts[0].key {
        case "targetingKey":
            head = .targetingKey
            rest = parts[1...]
        case "$flagd":
            if parts.count >= 2 && parts[1].key == "flagKey" {
                head = .flagKey
                rest = parts[2...]
            } else if parts.count >= 2 && parts[1].key == "timestamp" {
                head = .timestamp
                rest = parts[2...]
            } else {
                head = .flagd
                rest = parts[1...]
            }
        default:
            head = .attribute(parts[0].key)
            rest = parts[1...]
        }
    }

    var readsTimestamp: Bool {
        switch head {
        case .whole, .timestamp, .flagd: return true
        default: return false
        }
    }

    /// Walks `components` down from `value`; nil when a step is missing ("undefined").
    @inline(__always)
    static func walk(_ value: JSONValue, _ components: ArraySlice<Component>) -> JSONValue? {
        var current = value
        for c in components {
            switch current {
            case .object(let o):
                guard let next = o[c.key] else { return nil }
                current = next
            case .array(let a):
                if let i = c.index {
                    guard i < a.count else { return nil }
                    current = a[i]
                } else if c.key == "length" {
                    current = .int(Int64(a.count))
                } else {
                    return nil
                }
            case .string(let s) where c.key == "length":
                current = .int(Int64(s.utf16.count))
            default:
                return nil
            }
        }
        return current
    }
}

/// `sem_ver` with whatever could be decided at compile time already decided.
struct SemVerRule: Sendable {
    /// A version or operator argument: computed at evaluation time, or a constant decided once.
    enum Slot<Constant: Sendable>: Sendable {
        case computed
        case invalid
        case constant(Constant)
    }

    /// The compiled arguments (all evaluated whenever the rule runs, as JsonLogic does).
    let arguments: [RuleNode]
    let left: Slot<SemanticVersion>
    let comparison: Slot<SemVerOperator>
    let right: Slot<SemanticVersion>
}
