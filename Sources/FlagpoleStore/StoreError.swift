/// An error from Flagpole's Redis store: what is wrong, where (the key), and what to do.
public struct StoreError: Error, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }

        /// Someone else changed the environment since it was read; nothing was written.
        public static let conflict = Code("conflict")
        /// A key holds the wrong Redis type or a value Flagpole cannot read (written by hand?).
        public static let corruptData = Code("corruptData")
        /// The data was written by a newer Flagpole (a larger data format).
        public static let newerFormat = Code("newerFormat")
        /// The flag does not exist in the environment.
        public static let flagNotFound = Code("flagNotFound")
        /// The request itself is wrong (unknown variant, bad name, …).
        public static let invalidInput = Code("invalidInput")
        /// The flag is pinned by an automatic revert.
        public static let pinned = Code("pinned")
        /// The requested revision is not in the history.
        public static let revisionNotFound = Code("revisionNotFound")
        /// A watcher's write carried a fencing token that is no longer current: another watcher
        /// took the lease. Nothing was written.
        public static let fenced = Code("fenced")
        /// The flag already has a rollout in progress, or none to act on.
        public static let rolloutState = Code("rolloutState")
        /// A rollout may not start now (a freeze window), unless forced.
        public static let frozen = Code("frozen")
        /// Redis failed (see the underlying error).
        public static let redis = Code("redis")

        public var description: String { name }
    }

    public var code: Code
    public var message: String
    /// The Redis key involved, when there is one.
    public var key: String?
    public var underlying: (any Error & Sendable)?

    public init(code: Code, message: String, key: String? = nil, underlying: (any Error & Sendable)? = nil) {
        self.code = code
        self.message = message
        self.key = key
        self.underlying = underlying
    }

    public var description: String { message }
}
