/// Collects diagnostics about one parsed document, turning JSON Pointers into file locations.
package struct DiagnosticSink {
    package let document: SourceDocument
    package var diagnostics: [Diagnostic] = []

    package init(document: SourceDocument) {
        self.document = document
    }

    /// Adds a diagnostic about the value at `pointer` (or, with `atKey`, about the member as a whole).
    package mutating func add(
        _ severity: Diagnostic.Severity, at pointer: String, atKey: Bool = false, flag: String?,
        _ message: String, hint: String? = nil
    ) {
        let location = atKey ? document.keyLocation(of: pointer) : document.location(of: pointer)
        diagnostics.append(Diagnostic(severity, at: location, flagKey: flag, message: message, hint: hint))
    }

    package mutating func error(at pointer: String, atKey: Bool = false, flag: String?, _ message: String, hint: String? = nil) {
        add(.error, at: pointer, atKey: atKey, flag: flag, message, hint: hint)
    }

    package mutating func warning(at pointer: String, atKey: Bool = false, flag: String?, _ message: String, hint: String? = nil) {
        add(.warning, at: pointer, atKey: atKey, flag: flag, message, hint: hint)
    }

    /// ``add(_:at:atKey:flag:_:hint:)`` at a pointer spelt out only now.
    mutating func add(
        _ severity: Diagnostic.Severity, at pointer: some PointerPath, atKey: Bool = false, flag: String?,
        _ message: String, hint: String? = nil
    ) {
        add(severity, at: pointer.string, atKey: atKey, flag: flag, message, hint: hint)
    }

    mutating func error(at pointer: some PointerPath, atKey: Bool = false, flag: String?, _ message: String, hint: String? = nil) {
        add(.error, at: pointer.string, atKey: atKey, flag: flag, message, hint: hint)
    }

    mutating func warning(at pointer: some PointerPath, atKey: Bool = false, flag: String?, _ message: String, hint: String? = nil) {
        add(.warning, at: pointer.string, atKey: atKey, flag: flag, message, hint: hint)
    }
}

/// Small text helpers for messages.
package enum MessageText {
    /// `"a", "b" and "c"`, for lists in messages (at most `limit` names, then "…").
    package static func quotedList(_ names: [String], limit: Int = 8) -> String {
        let quoted = names.prefix(limit).map { "\"\($0)\"" }
        let more = names.count > limit ? ", …" : ""
        return quoted.joined(separator: ", ") + more
    }

    /// A short, single-line rendering of a JSON value for messages.
    package static func literal(_ value: JSONValue) -> String {
        let text = value.jsonString
        return text.count > 40 ? String(text.prefix(37)) + "…" : text
    }

    /// The candidate closest to `name` when it differs only in case, `_`/`-`, or by one edit.
    package static func suggestion(for name: String, among candidates: some Sequence<String>) -> String? {
        func normalized(_ s: String) -> String {
            String(s.lowercased().filter { $0 != "_" && $0 != "-" && $0 != " " })
        }
        let target = normalized(name)
        let limit = name.count < 4 ? 0 : (name.count < 8 ? 2 : 3)
        var best: (String, Int)?
        for candidate in candidates where candidate != name {
            let d = normalized(candidate) == target ? 0 : editDistance(name, candidate)
            if d <= limit, best == nil || d < best!.1 { best = (candidate, d) }
        }
        return best?.0
    }

    private static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a.unicodeScalars), b = Array(b.unicodeScalars)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        for i in 1...a.count {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in 1...b.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }
}
