/// Static analysis of a JsonLogic rule (a flag's `targeting` or an evaluator), without evaluating it.
///
/// JsonLogic reads every object with exactly one key as an operation, wherever it stands (inside
/// arrays and as arguments too), and every other object (`{}` or several keys) as a literal. The
/// checks here are what flagd loads in spite of its schema and then answers with null, `DEFAULT`
/// or an error code, so they are warnings (NOTES.md §2).
struct TargetingAnalyzer {
    /// Shared evaluators of the flag set, by name.
    let evaluators: [String: JSONValue]
    /// The bucketing algorithm `fractional` uses in this flag set.
    let algorithm: FractionalAlgorithm
    /// The flag the rule belongs to, or nil for an evaluator.
    let flagKey: String?
    /// The evaluator being analysed, if any.
    let evaluatorName: String?

    /// Operations whose result is always a boolean (or null).
    static let booleanOperations: Set<String> = [
        "==", "===", "!=", "!==", ">", ">=", "<", "<=", "!", "!!", "in", "all", "none", "some",
        "starts_with", "ends_with", "sem_ver",
    ]
    /// The names `var` may read under `$flagd`.
    static let flagdProperties: Set<String> = ["$flagd.flagKey", "$flagd.timestamp"]

    private var subject: String {
        if let evaluatorName { return "evaluator \"\(evaluatorName)\": " }
        return ""
    }

    // MARK: Structure

    /// Walks a rule and reports unknown operators, bad `$ref`s and bad arguments of flagd's custom operators.
    func check(_ rule: JSONValue, at pointer: LazyPointer, into sink: inout DiagnosticSink) {
        checkRule(rule, at: pointer, into: &sink)
    }

    /// ``check(_:at:into:)`` with any kind of pointer.
    func checkRule<P: PointerPath>(_ rule: JSONValue, at pointer: P, into sink: inout DiagnosticSink) {
        switch rule {
        case .array(let elements):
            for (i, e) in elements.enumerated() { checkRule(e, at: pointer.child(i), into: &sink) }
        case .object(let object):
            guard object.count == 1, let (op, args) = object.first else {
                if object.count > 1 {
                    let keys = MessageText.quotedList(object.keys.sorted())
                    sink.warning(
                        at: pointer, flag: flagKey,
                        "\(subject)an object with \(object.count) keys (\(keys)) is not a JsonLogic operation, which has exactly one key; it is read as a literal value",
                        hint: "write one operation per object, e.g. {\"and\": [{…}, {…}]}")
                }
                return
            }
            let argsPointer = pointer.child(op)
            if op == "$ref" {
                checkReference(args, at: argsPointer, into: &sink)
                return
            }
            guard JsonLogicOperators.all.contains(op) else {
                var hint = "flagd's operators are JsonLogic's plus fractional, sem_ver, starts_with and ends_with"
                if let s = MessageText.suggestion(for: op, among: JsonLogicOperators.all) { hint = "did you mean \"\(s)\"?" }
                sink.warning(
                    at: argsPointer, atKey: true, flag: flagKey,
                    "\(subject)unknown operator \"\(op)\": flagd fails the evaluation with PARSE_ERROR and the caller gets its default",
                    hint: hint)
                return
            }
            let arguments = Self.arguments(args, at: argsPointer)
            switch op {
            case "fractional": checkFractional(arguments, at: argsPointer, into: &sink)
            case "sem_ver": checkSemVer(arguments, at: argsPointer, into: &sink)
            case "starts_with", "ends_with": checkAffix(op, arguments, at: argsPointer, into: &sink)
            case "var": checkVar(arguments, into: &sink)
            default: for (a, p) in arguments { checkRule(a, at: p, into: &sink) }
            }
        default:
            return
        }
    }

    /// JsonLogic's argument list: an array is the list, anything else is one argument.
    static func arguments<P: PointerPath>(_ args: JSONValue, at pointer: P) -> Arguments<P> {
        Arguments(args, at: pointer)
    }

    /// The arguments of an operation, each with its pointer (made when an argument is read).
    struct Arguments<P: PointerPath>: RandomAccessCollection {
        private let list: [JSONValue]?
        private let single: JSONValue
        private let pointer: P

        init(_ args: JSONValue, at pointer: P) {
            if case .array(let a) = args {
                list = a
                single = .null
            } else {
                list = nil
                single = args
            }
            self.pointer = pointer
        }

        var startIndex: Int { 0 }
        var endIndex: Int { list?.count ?? 1 }

        subscript(position: Int) -> (JSONValue, P) {
            guard let list else { return (single, pointer) }
            return (list[position], pointer.child(position))
        }
    }

    /// Whether a value is an operation call (an object with one key), whose value is known only at evaluation.
    static func isOperation(_ value: JSONValue) -> Bool {
        if case .object(let o) = value { return o.count == 1 }
        return false
    }

    private func checkReference<P: PointerPath>(_ args: JSONValue, at pointer: P, into sink: inout DiagnosticSink) {
        guard case .string(let name) = args else {
            sink.warning(
                at: pointer, flag: flagKey,
                "\(subject)$ref needs the name of an evaluator (a string), not \(MessageText.literal(args)); flagd fails the evaluation with PARSE_ERROR"
            )
            return
        }
        if evaluatorName != nil {
            sink.warning(
                at: pointer, flag: flagKey,
                "\(subject)a $ref inside an evaluator is not resolved: flagd substitutes $ref in flags only, once",
                hint: "repeat the rule here, or reference both evaluators from the flag")
        } else if evaluators[name] == nil {
            var hint = "define it under $evaluators in any file of this environment"
            if let s = MessageText.suggestion(for: name, among: evaluators.keys) { hint = "did you mean \"\(s)\"?" }
            sink.warning(
                at: pointer, flag: flagKey,
                "no evaluator named \"\(name)\": flagd fails the evaluation with PARSE_ERROR and the caller gets its default",
                hint: hint)
        }
    }

    private func checkVar<P: PointerPath>(_ arguments: Arguments<P>, into sink: inout DiagnosticSink) {
        for (a, p) in arguments { checkRule(a, at: p, into: &sink) }
        if let (first, p) = arguments.first, case .string(let path) = first, path.hasPrefix("$flagd."),
            !Self.flagdProperties.contains(path)
        {
            sink.warning(
                at: p, flag: flagKey,
                "\(subject)\"\(path)\" is always null: $flagd has only flagKey and timestamp",
                hint: "use \"$flagd.flagKey\" or \"$flagd.timestamp\"")
        }
    }

    private func checkAffix<P: PointerPath>(_ op: String, _ arguments: Arguments<P>, at pointer: P, into sink: inout DiagnosticSink) {
        for (a, p) in arguments { checkRule(a, at: p, into: &sink) }
        if arguments.count != 2 {
            sink.warning(
                at: pointer, flag: flagKey,
                "\(subject)\(op) takes 2 arguments [text, \(op == "starts_with" ? "prefix" : "suffix")], not \(arguments.count): it returns null")
        }
        for (a, p) in arguments.prefix(2) where !Self.isOperation(a) {
            if case .string = a { continue }
            sink.warning(
                at: p, flag: flagKey,
                "\(subject)\(op) compares strings; with the \(a.typeName) \(MessageText.literal(a)) it returns null",
                hint: a.numberValue != nil ? "quote it: \"\(MessageText.literal(a))\"" : nil)
        }
    }

    private func checkSemVer<P: PointerPath>(_ arguments: Arguments<P>, at pointer: P, into sink: inout DiagnosticSink) {
        for (a, p) in arguments { checkRule(a, at: p, into: &sink) }
        if arguments.count != 3 {
            sink.warning(
                at: pointer, flag: flagKey,
                "\(subject)sem_ver takes 3 arguments [version, operator, version], not \(arguments.count): it returns null")
        }
        if arguments.count >= 2 {
            let (op, p) = arguments[1]
            let names = SemVerOperator.allCases.map(\.rawValue).joined(separator: " ")
            if case .string(let s) = op {
                if SemVerOperator(rawValue: s) == nil {
                    sink.warning(
                        at: p, flag: flagKey,
                        "\(subject)\"\(s)\" is not a sem_ver operator: sem_ver returns null", hint: "use one of \(names)")
                }
            } else if !Self.isOperation(op) {
                sink.warning(
                    at: p, flag: flagKey,
                    "\(subject)the sem_ver operator must be a string, not \(MessageText.literal(op)): sem_ver returns null",
                    hint: "use one of \(names)")
            }
        }
        for index in [0, 2] where index < arguments.count {
            let (v, p) = arguments[index]
            if case .string(let s) = v, SemanticVersion(s) == nil {
                sink.warning(
                    at: p, flag: flagKey,
                    "\(subject)\"\(s)\" is not a semantic version (MAJOR.MINOR.PATCH[-pre][+build]): sem_ver returns null")
            }
        }
    }

    private func checkFractional<P: PointerPath>(_ arguments: Arguments<P>, at pointer: P, into sink: inout DiagnosticSink) {
        var buckets = arguments[...]
        if let (first, p) = arguments.first, first.arrayValue == nil {
            buckets = arguments.dropFirst()
            checkRule(first, at: p, into: &sink)
            checkBucketingValue(first, at: p, into: &sink)
        }
        if buckets.isEmpty {
            sink.warning(
                at: pointer, flag: flagKey, "\(subject)fractional has no buckets: it returns null",
                hint: "add buckets: [\"variant\", weight], …")
            return
        }
        var total: Int64 = 0
        var allLiteral = true
        var anyInvalid = false
        for (bucket, p) in buckets {
            guard case .array(let entries) = bucket else {
                allLiteral = false
                if Self.isOperation(bucket) {
                    checkRule(bucket, at: p, into: &sink)
                } else {
                    anyInvalid = true
                    sink.warning(
                        at: p, flag: flagKey,
                        "\(subject)a fractional bucket is [variant, weight] or [variant], not \(MessageText.literal(bucket)): fractional returns null"
                    )
                }
                continue
            }
            if entries.isEmpty || entries.count > 2 {
                anyInvalid = true
                sink.warning(
                    at: p, flag: flagKey,
                    "\(subject)a fractional bucket has one or two entries [variant, weight], not \(entries.count): fractional returns null")
            }
            if let variant = entries.first {
                let vp = p.child(0)
                checkRule(variant, at: vp, into: &sink)
                let literalObject = variant.objectValue != nil && !Self.isOperation(variant)
                if variant.arrayValue != nil || literalObject {
                    anyInvalid = true
                    sink.warning(
                        at: vp, flag: flagKey,
                        "\(subject)a bucket's variant must be a string, boolean or number, not \(variant.typeName): fractional returns null")
                }
            }
            guard entries.count >= 2 else {
                total += 1
                continue
            }
            let weight = entries[1]
            let wp = p.child(1)
            switch weight {
            case .int(let w):
                total += checkWeight(Double(w), text: String(w), at: wp, into: &sink)
            case .double(let w):
                if w != w.rounded() || !w.isFinite {
                    anyInvalid = true
                    sink.warning(
                        at: wp, flag: flagKey,
                        "\(subject)the weight \(YAMLScalarResolver.goFormat(w)) is not a whole number: fractional returns null",
                        hint: "use whole numbers; weights are relative, so 255 and 745 split 25.5% / 74.5%")
                } else {
                    total += checkWeight(w, text: YAMLScalarResolver.goFormat(w), at: wp, into: &sink)
                }
            case _ where Self.isOperation(weight):
                allLiteral = false
                checkRule(weight, at: wp, into: &sink)
            default:
                anyInvalid = true
                sink.warning(
                    at: wp, flag: flagKey,
                    "\(subject)a weight must be a number, not the \(weight.typeName) \(MessageText.literal(weight)): fractional returns null",
                    hint: weight.stringValue.flatMap { Int64($0) } != nil ? "drop the quotes" : nil)
            }
            if total > Int64(Int32.max) { total = Int64(Int32.max) + 1 }
        }
        guard allLiteral, !anyInvalid else { return }
        if total == 0 {
            sink.warning(
                at: pointer, flag: flagKey, "\(subject)every weight is 0 (negative weights count as 0): fractional returns null",
                hint: "give at least one bucket a positive weight")
        } else if total > Int64(Int32.max) {
            sink.warning(
                at: pointer, flag: flagKey, "\(subject)the weights add up to more than 2147483647: fractional returns null",
                hint: "weights are relative: scale them down")
        }
    }

    /// Reports a bad literal weight and returns what it adds to the total (negatives count as 0).
    private func checkWeight<P: PointerPath>(_ w: Double, text: String, at pointer: P, into sink: inout DiagnosticSink) -> Int64 {
        if w < 0 {
            sink.warning(
                at: pointer, flag: flagKey, "\(subject)the negative weight \(text) counts as 0",
                hint: "use 0 to switch a bucket off")
            return 0
        }
        if w > Double(Int32.max) {
            sink.warning(
                at: pointer, flag: flagKey,
                "\(subject)the weight \(text) is larger than 2147483647: fractional returns null",
                hint: "weights are relative: scale them down")
            return Int64(Int32.max) + 1
        }
        return Int64(w)
    }

    private func checkBucketingValue<P: PointerPath>(_ value: JSONValue, at pointer: P, into sink: inout DiagnosticSink) {
        let hint =
            "bucket by a context value, e.g. {\"cat\": [{\"var\": \"$flagd.flagKey\"}, {\"var\": \"email\"}]}, or leave it out to use the targeting key"
        switch value {
        case .null:
            let effect =
                algorithm == .v3
                ? "fractional returns null (fractional v3)"
                : "it is skipped and the targeting key is used (fractional v2)"
            sink.warning(at: pointer, flag: flagKey, "\(subject)the bucketing value is null: \(effect)", hint: hint)
        case .string:
            sink.warning(
                at: pointer, flag: flagKey,
                "\(subject)the bucketing value is the constant \(MessageText.literal(value)): every user lands in the same bucket",
                hint: hint)
        case _ where Self.isOperation(value):
            return
        default:
            let effect =
                algorithm == .v3
                ? "every user lands in the same bucket"
                : "fractional returns null (fractional v2 buckets strings only)"
            sink.warning(
                at: pointer, flag: flagKey,
                "\(subject)the bucketing value is the constant \(value.typeName) \(MessageText.literal(value)): \(effect)",
                hint: hint)
        }
    }

    // MARK: Results

    /// A value a rule can return that names (or fails to name) a variant.
    enum Result: Equatable {
        case name(String)
        case boolean(Bool)
        case booleanOperation(String)
        case number(String)
        case nonScalar(String)
    }

    /// The literal results of a rule in a result position: `if` branches, `and`/`or` operands,
    /// fractional buckets' variants, the bodies of referenced evaluators.
    /// - Parameter via: the `$ref` site and evaluator name when reading an evaluator's body.
    func results<P: PointerPath>(of rule: JSONValue, at pointer: P, via: (pointer: P, name: String)? = nil) -> [(Result, P, String?)] {
        let site = via?.pointer ?? pointer
        let name = via?.name
        switch rule {
        case .null: return []
        case .string(let s): return [(.name(s), site, name)]
        case .bool(let b): return [(.boolean(b), site, name)]
        case .int(let i): return [(.number(String(i)), site, name)]
        case .double(let d): return [(.number(YAMLScalarResolver.goFormat(d)), site, name)]
        case .array: return [(.nonScalar("array"), site, name)]
        case .object(let object):
            guard object.count == 1, let (op, args) = object.first else { return [(.nonScalar("object"), site, name)] }
            let argsPointer = pointer.child(op)
            let arguments = Self.arguments(args, at: argsPointer)
            func sub(_ index: Int) -> [(Result, P, String?)] {
                results(of: arguments[index].0, at: arguments[index].1, via: via)
            }
            switch op {
            case "if":
                let n = arguments.count
                var indices = Array(stride(from: 1, to: n, by: 2))
                if n % 2 == 1 { indices.append(n - 1) }
                return indices.flatMap(sub)
            case "or", "and":
                return arguments.indices.flatMap(sub)
            case "fractional":
                var out: [(Result, P, String?)] = []
                for (bucket, p) in arguments {
                    guard case .array(let entries) = bucket, let variant = entries.first else { continue }
                    out += results(of: variant, at: p.child(0), via: via)
                }
                return out
            case "$ref":
                guard via == nil, case .string(let ref) = args, let body = evaluators[ref] else { return [] }
                return results(of: body, at: "", via: (pointer, ref))
            case _ where Self.booleanOperations.contains(op):
                return [(.booleanOperation(op), site, name)]
            default:
                return []
            }
        }
    }

    /// Reports results of the flag's targeting that name no variant.
    func checkResults<P: PointerPath>(_ targeting: JSONValue, at pointer: P, variants: Set<String>, into sink: inout DiagnosticSink) {
        if case .object(let o) = targeting, o.isEmpty { return }
        var known: String { MessageText.quotedList(variants.sorted()) }
        var seen: Set<String> = []
        for (result, site, via) in results(of: targeting, at: pointer) {
            let source = via.map { "the evaluator \"\($0)\"" } ?? "targeting"
            var message: String?
            var hint: String?
            switch result {
            case .name(let s) where !variants.contains(s):
                message = "\(source) can return \"\(s)\", which is not a variant (\(known)): flagd answers GENERAL and the caller gets its default"
                if let close = MessageText.suggestion(for: s, among: variants) { hint = "did you mean \"\(close)\"?" }
            case .boolean(let b) where !variants.contains(String(b)):
                message = "\(source) can return \(b), which selects the variant named \"\(b)\"; this flag has none"
                hint = "return a variant name, or add a variant named \"\(b)\""
            case .booleanOperation(let op):
                let missing = ["true", "false"].filter { !variants.contains($0) }
                if !missing.isEmpty {
                    message =
                        "\(source) returns the result of \(op) (true or false), which selects the variant named \"true\" or \"false\"; this flag has no \(MessageText.quotedList(missing))"
                    hint = "wrap it in if: {\"if\": [rule, \"on-variant\", \"off-variant\"]}"
                }
            case .number(let n) where !variants.contains(n):
                message = "\(source) can return the number \(n), which names no variant (\(known))"
                hint = "return a variant name (a string)"
            case .nonScalar(let type):
                message = "\(source) can return an \(type), which names no variant: flagd answers GENERAL"
                hint = "return a variant name (a string)"
            default:
                break
            }
            guard let message, seen.insert(site.string + "\u{0}" + message).inserted else { continue }
            sink.warning(at: site, flag: flagKey, message, hint: hint)
        }
    }
}
