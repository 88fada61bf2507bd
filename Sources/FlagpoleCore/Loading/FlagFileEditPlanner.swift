/// One replacement of a span of a file's text: the Unicode scalars `start..<end` become
/// `replacement` (an insertion when `start == end`).
package struct SourceEdit: Sendable, Hashable {
    package var start: Int
    package var end: Int
    package var replacement: String

    package init(start: Int, end: Int, replacement: String) {
        self.start = start
        self.end = end
        self.replacement = replacement
    }
}

/// Why a flag's file cannot be edited to serve a definition: where, what, and how to do it by hand.
package struct FlagFileEditRefusal: Error, Sendable, Hashable, CustomStringConvertible {
    package var location: FileLocation?
    package var message: String
    package var hint: String?

    package init(location: FileLocation?, message: String, hint: String? = nil) {
        self.location = location
        self.message = message
        self.hint = hint
    }

    package var description: String {
        (location.map { "\($0): " } ?? "") + message + (hint.map { " (\($0))" } ?? "")
    }
}

/// The minimal edit to one flag file that makes one flag's definition read as a given one.
package struct FlagFileEditPlan: Sendable, Hashable {
    /// The edits, sorted by position; empty when the file already says it.
    package var edits: [SourceEdit]
    /// The file's text with the edits applied.
    package var newText: String
}

/// Plans the edit of a flag file that makes one flag's definition (`$ref`s resolved, as
/// `flagctl sync` stores it) equal a given definition, by source spans: each changed value's
/// text is replaced where it stands, members are added after their siblings or removed with
/// their lines; every other byte of the file (comments, key order, quoting, indentation) stays.
///
/// Pure: no I/O. Rules:
/// - A value that changes is written with the style of the value it replaces: a scalar keeps
///   its quoting when it can, a block mapping is replaced by a block mapping at the same
///   indentation, JSON keeps the file's indentation. New values are written plain when that
///   reads back the same, double-quoted otherwise; lists as flow (`[…]`) in YAML.
/// - An alias (`*name`) or a `$ref` to a shared evaluator whose value must change is replaced
///   by the new value written in place: the anchor and the evaluator, which other flags may
///   use, are left alone.
/// - A change inside an anchored value (`&name`) that aliases elsewhere use, or that would
///   remove such an anchor, is refused: it would change the other places silently.
/// - The result is checked: the new text, parsed again, must give exactly `served` for the flag
///   and leave every other flag, evaluator and the metadata as they were.
package enum FlagFileEditPlanner {
    /// Plans the edit.
    /// - Parameters:
    ///   - path: The file's path, for locations in refusals.
    ///   - text: The file's current text.
    ///   - flag: The flag key.
    ///   - served: The definition the flag must have.
    ///   - evaluators: The environment's shared evaluators (`$ref`s may name any of them).
    package static func plan(
        path: String, text: String, flag: String, served: JSONValue, evaluators: [String: JSONValue]
    ) -> Result<FlagFileEditPlan, FlagFileEditRefusal> {
        let format = SourceDocument.Format(path: path, text: text)
        let document = SourceDocument.parse(path: path, text: text, format: format)
        guard let value = document.value, !document.diagnostics.contains(where: { $0.severity == .error }),
            let spans = SourceSpans.read(text, format: format)
        else {
            return .failure(
                .init(location: FileLocation(file: path, line: 1, column: 1), message: "the file does not parse", hint: "run flagctl validate"))
        }
        guard let flagsNode = spans.member("flags", of: spans.root)?.value, spans.nodes[flagsNode].kind == .mapping,
            let flagMember = spans.member(flag, of: flagsNode), case .object(let flags)? = value["flags"], let raw = flags[flag]
        else {
            return .failure(
                .init(
                    location: FileLocation(file: path, line: 1, column: 1),
                    message: "flag \"\(flag)\" is not a member of this file's flags mapping",
                    hint: "write flags as a mapping keyed by flag key"))
        }
        let resolved = resolve(flag: raw, evaluators: evaluators)
        var planner = Planner(path: path, spans: spans)
        do {
            try planner.diff(flagMember.value, raw: raw, resolved: resolved, target: served, chain: [spans.root, flagsNode])
        } catch let refusal as FlagFileEditRefusal {
            return .failure(refusal)
        } catch {
            return .failure(
                .init(location: planner.location(flagMember.keyStart), message: "could not compute the edit", hint: "edit the file by hand"))
        }
        let edits = planner.edits.sorted { ($0.start, $0.end) < ($1.start, $1.end) }
        for (a, b) in zip(edits, edits.dropFirst()) where a.end > b.start {
            return .failure(
                .init(location: planner.location(a.start), message: "could not compute a non-overlapping edit", hint: "edit the file by hand"))
        }
        let newText = apply(edits, to: spans.scalars)
        // Check: the flag reads as served; nothing else changed.
        let check = SourceDocument.parse(path: path, text: newText, format: format)
        let before = FlagDocument.resolvedFlags(withEvaluators(value, evaluators))
        var expected = before
        expected[flag] = served
        guard let after = check.value, !check.diagnostics.contains(where: { $0.severity == .error }),
            FlagDocument.resolvedFlags(withEvaluators(after, evaluators)) == expected, after["$evaluators"] == value["$evaluators"],
            after["metadata"] == value["metadata"]
        else {
            return .failure(
                .init(
                    location: FileLocation(
                        file: path,
                        spans.nodes[flagMember.value].start == 0 ? SourceLocation(line: 1, column: 1) : planner.sourceLocation(flagMember.keyStart)),
                    message: "the computed edit does not read back as the served definition", hint: "edit the file by hand"))
        }
        return .success(FlagFileEditPlan(edits: edits, newText: newText))
    }

    /// The flag's definition as the loader stores it: `$ref`s in its targeting resolved.
    static func resolve(flag: JSONValue, evaluators: [String: JSONValue]) -> JSONValue {
        FlagDocument.resolvedFlags(["flags": ["f": flag], "$evaluators": .object(evaluators)])["f"] ?? flag
    }

    private static func withEvaluators(_ document: JSONValue, _ evaluators: [String: JSONValue]) -> JSONValue {
        guard case .object(var o) = document else { return document }
        var all = evaluators
        for (k, v) in o["$evaluators"]?.objectValue ?? [:] { all[k] = v }
        o["$evaluators"] = .object(all)
        return .object(o)
    }

    /// The text with non-overlapping edits (sorted by position) applied.
    package static func apply(_ edits: [SourceEdit], to scalars: [Unicode.Scalar]) -> String {
        var out = String.UnicodeScalarView()
        var at = 0
        for e in edits {
            out.append(contentsOf: scalars[at..<e.start])
            out.append(contentsOf: e.replacement.unicodeScalars)
            at = e.end
        }
        out.append(contentsOf: scalars[at...])
        return String(out)
    }

    /// The order new members of a flag are written in; others follow sorted.
    static let flagKeyOrder = ["state", "variants", "defaultVariant", "targeting", "metadata"]

    static func ordered(_ keys: some Sequence<String>) -> [String] {
        keys.sorted { a, b in
            let ia = flagKeyOrder.firstIndex(of: a) ?? Int.max, ib = flagKeyOrder.firstIndex(of: b) ?? Int.max
            return ia != ib ? ia < ib : a < b
        }
    }
}

/// A minimal edit is not possible at this node: replace the node whole.
private struct Fallback: Error {}

private struct Planner {
    let path: String
    let spans: SourceSpans
    var edits: [SourceEdit] = []
    /// The JSON file's indentation step (`"  "` unless the file shows another).
    let indentUnit: String

    init(path: String, spans: SourceSpans) {
        self.path = path
        self.spans = spans
        var unit = "  "
        if spans.format == .json {
            var i = 0
            let s = spans.scalars
            while i < s.count {
                if s[i] == "\n" {
                    var j = i + 1
                    while j < s.count, s[j] == " " || s[j] == "\t" { j += 1 }
                    if j > i + 1, j < s.count, s[j] != "\n" {
                        unit = spans.text(i + 1, j)
                        break
                    }
                }
                i += 1
            }
        }
        indentUnit = unit
    }

    func sourceLocation(_ offset: Int) -> SourceLocation {
        SourceLocation(line: spans.line(of: offset), column: spans.column(of: offset) + 1)
    }

    func location(_ offset: Int) -> FileLocation {
        FileLocation(file: path, sourceLocation(offset))
    }

    // MARK: Diff

    /// Plans the edits that make node `n` (read as `raw`, `resolved` once `$ref`s are resolved)
    /// read as `target`; `chain` is the node's ancestors. Throws a ``FlagFileEditRefusal``.
    mutating func diff(_ n: Int, raw: JSONValue, resolved: JSONValue, target: JSONValue, chain: [Int]) throws {
        if resolved == target { return }
        let node = spans.nodes[n]
        let isRef = raw != resolved && raw["$ref"] != nil
        let mark = edits.count
        do {
            switch (node.kind, raw, resolved, target) {
            case (.mapping, .object(let r), .object(let v), .object(let t)) where !isRef && !t.isEmpty:
                try diffMapping(n, raw: r, resolved: v, target: t, chain: chain + [n])
                return
            case (.sequence, .array(let r), .array(let v), .array(let t)) where r.count == t.count && v.count == t.count:
                for (i, element) in node.elements.enumerated() {
                    try diff(element, raw: r[i], resolved: v[i], target: t[i], chain: chain + [n])
                }
                return
            default:
                throw Fallback()
            }
        } catch is Fallback {
            edits.removeSubrange(mark...)
        }
        try replace(n, with: target, chain: chain)
    }

    private mutating func diffMapping(
        _ n: Int, raw: [String: JSONValue], resolved: [String: JSONValue], target: [String: JSONValue], chain: [Int]
    ) throws {
        let node = spans.nodes[n]
        let members = node.members.filter { $0.key != "<<" }
        let literal = Set(members.map(\.key))
        // A key only merged in (`<<`) that must go cannot be removed by an edit here.
        for k in resolved.keys where target[k] == nil && !literal.contains(k) { throw Fallback() }
        var removed: [Int] = []
        for (i, m) in members.enumerated() {
            guard let t = target[m.key] else {
                removed.append(i)
                continue
            }
            do {
                try diff(m.value, raw: raw[m.key] ?? .null, resolved: resolved[m.key] ?? .null, target: t, chain: chain)
            } catch {
                throw Fallback()  // refused below: the whole mapping is replaced, and checked again
            }
        }
        let added = FlagFileEditPlanner.ordered(target.keys.filter { !literal.contains($0) && resolved[$0] != target[$0] })
        if removed.isEmpty && added.isEmpty { return }
        if removed.count == members.count { throw Fallback() }
        // This mapping's own text changes: it must not be shared through an anchor.
        do { try checkNotShared(chain) } catch { throw Fallback() }
        for i in removed {
            let value = spans.nodes[members[i].value]
            do { try checkAnchors(inside: members[i].keyStart, value.end) } catch { throw Fallback() }
        }
        let lastKept = members.indices.last { !removed.contains($0) }!
        if node.style == .block {
            for i in removed {
                let m = members[i], value = spans.nodes[m.value]
                let from = spans.lineStart(of: m.keyStart)
                guard spans.text(from, m.keyStart).allSatisfy({ $0 == " " }), onlyCommentAfter(value.end) else { throw Fallback() }
                let to = spans.lineEnd(of: value.end)
                edits.append(SourceEdit(start: from, end: min(to + 1, spans.scalars.count), replacement: ""))
            }
            if !added.isEmpty {
                let indent = String(repeating: " ", count: spans.column(of: members[0].keyStart))
                let at = spans.lineEnd(of: spans.nodes[members[lastKept].value].end)
                var text = ""
                for k in added { text += "\n" + indent + yamlMember(k, target[k]!, indent: indent.count) }
                edits.append(SourceEdit(start: at, end: at, replacement: text))
            }
            return
        }
        // Flow: runs of removed members go with the separator before them (or after, for a leading run).
        var i = 0
        while i < removed.count {
            var j = i
            while j + 1 < removed.count, removed[j + 1] == removed[j] + 1 { j += 1 }
            let first = removed[i], last = removed[j]
            if first > 0 {
                edits.append(SourceEdit(start: spans.nodes[members[first - 1].value].end, end: spans.nodes[members[last].value].end, replacement: ""))
            } else {
                edits.append(SourceEdit(start: members[first].keyStart, end: members[last + 1].keyStart, replacement: ""))
            }
            i = j + 1
        }
        if !added.isEmpty {
            let anchor = members[lastKept]
            let at = spans.nodes[anchor.value].end
            let multiline = spans.text(node.start, node.end).contains("\n")
            var text = ""
            for k in added {
                if spans.format == .json {
                    if multiline {
                        let indent = leadingWhitespace(ofLineAt: anchor.keyStart)
                        text += ",\n" + indent + quoted(k) + ": " + json(target[k]!, pretty: true, indent: indent)
                    } else {
                        text += ", " + quoted(k) + ": " + json(target[k]!, pretty: false, indent: "")
                    }
                } else {
                    text += ", " + yamlKey(k) + ": " + yamlFlow(target[k]!)
                }
            }
            edits.append(SourceEdit(start: at, end: at, replacement: text))
        }
    }

    /// Replaces node `n` whole with `target`.
    private mutating func replace(_ n: Int, with target: JSONValue, chain: [Int]) throws {
        let node = spans.nodes[n]
        try checkNotShared(chain)
        try checkAnchors(inside: node.start, node.end)
        var start = node.start
        let text: String
        if spans.format == .json {
            let multiline = spans.text(node.start, node.end).contains("\n")
            text = json(target, pretty: multiline, indent: leadingWhitespace(ofLineAt: node.start))
        } else if node.style == .block, case .object(let o) = target, !o.isEmpty {
            let column = spans.column(of: node.start) + (node.kind == .sequence ? 2 : 0)
            if node.kind == .sequence {
                start = spans.lineStart(of: node.start)
                text = String(repeating: " ", count: column) + yamlBlock(o, indent: column)
            } else {
                text = yamlBlock(o, indent: column)
            }
        } else if node.style == .block || node.style == .blockScalar {
            // A block value becomes a one-line value: after the key's colon (or the dash).
            var p = node.start
            while p > 0, [" ", "\n", "\r"].contains(spans.scalars[p - 1]) { p -= 1 }
            let inline = target.isScalar ? yamlScalar(target, like: nil) : yamlFlow(target)
            if p > 0, spans.scalars[p - 1] == ":" || spans.scalars[p - 1] == "-" {
                start = p
                text = " " + inline
            } else {
                text = inline
            }
        } else if target.isScalar {
            text = yamlScalar(target, like: node.kind == .scalar ? node.style : nil, flow: isInFlow(chain))
        } else {
            text = yamlFlow(target)
        }
        edits.append(SourceEdit(start: start, end: node.end, replacement: text))
    }

    private func isInFlow(_ chain: [Int]) -> Bool {
        chain.last.map { spans.nodes[$0].style == .flow } ?? false
    }

    /// Whether only spaces and a comment follow `offset` on its line.
    private func onlyCommentAfter(_ offset: Int) -> Bool {
        let rest = spans.text(offset, spans.lineEnd(of: offset)).drop { $0 == " " || $0 == "\t" || $0 == "\r" }
        return rest.isEmpty || rest.hasPrefix("#")
    }

    private func leadingWhitespace(ofLineAt offset: Int) -> String {
        let from = spans.lineStart(of: offset)
        var i = from
        while i < spans.scalars.count, spans.scalars[i] == " " || spans.scalars[i] == "\t" { i += 1 }
        return spans.text(from, i)
    }

    // MARK: Anchors

    /// Refuses when a node on the way to the edit carries an anchor that aliases use elsewhere.
    private func checkNotShared(_ chain: [Int]) throws(FlagFileEditRefusal) {
        for c in chain {
            guard let anchor = spans.nodes[c].anchor, let uses = spans.aliases[c], !uses.isEmpty else { continue }
            throw sharedAnchor(anchor, node: c, uses: uses)
        }
    }

    /// Refuses when the text `start..<end` holds an anchor that an alias outside it uses.
    private func checkAnchors(inside start: Int, _ end: Int) throws(FlagFileEditRefusal) {
        for (target, uses) in spans.aliases {
            let t = spans.nodes[target]
            guard let anchor = t.anchor, t.start >= start, t.end <= end else { continue }
            let outside = uses.filter { spans.nodes[$0].start < start || spans.nodes[$0].start >= end }
            if !outside.isEmpty { throw sharedAnchor(anchor, node: target, uses: outside) }
        }
    }

    private func sharedAnchor(_ anchor: String, node: Int, uses: [Int]) -> FlagFileEditRefusal {
        let lines = uses.map { String(spans.line(of: spans.nodes[$0].start)) }.joined(separator: ", ")
        return FlagFileEditRefusal(
            location: location(spans.nodes[node].start),
            message:
                "the value to change is the anchor &\(anchor), which *\(anchor) also uses (line \(lines)); changing it here would change those too",
            hint:
                "write the value out in place of *\(anchor) where the other flags should keep it (or move the anchor), then run reconcile again")
    }

    // MARK: Rendering

    private func quoted(_ s: String) -> String {
        var out = ""
        JSONValue.writeString(s, to: &out)
        return out
    }

    /// JSON text; `pretty` indents with the file's step, each line after the first starting with `indent`.
    private func json(_ v: JSONValue, pretty: Bool, indent: String) -> String {
        switch v {
        case .array(let a) where !a.isEmpty:
            let inner = indent + indentUnit
            let items = a.map { json($0, pretty: pretty, indent: inner) }
            return pretty
                ? "[\n" + items.map { inner + $0 }.joined(separator: ",\n") + "\n" + indent + "]" : "[" + items.joined(separator: ", ") + "]"
        case .object(let o) where !o.isEmpty:
            let inner = indent + indentUnit
            let items = FlagFileEditPlanner.ordered(o.keys).map { quoted($0) + ": " + json(o[$0]!, pretty: pretty, indent: inner) }
            return pretty
                ? "{\n" + items.map { inner + $0 }.joined(separator: ",\n") + "\n" + indent + "}" : "{" + items.joined(separator: ", ") + "}"
        default:
            return v.jsonString
        }
    }

    /// YAML flow text (JSON with spaces, which YAML reads the same).
    private func yamlFlow(_ v: JSONValue) -> String {
        json(v, pretty: false, indent: "")
    }

    private func yamlKey(_ k: String) -> String {
        isPlainSafe(k, flow: true) ? k : quoted(k)
    }

    /// One member of a block mapping whose keys stand at `indent`.
    private func yamlMember(_ k: String, _ v: JSONValue, indent: Int) -> String {
        if case .object(let o) = v, !o.isEmpty {
            return yamlKey(k) + ":\n" + String(repeating: " ", count: indent + 2) + yamlBlock(o, indent: indent + 2)
        }
        return yamlKey(k) + ": " + (v.isScalar ? yamlScalar(v, like: nil) : yamlFlow(v))
    }

    /// A block mapping at `indent`; its first line carries no indentation (it starts where the old value did).
    private func yamlBlock(_ o: [String: JSONValue], indent: Int) -> String {
        FlagFileEditPlanner.ordered(o.keys).map { yamlMember($0, o[$0]!, indent: indent) }
            .joined(separator: "\n" + String(repeating: " ", count: indent))
    }

    /// A scalar, in the style of the one it replaces when that reads back the same.
    private func yamlScalar(_ v: JSONValue, like style: SourceSpans.Style?, flow: Bool = false) -> String {
        guard case .string(let s) = v else { return v.jsonString }
        switch style {
        case .singleQuoted? where !s.unicodeScalars.contains(where: { $0.value < 0x20 }):
            return "'" + s.replacing("'", with: "''") + "'"
        case .doubleQuoted?:
            return quoted(s)
        default:
            return isPlainSafe(s, flow: flow) ? s : quoted(s)
        }
    }

    /// Whether `s` written unquoted reads back as the same string, with no warning.
    private func isPlainSafe(_ s: String, flow: Bool) -> Bool {
        guard let first = s.unicodeScalars.first, let last = s.unicodeScalars.last else { return false }
        if "-?:,[]{}#&*!|>'\"%@`".unicodeScalars.contains(first) || first == " " || last == " " || last == ":" { return false }
        for c in s.unicodeScalars where c.value < 0x20 || c == "\u{7F}" || (flow && ",[]{}".unicodeScalars.contains(c)) { return false }
        if s.contains(": ") || s.contains(" #") { return false }
        return YAMLScalarResolver.resolve(s, plain: true, tag: "") == .value(.string(s), note: nil)
    }
}

extension JSONValue {
    /// Neither an object nor an array.
    fileprivate var isScalar: Bool {
        switch self {
        case .object, .array: return false
        default: return true
        }
    }
}
