import FlagpoleControl
import FlagpoleCore
import FlagpoleStore
import Foundation

/// The flag files as the console compares them with Redis, kept between requests: reading and
/// validating 10,000 flags takes longer than a page may, so the load is reused while no file's
/// size or modification time changed, and the drift while neither the files nor the revision did.
extension ConsoleServer {
    struct FileCache: Sendable {
        /// Each file's path, size and modification time.
        var key: String
        var load: FlagSetLoad
        /// The drift at `revision` (rows that are not `same`), once computed.
        var drift: (revision: Int64, rows: [FlagDiff])?
    }

    /// The environment's flag files, loaded (from the cache when unchanged), with their cache key;
    /// nil when there are none or they cannot be read.
    func fileLoad() -> (key: String, load: FlagSetLoad)? {
        let directory = control.directory
        guard let files = try? directory.flagFiles(inEnvironment: environment), !files.isEmpty else { return nil }
        var key = ""
        for path in files + (directory.configPath.map { [$0] } ?? []) {
            let attributes = (try? FileManager.default.attributesOfItem(atPath: path)) ?? [:]
            let modified = (attributes[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
            key += "\(path)\u{1}\(attributes[.size] as? Int ?? -1)\u{1}\(modified)\u{2}"
        }
        if let cached = fileCache.withLock({ $0 }), cached.key == key { return (key, cached.load) }
        guard let load = try? directory.loadEnvironment(environment) else { return nil }
        fileCache.withLock { $0 = FileCache(key: key, load: load, drift: nil) }
        return (key, load)
    }

    /// Where Redis differs from the files (`LiveDiff`, rows other than `same`), at `revision` or
    /// later; nil when the files cannot be read. Reads the whole environment only when the files
    /// or the revision changed since the last answer.
    func drift(revision: Int64) async throws -> [FlagDiff]? {
        guard let (key, load) = fileLoad() else { return nil }
        if let cached = fileCache.withLock({ $0 }), cached.key == key, let drift = cached.drift, drift.revision == revision {
            return drift.rows
        }
        let live = try await control.store.read()
        let rows = LiveDiff.compare(load: load, live: live).filter { $0.status != .same }
        fileCache.withLock { cache in
            if cache?.key == key { cache?.drift = (live.revision, rows) }
        }
        return rows
    }
}
