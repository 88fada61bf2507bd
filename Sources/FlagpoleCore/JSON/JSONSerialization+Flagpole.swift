extension JSONValue {
    /// Compact JSON text with object keys sorted, so equal values always serialise to equal bytes
    /// (content hashes, ETags and Redis payloads rely on that).
    package var jsonString: String {
        var out = ""
        out.reserveCapacity(64)
        write(to: &out, pretty: false, indent: 0)
        return out
    }

    /// Appends ``jsonString`` to `out`, without the intermediate string (response writers).
    package func writeJSON(to out: inout String) {
        write(to: &out, pretty: false, indent: 0)
    }

    /// Indented JSON text with sorted keys, for people.
    package var prettyJSONString: String {
        var out = ""
        write(to: &out, pretty: true, indent: 0)
        return out
    }

    private func write(to out: inout String, pretty: Bool, indent: Int) {
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let i): out += String(i)
        case .double(let d): out += JSONValue.format(d)
        case .string(let s): JSONValue.writeString(s, to: &out)
        case .array(let a):
            if a.isEmpty { out += "[]"; return }
            out += "["
            for (i, v) in a.enumerated() {
                if i > 0 { out += "," }
                if pretty { out += "\n" + String(repeating: "  ", count: indent + 1) }
                v.write(to: &out, pretty: pretty, indent: indent + 1)
            }
            if pretty { out += "\n" + String(repeating: "  ", count: indent) }
            out += "]"
        case .object(let o):
            if o.isEmpty { out += "{}"; return }
            out += "{"
            for (i, k) in o.keys.sorted().enumerated() {
                if i > 0 { out += "," }
                if pretty { out += "\n" + String(repeating: "  ", count: indent + 1) }
                JSONValue.writeString(k, to: &out)
                out += pretty ? ": " : ":"
                o[k]!.write(to: &out, pretty: pretty, indent: indent + 1)
            }
            if pretty { out += "\n" + String(repeating: "  ", count: indent) }
            out += "}"
        }
    }

    /// Numbers print the way JavaScript and Python's `json` print them: integral doubles keep `.0`
    /// only when needed to stay a float on the way back (`1.0`), non-finite values become `null`.
    static func format(_ d: Double) -> String {
        guard d.isFinite else { return "null" }
        if d == d.rounded(), abs(d) < 1e16 {
            return String(Int64(d)) + ".0"
        }
        return "\(d)"
    }

    /// Appends `s` as a JSON string literal.
    package static func writeString(_ s: String, to out: inout String) {
        // Most strings need no escaping: append them whole.
        var needsEscaping = false
        for b in s.utf8 where b < 0x20 || b == 0x22 || b == 0x5C {
            needsEscaping = true
            break
        }
        out += "\""
        guard needsEscaping else {
            out += s
            out += "\""
            return
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(s.utf8.count + 16)
        let hex: [UInt8] = Array("0123456789abcdef".utf8)
        for b in s.utf8 {
            switch b {
            case 0x22: bytes += [0x5C, 0x22]
            case 0x5C: bytes += [0x5C, 0x5C]
            case 0x0A: bytes += [0x5C, 0x6E]
            case 0x0D: bytes += [0x5C, 0x72]
            case 0x09: bytes += [0x5C, 0x74]
            case 0x08: bytes += [0x5C, 0x62]
            case 0x0C: bytes += [0x5C, 0x66]
            case ..<0x20: bytes += [0x5C, 0x75, 0x30, 0x30, hex[Int(b >> 4)], hex[Int(b & 0xF)]]
            default: bytes.append(b)
            }
        }
        out += String(decoding: bytes, as: UTF8.self)
        out += "\""
    }
}
