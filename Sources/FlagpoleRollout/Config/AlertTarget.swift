import FlagpoleCore

/// Where the watcher sends alerts (a rollout reverted, completed, held for lack of data).
///
/// Secrets (webhook URLs, bot tokens) are best named by environment variable rather than written
/// in the config; ``description`` never prints a URL or a token.
package struct AlertTarget: Sendable, Hashable, CustomStringConvertible {
    /// A value written in the config or taken from an environment variable when alerting.
    package enum Value: Sendable, Hashable {
        /// Written in the config.
        case literal(String)
        /// Read from this environment variable.
        case environmentVariable(String)

        /// The value, reading the environment when needed; nil when the variable is unset or empty.
        package func resolve(in environment: [String: String]) -> String? {
            switch self {
            case .literal(let s): return s
            case .environmentVariable(let name):
                guard let v = environment[name], !v.isEmpty else { return nil }
                return v
            }
        }

        var redacted: String {
            switch self {
            case .literal: return "set in the config"
            case .environmentVariable(let name): return "from $\(name)"
            }
        }
    }

    /// Where the alert goes.
    package enum Destination: Sendable, Hashable {
        /// A generic JSON webhook: one POST of a JSON document per alert.
        case webhook(url: Value)
        /// A Slack-compatible incoming webhook (`{"text": …}`; Mattermost and others accept it too).
        case slack(url: Value)
        /// A Telegram bot message (`sendMessage`) to a chat.
        case telegram(botToken: Value, chatID: Value)
    }

    /// The target's name (unique in the config).
    package var name: String
    /// Where alerts go.
    package var destination: Destination
    /// The environments whose alerts go here; nil means every environment.
    package var environments: [String]?
    /// The environments whose every change (sync, set, rollout, …: the audit stream) is announced
    /// here by `flagctl daemon` (docs/daemon.md#notifications). Default: none.
    package var notify: [String]

    /// Creates a target.
    package init(name: String, destination: Destination, environments: [String]? = nil, notify: [String] = []) {
        self.name = name
        self.destination = destination
        self.environments = environments
        self.notify = notify
    }

    /// Whether alerts of an environment go to this target.
    package func applies(toEnvironment environment: String) -> Bool {
        environments?.contains(environment) ?? true
    }

    /// Whether every change of an environment is announced to this target (``notify``).
    package func notifies(environment: String) -> Bool {
        notify.contains(environment)
    }

    /// `slack alert target "team" (URL from $SLACK_URL)`; never the URL or token itself.
    package var description: String {
        switch destination {
        case .webhook(let url): return "webhook alert target \"\(name)\" (URL \(url.redacted))"
        case .slack(let url): return "slack alert target \"\(name)\" (URL \(url.redacted))"
        case .telegram(let token, let chat):
            return "telegram alert target \"\(name)\" (bot token \(token.redacted), chat id \(chat.redacted))"
        }
    }
}
