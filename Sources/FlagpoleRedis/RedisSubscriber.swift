import Foundation
import Logging
import Synchronization

/// One message delivered to a subscriber.
package struct RedisPubSubMessage: Sendable, Hashable {
    /// The channel it was published to.
    package var channel: String
    /// The pattern that matched, for `PSUBSCRIBE` subscriptions.
    package var pattern: String?
    /// The message, binary safe.
    package var payload: [UInt8]

    package init(channel: String, pattern: String? = nil, payload: [UInt8]) {
        self.channel = channel
        self.pattern = pattern
        self.payload = payload
    }
}

/// What a subscription reports, in order.
package enum RedisSubscriberEvent: Sendable {
    /// Every channel and pattern is subscribed: after the first connect and after every reconnect.
    /// Messages published while disconnected are lost (pub/sub does not keep them): a consumer that
    /// must not miss a change re-reads its state here.
    case subscribed
    case message(RedisPubSubMessage)
    /// The connection dropped; the subscriber is reconnecting with backoff.
    case disconnected(RedisError)
}

/// Subscribes to channels and patterns on a connection of its own, read on a dedicated thread,
/// and delivers messages as an `AsyncSequence`. Reconnects and resubscribes with backoff and
/// jitter; a silent dead connection is found with `PING` every `pingInterval`.
package final class RedisSubscriber: Sendable {
    package let configuration: RedisConfiguration
    private let logger: Logger

    package init(configuration: RedisConfiguration, logger: Logger = Logger(label: "flagpole.redis.subscriber")) {
        self.configuration = configuration
        self.logger = logger
    }

    /// Starts a subscription. It runs until the consumer stops iterating (or its task is cancelled).
    ///
    /// With a Sentinel configuration the subscription is on the current primary and moves to the
    /// new one when a Sentinel announces a failover (`+switch-master`); on a cluster it is on any
    /// node (messages are broadcast cluster-wide) and moves to another seed node when its node dies.
    ///
    /// - Parameters:
    ///   - channels: channels for `SUBSCRIBE`.
    ///   - patterns: patterns for `PSUBSCRIBE`.
    ///   - pingInterval: how long the connection may be quiet before a `PING` checks it. Default: 5 s.
    ///     A `PING` not answered within the command timeout means the connection is dead.
    ///   - bufferLimit: messages kept for a slow consumer before the oldest are dropped.
    ///     `.subscribed` and `.disconnected` are never dropped, whatever the limit: a consumer
    ///     always learns when to re-read its state. Default: 10,000.
    ///
    /// A configuration that fails ``RedisConfiguration/validate()`` gives one `.disconnected`
    /// event with ``RedisError/Code/invalidConfiguration``, then the sequence ends.
    package func subscribe(
        to channels: [String], patterns: [String] = [], pingInterval: Duration = .seconds(5), bufferLimit: Int = 10_000
    ) -> AsyncStream<RedisSubscriberEvent> {
        let buffer = SubscriptionBuffer(limit: bufferLimit)
        do {
            try configuration.validate()
        } catch {
            buffer.push(.disconnected(error))
            buffer.finish()
            return AsyncStream(unfolding: { await buffer.next() })
        }
        let configuration = self.configuration
        let connect: @Sendable () throws(RedisError) -> RedisConnection
        if case .cluster(let seeds) = configuration.topology {
            // Any node will do (PUBLISH reaches every node): the seeds, then every node learned.
            let known = KnownNodes(seeds)
            connect = { () throws(RedisError) in
                let connection = try RedisConnection(candidates: known.all.map { configuration.node($0) }, describing: "cluster node")
                if let slots = try? connection.send(["CLUSTER", "SLOTS"]),
                    let owners = ConnectionSlot.parseSlots(slots, askedHost: connection.configuration.endpoint)
                {
                    known.learn(owners.compactMap { $0 })
                }
                return connection
            }
        } else {
            connect = { () throws(RedisError) in try RedisConnection(configuration: configuration) }
        }
        let reader = SubscriptionReader(
            configuration: configuration, channels: channels, patterns: patterns, pingInterval: pingInterval,
            connect: connect,
            deliver: { buffer.push($0) }, finish: { buffer.finish() }, logger: logger)
        var sentinelWatch: SentinelWatch?
        if case .sentinel = configuration.topology {
            // Move to the new primary as soon as a Sentinel announces it.
            sentinelWatch = SentinelWatch(configuration: configuration, logger: logger) { primary in
                if let now = reader.connectedEndpoint, now != primary {
                    reader.reconnect(because: "the Sentinels announced a new primary, \(primary.address)")
                }
            }
        }
        let watch = sentinelWatch
        // Stops the reader when the consumer's task is cancelled, or when the consumer drops the
        // sequence (this object goes with the closure that holds it).
        let stopper = Stopper {
            reader.stop()
            watch?.stop()
            buffer.finish()
        }
        watch?.start()
        reader.start(threadName: "flagpole.redis.subscriber")
        return AsyncStream(
            unfolding: {
                let event = await buffer.next()
                if event == nil { stopper.run() }
                return event
            },
            onCancel: { stopper.run() })
    }
}

/// Runs its action once: when asked, or when it is released.
final class Stopper: Sendable {
    private let action: Mutex<(@Sendable () -> Void)?>

    init(_ action: @escaping @Sendable () -> Void) { self.action = Mutex(action) }

    func run() {
        let action = self.action.withLock { a -> (@Sendable () -> Void)? in
            defer { a = nil }
            return a
        }
        action?()
    }

    deinit { run() }
}

/// The events between a subscription's reader thread and its consumer. Messages past `limit`
/// evict the oldest message; `.subscribed` and `.disconnected` are never evicted (the consumer
/// relies on them to know when to re-read what it follows).
final class SubscriptionBuffer: Sendable {
    private struct State {
        var events: [RedisSubscriberEvent] = []
        var head = 0
        var messages = 0
        var waiter: CheckedContinuation<RedisSubscriberEvent?, Never>?
        var finished = false
    }

    private let limit: Int
    private let state = Mutex(State())

    init(limit: Int) { self.limit = max(0, limit) }

    func push(_ event: RedisSubscriberEvent) {
        let waiter = state.withLock { s -> CheckedContinuation<RedisSubscriberEvent?, Never>? in
            guard !s.finished else { return nil }
            if let waiter = s.waiter {
                s.waiter = nil
                return waiter
            }
            if case .message = event {
                if s.messages >= limit {
                    guard let oldest = s.events[s.head...].firstIndex(where: { if case .message = $0 { true } else { false } }) else {
                        return nil  // limit 0: no message is kept
                    }
                    if oldest == s.head {
                        s.head += 1
                    } else {
                        s.events.remove(at: oldest)
                    }
                    s.messages -= 1
                }
                s.messages += 1
            }
            s.events.append(event)
            return nil
        }
        waiter?.resume(returning: event)
    }

    /// No more events after those buffered.
    func finish() {
        let waiter = state.withLock { s -> CheckedContinuation<RedisSubscriberEvent?, Never>? in
            s.finished = true
            defer { s.waiter = nil }
            return s.waiter
        }
        waiter?.resume(returning: nil)
    }

    /// The next event; nil once finished and drained, or when the waiting task is cancelled.
    func next() async -> RedisSubscriberEvent? {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<RedisSubscriberEvent?, Never>) in
                let ready = state.withLock { s -> RedisSubscriberEvent?? in
                    if s.head < s.events.count {
                        let event = s.events[s.head]
                        s.head += 1
                        if case .message = event { s.messages -= 1 }
                        if s.head == s.events.count {
                            s.events.removeAll(keepingCapacity: true)
                            s.head = 0
                        } else if s.head > 1024, s.head * 2 > s.events.count {
                            s.events.removeFirst(s.head)
                            s.head = 0
                        }
                        return .some(event)
                    }
                    if s.finished || Task.isCancelled { return .some(nil) }
                    s.waiter = c
                    return .none
                }
                if let ready { c.resume(returning: ready) }
            }
        } onCancel: {
            let waiter = state.withLock { s -> CheckedContinuation<RedisSubscriberEvent?, Never>? in
                defer { s.waiter = nil }
                return s.waiter
            }
            waiter?.resume(returning: nil)
        }
    }
}

/// A cluster's nodes as far as a subscriber knows them: the seeds first, then the nodes learned.
final class KnownNodes: Sendable {
    private let nodes: Mutex<[RedisConfiguration.Endpoint]>

    init(_ seeds: [RedisConfiguration.Endpoint]) { nodes = Mutex(seeds) }

    var all: [RedisConfiguration.Endpoint] { nodes.withLock { $0 } }

    func learn(_ endpoints: [RedisConfiguration.Endpoint]) {
        nodes.withLock { nodes in
            for e in endpoints where !nodes.contains(e) { nodes.append(e) }
        }
    }
}

/// The reading side of one subscription, on its own thread.
final class SubscriptionReader: Sendable {
    let configuration: RedisConfiguration
    let channels: [String]
    let patterns: [String]
    let pingInterval: Duration
    let connect: @Sendable () throws(RedisError) -> RedisConnection
    let deliver: @Sendable (RedisSubscriberEvent) -> Void
    let finish: @Sendable () -> Void
    let logger: Logger
    private let stopped = Atomic<Bool>(false)
    /// Why the reader should drop its connection and connect again (set from other threads).
    private let reconnectReason = Mutex<String?>(nil)
    /// The node the reader is subscribed on, while it is.
    private let connected = Mutex<RedisConfiguration.Endpoint?>(nil)
    /// A pipe that wakes `poll` when the consumer goes away.
    private let wakeRead: Int32
    private let wakeWrite: Int32

    init(
        configuration: RedisConfiguration, channels: [String], patterns: [String], pingInterval: Duration,
        connect: @escaping @Sendable () throws(RedisError) -> RedisConnection,
        deliver: @escaping @Sendable (RedisSubscriberEvent) -> Void, finish: @escaping @Sendable () -> Void, logger: Logger
    ) {
        self.configuration = configuration
        self.channels = channels
        self.patterns = patterns
        self.pingInterval = pingInterval
        self.connect = connect
        self.deliver = deliver
        self.finish = finish
        self.logger = logger
        var fds: [Int32] = [-1, -1]
        if pipe(&fds) != 0 { fds = [-1, -1] }
        wakeRead = fds[0]
        wakeWrite = fds[1]
    }

    deinit {
        if wakeRead >= 0 { close(wakeRead) }
        if wakeWrite >= 0 { close(wakeWrite) }
    }

    /// Runs the reader on a thread of its own.
    func start(threadName: String) {
        let thread = Thread { self.run() }
        thread.name = threadName
        thread.start()
    }

    func stop() {
        if !stopped.exchange(true, ordering: .acquiringAndReleasing) { wake() }
    }

    /// Drops the connection and connects again (after a failover).
    func reconnect(because reason: String) {
        reconnectReason.withLock { $0 = reason }
        wake()
    }

    /// The node the reader is subscribed on, if any.
    var connectedEndpoint: RedisConfiguration.Endpoint? { connected.withLock { $0 } }

    private func wake() {
        if wakeWrite >= 0 {
            var b: UInt8 = 1
            _ = write(wakeWrite, &b, 1)
        }
    }

    private var isStopped: Bool { stopped.load(ordering: .acquiring) }

    func run() {
        var failures = 0
        var wasConnected = false
        var dropped = false
        while !isStopped {
            if dropped {
                // Lost a working subscription: come back at a random moment within the spread,
                // so that a fleet that lost its server together does not return together.
                let delay = configuration.backoff.firstReconnectDelay()
                if delay > .zero, waitForWake(timeoutMs: max(1, delay.pollMilliseconds)) { break }
            } else if failures > 0 {
                let delay = configuration.backoff.delay(afterFailures: failures)
                if waitForWake(timeoutMs: max(1, delay.pollMilliseconds)) { break }
            }
            dropped = false
            do {
                reconnectReason.withLock { $0 = nil }
                let connection = try connect()
                connected.withLock { $0 = connection.configuration.endpoint }
                defer { connected.withLock { $0 = nil } }
                try serve(
                    connection,
                    onSubscribed: {
                        failures = 0
                        wasConnected = true
                    })
            } catch {
                if isStopped { break }
                if wasConnected || failures == 0 {
                    deliver(.disconnected(error))
                    logger.warning(
                        "Redis subscription lost; reconnecting",
                        metadata: [
                            "flagpole.redis": "\(configuration.address)", "flagpole.error": "\(error.message)",
                        ])
                }
                dropped = wasConnected
                if !wasConnected { failures += 1 }
                wasConnected = false
            }
        }
        finish()
    }

    /// Returns true when woken for stopping.
    private func waitForWake(timeoutMs: Int32) -> Bool {
        var fd = pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0)
        _ = poll(&fd, 1, timeoutMs)
        drainWakePipe()
        return isStopped
    }

    private func drainWakePipe() {
        var fd = pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0)
        var buffer = [UInt8](repeating: 0, count: 64)
        while poll(&fd, 1, 0) > 0, fd.revents & Int16(POLLIN) != 0 {
            if read(wakeRead, &buffer, buffer.count) <= 0 { break }
        }
    }

    private func serve(_ connection: RedisConnection, onSubscribed: () -> Void) throws(RedisError) {
        if !channels.isEmpty { try connection.appendAndFlush(RedisCommand(["SUBSCRIBE"] + channels.map { RedisArgument($0) })) }
        if !patterns.isEmpty { try connection.appendAndFlush(RedisCommand(["PSUBSCRIBE"] + patterns.map { RedisArgument($0) })) }
        var pending = Set(channels.map { "c:" + $0 }).union(patterns.map { "p:" + $0 })
        if pending.isEmpty {
            onSubscribed()
            deliver(.subscribed)
        }
        let intervalMs = max(1, pingInterval.pollMilliseconds)
        let pingTimeout = configuration.commandTimeout
        var pingSentAt: ContinuousClock.Instant?
        var lastHeard = ContinuousClock.now
        while !isStopped {
            var fds = [
                pollfd(fd: connection.fileDescriptor, events: Int16(POLLIN), revents: 0),
                pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0),
            ]
            let timeout: Int32
            if let pingSentAt {
                let left = pingTimeout - pingSentAt.duration(to: .now)
                timeout = max(1, left.pollMilliseconds)
            } else {
                timeout = intervalMs
            }
            let ready = poll(&fds, 2, timeout)
            if ready < 0 {
                if errno == EINTR { continue }
                throw RedisError(code: .connectionClosed, message: "poll failed (errno \(errno))", address: configuration.address)
            }
            if isStopped { return }
            if fds[1].revents != 0 { drainWakePipe() }
            if let reason = reconnectReason.withLock({ $0 }) {
                throw RedisError(code: .connectionClosed, message: "reconnecting: \(reason)", address: connection.configuration.address)
            }
            if fds[0].revents != 0 {
                for reply in try connection.readAvailableReplies() {
                    try handle(reply, connection: connection, pending: &pending, pingSentAt: &pingSentAt, onSubscribed: onSubscribed)
                }
                lastHeard = .now
                continue
            }
            // Quiet: check the connection is alive.
            if let sent = pingSentAt {
                if sent.duration(to: .now) >= pingTimeout {
                    throw RedisError(
                        code: .timeout, message: "no answer to PING within \(pingTimeout); the connection is dead",
                        address: configuration.address, command: "PING")
                }
            } else if lastHeard.duration(to: .now) >= pingInterval {
                try connection.appendAndFlush(["PING"])
                pingSentAt = .now
            }
        }
    }

    private func handle(
        _ reply: RedisReply, connection: RedisConnection, pending: inout Set<String>,
        pingSentAt: inout ContinuousClock.Instant?, onSubscribed: () -> Void
    ) throws(RedisError) {
        switch reply {
        case .array(let parts):
            guard let kind = parts.first?.string?.lowercased() else { return }
            switch kind {
            case "message" where parts.count == 3:
                deliver(.message(RedisPubSubMessage(channel: parts[1].string ?? "", payload: parts[2].bytes ?? [])))
            case "pmessage" where parts.count == 4:
                deliver(
                    .message(
                        RedisPubSubMessage(
                            channel: parts[2].string ?? "", pattern: parts[1].string, payload: parts[3].bytes ?? [])))
            case "subscribe", "psubscribe":
                let name = (kind == "subscribe" ? "c:" : "p:") + (parts.count > 1 ? parts[1].string ?? "" : "")
                if pending.remove(name) != nil, pending.isEmpty {
                    onSubscribed()
                    deliver(.subscribed)
                }
            case "pong":
                pingSentAt = nil
            default:
                break
            }
        case .status("PONG"):
            pingSentAt = nil
        case .error(let e):
            throw connection.serverError(e, command: "SUBSCRIBE")
        default:
            break
        }
    }
}
