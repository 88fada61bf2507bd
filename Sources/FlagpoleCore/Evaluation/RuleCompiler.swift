/// A rule that cannot be compiled or evaluated; the flag resolves to PARSE_ERROR.
struct RuleError: Error, Sendable, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// Compiles JsonLogic rules (after `$ref` substitution) into ``RuleNode`` trees.
///
/// Compiling is lenient the way flagd is: anything JsonLogic would accept at evaluation time
/// compiles, an operator outside the dialect becomes a node that fails only if evaluated, and only
/// a rule nested too deeply is refused.
struct RuleCompiler {
    /// The fractional algorithm baked into `fractional` nodes.
    let algorithm: FractionalAlgorithm
    /// The flag the rule belongs to (for the precomputed shorthand hash prefix).
    let flagKey: String

    /// Rules nested deeper than this are refused rather than risking the stack.
    static let maximumDepth = 200

    func compile(_ rule: JSONValue) throws(RuleError) -> RuleNode {
        try compile(rule, depth: 0)
    }

    private func compile(_ rule: JSONValue, depth: Int) throws(RuleError) -> RuleNode {
        guard depth <= RuleCompiler.maximumDepth else {
            throw RuleError(message: "rule is nested more than \(RuleCompiler.maximumDepth) levels deep")
        }
        switch rule {
        case .array(let elements):
            var nodes: [RuleNode] = []
            nodes.reserveCapacity(elements.count)
            var constant = true
            for e in elements {
                let n = try compile(e, depth: depth + 1)
                if case .literal = n {} else { constant = false }
                nodes.append(n)
            }
            return constant ? .literal(rule) : .array(nodes)
        case .object(let members) where members.count == 1:
            let (op, argument) = members.first!
            return try compileOperator(op, argument, depth: depth)
        default:
            return .literal(rule)
        }
    }

    private func compileOperator(_ op: String, _ argument: JSONValue, depth: Int) throws(RuleError) -> RuleNode {
        guard JsonLogicOperators.all.contains(op) else { return .unknownOperator(op) }
        let raw: [JSONValue]
        if case .array(let a) = argument { raw = a } else { raw = [argument] }
        var args: [RuleNode] = []
        args.reserveCapacity(raw.count)
        for a in raw { args.append(try compile(a, depth: depth + 1)) }
        func at(_ i: Int) -> RuleNode? { i < args.count ? args[i] : nil }
        func after(_ i: Int) -> [RuleNode] { args.count > i ? Array(args[i...]) : [] }
        switch op {
        case "var":
            let rest = after(2)
            switch at(0) {
            case nil, .literal(.null)?:
                return .variable(VariablePath(""), default: at(1), rest: rest)
            case .literal(.string(let s))?:
                return .variable(VariablePath(s), default: at(1), rest: rest)
            case .literal(let v)?:
                return .variable(VariablePath(v.jsString), default: at(1), rest: rest)
            case let node?:
                return .dynamicVariable(node, default: at(1), rest: rest)
            }
        case "missing": return .missing(args)
        case "missing_some": return .missingSome(args)
        case "if": return .condition(args)
        case "==": return .equality(.equal, args)
        case "!=": return .equality(.notEqual, args)
        case "===": return .equality(.strictEqual, args)
        case "!==": return .equality(.strictNotEqual, args)
        case "<": return .comparison(.less, args)
        case "<=": return .comparison(.lessOrEqual, args)
        case ">": return .comparison(.greater, args)
        case ">=": return .comparison(.greaterOrEqual, args)
        case "!": return .truthiness(negated: true, args)
        case "!!": return .truthiness(negated: false, args)
        case "and": return .and(args)
        case "or": return .or(args)
        case "+": return .arithmetic(.add, args)
        case "-": return .arithmetic(.subtract, args)
        case "*": return .arithmetic(.multiply, args)
        case "/": return .arithmetic(.divide, args)
        case "%": return .arithmetic(.modulo, args)
        case "min": return .arithmetic(.min, args)
        case "max": return .arithmetic(.max, args)
        case "cat": return .cat(args)
        case "substr": return .substr(args)
        case "in": return .contains(args)
        case "merge": return .merge(args)
        case "map": return .iteration(.map, at(0), at(1), rest: after(2))
        case "filter": return .iteration(.filter, at(0), at(1), rest: after(2))
        case "all": return .iteration(.all, at(0), at(1), rest: after(2))
        case "none": return .iteration(.none, at(0), at(1), rest: after(2))
        case "some": return .iteration(.some, at(0), at(1), rest: after(2))
        case "reduce": return .reduce(args)
        case "starts_with": return .stringAffix(suffix: false, args)
        case "ends_with": return .stringAffix(suffix: true, args)
        case "sem_ver": return .semVer(compileSemVer(args))
        case "fractional": return .fractional(FractionalRule(algorithm: algorithm, arguments: args, flagKey: flagKey))
        default: return .unknownOperator(op)
        }
    }

    private func compileSemVer(_ args: [RuleNode]) -> SemVerRule {
        func version(_ node: RuleNode) -> SemVerRule.Slot<SemanticVersion> {
            guard case .literal(let v) = node else { return .computed }
            guard let parsed = SemanticVersion(semVerOperand: v) else { return .invalid }
            return .constant(parsed)
        }
        guard args.count == 3 else {
            return SemVerRule(arguments: args, left: .invalid, comparison: .invalid, right: .invalid)
        }
        let comparison: SemVerRule.Slot<SemVerOperator>
        if case .literal(let v) = args[1] {
            if case .string(let s) = v, let op = SemVerOperator(rawValue: s) {
                comparison = .constant(op)
            } else {
                comparison = .invalid
            }
        } else {
            comparison = .computed
        }
        return SemVerRule(arguments: args, left: version(args[0]), comparison: comparison, right: version(args[2]))
    }
}

extension SemanticVersion {
    /// Reads a `sem_ver` operand: a string, or a number in its JavaScript form (`1` → "1",
    /// `1.2` → "1.2"); anything else is not a version.
    init?(semVerOperand value: JSONValue) {
        switch value {
        case .string(let s): self.init(s)
        case .int(let i): self.init(String(i))
        case .double(let d): self.init(JSONValue.jsString(d))
        default: return nil
        }
    }
}

/// `$evaluators` substitution (NOTES.md §3.1), done on the structure: every object whose only
/// member is `"$ref": "<name>"` is replaced by that evaluator, whatever the whitespace was in the
/// file. Evaluators may use other evaluators; a cycle, or a name with no evaluator, is left in place,
/// so evaluating it fails with PARSE_ERROR as flagd does.
enum EvaluatorReferences {
    /// Substitution stops growing a rule past this many values (a guard against reference bombs).
    static let maximumExpandedSize = 1_000_000

    static func resolve(_ rule: JSONValue, evaluators: [String: JSONValue]) throws(RuleError) -> JSONValue {
        if evaluators.isEmpty { return rule }
        var budget = maximumExpandedSize
        var active: [String] = []
        return try resolve(rule, evaluators, &active, &budget, depth: 0)
    }

    private static func resolve(
        _ rule: JSONValue, _ evaluators: [String: JSONValue], _ active: inout [String], _ budget: inout Int, depth: Int
    ) throws(RuleError) -> JSONValue {
        budget -= 1
        guard budget >= 0 else { throw RuleError(message: "rule is too large after $ref substitution") }
        guard depth <= RuleCompiler.maximumDepth else {
            throw RuleError(message: "rule is nested more than \(RuleCompiler.maximumDepth) levels deep")
        }
        switch rule {
        case .array(let a):
            var out: [JSONValue] = []
            out.reserveCapacity(a.count)
            for e in a { out.append(try resolve(e, evaluators, &active, &budget, depth: depth + 1)) }
            return .array(out)
        case .object(let o):
            if o.count == 1, case .string(let name)? = o["$ref"] {
                guard let target = evaluators[name], !active.contains(name) else { return rule }
                active.append(name)
                defer { active.removeLast() }
                return try resolve(target, evaluators, &active, &budget, depth: depth + 1)
            }
            var out: [String: JSONValue] = [:]
            out.reserveCapacity(o.count)
            for (k, v) in o { out[k] = try resolve(v, evaluators, &active, &budget, depth: depth + 1) }
            return .object(out)
        default:
            return rule
        }
    }
}
