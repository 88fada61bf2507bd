/// Helpers for a merged flagd document (`{"flags":…, "$evaluators":…, "metadata":…}`).
package enum FlagDocument {
    /// Every flag of the document with `$ref`s replaced by their evaluators, so each definition
    /// stands alone (what Flagpole stores in Redis). A `$ref` that names no evaluator stays in
    /// place and evaluates to PARSE_ERROR, as in flagd.
    package static func resolvedFlags(_ document: JSONValue) -> [String: JSONValue] {
        let evaluators = document["$evaluators"]?.objectValue ?? [:]
        var out: [String: JSONValue] = [:]
        for (key, flag) in document["flags"]?.objectValue ?? [:] {
            guard case .object(var f) = flag, let targeting = f["targeting"] else {
                out[key] = flag
                continue
            }
            if let resolved = try? EvaluatorReferences.resolve(targeting, evaluators: evaluators) {
                f["targeting"] = resolved
            }
            out[key] = .object(f)
        }
        return out
    }

    /// The document's flag-set metadata.
    package static func metadata(_ document: JSONValue) -> [String: JSONValue] {
        document["metadata"]?.objectValue ?? [:]
    }

    /// SHA-256 of the canonical JSON of the resolved flags and the metadata: equal for equal content,
    /// whatever the files' layout, order or format.
    package static func contentHash(flags: [String: JSONValue], metadata: [String: JSONValue]) -> String {
        SHA256.hex(JSONValue.object(["flags": .object(flags), "metadata": .object(metadata)]).jsonString.utf8)
    }
}
