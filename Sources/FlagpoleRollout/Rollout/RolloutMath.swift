import FlagpoleCore

/// The few numeric functions the rollout judge and simulator need, written with the standard
/// library alone (FlagpoleCore imports neither Foundation nor the C library), so a decision is
/// the same number on every platform.
enum RolloutMath {
    static let ln2 = 0.693_147_180_559_945_309_417_232_121_458

    /// The natural logarithm; `-infinity` at 0, NaN below 0. Relative error below 1e-15.
    static func log(_ x: Double) -> Double {
        if x.isNaN || x < 0 { return .nan }
        if x == 0 { return -.infinity }
        if x.isInfinite { return .infinity }
        // x = m · 2^e with m in [1, 2); take m into [√½, √2) so the series below converges fast.
        var e = Double(x.exponent)
        var m = x.significand
        if m > 1.414_213_562_373_095 {
            m /= 2
            e += 1
        }
        // log m = 2 atanh(y), y = (m − 1)/(m + 1), |y| < 0.172.
        let y = (m - 1) / (m + 1)
        let y2 = y * y
        var term = y
        var sum = 0.0
        var k = 1.0
        while true {
            let next = sum + term / k
            if next == sum { break }
            sum = next
            term *= y2
            k += 2
        }
        return 2 * sum + e * ln2
    }

    /// e raised to `x`; 0 below about −745, infinity above about 709.8.
    static func exp(_ x: Double) -> Double {
        if x.isNaN { return .nan }
        if x > 709.78 { return .infinity }
        if x < -745.2 { return 0 }
        // x = k ln 2 + r with |r| ≤ ½ ln 2; e^r by its Taylor series, then scale by 2^k.
        let k = (x / ln2).rounded()
        let r = x - k * ln2
        var term = 1.0
        var sum = 1.0
        var n = 1.0
        while true {
            term *= r / n
            let next = sum + term
            if next == sum { break }
            sum = next
            n += 1
        }
        return scaled(sum, byPowerOfTwo: Int(k))
    }

    /// `x · 2^k`, in two steps when 2^k alone would overflow or underflow.
    private static func scaled(_ x: Double, byPowerOfTwo k: Int) -> Double {
        var result = x
        var k = k
        while k != 0 {
            let step = max(-1000, min(1000, k))
            result *= Double(sign: .plus, exponent: step, significand: 1)
            k -= step
        }
        return result
    }

    /// ln k! for a whole number k ≥ 0: summed below 20, else Stirling's series (error below 1e-12).
    static func logFactorial(_ k: Double) -> Double {
        guard k >= 2 else { return 0 }
        if k < 20 {
            var sum = 0.0
            var i = 2.0
            while i <= k {
                sum += log(i)
                i += 1
            }
            return sum
        }
        let k2 = k * k
        return k * log(k) - k + 0.5 * log(2 * Double.pi * k) + 1 / (12 * k) - 1 / (360 * k * k2) + 1 / (1260 * k2 * k2 * k)
    }

    /// The sine of `x` radians (reduced to ±π, then its Taylor series); for the simulator's drift.
    static func sin(_ x: Double) -> Double {
        guard x.isFinite else { return .nan }
        let twoPi = 2 * Double.pi
        var r = x - (x / twoPi).rounded() * twoPi
        if r > Double.pi { r -= twoPi }
        if r < -Double.pi { r += twoPi }
        var term = r, sum = r, n = 1.0
        while true {
            term *= -r * r / ((n + 1) * (n + 2))
            n += 2
            let next = sum + term
            if next == sum { return sum }
            sum = next
        }
    }

    /// log(e^a + e^b) without overflow.
    static func logAddExp(_ a: Double, _ b: Double) -> Double {
        if a == -.infinity { return b }
        if b == -.infinity { return a }
        let high = max(a, b)
        return high + log(1 + exp(min(a, b) - high))
    }

    /// The standard normal quantile: the z with P(Z ≤ z) = p, for 0 < p < 1 (Acklam's rational
    /// approximation, relative error below 1.2e-9, refined by one Halley step).
    static func normalQuantile(_ p: Double) -> Double {
        precondition(p > 0 && p < 1, "a quantile needs 0 < p < 1")
        let a = [
            -3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02, 1.383577518672690e+02,
            -3.066479806614716e+01, 2.506628277459239e+00,
        ]
        let b = [
            -5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02, 6.680131188771972e+01,
            -1.328068155288572e+01,
        ]
        let c = [
            -7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00, -2.549732539343734e+00,
            4.374664141464968e+00, 2.938163982698783e+00,
        ]
        let d = [7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00]
        let low = 0.02425
        var x: Double
        if p < low {
            let q = (-2 * log(p)).squareRoot()
            x =
                (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5])
                / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
        } else if p <= 1 - low {
            let q = p - 0.5
            let r = q * q
            x =
                (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q
                / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1)
        } else {
            let q = (-2 * log(1 - p)).squareRoot()
            x =
                -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5])
                / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
        }
        let e = normalCDF(x) - p
        let u = e * (2 * Double.pi).squareRoot() * exp(x * x / 2)
        x -= u / (1 + x * u / 2)
        return x
    }

    /// P(Z ≤ x) for a standard normal Z (W. J. Cody's erfc, as in Hart et al., accurate to ~1e-15).
    static func normalCDF(_ x: Double) -> Double {
        let z = abs(x)
        var tail: Double
        if z > 37 {
            tail = 0
        } else {
            let e = exp(-z * z / 2)
            if z < 7.071_067_811_865_47 {
                let n =
                    ((((((0.035_262_496_599_891_1 * z + 0.700_383_064_443_688) * z + 6.373_962_203_531_65) * z
                        + 33.912_866_078_383) * z + 112.079_291_497_871) * z + 221.213_596_169_931) * z
                        + 220.206_867_912_376)
                let d =
                    (((((((0.088_388_347_648_318_4 * z + 1.755_667_163_182_64) * z + 16.064_177_579_207)
                        * z + 86.780_732_202_946_1) * z + 296.564_248_779_674) * z + 637.333_633_378_831) * z
                        + 793.826_512_519_948) * z + 440.413_735_824_752)
                tail = e * n / d
            } else {
                let f = z + 1 / (z + 2 / (z + 3 / (z + 4 / (z + 0.65))))
                tail = e / f / 2.506_628_274_631
            }
        }
        return x > 0 ? 1 - tail : tail
    }
}

/// Short numbers for reasons people read: `3.1%`, `+2.1 pp`, `4.2`. No Foundation formatter.
enum RolloutText {
    /// `x` rounded to `decimals` places, without exponent notation: `fixed(0.0314, 3)` is `0.031`.
    static func fixed(_ x: Double, _ decimals: Int) -> String {
        guard x.isFinite else { return x.isNaN ? "nan" : (x > 0 ? "inf" : "-inf") }
        var scale = 1.0
        for _ in 0..<decimals { scale *= 10 }
        let scaled = (abs(x) * scale).rounded()
        guard scaled < 9e15 else { return String(x) }
        let whole = Int64(scaled)
        var digits = String(whole)
        if decimals > 0 {
            if digits.count <= decimals { digits = String(repeating: "0", count: decimals - digits.count + 1) + digits }
            digits.insert(".", at: digits.index(digits.endIndex, offsetBy: -decimals))
        }
        return (x < 0 && whole != 0 ? "-" : "") + digits
    }

    /// `x` with at most `decimals` places and no trailing zeros: `short(1.0, 2)` is `1`, `short(0.5, 2)` is `0.5`.
    static func short(_ x: Double, _ decimals: Int) -> String {
        var text = fixed(x, decimals)
        if text.contains(".") {
            while text.hasSuffix("0") { text.removeLast() }
            if text.hasSuffix(".") { text.removeLast() }
        }
        return text == "-0" ? "0" : text
    }

    /// A rate as a percentage: `0.031` is `3.1%`; rates that round below 1% get two decimals (`0.45%`).
    static func percent(_ rate: Double) -> String {
        fixed(rate * 100, abs(rate * 100) < 0.95 && rate != 0 ? 2 : 1) + "%"
    }

    /// A difference of rates in percentage points with its sign: `+2.1 pp`; differences that round
    /// below 0.1 pp get two decimals (`-0.05 pp`).
    static func points(_ difference: Double) -> String {
        (difference >= 0 ? "+" : "") + fixed(difference * 100, abs(difference * 100) < 0.095 ? 2 : 1) + " pp"
    }

    /// A count as people write it: whole counts without decimals, Prometheus increases with one.
    static func count(_ x: Double) -> String {
        x == x.rounded() && abs(x) < 1e15 ? String(Int64(x)) : fixed(x, 1)
    }

    /// A duration in whole seconds as `12m30s`, `1h`, `0s`.
    static func duration(_ duration: Duration) -> String {
        let seconds = duration.components.seconds
        return DurationText.format(.seconds(seconds))
    }
}

extension Duration {
    /// The duration in seconds as a `Double`.
    var rolloutSeconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
