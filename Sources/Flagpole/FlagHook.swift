import FlagpoleCore

/// Code that runs around every evaluation of a client: OpenFeature's hooks, for logging, tracing,
/// or counting exposures.
///
/// Register one with ``FlagpoleClient/addHook(_:)`` (or `InMemoryFlags.addHook(_:)` in tests,
/// the same code path). Every method has a default that does nothing, so a hook implements only
/// the stages it needs:
///
/// ```swift
/// struct ExposureLog: FlagHook {
///     let logger: Logger
///     func finally(_ evaluation: FlagHookContext, details: EvaluationDetails<JSONValue>, duration: Duration) {
///         logger.info("flag evaluated", metadata: [
///             "flag": "\(evaluation.flagKey)", "variant": "\(details.variant ?? "-")", "reason": "\(details.reason)"])
///     }
/// }
/// let registration = flags.addHook(ExposureLog(logger: logger))
/// ```
///
/// For one evaluation the stages run in this order: every hook's ``before(_:)`` in registration
/// order; the evaluation; then, in reverse registration order, every hook's
/// ``after(_:details:duration:)`` when the evaluation succeeded or ``error(_:error:)`` when it
/// gave an ERROR reason; last, every hook's ``finally(_:details:duration:)``, whatever happened.
///
/// Hooks run synchronously on the evaluating thread: keep them short (hand slow work to a task or
/// a buffer), since the evaluation waits for them. A hook never breaks an evaluation: an error
/// thrown by ``before(_:)`` or ``after(_:details:duration:)`` goes to every hook's
/// ``error(_:error:)`` (and the client's logger), and the evaluation still returns its value.
/// Unlike OpenFeature, a throwing `before` does not turn the evaluation into the code default.
///
/// With no hook registered the evaluation path is unchanged: one test of a reference the client
/// publishes with the snapshot; no lock, no allocation and no clock read (see
/// `Benchmarks/Sources/HookComparison`).
public protocol FlagHook: Sendable {
    /// Before the evaluation: return a context to evaluate with instead of
    /// `evaluation.context` (it replaces it; later hooks see it), or nil to keep it.
    /// Default: nil.
    func before(_ evaluation: FlagHookContext) throws -> EvaluationContext?
    /// After a successful evaluation (any reason but ERROR), with its details and how long the
    /// evaluation took (the hooks' own time not included). Default: nothing.
    func after(_ evaluation: FlagHookContext, details: EvaluationDetails<JSONValue>, duration: Duration) throws
    /// When the evaluation gave ERROR (``FlagHookError/Code-swift.struct/evaluation``, with its
    /// error code), or a hook's `before` or `after` threw. Default: nothing.
    func error(_ evaluation: FlagHookContext, error: FlagHookError)
    /// Last, for every evaluation, with the details the caller gets and the evaluation's
    /// duration. Default: nothing.
    func finally(_ evaluation: FlagHookContext, details: EvaluationDetails<JSONValue>, duration: Duration)
}

extension FlagHook {
    public func before(_ evaluation: FlagHookContext) throws -> EvaluationContext? { nil }
    public func after(_ evaluation: FlagHookContext, details: EvaluationDetails<JSONValue>, duration: Duration) throws {}
    public func error(_ evaluation: FlagHookContext, error: FlagHookError) {}
    public func finally(_ evaluation: FlagHookContext, details: EvaluationDetails<JSONValue>, duration: Duration) {}
}

/// What a hook learns about the evaluation it runs around.
public struct FlagHookContext: Sendable {
    /// The flag key asked for.
    public var flagKey: String
    /// The type the accessor asks for (`bool` and `boolDetails` ask for `.boolean`, `double` for
    /// `.float`, …).
    public var valueType: FlagValueType
    /// The caller's code default, as JSON.
    public var defaultValue: JSONValue
    /// The context the flag is evaluated with: the caller's, as the `before` hooks so far left it.
    public var context: EvaluationContext
    /// The client's environment.
    public var environment: String

    /// A hook context from its parts.
    public init(flagKey: String, valueType: FlagValueType, defaultValue: JSONValue, context: EvaluationContext, environment: String) {
        self.flagKey = flagKey
        self.valueType = valueType
        self.defaultValue = defaultValue
        self.context = context
        self.environment = environment
    }
}

/// What went wrong around an evaluation, as a hook's ``FlagHook/error(_:error:)`` hears it.
public struct FlagHookError: Error, Sendable, CustomStringConvertible {
    /// The kind of failure.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Kind: String { case evaluation, beforeHook, afterHook }
        private let kind: Kind

        /// The evaluation gave ERROR (see ``FlagHookError/evaluationErrorCode``).
        public static let evaluation = Code(kind: .evaluation)
        /// A hook's `before` threw (see ``FlagHookError/underlying``).
        public static let beforeHook = Code(kind: .beforeHook)
        /// A hook's `after` threw (see ``FlagHookError/underlying``).
        public static let afterHook = Code(kind: .afterHook)

        public var description: String { kind.rawValue }
    }

    /// The kind of failure.
    public var code: Code
    /// What happened, for people.
    public var message: String
    /// The evaluation's error code (`FLAG_NOT_FOUND`, `TYPE_MISMATCH`, …) for ``Code-swift.struct/evaluation``.
    public var evaluationErrorCode: EvaluationErrorCode?
    /// The error a hook threw.
    public var underlying: (any Error)?

    /// An error from its parts.
    public init(code: Code, message: String, evaluationErrorCode: EvaluationErrorCode? = nil, underlying: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.evaluationErrorCode = evaluationErrorCode
        self.underlying = underlying
    }

    public var description: String { "\(code): \(message)" }
}

/// Names one registration of a hook, to remove it with ``FlagpoleClient/removeHook(_:)``.
public struct FlagHookRegistration: Hashable, Sendable {
    let id: UInt64
}

/// The hooks of a client, as published with its snapshot: immutable, swapped whole.
final class HookList: Sendable {
    let entries: [(id: UInt64, hook: any FlagHook)]

    init(_ entries: [(id: UInt64, hook: any FlagHook)]) {
        self.entries = entries
    }
}
