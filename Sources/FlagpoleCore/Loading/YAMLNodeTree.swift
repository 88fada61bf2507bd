import CYaml

/// One YAML document composed from libyaml's events into flat arrays: the same nodes, marks,
/// tags and styles Yams' `compose` gives, without a class per tag or a duplicate-key check that
/// resolves every key through a regular expression.
///
/// Composing succeeds only for well-formed text that holds exactly one document and no undefined
/// alias; anything else is left to Yams, which says what is wrong (see ``YAMLDocumentReader``).
/// An alias is the node it names, as in Yams, so a value reached twice is stored once.
struct YAMLNodeTree {
    enum Kind: UInt8 {
        case scalar, sequence, mapping
    }

    struct Node {
        var kind: Kind
        /// Scalars: written unquoted (plain style).
        var plain: Bool
        /// Index into ``tags``; 0 is no tag.
        var tag: Int32
        /// Where the node starts, 1-based (columns count Unicode scalars).
        var line: Int32
        var column: Int32
        /// Scalars: index into ``texts``. Collections: first entry in ``children``.
        var start: Int32
        /// Collections: entries in ``children`` (a mapping has two per pair: key, value).
        var count: Int32
    }

    /// The tag quoted scalars without a tag get, as Yams tags them.
    static let stringTag = "tag:yaml.org,2002:str"

    private(set) var nodes: [Node] = []
    private(set) var texts: [String] = []
    private(set) var children: [Int32] = []
    /// Tag names by index; 0 is the empty name (no tag), 1 is ``stringTag``.
    private(set) var tags: [String] = ["", YAMLNodeTree.stringTag]
    /// The document's root node.
    private(set) var root: Int32 = -1
    /// Whether some mapping may have the same key twice by Yams' rules (it compares keys by their
    /// text and resolved tag; this looks at the text alone, so it may say yes when Yams says no).
    private(set) var mayRepeatKeys = false

    private var tagIndex: [String: Int32] = ["": 0, YAMLNodeTree.stringTag: 1]

    /// Composes the single document of `text`, or returns nil when libyaml reports an error, an
    /// alias names no anchor, or the text does not hold exactly one document.
    static func compose(_ text: String) -> YAMLNodeTree? {
        var text = text
        text.makeContiguousUTF8()
        let composed: YAMLNodeTree?? = text.utf8.withContiguousStorageIfAvailable { bytes in
            var tree = YAMLNodeTree()
            return tree.compose(bytes) ? tree : nil
        }
        return composed ?? nil
    }

    // MARK: Reading

    func text(_ node: Int32) -> String { texts[Int(nodes[Int(node)].start)] }

    func tag(_ node: Int32) -> String { tags[Int(nodes[Int(node)].tag)] }

    /// Whether the node was written with a tag (or is a quoted scalar, which Yams tags `str`).
    func hasTag(_ node: Int32) -> Bool { nodes[Int(node)].tag != 0 }

    func location(_ node: Int32) -> SourceLocation {
        let n = nodes[Int(node)]
        return SourceLocation(line: Int(n.line), column: Int(n.column))
    }

    /// The entries of a collection: the elements of a sequence, or key, value, key, value… of a mapping.
    func entries(_ node: Int32) -> ArraySlice<Int32> {
        let n = nodes[Int(node)]
        return children[Int(n.start)..<Int(n.start + n.count)]
    }

    // MARK: Composing

    private struct Open {
        var kind: Kind
        var tag: Int32
        var line: Int32
        var column: Int32
        var anchor: String?
        /// Where this collection's entries begin in `pending`.
        var first: Int
    }

    private mutating func compose(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return false }
        // Enough for dense flow-style files (a node every 7 bytes, a scalar every 10), so the
        // arrays do not grow by copying; pages reserved and never written cost nothing.
        nodes.reserveCapacity(bytes.count / 6)
        texts.reserveCapacity(bytes.count / 8)
        children.reserveCapacity(bytes.count / 6)
        // libyaml keeps a pointer to the parser inside it: it must not move.
        let parser = UnsafeMutablePointer<yaml_parser_t>.allocate(capacity: 1)
        defer { parser.deallocate() }
        guard yaml_parser_initialize(parser) == 1 else { return false }
        defer { yaml_parser_delete(parser) }
        yaml_parser_set_encoding(parser, YAML_UTF8_ENCODING)
        yaml_parser_set_input_string(parser, base, bytes.count)

        var open: [Open] = []
        var pending: [Int32] = []
        var anchors: [String: Int32] = [:]
        var documents = 0
        var event = yaml_event_t()

        func add(_ node: Int32) {
            if open.isEmpty { root = node } else { pending.append(node) }
        }
        func anchorName(_ pointer: UnsafeMutablePointer<yaml_char_t>?) -> String? {
            pointer.map { String(cString: $0) }
        }

        while true {
            guard yaml_parser_parse(parser, &event) == 1 else { return false }
            defer { yaml_event_delete(&event) }
            let line = Int32(truncatingIfNeeded: event.start_mark.line + 1)
            let column = Int32(truncatingIfNeeded: event.start_mark.column + 1)
            switch event.type {
            case YAML_STREAM_START_EVENT, YAML_DOCUMENT_END_EVENT:
                continue
            case YAML_DOCUMENT_START_EVENT:
                documents += 1
                if documents > 1 { return false }
            case YAML_STREAM_END_EVENT:
                return documents == 1 && root >= 0
            case YAML_ALIAS_EVENT:
                guard let name = anchorName(event.data.alias.anchor), let node = anchors[name] else { return false }
                add(node)
            case YAML_SCALAR_EVENT:
                let scalar = event.data.scalar
                let text =
                    scalar.length == 0
                    ? "" : String(decoding: UnsafeBufferPointer(start: scalar.value, count: Int(scalar.length)), as: UTF8.self)
                let tag: Int32 = scalar.quoted_implicit == 1 ? 1 : scalar.tag.map { intern(String(cString: $0)) } ?? 0
                let node = Int32(truncatingIfNeeded: nodes.count)
                nodes.append(
                    Node(
                        kind: .scalar, plain: scalar.style == YAML_PLAIN_SCALAR_STYLE, tag: tag, line: line, column: column,
                        start: Int32(truncatingIfNeeded: texts.count), count: 0))
                texts.append(text)
                if let anchor = anchorName(scalar.anchor) { anchors[anchor] = node }
                add(node)
            case YAML_SEQUENCE_START_EVENT:
                let start = event.data.sequence_start
                open.append(
                    Open(
                        kind: .sequence, tag: start.tag.map { intern(String(cString: $0)) } ?? 0, line: line, column: column,
                        anchor: anchorName(start.anchor), first: pending.count))
            case YAML_MAPPING_START_EVENT:
                let start = event.data.mapping_start
                open.append(
                    Open(
                        kind: .mapping, tag: start.implicit != 0 ? 0 : start.tag.map { intern(String(cString: $0)) } ?? 0,
                        line: line, column: column, anchor: anchorName(start.anchor), first: pending.count))
            case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
                guard let collection = open.popLast() else { return false }
                let start = children.count
                children.append(contentsOf: pending[collection.first...])
                pending.removeSubrange(collection.first...)
                if collection.kind == .mapping, !mayRepeatKeys { mayRepeatKeys = keysMayRepeat(from: start) }
                let node = Int32(truncatingIfNeeded: nodes.count)
                nodes.append(
                    Node(
                        kind: collection.kind, plain: false, tag: collection.tag, line: collection.line,
                        column: collection.column, start: Int32(truncatingIfNeeded: start),
                        count: Int32(truncatingIfNeeded: children.count - start)))
                if let anchor = collection.anchor { anchors[anchor] = node }
                add(node)
            default:
                return false
            }
        }
    }

    private mutating func intern(_ name: String) -> Int32 {
        if let i = tagIndex[name] { return i }
        let i = Int32(truncatingIfNeeded: tags.count)
        tags.append(name)
        tagIndex[name] = i
        return i
    }

    /// Whether the mapping whose entries start at `start` (up to the end of ``children``) may
    /// have a key twice: two scalar keys with the same text, or two keys that are collections
    /// (left to Yams to compare).
    private func keysMayRepeat(from start: Int) -> Bool {
        let end = children.count
        let pairs = (end - start) / 2
        guard pairs > 1 else { return false }
        var collectionKeys = 0
        if pairs <= 8 {
            var i = start
            while i < end {
                let key = nodes[Int(children[i])]
                if key.kind == .scalar {
                    let text = texts[Int(key.start)]
                    var j = start
                    while j < i {
                        let other = nodes[Int(children[j])]
                        if other.kind == .scalar, texts[Int(other.start)] == text { return true }
                        j += 2
                    }
                } else {
                    collectionKeys += 1
                }
                i += 2
            }
        } else {
            var seen = Set<String>(minimumCapacity: pairs)
            var i = start
            while i < end {
                let key = nodes[Int(children[i])]
                if key.kind == .scalar {
                    if !seen.insert(texts[Int(key.start)]).inserted { return true }
                } else {
                    collectionKeys += 1
                }
                i += 2
            }
        }
        return collectionKeys > 1
    }
}
