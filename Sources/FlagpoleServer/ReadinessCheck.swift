/// One condition `/readyz` checks besides the client's own readiness (the watcher holding its
/// lease, say).
package struct ReadinessCheck: Sendable {
    /// What is checked, shown in `/readyz`'s body (e.g. `watcher`).
    package var name: String
    /// Nil when ready, else why not (one line).
    package var check: @Sendable () -> String?

    /// A check named `name`; `check` returns nil when ready, else why not.
    package init(name: String, check: @escaping @Sendable () -> String?) {
        self.name = name
        self.check = check
    }
}
