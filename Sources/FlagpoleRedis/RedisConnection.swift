import CHiredis
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One blocking connection to Redis over hiredis.
///
/// It is owned by one thread at a time and never shared: ``RedisClient`` keeps one on its own
/// thread, ``RedisSubscriber`` another. Every call blocks for at most the configured timeouts.
/// After any connection error the connection is ``isBroken`` and must be replaced.
public final class RedisConnection {
    public let configuration: RedisConfiguration
    private let context: UnsafeMutablePointer<redisContext>
    /// True once the connection failed (closed, timed out, unreadable reply); it cannot be used again.
    public private(set) var isBroken = false

    /// The hiredis version linked in, e.g. `0.14.1`.
    public static var hiredisVersion: String {
        "\(flagpole_hiredis_major()).\(flagpole_hiredis_minor()).\(flagpole_hiredis_patch())"
    }

    /// Connects, authenticates and selects the database, each within the configured timeouts.
    ///
    /// For a Sentinel configuration it asks the Sentinels for the primary (each in turn), connects
    /// to it and checks with `ROLE` that it is a primary; for a Cluster configuration it connects
    /// to the first seed node that answers. ``configuration`` is then the node's own configuration.
    public convenience init(configuration: RedisConfiguration) throws(RedisError) {
        switch configuration.topology {
        case .standalone:
            try self.init(node: configuration)
        case .sentinel(let masterName, _):
            let primary = try SentinelResolver.primary(of: configuration)
            try self.init(node: configuration.node(primary))
            try verifyPrimary(masterName: masterName)
        case .cluster(let seeds):
            try self.init(candidates: seeds.map { configuration.node($0) }, describing: "cluster seed node")
        }
    }

    /// Checks with `ROLE` that this server is a primary (what the Sentinels named it).
    private func verifyPrimary(masterName: String) throws(RedisError) {
        let role = try send(["ROLE"])
        guard let first = role.array?.first?.string, first == "master" else {
            isBroken = true
            throw RedisError(
                code: .connectionFailed,
                message: "the Sentinels name \(configuration.address) as primary of '\(masterName)', but it says it is a \(role.array?.first?.string ?? "server of unknown role") (a failover in progress?)",
                address: configuration.address, command: "ROLE")
        }
    }

    /// Connects to exactly the server of `configuration.endpoint`.
    convenience init(node configuration: RedisConfiguration) throws(RedisError) {
        try self.init(candidates: [configuration], describing: nil)
    }

    /// Connects to the first of `candidates` that accepts a connection, then authenticates and
    /// selects the database. `describing` names the candidates in the error when none answers.
    init(candidates: [RedisConfiguration], describing: String?) throws(RedisError) {
        var opened: (UnsafeMutablePointer<redisContext>, RedisConfiguration)?
        var errors: [RedisError] = []
        for candidate in candidates {
            do {
                opened = (try Self.openContext(candidate), candidate)
                break
            } catch {
                errors.append(error)
            }
        }
        guard let (ctx, configuration) = opened else {
            if let describing, errors.count > 0 {
                throw RedisError(
                    code: .connectionFailed,
                    message: "no \(describing) answered (\(errors.map { "\($0.address ?? "?"): \($0.message)" }.joined(separator: "; ")))",
                    address: candidates.first.map(\.address))
            }
            throw errors.first ?? RedisError(code: .connectionFailed, message: "no server to connect to")
        }
        self.configuration = configuration
        self.context = ctx
        _ = redisSetTimeout(ctx, Self.timeval(configuration.commandTimeout))
        if case .tcp = configuration.endpoint { _ = redisEnableKeepAlive(ctx) }

        if let password = configuration.password {
            var auth: RedisCommand = ["AUTH"]
            if let user = configuration.username { auth.arguments.append(RedisArgument(user)) }
            auth.arguments.append(RedisArgument(password))
            let reply = try sendRaw(auth)
            if case .error(let e) = reply {
                isBroken = true
                throw RedisError(
                    code: .authenticationFailed,
                    message: "authentication as \(configuration.username.map { "user '\($0)'" } ?? "the default user") failed: \(e)",
                    address: configuration.address, command: "AUTH", serverMessage: e)
            }
        }
        if configuration.database != 0 {
            _ = try send(["SELECT", RedisArgument(configuration.database)])
        }
    }

    deinit {
        redisFree(context)
    }

    /// hiredis writes with `write(2)`: a server that closes the connection while a command is
    /// being written raises SIGPIPE, whose default action kills the process. Flagpole needs the
    /// `EPIPE` error instead (the connection is then reported lost and reconnected), so before the
    /// first connection it ignores SIGPIPE — only when the process left it at its default; a
    /// handler the application installed is kept.
    private static let sigpipeIgnored: Void = {
        var current = sigaction()
        if sigaction(SIGPIPE, nil, &current) == 0, current.__sigaction_handler.sa_handler == nil {
            signal(SIGPIPE, SIG_IGN)
        }
    }()

    /// Opens a hiredis context to `configuration.endpoint` within the connect timeout.
    private static func openContext(_ configuration: RedisConfiguration) throws(RedisError) -> UnsafeMutablePointer<redisContext> {
        Self.sigpipeIgnored
        let connectTimeout = Self.timeval(configuration.connectTimeout)
        let ctx: UnsafeMutablePointer<redisContext>?
        switch configuration.endpoint {
        case .tcp(let host, let port): ctx = redisConnectWithTimeout(host, Int32(port), connectTimeout)
        case .unix(let path): ctx = redisConnectUnixWithTimeout(path, connectTimeout)
        }
        guard let ctx else {
            throw RedisError(code: .connectionFailed, message: "out of memory allocating a connection", address: configuration.address)
        }
        if ctx.pointee.err != 0 {
            let message = String(cString: flagpole_redis_errstr(ctx))
            redisFree(ctx)
            let timedOut = message.localizedLowercase.contains("timed out") || message.contains("temporarily unavailable")
            throw RedisError(
                code: timedOut ? .timeout : .connectionFailed,
                message: timedOut
                    ? "could not connect within \(configuration.connectTimeout) (\(message))"
                    : "could not connect: \(message)",
                address: configuration.address)
        }
        return ctx
    }

    /// Sends one command and waits for its reply. An error reply is thrown as a ``RedisError``.
    public func send(_ command: RedisCommand) throws(RedisError) -> RedisReply {
        try check(sendRaw(command), command: command.name)
    }

    /// Sends one command and returns its reply, error replies included.
    public func sendRaw(_ command: RedisCommand) throws(RedisError) -> RedisReply {
        try ensureUsable(command.name)
        let raw = Self.withArgv(command) { argc, argv, lengths in
            redisCommandArgv(context, argc, argv, lengths)
        }
        guard let raw else { throw contextError(command: command.name) }
        defer { freeReplyObject(raw) }
        return Self.decode(raw.assumingMemoryBound(to: redisReply.self))
    }

    /// Writes every command, then reads every reply: one round trip. Error replies are values in the
    /// result; a connection failure throws.
    public func pipeline(_ commands: [RedisCommand]) throws(RedisError) -> [RedisReply] {
        guard let firstName = commands.first?.name else { return [] }
        try ensureUsable(firstName)
        // One RESP buffer for the whole batch, handed to hiredis in one call (hiredis would format
        // each argument with sdscatfmt and grow its output buffer command by command).
        let wire = Self.encode(commands)
        let status = wire.withUnsafeBytes { raw in
            redisAppendFormattedCommand(context, raw.baseAddress!.assumingMemoryBound(to: CChar.self), raw.count)
        }
        if status != REDIS_OK { throw contextError(command: firstName) }
        var replies: [RedisReply] = []
        replies.reserveCapacity(commands.count)
        for command in commands {
            var raw: UnsafeMutableRawPointer?
            if redisGetReply(context, &raw) != REDIS_OK || raw == nil {
                throw contextError(command: command.name)
            }
            replies.append(Self.decode(raw!.assumingMemoryBound(to: redisReply.self)))
            freeReplyObject(raw)
        }
        return replies
    }

    /// Runs the commands inside `MULTI`/`EXEC` in one round trip and returns their replies, or `nil`
    /// when a `WATCH`ed key changed and the transaction did nothing.
    public func transaction(_ commands: [RedisCommand]) throws(RedisError) -> [RedisReply]? {
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
    public func evaluate(_ script: RedisScript, keys: [RedisArgument] = [], arguments: [RedisArgument] = []) throws(RedisError) -> RedisReply {
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

    /// Queues a command in the output buffer and writes as much as the socket takes.
    func appendAndFlush(_ command: RedisCommand) throws(RedisError) {
        try ensureUsable(command.name)
        let status = Self.withArgv(command) { argc, argv, lengths in
            redisAppendCommandArgv(context, argc, argv, lengths)
        }
        if status != REDIS_OK { throw contextError(command: command.name) }
        var done: Int32 = 0
        while done == 0 {
            if redisBufferWrite(context, &done) != REDIS_OK { throw contextError(command: command.name) }
        }
    }

    /// Reads what the socket has (call after `poll` says it is readable) and returns every
    /// complete reply it holds.
    func readAvailableReplies() throws(RedisError) -> [RedisReply] {
        try ensureUsable(nil)
        if redisBufferRead(context) != REDIS_OK { throw contextError(command: nil) }
        var replies: [RedisReply] = []
        while true {
            var raw: UnsafeMutableRawPointer?
            if redisGetReplyFromReader(context, &raw) != REDIS_OK { throw contextError(command: nil) }
            guard let raw else { break }
            replies.append(Self.decode(raw.assumingMemoryBound(to: redisReply.self)))
            freeReplyObject(raw)
        }
        return replies
    }

    // MARK: - Internals

    private func ensureUsable(_ command: String?) throws(RedisError) {
        if isBroken {
            throw RedisError(code: .connectionClosed, message: "the connection is broken; make a new one",
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

    static func timeval(_ d: Duration) -> timeval {
        let (s, atto) = d.components
        return Glibc.timeval(tv_sec: Int(s), tv_usec: Int(atto / 1_000_000_000_000))
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

    /// Lays the arguments out in one buffer and calls `body` with hiredis's argc/argv/argvlen;
    /// no pointer escapes the call.
    private static func withArgv<T>(
        _ command: RedisCommand,
        _ body: (Int32, UnsafeMutablePointer<UnsafePointer<CChar>?>, UnsafePointer<Int>) -> T
    ) -> T {
        let args = command.arguments
        var total = 1
        for a in args { total += a.bytes.count }
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: total) { flat in
            withUnsafeTemporaryAllocation(of: UnsafePointer<CChar>?.self, capacity: max(args.count, 1)) { argv in
                withUnsafeTemporaryAllocation(of: Int.self, capacity: max(args.count, 1)) { lengths in
                    let base = flat.baseAddress!
                    var offset = 0
                    for (i, a) in args.enumerated() {
                        let n = a.bytes.count
                        a.bytes.withUnsafeBufferPointer { src in
                            if n > 0 { (base + offset).initialize(from: src.baseAddress!, count: n) }
                        }
                        argv[i] = UnsafeRawPointer(base + offset).assumingMemoryBound(to: CChar.self)
                        lengths[i] = n
                        offset += n
                    }
                    return body(Int32(args.count), argv.baseAddress!, UnsafePointer(lengths.baseAddress!))
                }
            }
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
