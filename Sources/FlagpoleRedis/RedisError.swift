/// An error from Flagpole's Redis layer: what failed, where, and why.
///
/// The description names the server address (`host:port` or the socket path) and the command,
/// never a password or the command's arguments (they may hold secrets).
public struct RedisError: Error, Sendable, CustomStringConvertible {
    /// The kind of failure. Compare with the static members, e.g. `error.code == .timeout`.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Hashable, Sendable {
            case invalidURL, connectionFailed, connectionClosed, timeout, authenticationFailed
            case permissionDenied, serverError, protocolError, transactionAborted, reconnecting, clientClosed
            case cancelled, invalidConfiguration
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// The Redis URL could not be parsed.
        public static let invalidURL = Code(.invalidURL)
        /// The TCP or unix-socket connection could not be made.
        public static let connectionFailed = Code(.connectionFailed)
        /// The server closed the connection or the connection broke mid-command.
        public static let connectionClosed = Code(.connectionClosed)
        /// No answer within the connect or command timeout.
        public static let timeout = Code(.timeout)
        /// AUTH was refused (wrong user or password), or the server needs a password we lack.
        public static let authenticationFailed = Code(.authenticationFailed)
        /// The ACL user may not run this command or touch this key (`NOPERM`).
        public static let permissionDenied = Code(.permissionDenied)
        /// The server answered with an error reply.
        public static let serverError = Code(.serverError)
        /// The reply could not be read as RESP.
        public static let protocolError = Code(.protocolError)
        /// A `WATCH`ed key changed, so `EXEC` did nothing.
        public static let transactionAborted = Code(.transactionAborted)
        /// The connection is down and the next reconnect attempt is not due yet.
        public static let reconnecting = Code(.reconnecting)
        /// The client was closed.
        public static let clientClosed = Code(.clientClosed)
        /// The task waiting for the call was cancelled: the caller stopped waiting at once, and
        /// the connection the call was using (if any) was closed.
        public static let cancelled = Code(.cancelled)
        /// A setting of ``RedisConfiguration`` is out of its range (see
        /// ``RedisConfiguration/validate()``); nothing was sent.
        public static let invalidConfiguration = Code(.invalidConfiguration)

        public var description: String { base.rawValue }
    }

    /// The kind of failure.
    public var code: Code
    /// What went wrong, in words.
    public var message: String
    /// The server address: `host:port` or `unix:/path/to.sock`.
    public var address: String?
    /// The command's name (`GET`, `EVALSHA`, …), never its arguments.
    public var command: String?
    /// For `serverError`: the error reply as the server sent it (`ERR …`, `NOPERM …`).
    public var serverMessage: String?
    public var file: String
    public var line: Int

    public init(
        code: Code, message: String, address: String? = nil, command: String? = nil, serverMessage: String? = nil,
        file: String = #fileID, line: Int = #line
    ) {
        self.code = code
        self.message = message
        self.address = address
        self.command = command
        self.serverMessage = serverMessage
        self.file = file
        self.line = line
    }

    /// The first word of a server error reply (`ERR`, `WRONGTYPE`, `NOSCRIPT`, `NOPERM`, …).
    public var serverErrorPrefix: String? {
        guard let serverMessage else { return nil }
        return serverMessage.split(separator: " ", maxSplits: 1).first.map(String.init)
    }

    public var description: String {
        var s = "Redis"
        if let command { s += " \(command)" }
        if let address { s += " at \(address)" }
        s += ": \(message)"
        return s
    }
}
