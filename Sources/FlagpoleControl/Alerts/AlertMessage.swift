import FlagpoleCore

/// What each kind of alert target receives: the body of its `POST`.
package enum AlertMessage {
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
    /// others accept it too).
    package static func slack(_ alert: Alert) -> JSONValue {
        ["text": .string(chatText(alert))]
    }

    /// Telegram's `sendMessage` JSON: `{"chat_id": …, "text": …, "disable_web_page_preview": true}`.
    package static func telegram(_ alert: Alert, chatID: String) -> JSONValue {
        ["chat_id": .string(chatID), "text": .string(chatText(alert)), "disable_web_page_preview": true]
    }
}
