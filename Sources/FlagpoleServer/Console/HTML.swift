import FlagpoleCore

/// HTML text built by the console's pages: every value goes through ``escape(_:)`` (or
/// ``HTML/text(_:)``), so a flag key, a variant, a reason or an actor name holding `<script>` is
/// shown as text, never run.
///
/// The console's templates are plain Swift string building over this one escaping function: no
/// template engine (no dependency, nothing to parse at run time, the fastest build), and the type
/// checker sees every page.
struct HTML: Sendable {
    /// The markup so far.
    var markup: String

    init() { markup = "" }

    /// Markup written by the console itself (never data).
    init(raw: String) { markup = raw }

    /// Appends trusted markup (a literal of the console's own).
    mutating func raw(_ s: String) { markup += s }

    /// Appends `value` escaped for text or a double-quoted attribute.
    mutating func text(_ value: String) { HTML.escape(value, into: &markup) }

    /// `value` with `&`, `<`, `>`, `"` and `'` replaced by entities: safe inside an element and
    /// inside a double- or single-quoted attribute value.
    static func escape(_ value: String) -> String {
        var out = ""
        escape(value, into: &out)
        return out
    }

    /// Appends `value` escaped (see ``escape(_:)``) to `out`.
    static func escape(_ value: String, into out: inout String) {
        // Most values have nothing to escape: copy them whole.
        if !value.utf8.contains(where: { $0 == 0x26 || $0 == 0x3C || $0 == 0x3E || $0 == 0x22 || $0 == 0x27 }) {
            out += value
            return
        }
        out.reserveCapacity(out.utf8.count + value.utf8.count + 16)
        for scalar in value.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(scalar)
            }
        }
    }

    /// `value` percent-encoded for one path segment or query value (everything but unreserved
    /// characters), so a flag key with `/`, `?`, `#` or `&` still names one flag.
    static func urlComponent(_ value: String) -> String { URLComponent.encode(value) }
}
