/// Where the values (and, for YAML, the member keys) of one parsed file stand, by JSON Pointer
/// (RFC 6901: `/flags/my-flag/variants/on`).
package struct FileSourceMap: Sendable, Hashable {
    /// Where each value starts. The root is `""`.
    package var values: [String: SourceLocation]
    /// Where the key of each object member starts, when the parser records it (YAML does;
    /// the JSON parser records values only).
    package var keys: [String: SourceLocation]

    /// Creates a map.
    package init(values: [String: SourceLocation] = [:], keys: [String: SourceLocation] = [:]) {
        self.values = values
        self.keys = keys
    }

    /// The start of the value at `pointer`, or of its nearest ancestor that has one; `1:1` when
    /// nothing is known.
    package func valueLocation(of pointer: String) -> SourceLocation {
        var p = pointer
        while true {
            if let l = values[p] { return l }
            guard let slash = p.lastIndex(of: "/") else { return SourceLocation(line: 1, column: 1) }
            p = String(p[..<slash])
        }
    }

    /// The start of the member's key at `pointer` when known, else where its value starts.
    /// Diagnostics about a member as a whole (a flag, a property) point here.
    package func keyLocation(of pointer: String) -> SourceLocation {
        keys[pointer] ?? valueLocation(of: pointer)
    }

    /// A copy with every pointer that starts with `from` re-rooted at `to`.
    func rerooted(from: String, to: String) -> FileSourceMap {
        func move(_ d: [String: SourceLocation]) -> [String: SourceLocation] {
            var out: [String: SourceLocation] = [:]
            for (k, v) in d {
                if k == from || k.hasPrefix(from + "/") {
                    out[to + k.dropFirst(from.count)] = v
                } else {
                    out[k] = v
                }
            }
            return out
        }
        return FileSourceMap(values: move(values), keys: move(keys))
    }
}

/// Helpers for JSON Pointers (RFC 6901).
package enum JSONPointer {
    /// `parent/escaped(token)`.
    package static func child(_ parent: String, _ token: String) -> String {
        parent + "/" + JSONSourceMap.escape(token)
    }

    /// `parent/index`.
    package static func child(_ parent: String, _ index: Int) -> String {
        parent + "/" + String(index)
    }

    /// How many reference tokens a pointer has.
    package static func depth(_ pointer: String) -> Int {
        pointer.utf8.count { $0 == UInt8(ascii: "/") }
    }

    /// The reference tokens of a pointer, unescaped.
    package static func tokens(_ pointer: String) -> [String] {
        guard !pointer.isEmpty else { return [] }
        return pointer.dropFirst().split(separator: "/", omittingEmptySubsequences: false).map { token in
            guard token.contains("~") else { return String(token) }
            return String(token).replacing("~1", with: "/").replacing("~0", with: "~")
        }
    }

    /// The flag key a pointer lies under (`/flags/<key>/…`), if any.
    package static func flagKey(of pointer: String) -> String? {
        let t = tokens(pointer)
        guard t.count >= 2, t[0] == "flags" else { return nil }
        return t[1]
    }
}
