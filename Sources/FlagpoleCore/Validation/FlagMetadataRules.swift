/// Rules for the flag metadata keys under one prefix that another part of Flagpole reads, such as
/// the watcher's `rollout.*` guard policy (FlagpoleRollout's `GuardPolicy.metadataRules`).
///
/// The validator knows no such vocabulary itself: whoever loads flag files for a purpose that
/// reads these keys (`flagctl validate`, `sync`) passes the rules in ``FlagSetLoader/Options``,
/// and the validator reports an unknown key under the prefix (a warning, with a suggestion) and a
/// value the rule refuses (an error), at the key's line.
package struct FlagMetadataRules: Sendable {
    /// What the keys are called in messages, e.g. "guard-policy".
    package var name: String
    /// The prefix the keys share, e.g. "rollout.".
    package var prefix: String
    /// The names allowed after the prefix.
    package var names: [String]
    /// A value's problem (message without the key's prefix, optional hint), or nil when it is valid.
    package var check: @Sendable (_ name: String, _ value: JSONValue) -> (message: String, hint: String?)?

    package init(
        name: String, prefix: String, names: [String],
        check: @escaping @Sendable (_ name: String, _ value: JSONValue) -> (message: String, hint: String?)?
    ) {
        self.name = name
        self.prefix = prefix
        self.names = names
        self.check = check
    }
}
