import FlagpoleCore
import Synchronization

/// Flag metadata as OFREP writes it, serialised once per flag and reused while the flag's metadata
/// is unchanged.
///
/// Every answer for a flag carries the same metadata dictionary (the compiled flag's), and writing
/// it was a tenth of the daemon's CPU per single evaluation. An entry keeps the dictionary it was
/// made from; comparing it with the result's is immediate while both are the same storage, and a
/// full comparison once the flag was recompiled, after which the entry keeps the new dictionary
/// (equal: same JSON) or is replaced (changed: new JSON). Only flags that exist
/// are cached, so the cache is as large as the flag set at most (and emptied past `limit`, which
/// only removed flags can reach).
final class MetadataCache: Sendable {
    private struct Entry {
        var metadata: [String: JSONValue]
        var json: String
    }

    private let entries = Mutex<[String: Entry]>([:])
    private let limit: Int

    /// The flags cached now.
    var count: Int { entries.withLock { $0.count } }

    init(limit: Int = 100_000) {
        self.limit = limit
    }

    /// The OFREP metadata JSON of `result`.
    func json(for result: EvaluationResult) -> String {
        if result.errorCode == .flagNotFound { return OFREPCoding.metadataJSON(result.metadata) }
        let key = result.flagKey
        let cached: String? = entries.withLock { entries in
            guard let index = entries.index(forKey: key), entries.values[index].metadata == result.metadata else { return nil }
            // Equal: the same JSON. Keep the result's dictionary, so that the next comparison is
            // one of identical storage again (after a flag was recompiled with the same metadata).
            entries.values[index].metadata = result.metadata
            return entries.values[index].json
        }
        if let cached { return cached }
        let json = OFREPCoding.metadataJSON(result.metadata)
        entries.withLock { entries in
            if entries.count >= limit { entries.removeAll(keepingCapacity: true) }
            entries[key] = Entry(metadata: result.metadata, json: json)
        }
        return json
    }
}
