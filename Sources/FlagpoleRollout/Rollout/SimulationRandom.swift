import FlagpoleCore

/// A small, fast, seeded pseudo-random generator (xoshiro256**, seeded through SplitMix64), so a
/// simulation with the same seed gives the same numbers on every platform and Swift version —
/// which `SystemRandomNumberGenerator` does not promise. Not for anything secret.
package struct SimulationRandom: RandomNumberGenerator, Sendable, Hashable {
    private var s0: UInt64, s1: UInt64, s2: UInt64, s3: UInt64

    /// A generator whose whole sequence is fixed by `seed`.
    package init(seed: UInt64) {
        var x = seed
        s0 = Self.splitMix(&x)
        s1 = Self.splitMix(&x)
        s2 = Self.splitMix(&x)
        s3 = Self.splitMix(&x)
    }

    /// SplitMix64: the next output for a state that advances by the golden-ratio constant.
    static func splitMix(_ state: inout UInt64) -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// The next 64 random bits.
    package mutating func next() -> UInt64 {
        let result = ((s1 &* 5) << 7 | (s1 &* 5) >> 57) &* 9
        let t = s1 << 17
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = s3 << 45 | s3 >> 19
        return result
    }

    /// A uniform double in (0, 1]: never 0, so its logarithm is finite.
    package mutating func nextOpenUnit() -> Double {
        Double((next() >> 11) + 1) * 0x1p-53
    }

    /// The number of successes in `trials` independent trials that each succeed with
    /// `probability`: exact, by skipping ahead geometric gaps (cost grows with the count drawn,
    /// not with `trials`).
    package mutating func binomial(trials: Int, probability: Double) -> Int {
        guard trials > 0, probability > 0 else { return 0 }
        if probability >= 1 { return trials }
        if probability > 0.5 { return trials - binomial(trials: trials, probability: 1 - probability) }
        let logMiss = RolloutMath.log(1 - probability)
        var count = 0
        var position = 0
        while true {
            // The gap before the next success is geometric: ⌊ln U / ln(1 − p)⌋ misses.
            let gap = RolloutMath.log(nextOpenUnit()) / logMiss
            guard gap < Double(trials - position) else { return count }
            position += Int(gap) + 1
            if position > trials { return count }
            count += 1
        }
    }

    /// A Poisson draw with the given mean: by multiplication of uniforms below a mean of 10, else by
    /// Hörmann's transformed rejection (PTRS, 1993) — exact at every mean.
    package mutating func poisson(mean: Double) -> Int {
        guard mean > 0, mean.isFinite else { return 0 }
        if mean < 10 {
            let limit = RolloutMath.exp(-mean)
            var k = 0
            var p = nextOpenUnit()
            while p > limit {
                k += 1
                p *= nextOpenUnit()
            }
            return k
        }
        let root = mean.squareRoot()
        let logMean = RolloutMath.log(mean)
        let b = 0.931 + 2.53 * root
        let a = -0.059 + 0.02483 * b
        let inverseAlpha = 1.1239 + 1.1328 / (b - 3.4)
        let vr = 0.9277 - 3.6224 / (b - 2)
        while true {
            let u = nextOpenUnit() - 0.5
            let v = nextOpenUnit()
            let us = 0.5 - abs(u)
            let k = ((2 * a / us + b) * u + mean + 0.43).rounded(.down)
            if us >= 0.07 && v <= vr { return Int(k) }
            if k < 0 || (us < 0.013 && v > us) { continue }
            if RolloutMath.log(v) + RolloutMath.log(inverseAlpha) - RolloutMath.log(a / (us * us) + b)
                <= -mean + k * logMean - RolloutMath.logFactorial(k)
            {
                return Int(k)
            }
        }
    }
}
