import CYaml

/// Where every node of one YAML or JSON file starts and ends, with its style, its anchor and
/// which aliases name it: what an edit by source spans needs (``FlagFileEditPlanner``).
///
/// Offsets count Unicode scalars from the start of the text (libyaml's `mark.index`), so
/// `Array(text.unicodeScalars)[start..<end]` is a node's text. Aliases are kept as nodes of their
/// own (``Kind/alias``), not expanded: an edit can then tell a value written in place from one
/// shared with other places.
package struct SourceSpans: Sendable {
    /// What a node is.
    package enum Kind: Sendable, Hashable {
        case scalar, sequence, mapping
        /// `*name`: the node ``Node/aliasOf`` names.
        case alias
    }

    /// How a node is written.
    package enum Style: Sendable, Hashable {
        /// An unquoted scalar (JSON numbers, booleans and null too).
        case plain
        case singleQuoted, doubleQuoted
        /// `|` or `>` block scalars.
        case blockScalar
        /// An indented YAML collection.
        case block
        /// `{…}` or `[…]`: every JSON collection, and YAML flow collections.
        case flow
    }

    /// One member of a mapping.
    package struct Member: Sendable, Hashable {
        /// The key as the loader reads it (flagd's spelling).
        package var key: String
        /// Where the key's text starts.
        package var keyStart: Int
        /// The value's node.
        package var value: Int
    }

    /// One node.
    package struct Node: Sendable, Hashable {
        package var kind: Kind
        package var style: Style
        /// The first scalar of the node (its anchor, when it has one, stands before it).
        package var start: Int
        /// One past its last scalar (for a block collection: the end of its last value).
        package var end: Int
        /// `&name` written on this node.
        package var anchor: String?
        /// For ``Kind/alias``: the node the alias names.
        package var aliasOf: Int?
        /// For mappings, in file order (a YAML merge key `<<` is a member named `<<`).
        package var members: [Member] = []
        /// For sequences, in file order.
        package var elements: [Int] = []
    }

    /// The file's text, as Unicode scalars.
    package var scalars: [Unicode.Scalar]
    /// Every node; ``root`` is the document.
    package var nodes: [Node]
    package var root: Int
    package var format: SourceDocument.Format
    /// For each node that aliases name, the alias nodes.
    package var aliases: [Int: [Int]]

    /// Reads the spans of a text; `nil` when the text is not one well-formed document.
    package static func read(_ text: String, format: SourceDocument.Format) -> SourceSpans? {
        let scalars = Array(text.unicodeScalars)
        var builder = Builder(scalars: scalars)
        let ok: Bool
        switch format {
        case .yaml: ok = builder.readYAML(text)
        case .json: ok = builder.readJSON()
        }
        guard ok, builder.root >= 0 else { return nil }
        var aliases: [Int: [Int]] = [:]
        for (i, n) in builder.nodes.enumerated() where n.kind == .alias {
            if let target = n.aliasOf { aliases[target, default: []].append(i) }
        }
        return SourceSpans(scalars: scalars, nodes: builder.nodes, root: builder.root, format: format, aliases: aliases)
    }

    /// The member named `key` of a mapping node, if any.
    package func member(_ key: String, of node: Int) -> Member? {
        nodes[node].members.last { $0.key == key }
    }

    /// The 0-based column of an offset (scalars since the line's start).
    package func column(of offset: Int) -> Int {
        offset - lineStart(of: offset)
    }

    /// The offset where the line holding `offset` starts.
    package func lineStart(of offset: Int) -> Int {
        var i = min(offset, scalars.count)
        while i > 0, scalars[i - 1] != "\n" { i -= 1 }
        return i
    }

    /// The offset of the line break ending the line that holds `offset` (or the text's end).
    package func lineEnd(of offset: Int) -> Int {
        var i = max(0, offset)
        while i < scalars.count, scalars[i] != "\n" { i += 1 }
        return i
    }

    /// The 1-based line of an offset.
    package func line(of offset: Int) -> Int {
        var n = 1
        for s in scalars[0..<min(offset, scalars.count)] where s == "\n" { n += 1 }
        return n
    }

    /// The text between two offsets.
    package func text(_ start: Int, _ end: Int) -> String {
        var s = String.UnicodeScalarView()
        s.append(contentsOf: scalars[start..<end])
        return String(s)
    }
}

private struct Builder {
    let scalars: [Unicode.Scalar]
    var nodes: [SourceSpans.Node] = []
    var root = -1

    init(scalars: [Unicode.Scalar]) {
        self.scalars = scalars
    }

    // MARK: YAML

    private struct Open {
        var node: Int
        /// Mappings: the key waiting for its value.
        var pendingKey: (String, Int)?
        var expectKey = true
    }

    mutating func readYAML(_ original: String) -> Bool {
        var text = original
        text.makeContiguousUTF8()
        let result: Bool? = text.utf8.withContiguousStorageIfAvailable { bytes in
            guard let base = bytes.baseAddress, bytes.count > 0 else { return false }
            let parser = UnsafeMutablePointer<yaml_parser_t>.allocate(capacity: 1)
            defer { parser.deallocate() }
            guard yaml_parser_initialize(parser) == 1 else { return false }
            defer { yaml_parser_delete(parser) }
            yaml_parser_set_encoding(parser, YAML_UTF8_ENCODING)
            yaml_parser_set_input_string(parser, base, bytes.count)
            return parseEvents(parser)
        }
        return result ?? false
    }

    private mutating func parseEvents(_ parser: UnsafeMutablePointer<yaml_parser_t>) -> Bool {
        var open: [Open] = []
        var anchors: [String: Int] = [:]
        var documents = 0
        var event = yaml_event_t()
        func name(_ p: UnsafeMutablePointer<yaml_char_t>?) -> String? { p.map { String(cString: $0) } }

        while true {
            guard yaml_parser_parse(parser, &event) == 1 else { return false }
            defer { yaml_event_delete(&event) }
            let start = Int(event.start_mark.index), end = Int(event.end_mark.index)
            var finished: Int?
            switch event.type {
            case YAML_STREAM_START_EVENT, YAML_DOCUMENT_END_EVENT:
                continue
            case YAML_DOCUMENT_START_EVENT:
                documents += 1
                if documents > 1 { return false }
                continue
            case YAML_STREAM_END_EVENT:
                return documents == 1 && root >= 0
            case YAML_ALIAS_EVENT:
                guard let alias = name(event.data.alias.anchor), let target = anchors[alias] else { return false }
                nodes.append(.init(kind: .alias, style: .plain, start: start, end: end, aliasOf: target))
                finished = nodes.count - 1
            case YAML_SCALAR_EVENT:
                let s = event.data.scalar
                let style: SourceSpans.Style
                switch s.style {
                case YAML_SINGLE_QUOTED_SCALAR_STYLE: style = .singleQuoted
                case YAML_DOUBLE_QUOTED_SCALAR_STYLE: style = .doubleQuoted
                case YAML_LITERAL_SCALAR_STYLE, YAML_FOLDED_SCALAR_STYLE: style = .blockScalar
                default: style = .plain
                }
                let anchor = name(s.anchor)
                // An anchored scalar's event starts at its anchor; the value starts after it.
                let valueStart = anchor == nil ? start : skipProperties(from: start, to: end)
                if var top = open.last, nodes[top.node].kind == .mapping, top.expectKey {
                    // A key: remember it; its value comes next.
                    let text =
                        s.length == 0
                        ? "" : String(decoding: UnsafeBufferPointer(start: s.value, count: Int(s.length)), as: UTF8.self)
                    let key: String
                    if case .value(let v, _) = YAMLScalarResolver.resolve(text, plain: style == .plain, tag: "") {
                        key = YAMLScalarResolver.keyString(v)
                    } else {
                        key = text
                    }
                    top.pendingKey = (key, valueStart)
                    top.expectKey = false
                    open[open.count - 1] = top
                    continue
                }
                nodes.append(.init(kind: .scalar, style: style, start: valueStart, end: trimmedEnd(end, after: valueStart), anchor: anchor))
                if let anchor { anchors[anchor] = nodes.count - 1 }
                finished = nodes.count - 1
            case YAML_SEQUENCE_START_EVENT, YAML_MAPPING_START_EVENT:
                let isMapping = event.type == YAML_MAPPING_START_EVENT
                let anchor = name(isMapping ? event.data.mapping_start.anchor : event.data.sequence_start.anchor)
                let flow =
                    isMapping
                    ? event.data.mapping_start.style == YAML_FLOW_MAPPING_STYLE
                    : event.data.sequence_start.style == YAML_FLOW_SEQUENCE_STYLE
                if let top = open.last, nodes[top.node].kind == .mapping, top.expectKey { return false }  // a collection as a key
                let valueStart = anchor == nil ? start : skipProperties(from: start, to: max(end, start + 1))
                nodes.append(
                    .init(kind: isMapping ? .mapping : .sequence, style: flow ? .flow : .block, start: valueStart, end: valueStart, anchor: anchor))
                if let anchor { anchors[anchor] = nodes.count - 1 }
                open.append(Open(node: nodes.count - 1))
                continue
            case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
                guard let closed = open.popLast() else { return false }
                let n = closed.node
                if nodes[n].style == .flow {
                    nodes[n].end = end
                } else {
                    let last = nodes[n].kind == .mapping ? nodes[n].members.last?.value : nodes[n].elements.last
                    nodes[n].end = last.map { nodes[$0].end } ?? end
                }
                finished = n
            default:
                return false
            }
            guard let node = finished else { continue }
            guard var top = open.popLast() else {
                root = node
                continue
            }
            if nodes[top.node].kind == .sequence {
                nodes[top.node].elements.append(node)
            } else {
                if top.expectKey { return false }  // an alias or collection as a key
                guard let (key, keyStart) = top.pendingKey else { return false }
                nodes[top.node].members.append(.init(key: key, keyStart: keyStart, value: node))
                top.pendingKey = nil
                top.expectKey = true
            }
            open.append(top)
        }
    }

    /// The first offset after a node's properties (`&anchor`, `!tag`) and the spaces after them.
    private func skipProperties(from start: Int, to end: Int) -> Int {
        var i = start
        while i < scalars.count, scalars[i] == "&" || scalars[i] == "!" {
            while i < scalars.count, !isSpace(scalars[i]) { i += 1 }
            while i < scalars.count, isSpace(scalars[i]) || scalars[i] == "\n" || scalars[i] == "\r" { i += 1 }
        }
        return i
    }

    /// A scalar's end without the line breaks and spaces a block scalar's end mark includes.
    private func trimmedEnd(_ end: Int, after start: Int) -> Int {
        var e = min(end, scalars.count)
        while e > start, isSpace(scalars[e - 1]) || scalars[e - 1] == "\n" || scalars[e - 1] == "\r" { e -= 1 }
        return e
    }

    private func isSpace(_ s: Unicode.Scalar) -> Bool { s == " " || s == "\t" }

    // MARK: JSON

    mutating func readJSON() -> Bool {
        var i = 0
        skipWhitespace(&i)
        guard let node = jsonValue(&i, depth: 0) else { return false }
        root = node
        return true
    }

    private func skipWhitespace(_ i: inout Int) {
        while i < scalars.count, [" ", "\t", "\n", "\r"].contains(scalars[i]) { i += 1 }
    }

    private mutating func jsonValue(_ i: inout Int, depth: Int) -> Int? {
        guard i < scalars.count, depth <= JSONParser.maximumDepth else { return nil }
        let start = i
        switch scalars[i] {
        case "{":
            nodes.append(.init(kind: .mapping, style: .flow, start: start, end: start))
            let n = nodes.count - 1
            i += 1
            skipWhitespace(&i)
            if i < scalars.count, scalars[i] == "}" {
                i += 1
                nodes[n].end = i
                return n
            }
            while true {
                skipWhitespace(&i)
                let keyStart = i
                guard let key = jsonString(&i) else { return nil }
                skipWhitespace(&i)
                guard i < scalars.count, scalars[i] == ":" else { return nil }
                i += 1
                skipWhitespace(&i)
                guard let value = jsonValue(&i, depth: depth + 1) else { return nil }
                nodes[n].members.append(.init(key: key, keyStart: keyStart, value: value))
                skipWhitespace(&i)
                guard i < scalars.count else { return nil }
                if scalars[i] == "," {
                    i += 1
                    continue
                }
                guard scalars[i] == "}" else { return nil }
                i += 1
                nodes[n].end = i
                return n
            }
        case "[":
            nodes.append(.init(kind: .sequence, style: .flow, start: start, end: start))
            let n = nodes.count - 1
            i += 1
            skipWhitespace(&i)
            if i < scalars.count, scalars[i] == "]" {
                i += 1
                nodes[n].end = i
                return n
            }
            while true {
                skipWhitespace(&i)
                guard let value = jsonValue(&i, depth: depth + 1) else { return nil }
                nodes[n].elements.append(value)
                skipWhitespace(&i)
                guard i < scalars.count else { return nil }
                if scalars[i] == "," {
                    i += 1
                    continue
                }
                guard scalars[i] == "]" else { return nil }
                i += 1
                nodes[n].end = i
                return n
            }
        case "\"":
            guard jsonString(&i) != nil else { return nil }
            nodes.append(.init(kind: .scalar, style: .doubleQuoted, start: start, end: i))
            return nodes.count - 1
        default:
            while i < scalars.count, !([",", "}", "]", " ", "\t", "\n", "\r"] as [Unicode.Scalar]).contains(scalars[i]) { i += 1 }
            guard i > start else { return nil }
            nodes.append(.init(kind: .scalar, style: .plain, start: start, end: i))
            return nodes.count - 1
        }
    }

    /// Reads a JSON string literal at `i` and returns its value (parsed by ``JSONParser``).
    private func jsonString(_ i: inout Int) -> String? {
        guard i < scalars.count, scalars[i] == "\"" else { return nil }
        let start = i
        i += 1
        while i < scalars.count, scalars[i] != "\"" {
            if scalars[i] == "\\" { i += 1 }
            i += 1
        }
        guard i < scalars.count else { return nil }
        i += 1
        var literal = String.UnicodeScalarView()
        literal.append(contentsOf: scalars[start..<i])
        return (try? JSONParser.parse(String(literal)))?.stringValue
    }
}
