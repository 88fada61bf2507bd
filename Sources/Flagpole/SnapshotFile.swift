import FlagpoleCore
import FlagpoleStore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The last-known-good snapshot on disk: what a client serves when it starts while Redis is down.
///
/// One JSON file (format 2) in a folder only its user can change:
///
/// ```json
/// {"flagpoleSnapshot": 2, "checksum": "sha256:…", "environment": "prod",
///  "environmentId": "9f3a…", "revision": 42, "savedAt": 1767225600.5,
///  "fractionalAlgorithm": "v3", "metadata": {…}, "flags": {"key": {effective definition}, …}}
/// ```
///
/// - `checksum` is the SHA-256 of the document's compact, key-sorted JSON without the
///   `checksum` field; a file whose contents do not match it is refused.
/// - `environmentId` is the `StoreLayout.environmentIDField` of the Redis data
///   the snapshot came from (absent when that data had none), so a client never takes a snapshot
///   of other Redis data for its own.
/// - The folder is created `0700`; a folder owned by another user, or writable by its group or
///   others, is refused (someone else could plant or swap the file). The file is created `0600`
///   inside that folder, replaced atomically (a temporary file flushed with `fsync`, then renamed
///   over the old one, so a crash leaves the old copy or the new one, never half of either), and
///   never read through a symbolic link (`O_NOFOLLOW`).
/// - Everything in the file is checked before it is used: the format, the checksum, the
///   environment, each field's type; the revision must be a whole number and `savedAt` a finite
///   one (clamped to between 1970 and now).
enum SnapshotFile {
    /// The file format this library writes and reads. Format 1 (no checksum, no environment ID)
    /// is refused and replaced on the next write.
    static let format = 2
    /// The largest file read: 256 MiB (10,000 flags take a few MiB).
    static let maxBytes = 256 << 20

    /// A snapshot read from disk and checked.
    struct Contents {
        /// The environment's name.
        var environment: String
        /// The environment ID of the Redis data the snapshot came from; nil when that had none.
        var environmentID: String?
        /// The store revision it reflects.
        var revision: Int64
        /// When it was last known current (Unix seconds), clamped to between 0 and now.
        var savedAt: Double
        var algorithm: FractionalAlgorithm
        /// `{"flags": …, "metadata": …}`.
        var document: JSONValue
    }

    // MARK: - Encoding and checking (no I/O)

    /// The file's bytes for `snapshot`.
    static func encode(_ snapshot: FlagSnapshot, environment: String, environmentID: String?, savedAt: Double) -> [UInt8] {
        var fields: [String: JSONValue] = [
            "flagpoleSnapshot": .int(Int64(format)), "environment": .string(environment),
            "environmentId": environmentID.map { .string($0) } ?? .null,
            "revision": .int(snapshot.revision ?? 0), "savedAt": .double(savedAt.isFinite ? savedAt : 0),
            "fractionalAlgorithm": .string(snapshot.fractionalAlgorithm.rawValue), "metadata": .object(snapshot.flags.metadata),
            "flags": .object(snapshot.definitions),
        ]
        fields["checksum"] = .string(checksum(of: fields))
        return Array(JSONValue.object(fields).jsonString.utf8)
    }

    /// `sha256:` and the SHA-256 of the compact, key-sorted JSON of `fields` without `checksum`.
    static func checksum(of fields: [String: JSONValue]) -> String {
        var body = fields
        body["checksum"] = nil
        return "sha256:" + SHA256.hex(JSONValue.object(body).jsonString.utf8)
    }

    /// Checks a file's bytes and returns what they hold.
    ///
    /// - Parameters:
    ///   - path: The file, for messages.
    ///   - environment: The environment the client serves; a snapshot of another is refused.
    ///   - now: The wall clock (Unix seconds); a later `savedAt` is taken as now.
    /// - Throws: ``FlagpoleClientError/Code-swift.struct/snapshotUnreadable``, saying what is
    ///   wrong with the file.
    static func decode(_ bytes: [UInt8], path: String, environment: String, now: Double) throws(FlagpoleClientError) -> Contents {
        func refuse(_ why: String) -> FlagpoleClientError {
            FlagpoleClientError(
                code: .snapshotUnreadable,
                message: "\(path): \(why); the client ignores it and writes a new one after its next read from Redis")
        }
        let value: JSONValue
        do {
            value = try JSONParser.parse(bytes: bytes)
        } catch {
            throw refuse("not valid JSON (\(error)), perhaps cut short by a full disk or written by another program")
        }
        guard let fields = value.objectValue, let version = fields["flagpoleSnapshot"] else {
            throw refuse("not a Flagpole snapshot (no \"flagpoleSnapshot\" field)")
        }
        guard case .int(let v) = version, v == format else {
            if version == .int(1) { throw refuse("written by an older Flagpole (format 1, without checksum or environment ID)") }
            throw refuse("snapshot format \(version.jsonString.prefix(20)), but this Flagpole reads format \(format)")
        }
        guard let stated = fields["checksum"]?.stringValue else { throw refuse("it has no checksum") }
        guard stated == checksum(of: fields) else { throw refuse("its contents do not match its checksum (the file was changed or damaged)") }
        guard let name = fields["environment"]?.stringValue else { throw refuse("\"environment\" is not a string") }
        guard name == environment else {
            throw FlagpoleClientError(
                code: .snapshotUnreadable,
                message:
                    "\(path) holds environment '\(name.prefix(64))', not '\(environment)'; it is refused — give each environment's client its own snapshotPath"
            )
        }
        let environmentID: String?
        switch fields["environmentId"] {
        case nil, .null?: environmentID = nil
        case .string(let s)?: environmentID = s
        case let other?: throw refuse("\"environmentId\" should be a string, found \(other.typeName)")
        }
        guard case .int(let revision)? = fields["revision"], revision >= 0 else {
            throw refuse("\"revision\" should be a whole number from 0, found \(fields["revision"].map { $0.jsonString.prefix(40) } ?? "nothing")")
        }
        guard let savedAt = fields["savedAt"]?.numberValue, savedAt.isFinite else {
            throw refuse("\"savedAt\" should be a time in Unix seconds, found \(fields["savedAt"].map { $0.jsonString.prefix(40) } ?? "nothing")")
        }
        guard let algorithmName = fields["fractionalAlgorithm"]?.stringValue, let algorithm = FractionalAlgorithm(rawValue: algorithmName) else {
            throw refuse("\"fractionalAlgorithm\" should be one of \(FractionalAlgorithm.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard let flags = fields["flags"], flags.objectValue != nil else { throw refuse("\"flags\" should be an object") }
        let metadata = fields["metadata"] ?? [:]
        guard metadata.objectValue != nil else { throw refuse("\"metadata\" should be an object") }
        return Contents(
            environment: name, environmentID: environmentID, revision: revision,
            savedAt: min(max(savedAt, 0), now.isFinite ? max(now, 0) : 0), algorithm: algorithm,
            document: ["flags": flags, "metadata": metadata])
    }

    /// The default path: `<folder>/<application>-<environment>.json` (characters other than
    /// letters, digits, `-`, `_` and `.` become `_`), where the folder is
    /// `$XDG_STATE_HOME/flagpole` when that is an absolute path, else
    /// `$HOME/.local/state/flagpole` when `$HOME` is a folder this user can write, else
    /// `<temporary directory>/flagpole-<uid>` (created `0700`; refused if another user made it).
    static func defaultPath(
        application: String, environment: String, variables: [String: String], temporaryDirectory: String, userID: UInt32,
        isWritableFolder: (String) -> Bool
    ) -> String {
        let name = "\(application)-\(environment)".map { $0.isLetter || $0.isNumber || "-_.".contains($0) ? $0 : "_" }
        func trimmed(_ path: String) -> String {
            var p = Substring(path)
            while p.count > 1, p.hasSuffix("/") { p = p.dropLast() }
            return String(p)
        }
        let folder: String
        if let state = variables["XDG_STATE_HOME"], state.hasPrefix("/") {
            folder = trimmed(state) + "/flagpole"
        } else if let home = variables["HOME"], home.hasPrefix("/"), trimmed(home) != "/", isWritableFolder(home) {
            folder = trimmed(home) + "/.local/state/flagpole"
        } else {
            folder = (trimmed(temporaryDirectory) == "/" ? "" : trimmed(temporaryDirectory)) + "/flagpole-\(userID)"
        }
        return folder + "/" + String(name) + ".json"
    }

    // MARK: - Disk

    /// Writes the file atomically, `0600`, in its folder (created `0700` when missing).
    static func write(_ bytes: [UInt8], to path: String) throws(FlagpoleClientError) {
        let (directory, name) = split(path)
        guard let dfd = try openFolder(directory, create: true, code: .snapshotUnwritable) else {
            throw FlagpoleClientError(code: .snapshotUnwritable, message: "cannot create the folder \(directory)")
        }
        defer { close(dfd) }
        let temporary = name + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = openat(dfd, temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw posixError(.snapshotUnwritable, "cannot create \(directory)/\(temporary)") }
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
            unlinkat(dfd, temporary, 0)
            errno = error
            throw posixError(.snapshotUnwritable, "cannot write \(directory)/\(temporary)")
        }
        guard renameat(dfd, temporary, dfd, name) == 0 else {
            let e = posixError(.snapshotUnwritable, "cannot rename \(directory)/\(temporary) to \(path)")
            unlinkat(dfd, temporary, 0)
            throw e
        }
        // Make the rename itself durable.
        _ = fsync(dfd)
    }

    /// Reads and checks the file; nil when there is none (nor its folder).
    ///
    /// - Throws: ``FlagpoleClientError/Code-swift.struct/snapshotUnreadable`` when the folder or
    ///   the file is unsafe (see ``SnapshotFile``), unreadable, or fails ``decode(_:path:environment:now:)``.
    static func read(path: String, environment: String, now: Double) throws(FlagpoleClientError) -> Contents? {
        let (directory, name) = split(path)
        guard let dfd = try openFolder(directory, create: false, code: .snapshotUnreadable) else { return nil }
        defer { close(dfd) }
        // O_NONBLOCK: a FIFO put in the file's place must not hang the start.
        let fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT { return nil }
            if errno == ELOOP {
                throw FlagpoleClientError(
                    code: .snapshotUnreadable,
                    message: "\(path) is a symbolic link; a snapshot is never read through one (it could point anywhere): remove the link")
            }
            throw posixError(.snapshotUnreadable, "cannot open \(path)")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw posixError(.snapshotUnreadable, "cannot inspect \(path)") }
        guard st.st_mode & mode_t(S_IFMT) == mode_t(S_IFREG) else {
            throw FlagpoleClientError(code: .snapshotUnreadable, message: "\(path) is not a regular file; remove it")
        }
        guard st.st_uid == geteuid(), st.st_mode & 0o022 == 0 else {
            throw FlagpoleClientError(
                code: .snapshotUnreadable,
                message:
                    "\(path) is owned by uid \(st.st_uid) with mode \(octal(st.st_mode & 0o7777)); a snapshot must belong to this user (uid \(geteuid())) and be writable by no one else: remove it"
            )
        }
        guard st.st_size <= maxBytes else {
            throw FlagpoleClientError(
                code: .snapshotUnreadable,
                message: "\(path) is \(st.st_size) bytes, more than the \(maxBytes) a snapshot may have; remove it")
        }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let n = buffer.withUnsafeMutableBytes { posixRead(fd, $0.baseAddress!, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw posixError(.snapshotUnreadable, "cannot read \(path)")
            }
            if n == 0 { break }
            bytes.append(contentsOf: buffer[0..<n])
            if bytes.count > maxBytes {
                throw FlagpoleClientError(code: .snapshotUnreadable, message: "\(path) grew past \(maxBytes) bytes while read; remove it")
            }
        }
        return try decode(bytes, path: path, environment: environment, now: now)
    }

    /// Removes the file, if there is one (never what a link points to).
    static func remove(path: String) throws(FlagpoleClientError) {
        let (directory, name) = split(path)
        guard let dfd = try openFolder(directory, create: false, code: .snapshotUnwritable) else { return }
        defer { close(dfd) }
        if unlinkat(dfd, name, 0) != 0 && errno != ENOENT { throw posixError(.snapshotUnwritable, "cannot remove \(path)") }
    }

    /// The folder and the file name of `path`.
    static func split(_ path: String) -> (directory: String, name: String) {
        guard let slash = path.lastIndex(of: "/") else { return (".", path) }
        let name = String(path[path.index(after: slash)...])
        return (slash == path.startIndex ? "/" : String(path[..<slash]), name)
    }

    /// Opens `directory` (creating it and missing parents `0700` when `create`) and checks that
    /// it belongs to this user and that its group and others cannot write to it; nil when it
    /// does not exist and `create` is false.
    private static func openFolder(_ directory: String, create: Bool, code: FlagpoleClientError.Code) throws(FlagpoleClientError) -> Int32? {
        var fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd < 0 && errno == ENOENT {
            guard create else { return nil }
            try makeDirectories(directory)
            fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        }
        guard fd >= 0 else { throw posixError(code, "cannot open the snapshot folder \(directory)") }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let e = posixError(code, "cannot inspect the snapshot folder \(directory)")
            close(fd)
            throw e
        }
        if st.st_uid != geteuid() {
            close(fd)
            throw FlagpoleClientError(
                code: code,
                message:
                    "the snapshot folder \(directory) belongs to uid \(st.st_uid), not to this process's user (uid \(geteuid())); another user could plant or swap the snapshot, so none is read or written there: set snapshotPath to a folder of this user's, or remove that folder"
            )
        }
        if st.st_mode & 0o022 != 0 {
            close(fd)
            throw FlagpoleClientError(
                code: code,
                message:
                    "the snapshot folder \(directory) has mode \(octal(st.st_mode & 0o7777)), writable by its group or others, who could plant or swap the snapshot; none is read or written there: run chmod 700 \(directory), or set snapshotPath to a private folder"
            )
        }
        return fd
    }

    private static func makeDirectories(_ directory: String) throws(FlagpoleClientError) {
        var st = stat()
        if stat(directory, &st) == 0 { return }
        if directory != "/" && directory != "." { try makeDirectories(split(directory).directory) }
        if mkdir(directory, 0o700) != 0 && errno != EEXIST {
            throw posixError(.snapshotUnwritable, "cannot create the folder \(directory)")
        }
    }

    private static func octal(_ mode: mode_t) -> String {
        let digits = String(mode, radix: 8)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }

    private static func posixError(_ code: FlagpoleClientError.Code, _ what: String) -> FlagpoleClientError {
        FlagpoleClientError(code: code, message: "\(what): \(String(cString: strerror(errno)))")
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

    /// The time from `since` to `now` as a `Duration`, clamped to between zero and 100 years (a
    /// clock that jumped, or a time read from disk, never makes a negative, non-finite or
    /// overflowing one).
    static func age(since: Double, now: Double) -> Duration {
        let seconds = now - since
        guard seconds.isFinite, seconds > 0 else { return seconds == .infinity ? .seconds(maxAgeSeconds) : .zero }
        return .seconds(min(seconds, maxAgeSeconds))
    }

    /// 100 years.
    static let maxAgeSeconds: Double = 100 * 365.25 * 86_400
}
