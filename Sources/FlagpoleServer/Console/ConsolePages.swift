import FlagpoleCore
import FlagpoleStore

/// The console's page frame and shared pieces, as plain Swift over ``HTML``: every value escaped.
enum ConsolePages {
    /// The whole document: head (the stylesheet and script, both static routes), the navigation,
    /// and `body`.
    static func frame(
        title: String, environment: String, isProduction: Bool, session: ConsoleSessions.Session?, csrf: String?, live: Bool, tick: Int?,
        revision: Int64?, reloadSeconds: Int, body: HTML
    ) -> String {
        var h = HTML()
        h.raw("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">")
        h.raw("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>")
        h.text(title)
        h.raw(" · Flagpole ")
        h.text(environment)
        h.raw("</title><link rel=\"stylesheet\" href=\"/console/static/console.css\">")
        if live {
            h.raw("<script src=\"/console/static/console.js\" defer></script>")
            h.raw("<noscript><meta http-equiv=\"refresh\" content=\"\(max(5, reloadSeconds))\"></noscript>")
        }
        h.raw("</head><body")
        if live {
            h.raw(" data-live=\"1\" data-events=\"/console/events?revision=\(revision.map(String.init) ?? "")")
            if let tick { h.raw("&amp;every=\(tick)") }
            h.raw("\" data-reload=\"\(max(5, reloadSeconds))\"")
        }
        h.raw("><header class=\"top\"><a class=\"brand\" href=\"/console\">Flagpole</a> <span class=\"env")
        if isProduction { h.raw(" prod") }
        h.raw("\">")
        h.text(environment)
        if isProduction { h.raw(" · production") }
        h.raw("</span>")
        if let session {
            h.raw("<nav><a href=\"/console\">Overview</a><a href=\"/console/flags\">Flags</a>")
            h.raw("<a href=\"/console/rollouts\">Rollouts</a><a href=\"/console/audit\">Audit</a></nav>")
            h.raw("<form class=\"who\" method=\"post\" action=\"/console/logout\"><span>")
            h.text(session.name)
            h.raw(session.mayOperate ? " · operate" : " · view")
            h.raw("</span><input type=\"hidden\" name=\"csrf\" value=\"")
            h.text(csrf ?? "")
            h.raw("\"><button type=\"submit\" class=\"link\">Log out</button></form>")
        }
        h.raw("</header><main>")
        h.raw(body.markup)
        h.raw("</main></body></html>\n")
        return h.markup
    }

    static func message(title: String, text: String) -> HTML {
        var h = HTML()
        h.raw("<h1>")
        h.text(title)
        h.raw("</h1><p class=\"message\">")
        h.text(text)
        h.raw("</p><p><a href=\"/console\">Back to the overview</a></p>")
        return h
    }

    static func login(environment: String, csrf: String, next: String, problem: String?, tokensEnabled: Bool) -> HTML {
        var h = HTML()
        h.raw("<h1>Log in to ")
        h.text(environment)
        h.raw("</h1>")
        if let problem {
            h.raw("<p class=\"problem\">")
            h.text(problem)
            h.raw("</p>")
        }
        h.raw("<form method=\"post\" action=\"/console/login\" class=\"card\">")
        if tokensEnabled {
            h.raw("<label>Token <input type=\"password\" name=\"token\" autocomplete=\"current-password\" required autofocus></label>")
            h.raw(
                "<p class=\"hint\">A token with the scope <code>view</code> or <code>operate</code> from the daemon's token file (<code>--tokens-file</code>).</p>"
            )
        } else {
            h.raw("<p class=\"hint\">No tokens are configured: the daemon listens on this machine only, and the console is open.</p>")
        }
        hidden(&h, "csrf", csrf)
        hidden(&h, "next", next)
        h.raw("<button type=\"submit\">Log in</button></form>")
        return h
    }

    static func hidden(_ h: inout HTML, _ name: String, _ value: String) {
        h.raw("<input type=\"hidden\" name=\"")
        h.text(name)
        h.raw("\" value=\"")
        h.text(value)
        h.raw("\">")
    }

    /// `<a href="/console/flags/KEY">KEY</a>`.
    static func flagLink(_ h: inout HTML, _ key: String) {
        h.raw("<a href=\"/console/flags/")
        h.raw(HTML.urlComponent(key))
        h.raw("\">")
        h.text(key)
        h.raw("</a>")
    }

    /// `2026-12-07 14:02:11Z`.
    static func time(_ unixSeconds: Int64) -> String {
        guard unixSeconds > 0 else { return "-" }
        let days = unixSeconds / 86400, secs = unixSeconds % 86400
        let (y, m, d) = CivilTime.civil(days: days)
        func two(_ n: Int64) -> String { n < 10 ? "0\(n)" : "\(n)" }
        return "\(y)-\(two(m))-\(two(d)) \(two(secs / 3600)):\(two(secs / 60 % 60)):\(two(secs % 60))Z"
    }

    /// `14:02`.
    static func clock(_ unixSeconds: Int64) -> String {
        let secs = ((unixSeconds % 86400) + 86400) % 86400
        func two(_ n: Int64) -> String { n < 10 ? "0\(n)" : "\(n)" }
        return "\(two(secs / 3600)):\(two(secs / 60 % 60))"
    }

    static func ago(_ unixSeconds: Int64, now: Int64) -> String {
        let s = max(0, now - unixSeconds)
        switch s {
        case ..<60: return "\(s)s ago"
        case ..<3600: return "\(s / 60)m ago"
        case ..<86400: return "\(s / 3600)h ago"
        default: return "\(s / 86400)d ago"
        }
    }

    static func percent(_ rate: Double?) -> String {
        guard let rate, rate.isFinite else { return "–" }
        let p = rate * 100
        return p >= 10 ? "\(Int(p.rounded()))%" : "\((p * 100).rounded() / 100)%"
    }

    /// A flag's targeting as words: `if ends_with(email, "@x") then on else default`.
    static func targetingText(_ rule: JSONValue) -> String {
        switch rule {
        case .string(let s): return "\"\(s)\""
        case .null: return "the default variant"
        case .array(let items): return "[" + items.map(targetingText).joined(separator: ", ") + "]"
        case .object(let o) where o.count == 1:
            let (op, value) = o.first!
            let args: [JSONValue] = value.arrayValue ?? [value]
            switch op {
            case "var":
                return args.first?.stringValue ?? "context"
            case "if", "?:":
                var parts: [String] = []
                var i = 0
                while i + 1 < args.count {
                    parts.append((i == 0 ? "if " : " else if ") + targetingText(args[i]) + " then " + targetingText(args[i + 1]))
                    i += 2
                }
                if i < args.count { parts.append(" else " + targetingText(args[i])) }
                return parts.joined()
            case "and", "or":
                return "(" + args.map(targetingText).joined(separator: " \(op) ") + ")"
            case "!":
                return "not " + (args.first.map(targetingText) ?? "")
            case "==", "===", "!=", "!==", "<", "<=", ">", ">=", "in":
                if args.count == 2 { return targetingText(args[0]) + " \(op) " + targetingText(args[1]) }
                return op + "(" + args.map(targetingText).joined(separator: ", ") + ")"
            case "fractional":
                return "fractional(" + args.map(targetingText).joined(separator: ", ") + ")"
            default:
                return op + "(" + args.map(targetingText).joined(separator: ", ") + ")"
            }
        default:
            return rule.jsonString
        }
    }
}
