import FlagpoleCore
import Logging

extension FlagpoleClient {
    // MARK: - Registering hooks

    /// Runs `hook` around every evaluation of this client from now on (see ``FlagHook``): hooks
    /// run in the order they were added (`before`), and in reverse for the later stages.
    ///
    /// Evaluations already under way on other threads finish without it; every evaluation that
    /// starts after this returns runs it.
    ///
    /// - Returns: The registration, for ``removeHook(_:)``.
    @discardableResult
    public func addHook(_ hook: some FlagHook) -> FlagHookRegistration {
        let id = Self.makeHookID()
        changeHooks { $0.append((id, hook)) }
        return FlagHookRegistration(id: id)
    }

    /// Stops running the hook `registration` names; evaluations that start after this returns do
    /// not run it.
    ///
    /// - Returns: Whether it was registered (false when it was removed already).
    @discardableResult
    public func removeHook(_ registration: FlagHookRegistration) -> Bool {
        changeHooks { entries in
            guard let i = entries.firstIndex(where: { $0.id == registration.id }) else { return false }
            entries.remove(at: i)
            return true
        }
    }

    /// Removes every hook: evaluations are back on the path without hooks.
    public func removeAllHooks() {
        changeHooks { $0.removeAll() }
    }

    // MARK: - Evaluating with hooks

    /// One evaluation with the client's hooks (published with `snapshot`) and `extra` ones: the
    /// stages in the order ``FlagHook`` states, the evaluation timed, a hook's error handed to
    /// the error stage and logged, never to the caller.
    ///
    /// `snapshot` is the thread's unretained reference: a hook may evaluate flags itself, which
    /// can replace the thread's reference, so it is retained here for the call.
    @inline(never)
    func hooked<Value>(
        _ snapshot: FlagSnapshot, _ slot: ThreadSlot, _ key: String, _ type: FlagValueType, _ defaultValue: Value,
        _ context: EvaluationContext, _ extra: [any FlagHook], _ json: (Value) -> JSONValue,
        _ evaluate: (FlagSnapshot, EvaluationContext) -> EvaluationDetails<Value>
    ) -> EvaluationDetails<Value> {
        let retained = Unmanaged.passRetained(snapshot)
        defer { retained.release() }
        let list = slot.hooks
        let entries = list?.entries ?? []
        /// Every hook, in registration order (the client's, then this call's), or in reverse.
        func each(reversed: Bool, _ body: (any FlagHook) -> Void) {
            if reversed {
                for hook in extra.reversed() { body(hook) }
                for entry in entries.reversed() { body(entry.hook) }
            } else {
                for entry in entries { body(entry.hook) }
                for hook in extra { body(hook) }
            }
        }

        var hookContext = FlagHookContext(
            flagKey: key, valueType: type, defaultValue: json(defaultValue), context: context, environment: configuration.environment)
        var failures: [FlagHookError] = []
        each(reversed: false) { hook in
            do {
                if let replacement = try hook.before(hookContext) { hookContext.context = replacement }
            } catch {
                failures.append(hookFailure(.beforeHook, key: key, hook: hook, error: error))
            }
        }
        for failure in failures {
            each(reversed: true) { $0.error(hookContext, error: failure) }
        }

        let start = ContinuousClock.now
        var details = evaluate(snapshot, hookContext.context)
        finish(&details, slot: slot)
        let duration = start.duration(to: .now)

        let untyped = EvaluationDetails(
            flagKey: details.flagKey, value: json(details.value), variant: details.variant, reason: details.reason,
            errorCode: details.errorCode, errorMessage: details.errorMessage, metadata: details.metadata)
        if details.reason == .error {
            let failure = FlagHookError(
                code: .evaluation, message: details.errorMessage ?? "the evaluation failed", evaluationErrorCode: details.errorCode)
            each(reversed: true) { $0.error(hookContext, error: failure) }
        } else {
            failures.removeAll()
            each(reversed: true) { hook in
                do {
                    try hook.after(hookContext, details: untyped, duration: duration)
                } catch {
                    failures.append(hookFailure(.afterHook, key: key, hook: hook, error: error))
                }
            }
            for failure in failures {
                each(reversed: true) { $0.error(hookContext, error: failure) }
            }
        }
        each(reversed: true) { $0.finally(hookContext, details: untyped, duration: duration) }
        return details
    }

    /// A hook's thrown error as the error stage hears it, logged: the first of the client's
    /// lifetime as a warning, later ones at debug level (a hook that throws on every evaluation
    /// must not flood the log).
    private func hookFailure(_ code: FlagHookError.Code, key: String, hook: any FlagHook, error: any Error) -> FlagHookError {
        let stage = code == .beforeHook ? "before" : "after"
        let failure = FlagHookError(
            code: code, message: "the \(stage) hook \(type(of: hook)) threw: \(error)", underlying: error)
        let metadata: Logger.Metadata = [
            "flagpole.flag": "\(key)", "flagpole.hook": "\(type(of: hook))", "flagpole.stage": "\(stage)", "flagpole.error": "\(error)",
        ]
        if !hookFailureLogged.exchange(true, ordering: .relaxed) {
            logger.warning(
                "A flag hook threw; the evaluation returned its value (further hook errors are logged at debug level)", metadata: metadata)
        } else {
            logger.debug("A flag hook threw; the evaluation returned its value", metadata: metadata)
        }
        return failure
    }
}
