/// What one evaluation of a rule sees: the caller's context and the values flagd injects
/// (`targetingKey`, `$flagd.flagKey`, `$flagd.timestamp`). The merged context object is never
/// built unless a rule asks for the whole data; `var` reads the injected keys first, then the
/// caller's attributes.
struct RuleEnvironment {
    let context: EvaluationContext
    let flagKey: String
    /// Unix seconds, read once per evaluation and only for rules that use it.
    let timestamp: Int64

    /// The outcome of a rule in result position.
    enum Outcome {
        /// A value to map to a variant name.
        case value(JSONValue)
        /// A variant already identified at compile time.
        case variant(Int)
    }

    /// Evaluates a flag's targeting rule, short-cutting constant results that name a variant.
    func evaluateResult(_ node: RuleNode) throws(RuleError) -> Outcome {
        switch node {
        case .variant(_, let index):
            return .variant(index)
        case .condition(let nodes):
            var i = 0
            let n = nodes.count
            while i + 1 < n {
                if try evaluate(nodes[i], nil).isTruthy { return try evaluateResult(nodes[i + 1]) }
                i += 2
            }
            return i < n ? try evaluateResult(nodes[i]) : .value(.null)
        case .fractional(let rule):
            switch try select(rule, nil) {
            case .none:
                return .value(.null)
            case .value(let v):
                return .value(v)
            case .bucket(let table, let i):
                if let indexes = table.variantIndexes, indexes[i] >= 0 { return .variant(indexes[i]) }
                return .value(table.variants[i])
            }
        default:
            return .value(try evaluate(node, nil))
        }
    }

    // MARK: - Data

    /// The merged context, as JsonLogic would see it: attributes, `targetingKey`, `$flagd`.
    var rootObject: JSONValue {
        var o = context.attributes
        if let tk = context.targetingKey { o["targetingKey"] = .string(tk) }
        o["$flagd"] = flagdObject
        return .object(o)
    }

    private var flagdObject: JSONValue {
        .object(["flagKey": .string(flagKey), "timestamp": .int(timestamp)])
    }

    /// The targeting key as rules see it: the OpenFeature one, else a `targetingKey` attribute.
    @inline(__always)
    var targetingKeyValue: JSONValue? {
        if let tk = context.targetingKey { return .string(tk) }
        return context.attributes["targetingKey"]
    }

    /// Resolves a `var` path against the data (`nil`: the root context); nil when it is undefined.
    @inline(__always)
    func resolve(_ path: VariablePath, _ data: JSONValue?) -> JSONValue? {
        guard data == nil else {
            if case .whole = path.head { return data }
            return VariablePath.walk(data!, path.components[...])
        }
        let base: JSONValue?
        switch path.head {
        case .whole: return rootObject
        case .attribute(let name): base = context.attributes[name]
        case .targetingKey: base = targetingKeyValue
        case .flagKey: base = .string(flagKey)
        case .timestamp: base = .int(timestamp)
        case .flagd: base = flagdObject
        }
        guard let b = base else { return nil }
        return path.rest.isEmpty ? b : VariablePath.walk(b, path.rest)
    }

    private func resolve(key: JSONValue, _ data: JSONValue?) -> JSONValue? {
        switch key {
        case .null: return resolve(VariablePath(""), data)
        case .string(let s): return resolve(VariablePath(s), data)
        default: return resolve(VariablePath(key.jsString), data)
        }
    }

    // MARK: - Evaluation

    @inline(__always)
    private func argument(_ nodes: [RuleNode], _ i: Int, _ data: JSONValue?, missing: JSONValue = .null) throws(RuleError) -> JSONValue {
        i < nodes.count ? try evaluate(nodes[i], data) : missing
    }

    /// Evaluates arguments an operator ignores, because JsonLogic evaluates every argument and an
    /// unknown operator among them is still an error.
    @inline(__always)
    private func evaluateUnused(_ nodes: [RuleNode], from start: Int, _ data: JSONValue?) throws(RuleError) {
        var i = start
        while i < nodes.count {
            if case .literal = nodes[i] {} else { _ = try evaluate(nodes[i], data) }
            i += 1
        }
    }

    /// Evaluates a rule with `data` as the scope of `var` (`nil`: the root context).
    func evaluate(_ node: RuleNode, _ data: JSONValue?) throws(RuleError) -> JSONValue {
        switch node {
        case .literal(let v), .variant(let v, _):
            return v

        case .array(let nodes):
            var out: [JSONValue] = []
            out.reserveCapacity(nodes.count)
            for n in nodes { out.append(try evaluate(n, data)) }
            return .array(out)

        case .variable(let path, let fallback, let rest):
            if !rest.isEmpty { try evaluateUnused(rest, from: 0, data) }
            if let v = resolve(path, data) { return v }
            return try fallback.map { n throws(RuleError) in try evaluate(n, data) } ?? .null

        case .dynamicVariable(let keyNode, let fallback, let rest):
            let key = try keyNode.map { n throws(RuleError) in try evaluate(n, data) } ?? .null
            if !rest.isEmpty { try evaluateUnused(rest, from: 0, data) }
            if let v = resolve(key: key, data) { return v }
            return try fallback.map { n throws(RuleError) in try evaluate(n, data) } ?? .null

        case .missing(let nodes):
            return .array(try missingKeys(nodes, data))

        case .missingSome(let nodes):
            let need = try argument(nodes, 0, data)
            let options = try argument(nodes, 1, data)
            try evaluateUnused(nodes, from: 2, data)
            guard case .array(let keys) = options else { return .array([]) }
            let missing = try missingKeys([.literal(options)], data)
            if Double(keys.count - missing.count) >= need.jsNumber { return .array([]) }
            return .array(missing)

        case .condition(let nodes):
            var i = 0
            let n = nodes.count
            while i + 1 < n {
                if try evaluate(nodes[i], data).isTruthy { return try evaluate(nodes[i + 1], data) }
                i += 2
            }
            return i < n ? try evaluate(nodes[i], data) : .null

        case .equality(let op, let nodes):
            let a = try argument(nodes, 0, data)
            let b = try argument(nodes, 1, data)
            try evaluateUnused(nodes, from: 2, data)
            switch op {
            case .equal: return .bool(JSONValue.looseEquals(a, b))
            case .notEqual: return .bool(!JSONValue.looseEquals(a, b))
            case .strictEqual: return .bool(JSONValue.strictEquals(a, b))
            case .strictNotEqual: return .bool(!JSONValue.strictEquals(a, b))
            }

        case .comparison(let op, let nodes):
            // A missing operand is `undefined`, which compares as NaN.
            let a = try argument(nodes, 0, data, missing: .double(.nan))
            let b = try argument(nodes, 1, data, missing: .double(.nan))
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
                if nodes.count >= 3 {
                    // The "between" form.
                    let c = try evaluate(nodes[2], data)
                    try evaluateUnused(nodes, from: 3, data)
                    return .bool(holds(a, b) && holds(b, c))
                }
                return .bool(holds(a, b))
            case .greater, .greaterOrEqual:
                try evaluateUnused(nodes, from: 2, data)
                switch JSONValue.jsCompare(a, b) {
                case .greater: return .bool(true)
                case .equal: return .bool(op == .greaterOrEqual)
                case .less, .unordered: return .bool(false)
                }
            }

        case .truthiness(let negated, let nodes):
            let v = try argument(nodes, 0, data)
            try evaluateUnused(nodes, from: 1, data)
            return .bool(v.isTruthy != negated)

        case .and(let nodes):
            var current = JSONValue.null
            for n in nodes {
                current = try evaluate(n, data)
                if !current.isTruthy { return current }
            }
            return current

        case .or(let nodes):
            var current = JSONValue.null
            for n in nodes {
                current = try evaluate(n, data)
                if current.isTruthy { return current }
            }
            return current

        case .arithmetic(let op, let nodes):
            return try arithmetic(op, nodes, data)

        case .cat(let nodes):
            var out = ""
            for n in nodes {
                switch try evaluate(n, data) {
                case .string(let s): out += s
                case let v: out += v.jsJoinString
                }
            }
            return .string(out)

        case .substr(let nodes):
            let source = try argument(nodes, 0, data).jsString
            let start = try argument(nodes, 1, data).jsNumber
            let length: Double? = nodes.count > 2 ? try evaluate(nodes[2], data).jsNumber : nil
            try evaluateUnused(nodes, from: 3, data)
            return .string(JSONValue.substring(source, start: start, length: length))

        case .contains(let nodes):
            let needle = try argument(nodes, 0, data)
            let haystack = try argument(nodes, 1, data)
            try evaluateUnused(nodes, from: 2, data)
            switch haystack {
            case .string(let s): return .bool(JSONValue.utf8Contains(s, needle.jsString))
            case .array(let a): return .bool(a.contains { JSONValue.strictEquals($0, needle) })
            default: return .bool(false)
            }

        case .merge(let nodes):
            var out: [JSONValue] = []
            for n in nodes {
                switch try evaluate(n, data) {
                case .array(let a): out.append(contentsOf: a)
                case let v: out.append(v)
                }
            }
            return .array(out)

        case .iteration(let op, let source, let logic, let rest):
            let items = try source.map { n throws(RuleError) in try evaluate(n, data) } ?? .null
            if !rest.isEmpty { try evaluateUnused(rest, from: 0, data) }
            guard case .array(let array) = items else {
                switch op {
                case .map, .filter: return .array([])
                case .all, .some: return .bool(false)
                case .none: return .bool(true)
                }
            }
            func apply(_ item: JSONValue) throws(RuleError) -> JSONValue {
                guard let logic else { return .null }
                return try evaluate(logic, item)
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

        case .reduce(let nodes):
            let items = try argument(nodes, 0, data)
            let initial = nodes.count > 2 ? try evaluate(nodes[2], data) : .null
            try evaluateUnused(nodes, from: 3, data)
            guard case .array(let array) = items else { return initial }
            var accumulator = initial
            for item in array {
                guard nodes.count > 1 else {
                    accumulator = .null
                    continue
                }
                accumulator = try evaluate(nodes[1], .object(["current": item, "accumulator": accumulator]))
            }
            return accumulator

        case .stringAffix(let suffix, let nodes):
            guard nodes.count == 2 else {
                try evaluateUnused(nodes, from: 0, data)
                return .null
            }
            guard case .string(let s) = try evaluate(nodes[0], data) else {
                _ = try evaluate(nodes[1], data)
                return .null
            }
            guard case .string(let affix) = try evaluate(nodes[1], data) else { return .null }
            return .bool(suffix ? JSONValue.utf8HasSuffix(s, affix) : JSONValue.utf8HasPrefix(s, affix))

        case .semVer(let rule):
            return try semVer(rule, data)

        case .fractional(let rule):
            switch try select(rule, data) {
            case .none: return .null
            case .value(let v): return v
            case .bucket(let table, let i): return table.variants[i]
            }

        case .unknownOperator(let name):
            throw RuleError(message: "unrecognized operation \(name)")
        }
    }

    private func missingKeys(_ nodes: [RuleNode], _ data: JSONValue?) throws(RuleError) -> [JSONValue] {
        var keys: [JSONValue] = []
        for (i, n) in nodes.enumerated() {
            let v = try evaluate(n, data)
            if i == 0, case .array(let a) = v {
                keys = a
                try evaluateUnused(nodes, from: 1, data)
                break
            }
            keys.append(v)
        }
        var missing: [JSONValue] = []
        for key in keys {
            switch resolve(key: key, data) {
            case nil, .null?, .string("")?: missing.append(key)
            default: break
            }
        }
        return missing
    }

    // MARK: - Arithmetic

    private func arithmetic(_ op: RuleNode.ArithmeticOperator, _ nodes: [RuleNode], _ data: JSONValue?) throws(RuleError) -> JSONValue {
        switch op {
        case .add, .multiply:
            if op == .multiply && nodes.isEmpty { return .null }
            var intResult: Int64 = op == .add ? 0 : 1
            var doubleResult = Double(intResult)
            var exact = true
            for n in nodes {
                let v = try evaluate(n, data)
                if exact, case .int(let i) = v {
                    let (r, overflow) = op == .add ? intResult.addingReportingOverflow(i) : intResult.multipliedReportingOverflow(by: i)
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
            let a = try argument(nodes, 0, data, missing: .double(.nan))
            if nodes.count < 2 {
                if case .int(let i) = a, i != .min { return .int(-i) }
                return .double(-a.jsNumber)
            }
            let b = try evaluate(nodes[1], data)
            try evaluateUnused(nodes, from: 2, data)
            if case .int(let x) = a, case .int(let y) = b {
                let (r, overflow) = x.subtractingReportingOverflow(y)
                if !overflow { return .int(r) }
            }
            return .double(a.jsNumber - b.jsNumber)

        case .divide:
            let a = try argument(nodes, 0, data, missing: .double(.nan))
            let b = try argument(nodes, 1, data, missing: .double(.nan))
            try evaluateUnused(nodes, from: 2, data)
            return .double(a.jsNumber / b.jsNumber)

        case .modulo:
            let a = try argument(nodes, 0, data, missing: .double(.nan))
            let b = try argument(nodes, 1, data, missing: .double(.nan))
            try evaluateUnused(nodes, from: 2, data)
            if case .int(let x) = a, case .int(let y) = b, y != 0 {
                return .int(y == -1 ? 0 : x % y)
            }
            return .double(a.jsNumber.truncatingRemainder(dividingBy: b.jsNumber))

        case .min, .max:
            guard !nodes.isEmpty else { return .null }
            var best: JSONValue = .null
            var bestNumber = 0.0
            for (i, n) in nodes.enumerated() {
                let v = try evaluate(n, data)
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

    private func semVer(_ rule: SemVerRule, _ data: JSONValue?) throws(RuleError) -> JSONValue {
        let nodes = rule.arguments
        guard nodes.count == 3 else {
            try evaluateUnused(nodes, from: 0, data)
            return .null
        }
        let a = try evaluate(nodes[0], data)
        let o = try evaluate(nodes[1], data)
        let b = try evaluate(nodes[2], data)
        let left: SemanticVersion
        switch rule.left {
        case .constant(let v): left = v
        case .invalid: return .null
        case .computed:
            guard let v = SemanticVersion(semVerOperand: a) else { return .null }
            left = v
        }
        let right: SemanticVersion
        switch rule.right {
        case .constant(let v): right = v
        case .invalid: return .null
        case .computed:
            guard let v = SemanticVersion(semVerOperand: b) else { return .null }
            right = v
        }
        let op: SemVerOperator
        switch rule.comparison {
        case .constant(let c): op = c
        case .invalid: return .null
        case .computed:
            guard case .string(let s) = o, let c = SemVerOperator(rawValue: s) else { return .null }
            op = c
        }
        return .bool(SemanticVersion.evaluate(left, op, right))
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

    func select(_ rule: FractionalRule, _ data: JSONValue?) throws(RuleError) -> FractionalSelection {
        let nodes = rule.arguments
        guard !nodes.isEmpty else { return .none }
        let first = try evaluate(nodes[0], data)
        var hasher: MurmurHash3
        let start: Int
        switch rule.algorithm {
        case .v3:
            if case .array = first {
                guard let h = shorthandHasher(rule, data) else { return try discard(nodes, from: 1, data) }
                hasher = h
                start = 0
            } else {
                if first.isNull { return try discard(nodes, from: 1, data) }
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
                guard let h = shorthandHasher(rule, data) else { return try discard(nodes, from: 1, data) }
                hasher = h
            }
        }
        let hash = hasher.finalize()
        switch start == 0 ? rule.fromFirst : rule.afterFirst {
        case .invalid:
            return .none
        case .table(let table):
            return .bucket(table, table.bucket(for: hash))
        case .computed:
            var buckets: [JSONValue] = []
            buckets.reserveCapacity(nodes.count - start)
            for i in start..<nodes.count {
                buckets.append(i == 0 ? first : try evaluate(nodes[i], data))
            }
            guard let table = FractionalRule.parseBuckets(buckets[...], algorithm: rule.algorithm) else { return .none }
            return .value(table.variants[table.bucket(for: hash)])
        }
    }

    /// Evaluates the remaining arguments (for their errors) and gives null.
    private func discard(_ nodes: [RuleNode], from start: Int, _ data: JSONValue?) throws(RuleError) -> FractionalSelection {
        try evaluateUnused(nodes, from: start, data)
        return .none
    }

    /// The hasher fed with the shorthand input for the flag and targeting key in scope, or nil when
    /// there is no usable (non-empty string) targeting key.
    private func shorthandHasher(_ rule: FractionalRule, _ data: JSONValue?) -> MurmurHash3? {
        let tk: JSONValue?
        let flagKey: String
        if let data {
            tk = VariablePath.walk(data, [VariablePath.Component(key: "targetingKey")])
            if case .string(let k)? = VariablePath.walk(data, [.init(key: "$flagd"), .init(key: "flagKey")]) {
                flagKey = k
            } else {
                flagKey = ""
            }
        } else {
            tk = targetingKeyValue
            flagKey = self.flagKey
        }
        guard case .string(let key)? = tk, !key.isEmpty else { return nil }
        var hasher: MurmurHash3
        if flagKey != rule.flagKey {
            hasher = MurmurHash3()
            switch rule.algorithm {
            case .v3:
                hasher.combine(0x82)
                DeterministicCBOR.writeText(flagKey, into: &hasher)
            case .v2:
                hasher.combine(utf8Of: flagKey)
            }
        } else {
            hasher = rule.shorthandPrefix
        }
        switch rule.algorithm {
        case .v3: DeterministicCBOR.writeText(key, into: &hasher)
        case .v2: hasher.combine(utf8Of: key)
        }
        return hasher
    }
}
