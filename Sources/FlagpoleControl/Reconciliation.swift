import FlagpoleCore
import FlagpoleStore
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// What `flagctl reconcile` found for one flag: what is served, where the files define it, and
/// the edit to that file that makes the files say what is served.
package struct Reconciliation: Sendable {
    package enum Status: String, Sendable {
        /// The file already gives the served definition.
        case agrees
        /// No override and no pin: Redis serves the files' definition as last synced.
        case notOverridden
        /// ``newText`` is the edit.
        case edit
    }

    package var flag: String
    package var environment: String
    package var status: Status
    /// The flag's file, as the loader names it.
    package var file: String
    /// Where the flag is defined in it.
    package var location: FileLocation
    /// What Redis serves: the definition with its override applied (``StoreSnapshot/effectiveDefinition(of:)``).
    package var served: JSONValue
    /// The definition the files give (`$ref`s resolved).
    package var fileDefinition: JSONValue
    package var override: OverrideRecord?
    package var pin: PinRecord?
    /// The file's text as read.
    package var oldText: String
    /// The file's text with the edit (equal to ``oldText`` unless ``status`` is ``Status/edit``).
    package var newText: String
    /// The edit as a unified diff (empty without an edit).
    package var diff: String

    /// The commands that finish the job once the file is changed: commit it, then let the files rule.
    package var finishCommands: [String] {
        let path = Reconciliation.gitPath(file)
        var out: [String] = []
        if status == .edit {
            let why = pin?.rollout.map { "rollout \($0) was reverted" } ?? override.map { "override: \($0.override.summary)" } ?? "live state"
            out += [
                "git add \(Reconciliation.shellQuoted(path))",
                "git commit -m \(Reconciliation.shellQuoted("\(flag): the files say what \(environment) serves (\(why))"))",
            ]
        }
        if pin != nil {
            out.append("flagctl sync --env \(environment) --unpin \(flag)")
        } else if override != nil {
            out += ["flagctl sync --env \(environment)", "flagctl override clear \(flag) --env \(environment)"]
        }
        return out
    }

    /// A path as git and a diff header name it: without a leading `./`.
    static func gitPath(_ path: String) -> String {
        var p = path
        while p.hasPrefix("./") { p.removeFirst(2) }
        return p
    }

    static func shellQuoted(_ s: String) -> String {
        if !s.isEmpty, s.allSatisfy({ $0.isLetter || $0.isNumber || "-_./:@".contains($0) }) { return s }
        return "'" + s.replacing("'", with: "'\\''") + "'"
    }
}

/// Why reconciling cannot go on: what is wrong, where, and what to do.
package struct ReconcileError: Error, Sendable, CustomStringConvertible {
    package var message: String
    package var hint: String?

    package init(_ message: String, hint: String? = nil) {
        self.message = message
        self.hint = hint
    }

    package var description: String { message + (hint.map { "\nhint: \($0)" } ?? "") }
}

extension EnvironmentControl {
    /// Compares what `flag` serves in Redis with its definition in the files, and plans the edit
    /// of its file (``FlagFileEditPlanner``) that makes them agree. Writes nothing.
    package func reconcile(_ flag: String) async throws -> Reconciliation {
        let live = try await store.read()
        let load = try directory.loadEnvironment(environment)
        return try Self.reconcile(flag, environment: environment, live: live, load: load)
    }

    /// ``reconcile(_:)`` on what was read; pure apart from reading the flag's file.
    static func reconcile(_ flag: String, environment: String, live: StoreSnapshot, load: FlagSetLoad) throws -> Reconciliation {
        if load.hasErrors {
            let first = load.diagnostics.first { $0.severity == .error }.map { ": \($0.location): \($0.message)" } ?? ""
            throw ReconcileError(
                "the files of \(environment) do not validate (\(load.errorCount) error(s)\(first))",
                hint: "fix them first: flagctl validate")
        }
        guard let served = live.effectiveDefinition(of: flag) else {
            throw ReconcileError(
                "flag '\(flag)' is not in \(environment) in Redis (revision \(live.revision)): nothing is served to reconcile with",
                hint: load.flags[flag] != nil
                    ? "publish the files with flagctl sync --env \(environment)" : "check the flag's name: flagctl list --env \(environment)")
        }
        guard let location = load.flagLocations[flag], let fileDefinition = FlagDocument.resolvedFlags(load.document)[flag] else {
            throw ReconcileError(
                "flag '\(flag)' is served in \(environment) but defined in no file under \(load.files.isEmpty ? "the environment folder" : Self.folder(of: load.files[0]))/; there is no file to edit. It serves:\n\(served.prettyJSONString)",
                hint: "add it to a flag file by hand (the definition above), or remove it from Redis with flagctl sync --env \(environment) --prune")
        }
        let file = location.file
        guard let data = FileManager.default.contents(atPath: file), let text = String(validating: data, as: UTF8.self) else {
            throw ReconcileError("\(file): cannot read the file")
        }
        let override = live.overrides[flag], pin = live.pins[flag]
        var result = Reconciliation(
            flag: flag, environment: environment, status: .agrees, file: file, location: location, served: served,
            fileDefinition: fileDefinition, override: override, pin: pin, oldText: text, newText: text, diff: "")
        if override == nil && pin == nil {
            result.status = .notOverridden
            return result
        }
        if case .rollout(let split)? = override?.override {
            throw ReconcileError(
                "flag '\(flag)' is in a rollout (\(split.percent)% → \(split.targetVariant)): what it serves is still changing",
                hint: "reconcile once the rollout completes or is reverted: flagctl rollout status \(flag) --env \(environment)")
        }
        if fileDefinition == served { return result }
        switch FlagFileEditPlanner.plan(path: file, text: text, flag: flag, served: served, evaluators: load.evaluators) {
        case .failure(let refusal):
            throw ReconcileError("\(refusal.location.map { "\($0): " } ?? "")\(refusal.message)", hint: refusal.hint)
        case .success(let plan):
            result.status = .edit
            result.newText = plan.newText
            var header = Reconciliation.gitPath(file)
            while header.hasPrefix("/") { header.removeFirst() }
            result.diff = UnifiedDiff.make(path: header, old: text, new: plan.newText)
            return result
        }
    }

    private static func folder(of file: String) -> String {
        file.lastIndex(of: "/").map { String(file[..<$0]) } ?? "."
    }

    /// Writes a planned edit: atomically (a temporary file in the same folder, synced, renamed over
    /// the file, with the file's permissions), refusing if the file changed since it was read;
    /// then loads and validates the environment again and checks that the flag now reads exactly
    /// as served. Anything else puts the old text back and throws.
    package func write(_ reconciliation: Reconciliation) throws {
        guard reconciliation.status == .edit else { return }
        let file = reconciliation.file
        guard let data = FileManager.default.contents(atPath: file), String(decoding: data, as: UTF8.self) == reconciliation.oldText else {
            throw ReconcileError("\(file) changed while reconciling; nothing written", hint: "run flagctl reconcile again")
        }
        try Self.atomicWrite(reconciliation.newText, to: file)
        let load: FlagSetLoad
        do {
            load = try directory.loadEnvironment(environment)
        } catch {
            try Self.atomicWrite(reconciliation.oldText, to: file)
            throw ReconcileError("\(error); \(file) was put back as it was")
        }
        let now = FlagDocument.resolvedFlags(load.document)[reconciliation.flag]
        if load.hasErrors || now != reconciliation.served {
            try Self.atomicWrite(reconciliation.oldText, to: file)
            let why =
                load.hasErrors
                ? "the files no longer validate (\(load.diagnostics.first { $0.severity == .error }.map { "\($0.location): \($0.message)" } ?? ""))"
                : "the flag does not read back as served"
            throw ReconcileError("after writing \(file), \(why); the file was put back as it was", hint: "edit the file by hand")
        }
    }

    /// Replaces `path` with `text`: a temporary file beside it, `fsync`, the old file's mode, `rename`.
    package static func atomicWrite(_ text: String, to path: String) throws {
        let folder = folder(of: path)
        let name = path.split(separator: "/").last.map(String.init) ?? path
        let temporary = "\(folder)/.\(name).flagctl-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        var status = stat()
        guard lstat(path, &status) == 0 else { throw ReconcileError("\(path): cannot read its permissions: \(String(cString: strerror(errno)))") }
        // Renaming over a symbolic link would replace the link with a copy and leave the file it
        // points to (maybe shared with other environments) as it was.
        guard status.st_mode & S_IFMT == S_IFREG else {
            throw ReconcileError(
                "\(path) is not a regular file (a symbolic link?); reconcile does not replace it",
                hint: "edit the file it points to, or make it a regular file, and run reconcile again")
        }
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL, status.st_mode & 0o7777)
        guard fd >= 0 else { throw ReconcileError("\(temporary): cannot create: \(String(cString: strerror(errno)))") }
        var ok = false
        defer {
            if !ok { unlink(temporary) }
        }
        let bytes = Array(text.utf8)
        var written = 0
        while written < bytes.count {
            let n = bytes[written...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else {
                close(fd)
                throw ReconcileError("\(temporary): cannot write: \(String(cString: strerror(errno)))")
            }
            written += n
        }
        // Keep the mode exactly (the umask applied at open), and the owner when we may.
        _ = fchmod(fd, status.st_mode & 0o7777)
        _ = fchown(fd, status.st_uid, status.st_gid)
        guard fsync(fd) == 0 else {
            close(fd)
            throw ReconcileError("\(temporary): cannot sync: \(String(cString: strerror(errno)))")
        }
        close(fd)
        guard rename(temporary, path) == 0 else { throw ReconcileError("\(path): cannot replace: \(String(cString: strerror(errno)))") }
        ok = true
        let dir = open(folder, O_RDONLY)
        if dir >= 0 {
            _ = fsync(dir)
            close(dir)
        }
    }
}
