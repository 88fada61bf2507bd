import FlagpoleCore

/// The message published on an environment's change channel after every change.
///
/// ```json
/// {"revision": 13, "previousRevision": 12, "changed": ["new-checkout"], "removed": [],
///  "flags": {"new-checkout": {"definition": {…}, "override": {…} | null}}}
/// ```
/// `flags` carries the changed flags' definitions and overrides when they are small (up to
/// ``inlineLimit`` bytes in all); without it a client fetches the `changed` keys with one `HMGET`
/// of the flags and overrides hashes. A `revision` that is not `previousRevision + 1` of the last
/// one a client applied means it missed something and must read everything again.
package struct ChangeEvent: Sendable, Hashable {
    /// Inline definitions only while the message stays under this size. 64 KiB.
    package static let inlineLimit = 64 * 1024

    package var revision: Int64
    package var previousRevision: Int64
    /// Flags added or changed (definition or override).
    package var changed: [String]
    /// Flags removed.
    package var removed: [String]
    /// The changed flags' state, when small enough to carry.
    package var flags: [String: FlagState]?
    /// A change to flag-set metadata or provenance only.
    package var metadataChanged: Bool

    /// One flag's stored state: definition (from the files) and override (from people and the watcher).
    package struct FlagState: Sendable, Hashable {
        package var definition: JSONValue
        package var override: JSONValue?

        package init(definition: JSONValue, override: JSONValue?) {
            self.definition = definition
            self.override = override
        }
    }

    package init(
        revision: Int64, previousRevision: Int64, changed: [String], removed: [String], flags: [String: FlagState]?,
        metadataChanged: Bool = false
    ) {
        self.revision = revision
        self.previousRevision = previousRevision
        self.changed = changed
        self.removed = removed
        self.flags = flags
        self.metadataChanged = metadataChanged
    }

    /// The part of the message after the revisions, which the write script completes once it
    /// knows the new revision: `"changed":[…],"removed":[…],"flags":{…}}`.
    static func tail(changed: [String], removed: [String], flags: [String: FlagState], metadataChanged: Bool) -> String {
        var o: [String: JSONValue] = [
            "changed": .array(changed.map { .string($0) }),
            "removed": .array(removed.map { .string($0) }),
        ]
        if metadataChanged { o["metadataChanged"] = true }
        var inline: [String: JSONValue] = [:]
        for (k, s) in flags { inline[k] = ["definition": s.definition, "override": s.override ?? .null] }
        var withFlags = o
        withFlags["flags"] = .object(inline)
        let full = JSONValue.object(withFlags).jsonString
        let text = full.utf8.count <= inlineLimit ? full : JSONValue.object(o).jsonString
        return String(text.dropFirst())  // drop "{"; the script writes {"revision":N,"previousRevision":M,
    }

    /// Parses a message from the change channel.
    package init(message: [UInt8]) throws(StoreError) {
        let value: JSONValue
        do { value = try JSONParser.parse(bytes: message) } catch {
            throw StoreError(code: .corruptData, message: "unreadable change event: \(error)")
        }
        // Whole numbers only: Int64(Double) would trap on 1e300 from anyone who can PUBLISH.
        guard case .int(let rev)? = value["revision"], case .int(let prev)? = value["previousRevision"], rev >= 0, prev >= 0 else {
            throw StoreError(
                code: .corruptData,
                message:
                    "change event without whole-number revision and previousRevision from 0: \(String(decoding: message.prefix(80), as: UTF8.self))")
        }
        revision = rev
        previousRevision = prev
        changed = value["changed"]?.arrayValue?.compactMap(\.stringValue) ?? []
        removed = value["removed"]?.arrayValue?.compactMap(\.stringValue) ?? []
        metadataChanged = value["metadataChanged"]?.boolValue ?? false
        if let inline = value["flags"]?.objectValue {
            var flags: [String: FlagState] = [:]
            for (k, v) in inline {
                guard let def = v["definition"] else { continue }
                let ov = v["override"]
                flags[k] = FlagState(definition: def, override: ov?.isNull == false ? ov : nil)
            }
            self.flags = flags
        } else {
            flags = nil
        }
    }
}
