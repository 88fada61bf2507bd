/// One flag file (or the project config) parsed into a ``JSONValue``, with where every value
/// stands and the problems found while parsing.
///
/// JSON is read by the strict ``JSONParser``; YAML the way flagd reads it (yaml.v3, YAML 1.2
/// core schema, converted to JSON): see ``Format/yaml``.
package struct SourceDocument: Sendable {
    /// The syntax of a file.
    package enum Format: String, Sendable, Hashable {
        /// RFC 8259 JSON.
        case json
        /// YAML, read with flagd's (yaml.v3's) rules: `true`/`false` (any of `true`, `True`,
        /// `TRUE`) are booleans but YAML 1.1's `yes`/`no`/`on`/`off`/`y`/`n` are strings;
        /// integers stay integers (`0x1F`, `0o17`, `017`, `1_000` included), floats stay floats;
        /// timestamps stay strings; merge keys (`<<`) and anchors work; non-string keys are
        /// turned into strings the way Go's `%v` prints them (`true:` → `"true"`, `1.0:` → `"1"`).
        case yaml

        /// The format a path's extension names: `.json` is JSON, `.yaml` and `.yml` are YAML;
        /// anything else is JSON when the text starts with `{`, YAML otherwise.
        package init(path: String, text: String) {
            let lower = path.lowercased()
            if lower.hasSuffix(".json") {
                self = .json
            } else if lower.hasSuffix(".yaml") || lower.hasSuffix(".yml") {
                self = .yaml
            } else {
                self = text.drop(while: { $0.isWhitespace }).first == "{" ? .json : .yaml
            }
        }
    }

    /// The path, as given.
    package var path: String
    /// The syntax the text was read as.
    package var format: Format
    /// The document, or `nil` when the text is malformed (the diagnostics say where).
    package var value: JSONValue?
    /// Where each value stands.
    package var sourceMap: FileSourceMap
    /// Problems found while parsing: malformed text (error), duplicate keys, YAML values that
    /// other YAML readers would read differently (warnings).
    package var diagnostics: [Diagnostic]
    /// The locations ``sourceMap`` leaves out, when it holds only the shallow ones (see
    /// ``parseForLoading(path:text:)``).
    var deferred: DeferredLocations?

    /// Creates a document from its parts.
    package init(path: String, format: Format, value: JSONValue?, sourceMap: FileSourceMap, diagnostics: [Diagnostic]) {
        self.path = path
        self.format = format
        self.value = value
        self.sourceMap = sourceMap
        self.diagnostics = diagnostics
    }

    /// Parses a file's text; the format comes from ``Format/init(path:text:)``.
    package static func parse(path: String, text: String) -> SourceDocument {
        parse(path: path, text: text, format: Format(path: path, text: text))
    }

    /// Parses text in the given format.
    package static func parse(path: String, text: String, format: Format) -> SourceDocument {
        parse(path: path, text: text, format: format, shallow: false)
    }

    /// How deep the pointers are that a document parsed for loading keeps at hand: the root, the
    /// top-level keys, and each flag, evaluator and flag-set metadata key.
    static let loadingDepth = 2

    /// Parses a file for ``FlagSetLoader``: ``sourceMap`` holds the pointers of at most
    /// ``loadingDepth`` tokens, and ``location(of:)`` and ``keyLocation(of:)`` find deeper ones in
    /// the parser's log when asked (see ``DeferredLocations``), so a file with no problems never
    /// builds a pointer for every value. The answers are those of ``parse(path:text:)``.
    static func parseForLoading(path: String, text: String) -> SourceDocument {
        parse(path: path, text: text, format: Format(path: path, text: text), shallow: true)
    }

    private static func parse(path: String, text: String, format: Format, shallow: Bool) -> SourceDocument {
        switch format {
        case .yaml:
            var reader = YAMLDocumentReader(path: path)
            let value = reader.read(text)
            var document = SourceDocument(
                path: path, format: .yaml, value: value, sourceMap: FileSourceMap(), diagnostics: reader.diagnostics)
            document.setLocations(reader.locations, shallow: shallow)
            return document
        case .json:
            if shallow {
                do {
                    if let (value, log) = try JSONParser.parseWithLocationLog(text) {
                        var document = SourceDocument(
                            path: path, format: .json, value: value, sourceMap: FileSourceMap(), diagnostics: [])
                        document.setLocations(log, shallow: true)
                        return document
                    }
                } catch {
                    // Reported below, by the parse that records every location.
                }
            }
            do {
                let (value, map) = try JSONParser.parseWithSourceMap(text)
                var doc = SourceDocument(
                    path: path, format: .json, value: value, sourceMap: FileSourceMap(values: map.locations),
                    diagnostics: [])
                for duplicate in map.duplicateKeys {
                    doc.reportDuplicateJSONKey(pointer: duplicate.pointer, at: duplicate.locations)
                }
                return doc
            } catch {
                return SourceDocument(
                    path: path, format: .json, value: nil, sourceMap: FileSourceMap(),
                    diagnostics: [
                        Diagnostic(
                            .error, at: FileLocation(file: path, error.location),
                            message: "malformed JSON: \(error.message)")
                    ])
            }
        }
    }

    private mutating func setLocations(_ log: LocationLog, shallow: Bool) {
        if shallow {
            sourceMap = log.map(maxDepth: SourceDocument.loadingDepth)
            deferred = DeferredLocations(log: log, shallowDepth: SourceDocument.loadingDepth)
        } else {
            sourceMap = log.map()
        }
    }

    /// Where the value at `pointer` starts (or its nearest ancestor).
    package func location(of pointer: String) -> FileLocation {
        if let deferred = deferred(for: pointer) { return FileLocation(file: path, deferred.valueLocation(of: pointer)) }
        return FileLocation(file: path, sourceMap.valueLocation(of: pointer))
    }

    /// Where the member at `pointer` is named (its key in YAML; its value in JSON).
    package func keyLocation(of pointer: String) -> FileLocation {
        if let deferred = deferred(for: pointer) { return FileLocation(file: path, deferred.keyLocation(of: pointer)) }
        return FileLocation(file: path, sourceMap.keyLocation(of: pointer))
    }

    /// The deferred locations, when `pointer` lies deeper than ``sourceMap`` reaches.
    private func deferred(for pointer: String) -> DeferredLocations? {
        guard let deferred, JSONPointer.depth(pointer) > deferred.shallowDepth else { return nil }
        return deferred
    }

    /// The document with every location in ``sourceMap``.
    func withFullSourceMap() -> SourceDocument {
        guard let deferred else { return self }
        var document = self
        document.sourceMap = deferred.map
        document.deferred = nil
        return document
    }

    private mutating func reportDuplicateJSONKey(pointer: String, at locations: [SourceLocation]) {
        let tokens = JSONPointer.tokens(pointer)
        guard let key = tokens.last else { return }
        let first = FileLocation(file: path, locations[0])
        for later in locations.dropFirst() {
            let here = FileLocation(file: path, later)
            if tokens.count == 2, tokens[0] == "flags" {
                diagnostics.append(
                    Diagnostic(
                        .error, at: here, flagKey: key,
                        message: "flag \"\(key)\" is defined twice in this file (first at \(first))",
                        hint: "a flag key may appear once per environment; remove or rename one of them"))
            } else if tokens.count == 2, tokens[0] == "$evaluators" {
                diagnostics.append(
                    Diagnostic(
                        .error, at: here,
                        message: "evaluator \"\(key)\" is defined twice in this file (first at \(first))",
                        hint: "remove or rename one of them"))
            } else {
                diagnostics.append(
                    Diagnostic(
                        .warning, at: here, flagKey: JSONPointer.flagKey(of: pointer),
                        message: "key \"\(key)\" appears twice in one object (first at \(first)); the last one wins",
                        hint: "remove the one you do not mean"))
            }
        }
    }
}
