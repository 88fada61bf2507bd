import Flagpole
import FlagpoleControl
import FlagpoleCore
import FlagpoleStore
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Synchronization

/// The web console `flagctl daemon` serves under `/console`: server-rendered pages over the
/// daemon's client and Redis, and the release manager's actions, which go through the same code as
/// `flagctl` (``EnvironmentControl/apply(_:flag:actor:reason:expectedState:)`` and
/// ``EnvironmentControl/driveRollout(_:flag:actor:reason:now:expectedRollout:)``: the same
/// revision guard, audit entry, change event and alerts).
///
/// | route | what |
/// |---|---|
/// | `GET /console` | the environment's overview |
/// | `GET /console/flags`, `GET /console/flags/{key}` | the flags (search, filters), one flag (evaluate for a context) |
/// | `POST /console/flags/{key}` | kill switch, set a variant, clear the override: preview, then apply |
/// | `GET /console/rollouts`, `GET /console/rollouts/{flag}` | the rollouts, one rollout with its chart |
/// | `POST /console/rollouts/{flag}` | pause, resume, abort, promote: preview, then apply |
/// | `GET /console/audit` | the audit stream, filtered |
/// | `GET /console/login`, `POST /console/login`, `POST /console/logout` | sessions |
/// | `GET /console/events` | Server-Sent Events: `change` when the environment's revision moves |
/// | `GET /console/static/console.css`, `…/console.js` | the stylesheet and the live-refresh script |
///
/// Access: with tokens configured, nothing but the login page is served without a session; a
/// session comes from a token with the `view` or `operate` scope, and acting needs `operate`.
/// Without tokens (loopback only) every visitor gets an `operate` session named ``Configuration/openActor``.
package final class ConsoleServer: Sendable {
    /// How the console behaves.
    package struct Configuration: Sendable {
        /// How long a login lasts. Default: 12 hours.
        package var sessionLifetime: Duration = .seconds(12 * 3600)
        /// Whether the environment is production (`production: true` in the project config): every
        /// action then asks the person to type the environment's name. Default: false.
        package var isProduction = false
        /// Add `Secure` to the cookies (serve the console behind TLS). Default: false.
        package var secureCookies = false
        /// The actor of changes made without tokens (loopback only). Default: `console@<host name>`.
        package var openActor = "console@" + ProcessInfo.processInfo.hostName
        /// What a visitor may do when there are no tokens. Default: view and operate, for a daemon on
        /// loopback; a daemon told to listen beyond it without tokens (`--allow-unauthenticated`)
        /// passes `[.view]`, so that nothing changes a flag without a token there.
        package var openScopes: AccessTokens.Scope = [.view, .operate]
        /// Ask the browser to reload a live page after this long when it has no Server-Sent Events
        /// (a `<noscript>` refresh and the script's fallback). Default: 30 s.
        package var reloadFallback: Duration = .seconds(30)
        /// How often an open events stream checks the revision. Default: 1 s.
        package var eventsPoll: Duration = .seconds(1)
        /// How long one events stream stays open before the browser reconnects. Default: 10 minutes.
        package var eventsLifetime: Duration = .seconds(600)

        /// The defaults.
        package init() {}
    }

    package let configuration: Configuration
    let client: FlagpoleClient
    let control: EnvironmentControl
    let tokens: AccessTokens
    let sessions: ConsoleSessions
    let logger: Logger
    let now: @Sendable () -> Int64
    let fileCache = Mutex<FileCache?>(nil)

    /// A console over `client` (the daemon's live snapshot) and `control` (Redis reads and writes).
    ///
    /// - Parameters:
    ///   - tokens: The daemon's tokens; `view` and `operate` open the console.
    ///   - secret: The key that signs session cookies (32 or more random bytes). Default: fresh
    ///     random bytes, so a restart logs everyone out.
    ///   - now: The Unix second (tests pass their own). Default: the wall clock.
    package init(
        client: FlagpoleClient, control: EnvironmentControl, tokens: AccessTokens, configuration: Configuration = Configuration(),
        secret: [UInt8]? = nil, logger: Logger, now: @escaping @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970) }
    ) {
        self.client = client
        self.control = control
        self.tokens = tokens
        self.configuration = configuration
        var generator = SystemRandomNumberGenerator()
        self.sessions = ConsoleSessions(secret: secret ?? (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) })
        self.logger = logger
        self.now = now
    }

    var environment: String { control.environment }

    // MARK: - Routes

    /// Adds the console's routes to `router`.
    package func register(on router: Router<BasicRequestContext>) {
        router.get("/console") { [self] request, _ in await page(request) { s in try await overview(s) } }
        router.get("/console/flags") { [self] request, _ in await page(request) { s in try await flagList(s, query: query(request)) } }
        router.get("/console/flags/:key") { [self] request, context in
            let key = Self.decoded(context.parameters.get("key") ?? "")
            return await page(request) { s in try await flagPage(s, key: key, query: query(request)) }
        }
        router.post("/console/flags/:key") { [self] request, context in
            let key = Self.decoded(context.parameters.get("key") ?? "")
            return await action(request) { s, form in try await flagAction(s, key: key, form: form) }
        }
        router.get("/console/rollouts") { [self] request, _ in await page(request) { s in try await rolloutList(s) } }
        router.get("/console/rollouts/:flag") { [self] request, context in
            let flag = Self.decoded(context.parameters.get("flag") ?? "")
            return await page(request) { s in try await rolloutPage(s, flag: flag) }
        }
        router.post("/console/rollouts/:flag") { [self] request, context in
            let flag = Self.decoded(context.parameters.get("flag") ?? "")
            return await action(request) { s, form in try await rolloutAction(s, flag: flag, form: form) }
        }
        router.get("/console/audit") { [self] request, _ in await page(request) { s in try await auditPage(s, query: query(request)) } }
        router.get("/console/login") { [self] request, _ in loginPage(request, problem: nil, status: .ok) }
        router.post("/console/login") { [self] request, _ in await login(request) }
        router.post("/console/logout") { [self] request, _ in await logout(request) }
        router.get("/console/events") { [self] request, _ in events(request) }
        router.get("/console/static/console.css") { _, _ in
            Self.asset(ConsoleAssets.stylesheet, type: "text/css; charset=utf-8")
        }
        router.get("/console/static/console.js") { _, _ in
            Self.asset(ConsoleAssets.script, type: "text/javascript; charset=utf-8")
        }
    }

    // MARK: - Access

    static let sessionCookie = "flagpole_console"
    static let serverTiming = HTTPField.Name("Server-Timing")!
    static let loginCookie = "flagpole_console_login"

    /// What a request's session amounts to.
    enum Access {
        case session(ConsoleSessions.Session, setCookie: String?)
        case login
        case forbidden(String)
    }

    func access(_ request: Request) -> Access {
        if let value = Self.cookie(Self.sessionCookie, in: request.headers),
            let session = sessions.session(fromCookie: value, now: now()),
            tokens.isEnabled ? tokens.name(at: session.tokenIndex) == session.name : session.tokenIndex == -1
        {
            return session.mayView ? .session(session, setCookie: nil) : .forbidden("this token may not view the console")
        }
        guard !tokens.isEnabled else { return .login }
        // No tokens: on loopback every visitor operates; beyond it (--allow-unauthenticated) only views.
        let session = newSession(tokenIndex: -1, scopes: configuration.openScopes, name: configuration.openActor)
        return .session(session, setCookie: sessionCookieHeader(session))
    }

    func newSession(tokenIndex: Int, scopes: AccessTokens.Scope, name: String) -> ConsoleSessions.Session {
        ConsoleSessions.Session(
            id: Self.randomHex(16), tokenIndex: tokenIndex, scopes: scopes, name: name,
            expiresAt: now() + max(60, configuration.sessionLifetime.components.seconds))
    }

    func sessionCookieHeader(_ session: ConsoleSessions.Session) -> String {
        "\(Self.sessionCookie)=\(sessions.cookie(for: session)); Path=/console; HttpOnly; SameSite=Strict; Max-Age=\(max(0, session.expiresAt - now()))"
            + (configuration.secureCookies ? "; Secure" : "")
    }

    /// A page for a viewer: the login page (303) without a session, 403 without the scope.
    func page(_ request: Request, _ render: (ConsoleSessions.Session) async throws -> Rendered) async -> Response {
        switch access(request) {
        case .login:
            return Self.redirect("/console/login?next=" + HTML.urlComponent(request.uri.path + (request.uri.query.map { "?" + $0 } ?? "")))
        case .forbidden(let why):
            return message(nil, status: .forbidden, title: "Not allowed", text: why + "; grant it the scope 'view' (or 'operate') in the token file")
        case .session(let session, let setCookie):
            let start = ContinuousClock.now
            var response: Response
            do {
                response = respond(try await render(session))
            } catch {
                response = failure(session, error)
            }
            if let setCookie { response.headers.append(HTTPField(name: .setCookie, value: setCookie)) }
            // The server's time for the page (Redis reads and rendering), for the browser's developer tools and benchmarks.
            let elapsed = (ContinuousClock.now - start).components
            let ms = Double(elapsed.seconds) * 1000 + Double(elapsed.attoseconds) / 1e15
            response.headers[Self.serverTiming] = "render;dur=\((ms * 10).rounded() / 10)"
            return response
        }
    }

    /// An action: refused with 403 unless the session may operate and the form carries its CSRF token.
    func action(_ request: Request, _ act: (ConsoleSessions.Session, ConsoleForm) async throws -> Rendered) async -> Response {
        guard case .session(let session, _) = access(request) else {
            return message(
                nil, status: .forbidden, title: "Not allowed",
                text: "no console session: log in at /console/login with a token that has the scope 'operate'")
        }
        guard let body = await Self.readForm(request) else {
            return message(session, status: .contentTooLarge, title: "Too large", text: "the form is larger than 16 KiB")
        }
        guard sessions.checkCSRF(body["csrf"], for: session) else {
            return message(
                session, status: .forbidden, title: "Refused",
                text: "the form's CSRF token is missing or wrong (an old page, or a form from another site); open the page again and retry")
        }
        guard session.mayOperate else {
            return message(
                session, status: .forbidden, title: "Not allowed",
                text: "the token '\(session.name)' may only view; acting needs the scope 'operate' in the token file")
        }
        do {
            return respond(try await act(session, body))
        } catch {
            return failure(session, error)
        }
    }

    func loginPage(_ request: Request, problem: String?, status: HTTPResponse.Status) -> Response {
        let nonce = Self.cookie(Self.loginCookie, in: request.headers).flatMap { $0.count == 32 ? String($0) : nil } ?? Self.randomHex(16)
        let next = Self.safeNext(ConsoleForm(request.uri.query ?? "")["next"])
        var response = respond(
            Rendered(
                status: status, title: "Log in",
                body: ConsolePages.login(
                    environment: environment, csrf: sessions.loginToken(nonce: nonce), next: next, problem: problem, tokensEnabled: tokens.isEnabled)
            ),
            session: nil)
        response.headers.append(
            HTTPField(
                name: .setCookie,
                value: "\(Self.loginCookie)=\(nonce); Path=/console; HttpOnly; SameSite=Strict; Max-Age=3600"
                    + (configuration.secureCookies ? "; Secure" : "")))
        return response
    }

    func login(_ request: Request) async -> Response {
        guard let form = await Self.readForm(request) else {
            return loginPage(request, problem: "the form is too large", status: .contentTooLarge)
        }
        guard let nonce = Self.cookie(Self.loginCookie, in: request.headers),
            AccessTokens.constantTimeEquals((form["csrf"] ?? "").utf8, Array(sessions.loginToken(nonce: String(nonce)).utf8))
        else {
            return loginPage(request, problem: "the login form expired or came from elsewhere; log in again", status: .forbidden)
        }
        let session: ConsoleSessions.Session
        if tokens.isEnabled {
            let candidate = (form["token"] ?? "").trimmingWhitespace()
            guard !candidate.isEmpty, let match = tokens.match(candidate.utf8) else {
                logger.notice("console login refused: unknown token")
                return loginPage(request, problem: "unknown token: paste a token from the daemon's token file", status: .unauthorized)
            }
            guard !match.scopes.isDisjoint(with: [.view, .operate]) else {
                return loginPage(
                    request, problem: "the token '\(match.name)' has no console scope; grant it 'view' or 'operate' in the token file",
                    status: .forbidden)
            }
            session = newSession(tokenIndex: match.index, scopes: match.scopes, name: match.name)
        } else {
            session = newSession(tokenIndex: -1, scopes: configuration.openScopes, name: configuration.openActor)
        }
        logger.info("console login", metadata: ["flagpole.actor": "\(session.name)"])
        var response = Self.redirect(Self.safeNext(form["next"]))
        response.headers.append(HTTPField(name: .setCookie, value: sessionCookieHeader(session)))
        return response
    }

    func logout(_ request: Request) async -> Response {
        guard case .session(let session, _) = access(request), let form = await Self.readForm(request),
            sessions.checkCSRF(form["csrf"], for: session)
        else {
            return message(nil, status: .forbidden, title: "Refused", text: "log out from the console's own button")
        }
        var response = Self.redirect("/console/login")
        response.headers.append(HTTPField(name: .setCookie, value: "\(Self.sessionCookie)=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0"))
        return response
    }

    /// Where to go after logging in: a console path, never another site.
    static func safeNext(_ next: String?) -> String {
        guard let next, next.hasPrefix("/console"), !next.hasPrefix("//"), !next.contains("\\"),
            !next.unicodeScalars.contains(where: { $0.value < 0x20 })
        else { return "/console" }
        return next
    }

    // MARK: - Live refresh

    /// Server-Sent Events: `change` whenever the environment's revision moves (the daemon's client
    /// follows every change; `revision=N` names the page's, so a change since it was rendered comes at once), `tick` every `every` seconds (15 to 600, for pages whose data grows
    /// without a change, such as a rollout's chart), a comment every 15 s to keep proxies open.
    func events(_ request: Request) -> Response {
        guard case .session = access(request) else {
            return message(nil, status: .unauthorized, title: "Log in", text: "log in at /console/login")
        }
        let query = ConsoleForm(request.uri.query ?? "")
        let every = query["every"].flatMap { Int64($0) }.map { min(600, max(15, $0)) }
        // The revision the page was rendered at: a change between the render and this request is not lost.
        let seen = query["revision"].flatMap { Int64($0) }
        let client = self.client
        let poll = configuration.eventsPoll
        let lifetime = configuration.eventsLifetime
        let body = ResponseBody { writer in
            let start = ContinuousClock.now
            var revision = seen ?? client.freshness.revision
            var lastTick = ContinuousClock.now
            var lastComment = ContinuousClock.now
            try await writer.write(ByteBuffer(string: "retry: 5000\n: flagpole console events\n\n"))
            if let current = client.freshness.revision, current != revision {
                revision = current
                try await writer.write(ByteBuffer(string: "event: change\ndata: \(current)\n\n"))
            }
            while ContinuousClock.now - start < lifetime {
                try await Task.sleep(for: poll)
                let current = client.freshness.revision
                if current != revision {
                    revision = current
                    try await writer.write(ByteBuffer(string: "event: change\ndata: \(current.map(String.init) ?? "")\n\n"))
                } else if let every, ContinuousClock.now - lastTick >= .seconds(every) {
                    lastTick = .now
                    try await writer.write(ByteBuffer(string: "event: tick\ndata: \n\n"))
                } else if ContinuousClock.now - lastComment >= .seconds(15) {
                    lastComment = .now
                    try await writer.write(ByteBuffer(string: ": keep-alive\n\n"))
                }
            }
            try await writer.finish(nil)
        }
        var headers = Self.securityHeaders
        headers[.contentType] = "text/event-stream"
        return Response(status: .ok, headers: headers, body: body)
    }

    // MARK: - Responses

    /// A rendered page: its status, title and body (inside the console's frame).
    struct Rendered: Sendable {
        var status: HTTPResponse.Status = .ok
        var title: String
        var body: HTML
        /// Whether the page reloads when the environment changes (and every `tick` seconds).
        var live = false
        var tick: Int?
        var session: ConsoleSessions.Session?
    }

    func respond(_ rendered: Rendered, session: ConsoleSessions.Session? = nil) -> Response {
        let frame = ConsolePages.frame(
            title: rendered.title, environment: environment, isProduction: configuration.isProduction,
            session: rendered.session ?? session, csrf: (rendered.session ?? session).map { sessions.csrfToken(for: $0) },
            live: rendered.live, tick: rendered.tick, revision: client.freshness.revision,
            reloadSeconds: Int(configuration.reloadFallback.components.seconds), body: rendered.body)
        var headers = Self.securityHeaders
        headers[.contentType] = "text/html; charset=utf-8"
        return Response(status: rendered.status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: frame)))
    }

    func message(_ session: ConsoleSessions.Session?, status: HTTPResponse.Status, title: String, text: String) -> Response {
        respond(Rendered(status: status, title: title, body: ConsolePages.message(title: title, text: text), session: session))
    }

    /// The page for an error: a conflict (409) says what changed; a refusal (400) says why.
    func failure(_ session: ConsoleSessions.Session, _ error: any Error) -> Response {
        if let e = error as? StoreError {
            switch e.code {
            case .conflict: return message(session, status: .conflict, title: "Changed meanwhile", text: e.message)
            case .flagNotFound: return message(session, status: .notFound, title: "Not found", text: e.message)
            case .invalidInput, .pinned, .rolloutState, .frozen: return message(session, status: .badRequest, title: "Refused", text: e.message)
            default: break
            }
            logger.error("console: \(e.message)")
            return message(session, status: .serviceUnavailable, title: "Redis failed", text: e.message)
        }
        if let e = error as? ConsoleError { return message(session, status: e.status, title: e.title, text: e.message) }
        logger.error("console: \(error)")
        return message(session, status: .internalServerError, title: "Failed", text: "\(error)")
    }

    /// Sent with every console response.
    static let securityHeaders: HTTPFields = [
        HTTPField.Name("Content-Security-Policy")!:
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        HTTPField.Name("X-Content-Type-Options")!: "nosniff",
        HTTPField.Name("Referrer-Policy")!: "no-referrer",
        HTTPField.Name("X-Frame-Options")!: "DENY",
        .cacheControl: "no-store",
    ]

    static func asset(_ text: String, type: String) -> Response {
        var headers = securityHeaders
        headers[.contentType] = type
        headers[.cacheControl] = "max-age=300"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    static func redirect(_ location: String) -> Response {
        var headers = securityHeaders
        headers[.location] = location
        return Response(status: .seeOther, headers: headers)
    }

    // MARK: - Helpers

    func query(_ request: Request) -> ConsoleForm { ConsoleForm(request.uri.query ?? "") }

    static func decoded(_ raw: String) -> String {
        raw.utf8.contains(UInt8(ascii: "%")) ? ConsoleForm.decode(raw.replacingOccurrences(of: "+", with: "%2B")) : raw
    }

    /// The value of cookie `name` in the request's `Cookie` headers.
    static func cookie(_ name: String, in headers: HTTPFields) -> Substring? {
        for field in headers[values: .cookie] {
            for pair in field.split(separator: ";") {
                let trimmed = pair.drop { $0 == " " }
                if trimmed.hasPrefix(name + "=") { return trimmed.dropFirst(name.count + 1) }
            }
        }
        return nil
    }

    /// A form body (`application/x-www-form-urlencoded`), or nil past 16 KiB.
    static func readForm(_ request: Request) async -> ConsoleForm? {
        guard let bytes = await DaemonServer.readBody(request, limit: 16 * 1024) else { return nil }
        return ConsoleForm(String(decoding: bytes, as: UTF8.self))
    }

    static func randomHex(_ count: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        return ConsoleSessions.hex((0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) })
    }
}

/// A console request that cannot be answered as asked.
struct ConsoleError: Error {
    var status: HTTPResponse.Status
    var title: String
    var message: String
}
