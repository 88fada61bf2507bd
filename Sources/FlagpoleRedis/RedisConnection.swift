import CHiredis

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One blocking connection to Redis over hiredis.
///
/// It is owned by one thread at a time and never shared: ``RedisClient`` keeps one on its own
/// thread, ``RedisSubscriber`` another. The socket is non-blocking and every wait is a `poll`
/// bounded by a deadline: connecting (with `AUTH` and `SELECT`) takes at most
/// ``RedisConfiguration/connectTimeout`` in all, and each exchange (writing the commands and
/// reading every reply, however many reads that takes) at most
/// ``RedisConfiguration/commandTimeout``; inside a ``RedisClient`` call, never past the call's
/// deadline either. After any connection error the connection is ``isBroken`` and must be replaced.
package final class RedisConnection {
    package let configuration: RedisConfiguration
    private let context: UnsafeMutablePointer<redisContext>
    /// Where replies are read into before hiredis parses them.
    private let readBuffer: UnsafeMutableRawBufferPointer
    /// True once the connection failed (closed, timed out, unreadable reply); it cannot be used again.
    package private(set) var isBroken = false
    /// The current ``RedisClient`` call's deadline and stop signal (nil outside one: then only the
    /// command timeout bounds an exchange).
    var callLimit: IOLimit?
    /// True while a `WATCH` or `MULTI` sent on this connection may still be in force.
    private(set) var hasSessionState = false

    /// The hiredis version linked in, e.g. `0.14.1`.
    package static var hiredisVersion: String {
        "\(flagpole_hiredis_major()).\(flagpole_hiredis_minor()).\(flagpole_hiredis_patch())"
    }

    /// Connects, authenticates and selects the database, all within the connect timeout.
    ///
    /// For a Sentinel configuration it asks the Sentinels for the primary (each in turn, each
    /// within a fair share of the connect timeout), connects to it and checks with `ROLE` that it
    /// is a primary; for a Cluster configuration it connects to the first seed node that answers.
    /// ``configuration`` is then the node's own configuration.
    ///
    /// - Throws: ``RedisError/Code/invalidConfiguration`` when `configuration` fails
    ///   ``RedisConfiguration/validate()``; connection errors otherwise.
    package convenience init(configuration: RedisConfiguration) throws(RedisError) {
        try configuration.validate()
        try self.init(configuration: configuration, until: .now + configuration.connectTimeout, signal: nil)
    }

    /// Connects as ``init(configuration:)`` does, by `end` at the latest.
    convenience init(configuration: RedisConfiguration, until end: ContinuousClock.Instant, signal: (any CallSignal)?) throws(RedisError) {
        switch configuration.topology {
        case .standalone:
            try self.init(candidates: [configuration], describing: nil, until: end, signal: signal)
        case .sentinel(let masterName, _):
            // Keep a share of the time for the primary itself.
            let primary = try SentinelResolver.primary(of: configuration, until: end, reserving: 1, signal: signal)
            try self.init(candidates: [configuration.node(primary)], describing: nil, until: end, signal: signal)
            try verifyPrimary(masterName: masterName, until: end)
        case .cluster(let seeds):
            try self.init(candidates: seeds.map { configuration.node($0) }, describing: "cluster seed node", until: end, signal: signal)
        }
    }

    /// Checks with `ROLE` that this server is a primary (what the Sentinels named it).
    private func verifyPrimary(masterName: String, until end: ContinuousClock.Instant) throws(RedisError) {
        let role = try check(exchange([["ROLE"]], until: min(end, .now + configuration.commandTimeout))[0], command: "ROLE")
        guard let first = role.array?.first?.string, first == "master" else {
            isBroken = true
            throw RedisError(
                code: .connectionFailed,
                message:
                    "the Sentinels name \(configuration.address) as primary of '\(masterName)', but it says it is a \(role.array?.first?.string ?? "server of unknown role") (a failover in progress?)",
                address: configuration.address, command: "ROLE")
        }
    }

    /// Connects to the first of `candidates` that answers, within the first one's connect timeout.
    convenience init(candidates: [RedisConfiguration], describing: String?) throws(RedisError) {
        let timeout = candidates.first?.connectTimeout ?? .seconds(2)
        try self.init(candidates: candidates, describing: describing, until: .now + timeout, signal: nil)
    }

    /// Connects to exactly the server of `configuration.endpoint`, within its connect timeout.
    convenience init(node configuration: RedisConfiguration) throws(RedisError) {
        try self.init(candidates: [configuration], describing: nil, until: .now + configuration.connectTimeout, signal: nil)
    }

    /// Connects to the first of `candidates` that accepts a connection, then authenticates and
    /// selects the database, by `end` at the latest. Each candidate gets a fair share of the time
    /// left (a dead one that never answers cannot use it all). `describing` names the candidates
    /// in the error when none answers.
    init(
        candidates: [RedisConfiguration], describing: String?, until end: ContinuousClock.Instant, signal: (any CallSignal)?
    ) throws(RedisError) {
        var opened: (Int32, RedisConfiguration)?
        var errors: [RedisError] = []
        for (i, candidate) in candidates.enumerated() {
            let share = ContinuousClock.now.fairShare(of: end, among: candidates.count - i)
            do {
                opened = (try Self.connectSocket(candidate, until: share, signal: signal), candidate)
                break
            } catch {
                errors.append(error)
                if error.code == .cancelled || error.code == .invalidConfiguration { throw error }
            }
        }
        guard let (fd, configuration) = opened else {
            if let describing, errors.count > 0 {
                throw RedisError(
                    code: errors.allSatisfy({ $0.code == .timeout }) ? .timeout : .connectionFailed,
                    message: "no \(describing) answered (\(errors.map { "\($0.address ?? "?"): \($0.message)" }.joined(separator: "; ")))",
                    address: candidates.first.map(\.address))
            }
            throw errors.first ?? RedisError(code: .connectionFailed, message: "no server to connect to")
        }
        guard let ctx = redisConnectFd(fd) else {
            close(fd)
            throw RedisError(code: .connectionFailed, message: "out of memory allocating a connection", address: configuration.address)
        }
        self.configuration = configuration
        self.context = ctx
        self.readBuffer = .allocate(byteCount: 16 * 1024, alignment: 8)
        if case .tcp = configuration.endpoint { _ = redisEnableKeepAlive(ctx) }
        callLimit = IOLimit(end: end, signal: signal)
        defer { callLimit = nil }

        var handshake: [RedisCommand] = []
        if let password = configuration.password {
            var auth: RedisCommand = ["AUTH"]
            if let user = configuration.username { auth.arguments.append(RedisArgument(user)) }
            auth.arguments.append(RedisArgument(password))
            handshake.append(auth)
        }
        if configuration.database != 0 { handshake.append(["SELECT", RedisArgument(configuration.database)]) }
        guard !handshake.isEmpty else { return }
        let replies = try exchange(handshake, until: end, phase: .connect)
        if configuration.password != nil, case .error(let e) = replies[0] {
            isBroken = true
            throw RedisError(
                code: .authenticationFailed,
                message: "authentication as \(configuration.username.map { "user '\($0)'" } ?? "the default user") failed: \(e)",
                address: configuration.address, command: "AUTH", serverMessage: e)
        }
        if configuration.database != 0, case .error(let e) = replies[replies.count - 1] {
            isBroken = true
            throw serverError(e, command: "SELECT")
        }
    }

    deinit {
        redisFree(context)
        readBuffer.deallocate()
    }

    /// Sends one command and waits for its reply. An error reply is thrown as a ``RedisError``.
    package func send(_ command: RedisCommand) throws(RedisError) -> RedisReply {
        try check(sendRaw(command), command: command.name)
    }

    /// Sends one command and returns its reply, error replies included.
    package func sendRaw(_ command: RedisCommand) throws(RedisError) -> RedisReply {
        try exchange([command], until: exchangeEnd())[0]
    }

    /// Writes every command, then reads every reply: one round trip. Error replies are values in the
    /// result; a connection failure throws.
    package func pipeline(_ commands: [RedisCommand]) throws(RedisError) -> [RedisReply] {
        guard !commands.isEmpty else { return [] }
        return try exchange(commands, until: exchangeEnd())
    }

    /// When the exchange starting now must end: the command timeout from now, or the call's
    /// deadline if that is sooner.
    private func exchangeEnd() -> ContinuousClock.Instant {
        let own = ContinuousClock.now + configuration.commandTimeout
        guard let call = callLimit?.end else { return own }
        return min(own, call)
    }

    /// What a wait belongs to, for the message when it times out.
    enum Phase {
        case connect, command
    }

    /// Writes `commands` and reads one reply per command, all by `end`.
    func exchange(_ commands: [RedisCommand], until end: ContinuousClock.Instant, phase: Phase = .command) throws(RedisError) -> [RedisReply] {
        let name = commands.first?.name
        try ensureUsable(name)
        let wire = Self.encode(commands)
        try write(wire, until: end, command: name, phase: phase)
        var replies: [RedisReply] = []
        replies.reserveCapacity(commands.count)
        var waitFirst = true
        for command in commands {
            replies.append(try readReply(until: end, command: command, waitFirst: &waitFirst, phase: phase))
        }
        track(commands)
        return replies
    }

    /// Runs the commands inside `MULTI`/`EXEC` in one round trip and returns their replies, or `nil`
    /// when a `WATCH`ed key changed and the transaction did nothing.
    package func transaction(_ commands: [RedisCommand]) throws(RedisError) -> [RedisReply]? {
        try Self.transactionResult(pipeline([["MULTI"]] + commands + [["EXEC"]]), commands: commands, address: configuration.address)
    }

    /// The result of `MULTI`, `commands`, `EXEC` from their pipelined replies.
    static func transactionResult(_ replies: [RedisReply], commands: [RedisCommand], address: String) throws(RedisError) -> [RedisReply]? {
        for (i, reply) in replies.dropLast().enumerated() {
            if case .error(let e) = reply {
                let name = i == 0 ? "MULTI" : commands[i - 1].name
                throw serverError(e, command: name, address: address)
            }
        }
        switch replies.last! {
        case .null: return nil
        case .array(let results): return results
        case .error(let e): throw serverError(e, command: "EXEC", address: address)
        default: throw RedisError(code: .protocolError, message: "unexpected EXEC reply", address: address, command: "EXEC")
        }
    }

    /// Runs a Lua script by its SHA-1, and by its source when the server does not know it yet.
    package func evaluate(_ script: RedisScript, keys: [RedisArgument] = [], arguments: [RedisArgument] = []) throws(RedisError) -> RedisReply {
        let tail = [RedisArgument(keys.count)] + keys + arguments
        let reply = try sendRaw(RedisCommand(["EVALSHA", RedisArgument(script.sha1)] + tail))
        if case .error(let e) = reply, e.hasPrefix("NOSCRIPT") {
            return try check(sendRaw(RedisCommand(["EVAL", RedisArgument(script.source)] + tail)), command: "EVAL")
        }
        return try check(reply, command: "EVALSHA")
    }

    // MARK: - Pub/sub support (used by RedisSubscriber on its own thread)

    /// The socket, for `poll`.
    var fileDescriptor: Int32 { context.pointee.fd }

    /// Writes a command, within the command timeout.
    func appendAndFlush(_ command: RedisCommand) throws(RedisError) {
        try ensureUsable(command.name)
        let wire = Self.encode([command])
        let end = exchangeEnd()
        try write(wire, until: end, command: command.name, phase: .command)
    }

    /// Reads what the socket has (call after `poll` says it is readable) and returns every
    /// complete reply it holds. Never waits.
    func readAvailableReplies() throws(RedisError) -> [RedisReply] {
        try ensureUsable(nil)
        _ = try receive(command: nil)
        var replies: [RedisReply] = []
        while let reply = try parsedReply(command: nil) { replies.append(reply) }
        return replies
    }

    // MARK: - I/O

    /// Drops the `WATCH`ed keys and any open `MULTI` (`DISCARD`, `UNWATCH`), so that the next user
    /// of the connection starts clean. A connection that cannot be reset is broken.
    func resetSession() throws(RedisError) {
        guard hasSessionState, !isBroken else { return }
        do {
            _ = try exchange([["DISCARD"], ["UNWATCH"]], until: exchangeEnd())
        } catch {
            isBroken = true
            throw error
        }
        hasSessionState = false
    }

    /// Notes whether `WATCH` or `MULTI` may be in force after `commands` ran.
    private func track(_ commands: [RedisCommand]) {
        for command in commands {
            guard let first = command.arguments.first?.bytes, (4...7).contains(first.count) else { continue }
            switch first[0] | 0x20 {  // lower case
            case UInt8(ascii: "w"), UInt8(ascii: "m"), UInt8(ascii: "e"), UInt8(ascii: "d"), UInt8(ascii: "u"):
                switch command.name {
                case "WATCH", "MULTI": hasSessionState = true
                case "EXEC", "DISCARD", "UNWATCH": hasSessionState = false
                default: break
                }
            default:
                continue
            }
        }
    }

    private func write(_ wire: [UInt8], until end: ContinuousClock.Instant, command: String?, phase: Phase) throws(RedisError) {
        let failure = wire.withUnsafeBytes { raw -> RedisError? in
            do throws(RedisError) {
                try writeAll(raw, until: end, command: command, phase: phase)
                return nil
            } catch {
                return error
            }
        }
        if let failure { throw failure }
    }

    private func writeAll(_ bytes: UnsafeRawBufferPointer, until end: ContinuousClock.Instant, command: String?, phase: Phase) throws(RedisError) {
        guard let base = bytes.baseAddress else { return }
        var offset = 0
        while offset < bytes.count {
            let n = Self.systemSend(context.pointee.fd, base + offset, bytes.count - offset, Self.sendFlags)
            if n > 0 {
                offset += n
                continue
            }
            let error = errno
            if n < 0 && error == EINTR { continue }
            if n < 0 && (error == EAGAIN || error == EWOULDBLOCK) {
                try wait(for: Int16(POLLOUT), until: end, command: command, phase: phase)
                continue
            }
            isBroken = true
            throw RedisError(
                code: .connectionClosed, message: "connection lost while sending: \(Self.describe(errno: error))",
                address: configuration.address, command: command)
        }
    }

    /// The next reply, reading (and waiting, by `end`) as long as it takes to complete it.
    private func readReply(
        until end: ContinuousClock.Instant, command: RedisCommand, waitFirst: inout Bool, phase: Phase
    ) throws(RedisError) -> RedisReply {
        while true {
            if let reply = try parsedReply(command: command.name) { return reply }
            // Right after writing, the reply is not there yet: wait before the first read.
            if waitFirst {
                try wait(for: Int16(POLLIN), until: end, command: command.name, phase: phase)
                waitFirst = false
            }
            if try !receive(command: command.name) {
                try wait(for: Int16(POLLIN), until: end, command: command.name, phase: phase)
            }
        }
    }

    /// A complete reply hiredis has parsed from what was read, if any.
    private func parsedReply(command: String?) throws(RedisError) -> RedisReply? {
        var raw: UnsafeMutableRawPointer?
        if redisGetReplyFromReader(context, &raw) != REDIS_OK { throw contextError(command: command) }
        guard let raw else { return nil }
        defer { freeReplyObject(raw) }
        return Self.decode(raw.assumingMemoryBound(to: redisReply.self))
    }

    /// Reads what the socket holds into hiredis's reader, without waiting; false when it holds nothing.
    private func receive(command: String?) throws(RedisError) -> Bool {
        while true {
            let n = recv(context.pointee.fd, readBuffer.baseAddress, readBuffer.count, Int32(MSG_DONTWAIT))
            if n > 0 {
                if redisReaderFeed(context.pointee.reader, readBuffer.baseAddress!.assumingMemoryBound(to: CChar.self), n) != REDIS_OK {
                    throw contextError(command: command)
                }
                return true
            }
            if n == 0 {
                isBroken = true
                throw RedisError(
                    code: .connectionClosed, message: "the server closed the connection", address: configuration.address, command: command)
            }
            let error = errno
            if error == EINTR { continue }
            if error == EAGAIN || error == EWOULDBLOCK { return false }
            isBroken = true
            throw RedisError(
                code: .connectionClosed, message: "connection lost: \(Self.describe(errno: error))", address: configuration.address, command: command)
        }
    }

    /// Waits until the socket is ready for `events`, by `end`, or until the call is stopped. A
    /// wait that ends without the socket being ready breaks the connection (a reply may be on
    /// its way that nobody would read).
    private func wait(for events: Int16, until end: ContinuousClock.Instant, command: String?, phase: Phase) throws(RedisError) {
        switch Self.waitReady(context.pointee.fd, events: events, until: end, signal: callLimit?.signal) {
        case .ready:
            return
        case .stopped(let reason):
            isBroken = true
            throw RedisError(code: reason.code, message: reason.message, address: configuration.address, command: command)
        case .timedOut:
            isBroken = true
            let message: String
            if phase == .connect {
                message = "connecting (AUTH, SELECT) took longer than the connect timeout of \(configuration.connectTimeout.formatted)"
            } else if let call = callLimit?.end, call <= end {
                message =
                    "no reply before the call's deadline (connect timeout \(configuration.connectTimeout.formatted) + command timeout \(configuration.commandTimeout.formatted), counted from when the call was made)"
            } else {
                message = "no reply within the command timeout of \(configuration.commandTimeout.formatted)"
            }
            throw RedisError(code: .timeout, message: message, address: configuration.address, command: command)
        case .failed(let error):
            isBroken = true
            throw RedisError(
                code: .connectionClosed, message: "poll failed: \(Self.describe(errno: error))", address: configuration.address, command: command)
        }
    }

    enum WaitResult {
        case ready
        case timedOut
        case stopped(RedisError)
        case failed(Int32)
    }

    /// `poll` on `fd` (and the signal's wake descriptor) until `fd` is ready for `events`, `end`
    /// passes, or the signal says stop.
    static func waitReady(_ fd: Int32, events: Int16, until end: ContinuousClock.Instant, signal: (any CallSignal)?) -> WaitResult {
        while true {
            if let reason = signal?.stopReason { return .stopped(reason) }
            let left = ContinuousClock.now.duration(to: end)
            if left <= .zero { return .timedOut }
            var fds = (
                pollfd(fd: fd, events: events, revents: 0),
                pollfd(fd: signal?.wakeDescriptor ?? -1, events: Int16(POLLIN), revents: 0)
            )
            let ready = withUnsafeMutablePointer(to: &fds) {
                $0.withMemoryRebound(to: pollfd.self, capacity: 2) { poll($0, signal == nil ? 1 : 2, left.pollMilliseconds) }
            }
            if ready < 0 {
                let error = errno
                if error == EINTR { continue }
                return .failed(error)
            }
            if fds.0.revents != 0 { return .ready }
            if fds.1.revents != 0 { signal?.drainWakeups() }
        }
    }

    #if canImport(Darwin)
    private static let sendFlags: Int32 = Int32(MSG_DONTWAIT)
    #else
    private static let sendFlags: Int32 = Int32(MSG_DONTWAIT) | Int32(MSG_NOSIGNAL)
    #endif

    private static func systemSend(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int, _ flags: Int32) -> Int {
        #if canImport(Darwin)
        Darwin.send(fd, buffer, count, flags)
        #else
        Glibc.send(fd, buffer, count, flags)
        #endif
    }

    static func describe(errno error: Int32) -> String {
        String(cString: strerror(error))
    }

    // MARK: - Connecting

    /// Flagpole's own writes never raise SIGPIPE (`MSG_NOSIGNAL`, `SO_NOSIGPIPE`), but a process
    /// that embeds it may write to sockets that do (as it always did, and as its tests' servers
    /// and proxies do): before the first connection, SIGPIPE is ignored — only when the process
    /// left it at its default; a handler the application installed is kept.
    private static let sigpipeIgnored: Void = {
        var current = sigaction()
        guard sigaction(SIGPIPE, nil, &current) == 0 else { return }
        #if canImport(Darwin)
        let handler = current.__sigaction_u.__sa_handler
        #else
        let handler = current.__sigaction_handler.sa_handler
        #endif
        if handler == nil { signal(SIGPIPE, SIG_IGN) }
    }()

    /// Opens a non-blocking socket connected to `configuration.endpoint`, by `end`.
    static func connectSocket(
        _ configuration: RedisConfiguration, until end: ContinuousClock.Instant, signal: (any CallSignal)?
    ) throws(RedisError) -> Int32 {
        Self.sigpipeIgnored
        let address = configuration.address
        func failure(_ error: Int32) -> RedisError {
            RedisError(code: .connectionFailed, message: "could not connect: \(describe(errno: error))", address: address)
        }
        func timedOut() -> RedisError {
            RedisError(
                code: .timeout,
                message:
                    "could not connect within \(ContinuousClock.now < end ? configuration.connectTimeout.formatted : "the time left") (connect timeout \(configuration.connectTimeout.formatted))",
                address: address)
        }
        /// Connects `fd` to `addr`, waiting for it by `end`. Nil on success, else why not.
        func attempt(_ fd: Int32, _ addr: UnsafePointer<sockaddr>, _ length: socklen_t) -> RedisError? {
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            #if canImport(Darwin)
            var one: Int32 = 1
            setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, socklen_t(MemoryLayout<Int32>.size))
            #endif
            while true {
                if connect(fd, addr, length) == 0 { return nil }
                let error = errno
                switch error {
                case EINTR:
                    continue
                case EINPROGRESS:
                    switch waitReady(fd, events: Int16(POLLOUT), until: end, signal: signal) {
                    case .ready:
                        var soError: Int32 = 0
                        var size = socklen_t(MemoryLayout<Int32>.size)
                        if getsockopt(fd, SOL_SOCKET, SO_ERROR, &soError, &size) != 0 { return failure(errno) }
                        return soError == 0 ? nil : failure(soError)
                    case .timedOut: return timedOut()
                    case .stopped(let reason): return RedisError(code: reason.code, message: reason.message, address: address)
                    case .failed(let e): return failure(e)
                    }
                case EAGAIN:
                    // A unix socket whose listener's queue is full: try again shortly.
                    let pause = min(ContinuousClock.now + .milliseconds(5), end)
                    if case .stopped(let reason) = waitReady(-1, events: 0, until: pause, signal: signal) {
                        return RedisError(code: reason.code, message: reason.message, address: address)
                    }
                    if ContinuousClock.now >= end { return timedOut() }
                default:
                    return failure(error)
                }
            }
        }

        switch configuration.endpoint {
        case .tcp(let host, let port):
            guard (1...65535).contains(port) else {
                throw RedisError(code: .invalidConfiguration, message: "port \(port) is not a TCP port (1–65535)", address: address)
            }
            var hints = addrinfo()
            hints.ai_family = AF_UNSPEC
            #if canImport(Darwin)
            hints.ai_socktype = SOCK_STREAM
            #else
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
            #endif
            var list: UnsafeMutablePointer<addrinfo>?
            let status = getaddrinfo(host, String(port), &hints, &list)
            guard status == 0, let list else {
                throw RedisError(
                    code: .connectionFailed, message: "cannot resolve '\(host)': \(String(cString: gai_strerror(status)))", address: address)
            }
            defer { freeaddrinfo(list) }
            var lastError: RedisError?
            var cursor: UnsafeMutablePointer<addrinfo>? = list
            while let info = cursor {
                cursor = info.pointee.ai_next
                let fd = socket(info.pointee.ai_family, info.pointee.ai_socktype, info.pointee.ai_protocol)
                guard fd >= 0 else {
                    lastError = failure(errno)
                    continue
                }
                if let error = attempt(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) {
                    close(fd)
                    if error.code == .timeout || error.code == .cancelled { throw error }
                    lastError = error
                    continue
                }
                var one: Int32 = 1
                setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
                return fd
            }
            throw lastError ?? RedisError(code: .connectionFailed, message: "'\(host)' has no address", address: address)
        case .unix(let path):
            var addr = sockaddr_un()
            let capacity = MemoryLayout.size(ofValue: addr.sun_path)
            let bytes = Array(path.utf8)
            guard bytes.count < capacity else {
                throw RedisError(
                    code: .invalidConfiguration,
                    message: "the socket path is \(bytes.count) bytes, longer than the \(capacity - 1) a unix socket allows",
                    address: address)
            }
            addr.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &addr.sun_path) { raw in
                raw.copyBytes(from: bytes)
                raw[bytes.count] = 0
            }
            #if canImport(Darwin)
            let fd = socket(AF_UNIX, SOCK_STREAM, 0)
            #else
            let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            #endif
            guard fd >= 0 else { throw failure(errno) }
            let error = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { attempt(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            if let error {
                close(fd)
                throw error
            }
            return fd
        }
    }

    // MARK: - Internals

    private func ensureUsable(_ command: String?) throws(RedisError) {
        if isBroken {
            throw RedisError(
                code: .connectionClosed, message: "the connection is broken; make a new one",
                address: configuration.address, command: command)
        }
    }

    func check(_ reply: RedisReply, command: String) throws(RedisError) -> RedisReply {
        if case .error(let e) = reply { throw serverError(e, command: command) }
        return reply
    }

    func serverError(_ message: String, command: String) -> RedisError {
        Self.serverError(message, command: command, address: configuration.address)
    }

    /// An error reply as a ``RedisError`` (`NOPERM` → permission denied, `WRONGPASS` → authentication).
    static func serverError(_ message: String, command: String, address: String) -> RedisError {
        let code: RedisError.Code
        if message.hasPrefix("NOPERM") {
            code = .permissionDenied
        } else if message.hasPrefix("WRONGPASS") || message.hasPrefix("NOAUTH") {
            code = .authenticationFailed
        } else {
            code = .serverError
        }
        return RedisError(code: code, message: message, address: address, command: command, serverMessage: message)
    }

    private func contextError(command: String?) -> RedisError {
        isBroken = true
        let err = context.pointee.err
        let message = String(cString: flagpole_redis_errstr(context))
        let address = configuration.address
        if err == REDIS_ERR_EOF {
            return RedisError(code: .connectionClosed, message: "the server closed the connection", address: address, command: command)
        }
        if err == REDIS_ERR_PROTOCOL {
            return RedisError(code: .protocolError, message: "malformed reply: \(message)", address: address, command: command)
        }
        if message.contains("temporarily unavailable") || message.contains("timed out") {
            return RedisError(code: .timeout, message: "no reply within \(configuration.commandTimeout)", address: address, command: command)
        }
        if err == REDIS_ERR_IO {
            return RedisError(code: .connectionClosed, message: "connection lost: \(message)", address: address, command: command)
        }
        return RedisError(code: .protocolError, message: message.isEmpty ? "hiredis error \(err)" : message, address: address, command: command)
    }

    /// The commands as the server reads them (RESP arrays of bulk strings):
    /// `*2\r\n$3\r\nGET\r\n$1\r\nk\r\n` for `GET k`.
    static func encode(_ commands: [RedisCommand]) -> [UInt8] {
        // A header is a marker, at most 19 digits and CRLF; an argument is its header, its bytes
        // and CRLF. Written straight into the array's storage: appending byte by byte made encoding
        // most of a pipeline's own cost.
        guard !commands.isEmpty else { return [] }
        var size = 0
        for command in commands {
            size += 23
            for argument in command.arguments { size += 25 + argument.bytes.count }
        }
        return [UInt8](unsafeUninitializedCapacity: size) { buffer, count in
            var writer = RESPWriter(at: buffer.baseAddress!)
            for command in commands {
                writer.header(UInt8(ascii: "*"), command.arguments.count)
                for argument in command.arguments {
                    writer.header(UInt8(ascii: "$"), argument.bytes.count)
                    argument.bytes.withUnsafeBufferPointer { writer.append($0) }
                    writer.crlf()
                }
            }
            count = writer.position - buffer.baseAddress!
        }
    }

    /// Writes RESP into memory sized beforehand (``encode(_:)``).
    private struct RESPWriter {
        var position: UnsafeMutablePointer<UInt8>

        init(at start: UnsafeMutablePointer<UInt8>) { position = start }

        mutating func header(_ marker: UInt8, _ n: Int) {
            position.pointee = marker
            position += 1
            if n < 10 {
                position.pointee = UInt8(ascii: "0") + UInt8(n)
                position += 1
            } else {
                var digits = 0
                var rest = n
                while rest > 0 { digits += 1; rest /= 10 }
                rest = n
                for index in stride(from: digits - 1, through: 0, by: -1) {
                    position[index] = UInt8(ascii: "0") + UInt8(rest % 10)
                    rest /= 10
                }
                position += digits
            }
            crlf()
        }

        mutating func append(_ bytes: UnsafeBufferPointer<UInt8>) {
            guard let base = bytes.baseAddress, bytes.count > 0 else { return }
            position.update(from: base, count: bytes.count)
            position += bytes.count
        }

        mutating func crlf() {
            position[0] = 13
            position[1] = 10
            position += 2
        }
    }

    /// Copies a reply tree into Swift values.
    static func decode(_ r: UnsafePointer<redisReply>) -> RedisReply {
        let reply = r.pointee
        switch reply.type {
        case REDIS_REPLY_STRING:
            guard let str = reply.str else { return .bulkString([]) }
            return .bulkString(Array(UnsafeRawBufferPointer(start: str, count: reply.len)))
        case REDIS_REPLY_STATUS:
            return .status(reply.str.map { String(decoding: UnsafeRawBufferPointer(start: $0, count: reply.len), as: UTF8.self) } ?? "")
        case REDIS_REPLY_ERROR:
            return .error(reply.str.map { String(decoding: UnsafeRawBufferPointer(start: $0, count: reply.len), as: UTF8.self) } ?? "")
        case REDIS_REPLY_INTEGER:
            return .integer(Int64(reply.integer))
        case REDIS_REPLY_NIL:
            return .null
        case REDIS_REPLY_ARRAY:
            var elements: [RedisReply] = []
            elements.reserveCapacity(reply.elements)
            for i in 0..<reply.elements {
                if let child = reply.element[i] { elements.append(decode(child)) } else { elements.append(.null) }
            }
            return .array(elements)
        default:
            return .error("unsupported reply type \(reply.type)")
        }
    }
}

@available(*, unavailable, message: "a RedisConnection belongs to one thread; use RedisClient to share one")
extension RedisConnection: Sendable {}
