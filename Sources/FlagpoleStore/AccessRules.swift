/// The Redis ACL rules (Redis 7+) of Flagpole's three kinds of users, per environment, as
/// `ACL SETUSER` arguments. `flagctl acl --env ENV --role ROLE` prints them.
///
/// | role | keys | may |
/// |---|---|---|
/// | ``Role/app`` | one environment: its flags read-only; its outcome counters, heartbeats and evaluation times, each with only the commands it needs (Redis 7 selectors) | read flags, follow changes, flush outcomes (the flush script), heartbeat (with `HSET` of the flags it evaluated) — never change a flag, never delete or retype a counter |
/// | ``Role/writer`` | one environment, or every one | sync, set, roll out, restore, read everything (flagctl, CI) |
/// | ``Role/daemon`` | one environment | what a writer of it may, plus what an app may: serve OFREP, flush outcomes, run the watcher and announce changes (read the audit stream, write `notify:cursors`) |
///
/// Scripts run with the caller's rights: every command a script calls is checked against the
/// user, so each list names the commands of the scripts its role runs. An app user of `test`
/// can neither read nor write any key of `prod` — a compromised test app cannot add errors to
/// prod's counters and make the watcher revert a prod flag.
package enum AccessRules {
    /// A kind of Redis user.
    package enum Role: String, Sendable, Hashable, CaseIterable {
        /// An application's client library.
        case app
        /// `flagctl` run by people and CI.
        case writer
        /// `flagctl daemon`: OFREP, outcome flushes and the rollout watcher.
        case daemon

        /// What the role is for, in one line.
        package var summary: String {
            switch self {
            case .app:
                "reads the environment's flags and follows its changes; writes only its outcome counters and heartbeats"
            case .writer:
                "syncs and changes flags, starts rollouts, reads audit and history (flagctl, CI)"
            case .daemon:
                "serves OFREP, flushes outcomes, runs the rollout watcher and announces changes (notification cursors)"
            }
        }
    }

    /// Commands every role needs to connect: liveness, the primary's role (Sentinel), a database
    /// number in the URL, and Cluster's slot map and redirections.
    static let connection = ["+ping", "+role", "+select", "+asking", "+cluster|slots"]

    /// What the client library reads with: one atomic read (`MULTI` … `EXEC`), single-flag reads,
    /// the change channel.
    static let appReadCommands = ["+multi", "+exec", "+get", "+hget", "+hgetall", "+hmget", "+subscribe"]

    /// What the client library writes with: the outcome flush script and the heartbeat.
    static let appWriteCommands = ["+evalsha", "+eval", "+set", "+hincrby", "+hset", "+expire", "+del", "+hdel"]

    /// What `flagctl` runs, its write script's commands included.
    static let writerCommands = [
        "+multi", "+exec", "+watch", "+type", "+get", "+set", "+hget", "+hgetall", "+hmget", "+hset", "+hdel", "+hexists",
        "+hlen", "+hkeys", "+xadd", "+xrange", "+xrevrange", "+lrange", "+lpush", "+ltrim", "+eval", "+evalsha",
        "+publish", "+subscribe",
    ]

    /// The rules of `role`.
    ///
    /// - Parameter environment: The environment the user is limited to; nil for every
    ///   environment, which only ``Role/writer`` may be (the others are refused: nil is returned).
    package static func rules(for role: Role, environment: String?) -> [String]? {
        switch role {
        case .app:
            guard let environment else { return nil }
            let p = "flagpole:{\(environment)}:"
            // Reads everywhere it may look; writes only through selectors (Redis 7) that pair each
            // key pattern with the few commands it needs, so an app can add to its counters but not
            // turn one into a string, delete it, or write anything else.
            return ["%R~\(p)revision", "%R~\(p)flags", "%R~\(p)overrides", "%R~\(p)pins", "%R~\(p)meta", "&\(p)changes"]
                + connection + appReadCommands
                + [
                    "(~\(p)outcomes:* +evalsha +eval +hincrby +hset +expire)",
                    "(~\(p)outcomes:flushed:* +get +set)",
                    "(~\(p)clients +hset +hdel +hgetall)",
                    "(~\(p)clients:* +set +del)",
                    "(~\(p)evaluated +hset)",
                ]
        case .writer:
            let (keys, channels) = environment.map { ("~flagpole:{\($0)}:*", "&flagpole:{\($0)}:changes") } ?? ("~flagpole:*", "&flagpole:*")
            return [keys, channels] + connection + ["+info", "+acl|whoami"] + writerCommands
        case .daemon:
            guard let environment else { return nil }
            let extra = (appReadCommands + appWriteCommands).filter { !writerCommands.contains($0) }
            return ["~flagpole:{\(environment)}:*", "&flagpole:{\(environment)}:changes"] + connection + writerCommands + extra
        }
    }

    /// What `flagctl` needs to sync, change flags at runtime and read everything, in every
    /// environment: ``rules(for:environment:)`` of ``Role/writer`` with no environment.
    package static var writer: [String] { rules(for: .writer, environment: nil)! }

    /// The name `flagctl acl` gives a role's user: `flagpole-<role>-<env>` (`flagpole-writer` for
    /// a writer of every environment).
    package static func defaultUser(_ role: Role, environment: String?) -> String {
        "flagpole-\(role.rawValue)" + (environment.map { "-\($0)" } ?? "")
    }

    /// The `ACL SETUSER` arguments for a user with these rules, one string each.
    package static func setUserArguments(user: String, password: String, rules: [String]) -> [String] {
        ["ACL", "SETUSER", user, "on", ">" + password, "resetkeys", "resetchannels", "-@all"] + rules
    }

    /// The `ACL SETUSER` command line for a user with these rules, for redis-cli: a selector
    /// (`(~key +command …)`, which holds spaces) is double-quoted.
    package static func setUserCommand(user: String, password: String, rules: [String]) -> String {
        setUserArguments(user: user, password: password, rules: rules).map { $0.contains(" ") ? "\"" + $0 + "\"" : $0 }
            .joined(separator: " ")
    }
}
