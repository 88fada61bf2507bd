#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import FlagpoleCore

/// The last-known-good snapshot on disk: what a client serves when it starts while Redis is down.
///
/// One JSON file, replaced atomically (written to a temporary file in the same folder, flushed
/// with `fsync`, then renamed over the old one), so a crash leaves the old copy or the new one,
/// never half of either:
///
/// ```json
/// {"flagpoleSnapshot": 1, "environment": "prod", "revision": 42, "savedAt": 1767225600.5,
///  "fractionalAlgorithm": "v3", "metadata": {…}, "flags": {"key": {effective definition}, …}}
/// ```
enum SnapshotFile {
    /// The file format this library writes and reads.
    static let format = 1

    struct Contents {
        var document: JSONValue
        var revision: Int64?
        var savedAt: Double
        var algorithm: FractionalAlgorithm
    }

    static func encode(_ snapshot: FlagSnapshot, environment: String, savedAt: Double) -> [UInt8] {
        let value: JSONValue = [
            "flagpoleSnapshot": .int(Int64(format)), "environment": .string(environment),
            "revision": snapshot.revision.map { .int($0) } ?? .null, "savedAt": .double(savedAt),
            "fractionalAlgorithm": .string(snapshot.fractionalAlgorithm.rawValue), "metadata": .object(snapshot.flags.metadata),
            "flags": .object(snapshot.definitions),
        ]
        return Array(value.jsonString.utf8)
    }

    /// Writes the file atomically.
    static func write(_ bytes: [UInt8], to path: String) throws(FlagpoleClientError) {
        let directory = parent(path)
        try makeDirectories(directory)
        let temporary = path + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw posixError("cannot create \(temporary)") }
        var written = 0
        let ok = bytes.withUnsafeBytes { raw -> Bool in
            while written < raw.count {
                let n = posixWrite(fd, raw.baseAddress! + written, raw.count - written)
                if n < 0 {
                    if errno == EINTR { continue }
                    return false
                }
                written += n
            }
            return fsync(fd) == 0
        }
        let error = errno
        close(fd)
        guard ok else {
            unlink(temporary)
            errno = error
            throw posixError("cannot write \(temporary)")
        }
        guard rename(temporary, path) == 0 else {
            let e = posixError("cannot rename \(temporary) to \(path)")
            unlink(temporary)
            throw e
        }
        // Make the rename itself durable.
        let dfd = open(directory, O_RDONLY | O_CLOEXEC)
        if dfd >= 0 {
            _ = fsync(dfd)
            close(dfd)
        }
    }

    /// Reads the file; nil when there is none.
    static func read(path: String, environment: String) throws(FlagpoleClientError) -> Contents? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT { return nil }
            throw posixError("cannot open \(path)")
        }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let n = buffer.withUnsafeMutableBytes { posixRead(fd, $0.baseAddress!, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw posixError("cannot read \(path)")
            }
            if n == 0 { break }
            bytes.append(contentsOf: buffer[0..<n])
        }
        let value: JSONValue
        do {
            value = try JSONParser.parse(bytes: bytes)
        } catch {
            throw FlagpoleClientError(code: .snapshotUnreadable, message: "\(path) is not a Flagpole snapshot: \(error)")
        }
        guard value["flagpoleSnapshot"]?.numberValue == Double(format), value["flags"]?.objectValue != nil else {
            throw FlagpoleClientError(code: .snapshotUnreadable, message: "\(path) is not a Flagpole snapshot of format \(format)")
        }
        guard value["environment"]?.stringValue == environment else {
            throw FlagpoleClientError(
                code: .snapshotUnreadable,
                message: "\(path) holds environment '\(value["environment"]?.stringValue ?? "?")', not '\(environment)'")
        }
        return Contents(
            document: ["flags": value["flags"] ?? [:], "metadata": value["metadata"] ?? [:]],
            revision: value["revision"]?.numberValue.map { Int64($0) },
            savedAt: value["savedAt"]?.numberValue ?? 0,
            algorithm: value["fractionalAlgorithm"]?.stringValue.flatMap(FractionalAlgorithm.init(rawValue:)) ?? .v3)
    }

    static func parent(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    private static func makeDirectories(_ directory: String) throws(FlagpoleClientError) {
        var st = stat()
        if stat(directory, &st) == 0 { return }
        if directory != "/" && directory != "." { try makeDirectories(parent(directory)) }
        if mkdir(directory, 0o755) != 0 && errno != EEXIST { throw posixError("cannot create the folder \(directory)") }
    }

    private static func posixError(_ what: String) -> FlagpoleClientError {
        FlagpoleClientError(code: .snapshotUnwritable, message: "\(what): \(String(cString: strerror(errno)))")
    }
}

// The C functions, named apart from the Swift ones they would otherwise hide.
@inline(__always)
private func posixWrite(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int {
    write(fd, buffer, count)
}

@inline(__always)
private func posixRead(_ fd: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int) -> Int {
    read(fd, buffer, count)
}

/// The wall clock, in Unix seconds.
enum WallClock {
    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}
