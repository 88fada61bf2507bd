import Logging

/// A Redis client that can be shared across tasks: commands run in order on one connection that
/// lives on a dedicated thread (never on Swift's cooperative pool).
///
/// With a Sentinel configuration the connection is to the primary the Sentinels name, checked
/// with `ROLE`; the client moves to the new primary when a Sentinel announces a failover, when
/// the connection drops, or when the old primary answers `READONLY` (the command is then retried
/// once on the new primary). With a Cluster configuration (or after a `MOVED` reply) the client
/// keeps one connection per node on the same thread and sends each command, pipeline,
/// transaction or script to the node that owns its key's hash slot, following `MOVED` and `ASK`
/// (at most ``RedisConfiguration/maxRedirects`` times); a transaction's keys must share one slot.
///
/// After the server goes away, the next command reconnects at once; if that fails, attempts are
/// paced with exponential backoff and jitter (``RedisConfiguration/backoff``), and a command made
/// while the next attempt is not due fails at once with ``RedisError/Code/reconnecting``.
///
/// **Deadlines.** Every call has one deadline, ``RedisConfiguration/callTimeout`` (connect
/// timeout + command timeout, 4 s by default) from the moment it is made. It covers the wait
/// behind earlier calls on this client, reconnecting (all connect attempts of the call share the
/// connect timeout, Sentinels and cluster nodes included), redirects and retries, and reading
/// every reply; the caller is resumed with ``RedisError/Code/timeout`` at the deadline at the
/// latest, whatever the client's thread is blocked on. Cancelling the calling task resumes the
/// caller at once with ``RedisError/Code/cancelled`` (a call already sent loses its connection,
/// whose reply is then unread). A configuration that fails ``RedisConfiguration/validate()`` is
/// refused: every call throws ``RedisError/Code/invalidConfiguration`` and nothing is sent.
package final class RedisClient: Sendable {
    /// The server and its settings.
    package let configuration: RedisConfiguration
    private let thread: DedicatedThread
    private let watchdog: DeadlineWatchdog
    private let wake = WakePipe()
    private let slot: ConnectionSlot
    private let invalid: RedisError?

    /// Makes a client; it connects on first use. An invalid configuration is reported by every call.
    package init(configuration: RedisConfiguration, logger: Logger = Logger(label: "flagpole.redis")) {
        self.configuration = configuration
        do {
            try configuration.validate()
            invalid = nil
        } catch {
            invalid = error
        }
        self.thread = DedicatedThread(name: "flagpole.redis \(configuration.address)")
        self.watchdog = DeadlineWatchdog(name: "flagpole.redis.deadlines")
        self.slot = ConnectionSlot(configuration: configuration, logger: logger)
    }

    deinit {
        let slot = self.slot
        thread.submit { slot.close() }
        thread.stop()
        watchdog.stop()
    }

    /// Closes the connection; later commands fail with ``RedisError/Code/clientClosed``.
    package func close() async {
        let slot = self.slot
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            if !thread.submit({
                slot.close(); c.resume()
            }) {
                c.resume()
            }
        }
    }

    /// Sends one command and returns its reply. An error reply is thrown.
    package func send(_ command: RedisCommand) async throws -> RedisReply {
        try await onThread { slot in try slot.send(command) }
    }

    /// Sends one command given as words: `try await client.send("GET", key)`.
    package func send(_ words: String...) async throws -> RedisReply {
        try await send(RedisCommand(words.map { RedisArgument($0) }))
    }

    /// Sends every command, then reads every reply, in one round trip. Error replies are values.
    package func pipeline(_ commands: [RedisCommand]) async throws -> [RedisReply] {
        try await onThread { slot in try slot.pipeline(commands) }
    }

    /// `MULTI` … `EXEC` in one round trip; `nil` when a `WATCH`ed key changed.
    package func transaction(_ commands: [RedisCommand]) async throws -> [RedisReply]? {
        try await onThread { slot in try slot.transaction(commands) }
    }

    /// Runs a Lua script with `EVALSHA`, falling back to `EVAL` on `NOSCRIPT`.
    package func evaluate(_ script: RedisScript, keys: [RedisArgument] = [], arguments: [RedisArgument] = []) async throws -> RedisReply {
        try await onThread { slot in try slot.evaluate(script, keys: keys, arguments: arguments) }
    }

    /// On a Sentinel topology, asks the Sentinels which node is the primary now (all that answer
    /// must agree) and, if the connection is to another node, moves to the named one (checked with
    /// `ROLE`). Call it before a write that must not be lost in a failover: between the promotion
    /// and `+switch-master` the old primary still answers writes with OK, then discards them when
    /// it is made a replica. Throws when the Sentinels disagree or the named node is not a primary
    /// yet (a failover in progress): try again later. Does nothing on a standalone server or a cluster.
    package func confirmPrimary() async throws {
        guard case .sentinel = configuration.topology else { return }
        try await onThread { slot in try slot.confirmPrimary() }
    }

    /// Runs `body` with the connection, on the client's thread, with no other command in between:
    /// the way to do `WATCH` → read → `MULTI`/`EXEC`. `body` must not block on anything but Redis.
    ///
    /// On a cluster this is a connection to any node; use ``withConnection(forKey:_:)`` to get the
    /// node that owns a key (redirects are not followed inside `body`).
    package func withConnection<T: Sendable>(_ body: @escaping @Sendable (RedisConnection) throws -> T) async throws -> T {
        try await onThread { slot in try slot.use(slot: nil, body) }
    }

    /// Runs `body` with the connection to the node that owns `key`'s hash slot (on a cluster; the
    /// one connection otherwise), on the client's thread, with no other command in between.
    package func withConnection<T: Sendable>(
        forKey key: RedisArgument, _ body: @escaping @Sendable (RedisConnection) throws -> T
    ) async throws -> T {
        try await onThread { slot in try slot.use(slot: RedisHashSlot.slot(of: key.bytes), body) }
    }

    /// Runs `body` on the client's thread within the call's deadline; the caller is resumed with
    /// its result, at the deadline, or at once when its task is cancelled.
    private func onThread<T: Sendable>(_ body: @escaping @Sendable (ConnectionSlot) throws -> T) async throws -> T {
        if let invalid { throw invalid }
        let slot = self.slot
        let call = RedisCall<T>(submitted: .now, configuration: configuration, wake: wake)
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (c: CheckedContinuation<T, any Error>) in
                guard call.install(c) else { return }
                watchdog.watch(call)
                let submitted = thread.submit {
                    guard call.begin() else { return }  // the caller gave up while it was queued
                    call.drainWakeups()
                    call.finish(Result { try slot.perform(IOLimit(end: call.deadline, signal: call)) { try body(slot) } })
                }
                if !submitted {
                    call.finish(.failure(RedisError(code: .clientClosed, message: "the client is closed", address: slot.configuration.address)))
                }
            }
        } onCancel: {
            call.cancel()
        }
    }
}
