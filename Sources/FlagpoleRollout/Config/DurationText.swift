import FlagpoleCore

/// Durations written the way people write them in config files: `1h`, `30m`, `1h30m`, `90s`,
/// `250ms`, `1.5s`, `2d` (units `ms`, `s`, `m`, `h`, `d`; parts in any order, decimals allowed).
package enum DurationText {
    /// Parses a duration, or returns nil when the text is not one.
    package static func parse(_ text: String) -> Duration? {
        let units: [(String, Int64)] = [
            ("ms", 1_000_000), ("s", 1_000_000_000), ("m", 60_000_000_000), ("h", 3_600_000_000_000),
            ("d", 86_400_000_000_000),
        ]
        var rest = Substring(text.trimmingSpaces())
        guard !rest.isEmpty else { return nil }
        var total: Int64 = 0
        while !rest.isEmpty {
            let number = rest.prefix(while: { $0.isASCII && ($0.isNumber || $0 == ".") })
            guard !number.isEmpty, number.filter({ $0 == "." }).count <= 1, number.first != ".", number.last != "."
            else { return nil }
            rest = rest.dropFirst(number.count)
            // "ms" comes before "m" and "s" in `units`, so it wins.
            guard let (unit, scale) = units.first(where: { rest.hasPrefix($0.0) }) else { return nil }
            rest = rest.dropFirst(unit.count)
            let parts = number.split(separator: ".", omittingEmptySubsequences: false)
            guard let whole = Int64(parts[0]) else { return nil }
            var (value, overflow) = whole.multipliedReportingOverflow(by: scale)
            guard !overflow else { return nil }
            if parts.count == 2 {
                var fraction: Int64 = 0
                var divisor: Int64 = 1
                for digit in parts[1].prefix(9) {
                    fraction = fraction * 10 + Int64(digit.wholeNumberValue!)
                    divisor *= 10
                }
                value += fraction * (scale / divisor) + (fraction * (scale % divisor)) / divisor
            }
            (total, overflow) = total.addingReportingOverflow(value)
            guard !overflow else { return nil }
        }
        return .nanoseconds(total)
    }

    /// The shortest text for a duration that ``parse(_:)`` reads back: `1h30m`, `250ms`, `0s`.
    package static func format(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        var nanos = seconds * 1_000_000_000 + attoseconds / 1_000_000_000
        if nanos == 0 { return "0s" }
        var out = nanos < 0 ? "-" : ""
        nanos = abs(nanos)
        for (unit, scale) in [("h", Int64(3_600_000_000_000)), ("m", 60_000_000_000), ("s", 1_000_000_000), ("ms", 1_000_000)] {
            if nanos >= scale {
                out += String(nanos / scale) + unit
                nanos %= scale
            }
        }
        if nanos > 0 { out += String(nanos) + "ns" }
        return out
    }
}
