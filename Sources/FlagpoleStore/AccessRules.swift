/// The Redis ACL rules Flagpole's two kinds of users need (Redis 6+), as `ACL SETUSER` arguments.
///
/// Scripts run with the caller's rights, so the writer's list names every command the write
/// script calls. Keys and channels are limited to `flagpole:*`.
public enum AccessRules {
    /// What `flagctl` needs to sync, change flags at runtime and read everything.
    public static let writer: [String] = [
        "~flagpole:*", "&flagpole:*",
        "+ping", "+info", "+acl|whoami", "+multi", "+exec", "+watch",
        "+type", "+get", "+set", "+hget", "+hgetall", "+hmget", "+hset", "+hdel", "+hexists", "+hlen",
        "+xadd", "+xrange", "+xrevrange", "+lrange", "+lpush", "+ltrim",
        "+eval", "+evalsha", "+publish", "+subscribe", "+psubscribe",
    ]

    /// What an application's client library needs (Redis 7+, for read-only key patterns): read
    /// definitions and follow changes under `flagpole:*`, and write only its own outcome counters
    /// (`flagpole:{ENV}:outcomes:*`) and heartbeat (`flagpole:{ENV}:clients` and
    /// `flagpole:{ENV}:clients:*`). It can neither change a flag nor publish a change event.
    public static let reader: [String] = [
        "%R~flagpole:*", "%RW~flagpole:*:outcomes:*", "%RW~flagpole:*:clients", "%RW~flagpole:*:clients:*", "&flagpole:*",
        "+ping", "+multi", "+exec", "+get", "+hgetall", "+hmget", "+subscribe", "+psubscribe",
        "+hincrby", "+expire", "+set", "+hset", "+hdel", "+del",
    ]

    /// The `ACL SETUSER` command line for a user with these rules, e.g. for redis-cli.
    public static func setUserCommand(user: String, password: String, rules: [String]) -> String {
        (["ACL", "SETUSER", user, "on", ">" + password, "resetkeys", "resetchannels", "-@all"] + rules).joined(separator: " ")
    }
}
