import Yams

/// Reads a YAML document into a ``JSONValue`` with flagd's meaning (see ``YAMLScalarResolver``),
/// recording where every value and key stands.
///
/// Yams composes the node tree (libyaml marks give line and column); scalars are resolved here
/// rather than by Yams' YAML 1.1 resolver, which would read `on`/`yes` as booleans and `16:00` as
/// the sexagesimal integer 960.
struct YAMLDocumentReader {
    let path: String
    private(set) var sourceMap = FileSourceMap()
    private(set) var diagnostics: [Diagnostic] = []

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
        var root: Node?
        while true {
            do {
                root = try Yams.compose(yaml: text, YAMLDocumentReader.resolver)
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
        guard let root else {
            report(.error, at: SourceLocation(line: 1, column: 1), pointer: nil, "the file holds no YAML document")
            return nil
        }
        return convert(root, pointer: "", depth: 0)
    }

    // MARK: Diagnostics

    private mutating func report(
        _ severity: Diagnostic.Severity, at location: SourceLocation, pointer: String?, _ message: String,
        hint: String? = nil
    ) {
        diagnostics.append(
            Diagnostic(
                severity, at: FileLocation(file: path, location), flagKey: pointer.flatMap(JSONPointer.flagKey(of:)),
                message: message, hint: hint))
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

    private mutating func reportDuplicate(_ duplicate: (key: String, first: SourceLocation, second: SourceLocation), in pointer: String) {
        let first = FileLocation(file: path, duplicate.first)
        let tokens = JSONPointer.tokens(pointer)
        if tokens == ["flags"] {
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

    private func location(_ mark: Mark?) -> SourceLocation? {
        mark.map { SourceLocation(line: $0.line, column: $0.column) }
    }

    private mutating func convert(_ node: Node, pointer: String, depth: Int) -> JSONValue {
        if let l = location(node.mark) { sourceMap.values[pointer] = l }
        nodeBudget -= 1
        guard nodeBudget >= 0, depth <= YAMLDocumentReader.maximumDepth else {
            if !reportedBudget {
                reportedBudget = true
                report(
                    .error, at: sourceMap.valueLocation(of: pointer), pointer: pointer,
                    "the document is too large or too deeply nested once aliases are expanded")
            }
            return .null
        }
        switch node {
        case .scalar(let scalar):
            return scalarValue(scalar, pointer: pointer)
        case .sequence(let sequence):
            var out: [JSONValue] = []
            out.reserveCapacity(sequence.count)
            for element in sequence {
                out.append(convert(element, pointer: JSONPointer.child(pointer, out.count), depth: depth + 1))
            }
            return .array(out)
        case .mapping(let mapping):
            return .object(convertMapping(mapping, pointer: pointer, depth: depth))
        case .alias:
            report(.error, at: sourceMap.valueLocation(of: pointer), pointer: pointer, "unresolved YAML alias")
            return .null
        }
    }

    private static func isImplicit(_ tag: Tag) -> Bool {
        let name = tag.description
        return name.isEmpty || name == implicitTag.rawValue
    }

    private mutating func scalarValue(_ scalar: Node.Scalar, pointer: String) -> JSONValue {
        let tag = YAMLDocumentReader.isImplicit(scalar.tag) ? "" : scalar.tag.description
        switch YAMLScalarResolver.resolve(scalar.string, plain: scalar.style == .plain, tag: tag) {
        case .value(let value, let note):
            if let note { noteScalar(note, text: scalar.string, at: location(scalar.mark), pointer: pointer) }
            return value
        case .invalid(let message):
            report(.error, at: location(scalar.mark) ?? sourceMap.valueLocation(of: pointer), pointer: pointer, message)
            return .null
        }
    }

    private mutating func noteScalar(_ note: YAMLScalarResolver.Note, text: String, at mark: SourceLocation?, pointer: String) {
        let at = mark ?? sourceMap.valueLocation(of: pointer)
        switch note {
        case .yaml11Boolean:
            let meaning = ["y", "yes", "on"].contains(text.lowercased()) ? "true" : "false"
            report(
                .warning, at: at, pointer: pointer,
                "\(text) is read as the string \"\(text)\" (YAML 1.2, as flagd reads it), not the boolean \(meaning) that YAML 1.1 tools read",
                hint: "quote it (\"\(text)\") to keep the string, or write \(meaning) for a boolean")
        case .integerTooLarge:
            report(
                .warning, at: at, pointer: pointer, "\(text) does not fit a 64-bit integer and is read as a float",
                hint: "use a smaller number, or quote it to keep a string")
        case .ignoredTag(let tag):
            report(
                .warning, at: at, pointer: pointer, "the tag \(tag) is ignored; the value is read as the string \"\(text)\"")
        }
    }

    private static func isMergeKey(_ node: Node) -> Bool {
        guard case .scalar(let s) = node, s.string == "<<" else { return false }
        return s.tag.description == Tag.Name.merge.rawValue || (isImplicit(s.tag) && s.style == .plain)
    }

    private mutating func convertMapping(_ mapping: Node.Mapping, pointer: String, depth: Int) -> [String: JSONValue] {
        var object: [String: JSONValue] = [:]
        var mergeSources: [Node] = []
        for (keyNode, valueNode) in mapping {
            if YAMLDocumentReader.isMergeKey(keyNode) {
                mergeSources.append(valueNode)
                continue
            }
            guard let key = mappingKey(keyNode, parent: pointer) else { continue }
            if let duplicate = renamedDuplicate(key) {
                reportDuplicate(duplicate, in: pointer)
                continue
            }
            let child = JSONPointer.child(pointer, key)
            if object[key] != nil {
                let first = sourceMap.keys[child].map { " (\(FileLocation(file: path, $0)))" } ?? ""
                report(
                    .error, at: location(keyNode.mark) ?? sourceMap.valueLocation(of: pointer), pointer: child,
                    "this key and an earlier one\(first) both become \"\(key)\" in JSON; flagd would keep either",
                    hint: "quote the keys so they differ, or remove one")
                continue
            }
            if let l = location(keyNode.mark) { sourceMap.keys[child] = l }
            object[key] = convert(valueNode, pointer: child, depth: depth + 1)
        }
        // Merge keys (`<<: *base` or `<<: [*a, *b]`): explicit keys win, earlier sources win.
        var merged: [String: JSONValue] = [:]
        for source in mergeSources {
            let sources: [Node]
            switch source {
            case .mapping: sources = [source]
            case .sequence(let s): sources = Array(s)
            default: sources = []
            }
            for node in sources {
                guard case .mapping(let m) = node else {
                    report(
                        .error, at: location(node.mark) ?? sourceMap.valueLocation(of: pointer), pointer: pointer,
                        "a merge key (<<) needs a mapping or a list of mappings")
                    continue
                }
                for (key, value) in convertMapping(m, pointer: pointer, depth: depth) where merged[key] == nil {
                    merged[key] = value
                }
            }
            if case .scalar = source {
                report(
                    .error, at: location(source.mark) ?? sourceMap.valueLocation(of: pointer), pointer: pointer,
                    "a merge key (<<) needs a mapping or a list of mappings")
            }
        }
        for (key, value) in merged where object[key] == nil { object[key] = value }
        return object
    }

    /// A mapping key as flagd's conversion spells it, warning when that differs from the text.
    private mutating func mappingKey(_ node: Node, parent: String) -> String? {
        guard case .scalar(let scalar) = node else {
            report(
                .error, at: location(node.mark) ?? sourceMap.valueLocation(of: parent), pointer: parent,
                "a mapping or list cannot be a key here; flagd cannot convert it to JSON")
            return nil
        }
        let tag = YAMLDocumentReader.isImplicit(scalar.tag) ? "" : scalar.tag.description
        let resolution = YAMLScalarResolver.resolve(scalar.string, plain: scalar.style == .plain, tag: tag)
        let at = location(scalar.mark) ?? sourceMap.valueLocation(of: parent)
        switch resolution {
        case .invalid(let message):
            report(.error, at: at, pointer: parent, message)
            return nil
        case .value(let value, let note):
            let key = YAMLScalarResolver.keyString(value)
            let pointer = JSONPointer.child(parent, key)
            if let note {
                noteScalar(note, text: scalar.string, at: at, pointer: pointer)
            } else if key != scalar.string, !key.hasPrefix(YAMLDocumentReader.duplicateMarker) {
                report(
                    .warning, at: at, pointer: pointer,
                    "the key \(scalar.string) is read as \(value.isNull ? "null" : "a " + value.typeName), which flagd turns into the string \"\(key)\"",
                    hint: "quote the key (\"\(scalar.string)\") to keep it as written")
            }
            return key
        }
    }
}
