extension RuleProgram {
    /// Rules nested deeper than this are refused rather than risking the stack.
    static let maximumDepth = 200

    /// Compiles a JsonLogic rule (with `$ref`s already substituted).
    ///
    /// Compiling is lenient the way flagd is: anything JsonLogic accepts at evaluation time
    /// compiles, an operator outside the dialect becomes an instruction that fails only if it is
    /// evaluated, and only a rule nested too deeply is refused.
    ///
    /// - Parameter variantIndex: For a flag's targeting, the variant a constant result names;
    ///   constants in result position (the rule, `if` branches, constant `fractional` buckets) are
    ///   then resolved once here instead of by name on every evaluation.
    convenience init(
        compiling rule: JSONValue, flagKey: String, algorithm: FractionalAlgorithm,
        variantIndex: ((JSONValue) -> Int32?)? = nil
    ) throws(RuleError) {
        var b = Builder(flagKey: flagKey, algorithm: algorithm)
        let root = try b.compile(rule, depth: 0)
        if let variantIndex { b.markVariants(root, variantIndex) }
        self.init(
            flagKey: flagKey, nodes: b.nodes, arguments: b.arguments, constants: b.constants, paths: b.paths,
            semVers: b.semVers, fractionals: b.fractionals, strings: b.strings, stringSets: b.stringSets, root: root,
            readsTimestamp: b.readsTimestamp)
    }

    private struct Builder {
        let flagKey: String
        let algorithm: FractionalAlgorithm
        var nodes: [Node] = []
        var arguments: [Int32] = []
        var constants: [JSONValue] = []
        var paths: [VariablePath] = []
        var semVers: [SemVerRule] = []
        var fractionals: [FractionalRule] = []
        var strings: [String] = []
        var stringSets: [StringSet] = []
        var readsTimestamp = false

        init(flagKey: String, algorithm: FractionalAlgorithm) {
            self.flagKey = flagKey
            self.algorithm = algorithm
        }

        mutating func add(_ node: Node) -> Int32 {
            nodes.append(node)
            return Int32(nodes.count - 1)
        }

        mutating func literal(_ value: JSONValue) -> Int32 {
            constants.append(value)
            return add(.literal(constant: Int32(constants.count - 1)))
        }

        mutating func list(_ children: ArraySlice<Int32>) -> Arguments {
            let start = Int32(arguments.count)
            arguments.append(contentsOf: children)
            return Arguments(start: start, count: Int32(children.count))
        }

        func constantValue(_ node: Int32) -> JSONValue? {
            if case .literal(let c) = nodes[Int(node)] { return constants[Int(c)] }
            return nil
        }

        /// Data without any operator inside (arrays are evaluated element by element, so an array
        /// of constants is itself a constant). Too deep to tell counts as not constant, so that
        /// compiling reaches the depth limit.
        static func isConstant(_ value: JSONValue, depth: Int) -> Bool {
            switch value {
            case .array(let a):
                guard depth <= RuleProgram.maximumDepth else { return false }
                return a.allSatisfy { isConstant($0, depth: depth + 1) }
            case .object(let o): return o.count != 1
            default: return true
            }
        }

        mutating func compile(_ rule: JSONValue, depth: Int) throws(RuleError) -> Int32 {
            guard depth <= RuleProgram.maximumDepth else {
                throw RuleError(message: "rule is nested more than \(RuleProgram.maximumDepth) levels deep")
            }
            if Builder.isConstant(rule, depth: depth) { return literal(rule) }
            switch rule {
            case .array(let elements):
                var children: [Int32] = []
                children.reserveCapacity(elements.count)
                for e in elements { children.append(try compile(e, depth: depth + 1)) }
                return add(.array(list(children[...])))
            case .object(let members):
                let (op, argument) = members.first!
                return try compileOperator(op, argument, depth: depth)
            default:
                return literal(rule)
            }
        }

        mutating func compileOperator(_ op: String, _ argument: JSONValue, depth: Int) throws(RuleError) -> Int32 {
            guard JsonLogicOperators.all.contains(op) else {
                constants.append(.string(op))
                return add(.unknownOperator(name: Int32(constants.count - 1)))
            }
            let raw: [JSONValue]
            if case .array(let a) = argument { raw = a } else { raw = [argument] }
            var children: [Int32] = []
            children.reserveCapacity(raw.count)
            for a in raw { children.append(try compile(a, depth: depth + 1)) }
            let args = list(children[...])
            switch op {
            case "var": return compileVariable(children, args)
            case "missing":
                if mayReadFlagd(children) { readsTimestamp = true }
                return add(.missing(args))
            case "missing_some":
                if mayReadFlagd(children) { readsTimestamp = true }
                return add(.missingSome(args))
            case "if": return add(.condition(args))
            case "==": return add(.equality(.equal, args))
            case "!=": return add(.equality(.notEqual, args))
            case "===": return add(.equality(.strictEqual, args))
            case "!==": return add(.equality(.strictNotEqual, args))
            case "<": return add(.comparison(.less, args))
            case "<=": return add(.comparison(.lessOrEqual, args))
            case ">": return add(.comparison(.greater, args))
            case ">=": return add(.comparison(.greaterOrEqual, args))
            case "!": return add(.truthiness(negated: true, args))
            case "!!": return add(.truthiness(negated: false, args))
            case "and": return add(.and(args))
            case "or": return add(.or(args))
            case "+": return add(.arithmetic(.add, args))
            case "-": return add(.arithmetic(.subtract, args))
            case "*": return add(.arithmetic(.multiply, args))
            case "/": return add(.arithmetic(.divide, args))
            case "%": return add(.arithmetic(.modulo, args))
            case "min": return add(.arithmetic(.min, args))
            case "max": return add(.arithmetic(.max, args))
            case "cat": return add(.cat(args))
            case "substr": return add(.substr(args))
            case "in":
                // A constant array of strings: compared as strings, without evaluating the array.
                if children.count == 2, case .array(let elements)? = constantValue(children[1]) {
                    var set: [String] = []
                    set.reserveCapacity(elements.count)
                    for case .string(let s) in elements { set.append(s) }
                    if set.count == elements.count {
                        stringSets.append(StringSet(set))
                        return add(.inStrings(needle: children[0], set: Int32(stringSets.count - 1)))
                    }
                }
                return add(.contains(args))
            case "merge": return add(.merge(args))
            case "map": return add(.iteration(.map, args))
            case "filter": return add(.iteration(.filter, args))
            case "all": return add(.iteration(.all, args))
            case "none": return add(.iteration(.none, args))
            case "some": return add(.iteration(.some, args))
            case "reduce": return add(.reduce(args))
            case "starts_with", "ends_with":
                let suffix = op == "ends_with"
                if children.count == 2, case .string(let affix)? = constantValue(children[1]) {
                    strings.append(affix)
                    return add(.constantAffix(suffix: suffix, operand: children[0], affix: Int32(strings.count - 1)))
                }
                return add(.stringAffix(suffix: suffix, args))
            case "sem_ver":
                semVers.append(compileSemVer(children, args))
                return add(.semVer(Int32(semVers.count - 1)))
            case "fractional":
                fractionals.append(
                    FractionalRule(
                        algorithm: algorithm, arguments: args, constants: children.map(constantValue), flagKey: flagKey))
                return add(.fractional(Int32(fractionals.count - 1)))
            default:
                constants.append(.string(op))
                return add(.unknownOperator(name: Int32(constants.count - 1)))
            }
        }

        mutating func compileVariable(_ children: [Int32], _ args: Arguments) -> Int32 {
            let fallback = children.count > 1 ? children[1] : -1
            let rest = children.count > 2 ? list(children[2...]) : .none
            let path: VariablePath
            if children.isEmpty {
                path = VariablePath("")
            } else {
                switch constantValue(children[0]) {
                case nil:
                    readsTimestamp = true
                    return add(.dynamicVariable(args))
                case .null?: path = VariablePath("")
                case .string(let s)?: path = VariablePath(s)
                case let v?: path = VariablePath(v.jsString)
                }
            }
            if path.readsTimestamp { readsTimestamp = true }
            paths.append(path)
            return add(.variable(path: Int32(paths.count - 1), fallback: fallback, rest: rest))
        }

        /// Whether `missing` keys may name `$flagd` (or the whole data).
        func mayReadFlagd(_ children: [Int32]) -> Bool {
            func check(_ v: JSONValue) -> Bool {
                switch v {
                case .string(let s): return s.isEmpty || s.hasPrefix("$flagd")
                case .array(let a): return a.contains(where: check)
                case .null: return true
                default: return false
                }
            }
            return children.contains { constantValue($0).map(check) ?? true }
        }

        func compileSemVer(_ children: [Int32], _ args: Arguments) -> SemVerRule {
            SemVerRule(arguments: args, constants: children.map(constantValue))
        }

        /// Resolves constants in result position to the variant they name.
        mutating func markVariants(_ node: Int32, _ index: (JSONValue) -> Int32?) {
            switch nodes[Int(node)] {
            case .literal(let c):
                if let i = index(constants[Int(c)]) { nodes[Int(node)] = .variant(constant: c, index: i) }
            case .condition(let args):
                var i = 1
                while i < Int(args.count) {
                    markVariants(arguments[Int(args.start) + i], index)
                    i += 2
                }
                if args.count % 2 == 1 { markVariants(arguments[Int(args.start + args.count - 1)], index) }
            case .fractional(let f):
                fractionals[Int(f)] = fractionals[Int(f)].withVariantIndexes(index)
            default:
                break
            }
        }
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
