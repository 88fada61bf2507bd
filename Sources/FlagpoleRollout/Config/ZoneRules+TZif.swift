import FlagpoleCore

extension ZoneRules {
    /// Why a TZif file or a POSIX TZ rule could not be read.
    package struct FormatError: Error, Sendable, Hashable, CustomStringConvertible {
        /// What is wrong, for people.
        package var message: String

        package init(_ message: String) { self.message = message }

        package var description: String { message }
    }

    /// The largest TZif file read (the biggest zone of the tz database is under 4 KB "fat").
    package static let maxTZifSize = 1 << 20

    /// Reads a zone from the bytes of its TZif file (RFC 8536, versions 1 to 4), e.g.
    /// `/usr/share/zoneinfo/Europe/Berlin`. Every count, index and offset is checked: a file that is
    /// not TZif, truncated or inconsistent throws, never traps.
    ///
    /// Version 2+ files are read from their 64-bit block and their footer rule (the zone's rule after
    /// the last transition); version 1 files from the 32-bit block. Leap-second files (`right/…`)
    /// are refused: Flagpole's clock is POSIX time.
    package static func parseTZif(_ bytes: [UInt8], name: String) throws(FormatError) -> ZoneRules {
        guard bytes.count <= maxTZifSize else { throw FormatError("the file is larger than \(maxTZifSize) bytes; not a TZif file") }
        var reader = ByteReader(bytes: bytes)
        var header = try reader.header()
        var timeSize = 4
        if header.version >= 2 {
            // Skip the version 1 block; the 64-bit block follows with a header of its own.
            try reader.skip(header.blockSize(timeSize: 4))
            header = try reader.header()
            timeSize = 8
        }
        guard header.leapCount == 0 else { throw FormatError("it records leap seconds (a right/ zone); use the zone without right/") }
        guard header.typeCount >= 1, header.typeCount <= 256, header.charCount >= 1 else {
            throw FormatError("it has \(header.typeCount) local time types and \(header.charCount) abbreviation bytes")
        }
        var times: [Int64] = []
        times.reserveCapacity(header.timeCount)
        for _ in 0..<header.timeCount {
            if timeSize == 8 { times.append(try reader.int64()) } else { times.append(Int64(try reader.int32())) }
        }
        var indices: [Int] = []
        for _ in 0..<header.timeCount { indices.append(Int(try reader.byte())) }
        var raw: [(offset: Int32, isDST: Bool, abbreviationIndex: Int)] = []
        for _ in 0..<header.typeCount {
            let offset = try reader.int32()
            let dst = try reader.byte()
            let index = Int(try reader.byte())
            raw.append((offset, dst != 0, index))
        }
        let chars = Array(try reader.take(header.charCount))
        try reader.skip(header.isStdCount + header.isUTCCount)
        var types: [LocalTimeType] = []
        for t in raw {
            // RFC 8536: -2^31 is invalid; real offsets lie within a day.
            guard t.offset > -90_000, t.offset < 90_000 else { throw FormatError("a UTC offset of \(t.offset) seconds is out of range") }
            guard t.abbreviationIndex < chars.count else { throw FormatError("an abbreviation index is past the abbreviations") }
            let tail = chars[t.abbreviationIndex...]
            let abbreviation = String(decoding: tail.prefix { $0 != 0 }, as: UTF8.self)
            types.append(LocalTimeType(offset: Int(t.offset), abbreviation: abbreviation, isDST: t.isDST))
        }
        var transitions: [Transition] = []
        for (time, index) in zip(times, indices) {
            guard index < types.count else { throw FormatError("a transition names local time type \(index) of \(types.count)") }
            if let last = transitions.last, time <= last.at { throw FormatError("the transitions are not in ascending order") }
            transitions.append(Transition(at: time, type: types[index]))
        }
        var rule: PosixRule?
        if header.version >= 2 {
            // The footer: "\n" TZ-string "\n" (the string may be empty).
            guard try reader.byte() == 0x0A else { throw FormatError("the footer does not start with a newline") }
            let rest = reader.remaining
            guard let end = rest.firstIndex(of: 0x0A) else { throw FormatError("the footer does not end with a newline") }
            let text = String(decoding: rest[..<end], as: UTF8.self)
            if !text.isEmpty { rule = try PosixRule.parse(text) }
        }
        return ZoneRules(name: name, initial: types[0], transitions: transitions, rule: rule)
    }

    private struct Header {
        var version: Int
        var isUTCCount: Int, isStdCount: Int, leapCount: Int, timeCount: Int, typeCount: Int, charCount: Int

        func blockSize(timeSize: Int) -> Int {
            timeCount * timeSize + timeCount + typeCount * 6 + charCount + leapCount * (timeSize + 4) + isStdCount + isUTCCount
        }
    }

    private struct ByteReader {
        var bytes: [UInt8]
        var index = 0

        var remaining: ArraySlice<UInt8> { bytes[index...] }

        mutating func take(_ count: Int) throws(FormatError) -> ArraySlice<UInt8> {
            guard count >= 0, count <= bytes.count - index else { throw FormatError("the file is truncated") }
            defer { index += count }
            return bytes[index..<index + count]
        }

        mutating func skip(_ count: Int) throws(FormatError) { _ = try take(count) }

        mutating func byte() throws(FormatError) -> UInt8 { try take(1).first! }

        mutating func int32() throws(FormatError) -> Int32 {
            Int32(bitPattern: try take(4).reduce(UInt32(0)) { $0 << 8 | UInt32($1) })
        }

        mutating func int64() throws(FormatError) -> Int64 {
            Int64(bitPattern: try take(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
        }

        mutating func header() throws(FormatError) -> Header {
            guard Array(try take(4)) == Array("TZif".utf8) else { throw FormatError("it does not start with \"TZif\"; not a TZif file") }
            let v = try byte()
            let version: Int
            switch v {
            case 0: version = 1
            case UInt8(ascii: "2")...UInt8(ascii: "9"): version = Int(v - UInt8(ascii: "0"))
            default: throw FormatError("unknown TZif version byte \(v)")
            }
            try skip(15)
            var counts: [Int] = []
            for _ in 0..<6 {
                let c = try int32()
                // Each count is bounded by the file's size anyway; refuse what cannot fit before multiplying.
                guard c >= 0, Int(c) <= ZoneRules.maxTZifSize else { throw FormatError("a count of \(c) is out of range") }
                counts.append(Int(c))
            }
            return Header(
                version: version, isUTCCount: counts[0], isStdCount: counts[1], leapCount: counts[2], timeCount: counts[3], typeCount: counts[4],
                charCount: counts[5])
        }
    }
}

extension PosixRule {
    /// Parses a POSIX TZ string as TZif footers write them (RFC 8536 section 3.3): `UTC0`,
    /// `<+0330>-3:30`, `CET-1CEST,M3.5.0,M10.5.0/3`, `EST5EDT,M3.2.0,M11.1.0`. Offsets are POSIX's,
    /// positive west of Greenwich; the result's are positive east.
    package static func parse(_ text: String) throws(ZoneRules.FormatError) -> PosixRule {
        var p = Parser(chars: Array(text.unicodeScalars))
        let stdName = try p.name()
        let stdOffset = -(try p.time(maxHours: 24))
        let standard = ZoneRules.LocalTimeType(offset: stdOffset, abbreviation: stdName, isDST: false)
        guard !p.atEnd else { return PosixRule(standard: standard) }
        let dstName = try p.name()
        var dstOffset = stdOffset + 3_600
        if !p.atEnd, p.peek != "," { dstOffset = -(try p.time(maxHours: 24)) }
        guard p.take(",") else {
            // A DST name without a rule: POSIX's default rule is implementation-defined; TZif footers always give one.
            throw ZoneRules.FormatError("the TZ rule \"\(text)\" names daylight-saving time without its dates")
        }
        let start = try p.day()
        let startTime = try p.take("/") ? p.time(maxHours: 167) : 7_200
        guard p.take(",") else { throw ZoneRules.FormatError("the TZ rule \"\(text)\" lacks the end of daylight-saving time") }
        let end = try p.day()
        let endTime = try p.take("/") ? p.time(maxHours: 167) : 7_200
        guard p.atEnd else { throw ZoneRules.FormatError("the TZ rule \"\(text)\" has extra text") }
        let daylight = ZoneRules.LocalTimeType(offset: dstOffset, abbreviation: dstName, isDST: true)
        // A zone in DST all year (`…,J1/0,J365/25`) is written with start and end a full year apart.
        return PosixRule(standard: standard, daylight: Daylight(type: daylight, start: start, startTime: startTime, end: end, endTime: endTime))
    }

    private struct Parser {
        var chars: [Unicode.Scalar]
        var i = 0

        var atEnd: Bool { i >= chars.count }
        var peek: Unicode.Scalar? { atEnd ? nil : chars[i] }

        mutating func take(_ c: Unicode.Scalar) -> Bool {
            guard peek == c else { return false }
            i += 1
            return true
        }

        mutating func name() throws(ZoneRules.FormatError) -> String {
            var out = ""
            if take("<") {
                while let c = peek, c != ">" {
                    out.unicodeScalars.append(c)
                    i += 1
                }
                guard take(">") else { throw ZoneRules.FormatError("an abbreviation in the TZ rule is not closed with '>'") }
            } else {
                while let c = peek, c.properties.isAlphabetic, c.isASCII {
                    out.unicodeScalars.append(c)
                    i += 1
                }
            }
            guard out.count >= 3 else { throw ZoneRules.FormatError("the TZ rule has an abbreviation shorter than 3 characters") }
            return out
        }

        mutating func number(max: Int) throws(ZoneRules.FormatError) -> Int {
            var v = 0, digits = 0
            while let c = peek, ("0"..."9").contains(c) {
                v = v * 10 + Int(c.value - 48)
                digits += 1
                i += 1
                guard v <= max, digits <= 4 else { throw ZoneRules.FormatError("a number in the TZ rule is out of range") }
            }
            guard digits > 0 else { throw ZoneRules.FormatError("the TZ rule lacks a number at position \(i + 1)") }
            return v
        }

        /// `[+-]hh[:mm[:ss]]` in seconds.
        mutating func time(maxHours: Int) throws(ZoneRules.FormatError) -> Int {
            let negative = take("-")
            if !negative { _ = take("+") }
            var seconds = try number(max: maxHours) * 3_600
            if take(":") {
                seconds += try number(max: 59) * 60
                if take(":") { seconds += try number(max: 59) }
            }
            return negative ? -seconds : seconds
        }

        mutating func day() throws(ZoneRules.FormatError) -> Day {
            if take("J") {
                let n = try number(max: 365)
                guard n >= 1 else { throw ZoneRules.FormatError("a Jn day in the TZ rule must be 1 to 365") }
                return .julian(n)
            }
            if take("M") {
                let m = try number(max: 12)
                guard take("."), m >= 1 else { throw ZoneRules.FormatError("a month in the TZ rule must be 1 to 12") }
                let w = try number(max: 5)
                guard take("."), w >= 1 else { throw ZoneRules.FormatError("a week in the TZ rule must be 1 to 5") }
                let d = try number(max: 6)
                return .monthWeekDay(month: m, week: w, weekday: d)
            }
            return .zeroBased(try number(max: 365))
        }
    }
}
