import FlagpoleCore
import Synchronization

/// Flag metadata as OFREP writes it, serialised once per flag and reused while the flag's metadata
/// is unchanged.
///
/// Every answer for a flag carries the same metadata dictionary (the compiled flag's), and writing
/// it was a tenth of the daemon's CPU per single evaluation. An entry keeps the dictionary it was
/// made from; comparing it with the result's is immediate while both are the same storage, and a
/// full comparison after the flag changed, which then replaces the entry. Only flags that exist
/// are cached, so the cache is as large as the flag set at most (and emptied past `limit`, which
/// only removed flags can reach).
final class MetadataCache: Sendable {
    private struct Entry {
        var metadata: [String: JSONValue]
        var json: String
    }

    private let entries = Mutex<[String: Entry]>([:])
    private let limit: Int

    init(limit: Int = 100_000) {
        self.limit = limit
    }

    /// The OFREP metadata JSON of `result`.
    func json(for result: EvaluationResult) -> String {
        if result.errorCode == .flagNotFound { return OFREPCoding.metadataJSON(result.metadata) }
        let key = result.flagKey
        if let hit = entries.withLock({ $0[key] }), hit.metadata == result.metadata { return hit.json }
        let json = OFREPCoding.metadataJSON(result.metadata)
        entries.withLock { entries in
            if entries.count >= limit { entries.removeAll(keepingCapacity: true) }
            entries[key] = Entry(metadata: result.metadata, json: json)
        }
        return json
    }
}
