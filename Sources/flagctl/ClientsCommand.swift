import ArgumentParser
import FlagpoleControl
import FlagpoleCore
import FlagpoleStore
import Foundation

/// `flagctl clients`: the application instances following an environment, and which revision each
/// has applied.
struct ClientsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "clients",
        abstract: "List the application instances following an environment, marking those behind the live revision.",
        discussion: """
            Every instance of the client library heartbeats into Redis (application, host, pid, library version,
            applied revision, last seen); a heartbeat expires when the instance stops sending it. An instance is
            behind when it has applied an older revision than the one live in Redis, and not in sync when it has
            lost its subscription to changes. Exit status 0 also when some are behind: this command reports.
            """)

    @OptionGroup var global: GlobalOptions
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        let control = try global.control()
        let (revision, registry) = try await reportingErrors {
            (try await control.store.revision(), try await control.store.clients())
        }
        let now = Int64(Date().timeIntervalSince1970)
        func behind(_ c: ClientRecord) -> Bool { (c.revision ?? -1) < revision }
        if json {
            Output.json([
                "environment": .string(control.environment), "revision": .int(revision), "gone": .int(Int64(registry.gone)),
                "clients": .array(
                    registry.clients.map { c in
                        var o = c.json.objectValue ?? [:]
                        o["behind"] = .bool(behind(c))
                        return .object(o)
                    }),
            ])
            return
        }
        if registry.clients.isEmpty {
            print("\(control.environment): no live instances (revision \(revision))" + (registry.gone > 0 ? "; \(registry.gone) gone" : ""))
            return
        }
        Output.table(
            ["INSTANCE", "APPLICATION", "HOST", "PID", "VERSION", "REVISION", "SOURCE", "LAST SEEN", "STATE"],
            registry.clients.map { c in
                var state: String
                if let r = c.revision, r >= revision {
                    state = "current"
                } else if let r = c.revision {
                    state = "behind (\(revision - r) revision\(revision - r == 1 ? "" : "s"))"
                } else {
                    state = "behind (no data from Redis)"
                }
                if !c.inSync { state += ", not in sync" }
                return [
                    c.id, c.application, c.host, String(c.pid), c.version, c.revision.map(String.init) ?? "-", c.source,
                    Output.ago(c.lastSeen, now: now), state,
                ]
            })
        let late = registry.clients.filter(behind).count
        var summary = "\(registry.clients.count) instance\(registry.clients.count == 1 ? "" : "s") of \(control.environment), revision \(revision)"
        summary += late == 0 ? ": all current" : ": \(late) behind"
        if registry.gone > 0 { summary += "; \(registry.gone) gone (heartbeat expired)" }
        print(summary)
    }
}
