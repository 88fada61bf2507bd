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
        guard depth <= RuleProgram.maximumDepth else {
            throw RuleError(message: "rule is nested more than \(RuleProgram.maximumDepth) levels deep")
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
