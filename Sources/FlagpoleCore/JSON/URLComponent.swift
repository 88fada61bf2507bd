/// Percent-encoding for one URL path segment or query value.
package enum URLComponent {
    /// `value` with everything but RFC 3986's unreserved characters (`A-Z a-z 0-9 - . _ ~`)
    /// percent-encoded as UTF-8, so a flag key with `/`, `?`, `#`, `&` or a space still names one
    /// thing in a link.
    package static func encode(_ value: String) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var out = ""
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                out.unicodeScalars.append("%")
                out.unicodeScalars.append(Unicode.Scalar(hex[Int(byte >> 4)]))
                out.unicodeScalars.append(Unicode.Scalar(hex[Int(byte & 15)]))
            }
        }
        return out
    }
}
