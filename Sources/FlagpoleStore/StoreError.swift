/// An error from Flagpole's Redis store: what is wrong, where (the key), and what to do.
package struct StoreError: Error, Sendable, CustomStringConvertible {
    package struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }

        /// Someone else changed the environment since it was read; nothing was written.
        package static let conflict = Code("conflict")
        /// A key holds the wrong Redis type or a value Flagpole cannot read (written by hand?).
        package static let corruptData = Code("corruptData")
        /// The data was written by a newer Flagpole (a larger data format).
        package static let newerFormat = Code("newerFormat")
        /// The flag does not exist in the environment.
        package static let flagNotFound = Code("flagNotFound")
        /// The request itself is wrong (unknown variant, bad name, …).
        package static let invalidInput = Code("invalidInput")
        /// The flag is pinned by an automatic revert.
        package static let pinned = Code("pinned")
        /// The requested revision is not in the history.
        package static let revisionNotFound = Code("revisionNotFound")
        /// A watcher's write carried a fencing token that is no longer current: another watcher
        /// took the lease. Nothing was written.
        package static let fenced = Code("fenced")
        /// The flag already has a rollout in progress, or none to act on.
        package static let rolloutState = Code("rolloutState")
        /// A rollout may not start now (a freeze window), unless forced.
        package static let frozen = Code("frozen")
        /// A rollout may not start here before it completed in the environment the project config
        /// names (`requirePassIn`), unless forced.
        package static let promotionGate = Code("promotionGate")
        /// Redis failed (see the underlying error).
        package static let redis = Code("redis")

        package var description: String { name }
    }

    package var code: Code
    package var message: String
    /// The Redis key involved, when there is one.
    package var key: String?
    package var underlying: (any Error & Sendable)?

    package init(code: Code, message: String, key: String? = nil, underlying: (any Error & Sendable)? = nil) {
        self.code = code
        self.message = message
        self.key = key
        self.underlying = underlying
    }

    package var description: String { message }
}
