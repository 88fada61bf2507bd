/// Calendar arithmetic on the proleptic Gregorian calendar, without Foundation: enough for freeze
/// windows (whose time zones are FlagpoleRollout's `ZoneRules`) and flag expiry dates.
package enum CivilTime {
    /// Days from 1970-01-01 to the given date (Howard Hinnant's `days_from_civil`).
    package static func days(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    /// The date of a day count from 1970-01-01 (Howard Hinnant's `civil_from_days`).
    package static func civil(days: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    package static func isLeap(_ year: Int64) -> Bool { (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 }

    package static func daysIn(month: Int64, year: Int64) -> Int64 {
        switch month {
        case 2: return isLeap(year) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Parses an RFC 3339 timestamp with a required offset (`2026-12-24T18:00:00Z`,
    /// `2026-12-24 18:00+01:00`; seconds optional, fractions ignored) into Unix seconds.
    package static func parseTimestamp(_ text: String) -> Int64? {
        let s = Array(text.trimmingSpaces().unicodeScalars)
        var i = 0
        func number(_ count: Int) -> Int64? {
            guard i + count <= s.count else { return nil }
            var v: Int64 = 0
            for c in s[i..<i + count] {
                guard let d = Int64(String(c)), ("0"..."9").contains(c) else { return nil }
                v = v * 10 + d
            }
            i += count
            return v
        }
        func expect(_ c: Unicode.Scalar) -> Bool {
            guard i < s.count, s[i] == c else { return false }
            i += 1
            return true
        }
        guard let year = number(4), expect("-"), let month = number(2), expect("-"), let day = number(2),
            (1...12).contains(month), day >= 1, day <= daysIn(month: month, year: year)
        else { return nil }
        guard i < s.count, s[i] == "T" || s[i] == "t" || s[i] == " " else { return nil }
        i += 1
        guard let hour = number(2), expect(":"), let minute = number(2), hour < 24, minute < 60 else { return nil }
        var second: Int64 = 0
        if expect(":") {
            guard let sec = number(2), sec < 60 else { return nil }
            second = sec
            if expect(".") {
                let start = i
                while i < s.count, ("0"..."9").contains(s[i]) { i += 1 }
                guard i > start else { return nil }
            }
        }
        guard let offset = parseOffset(String(String.UnicodeScalarView(s[i...]))), i < s.count else { return nil }
        return days(year: year, month: month, day: day) * 86_400 + hour * 3_600 + minute * 60 + second - Int64(offset)
    }

    /// Parses a UTC offset: `UTC`, `Z`, `+01:00`, `-05:30`, `+0100`, `+01`; returns seconds east of UTC.
    package static func parseOffset(_ text: String) -> Int? {
        let t = text.trimmingSpaces()
        if t == "Z" || t == "z" || t.uppercased() == "UTC" || t.uppercased() == "GMT" { return 0 }
        var body = t
        for prefix in ["UTC", "GMT"] where body.uppercased().hasPrefix(prefix) { body = String(body.dropFirst(3)) }
        guard let sign = body.first, sign == "+" || sign == "-" else { return nil }
        let digits = body.dropFirst().filter { $0 != ":" }
        guard digits.allSatisfy({ $0.isASCII && $0.isNumber }), digits.count == 2 || digits.count == 4,
            let hours = Int(digits.prefix(2)), let minutes = Int(digits.count == 4 ? String(digits.suffix(2)) : "0"),
            hours <= 14, minutes < 60
        else { return nil }
        let seconds = hours * 3_600 + minutes * 60
        return sign == "-" ? -seconds : seconds
    }

    /// Parses a calendar date `YYYY-MM-DD` into days since 1970-01-01.
    package static func parseDate(_ text: String) -> Int64? {
        let t = text.trimmingSpaces()
        let parts = t.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
            parts.allSatisfy({ $0.allSatisfy { $0.isASCII && $0.isNumber } }),
            let y = Int64(parts[0]), let m = Int64(parts[1]), let d = Int64(parts[2]),
            (1...12).contains(m), d >= 1, d <= daysIn(month: m, year: y)
        else { return nil }
        return days(year: y, month: m, day: d)
    }

    /// Parses `HH:MM` (24-hour; `24:00` allowed as the end of a day) into minutes since midnight.
    package static func parseClock(_ text: String) -> Int? {
        let parts = text.trimmingSpaces().split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, (1...2).contains(parts[0].count), parts[1].count == 2,
            let h = Int(parts[0]), let m = Int(parts[1]), h >= 0, m >= 0, m < 60, h < 24 || (h == 24 && m == 0)
        else { return nil }
        return h * 60 + m
    }

    /// The ISO weekday index (Monday 0 … Sunday 6) of a day name: `mon`, `Monday`, `tue`, ….
    package static func weekday(_ name: String) -> Int? {
        let names = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
        let n = name.lowercased()
        guard n.count >= 3 else { return nil }
        return names.firstIndex { $0 == n || ($0.hasPrefix(n) && n.count == 3) }
    }

    package static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
        let q = a / b
        return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
    }

    package static func floorMod(_ a: Int64, _ b: Int64) -> Int64 { a - floorDiv(a, b) * b }
}

extension String {
    /// The text without leading and trailing spaces and tabs.
    package func trimmingSpaces() -> String {
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { $0 != " " && $0 != "\t" }),
            let last = scalars.lastIndex(where: { $0 != " " && $0 != "\t" })
        else { return "" }
        return String(scalars[first...last])
    }
}
