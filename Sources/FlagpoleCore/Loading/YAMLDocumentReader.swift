import Yams

/// Reads a YAML document into a ``JSONValue`` with flagd's meaning (see ``YAMLScalarResolver``),
/// recording where every value and key stands.
///
/// ``YAMLNodeTree`` composes the nodes from libyaml's events (its marks give line and column);
/// when that fails, or a key may repeat, Yams composes the text to say exactly what is wrong.
/// Scalars are resolved here rather than by Yams' YAML 1.1 resolver, which would read `on`/`yes`
/// as booleans and `16:00` as the sexagesimal integer 960.
struct YAMLDocumentReader {
    let path: String
    /// Where every value and key stands, in document order.
    private(set) var locations = LocationLog()
    private(set) var diagnostics: [Diagnostic] = []
    private var tree = YAMLNodeTree()

    /// Duplicate keys found while composing, renamed in the text so the rest of the file can be
    /// read; the renamed entry is dropped, the error kept.
    private var renamedDuplicates: [(key: String, first: SourceLocation, second: SourceLocation)] = []
    private var nodeBudget = 2_000_000
    private var reportedBudget = false

    static let maximumDepth = JSONParser.maximumDepth
    static let duplicateMarker = "__flagpole_duplicate_"
    /// Every implicitly tagged scalar resolves to this tag, so an untagged scalar can be told from
    /// one written with an explicit tag even after Yams has resolved tags for its duplicate-key check.
    static let implicitTag = Tag.Name(rawValue: "tag:flagpole,2026:implicit")
    static let resolver: Resolver = {
        do {
            return try Resolver.basic.appending(implicitTag, "^")
        } catch {
            return Resolver.basic
        }
    }()

    init(path: String) {
        self.path = path
    }

    mutating func read(_ original: String) -> JSONValue? {
        var text = original
        while true {
            let composed = YAMLNodeTree.compose(text)
            if let composed, !composed.mayRepeatKeys {
                tree = composed
                break
            }
            // Malformed, or a key may repeat: Yams' compose says which and where.
            do {
                guard try Yams.compose(yaml: text, YAMLDocumentReader.resolver) != nil else {
                    report(.error, at: SourceLocation(line: 1, column: 1), pointer: nil, "the file holds no YAML document")
                    return nil
                }
                guard let composed else {
                    // Yams reads what libyaml refused through the reader above: it cannot happen,
                    // as both hand libyaml the same bytes.
                    report(.error, at: SourceLocation(line: 1, column: 1), pointer: nil, "malformed YAML")
                    return nil
                }
                tree = composed  // no key repeats after all
                break
            } catch let YamlError.duplicatedKeysInMapping(duplicates, context) {
                let first = SourceLocation(line: context.mark.line, column: context.mark.column)
                if renamedDuplicates.count < 200, let key = duplicates.first,
                    let (renamed, second) = renameDuplicate(key: key, first: first, in: text)
                {
                    renamedDuplicates.append((key, first, second))
                    text = renamed
                    continue
                }
                reportRenamedDuplicatesWithoutTree()
                let keys = duplicates.map { "\"\($0)\"" }.joined(separator: ", ")
                report(
                    .error, at: first, pointer: nil,
                    "key \(keys) appears more than once in one mapping; flagd (yaml.v3) rejects the file",
                    hint: "remove or rename the repeated key")
                return nil
            } catch let error as YamlError {
                reportRenamedDuplicatesWithoutTree()
                reportSyntaxError(error)
                return nil
            } catch {
                report(.error, at: SourceLocation(line: 1, column: 1), pointer: nil, "malformed YAML: \(error)")
                return nil
            }
        }
        locations.reserveCapacity(tree.nodes.count)
        return convert(tree.root, path: LocationLog.root, depth: 0)
    }

    // MARK: Diagnostics

    private mutating func report(
        _ severity: Diagnostic.Severity, at location: SourceLocation, pointer: Int32?, _ message: String,
        hint: String? = nil
    ) {
        report(severity, at: location, flagKey: pointer.flatMap(locations.flagKey), message, hint: hint)
    }

    private mutating func report(
        _ severity: Diagnostic.Severity, at location: SourceLocation, flagKey: String?, _ message: String,
        hint: String? = nil
    ) {
        diagnostics.append(
            Diagnostic(severity, at: FileLocation(file: path, location), flagKey: flagKey, message: message, hint: hint))
    }

    /// The flag key the member `key` of the object at `parent` lies under, if any.
    private func flagKey(under parent: Int32, key: String) -> String? {
        let tokens = locations.depth(parent)
        if tokens == 1, locations.tokens(parent) == ["flags"] { return key }
        return tokens >= 2 ? locations.flagKey(parent) : nil
    }

    private mutating func reportSyntaxError(_ error: YamlError) {
        switch error {
        case .scanner(let context, let problem, let mark, _),
            .parser(let context, let problem, let mark, _),
            .composer(let context, let problem, let mark, _):
            var message = "malformed YAML: \(problem)"
            if let context { message += " (\(context.text) at \(context.mark.line):\(context.mark.column))" }
            report(.error, at: SourceLocation(line: mark.line, column: mark.column), pointer: nil, message)
        case .reader(let problem, _, _, _):
            report(.error, at: SourceLocation(line: 1, column: 1), pointer: nil, "unreadable YAML: \(problem)")
        default:
            report(.error, at: SourceLocation(line: 1, column: 1), pointer: nil, "malformed YAML: \(error)")
        }
    }

    // MARK: Duplicate keys

    /// Finds the next occurrence of `key` in the block mapping whose first key stands at `first`
    /// and renames it with a marker. Returns the new text and where the duplicate stands, or `nil`
    /// when the mapping is not a block mapping this scan understands (flow style).
    private func renameDuplicate(key: String, first: SourceLocation, in text: String) -> (String, SourceLocation)? {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let indent = first.column - 1
        guard first.line >= 1, first.line <= lines.count else { return nil }
        let spellings = [key, "\"\(key)\"", "'\(key)'"]
        var index = first.line
        while index < lines.count {
            let line = lines[index]
            let scalars = Array(line.unicodeScalars)
            let leading = scalars.prefix(while: { $0 == " " }).count
            let rest = String(String.UnicodeScalarView(scalars[leading...]))
            if rest.isEmpty || rest == "\r" || rest.hasPrefix("#") {
                index += 1
                continue
            }
            if leading < indent || (leading == 0 && (rest.hasPrefix("---") || rest.hasPrefix("..."))) { return nil }
            if leading == indent {
                for spelling in spellings where rest.hasPrefix(spelling) {
                    let after = rest.dropFirst(spelling.count).drop(while: { $0 == " " || $0 == "\t" })
                    guard after.first == ":" else { continue }
                    let afterColon = after.dropFirst().first
                    guard afterColon == nil || afterColon == " " || afterColon == "\t" || afterColon == "\r" else {
                        continue
                    }
                    let marker = YAMLDocumentReader.duplicateMarker + String(renamedDuplicates.count) + "__"
                    let insertAt = leading + (spelling == key ? 0 : 1)
                    var renamed = scalars
                    renamed.insert(contentsOf: marker.unicodeScalars, at: insertAt)
                    lines[index] = String(String.UnicodeScalarView(renamed))
                    return (lines.joined(separator: "\n"), SourceLocation(line: index + 1, column: indent + 1))
                }
            }
            index += 1
        }
        return nil
    }

    /// Reports the duplicates renamed so far when the file cannot be read after all.
    private mutating func reportRenamedDuplicatesWithoutTree() {
        for duplicate in renamedDuplicates {
            report(
                .error, at: duplicate.second, pointer: nil,
                "key \"\(duplicate.key)\" appears twice in one mapping (first at \(FileLocation(file: path, duplicate.first))); flagd (yaml.v3) rejects the file",
                hint: "remove the one you do not mean")
        }
    }

    /// The duplicate a renamed key stands for, if `key` carries the marker.
    private func renamedDuplicate(_ key: String) -> (key: String, first: SourceLocation, second: SourceLocation)? {
        guard key.hasPrefix(YAMLDocumentReader.duplicateMarker) else { return nil }
        let rest = key.dropFirst(YAMLDocumentReader.duplicateMarker.count)
        guard let end = rest.firstIndex(of: "_"), let n = Int(rest[..<end]), n < renamedDuplicates.count else {
            return nil
        }
        return renamedDuplicates[n]
    }

    private mutating func reportDuplicate(_ duplicate: (key: String, first: SourceLocation, second: SourceLocation), in pointer: Int32) {
        let first = FileLocation(file: path, duplicate.first)
        if locations.depth(pointer) == 1, locations.tokens(pointer) == ["flags"] {
            diagnostics.append(
                Diagnostic(
                    .error, at: FileLocation(file: path, duplicate.second), flagKey: duplicate.key,
                    message: "flag \"\(duplicate.key)\" is defined twice in this file (first at \(first))",
                    hint: "a flag key may appear once per environment; remove or rename one of them"))
        } else {
            report(
                .error, at: duplicate.second, pointer: pointer,
                "key \"\(duplicate.key)\" appears twice in one mapping (first at \(first)); flagd (yaml.v3) rejects the file",
                hint: "remove the one you do not mean")
        }
    }

    // MARK: Conversion

    private mutating func convert(_ node: Int32, path: Int32, depth: Int) -> JSONValue {
        let n = tree.nodes[Int(node)]
        locations.value(path, line: Int(n.line), column: Int(n.column))
        nodeBudget -= 1
        guard nodeBudget >= 0, depth <= YAMLDocumentReader.maximumDepth else {
            if !reportedBudget {
                reportedBudget = true
                report(
                    .error, at: tree.location(node), pointer: path,
                    "the document is too large or too deeply nested once aliases are expanded")
            }
            return .null
        }
        switch n.kind {
        case .scalar:
            return scalarValue(node, path: path)
        case .sequence:
            var out: [JSONValue] = []
            out.reserveCapacity(Int(n.count))
            for element in tree.entries(node) {
                out.append(convert(element, path: locations.child(path, index: out.count), depth: depth + 1))
            }
            return .array(out)
        case .mapping:
            return .object(convertMapping(node, path: path, depth: depth))
        }
    }

    private static func isImplicit(_ tag: String) -> Bool {
        tag.isEmpty || tag == implicitTag.rawValue
    }

    /// The tag a scalar resolves with: `""` when it has none.
    private func explicitTag(_ node: Int32) -> String {
        guard tree.hasTag(node) else { return "" }
        let tag = tree.tag(node)
        return YAMLDocumentReader.isImplicit(tag) ? "" : tag
    }

    private mutating func scalarValue(_ node: Int32, path: Int32) -> JSONValue {
        let text = tree.text(node)
        switch YAMLScalarResolver.resolve(text, plain: tree.nodes[Int(node)].plain, tag: explicitTag(node)) {
        case .value(let value, let note):
            if let note { noteScalar(note, text: text, at: tree.location(node), flagKey: locations.flagKey(path)) }
            return value
        case .invalid(let message):
            report(.error, at: tree.location(node), pointer: path, message)
            return .null
        }
    }

    private mutating func noteScalar(_ note: YAMLScalarResolver.Note, text: String, at: SourceLocation, flagKey: String?) {
        switch note {
        case .yaml11Boolean:
            let meaning = ["y", "yes", "on"].contains(text.lowercased()) ? "true" : "false"
            report(
                .warning, at: at, flagKey: flagKey,
                "\(text) is read as the string \"\(text)\" (YAML 1.2, as flagd reads it), not the boolean \(meaning) that YAML 1.1 tools read",
                hint: "quote it (\"\(text)\") to keep the string, or write \(meaning) for a boolean")
        case .integerTooLarge:
            report(
                .warning, at: at, flagKey: flagKey, "\(text) does not fit a 64-bit integer and is read as a float",
                hint: "use a smaller number, or quote it to keep a string")
        case .ignoredTag(let tag):
            report(
                .warning, at: at, flagKey: flagKey, "the tag \(tag) is ignored; the value is read as the string \"\(text)\"")
        }
    }

    private func isMergeKey(_ node: Int32) -> Bool {
        let n = tree.nodes[Int(node)]
        guard n.kind == .scalar, tree.text(node) == "<<" else { return false }
        guard tree.hasTag(node) else { return n.plain }
        let tag = tree.tag(node)
        return tag == Tag.Name.merge.rawValue || (YAMLDocumentReader.isImplicit(tag) && n.plain)
    }

    private mutating func convertMapping(_ node: Int32, path: Int32, depth: Int) -> [String: JSONValue] {
        let entries = tree.entries(node)
        var object: [String: JSONValue] = [:]
        object.reserveCapacity(entries.count / 2)
        var mergeSources: [Int32] = []
        // Two keys can become the same string only if one is not its text as written (`1.0`
        // becomes "1"), as the tree has no mapping with a key written twice, unless Yams found
        // such keys distinct (`a` and "a").
        var keysMayCollide = tree.mayRepeatKeys
        var i = entries.startIndex
        while i < entries.endIndex {
            let keyNode = entries[i], valueNode = entries[i + 1]
            i += 2
            if isMergeKey(keyNode) {
                mergeSources.append(valueNode)
                continue
            }
            guard let key = mappingKey(keyNode, parent: path) else { continue }
            if let duplicate = renamedDuplicate(key) {
                reportDuplicate(duplicate, in: path)
                continue
            }
            let child = locations.child(path, key: key)
            if !keysMayCollide, tree.nodes[Int(keyNode)].kind != .scalar || key != tree.text(keyNode) { keysMayCollide = true }
            if keysMayCollide, object[key] != nil {
                let first = firstKeyLocation(of: key, in: entries[..<(i - 2)]).map { " (\(FileLocation(file: self.path, $0)))" } ?? ""
                report(
                    .error, at: tree.location(keyNode), pointer: child,
                    "this key and an earlier one\(first) both become \"\(key)\" in JSON; flagd would keep either",
                    hint: "quote the keys so they differ, or remove one")
                continue
            }
            let at = tree.location(keyNode)
            locations.key(child, line: at.line, column: at.column)
            object[key] = convert(valueNode, path: child, depth: depth + 1)
        }
        // Merge keys (`<<: *base` or `<<: [*a, *b]`): explicit keys win, earlier sources win.
        var merged: [String: JSONValue] = [:]
        for source in mergeSources {
            let kind = tree.nodes[Int(source)].kind
            let sources: ArraySlice<Int32>
            switch kind {
            case .mapping: sources = [source]
            case .sequence: sources = tree.entries(source)
            case .scalar: sources = []
            }
            for node in sources {
                guard tree.nodes[Int(node)].kind == .mapping else {
                    report(.error, at: tree.location(node), pointer: path, "a merge key (<<) needs a mapping or a list of mappings")
                    continue
                }
                for (key, value) in convertMapping(node, path: path, depth: depth) where merged[key] == nil {
                    merged[key] = value
                }
            }
            if kind == .scalar {
                report(.error, at: tree.location(source), pointer: path, "a merge key (<<) needs a mapping or a list of mappings")
            }
        }
        for (key, value) in merged where object[key] == nil { object[key] = value }
        return object
    }

    /// Where the first key among `entries` (key, value, …) that becomes `key` stands: the one
    /// whose value the mapping kept.
    private func firstKeyLocation(of key: String, in entries: ArraySlice<Int32>) -> SourceLocation? {
        var i = entries.startIndex
        while i < entries.endIndex {
            let node = entries[i]
            i += 2
            guard !isMergeKey(node), tree.nodes[Int(node)].kind == .scalar,
                case .value(let value, _) = YAMLScalarResolver.resolve(
                    tree.text(node), plain: tree.nodes[Int(node)].plain, tag: explicitTag(node))
            else { continue }
            let candidate = YAMLScalarResolver.keyString(value)
            if candidate == key, renamedDuplicate(candidate) == nil { return tree.location(node) }
        }
        return nil
    }

    /// A mapping key as flagd's conversion spells it, warning when that differs from the text.
    private mutating func mappingKey(_ node: Int32, parent: Int32) -> String? {
        let at = tree.location(node)
        guard tree.nodes[Int(node)].kind == .scalar else {
            report(.error, at: at, pointer: parent, "a mapping or list cannot be a key here; flagd cannot convert it to JSON")
            return nil
        }
        let text = tree.text(node)
        switch YAMLScalarResolver.resolve(text, plain: tree.nodes[Int(node)].plain, tag: explicitTag(node)) {
        case .invalid(let message):
            report(.error, at: at, pointer: parent, message)
            return nil
        case .value(let value, let note):
            let key = YAMLScalarResolver.keyString(value)
            if let note {
                noteScalar(note, text: text, at: at, flagKey: flagKey(under: parent, key: key))
            } else if key != text, !key.hasPrefix(YAMLDocumentReader.duplicateMarker) {
                report(
                    .warning, at: at, flagKey: flagKey(under: parent, key: key),
                    "the key \(text) is read as \(value.isNull ? "null" : "a " + value.typeName), which flagd turns into the string \"\(key)\"",
                    hint: "quote the key (\"\(text)\") to keep it as written")
            }
            return key
        }
    }
}
