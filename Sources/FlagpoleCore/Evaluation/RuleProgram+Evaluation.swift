/// Evaluation of a compiled rule against a context.
///
/// The context and the timestamp are passed down as parameters (borrowed, never copied). `var`
/// reads flagd's injected values (`targetingKey`, `$flagd.flagKey`, `$flagd.timestamp`) first and
/// then the caller's attributes, so the merged context object is built only when a rule asks for
/// the whole data. `data` is nil at the root, and the current element inside `map`, `filter`, ….
extension RuleProgram {
    /// The outcome of a rule in result position.
    enum Outcome {
        /// A value to map to a variant name.
        case value(JSONValue)
        /// A variant already identified at compile time.
        case variant(Int32)
    }

    /// Evaluates the rule as a flag's targeting, short-cutting constant results that name a variant.
    func evaluateResult(_ context: EvaluationContext, timestamp: Int64) throws(RuleError) -> Outcome {
        try result(Int(root), context, timestamp)
    }

    /// Evaluates the rule to a value.
    func evaluate(_ context: EvaluationContext, timestamp: Int64) throws(RuleError) -> JSONValue {
        try eval(Int(root), nil, context, timestamp)
    }

    private func result(_ n: Int, _ ctx: EvaluationContext, _ ts: Int64) throws(RuleError) -> Outcome {
        switch nodes[n] {
        case .variant(_, let index):
            return .variant(index)
        case .condition(let args):
            var i = 0
            let count = Int(args.count)
            while i + 1 < count {
                if try test(argument(args, i), nil, ctx, ts) { return try result(argument(args, i + 1), ctx, ts) }
                i += 2
            }
            return i < count ? try result(argument(args, i), ctx, ts) : .value(.null)
        case .fractional(let f):
            switch try select(fractionals[Int(f)], nil, ctx, ts) {
            case .none:
                return .value(.null)
            case .value(let v):
                return .value(v)
            case .bucket(let table, let i):
                if let indexes = table.variantIndexes, indexes[i] >= 0 { return .variant(indexes[i]) }
                return .value(table.variants[i])
            }
        default:
            return .value(try eval(n, nil, ctx, ts))
        }
    }

    // MARK: - Data

    /// The merged context, as JsonLogic would see it: attributes, `targetingKey`, `$flagd`.
    private func rootObject(_ ctx: EvaluationContext, _ ts: Int64) -> JSONValue {
        var o = ctx.attributes
        if let tk = ctx.targetingKey { o["targetingKey"] = .string(tk) }
        o["$flagd"] = flagdObject(ts)
        return .object(o)
    }

    private func flagdObject(_ ts: Int64) -> JSONValue {
        .object(["flagKey": .string(flagKey), "timestamp": .int(ts)])
    }

    /// The targeting key as rules see it: the OpenFeature one, else a `targetingKey` attribute.
    @inline(__always)
    private func targetingKey(_ ctx: EvaluationContext) -> JSONValue? {
        if let tk = ctx.targetingKey { return .string(tk) }
        return ctx.attributes["targetingKey"]
    }

    /// An attribute of the context. Small contexts are scanned, which beats hashing the name;
    /// the comparison is the dictionary's own (`String ==`), so the answer is the same.
    @inline(__always)
    private func attribute(_ attributes: [String: JSONValue], _ name: String) -> JSONValue? {
        guard attributes.count <= 8 else { return attributes[name] }
        var i = attributes.startIndex
        let end = attributes.endIndex
        // First by representation (equal bits are equal strings), which finds short names
        // without a call; then by value.
        let bits = StringBits(name)
        while i != end {
            if StringBits(attributes.keys[i]) == bits { return attributes.values[i] }
            attributes.formIndex(after: &i)
        }
        i = attributes.startIndex
        while i != end {
            if attributes.keys[i] == name { return attributes.values[i] }
            attributes.formIndex(after: &i)
        }
        return nil
    }

    /// Resolves a `var` path against the data; nil when it is undefined.
    @inline(__always)
    private func resolve(_ path: VariablePath, _ data: JSONValue?, _ ctx: EvaluationContext, _ ts: Int64) -> JSONValue? {
        if let data {
            if case .whole = path.head { return data }
            return path.walk(data, from: 0)
        }
        let base: JSONValue?
        switch path.head {
        case .whole: return rootObject(ctx, ts)
        case .attribute(let name): base = attribute(ctx.attributes, name)
        case .targetingKey: base = targetingKey(ctx)
        case .flagKey: base = .string(flagKey)
        case .timestamp: base = .int(ts)
        case .flagd: base = flagdObject(ts)
        }
        guard let b = base else { return nil }
        return path.components.count == path.headCount ? b : path.walk(b, from: path.headCount)
    }

    /// Resolves a computed `var` key (the path is its JavaScript string form).
    private func resolve(key: JSONValue, _ data: JSONValue?, _ ctx: EvaluationContext, _ ts: Int64) -> JSONValue? {
        switch key {
        case .null: return resolve(VariablePath(""), data, ctx, ts)
        case .string(let s): return resolve(VariablePath(s), data, ctx, ts)
        default: return resolve(VariablePath(key.jsString), data, ctx, ts)
        }
    }

    // MARK: - Evaluation

    /// Argument `i`, evaluated, or `missing` when there are fewer arguments.
    @inline(__always)
    private func value(
        _ args: Arguments, _ i: Int, _ data: JSONValue?, _ ctx: EvaluationContext, _ ts: Int64,
        missing: JSONValue = .null
    ) throws(RuleError) -> JSONValue {
        i < Int(args.count) ? try eval(argument(args, i), data, ctx, ts) : missing
    }

    /// Evaluates arguments an operator ignores, because JsonLogic evaluates every argument and an
    /// unknown operator among them is still an error.
    @inline(__always)
    private func evaluateUnused(
        _ args: Arguments, from start: Int, _ data: JSONValue?, _ ctx: EvaluationContext, _ ts: Int64
    ) throws(RuleError) {
        var i = start
        while i < Int(args.count) {
            let n = argument(args, i)
            if case .literal = nodes[n] {} else { _ = try eval(n, data, ctx, ts) }
            i += 1
        }
    }

    /// Evaluates node `n` with `data` as the scope of `var` (nil: the root context).
    func eval(_ n: Int, _ data: JSONValue?, _ ctx: EvaluationContext, _ ts: Int64) throws(RuleError) -> JSONValue {
        switch nodes[n] {
        case .literal(let c), .variant(let c, _):
            return constants[Int(c)]

        case .array(let args):
            var out: [JSONValue] = []
            out.reserveCapacity(Int(args.count))
            for i in 0..<Int(args.count) { out.append(try eval(argument(args, i), data, ctx, ts)) }
            return .array(out)

        case .variable(let p, let fallback, let rest):
            if !rest.isEmpty { try evaluateUnused(rest, from: 0, data, ctx, ts) }
            if let v = resolve(paths[Int(p)], data, ctx, ts) { return v }
            return fallback < 0 ? .null : try eval(Int(fallback), data, ctx, ts)

        case .dynamicVariable(let args):
            let key = try value(args, 0, data, ctx, ts)
            try evaluateUnused(args, from: 2, data, ctx, ts)
            if let v = resolve(key: key, data, ctx, ts) { return v }
            return try value(args, 1, data, ctx, ts)

        case .missing(let args):
            return .array(try missingKeys(args, data, ctx, ts))

        case .missingSome(let args):
            let need = try value(args, 0, data, ctx, ts)
            let options = try value(args, 1, data, ctx, ts)
            try evaluateUnused(args, from: 2, data, ctx, ts)
            guard case .array(let keys) = options else { return .array([]) }
            let missing = missingKeys(keys, data, ctx, ts)
            if Double(keys.count - missing.count) >= need.jsNumber { return .array([]) }
            return .array(missing)

        case .condition(let args):
            var i = 0
            let count = Int(args.count)
            while i + 1 < count {
                if try test(argument(args, i), data, ctx, ts) { return try eval(argument(args, i + 1), data, ctx, ts) }
                i += 2
            }
            return i < count ? try eval(argument(args, i), data, ctx, ts) : .null

        case .equality(let op, let args):
            let a = try value(args, 0, data, ctx, ts)
            let b = try value(args, 1, data, ctx, ts)
            try evaluateUnused(args, from: 2, data, ctx, ts)
            switch op {
            case .equal: return .bool(JSONValue.looseEquals(a, b))
            case .notEqual: return .bool(!JSONValue.looseEquals(a, b))
            case .strictEqual: return .bool(JSONValue.strictEquals(a, b))
            case .strictNotEqual: return .bool(!JSONValue.strictEquals(a, b))
            }

        case .comparison(let op, let args):
            // A missing operand is `undefined`, which compares as NaN.
            let a = try value(args, 0, data, ctx, ts, missing: .double(.nan))
            let b = try value(args, 1, data, ctx, ts, missing: .double(.nan))
            switch op {
            case .less, .lessOrEqual:
                let strict = op == .less
                func holds(_ x: JSONValue, _ y: JSONValue) -> Bool {
                    switch JSONValue.jsCompare(x, y) {
                    case .less: return true
                    case .equal: return !strict
                    case .greater, .unordered: return false
                    }
                }
                if args.count >= 3 {
                    // The "between" form.
                    let c = try eval(argument(args, 2), data, ctx, ts)
                    try evaluateUnused(args, from: 3, data, ctx, ts)
                    return .bool(holds(a, b) && holds(b, c))
                }
                return .bool(holds(a, b))
            case .greater, .greaterOrEqual:
                try evaluateUnused(args, from: 2, data, ctx, ts)
                switch JSONValue.jsCompare(a, b) {
                case .greater: return .bool(true)
                case .equal: return .bool(op == .greaterOrEqual)
                case .less, .unordered: return .bool(false)
                }
            }

        case .truthiness(let negated, let args):
            let v = try value(args, 0, data, ctx, ts)
            try evaluateUnused(args, from: 1, data, ctx, ts)
            return .bool(v.isTruthy != negated)

        case .and(let args):
            var current = JSONValue.null
            for i in 0..<Int(args.count) {
                current = try eval(argument(args, i), data, ctx, ts)
                if !current.isTruthy { return current }
            }
            return current

        case .or(let args):
            var current = JSONValue.null
            for i in 0..<Int(args.count) {
                current = try eval(argument(args, i), data, ctx, ts)
                if current.isTruthy { return current }
            }
            return current

        case .arithmetic(let op, let args):
            return try arithmetic(op, args, data, ctx, ts)

        case .cat(let args):
            var out = ""
            for i in 0..<Int(args.count) {
                switch try eval(argument(args, i), data, ctx, ts) {
                case .string(let s): out += s
                case let v: out += v.jsJoinString
                }
            }
            return .string(out)

        case .substr(let args):
            let source = try value(args, 0, data, ctx, ts).jsString
            let start = try value(args, 1, data, ctx, ts).jsNumber
            let length: Double? = args.count > 2 ? try eval(argument(args, 2), data, ctx, ts).jsNumber : nil
            try evaluateUnused(args, from: 3, data, ctx, ts)
            return .string(JSONValue.substring(source, start: start, length: length))

        case .contains(let args):
            let needle = try value(args, 0, data, ctx, ts)
            let haystack = try value(args, 1, data, ctx, ts)
            try evaluateUnused(args, from: 2, data, ctx, ts)
            switch haystack {
            case .string(let s):
                if case .string(let t) = needle { return .bool(JSONValue.utf8Contains(s, t)) }
                return .bool(JSONValue.utf8Contains(s, needle.jsString))
            case .array(let a): return .bool(a.contains { JSONValue.strictEquals($0, needle) })
            default: return .bool(false)
            }

        case .merge(let args):
            var out: [JSONValue] = []
            for i in 0..<Int(args.count) {
                switch try eval(argument(args, i), data, ctx, ts) {
                case .array(let a): out.append(contentsOf: a)
                case let v: out.append(v)
                }
            }
            return .array(out)

        case .iteration(let op, let args):
            return try iterate(op, args, data, ctx, ts)

        case .reduce(let args):
            let items = try value(args, 0, data, ctx, ts)
            let initial = args.count > 2 ? try eval(argument(args, 2), data, ctx, ts) : .null
            try evaluateUnused(args, from: 3, data, ctx, ts)
            guard case .array(let array) = items else { return initial }
            var accumulator = initial
            for item in array {
                guard args.count > 1 else {
                    accumulator = .null
                    continue
                }
                accumulator = try eval(argument(args, 1), .object(["current": item, "accumulator": accumulator]), ctx, ts)
            }
            return accumulator

        case .stringAffix(let suffix, let args):
            guard args.count == 2 else {
                try evaluateUnused(args, from: 0, data, ctx, ts)
                return .null
            }
            let a = try eval(argument(args, 0), data, ctx, ts)
            let b = try eval(argument(args, 1), data, ctx, ts)
            guard case .string(let s) = a, case .string(let affix) = b else { return .null }
            return .bool(suffix ? JSONValue.utf8HasSuffix(s, affix) : JSONValue.utf8HasPrefix(s, affix))

        case .constantAffix(let suffix, let operand, let affix):
            guard let s = try stringOperand(Int(operand), data, ctx, ts) else { return .null }
            return .bool(affixHolds(suffix, s, strings[Int(affix)]))

        case .inStrings(let needle, let set):
            guard let s = try stringOperand(Int(needle), data, ctx, ts) else { return .bool(false) }
            return .bool(stringSets[Int(set)].contains(s))

        case .semVer(let index):
            return try semVer(semVers[Int(index)], data, ctx, ts)

        case .fractional(let index):
            switch try select(fractionals[Int(index)], data, ctx, ts) {
            case .none: return .null
            case .value(let v): return v
            case .bucket(let table, let i): return table.variants[i]
            }

        case .unknownOperator(let name):
            throw RuleError(message: "unrecognized operation \(constants[Int(name)].jsString)")
        }
    }

    /// Whether node `n` is truthy, without building the JSON value of a test's outcome.
    @inline(__always)
    private func test(_ n: Int, _ data: JSONValue?, _ ctx: EvaluationContext, _ ts: Int64) throws(RuleError) -> Bool {
        switch nodes[n] {
        case .constantAffix(let suffix, let operand, let affix):
            guard let s = try stringOperand(Int(operand), data, ctx, ts) else { return false }
            return affixHolds(suffix, s, strings[Int(affix)])
        case .inStrings(let needle, let set):
            guard let s = try stringOperand(Int(needle), data, ctx, ts) else { return false }
            return stringSets[Int(set)].contains(s)
        default:
            return try eval(n, data, ctx, ts).isTruthy
        }
    }

    @inline(__always)
    private func affixHolds(_ suffix: Bool, _ s: String, _ affix: String) -> Bool {
        suffix ? JSONValue.utf8HasSuffix(s, affix) : JSONValue.utf8HasPrefix(s, affix)
    }

    /// Node `n` evaluated, when it is a string; nil otherwise. A plain `var` of an attribute is
    /// read straight from the context.
    @inline(__always)
    private func stringOperand(_ n: Int, _ data: JSONValue?, _ ctx: EvaluationContext, _ ts: Int64) throws(RuleError) -> String? {
        if data == nil, case .variable(let p, let fallback, let rest) = nodes[n], fallback < 0, rest.isEmpty {
            let path = paths[Int(p)]
            if path.components.count == 1, case .attribute(let name) = path.head {
                if case .string(let s)? = attribute(ctx.attributes, name) { return s }
                return nil
            }
        }
        if case .string(let s) = try eval(n, data, ctx, ts) { return s }
        return nil
    }

    private func iterate(
        _ op: IterationOperator, _ args: Arguments, _ data: JSONValue?, _ ctx: EvaluationContext, _ ts: Int64
    ) throws(RuleError) -> JSONValue {
        let items = try value(args, 0, data, ctx, ts)
        try evaluateUnused(args, from: 2, data, ctx, ts)
        guard case .array(let array) = items else {
            switch op {
            case .map, .filter: return .array([])
            case .all, .some: return .bool(false)
            case .none: return .bool(true)
            }
        }
        let logic = args.count > 1 ? argument(args, 1) : -1
        func apply(_ item: JSONValue) throws(RuleError) -> JSONValue {
            logic < 0 ? .null : try eval(logic, item, ctx, ts)
        }
        switch op {
        case .map:
            var out: [JSONValue] = []
            out.reserveCapacity(array.count)
            for item in array { out.append(try apply(item)) }
            return .array(out)
        case .filter:
            var out: [JSONValue] = []
            for item in array {
                if try apply(item).isTruthy { out.append(item) }
            }
            return .array(out)
        case .all:
            if array.isEmpty { return .bool(false) }
            for item in array {
                if !(try apply(item).isTruthy) { return .bool(false) }
            }
            return .bool(true)
        case .some, .none:
            for item in array {
                if try apply(item).isTruthy { return .bool(op == .some) }
            }
            return .bool(op == .none)
        }
    }

    private func missingKeys(_ args: Arguments, _ data: JSONValue?, _ ctx: EvaluationContext, _ ts: Int64) throws(RuleError) -> [JSONValue] {
        var keys: [JSONValue] = []
        for i in 0..<Int(args.count) {
            let v = try eval(argument(args, i), data, ctx, ts)
            if i == 0, case .array(let a) = v {
                keys = a
                try evaluateUnused(args, from: 1, data, ctx, ts)
                break
            }
            keys.append(v)
        }
        return missingKeys(keys, data, ctx, ts)
    }

    private func missingKeys(_ keys: [JSONValue], _ data: JSONValue?, _ ctx: EvaluationContext, _ ts: Int64) -> [JSONValue] {
        var missing: [JSONValue] = []
        for key in keys {
            switch resolve(key: key, data, ctx, ts) {
            case nil, .null?, .string("")?: missing.append(key)
            default: break
            }
        }
        return missing
    }

    // MARK: - Arithmetic

    private func arithmetic(
        _ op: ArithmeticOperator, _ args: Arguments, _ data: JSONValue?, _ ctx: EvaluationContext, _ ts: Int64
    ) throws(RuleError) -> JSONValue {
        switch op {
        case .add, .multiply:
            if op == .multiply && args.isEmpty { return .null }
            var intResult: Int64 = op == .add ? 0 : 1
            var doubleResult = 0.0
            var exact = true
            for i in 0..<Int(args.count) {
                let v = try eval(argument(args, i), data, ctx, ts)
                if exact, case .int(let x) = v {
                    let (r, overflow) = op == .add ? intResult.addingReportingOverflow(x) : intResult.multipliedReportingOverflow(by: x)
                    if !overflow {
                        intResult = r
                        continue
                    }
                }
                if exact {
                    exact = false
                    doubleResult = Double(intResult)
                }
                doubleResult = op == .add ? doubleResult + v.jsNumber : doubleResult * v.jsNumber
            }
            return exact ? .int(intResult) : .double(doubleResult)

        case .subtract:
            let a = try value(args, 0, data, ctx, ts, missing: .double(.nan))
            if args.count < 2 {
                if case .int(let i) = a, i != .min { return .int(-i) }
                return .double(-a.jsNumber)
            }
            let b = try eval(argument(args, 1), data, ctx, ts)
            try evaluateUnused(args, from: 2, data, ctx, ts)
            if case .int(let x) = a, case .int(let y) = b {
                let (r, overflow) = x.subtractingReportingOverflow(y)
                if !overflow { return .int(r) }
            }
            return .double(a.jsNumber - b.jsNumber)

        case .divide:
            let a = try value(args, 0, data, ctx, ts, missing: .double(.nan))
            let b = try value(args, 1, data, ctx, ts, missing: .double(.nan))
            try evaluateUnused(args, from: 2, data, ctx, ts)
            return .double(a.jsNumber / b.jsNumber)

        case .modulo:
            let a = try value(args, 0, data, ctx, ts, missing: .double(.nan))
            let b = try value(args, 1, data, ctx, ts, missing: .double(.nan))
            try evaluateUnused(args, from: 2, data, ctx, ts)
            if case .int(let x) = a, case .int(let y) = b, y != 0 {
                return .int(y == -1 ? 0 : x % y)
            }
            return .double(a.jsNumber.truncatingRemainder(dividingBy: b.jsNumber))

        case .min, .max:
            guard !args.isEmpty else { return .null }
            var best: JSONValue = .null
            var bestNumber = 0.0
            for i in 0..<Int(args.count) {
                let v = try eval(argument(args, i), data, ctx, ts)
                let x = v.jsNumber
                if x.isNaN { return .double(.nan) }
                if i == 0 || (op == .min ? x < bestNumber : x > bestNumber) {
                    bestNumber = x
                    best = v
                }
            }
            if case .int = best { return best }
            return .double(bestNumber)
        }
    }

    // MARK: - Custom operators

    private func semVer(_ rule: SemVerRule, _ data: JSONValue?, _ ctx: EvaluationContext, _ ts: Int64) throws(RuleError) -> JSONValue {
        let args = rule.arguments
        guard args.count == 3 else {
            try evaluateUnused(args, from: 0, data, ctx, ts)
            return .null
        }
        // Constant arguments need no evaluating; the others are evaluated before anything is
        // decided, as JsonLogic evaluates every argument.
        let a = rule.leftIsConstant ? .null : try eval(argument(args, 0), data, ctx, ts)
        let o = rule.comparisonIsConstant ? .null : try eval(argument(args, 1), data, ctx, ts)
        let b = rule.rightIsConstant ? .null : try eval(argument(args, 2), data, ctx, ts)
        guard rule.constantsAreValid else { return .null }
        let op: SemVerOperator
        if rule.comparisonIsConstant {
            op = rule.comparison
        } else {
            guard case .string(let s) = o, let c = SemVerOperator(rawValue: s) else { return .null }
            op = c
        }
        switch (rule.leftIsConstant, rule.rightIsConstant) {
        case (true, true):
            return .bool(SemanticVersion.evaluate(rule.left, op, rule.right))
        case (false, true):
            guard let left = SemanticVersion(semVerOperand: a) else { return .null }
            return .bool(SemanticVersion.evaluate(left, op, rule.right))
        case (true, false):
            guard let right = SemanticVersion(semVerOperand: b) else { return .null }
            return .bool(SemanticVersion.evaluate(rule.left, op, right))
        case (false, false):
            guard let left = SemanticVersion(semVerOperand: a), let right = SemanticVersion(semVerOperand: b) else {
                return .null
            }
            return .bool(SemanticVersion.evaluate(left, op, right))
        }
    }

    /// What `fractional` chose.
    enum FractionalSelection {
        /// Null: bad input.
        case none
        /// A bucket of a constant table.
        case bucket(FractionalRule.BucketTable, Int)
        /// The variant value of a computed bucket.
        case value(JSONValue)
    }

    func select(_ rule: FractionalRule, _ data: JSONValue?, _ ctx: EvaluationContext, _ ts: Int64) throws(RuleError) -> FractionalSelection {
        let args = rule.arguments
        guard !args.isEmpty else { return .none }
        var hasher: MurmurHash3
        let start: Int
        if case .cat(let pieces) = nodes[argument(args, 0)] {
            // The recommended explicit form, `cat` of flag key and an attribute: hash the pieces
            // as they come instead of building the concatenated string.
            hasher = try hashConcatenation(pieces, rule.algorithm, data, ctx, ts)
            return try buckets(rule, from: 1, first: .null, hash: hasher.finalize(), data, ctx, ts)
        }
        let first = try eval(argument(args, 0), data, ctx, ts)
        switch rule.algorithm {
        case .v3:
            if case .array = first {
                guard let h = shorthandHasher(rule, data, ctx) else { return try discard(args, from: 1, data, ctx, ts) }
                hasher = h
                start = 0
            } else {
                if first.isNull { return try discard(args, from: 1, data, ctx, ts) }
                hasher = MurmurHash3()
                DeterministicCBOR.encode(first, into: &hasher)
                start = 1
            }
        case .v2:
            if case .string(let s) = first {
                hasher = MurmurHash3()
                hasher.combine(utf8Of: s)
                start = 1
            } else {
                start = first.isNull ? 1 : 0
                guard let h = shorthandHasher(rule, data, ctx) else { return try discard(args, from: 1, data, ctx, ts) }
                hasher = h
            }
        }
        return try buckets(rule, from: start, first: first, hash: hasher.finalize(), data, ctx, ts)
    }

    /// Picks the bucket for `hash` from arguments `start…` (`first` is argument 0, evaluated).
    private func buckets(
        _ rule: FractionalRule, from start: Int, first: JSONValue, hash: UInt32, _ data: JSONValue?,
        _ ctx: EvaluationContext, _ ts: Int64
    ) throws(RuleError) -> FractionalSelection {
        let args = rule.arguments
        switch start == 0 ? rule.fromFirst : rule.afterFirst {
        case .invalid:
            return .none
        case .table(let table):
            return .bucket(table, table.bucket(for: hash))
        case .computed:
            var buckets: [JSONValue] = []
            buckets.reserveCapacity(Int(args.count) - start)
            for i in start..<Int(args.count) {
                buckets.append(i == 0 ? first : try eval(argument(args, i), data, ctx, ts))
            }
            guard let table = FractionalRule.parseBuckets(buckets[...], algorithm: rule.algorithm) else { return .none }
            return .value(table.variants[table.bucket(for: hash)])
        }
    }

    /// The hash of the string `cat` would build from `pieces` (as a CBOR text string for v3),
    /// computed from the pieces in place.
    private func hashConcatenation(
        _ pieces: Arguments, _ algorithm: FractionalAlgorithm, _ data: JSONValue?, _ ctx: EvaluationContext, _ ts: Int64
    ) throws(RuleError) -> MurmurHash3 {
        let count = Int(pieces.count)
        let result: Result<MurmurHash3, RuleError> = withUnsafeTemporaryAllocation(of: JSONValue.self, capacity: count) { buffer in
            var initialized = 0
            defer { buffer.baseAddress!.deinitialize(count: initialized) }
            var length = 0
            for i in 0..<count {
                let value: JSONValue
                do throws(RuleError) {
                    value = try eval(argument(pieces, i), data, ctx, ts)
                } catch {
                    return .failure(error)
                }
                let piece: JSONValue
                switch value {
                case .string: piece = value
                default: piece = .string(value.jsJoinString)
                }
                if case .string(let s) = piece { length += s.utf8.count }
                (buffer.baseAddress! + i).initialize(to: piece)
                initialized += 1
            }
            var hasher = MurmurHash3()
            if algorithm == .v3 { DeterministicCBOR.writeHeader(major: 3, UInt64(length), into: &hasher) }
            for i in 0..<count {
                if case .string(let s) = buffer[i] { hasher.combine(utf8Of: s) }
            }
            return .success(hasher)
        }
        return try result.get()
    }

    /// Evaluates the remaining arguments (for their errors) and gives null.
    private func discard(
        _ args: Arguments, from start: Int, _ data: JSONValue?, _ ctx: EvaluationContext, _ ts: Int64
    ) throws(RuleError) -> FractionalSelection {
        try evaluateUnused(args, from: start, data, ctx, ts)
        return .none
    }

    /// The hasher fed with the shorthand input for the flag and targeting key in scope, or nil when
    /// there is no usable (non-empty string) targeting key.
    private func shorthandHasher(_ rule: FractionalRule, _ data: JSONValue?, _ ctx: EvaluationContext) -> MurmurHash3? {
        if data == nil, let key = ctx.targetingKey {
            // The usual case: the flag's own key, already hashed.
            guard !key.isEmpty else { return nil }
            var hasher = rule.shorthandPrefix
            feedShorthand(key, rule.algorithm, &hasher)
            return hasher
        }
        let tk: JSONValue?
        let flagKey: String
        if let data {
            tk = data["targetingKey"]
            if case .string(let k)? = data["$flagd"]?["flagKey"] { flagKey = k } else { flagKey = "" }
        } else {
            tk = targetingKey(ctx)
            flagKey = self.flagKey
        }
        guard case .string(let key)? = tk, !key.isEmpty else { return nil }
        var hasher: MurmurHash3
        if flagKey == rule.flagKey {
            hasher = rule.shorthandPrefix
        } else {
            hasher = MurmurHash3()
            switch rule.algorithm {
            case .v3:
                hasher.combine(0x82)
                DeterministicCBOR.writeText(flagKey, into: &hasher)
            case .v2:
                hasher.combine(utf8Of: flagKey)
            }
        }
        feedShorthand(key, rule.algorithm, &hasher)
        return hasher
    }

    @inline(__always)
    private func feedShorthand(_ targetingKey: String, _ algorithm: FractionalAlgorithm, _ hasher: inout MurmurHash3) {
        switch algorithm {
        case .v3: DeterministicCBOR.writeText(targetingKey, into: &hasher)
        case .v2: hasher.combine(utf8Of: targetingKey)
        }
    }
}
