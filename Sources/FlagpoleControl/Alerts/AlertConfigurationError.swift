import FlagpoleCore

/// Alert targets that cannot send: an environment variable they name is unset or empty, or holds
/// something that is not a URL. Found at startup (``AlertDispatcher/validate(targets:environments:processEnvironment:)``
/// and ``AlertDispatcher/init(targets:processEnvironment:configuration:logger:)``), so the daemon
/// refuses to start rather than failing silently at the first revert.
///
/// The description lists every problem, one a line, naming the target and the variable; never a
/// variable's value.
package struct AlertConfigurationError: Error, Sendable, CustomStringConvertible {
    /// One target's problem.
    package struct Problem: Sendable, Hashable, CustomStringConvertible {
        /// The target's name in the project config.
        package var target: String
        /// The environment variable concerned, if any.
        package var variable: String?
        /// What is wrong and how to fix it.
        package var message: String

        package var description: String { "alert target \"\(target)\": \(message)" }
    }

    /// Every problem found.
    package var problems: [Problem]

    package var description: String {
        if problems.count == 1 { return problems[0].description }
        return "\(problems.count) alert targets cannot send:\n" + problems.map { "  " + $0.description }.joined(separator: "\n")
    }
}
