/// The `fractional` operator (NOTES.md §4.1), compiled: the hash state of the flag key is
/// precomputed for the shorthand form, and constant bucket lists become a table of cumulative
/// weights, so the usual split hashes the targeting key and walks a short array.
///
/// * v3 (the default; `openfeature-flagd-core` 2.0.0): the hash input is the deterministic CBOR of
///   the bucketing value, or of `[flagKey, targetingKey]` in the shorthand form. A null bucketing
///   value, a missing, empty or non-string targeting key, a bucket that is not a 1–2 element array,
///   or a weight that is not an integer → null.
/// * v2 (flagd Go): a string bucketing value is hashed as UTF-8, otherwise `flagKey + targetingKey`
///   (a null first argument is skipped). Variants must be strings, booleans, numbers or null;
///   weights may be integral floats.
///
/// Both: negative weights count as 0, a total above 2³¹-1 or of 0 gives null, and the bucket is
/// `(hash × total) >> 32` walked over the cumulative weights.
final class FractionalRule: Sendable {
    /// The largest total weight (Int32.max).
    static let maximumTotalWeight: Int64 = 2_147_483_647

    let algorithm: FractionalAlgorithm
    let arguments: RuleProgram.Arguments
    /// The hasher after the flag-key part of the shorthand input: `0x82` + CBOR text of the flag
    /// key (v3), or the flag key's bytes (v2).
    let shorthandPrefix: MurmurHash3
    /// The flag key the prefix was computed for.
    let flagKey: String
    /// The buckets when arguments 1… are all constants.
    let afterFirst: ConstantBuckets
    /// The buckets when arguments 0… are all constants.
    let fromFirst: ConstantBuckets

    /// Buckets decided at compile time, or not.
    enum ConstantBuckets: Sendable {
        /// Some bucket is computed: parse at evaluation time.
        case computed
        /// Constant, and unusable: the operator gives null.
        case invalid
        case table(BucketTable)
    }

    /// A parsed bucket list.
    final class BucketTable: Sendable {
        let variants: [JSONValue]
        /// Cumulative weights: bucket `i` holds hash slots `ends[i-1] ..< ends[i]`.
        let ends: [UInt64]
        let total: UInt64
        /// For each bucket, the index of the flag variant its value names (-1: none), when the
        /// operator is in result position of a flag.
        let variantIndexes: [Int32]?

        init(variants: [JSONValue], ends: [UInt64], total: UInt64, variantIndexes: [Int32]?) {
            self.variants = variants
            self.ends = ends
            self.total = total
            self.variantIndexes = variantIndexes
        }

        /// The bucket a hash falls in.
        @inline(__always)
        func bucket(for hash: UInt32) -> Int {
            let slot = (UInt64(hash) &* total) >> 32
            var i = 0
            let n = ends.count
            while i < n {
                if slot < ends[i] { return i }
                i += 1
            }
            return n - 1
        }

        func withVariantIndexes(_ index: (JSONValue) -> Int32?) -> BucketTable {
            BucketTable(variants: variants, ends: ends, total: total, variantIndexes: variants.map { index($0) ?? -1 })
        }
    }

    /// Compiles the operator.
    ///
    /// - Parameters:
    ///   - arguments: The argument nodes.
    ///   - constants: Each argument's value when it is a constant, else nil.
    init(algorithm: FractionalAlgorithm, arguments: RuleProgram.Arguments, constants: [JSONValue?], flagKey: String) {
        self.algorithm = algorithm
        self.arguments = arguments
        self.flagKey = flagKey
        var prefix = MurmurHash3()
        switch algorithm {
        case .v3:
            prefix.combine(0x82)
            DeterministicCBOR.writeText(flagKey, into: &prefix)
        case .v2:
            prefix.combine(utf8Of: flagKey)
        }
        shorthandPrefix = prefix
        func decide(_ values: ArraySlice<JSONValue?>) -> ConstantBuckets {
            var known: [JSONValue] = []
            for v in values {
                guard let v else { return .computed }
                known.append(v)
            }
            guard let table = FractionalRule.parseBuckets(known[...], algorithm: algorithm) else { return .invalid }
            return .table(table)
        }
        afterFirst = constants.isEmpty ? .invalid : decide(constants[1...])
        fromFirst = decide(constants[...])
    }

    private init(copying other: FractionalRule, afterFirst: ConstantBuckets, fromFirst: ConstantBuckets) {
        algorithm = other.algorithm
        arguments = other.arguments
        shorthandPrefix = other.shorthandPrefix
        flagKey = other.flagKey
        self.afterFirst = afterFirst
        self.fromFirst = fromFirst
    }

    /// A copy whose constant buckets know the flag variant each value names, so a hit in result
    /// position needs no name lookup.
    func withVariantIndexes(_ index: (JSONValue) -> Int32?) -> FractionalRule {
        func map(_ buckets: ConstantBuckets) -> ConstantBuckets {
            guard case .table(let t) = buckets else { return buckets }
            return .table(t.withVariantIndexes(index))
        }
        return FractionalRule(copying: self, afterFirst: map(afterFirst), fromFirst: map(fromFirst))
    }

    /// Parses evaluated bucket arguments; nil when they make the operator give null.
    static func parseBuckets(_ buckets: ArraySlice<JSONValue>, algorithm: FractionalAlgorithm) -> BucketTable? {
        var variants: [JSONValue] = []
        var ends: [UInt64] = []
        variants.reserveCapacity(buckets.count)
        ends.reserveCapacity(buckets.count)
        var total: Int64 = 0
        for bucket in buckets {
            guard case .array(let pair) = bucket, pair.count == 1 || pair.count == 2 else { return nil }
            let variant = pair[0]
            if algorithm == .v2 {
                switch variant {
                case .string, .bool, .int, .double, .null: break
                case .array, .object: return nil
                }
            }
            var weight: Int64 = 1
            if pair.count == 2 {
                switch pair[1] {
                case .int(let w):
                    weight = w
                case .double(let w) where algorithm == .v2:
                    guard w.isFinite, w == w.rounded(.towardZero) else { return nil }
                    guard w <= Double(maximumTotalWeight) else { return nil }
                    weight = w < 0 ? 0 : Int64(w)
                default:
                    return nil
                }
            }
            weight = max(0, weight)
            if weight > maximumTotalWeight { return nil }
            total += weight
            if total > maximumTotalWeight { return nil }
            variants.append(variant)
            ends.append(UInt64(total))
        }
        guard total > 0 else { return nil }
        return BucketTable(variants: variants, ends: ends, total: UInt64(total), variantIndexes: nil)
    }
}
