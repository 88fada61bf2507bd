import FlagpoleCore
import FlagpoleRedis
import FlagpoleStore
import FlagpoleTesting
import Foundation
import Logging
import Synchronization
import Testing

@testable import Flagpole

/// A folder for one test: flag files in `flags/prod/`, snapshots wherever the test puts them.
private struct Scratch {
    let root: URL

    init() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("flagpole-snapshot-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: root.appendingPathComponent("flags/prod"), withIntermediateDirectories: true)
        try baseFlags.write(to: root.appendingPathComponent("flags/prod/flags.json"), atomically: true, encoding: .utf8)
    }

    var flagFiles: FlagpoleClient.FlagFiles { .init(directory: root.appendingPathComponent("flags").path) }

    /// A new private folder (0700) under the scratch root.
    func folder(_ name: String, mode: mode_t = 0o700) throws -> String {
        let path = root.appendingPathComponent(name).path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        #expect(chmod(path, mode) == 0)
        return path
    }

    func remove() {
        _ = chmod(root.path, 0o700)
        try? FileManager.default.removeItem(at: root)
    }
}

/// A snapshot document as the format describes it (`SnapshotFile`), sealed with its checksum
/// computed here from the documented rule, not by the code under test.
private func sealed(_ fields: [String: JSONValue]) -> [UInt8] {
    var body = fields
    body["checksum"] = nil
    body["checksum"] = .string("sha256:" + SHA256.hex(JSONValue.object(body).jsonString.utf8))
    return Array(JSONValue.object(body).jsonString.utf8)
}

/// A snapshot of `prod` at revision 7 in which new-checkout is on (the flag files say off).
private func document(
    environment: String = "prod", environmentID: JSONValue = "0123456789abcdef0123456789abcdef", revision: JSONValue = 7,
    savedAt: JSONValue = .double(Date().timeIntervalSince1970 - 60)
) -> [String: JSONValue] {
    [
        "flagpoleSnapshot": 2, "environment": .string(environment), "environmentId": environmentID, "revision": revision,
        "savedAt": savedAt, "fractionalAlgorithm": "v3", "metadata": [:],
        "flags": ["new-checkout": ["state": "ENABLED", "variants": ["on": true, "off": false], "defaultVariant": "on"]],
    ]
}

private func write(_ bytes: [UInt8], to path: String, mode: mode_t = 0o600) throws {
    try Data(bytes).write(to: URL(fileURLWithPath: path))
    #expect(chmod(path, mode) == 0)
}

private func mode(_ path: String) -> mode_t {
    var st = stat()
    return lstat(path, &st) == 0 ? st.st_mode & 0o7777 : 0
}

/// Reads the snapshot file as JSON; nil while there is none or it does not parse.
private func onDisk(_ path: String) -> JSONValue? {
    (try? String(contentsOfFile: path, encoding: .utf8)).flatMap { try? JSONParser.parse($0) }
}

/// A client of `prod` with its snapshot at `path` and the scratch flag files, logging into `log`.
private func makeClient(_ redis: RedisConfiguration, snapshot path: String?, files: FlagpoleClient.FlagFiles?, log: LogCapture) -> FlagpoleClient {
    var c = FlagpoleClient.Configuration(redis: redis, environment: "prod", application: "snapshot-tests")
    c.snapshotPath = path
    c.flagFiles = files
    c.startupTimeout = .seconds(1)
    c.snapshotWriteInterval = .milliseconds(50)
    c.outcomes.isEnabled = false
    c.heartbeat.isEnabled = false
    return FlagpoleClient(configuration: c, logger: log.logger)
}

/// With Redis down: runs a client on `path` and the flag files until it serves a fallback, and
/// returns where that came from, new-checkout's value, and the log.
private func coldStart(
    _ server: RedisServer, snapshot path: String, files: FlagpoleClient.FlagFiles
) async throws -> (
    source: FlagpoleClient.Source, value: Bool, freshness: FlagpoleClient.Freshness, log: LogCapture
) {
    let log = LogCapture()
    let client = makeClient(server.configuration, snapshot: path, files: files, log: log)
    return try await whileRunning(client) {
        try await waitUntil("the client serves its fallback") { client.freshness.source != .defaults }
        return (client.freshness.source, client.bool("new-checkout", default: false), client.freshness, log)
    }
}

/// Threads that evaluate new-checkout from before the client runs, counting every `true`.
private final class Watch: Sendable {
    let stop = Atomic<Bool>(false)
    let evaluations = Atomic<Int>(0)
    let trues = Atomic<Int>(0)
    let running = Atomic<Int>(0)

    init(_ client: FlagpoleClient, threads: Int = 2) {
        for _ in 0..<threads {
            running.add(1, ordering: .relaxed)
            Thread { [self] in
                while !stop.load(ordering: .relaxed) {
                    if client.bool("new-checkout", default: false) { trues.add(1, ordering: .relaxed) }
                    evaluations.add(1, ordering: .relaxed)
                }
                running.subtract(1, ordering: .relaxed)
            }.start()
        }
    }

    func halt() async throws {
        stop.store(true, ordering: .relaxed)
        try await waitUntil("the evaluating threads stop") { running.load(ordering: .relaxed) == 0 }
    }
}

/// Server A with the base flags and new-checkout set on (revision 2), and a client's snapshot of
/// it at `path` (revision 2, A's environment ID). Returns A's environment ID.
private func snapshotOfA(_ a: RedisServer, at path: String) async throws -> String {
    let fx = try await Fixture(a)
    defer { fx.remove() }
    _ = try await fx.control.apply(.set(variant: "on"), flag: "new-checkout", actor: "ann", reason: nil)
    let id = try #require(try await fx.control.store.environmentID())
    let client = makeClient(a.configuration, snapshot: path, files: nil, log: LogCapture())
    try await whileRunning(client) {
        try await waitUntil("the snapshot of A is on disk") { onDisk(path)?["revision"] == 2 && onDisk(path)?["environmentId"] == .string(id) }
    }
    return id
}

@Suite("The last-known-good snapshot on disk: private, verified, tied to its Redis", .timeLimit(.minutes(2)))
struct SnapshotFileTests {
    @Test("written 0600 in a 0700 folder it creates, atomically, with its checksum and the environment ID of its Redis")
    func writtenPrivately() async throws {
        try await RedisServer.withServer { server in
            let scratch = try Scratch()
            defer { scratch.remove() }
            let fx = try await Fixture(server)
            defer { fx.remove() }
            let folder = scratch.root.appendingPathComponent("state/deep/flagpole").path
            let path = folder + "/prod.json"
            let client = makeClient(server.configuration, snapshot: path, files: nil, log: LogCapture())
            try await whileRunning(client) {
                try await waitUntil("the snapshot is on disk") { onDisk(path)?["revision"] == 1 }
            }
            #expect(mode(folder) == 0o700)
            #expect(mode(scratch.root.appendingPathComponent("state/deep").path) == 0o700)
            #expect(mode(path) == 0o600)
            #expect(try FileManager.default.contentsOfDirectory(atPath: folder) == ["prod.json"])
            let json = try #require(onDisk(path))
            #expect(json["flagpoleSnapshot"] == 2 && json["environment"] == "prod")
            #expect(json["environmentId"] == .string(try #require(try await fx.control.store.environmentID())))
            var fields = try #require(json.objectValue)
            fields["checksum"] = nil
            #expect(json["checksum"] == .string("sha256:" + SHA256.hex(JSONValue.object(fields).jsonString.utf8)))
            #expect(json["flags"]?["limit"]?["defaultVariant"] == "low")
        }
    }

    @Test("the default path is per user: $XDG_STATE_HOME, else ~/.local/state, else a private temporary folder")
    func defaultPath() {
        func path(_ variables: [String: String], writable: Bool = true) -> String {
            SnapshotFile.defaultPath(
                application: "checkout api", environment: "prod", variables: variables, temporaryDirectory: "/tmp/", userID: 1000,
                isWritableFolder: { _ in writable })
        }
        #expect(path(["XDG_STATE_HOME": "/srv/state/", "HOME": "/home/ann"]) == "/srv/state/flagpole/checkout_api-prod.json")
        #expect(path(["XDG_STATE_HOME": "relative/state", "HOME": "/home/ann"]) == "/home/ann/.local/state/flagpole/checkout_api-prod.json")
        #expect(path(["HOME": "/home/ann"]) == "/home/ann/.local/state/flagpole/checkout_api-prod.json")
        #expect(path(["HOME": "/nonexistent"], writable: false) == "/tmp/flagpole-1000/checkout_api-prod.json")
        #expect(path(["HOME": "/"]) == "/tmp/flagpole-1000/checkout_api-prod.json")
        #expect(path([:]) == "/tmp/flagpole-1000/checkout_api-prod.json")
        let configured = FlagpoleClient.Configuration(redis: try! RedisConfiguration(url: "redis://127.0.0.1"), environment: "prod", application: "a")
        #expect(configured.snapshotPath?.hasPrefix(FileManager.default.temporaryDirectory.appendingPathComponent("flagpole").path + "/") == false)
    }

    @Test("a symbolic link in the snapshot's place is refused: a warning, then the flag files")
    func symlinkRefused() async throws {
        try await RedisServer.withServer { server in
            server.kill()
            let scratch = try Scratch()
            defer { scratch.remove() }
            let folder = try scratch.folder("state")
            let real = folder + "/real.json", link = folder + "/prod.json"
            try write(sealed(document()), to: real)
            // The file itself is served: the refusal below is the link's.
            let direct = try await coldStart(server, snapshot: real, files: scratch.flagFiles)
            #expect(direct.source == .disk && direct.value == true)
            #expect(symlink(real, link) == 0)
            let linked = try await coldStart(server, snapshot: link, files: scratch.flagFiles)
            #expect(linked.source == .files && linked.value == false)
            #expect(linked.log.text.contains("is a symbolic link"))
        }
    }

    @Test("a folder writable by group or others, or owned by another user, is refused with a log line saying why")
    func unsafeFolderRefused() async throws {
        try await RedisServer.withServer { server in
            let scratch = try Scratch()
            defer { scratch.remove() }
            let fx = try await Fixture(server)
            defer { fx.remove() }
            let modes: [mode_t] = [0o770, 0o707, 0o777]
            var open: [String] = []
            for m in modes { open.append(try scratch.folder("open-\(String(m, radix: 8))", mode: m)) }
            // Another user's folder: as root, one handed to nobody; otherwise / (root's).
            let other: String
            if geteuid() == 0 {
                other = try scratch.folder("nobody")
                #expect(chown(other, 65534, 65534) == 0)
            } else {
                other = "/"
            }
            let otherPath = (other == "/" ? "" : other) + "/prod.json"

            // Writing: refused, with the reason, and nothing is created there.
            for (folder, reason) in zip(
                open + [other], modes.map { "mode 0\(String($0, radix: 8)), writable by its group or others" } + ["belongs to uid"])
            {
                let log = LogCapture()
                let path = (folder == "/" ? "" : folder) + "/prod.json"
                let client = makeClient(server.configuration, snapshot: path, files: nil, log: log)
                try await whileRunning(client) {
                    try await waitUntil("the write to \(folder) is refused") { log.contains("Cannot write the snapshot to disk") }
                }
                #expect(log.text.contains(reason), "\(log.text)")
                #expect(!FileManager.default.fileExists(atPath: path))
            }

            // Reading: a valid snapshot someone put there is not served.
            server.kill()
            var planted = zip(open, modes.map { "mode 0\(String($0, radix: 8))" }).map { ($0 + "/prod.json", $1) }
            if other != "/" {
                try write(sealed(document()), to: otherPath)
                #expect(chown(otherPath, 65534, 65534) == 0)
                planted.append((otherPath, "belongs to uid 65534"))
            }
            for (path, reason) in planted {
                if !FileManager.default.fileExists(atPath: path) { try write(sealed(document()), to: path) }
                let read = try await coldStart(server, snapshot: path, files: scratch.flagFiles)
                #expect(read.source == .files && read.value == false)
                #expect(read.log.text.contains(reason), "\(read.log.text)")
            }
        }
    }

    /// Damage done to an otherwise valid snapshot.
    struct Damage: Sendable, CustomTestStringConvertible {
        var name: String
        var bytes: @Sendable () -> [UInt8]
        var testDescription: String { name }

        static let all: [Damage] = [
            Damage(name: "not JSON") { Array("flagpole".utf8) },
            Damage(name: "empty") { [] },
            Damage(name: "cut short") {
                let whole = sealed(document())
                return Array(whole.prefix(whole.count / 2))
            },
            Damage(name: "a value changed, the checksum not") {
                Array(String(decoding: sealed(document()), as: UTF8.self).replacingOccurrences(of: "\"on\":true", with: "\"on\":false").utf8)
            },
            Damage(name: "no checksum") {
                var d = document()
                d["checksum"] = nil
                return Array(JSONValue.object(d).jsonString.utf8)
            },
            Damage(name: "format 1 (an older Flagpole)") {
                var d = document()
                d["flagpoleSnapshot"] = 1
                return Array(JSONValue.object(d).jsonString.utf8)
            },
            Damage(name: "format 3") {
                var d = document()
                d["flagpoleSnapshot"] = 3
                return sealed(d)
            },
            Damage(name: "flags is an array") {
                var d = document()
                d["flags"] = [1, 2]
                return sealed(d)
            },
            Damage(name: "revision is a string") { sealed(document(revision: "7")) },
            Damage(name: "environmentId is a number") { sealed(document(environmentID: 7)) },
            Damage(name: "an unknown fractional algorithm") {
                var d = document()
                d["fractionalAlgorithm"] = "v9"
                return sealed(d)
            },
            Damage(name: "the document is an array") { Array("[1,2,3]".utf8) },
        ]
    }

    @Test("a corrupt, cut, tampered, old-format or wrongly typed file: a warning, the flag files, no crash", arguments: Damage.all)
    func damagedFile(_ damage: Damage) async throws {
        try await RedisServer.withServer { server in
            server.kill()
            let scratch = try Scratch()
            defer { scratch.remove() }
            let path = try scratch.folder("state") + "/prod.json"
            try write(damage.bytes(), to: path)
            let start = try await coldStart(server, snapshot: path, files: scratch.flagFiles)
            #expect(start.source == .files && start.value == false)
            #expect(start.log.contains("Cannot use the snapshot on disk"), "\(start.log.text)")
            #expect(start.log.text.contains(path))
        }
    }

    @Test("the same document undamaged is served (so the refusals above are the damage's)")
    func intactFile() async throws {
        try await RedisServer.withServer { server in
            server.kill()
            let scratch = try Scratch()
            defer { scratch.remove() }
            let path = try scratch.folder("state") + "/prod.json"
            try write(sealed(document()), to: path)
            let start = try await coldStart(server, snapshot: path, files: scratch.flagFiles)
            #expect(start.source == .disk && start.value == true && start.freshness.revision == 7)
            #expect(!start.log.contains("Cannot use the snapshot on disk"))
        }
    }

    @Test(
        "absurd revisions and times: no crash; a revision must be a whole number from 0, savedAt is clamped to 1970…now",
        arguments: [
            ("revision 1e300", document(revision: 1e300), nil),
            ("revision 2^64 (past Int64)", document(revision: .double(18_446_744_073_709_551_616)), nil),
            ("revision -1", document(revision: -1), nil),
            ("revision 7.5", document(revision: 7.5), nil),
            ("revision Int64.max", document(revision: .int(.max)), Int64.max),
            ("savedAt 1e308 (the future)", document(savedAt: 1e308), 7),
            ("savedAt -1e308", document(savedAt: -1e308), 7),
            ("savedAt a string", document(savedAt: "yesterday"), nil),
        ] as [(String, [String: JSONValue], Int64?)])
    func absurdValues(_ name: String, _ fields: [String: JSONValue], _ served: Int64?) async throws {
        try await RedisServer.withServer { server in
            server.kill()
            let scratch = try Scratch()
            defer { scratch.remove() }
            let path = try scratch.folder("state") + "/prod.json"
            try write(sealed(fields), to: path)
            let start = try await coldStart(server, snapshot: path, files: scratch.flagFiles)
            if let served {
                #expect(start.source == .disk && start.freshness.revision == served, "\(name)")
                let age = try #require(start.freshness.age)
                #expect(age >= .zero && age <= .seconds(WallClock.maxAgeSeconds), "\(name): age \(age)")
            } else {
                #expect(start.source == .files, "\(name)")
                #expect(start.log.contains("Cannot use the snapshot on disk"), "\(name): \(start.log.text)")
            }
        }
    }

    @Test("a snapshot of another environment is refused with a log line naming both")
    func otherEnvironment() async throws {
        try await RedisServer.withServer { server in
            server.kill()
            let scratch = try Scratch()
            defer { scratch.remove() }
            let path = try scratch.folder("state") + "/prod.json"
            try write(sealed(document(environment: "staging")), to: path)
            let start = try await coldStart(server, snapshot: path, files: scratch.flagFiles)
            #expect(start.source == .files && start.value == false)
            #expect(start.log.text.contains("holds environment 'staging', not 'prod'"))
        }
    }

    @Test("Redis reachable at start: its data is served, never the older snapshot first")
    func redisFirst() async throws {
        try await RedisServer.withServer { a in
            let scratch = try Scratch()
            defer { scratch.remove() }
            let path = try scratch.folder("state") + "/prod.json"
            _ = try await snapshotOfA(a, at: path)
            // A moves on while no client runs: new-checkout is off again.
            let store = try FlagStore(client: RedisClient(configuration: a.configuration), environment: "prod")
            let revision = try await store.revision()
            var change = StoreChange(audit: AuditEntry(action: "clear", actor: "ann", at: 1, flags: ["new-checkout"]))
            change.removeOverrides = ["new-checkout"]
            try await store.apply(change, expectedRevision: revision)

            let log = LogCapture()
            let client = makeClient(a.configuration, snapshot: path, files: scratch.flagFiles, log: log)
            let watch = Watch(client)
            try await whileRunning(client) {
                #expect(await client.waitUntilReady(timeout: .seconds(5)))
                #expect(client.freshness.source == .redis && client.freshness.revision == 3)
            }
            try await watch.halt()
            #expect(watch.trues.load(ordering: .relaxed) == 0, "the snapshot's value was served before Redis's")
            #expect(watch.evaluations.load(ordering: .relaxed) > 100)
            #expect(!log.text.contains("Serving the last-known-good snapshot"))
            #expect(!log.text.contains("other Redis data"))
        }
    }

    @Test("a snapshot of one Redis is refused by a client that starts against another, freshly synced one")
    func otherRedisSynced() async throws {
        try await RedisServer.withServer { a in
            try await RedisServer.withServer { b in
                let scratch = try Scratch()
                defer { scratch.remove() }
                let path = try scratch.folder("state") + "/prod.json"
                let idA = try await snapshotOfA(a, at: path)
                let fxB = try await Fixture(b)  // the same files: revision 1, new-checkout off
                defer { fxB.remove() }
                let idB = try #require(try await fxB.control.store.environmentID())
                #expect(idA != idB)

                let log = LogCapture()
                let client = makeClient(b.configuration, snapshot: path, files: nil, log: log)
                let watch = Watch(client)
                try await whileRunning(client) {
                    #expect(await client.waitUntilReady(timeout: .seconds(5)))
                    #expect(client.freshness.source == .redis && client.freshness.revision == 1)
                    try await waitUntil("the snapshot on disk is B's") {
                        onDisk(path)?["environmentId"] == .string(idB) && onDisk(path)?["revision"] == 1
                    }
                }
                try await watch.halt()
                #expect(watch.trues.load(ordering: .relaxed) == 0, "A's value was served by a client of B")
                #expect(log.contains("Discarded the snapshot on disk: it came from other Redis data"), "\(log.text)")
                #expect(log.text.contains(idA) && log.text.contains(idB))
            }
        }
    }

    @Test("a fresh client on an empty, never-synced Redis does not serve another server's data: code defaults, source redis, revision 0")
    func otherRedisEmpty() async throws {
        try await RedisServer.withServer { a in
            try await RedisServer.withServer { b in
                let scratch = try Scratch()
                defer { scratch.remove() }
                let path = try scratch.folder("state") + "/prod.json"
                _ = try await snapshotOfA(a, at: path)

                let log = LogCapture()
                // Flag files configured too: with Redis answering, they are not served either.
                let client = makeClient(b.configuration, snapshot: path, files: scratch.flagFiles, log: log)
                let watch = Watch(client)
                try await whileRunning(client) {
                    #expect(await client.waitUntilReady(timeout: .seconds(5)))
                    try await waitUntil("in sync with B") { client.freshness.isInSync }
                    let f = client.freshness
                    #expect(f.source == .redis && f.revision == 0)
                    let d = client.boolDetails("new-checkout", default: false)
                    #expect(d.value == false && d.errorCode == .flagNotFound)
                    try await waitUntil("the foreign snapshot is removed") { !FileManager.default.fileExists(atPath: path) }
                }
                try await watch.halt()
                #expect(watch.trues.load(ordering: .relaxed) == 0, "A's value was served by a client of an empty B")
                #expect(log.contains("Discarded the snapshot on disk: it came from other Redis data"), "\(log.text)")
                #expect(!log.text.contains("Serving the flag files"))
            }
        }
    }

    @Test("Redis down at start: the snapshot of this environment is served; when Redis answers with other data it is dropped, with its own it is not")
    func droppedWhenRedisAnswers() async throws {
        try await RedisServer.withServer(.init(appendOnly: true)) { a in
            try await RedisServer.withServer(.init(appendOnly: true)) { b in
                let scratch = try Scratch()
                defer { scratch.remove() }
                let path = try scratch.folder("state") + "/prod.json"
                _ = try await snapshotOfA(a, at: path)
                let fxB = try await Fixture(b)
                defer { fxB.remove() }
                let idB = try #require(try await fxB.control.store.environmentID())

                // Its own Redis comes back: kept until Redis's data replaces it, no drop.
                a.kill()
                let own = LogCapture()
                let ownClient = makeClient(a.configuration, snapshot: path, files: nil, log: own)
                try await whileRunning(ownClient) {
                    try await waitUntil("the snapshot is served") { ownClient.freshness.source == .disk }
                    #expect(ownClient.bool("new-checkout", default: false) == true && ownClient.freshness.revision == 2)
                    try await a.restart()
                    try await waitUntil("Redis A's data is served", timeout: .seconds(15)) { ownClient.freshness.source == .redis }
                    #expect(ownClient.bool("new-checkout", default: false) == true && ownClient.freshness.revision == 2)
                }
                #expect(own.contains("Serving the last-known-good snapshot until Redis answers", level: .info))
                #expect(!own.text.contains("other Redis data"))

                // Another Redis comes back: dropped, with a line saying why; B's data served and saved.
                b.kill()
                let other = LogCapture()
                let client = makeClient(b.configuration, snapshot: path, files: nil, log: other)
                try await whileRunning(client) {
                    try await waitUntil("the snapshot is served") { client.freshness.source == .disk }
                    #expect(client.bool("new-checkout", default: false) == true)
                    try await b.restart()
                    try await waitUntil("Redis B's data is served", timeout: .seconds(15)) { client.freshness.source == .redis }
                    #expect(client.bool("new-checkout", default: false) == false && client.freshness.revision == 1)
                    try await waitUntil("the snapshot on disk is B's") { onDisk(path)?["environmentId"] == .string(idB) }
                }
                #expect(other.contains("Dropped the snapshot on disk that was served until Redis answered"), "\(other.text)")
            }
        }
    }
}
