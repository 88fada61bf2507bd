/// An error from the client library: what went wrong, with an opaque ``Code`` to match on.
///
/// Evaluations never throw; these come from ``FlagpoleClient/run()`` and its disk snapshot.
public struct FlagpoleClientError: Error, Sendable, CustomStringConvertible {
    /// What kind of error this is.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }

        /// The configuration cannot work (an invalid environment name, say).
        public static let invalidConfiguration = Code("invalidConfiguration")
        /// ``FlagpoleClient/run()`` was called a second time.
        public static let alreadyRunning = Code("alreadyRunning")
        /// The snapshot file exists but cannot be read, fails its checks (format, checksum, field
        /// types), is not of this environment, or is refused for where it is (a symbolic link, a
        /// folder another user owns or others can write to).
        public static let snapshotUnreadable = Code("snapshotUnreadable")
        /// The snapshot file could not be written (or the folder was refused, as above).
        public static let snapshotUnwritable = Code("snapshotUnwritable")

        /// The code's name.
        public var description: String { name }
    }

    /// What kind of error this is.
    public var code: Code
    /// What happened, for people; never contains a password.
    public var message: String
    /// The error underneath, if any.
    public var underlying: (any Error & Sendable)?
    /// Where the error was made.
    public var file: String
    /// Where the error was made.
    public var line: Int

    /// An error from its parts.
    public init(code: Code, message: String, underlying: (any Error & Sendable)? = nil, file: String = #fileID, line: Int = #line) {
        self.code = code
        self.message = message
        self.underlying = underlying
        self.file = file
        self.line = line
    }

    /// `code: message`.
    public var description: String { "\(code): \(message)" }
}
