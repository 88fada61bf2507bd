import FlagpoleCore
import FlagpoleRedis
import FlagpoleStore
import Logging
import ServiceLifecycle
import Synchronization

/// Flagpole's client: every flag of one environment in memory, kept current from Redis, evaluated
/// synchronously in nanoseconds.
///
/// Make one per process and run it as a service (its ``run()`` belongs to your `ServiceGroup` or
/// task group); evaluate from anywhere:
///
/// ```swift
/// let flags = FlagpoleClient(
///     configuration: .init(redis: try RedisConfiguration.resolve(), environment: "prod", application: "checkout-api"),
///     logger: logger)
/// // in a ServiceGroup, or: group.addTask { try await flags.run() }
/// await flags.waitUntilReady(timeout: .seconds(2))
/// if flags.bool("new-checkout", default: false, context: EvaluationContext(targetingKey: userID)) { … }
/// ```
///
/// - Evaluations never throw and never wait: a missing flag, a wrong type or a broken rule gives
///   your default, with the reason and error code in the `…Details` forms (OpenFeature's shape).
///   They read an immutable compiled snapshot that updates swap whole; a static flag allocates
///   nothing.
/// - The snapshot follows the environment's change events (applying only the changed flags),
///   reads everything again after a missed event (a revision gap, a reconnect, or the periodic
///   revision check), and survives Redis outages by serving what it has; the data's age is
///   reported, and past ``Configuration/freshnessBound`` details say STALE.
/// - At start it serves what Redis holds whenever Redis answers. Only with Redis down (or not
///   answering within ``Configuration/startupTimeout``) does it serve the last-known-good
///   snapshot on disk — when that is of this environment — else the flag files, else your code
///   defaults; it is ready after ``Configuration/startupTimeout`` at most.
/// - ``recordOutcome(flag:variant:success:duration:)`` feeds the guarded-rollout watcher; the
///   client also registers itself for `flagctl clients`.
public final class FlagpoleClient: Sendable, Service {
    /// Where the served flags come from.
    public enum Source: String, Sendable, Hashable, CaseIterable {
        /// Redis (the normal case).
        case redis
        /// The last-known-good snapshot on disk (Redis did not answer at start).
        case disk
        /// The flag files (Redis unreachable at start, no usable snapshot on disk).
        case files
        /// Nothing: every evaluation gives the caller's code default.
        case defaults
    }

    /// How current the served flags are.
    public struct Freshness: Sendable, Hashable {
        /// Where the flags come from.
        public var source: Source
        /// The store revision applied; nil without data from Redis (or from a disk snapshot of it).
        public var revision: Int64?
        /// Whether the client follows Redis right now: subscribed to changes and caught up.
        public var isInSync: Bool
        /// How old the data is: zero while in sync, else the time since it was last known
        /// current; nil without data.
        public var age: Duration?
        /// Whether ``age`` is past ``Configuration/freshnessBound`` (details then report STALE).
        public var isStale: Bool
        /// Whether Redis answered with an environment that was never synced: revision 0, no
        /// flags, no meta. Every evaluation gives its code default; the client logged a warning
        /// naming the environment and the Redis server. Usually a typo in the environment's name
        /// or the wrong Redis; `flagctl sync --env ENV` fills it. False once a sync arrives.
        public var isNeverSynced: Bool

        /// Freshness from its parts.
        public init(source: Source, revision: Int64?, isInSync: Bool, age: Duration?, isStale: Bool, isNeverSynced: Bool = false) {
            self.source = source
            self.revision = revision
            self.isInSync = isInSync
            self.age = age
            self.isStale = isStale
            self.isNeverSynced = isNeverSynced
        }
    }

    /// The configuration the client was made with.
    public let configuration: Configuration
    let logger: Logger
    /// Unique per client in this process (never reused), for ``ThreadSlot``.
    let id: UInt64
    /// The current snapshot, the hooks (nil: none) and their generation; the source of truth for
    /// ``ThreadSlot``. Adding or removing a hook publishes a new generation, as an update does.
    private let current: Mutex<(snapshot: FlagSnapshot, hooks: HookList?, generation: UInt64)>
    /// The generation of `current`, readable without the lock.
    private let generation = Atomic<UInt64>(1)
    /// Whether details report STALE; kept by the run loop.
    let staleFlag = Atomic<Bool>(false)
    let evaluationCounts: StripedCounters
    let outcomes: OutcomeRecorder
    let readiness = ReadinessGate()
    let changeBroadcaster = ChangeBroadcaster<Set<String>>()
    let updateBroadcaster = ChangeBroadcaster<Update>()
    /// The generation of every snapshot swapped in (Redis, disk, files), for ``effectiveFlags()``'s readers.
    let swapBroadcaster = ChangeBroadcaster<UInt64>()
    let metrics: ClientMetrics
    /// Whether the client follows Redis now, and when its data was last known current.
    let sync = Mutex<(inSync: Bool, lastConfirmed: Double)>((false, 0))
    let started = Atomic<Bool>(false)
    /// Whether the last full read found an environment never synced (see
    /// ``Freshness/isNeverSynced``).
    let neverSynced = Atomic<Bool>(false)
    /// Whether a hook's failure was logged as a warning already (later ones go to debug).
    let hookFailureLogged = Atomic<Bool>(false)
    /// Whether the last write (or removal) of the disk snapshot ran on the client's file thread
    /// (1) or elsewhere (-1); 0 before the first. For tests: never on the cooperative pool.
    let snapshotWrittenOnFileThread = Atomic<Int>(0)
    /// Keys of flags evaluated in snapshots that were replaced since the last heartbeat took
    /// them (see ``takeEvaluatedFlags()``): the updater adds, the heartbeat drains. At most
    /// ``maximumPendingEvaluated`` keys.
    let pendingEvaluated = Mutex<Set<String>>([])

    /// The most keys ``pendingEvaluated`` holds; later ones wait for their flag's next evaluation.
    static let maximumPendingEvaluated = 100_000

    private static let nextID = Atomic<UInt64>(1)
    private static let nextHookID = Atomic<UInt64>(1)

    /// Makes a client. It does nothing until ``run()`` runs: evaluations before then give the
    /// code defaults.
    ///
    /// - Parameters:
    ///   - configuration: Where the flags are and how to follow them.
    ///   - logger: Where the client logs (metadata keys start with `flagpole.`). Default: a logger
    ///     labelled `flagpole`.
    public init(configuration: Configuration, logger: Logger = Logger(label: "flagpole")) {
        self.configuration = configuration
        var logger = logger
        logger[metadataKey: "flagpole.environment"] = "\(configuration.environment)"
        self.logger = logger
        id = Self.nextID.wrappingAdd(1, ordering: .relaxed).oldValue
        current = Mutex((FlagSnapshot.empty, nil, 1))
        evaluationCounts = StripedCounters(width: EvaluationReason.allCases.count)
        outcomes = OutcomeRecorder(stripes: 16, limit: configuration.outcomes.maxPairs)
        metrics = ClientMetrics(environment: configuration.environment, factory: configuration.metricsFactory)
    }

    // MARK: - Evaluation

    /// Runs `body` with the current snapshot and the calling thread's counter stripe. See
    /// ``ThreadSlot`` for why this takes no lock and retains nothing on the common path.
    @inline(__always)
    func withSnapshot<R>(_ body: (FlagSnapshot, ThreadSlot) -> R) -> R {
        ThreadSlot.withCurrent { slot in
            if slot.owner == id, slot.generation == generation.load(ordering: .acquiring), let unmanaged = slot.unmanaged {
                return unmanaged._withUnsafeGuaranteedRef { body($0, slot) }
            }
            return refresh(slot, body)
        }
    }

    @inline(never)
    private func refresh<R>(_ slot: ThreadSlot, _ body: (FlagSnapshot, ThreadSlot) -> R) -> R {
        let (snapshot, hooks, generation) = current.withLock { $0 }
        slot.owner = id
        slot.generation = generation
        slot.snapshot = snapshot
        slot.unmanaged = Unmanaged.passUnretained(snapshot)
        slot.hooks = hooks
        slot.hasHooks = hooks != nil
        return body(snapshot, slot)
    }

    /// Applies staleness and counts the evaluation, in place (copying the details would retain
    /// and release each of their strings).
    @inline(__always)
    func finish<Value>(_ details: inout EvaluationDetails<Value>, slot: ThreadSlot) {
        if details.reason != .error, staleFlag.load(ordering: .relaxed) { details.reason = .stale }
        evaluationCounts.add(at: ClientMetrics.index(details.reason), stripe: slot.stripe, exclusive: slot.ownsStripe)
    }

    /// A boolean flag's value, or `defaultValue` when the flag is missing, disabled, not a boolean
    /// or fails to evaluate.
    ///
    /// - Parameters:
    ///   - key: The flag key.
    ///   - defaultValue: The code default.
    ///   - context: The targeting key and attributes rules read. Default: empty.
    @inline(__always)
    public func bool(_ key: String, default defaultValue: Bool, context: EvaluationContext = .empty) -> Bool {
        boolDetails(key, default: defaultValue, context: context).value
    }

    /// A boolean flag's value with the variant, reason, error code and flag metadata.
    public func boolDetails(_ key: String, default defaultValue: Bool, context: EvaluationContext = .empty) -> EvaluationDetails<Bool> {
        withSnapshot { s, slot in
            if _slowPath(slot.hasHooks) {
                return hooked(s, slot, key, .boolean, defaultValue, context, [], { .bool($0) }) {
                    $0.details(key, .boolean, defaultValue, $1, Bool.extract)
                }
            }
            var details = s.details(key, .boolean, defaultValue, context, Bool.extract)
            finish(&details, slot: slot)
            return details
        }
    }

    /// ``boolDetails(_:default:context:)`` with `hooks` run around this evaluation, after the
    /// client's own (see ``FlagHook`` for the order).
    public func boolDetails(
        _ key: String, default defaultValue: Bool, context: EvaluationContext = .empty, hooks: [any FlagHook]
    ) -> EvaluationDetails<Bool> {
        withSnapshot { s, slot in
            hooked(s, slot, key, .boolean, defaultValue, context, hooks, { .bool($0) }) { $0.details(key, .boolean, defaultValue, $1, Bool.extract) }
        }
    }

    /// A string flag's value, or `defaultValue` whenever the flag gives no string.
    @inline(__always)
    public func string(_ key: String, default defaultValue: String, context: EvaluationContext = .empty) -> String {
        stringDetails(key, default: defaultValue, context: context).value
    }

    /// A string flag's value with the variant, reason, error code and flag metadata.
    public func stringDetails(_ key: String, default defaultValue: String, context: EvaluationContext = .empty) -> EvaluationDetails<String> {
        withSnapshot { s, slot in
            if _slowPath(slot.hasHooks) {
                return hooked(s, slot, key, .string, defaultValue, context, [], { .string($0) }) {
                    $0.details(key, .string, defaultValue, $1, String.extract)
                }
            }
            var details = s.details(key, .string, defaultValue, context, String.extract)
            finish(&details, slot: slot)
            return details
        }
    }

    /// ``stringDetails(_:default:context:)`` with `hooks` run around this evaluation, after the
    /// client's own (see ``FlagHook`` for the order).
    public func stringDetails(
        _ key: String, default defaultValue: String, context: EvaluationContext = .empty, hooks: [any FlagHook]
    ) -> EvaluationDetails<String> {
        withSnapshot { s, slot in
            hooked(s, slot, key, .string, defaultValue, context, hooks, { .string($0) }) {
                $0.details(key, .string, defaultValue, $1, String.extract)
            }
        }
    }

    /// An integer flag's value, or `defaultValue` whenever the flag gives no integer (a float
    /// variant, even `10.0`, is a type mismatch, as in flagd).
    @inline(__always)
    public func integer(_ key: String, default defaultValue: Int, context: EvaluationContext = .empty) -> Int {
        integerDetails(key, default: defaultValue, context: context).value
    }

    /// An integer flag's value with the variant, reason, error code and flag metadata.
    public func integerDetails(_ key: String, default defaultValue: Int, context: EvaluationContext = .empty) -> EvaluationDetails<Int> {
        withSnapshot { s, slot in
            if _slowPath(slot.hasHooks) {
                return hooked(s, slot, key, .integer, defaultValue, context, [], { .int(Int64($0)) }) {
                    Self.narrow($0.details(key, .integer, Int64(defaultValue), $1, Self.int64))
                }
            }
            var d = s.details(key, .integer, Int64(defaultValue), context, Self.int64)
            finish(&d, slot: slot)
            return Self.narrow(d)
        }
    }

    /// ``integerDetails(_:default:context:)`` with `hooks` run around this evaluation, after the
    /// client's own (see ``FlagHook`` for the order).
    public func integerDetails(
        _ key: String, default defaultValue: Int, context: EvaluationContext = .empty, hooks: [any FlagHook]
    ) -> EvaluationDetails<Int> {
        withSnapshot { s, slot in
            hooked(s, slot, key, .integer, defaultValue, context, hooks, { .int(Int64($0)) }) {
                Self.narrow($0.details(key, .integer, Int64(defaultValue), $1, Self.int64))
            }
        }
    }

    /// An integer variant, as the engine reads it (a float variant is a type mismatch).
    @inline(__always)
    private static func int64(_ v: JSONValue) -> Int64? { if case .int(let i) = v { i } else { nil } }

    /// The engine's `Int64` details as the client's `Int` ones.
    @inline(__always)
    private static func narrow(_ d: EvaluationDetails<Int64>) -> EvaluationDetails<Int> {
        EvaluationDetails(
            flagKey: d.flagKey, value: Int(truncatingIfNeeded: d.value), variant: d.variant, reason: d.reason, errorCode: d.errorCode,
            errorMessage: d.errorMessage, metadata: d.metadata)
    }

    /// A number flag's value (integer variants as doubles), or `defaultValue` whenever the flag
    /// gives no number.
    @inline(__always)
    public func double(_ key: String, default defaultValue: Double, context: EvaluationContext = .empty) -> Double {
        doubleDetails(key, default: defaultValue, context: context).value
    }

    /// A number flag's value with the variant, reason, error code and flag metadata.
    public func doubleDetails(_ key: String, default defaultValue: Double, context: EvaluationContext = .empty) -> EvaluationDetails<Double> {
        withSnapshot { s, slot in
            if _slowPath(slot.hasHooks) {
                return hooked(s, slot, key, .float, defaultValue, context, [], { .double($0) }) {
                    $0.details(key, .float, defaultValue, $1, Double.extract)
                }
            }
            var details = s.details(key, .float, defaultValue, context, Double.extract)
            finish(&details, slot: slot)
            return details
        }
    }

    /// ``doubleDetails(_:default:context:)`` with `hooks` run around this evaluation, after the
    /// client's own (see ``FlagHook`` for the order).
    public func doubleDetails(
        _ key: String, default defaultValue: Double, context: EvaluationContext = .empty, hooks: [any FlagHook]
    ) -> EvaluationDetails<Double> {
        withSnapshot { s, slot in
            hooked(s, slot, key, .float, defaultValue, context, hooks, { .double($0) }) { $0.details(key, .float, defaultValue, $1, Double.extract) }
        }
    }

    /// An object flag's value (a JSON object or array), or `defaultValue` whenever the flag gives
    /// neither.
    @inline(__always)
    public func object(_ key: String, default defaultValue: JSONValue, context: EvaluationContext = .empty) -> JSONValue {
        objectDetails(key, default: defaultValue, context: context).value
    }

    /// An object flag's value with the variant, reason, error code and flag metadata.
    public func objectDetails(_ key: String, default defaultValue: JSONValue, context: EvaluationContext = .empty) -> EvaluationDetails<JSONValue> {
        withSnapshot { s, slot in
            if _slowPath(slot.hasHooks) {
                return hooked(s, slot, key, .object, defaultValue, context, [], { $0 }) {
                    $0.details(key, .object, defaultValue, $1, JSONValue.extract)
                }
            }
            var details = s.details(key, .object, defaultValue, context, JSONValue.extract)
            finish(&details, slot: slot)
            return details
        }
    }

    /// ``objectDetails(_:default:context:)`` with `hooks` run around this evaluation, after the
    /// client's own (see ``FlagHook`` for the order).
    public func objectDetails(
        _ key: String, default defaultValue: JSONValue, context: EvaluationContext = .empty, hooks: [any FlagHook]
    ) -> EvaluationDetails<JSONValue> {
        withSnapshot { s, slot in
            hooked(s, slot, key, .object, defaultValue, context, hooks, { $0 }) { $0.details(key, .object, defaultValue, $1, JSONValue.extract) }
        }
    }

    /// The keys of every flag being served, sorted.
    public var flagKeys: [String] {
        withSnapshot { s, _ in s.flags.flagKeys }
    }

    // MARK: - Outcomes

    /// Records how work done under a flag's evaluation went, for the guarded-rollout watcher.
    ///
    /// Counts are kept per flag and variant in memory and flushed once a second; the call takes
    /// an uncontended lock of the calling thread's stripe and never waits for I/O. When more
    /// flag/variant pairs arrive between two flushes than
    /// ``Configuration/Outcomes-swift.struct/maxPairs`` allows, the outcome is dropped and counted.
    ///
    /// Only outcomes of flags the client serves, under one of their variants (or nil), reach
    /// Redis: the flush drops the others and counts them in `flagpole_outcomes_unknown_total`, so
    /// a misspelt key cannot add keys to Redis or evidence to a rollout.
    ///
    /// - Parameters:
    ///   - flag: The flag key.
    ///   - variant: The variant the evaluation chose (`details.variant`); nil when the code
    ///     default was served.
    ///   - success: Whether the work succeeded.
    ///   - duration: How long it took, if measured; negative durations count as 0 and longer ones
    ///     as ``maximumOutcomeDuration``.
    public func recordOutcome(flag: String, variant: String?, success: Bool, duration: Duration? = nil) {
        let stripe = ThreadSlot.withCurrent { $0.stripe }
        outcomes.record(stripe: stripe, flag: flag, variant: variant, success: success, micros: duration.map(Self.outcomeMicros))
    }

    /// The longest duration an outcome records: 1 hour. Longer ones are recorded as 1 hour, so
    /// that one bad measurement cannot push a latency sum towards overflow.
    public static let maximumOutcomeDuration: Duration = .seconds(3600)

    /// `count` outcomes with the same flag, variant, result and duration, added in one step (what
    /// an HTTP report of many outcomes records).
    package func recordOutcomes(flag: String, variant: String?, success: Bool, duration: Duration?, count: Int64) {
        guard count > 0 else { return }
        let stripe = ThreadSlot.withCurrent { $0.stripe }
        outcomes.record(stripe: stripe, flag: flag, variant: variant, success: success, micros: duration.map(Self.outcomeMicros), count: count)
    }

    /// Why an outcome of `flag` under `variant` would not be recorded, judged on the flags served
    /// now: nil when the flag is served and has the variant (or `variant` is nil, the code default).
    package func outcomeProblem(flag: String, variant: String?) -> OutcomeProblem? {
        snapshot.outcomeProblem(flag: flag, variant: variant)
    }

    /// A duration in whole microseconds, clamped to 0 … ``maximumOutcomeDuration``.
    @inline(__always)
    static func outcomeMicros(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        guard seconds >= 0, attoseconds >= 0 else { return 0 }
        let limit = maximumOutcomeDuration.components.seconds
        guard seconds < limit else { return limit * 1_000_000 }
        return seconds &* 1_000_000 &+ attoseconds / 1_000_000_000_000
    }

    /// Records how work done under an evaluation went: its flag key and variant.
    ///
    /// ```swift
    /// let checkout = flags.boolDetails("new-checkout", default: false, context: context)
    /// let ok = checkout.value ? try newCheckout() : try oldCheckout()
    /// flags.recordOutcome(of: checkout, success: ok)
    /// ```
    public func recordOutcome<Value>(of details: EvaluationDetails<Value>, success: Bool, duration: Duration? = nil) {
        recordOutcome(flag: details.flagKey, variant: details.variant, success: success, duration: duration)
    }

    // MARK: - State

    /// Whether the client has its first data from Redis, or gave up waiting for it after
    /// ``Configuration/startupTimeout`` and serves its fallback.
    public var isReady: Bool { readiness.isOpen }

    /// Waits until the client is ready (see ``isReady``), at most `timeout`.
    ///
    /// - Returns: Whether it is ready; false after the timeout (evaluations then give the best
    ///   data the client has, maybe only code defaults).
    @discardableResult
    public func waitUntilReady(timeout: Duration) async -> Bool {
        await readiness.wait(timeout: timeout)
    }

    /// The applied revision, the data's source and age.
    public var freshness: Freshness {
        let snapshot = current.withLock { $0.snapshot }
        let (inSync, lastConfirmed) = sync.withLock { ($0.inSync, $0.lastConfirmed) }
        let age: Duration?
        if snapshot.source == .defaults {
            age = nil
        } else if inSync {
            age = .zero
        } else {
            age = WallClock.age(since: lastConfirmed, now: WallClock.now())
        }
        let neverSynced = snapshot.source == .redis && snapshot.revision == 0 && neverSynced.load(ordering: .relaxed)
        return Freshness(
            source: snapshot.source, revision: snapshot.revision, isInSync: inSync, age: age, isStale: staleFlag.load(ordering: .relaxed),
            isNeverSynced: neverSynced)
    }

    /// The changed flag keys of every update from now on, one set per update (flags added,
    /// changed or removed). The sequence ends when ``run()`` ends; a consumer more than 1,000
    /// updates behind loses the oldest.
    ///
    /// ```swift
    /// for await keys in flags.changes() where keys.contains("banner") { reloadBanner() }
    /// ```
    public func changes() -> AsyncStream<Set<String>> {
        changeBroadcaster.makeStream(bufferLimit: 1000)
    }

    /// One snapshot the client installed from Redis: the revision it applied, the flags it
    /// changed (empty when only the revision moved), and when (Unix nanoseconds, wall clock).
    public struct Update: Sendable, Hashable {
        public var revision: Int64?
        public var changed: Set<String>
        public var appliedAtUnixNanos: Int64
    }

    /// Every snapshot installed from Redis from now on, with its revision — to verify that an
    /// instance applied a given change, and when. Ends when ``run()`` ends; a consumer more than
    /// 1,000 updates behind loses the oldest.
    public func updates() -> AsyncStream<Update> {
        updateBroadcaster.makeStream(bufferLimit: 1000)
    }

    // MARK: - Updates (from the run loop)

    var snapshot: FlagSnapshot { current.withLock { $0.snapshot } }

    /// The current snapshot and its generation, read together.
    var snapshotAndGeneration: (snapshot: FlagSnapshot, generation: UInt64) { current.withLock { ($0.snapshot, $0.generation) } }

    /// Swaps in a fallback snapshot (disk, flag files) unless data from Redis is installed
    /// already; false when it was refused.
    func installFallback(_ snapshot: FlagSnapshot) -> Bool {
        let swapped = current.withLock { c -> (UInt64, FlagSnapshot)? in
            guard c.snapshot.source != .redis else { return nil }
            let old = c.snapshot
            c.snapshot = snapshot
            c.generation &+= 1
            return (c.generation, old)
        }
        guard let swapped else { return false }
        let (g, old) = swapped
        generation.store(g, ordering: .releasing)
        collectEvaluated(from: old)
        swapBroadcaster.publish(g)
        return true
    }

    /// Changes the hook list and publishes it (a new generation: each thread picks it up at its
    /// next evaluation); returns what `change` returns.
    func changeHooks<R>(_ change: (inout [(id: UInt64, hook: any FlagHook)]) -> R) -> R {
        let (result, g) = current.withLock { c -> (R, UInt64) in
            var entries = c.hooks?.entries ?? []
            let result = change(&entries)
            c.hooks = entries.isEmpty ? nil : HookList(entries)
            c.generation &+= 1
            return (result, c.generation)
        }
        generation.store(g, ordering: .releasing)
        return result
    }

    /// A new, never-reused hook ID.
    static func makeHookID() -> UInt64 { nextHookID.wrappingAdd(1, ordering: .relaxed).oldValue }

    /// Swaps in a new snapshot.
    func install(_ snapshot: FlagSnapshot) {
        let (g, old) = current.withLock { c -> (UInt64, FlagSnapshot) in
            let old = c.snapshot
            c.snapshot = snapshot
            c.generation &+= 1
            return (c.generation, old)
        }
        generation.store(g, ordering: .releasing)
        collectEvaluated(from: old)
        if let revision = snapshot.revision { metrics.revision.record(revision) }
        swapBroadcaster.publish(g)
    }

    /// Keeps the evaluation marks of a replaced snapshot for the next heartbeat (on the
    /// updater's thread, never an evaluation's). An evaluation that was reading `old` at the very
    /// moment of the swap may mark it after this: that mark is not reported, and the flag's next
    /// evaluation marks the new snapshot.
    private func collectEvaluated(from old: FlagSnapshot) {
        guard configuration.heartbeat.isEnabled else { return }
        let keys = old.takeEvaluated()
        guard !keys.isEmpty else { return }
        pendingEvaluated.withLock { pending in
            for key in keys where pending.count < Self.maximumPendingEvaluated { pending.insert(key) }
        }
    }

    /// The keys of every flag evaluated since the last call, sorted: the current snapshot's marks
    /// (each cleared as it is taken) and those of the snapshots replaced meanwhile. What the
    /// heartbeat writes to `flagpole:{ENV}:evaluated`.
    func takeEvaluatedFlags() -> [String] {
        let marked = snapshot.takeEvaluated()
        var keys = pendingEvaluated.withLock { pending -> Set<String> in
            defer { pending.removeAll() }
            return pending
        }
        keys.formUnion(marked)
        return keys.sorted()
    }

    /// Puts back keys a heartbeat could not deliver, for the next one.
    func restoreEvaluatedFlags(_ keys: [String]) {
        pendingEvaluated.withLock { pending in
            for key in keys where pending.count < Self.maximumPendingEvaluated { pending.insert(key) }
        }
    }
}
