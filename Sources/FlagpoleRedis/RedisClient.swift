import Logging

/// A Redis client that can be shared across tasks: commands run in order on one connection that
/// lives on a dedicated thread (never on Swift's cooperative pool).
///
/// After the server goes away, the next command reconnects at once; if that fails, attempts are
/// paced with exponential backoff and jitter (``RedisConfiguration/backoff``), and a command made
/// while the next attempt is not due fails at once with ``RedisError/Code/reconnecting``. No call
/// waits longer than the connect timeout plus the command timeout.
public final class RedisClient: Sendable {
    /// The server and its settings.
    public let configuration: RedisConfiguration
    private let thread: DedicatedThread
    private let slot: ConnectionSlot

    /// Makes a client; it connects on first use.
    public init(configuration: RedisConfiguration, logger: Logger = Logger(label: "flagpole.redis")) {
        self.configuration = configuration
        self.thread = DedicatedThread(name: "flagpole.redis \(configuration.address)")
        self.slot = ConnectionSlot(configuration: configuration, logger: logger)
    }

    deinit {
        let slot = self.slot
        thread.submit { slot.close() }
        thread.stop()
    }

    /// Closes the connection; later commands fail with ``RedisError/Code/clientClosed``.
    public func close() async {
        let slot = self.slot
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            if !thread.submit({ slot.close(); c.resume() }) { c.resume() }
        }
    }

    /// Sends one command and returns its reply. An error reply is thrown.
    public func send(_ command: RedisCommand) async throws -> RedisReply {
        try await withConnection { try $0.send(command) }
    }

    /// Sends one command given as words: `try await client.send("GET", key)`.
    public func send(_ words: String...) async throws -> RedisReply {
        try await send(RedisCommand(words.map { RedisArgument($0) }))
    }

    /// Sends every command, then reads every reply, in one round trip. Error replies are values.
    public func pipeline(_ commands: [RedisCommand]) async throws -> [RedisReply] {
        try await withConnection { try $0.pipeline(commands) }
    }

    /// `MULTI` … `EXEC` in one round trip; `nil` when a `WATCH`ed key changed.
    public func transaction(_ commands: [RedisCommand]) async throws -> [RedisReply]? {
        try await withConnection { try $0.transaction(commands) }
    }

    /// Runs a Lua script with `EVALSHA`, falling back to `EVAL` on `NOSCRIPT`.
    public func evaluate(_ script: RedisScript, keys: [RedisArgument] = [], arguments: [RedisArgument] = []) async throws -> RedisReply {
        try await withConnection { try $0.evaluate(script, keys: keys, arguments: arguments) }
    }

    /// Runs `body` with the connection, on the client's thread, with no other command in between:
    /// the way to do `WATCH` → read → `MULTI`/`EXEC`. `body` must not block on anything but Redis.
    public func withConnection<T: Sendable>(_ body: @escaping @Sendable (RedisConnection) throws -> T) async throws -> T {
        let slot = self.slot
        return try await withCheckedThrowingContinuation { (c: CheckedContinuation<T, any Error>) in
            let submitted = thread.submit {
                c.resume(with: Result { try slot.use(body) })
            }
            if !submitted {
                c.resume(throwing: RedisError(code: .clientClosed, message: "the client is closed", address: slot.configuration.address))
            }
        }
    }
}

/// The client's one connection and its reconnect state. Only ever touched on the client's thread.
final class ConnectionSlot: @unchecked Sendable {
    let configuration: RedisConfiguration
    private let logger: Logger
    private var connection: RedisConnection?
    private var failures = 0
    private var retryAt: ContinuousClock.Instant?
    private var lastError: RedisError?
    private var closed = false

    init(configuration: RedisConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    func use<T>(_ body: (RedisConnection) throws -> T) throws -> T {
        let connection = try connected()
        defer {
            if connection.isBroken {
                self.connection = nil
                logger.warning("Redis connection lost", metadata: ["flagpole.redis": "\(configuration.address)"])
            }
        }
        return try body(connection)
    }

    func close() {
        connection = nil
        closed = true
    }

    private func connected() throws(RedisError) -> RedisConnection {
        if closed { throw RedisError(code: .clientClosed, message: "the client is closed", address: configuration.address) }
        if let connection, !connection.isBroken { return connection }
        connection = nil
        let now = ContinuousClock.now
        if let retryAt, now < retryAt, let lastError {
            let wait = now.duration(to: retryAt)
            throw RedisError(
                code: .reconnecting,
                message: "not connected (\(lastError.message)); next attempt in \(Int(wait.seconds * 1000)) ms",
                address: configuration.address)
        }
        do {
            let c = try RedisConnection(configuration: configuration)
            if failures > 0 {
                logger.info("Redis reconnected", metadata: ["flagpole.redis": "\(configuration.address)", "flagpole.attempts": "\(failures)"])
            }
            failures = 0
            retryAt = nil
            lastError = nil
            connection = c
            return c
        } catch {
            failures += 1
            lastError = error
            let delay = configuration.backoff.delay(afterFailures: failures)
            retryAt = ContinuousClock.now + delay
            logger.debug("Redis connect failed", metadata: [
                "flagpole.redis": "\(configuration.address)", "flagpole.error": "\(error.message)",
                "flagpole.retryInMs": "\(Int(delay.seconds * 1000))",
            ])
            throw error
        }
    }
}
