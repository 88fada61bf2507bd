import FlagpoleCore

/// What each kind of alert target receives: the body of its `POST`.
package enum AlertMessage {
    /// The kinds of target, as in the project config's `type`.
    package enum Kind: String, Sendable, Hashable {
        case webhook, slack, telegram
    }

    /// The generic webhook's JSON: the whole alert,
    /// `{"severity","title","text","environment","flag","rolloutID","details","at"}` (`flag` and
    /// `rolloutID` are null when the alert has none; `at` is Unix seconds).
    package static func webhook(_ alert: Alert) -> JSONValue {
        [
            "severity": .string(alert.severity.rawValue), "title": .string(alert.title), "text": .string(alert.text),
            "environment": .string(alert.environment), "flag": alert.flag.map { .string($0) } ?? .null,
            "rolloutID": alert.rolloutID.map { .string($0) } ?? .null, "details": alert.details, "at": .int(alert.at),
        ]
    }

    /// The text people read in chat: the title on the first line (marked by severity), then the
    /// text; cut to 4,000 characters (Telegram takes at most 4,096).
    package static func chatText(_ alert: Alert) -> String {
        let mark: String
        switch alert.severity {
        case .info: mark = "ℹ️"
        case .warning: mark = "⚠️"
        case .critical: mark = "🚨"
        }
        let full = alert.text.isEmpty ? "\(mark) \(alert.title)" : "\(mark) \(alert.title)\n\(alert.text)"
        return full.count > 4_000 ? String(full.prefix(3_999)) + "…" : full
    }

    /// A Slack-compatible incoming webhook's JSON: `{"text": …}` (Mattermost, Rocket.Chat and
    /// others accept it too). `&`, `<` and `>` are escaped as Slack asks (`&amp;`, `&lt;`, `&gt;`),
    /// so a reason such as `<!channel>` is shown, not obeyed.
    package static func slack(_ alert: Alert) -> JSONValue {
        ["text": .string(slackEscaped(chatText(alert)))]
    }

    /// `&` → `&amp;`, `<` → `&lt;`, `>` → `&gt;` (Slack's control characters in message text).
    package static func slackEscaped(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for c in text {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            default: out.append(c)
            }
        }
        return out
    }

    /// Telegram's `sendMessage` JSON: `{"chat_id": …, "text": …, "disable_web_page_preview": true}`,
    /// plain text (no `parse_mode`), so nothing in a title or reason is read as markup.
    package static func telegram(_ alert: Alert, chatID: String) -> JSONValue {
        ["chat_id": .string(chatID), "text": .string(chatText(alert)), "disable_web_page_preview": true]
    }
}
