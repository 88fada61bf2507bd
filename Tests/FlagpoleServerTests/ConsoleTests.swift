import Flagpole
import FlagpoleControl
import FlagpoleCore
import FlagpoleRedis
import FlagpoleStore
import FlagpoleTesting
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import Testing

@testable import FlagpoleServer

/// The tokens the console tests use.
enum ConsoleTokens {
    static let viewer = "viewer-token-0123456789abcdef"
    static let operator_ = "operator-token-0123456789abcdef"
    static let bot = "bot-token-0123456789abcdef"
    static let file = """
        \(viewer)    view             name=vera
        \(operator_) view,operate     name=otto
        \(bot)       evaluate,report  name=bot
        """
}

/// A daemon with a console over `serverFlags` in Redis, reached through HummingbirdTesting.
struct ConsoleFixture: Sendable {
    let redis: RedisServer
    let control: EnvironmentControl
    let client: FlagpoleClient
    let console: ConsoleServer
    let test: any TestClientProtocol

    /// Starts a rollout of new-checkout to "on" (steps 50, 100) begun three minutes ago, so that
    /// whole minutes of it lie before now, with outcomes in which the treatment fails a third of
    /// the time and the control 1 %.
    @discardableResult
    func startFailingRollout() async throws -> RolloutRecord {
        var start = EnvironmentControl.RolloutStart(flag: "new-checkout", target: "on")
        start.steps = [50, 100]
        start.now = Int64(Date().timeIntervalSince1970) - 180
        let record = try await control.startRollout(start)
        let minute = StoreLayout.unixMinute(record.startedAt)
        for m in (minute - 2)...(minute + 3) {
            let key = control.store.layout.outcomes(flag: "new-checkout", minute: m)
            _ = try await control.store.client.send(
                "HSET", key, StoreLayout.outcomeField(variant: "on", .ok), "200", StoreLayout.outcomeField(variant: "on", .err), "100",
                StoreLayout.outcomeField(variant: "off", .ok), "297", StoreLayout.outcomeField(variant: "off", .err), "3")
        }
        return record
    }

    static func with(
        tokens: AccessTokens? = nil, production: Bool = false, eventsLifetime: Duration = .seconds(600),
        openScopes: AccessTokens.Scope = [.view, .operate],
        _ body: @escaping @Sendable (ConsoleFixture) async throws -> Void
    ) async throws {
        let tokens = try tokens ?? AccessTokens(fileContents: ConsoleTokens.file, path: "tokens")
        try await RedisServer.withServer { redis in
            let root = FileManager.default.temporaryDirectory.appendingPathComponent("flagpole-console-\(UUID().uuidString.prefix(8))")
            try FileManager.default.createDirectory(at: root.appendingPathComponent("prod"), withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: root) }
            try serverFlags.write(to: root.appendingPathComponent("prod/flags.json"), atomically: true, encoding: .utf8)
            let admin = RedisClient(configuration: redis.configuration)
            let control = try EnvironmentControl(environment: "prod", client: admin, directory: FlagDirectory(root: root.path))
            _ = try await control.sync(.init())
            var configuration = FlagpoleClient.Configuration(redis: redis.configuration, environment: "prod", application: "console-tests")
            configuration.snapshotPath = nil
            let client = FlagpoleClient(configuration: configuration)
            var consoleConfiguration = ConsoleServer.Configuration()
            consoleConfiguration.isProduction = production
            consoleConfiguration.openActor = "local-console"
            consoleConfiguration.eventsLifetime = eventsLifetime
            consoleConfiguration.openScopes = openScopes
            consoleConfiguration.eventsPoll = .milliseconds(50)
            let console = ConsoleServer(
                client: client, control: control, tokens: tokens, configuration: consoleConfiguration, logger: Logger(label: "console-tests"))
            var serverConfiguration = DaemonServer.Configuration()
            serverConfiguration.port = 0
            serverConfiguration.tokens = tokens
            let server = DaemonServer(client: client, configuration: serverConfiguration, console: console, logger: Logger(label: "console-tests"))
            let task = Task { try await client.run() }
            defer { task.cancel() }
            #expect(await client.waitUntilReady(timeout: .seconds(5)))
            try await server.makeApplication().test(.router) { test in
                try await body(ConsoleFixture(redis: redis, control: control, client: client, console: console, test: test))
            }
            task.cancel()
            _ = try? await task.value
        }
    }

    /// Logs in with `token` through the login form; returns the session cookie (`name=value`).
    func login(_ token: String) async throws -> String {
        let page = try await test.execute(uri: "/console/login", method: .get)
        let nonce = try #require(Self.setCookie(page, ConsoleServer.loginCookie))
        let csrf = try #require(Self.hidden("csrf", in: page.text))
        let response = try await post("/console/login", ["token": token, "csrf": csrf, "next": "/console/flags"], cookie: nonce)
        #expect(response.status == .seeOther, "login with a known token: \(response.text)")
        #expect(response.headers[.location] == "/console/flags")
        let cookie = try #require(Self.setCookie(response, ConsoleServer.sessionCookie), "no session cookie: \(response.headers)")
        return cookie
    }

    func get(_ uri: String, cookie: String?) async throws -> TestResponse {
        var headers: HTTPFields = [:]
        if let cookie { headers[.cookie] = cookie }
        return try await test.execute(uri: uri, method: .get, headers: headers)
    }

    func post(_ uri: String, _ fields: [String: String], cookie: String?) async throws -> TestResponse {
        var headers: HTTPFields = [.contentType: "application/x-www-form-urlencoded"]
        if let cookie { headers[.cookie] = cookie }
        let body = fields.map { "\(HTML.urlComponent($0.key))=\(HTML.urlComponent($0.value))" }.joined(separator: "&")
        return try await test.execute(uri: uri, method: .post, headers: headers, body: ByteBuffer(string: body))
    }

    /// `name=value` of the cookie `name` a response sets.
    static func setCookie(_ response: TestResponse, _ name: String) -> String? {
        for value in response.headers[values: .setCookie] where value.hasPrefix(name + "=") {
            return String(value.split(separator: ";")[0])
        }
        return nil
    }

    /// The value of the first hidden input `name` in `html`.
    static func hidden(_ name: String, in html: String) -> String? {
        guard let range = html.range(of: "name=\"\(name)\" value=\"") else { return nil }
        let rest = html[range.upperBound...]
        return rest.firstIndex(of: "\"").map { String(rest[..<$0]) }
    }

    /// Every hidden field of the form posting to `action` (the first such form), with `extra`.
    static func form(_ action: String, in html: String, containing marker: String, _ extra: [String: String] = [:]) -> [String: String]? {
        var searchFrom = html.startIndex
        while let start = html.range(of: "<form", range: searchFrom..<html.endIndex) {
            guard let end = html.range(of: "</form>", range: start.upperBound..<html.endIndex) else { return nil }
            let form = html[start.lowerBound..<end.upperBound]
            searchFrom = end.upperBound
            guard form.contains("action=\"\(action)\""), form.contains(marker) else { continue }
            var fields: [String: String] = [:]
            var cursor = form.startIndex
            while let input = form.range(of: "<input type=\"hidden\" name=\"", range: cursor..<form.endIndex) {
                let nameEnd = form[input.upperBound...].firstIndex(of: "\"")!
                let name = String(form[input.upperBound..<nameEnd])
                let valueStart = form.range(of: "value=\"", range: nameEnd..<form.endIndex)!.upperBound
                let valueEnd = form[valueStart...].firstIndex(of: "\"")!
                fields[name] = unescape(String(form[valueStart..<valueEnd]))
                cursor = valueEnd
            }
            return fields.merging(extra) { $1 }
        }
        return nil
    }

    static func unescape(_ s: String) -> String {
        s.replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&#39;", with: "'").replacingOccurrences(of: "&lt;", with: "<")
            .replacingOccurrences(of: "&gt;", with: ">").replacingOccurrences(of: "&amp;", with: "&")
    }
}

@Suite("Console: pure parts")
struct ConsoleUnitTests {
    @Test("escaping turns every markup character into an entity")
    func escaping() {
        #expect(HTML.escape("<script>alert('x') & \"y\"</script>") == "&lt;script&gt;alert(&#39;x&#39;) &amp; &quot;y&quot;&lt;/script&gt;")
        #expect(HTML.escape("plain-key") == "plain-key")
        #expect(HTML.urlComponent("a/b?c&d é") == "a%2Fb%3Fc%26d%20%C3%A9")
    }

    @Test("a session cookie verifies, and fails when tampered with, expired or signed by another secret")
    func sessions() throws {
        let sessions = ConsoleSessions(secret: Array(repeating: 7, count: 32))
        let session = ConsoleSessions.Session(id: "abc123", tokenIndex: 1, scopes: [.view], name: "vera", expiresAt: 1000)
        let cookie = sessions.cookie(for: session)
        #expect(sessions.session(fromCookie: cookie, now: 999) == session)
        #expect(sessions.session(fromCookie: cookie, now: 1000) == nil, "expired")
        // More scope, a later expiry, another name: each breaks the MAC.
        let parts = cookie.split(separator: ".").map(String.init)
        var more = parts
        more[2] = String(AccessTokens.Scope([.view, .operate]).rawValue)
        #expect(sessions.session(fromCookie: more.joined(separator: "."), now: 0) == nil)
        var later = parts
        later[3] = "999999"
        #expect(sessions.session(fromCookie: later.joined(separator: "."), now: 0) == nil)
        #expect(ConsoleSessions(secret: Array(repeating: 8, count: 32)).session(fromCookie: cookie, now: 0) == nil)
        #expect(sessions.checkCSRF(sessions.csrfToken(for: session), for: session))
        var other = session
        other.id = "zzz"
        #expect(!sessions.checkCSRF(sessions.csrfToken(for: other), for: session))
        #expect(!sessions.checkCSRF(nil, for: session))
    }

    @Test("HMAC-SHA256 matches RFC 4231 test case 2")
    func hmac() {
        #expect(
            ConsoleSessions.hmacHex(key: Array("Jefe".utf8), message: Array("what do ya want for nothing?".utf8))
                == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    }

    @Test("forms decode + and percent escapes; the login's next stays in the console")
    func forms() {
        let form = ConsoleForm("reason=a+b%21&csrf=x&reason=second&bad=%zz")
        #expect(form["reason"] == "a b!" && form["csrf"] == "x" && form["bad"] == "%zz")
        #expect(ConsoleServer.safeNext("/console/flags?q=a") == "/console/flags?q=a")
        #expect(ConsoleServer.safeNext("https://evil.example/") == "/console")
        #expect(ConsoleServer.safeNext("//evil.example/console") == "/console")
        #expect(ConsoleServer.safeNext(nil) == "/console")
    }

    @Test("targeting reads as words")
    func targeting() throws {
        let rule = try JSONParser.parse(#"{"if": [{"ends_with": [{"var": "email"}, "@flagpole.dev"]}, "on", null]}"#)
        #expect(ConsolePages.targetingText(rule) == #"if ends_with(email, "@flagpole.dev") then "on" else the default variant"#)
    }

    @Test("the chart draws a path with a point per minute, the ceiling, the allowance and the marks")
    func chart() {
        let minutes = (0..<5).map { i in
            ConsoleChart.Minute(minute: 100 + Int64(i), treatmentFailures: Double(i), treatmentTotal: 100, controlFailures: 1, controlTotal: 100)
        }
        let svg = ConsoleChart(
            minutes: minutes, from: 6000, to: 6300, ceiling: 0.05, allowance: 0.01,
            marks: [.init(at: 6100, label: "revert", detail: "<b>too many</b>", kind: "revert")]
        ).svg().markup
        #expect(svg.contains("<path class=\"treatment\" d=\"M"))
        #expect(svg.components(separatedBy: "<circle class=\"point treatment\"").count == 6, "a point for each of the five minutes")
        #expect(svg.contains("class=\"ceiling\"") && svg.contains("<path class=\"allowance\""))
        #expect(svg.contains("&lt;b&gt;too many&lt;/b&gt;") && !svg.contains("<b>"))
    }
}

@Suite("Console: routes, access, actions", .timeLimit(.minutes(3)))
struct ConsoleRouteTests {
    @Test("without a session every page sends the browser to the login page; static files need none")
    func loginRequired() async throws {
        try await ConsoleFixture.with { f in
            for path in ["/console", "/console/flags", "/console/flags/color", "/console/rollouts", "/console/rollouts/color", "/console/audit"] {
                let r = try await f.get(path, cookie: nil)
                #expect(r.status == .seeOther, "\(path)")
                #expect(r.headers[.location] == "/console/login?next=" + HTML.urlComponent(path), "\(path)")
            }
            let events = try await f.get("/console/events", cookie: nil)
            #expect(events.status == .unauthorized)
            let css = try await f.get("/console/static/console.css", cookie: nil)
            #expect(css.status == .ok && css.headers[.contentType]?.hasPrefix("text/css") == true)
            let js = try await f.get("/console/static/console.js", cookie: nil)
            #expect(js.status == .ok && js.text.contains("EventSource"))
            // A forged cookie is no session.
            let forged = try await f.get("/console", cookie: "\(ConsoleServer.sessionCookie)=v1.1.12.9999999999.abc.6f74746f.00")
            #expect(forged.status == .seeOther)
            // An action without a session.
            let post = try await f.post("/console/flags/color", ["action": "disable", "reason": "x", "seen": "y", "step": "apply"], cookie: nil)
            #expect(post.status == .forbidden)
        }
    }

    @Test("login: a wrong CSRF token, an unknown token and a token without a console scope are refused")
    func loginRefusals() async throws {
        try await ConsoleFixture.with { f in
            let page = try await f.get("/console/login", cookie: nil)
            #expect(page.status == .ok && page.text.contains("type=\"password\""))
            let nonce = try #require(ConsoleFixture.setCookie(page, ConsoleServer.loginCookie))
            let csrf = try #require(ConsoleFixture.hidden("csrf", in: page.text))
            let wrongCSRF = try await f.post("/console/login", ["token": ConsoleTokens.viewer, "csrf": "nope"], cookie: nonce)
            #expect(wrongCSRF.status == .forbidden && ConsoleFixture.setCookie(wrongCSRF, ConsoleServer.sessionCookie) == nil)
            let noNonce = try await f.post("/console/login", ["token": ConsoleTokens.viewer, "csrf": csrf], cookie: nil)
            #expect(noNonce.status == .forbidden)
            let unknown = try await f.post("/console/login", ["token": "not-a-token-0123456789", "csrf": csrf], cookie: nonce)
            #expect(unknown.status == .unauthorized && unknown.text.contains("unknown token"))
            let bot = try await f.post("/console/login", ["token": ConsoleTokens.bot, "csrf": csrf], cookie: nonce)
            #expect(bot.status == .forbidden && bot.text.contains("no console scope"))
            let ok = try await f.post("/console/login", ["token": ConsoleTokens.viewer, "csrf": csrf, "next": "https://evil.example"], cookie: nonce)
            #expect(ok.status == .seeOther && ok.headers[.location] == "/console")
            let setCookie = try #require(ok.headers[values: .setCookie].first { $0.hasPrefix(ConsoleServer.sessionCookie) })
            #expect(setCookie.contains("HttpOnly") && setCookie.contains("SameSite=Strict") && setCookie.contains("Max-Age=43200"))
            #expect(!setCookie.contains(ConsoleTokens.viewer), "the cookie holds no token")
        }
    }

    @Test("every page answers a viewer with the security headers and no action buttons; a viewer's POST is refused")
    func viewerPages() async throws {
        try await ConsoleFixture.with { f in
            var start = EnvironmentControl.RolloutStart(flag: "new-checkout", target: "on")
            start.steps = [10, 100]
            _ = try await f.control.startRollout(start)
            let cookie = try await f.login(ConsoleTokens.viewer)
            let pages = [
                ("/console", "Running rollouts"), ("/console/flags", "new-checkout"), ("/console/flags?q=col&filter=all", "color"),
                ("/console/flags?filter=rollout", "new-checkout"), ("/console/flags/new-checkout", "ends_with(email"),
                ("/console/rollouts", "new-checkout"), ("/console/rollouts/new-checkout", "<svg class=\"chart\""),
                ("/console/audit", "rollout-start"), ("/console/audit?action=sync&since=1h", "sync"),
            ]
            for (path, marker) in pages {
                let r = try await f.get(path, cookie: cookie)
                #expect(r.status == .ok, "\(path): \(r.text.prefix(300))")
                #expect(r.text.contains(marker), "\(path) lacks \(marker)")
                #expect(r.headers[HTTPField.Name("Content-Security-Policy")!]?.contains("script-src 'self'") == true)
                #expect(r.headers[.contentType] == "text/html; charset=utf-8")
                #expect(!r.text.contains("<script>"), "\(path): no inline script")
                #expect(!r.text.contains("Preview "), "\(path): a viewer sees no action")
                #expect(r.text.contains("vera · view"))
            }
            let evaluated = try await f.get(
                "/console/flags/new-checkout?context=" + HTML.urlComponent(#"{"targetingKey":"u1","email":"ann@flagpole.dev"}"#), cookie: cookie)
            #expect(evaluated.text.contains("value true, variant on, reason TARGETING_MATCH"), "the same engine as flagctl get --context")
            let badContext = try await f.get("/console/flags/color?context=" + HTML.urlComponent("{nope"), cookie: cookie)
            #expect(badContext.status == .ok && badContext.text.contains("not valid JSON"))
            #expect(try await f.get("/console/flags/no-such-flag", cookie: cookie).status == .notFound)
            #expect(try await f.get("/console/rollouts/color", cookie: cookie).status == .notFound)
            #expect(try await f.get("/console/audit?since=soon", cookie: cookie).status == .badRequest)
            // A viewer's POST, with a valid CSRF token, is refused, and nothing changes.
            let page = try await f.get("/console/flags/color", cookie: cookie)
            let csrf = try #require(ConsoleFixture.hidden("csrf", in: page.text))
            let seen = EnvironmentControl.stateFingerprint(try await f.control.store.read(flag: "color"))
            let refused = try await f.post(
                "/console/flags/color", ["csrf": csrf, "action": "disable", "reason": "r", "seen": seen, "step": "apply"], cookie: cookie)
            #expect(refused.status == .forbidden && refused.text.contains("operate"))
            #expect(try await f.control.store.read(flag: "color").override == nil)
        }
    }

    @Test("kill switch: preview, apply with the operator's name, audit; a missing CSRF token or reason is refused")
    func killSwitch() async throws {
        try await ConsoleFixture.with { f in
            let cookie = try await f.login(ConsoleTokens.operator_)
            let page = try await f.get("/console/flags/color", cookie: cookie)
            #expect(page.text.contains("Preview disable"))
            var fields = try #require(
                ConsoleFixture.form("/console/flags/color", in: page.text, containing: "value=\"disable\"", ["reason": "kill it"]))
            var noCSRF = fields
            noCSRF["csrf"] = nil
            #expect(try await f.post("/console/flags/color", noCSRF, cookie: cookie).status == .forbidden)
            var noReason = fields
            noReason["reason"] = "  "
            #expect(try await f.post("/console/flags/color", noReason, cookie: cookie).status == .badRequest)
            let preview = try await f.post("/console/flags/color", fields, cookie: cookie)
            #expect(preview.status == .ok && preview.text.contains("DISABLED") && preview.text.contains("Apply"))
            #expect(try await f.control.store.read(flag: "color").override == nil, "a preview writes nothing")
            fields = try #require(ConsoleFixture.form("/console/flags/color", in: preview.text, containing: "value=\"apply\""))
            let applied = try await f.post("/console/flags/color", fields, cookie: cookie)
            #expect(applied.status == .ok && applied.text.contains("Done"), "\(applied.text)")
            let live = try await f.control.store.read(flag: "color")
            #expect(live.override?.override == .enabled(false) && live.override?.actor == "otto" && live.override?.reason == "kill it")
            let audit = try await f.control.store.auditEntries(flag: "color", limit: 1)
            #expect(audit.first?.action == "disable" && audit.first?.actor == "otto")
            try await waitUntil("the daemon's client follows the change") { f.client.evaluate("color").reason == .disabled }
        }
    }

    @Test("a change made meanwhile is shown as a conflict and never overwritten")
    func conflict() async throws {
        try await ConsoleFixture.with { f in
            let cookie = try await f.login(ConsoleTokens.operator_)
            let page = try await f.get("/console/flags/color", cookie: cookie)
            let fields = try #require(
                ConsoleFixture.form(
                    "/console/flags/color", in: page.text, containing: "value=\"set\"", ["reason": "green please", "variant": "green"]))
            let preview = try await f.post("/console/flags/color", fields, cookie: cookie)
            let apply = try #require(ConsoleFixture.form("/console/flags/color", in: preview.text, containing: "value=\"apply\""))
            // Someone else, with flagctl, meanwhile.
            _ = try await f.control.apply(.enable(false), flag: "color", actor: "cli-user", reason: "incident")
            let conflict = try await f.post("/console/flags/color", apply, cookie: cookie)
            #expect(conflict.status == .conflict && conflict.text.contains("changed since you looked"))
            let live = try await f.control.store.read(flag: "color")
            #expect(live.override?.override == .enabled(false) && live.override?.actor == "cli-user")
            // A stale preview is a conflict too.
            #expect(try await f.post("/console/flags/color", fields, cookie: cookie).status == .conflict)
        }
    }

    @Test("production: applying needs the environment's name typed again")
    func production() async throws {
        try await ConsoleFixture.with(production: true) { f in
            let cookie = try await f.login(ConsoleTokens.operator_)
            let page = try await f.get("/console/flags/limit", cookie: cookie)
            #expect(page.text.contains("production"))
            let fields = try #require(ConsoleFixture.form("/console/flags/limit", in: page.text, containing: "value=\"disable\"", ["reason": "r"]))
            let preview = try await f.post("/console/flags/limit", fields, cookie: cookie)
            #expect(preview.text.contains("name=\"confirm\""))
            var apply = try #require(ConsoleFixture.form("/console/flags/limit", in: preview.text, containing: "value=\"apply\""))
            let unconfirmed = try await f.post("/console/flags/limit", apply, cookie: cookie)
            #expect(unconfirmed.status == .badRequest && unconfirmed.text.contains("type its name"))
            #expect(try await f.control.store.read(flag: "limit").override == nil)
            apply["confirm"] = "prod"
            #expect(try await f.post("/console/flags/limit", apply, cookie: cookie).status == .ok)
            #expect(try await f.control.store.read(flag: "limit").override?.override == .enabled(false))
        }
    }

    @Test("rollout: chart from the outcome counters, abort through the state machine, audited with the operator's name")
    func rolloutAbort() async throws {
        try await ConsoleFixture.with { f in
            _ = try await f.control.apply(.set(variant: "off"), flag: "new-checkout", actor: "ann", reason: "before")
            try await f.startFailingRollout()
            let cookie = try await f.login(ConsoleTokens.operator_)
            let page = try await f.get("/console/rollouts/new-checkout", cookie: cookie)
            #expect(page.status == .ok)
            #expect(page.text.contains("<path class=\"treatment\" d=\"M") && page.text.contains("<circle class=\"point treatment\""), "\(page.text)")
            #expect(page.text.contains("<path class=\"control\" d=\"M") && page.text.contains("class=\"ceiling\""))
            #expect(page.text.contains("step 1: 50%"), "the step boundary is marked")
            #expect(page.text.contains("33%"), "the treatment's error rate")
            let fields = try #require(
                ConsoleFixture.form(
                    "/console/rollouts/new-checkout", in: page.text, containing: "value=\"abort\"", ["reason": "<script>bad()</script>"]))
            let preview = try await f.post("/console/rollouts/new-checkout", fields, cookie: cookie)
            #expect(preview.status == .ok && preview.text.contains("variant &quot;off&quot;"), "\(preview.text)")
            let apply = try #require(ConsoleFixture.form("/console/rollouts/new-checkout", in: preview.text, containing: "value=\"apply\""))
            let done = try await f.post("/console/rollouts/new-checkout", apply, cookie: cookie)
            #expect(done.status == .ok && done.text.contains("aborted"), "\(done.text)")
            let after = try #require(try await f.control.store.rollout(flag: "new-checkout"))
            #expect(after.status == .aborted)
            #expect(try await f.control.store.read(flag: "new-checkout").override?.override == .variant("off"), "the flag is back as before")
            let audit = try await f.control.store.auditEntries(flag: "new-checkout", limit: 1)
            #expect(audit.first?.action == "rollout-abort" && audit.first?.actor == "otto" && audit.first?.reason == "<script>bad()</script>")
            let history = try await f.get("/console/audit?flag=new-checkout", cookie: cookie)
            #expect(history.text.contains("&lt;script&gt;bad()&lt;/script&gt;") && !history.text.contains("<script>bad"))
            // Aborting again is the state machine's refusal, shown.
            let again = try await f.post("/console/rollouts/new-checkout", apply, cookie: cookie)
            #expect(again.status == .conflict || again.status == .badRequest)
        }
    }

    @Test("a rollout the real watcher reverted shows its reason, its evidence and the hint that makes the files agree")
    func revertedRollout() async throws {
        try await ConsoleFixture.with { f in
            // Far above the ceiling: reverted at the watcher's first look.
            try await f.startFailingRollout()
            let watcher = try RolloutWatcher(
                configuration: .init(environment: "prod", holderID: "console-test"), client: f.control.store.client,
                metricSource: RolloutWatcher.standardMetricSources(environment: "prod", client: f.control.store.client),
                alerts: DiscardedAlerts(), logger: Logger(label: "console-tests"))
            _ = try await watcher.tick()
            let reverted = try #require(try await f.control.store.rollout(flag: "new-checkout"))
            #expect(reverted.status == .reverted)
            let cookie = try await f.login(ConsoleTokens.operator_)
            let page = try await f.get("/console/rollouts/new-checkout", cookie: cookie)
            #expect(page.status == .ok)
            #expect(page.text.contains("reverted"), "\(page.text)")
            #expect(page.text.contains("treatment error rate 33.3% is above the"), "the decision's reason: \(page.text)")
            #expect(page.text.contains("To make the files agree: "), "the reconcile hint, as flagctl status gives it: \(page.text)")
            #expect(page.text.contains("&quot;verdict&quot;: &quot;revert&quot;"), "the evidence, escaped")
            #expect(!page.text.contains("value=\"abort\""), "an ended rollout offers no abort")
        }
    }

    /// Alerts a test does not look at.
    struct DiscardedAlerts: AlertSink {
        func send(_ alert: Alert) {}
    }

    @Test("<script> in a flag key, a variant, a reason and an actor name is shown as text on every page")
    func escaping() async throws {
        try await ConsoleFixture.with { f in
            let evil = "<script>alert(1)</script>"
            _ = try await f.control.store.client.send(
                "HSET", f.control.store.layout.flags, evil,
                #"{"state":"ENABLED","variants":{"<script>alert(2)</script>":true,"off":false},"defaultVariant":"off"}"#)
            _ = try await f.control.apply(
                .set(variant: "<script>alert(2)</script>"), flag: evil, actor: "<script>alert(3)</script>", reason: "<script>alert(4)</script>")
            let cookie = try await f.login(ConsoleTokens.operator_)
            for path in ["/console", "/console/flags", "/console/flags/" + HTML.urlComponent(evil), "/console/audit"] {
                let r = try await f.get(path, cookie: cookie)
                #expect(r.status == .ok, "\(path)")
                #expect(!r.text.contains("<script>"), "\(path) carries a live <script>")
                #expect(r.text.contains("&lt;script&gt;alert("), "\(path) shows the text")
            }
        }
    }

    @Test("without tokens (loopback) the console is open, names the local actor, and still wants CSRF tokens")
    func openMode() async throws {
        try await ConsoleFixture.with(tokens: AccessTokens.none) { f in
            let page = try await f.get("/console/flags/color", cookie: nil)
            #expect(page.status == .ok && page.text.contains("local-console · operate"))
            let cookie = try #require(ConsoleFixture.setCookie(page, ConsoleServer.sessionCookie))
            let seen = EnvironmentControl.stateFingerprint(try await f.control.store.read(flag: "color"))
            // A cross-site form cannot carry the cookie (SameSite=Strict) nor the token.
            let forged = try await f.post("/console/flags/color", ["action": "disable", "reason": "x", "seen": seen, "step": "apply"], cookie: nil)
            #expect(forged.status == .forbidden)
            let noToken = try await f.post(
                "/console/flags/color", ["action": "disable", "reason": "x", "seen": seen, "step": "apply"], cookie: cookie)
            #expect(noToken.status == .forbidden)
            #expect(try await f.control.store.read(flag: "color").override == nil)
        }
    }

    @Test("without tokens beyond loopback (--allow-unauthenticated) the console only shows: no actions, a POST is refused")
    func openBeyondLoopbackIsViewOnly() async throws {
        try await ConsoleFixture.with(tokens: AccessTokens.none, openScopes: [.view]) { f in
            let page = try await f.get("/console/flags/color", cookie: nil)
            #expect(page.status == .ok && page.text.contains("local-console · view") && !page.text.contains("Preview "), "\(page.text)")
            let cookie = try #require(ConsoleFixture.setCookie(page, ConsoleServer.sessionCookie))
            let seen = EnvironmentControl.stateFingerprint(try await f.control.store.read(flag: "color"))
            let csrf = try #require(ConsoleFixture.hidden("csrf", in: page.text))
            let post = try await f.post(
                "/console/flags/color", ["action": "disable", "reason": "x", "seen": seen, "step": "apply", "csrf": csrf], cookie: cookie)
            #expect(post.status == .forbidden && post.text.contains("operate"), "\(post.text)")
            #expect(try await f.control.store.read(flag: "color").override == nil)
        }
    }

    @Test("events: a change since the page's revision comes at once; the stream ends after its lifetime")
    func events() async throws {
        try await ConsoleFixture.with(eventsLifetime: .milliseconds(300)) { f in
            let cookie = try await f.login(ConsoleTokens.viewer)
            let revision = try await f.control.store.revision()
            let r = try await f.get("/console/events?revision=\(revision - 1)", cookie: cookie)
            #expect(r.status == .ok && r.headers[.contentType] == "text/event-stream")
            #expect(r.text.contains("retry: 5000") && r.text.contains("event: change\ndata: \(revision)\n"))
            let quiet = try await f.get("/console/events?revision=\(revision)", cookie: cookie)
            #expect(!quiet.text.contains("event: change"))
        }
    }
}
