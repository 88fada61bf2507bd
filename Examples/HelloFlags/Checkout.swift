import Flagpole

struct CheckoutError: Error {}

/// The checkout request, written against `FlagEvaluator` so that a test can hand it in-memory
/// flags (`InMemoryFlags` from FlagpoleTestKit) instead of the client (see ExampleTests).
func checkoutPage(user: String, flags: some FlagEvaluator) throws -> String {
    // Synchronous, never throws, nanoseconds: the flag comes from the in-memory snapshot.
    let newFlow = flags.boolDetails("new-checkout", default: false, context: EvaluationContext(targetingKey: user))
    let started = ContinuousClock.now
    do {
        let page = try checkout(user: user, newFlow: newFlow.value)
        // What the rollout watcher compares: successes and failures per flag and variant.
        flags.recordOutcome(of: newFlow, success: true, duration: started.duration(to: .now))
        return page
    } catch {
        flags.recordOutcome(of: newFlow, success: false, duration: started.duration(to: .now))
        throw error
    }
}

/// The work the flag guards.
func checkout(user: String, newFlow: Bool) throws -> String {
    if user.isEmpty { throw CheckoutError() }
    return newFlow ? "new checkout for \(user)\n" : "classic checkout for \(user)\n"
}
