import Flagpole
import FlagpoleCore
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Prometheus
import ServiceLifecycle
import Synchronization

/// The HTTP side of `flagctl daemon`: OFREP for any OpenFeature SDK, outcome reporting, and
/// `/healthz`, `/readyz`, `/metrics` — all answered from a ``FlagpoleClient``'s in-memory
/// snapshot, with no Redis round trip per request.
///
/// | endpoint | what |
/// |---|---|
/// | `POST /ofrep/v1/evaluate/flags/{key}` | one flag (OFREP): 200, 400, 401, 403, 404, 413 |
/// | `POST /ofrep/v1/evaluate/flags` | every flag (OFREP bulk), with an `ETag`; 304 for a matching `If-None-Match` |
/// | `POST /flagpole/v1/outcomes` | records outcomes (``OutcomeReport``) of served flags into the client's counters: 202, 400, 401, 403, 413, 415, 429 |
/// | `GET /healthz` | 200 while the process serves |
/// | `GET /readyz` | 200 once the client is ready and every ``ReadinessCheck`` passes, else 503 |
/// | `/console/…` | the web console (``ConsoleServer``), when given one |
/// | `GET /metrics` | Prometheus text: everything in ``registry`` (the client's metrics when it reports to it, the requests served, whatever else the caller registered) |
///
/// A `Service`: run it in the `ServiceGroup` that runs the client; it stops on graceful shutdown.
///
/// ```swift
/// let registry = PrometheusCollectorRegistry()
/// var configuration = FlagpoleClient.Configuration(redis: redis, environment: "prod")
/// configuration.metricsFactory = PrometheusMetricsFactory(registry: registry)  // the client's series in /metrics
/// let flags = FlagpoleClient(configuration: configuration)
/// let server = DaemonServer(client: flags, registry: registry, logger: logger)
/// let group = ServiceGroup(configuration: .init(
///     services: [flags, server], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
/// try await group.run()
/// ```
package final class DaemonServer: Sendable, Service {
    /// Where the server listens and what it accepts.
    package struct Configuration: Sendable {
        /// The address to listen on. Default: `127.0.0.1` (only this machine; `0.0.0.0` for all).
        package var host = "127.0.0.1"
        /// The TCP port; 0 picks a free one. Default: 8016 (flagd's OFREP port).
        package var port = 8016
        /// The largest request body accepted, in bytes; larger ones get 413. Default: 65,536.
        package var maxBodySize = 64 * 1024
        /// The tokens OFREP and outcome requests must carry. Default: none (no authentication),
        /// which ``run()`` allows only on a loopback address (see ``allowUnauthenticated``).
        /// `/healthz`, `/readyz` and `/metrics` never ask for one.
        package var tokens = AccessTokens.none
        /// Serve without tokens on an address other machines can reach. Default: false — the
        /// server refuses to start on such an address without tokens, since anyone who reaches it
        /// could report outcomes (the evidence the watcher reverts on). When true, the log and
        /// `/readyz` say so on every start.
        package var allowUnauthenticated = false
        /// How many outcomes each token may report (429 with `Retry-After` past it). Default:
        /// 10,000 a second, bursts of 20,000.
        package var reportRateLimit = OutcomeRateLimit()

        /// The defaults.
        package init() {}
    }

    /// The configuration the server was made with.
    package let configuration: Configuration
    /// The client whose snapshot the server evaluates.
    package let client: FlagpoleClient
    /// What `/metrics` serves: the caller's registry, with the server's own series added to it.
    package let registry: PrometheusCollectorRegistry
    let metricsRefresh: [@Sendable () -> Void]
    let readinessChecks: [ReadinessCheck]
    let logger: Logger
    let counters: RequestCounters
    private let ready: Gauge
    let metadataCache = MetadataCache()
    /// Single evaluations ``OFREPFastPath`` answered (the rest of the requests went to the router).
    let eventLoopAnswers = Atomic<Int>(0)
    let onListening: @Sendable (String, Int) async -> Void
    /// The web console under `/console`, when the daemon serves one.
    let console: ConsoleServer?
    private let boundPort = Mutex<Int?>(nil)
    private let reportBuckets: Mutex<OutcomeRateLimit.Buckets>

    /// A server for `client`.
    ///
    /// - Parameters:
    ///   - client: The client to evaluate with; run it beside the server.
    ///   - configuration: Where to listen, the body limit and the tokens.
    ///   - registry: The registry `/metrics` serves; the server adds `flagpole_ready`,
    ///     `flagpole_daemon_requests_total` and `flagpole_daemon_request_duration_seconds` to it.
    ///     Give the client a `PrometheusMetricsFactory` over the same registry (its
    ///     ``FlagpoleClient/Configuration-swift.struct/metricsFactory``) for its series. Default: a
    ///     registry of the server's own.
    ///   - metricsRefresh: Run before every `/metrics` answer, to bring values that are read rather
    ///     than counted (the watcher's "seconds since the last tick", say) up to date in the
    ///     registry. Default: none.
    ///   - readinessChecks: Extra conditions for `/readyz`. Default: none.
    ///   - console: The web console to serve under `/console`. Default: none.
    ///   - logger: Where the server logs.
    ///   - onListening: Called once the server listens, with the host and the bound port.
    package init(
        client: FlagpoleClient, configuration: Configuration = Configuration(), registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry(),
        metricsRefresh: [@Sendable () -> Void] = [], readinessChecks: [ReadinessCheck] = [], console: ConsoleServer? = nil, logger: Logger,
        onListening: @escaping @Sendable (String, Int) async -> Void = { _, _ in }
    ) {
        self.client = client
        self.configuration = configuration
        self.registry = registry
        self.metricsRefresh = metricsRefresh
        self.counters = RequestCounters(registry: registry)
        self.ready = registry.makeGauge(
            descriptor: MetricNameDescriptor(
                namespace: nil, subsystem: nil, metricName: "flagpole_ready", unitName: "", helpText: "1 when /readyz answers 200."),
            labels: [("environment", client.configuration.environment)])
        self.readinessChecks = readinessChecks
        self.logger = logger
        self.onListening = onListening
        self.console = console
        self.reportBuckets = Mutex(OutcomeRateLimit.Buckets(limit: configuration.reportRateLimit))
    }

    /// Whether `host` names this machine only: `localhost`, `127.0.0.0/8` or `::1`.
    package static func isLoopback(host: String) -> Bool {
        let h = host.lowercased().trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        if h == "localhost" || h == "::1" || h == "0:0:0:0:0:0:0:1" { return true }
        let octets = h.split(separator: ".", omittingEmptySubsequences: false)
        return octets.count == 4 && octets[0] == "127" && octets.allSatisfy { UInt8($0) != nil }
    }

    /// Why the configuration must not serve, or nil: no tokens on an address other machines can
    /// reach, unless ``Configuration/allowUnauthenticated``.
    package static func refusal(_ configuration: Configuration) -> String? {
        guard !configuration.tokens.isEnabled, !isLoopback(host: configuration.host), !configuration.allowUnauthenticated else { return nil }
        return "refusing to listen on \(configuration.host) without tokens: anyone who can reach it could report outcomes "
            + "(the evidence the rollout watcher reverts on) and read every flag. Give tokens (--tokens-file or "
            + "$FLAGPOLE_DAEMON_TOKENS), listen on 127.0.0.1, or pass --allow-unauthenticated to accept the risk"
    }

    /// Whether the server is open to other machines without tokens (allowed explicitly).
    var isOpenBeyondLoopback: Bool {
        !configuration.tokens.isEnabled && !Self.isLoopback(host: configuration.host)
    }

    /// The port the server listens on, once it does.
    package var port: Int? { boundPort.withLock { $0 } }

    /// Serves until a graceful shutdown or cancellation. Binds once the client is ready (its first
    /// data read, or its fallback after ``FlagpoleClient/Configuration/startupTimeout``), so the
    /// first request is never answered from an empty flag set.
    ///
    /// - Throws: ``DaemonServerError`` when the address cannot be bound (in use, or not this
    ///   machine's).
    package func run() async throws {
        if let refusal = Self.refusal(configuration) { throw DaemonServerError(refusal) }
        if isOpenBeyondLoopback {
            logger.warning(
                "AUTHENTICATION IS OFF on an address other machines can reach (--allow-unauthenticated): anyone who reaches it can read every flag and report outcomes that drive rollouts",
                metadata: ["flagpole.address": "\(configuration.host):\(configuration.port)"])
        }
        // Listen only once the client has its first data (from Redis, or its fallback after its
        // startup timeout): before that every flag would be answered FLAG_NOT_FOUND.
        await client.waitUntilReady(timeout: client.configuration.startupTimeout + .seconds(1))
        do {
            try await makeApplication().run()
        } catch {
            let text = "\(error)"
            let place = "\(configuration.host):\(configuration.port)"
            if text.contains("Address already in use") || text.contains("EADDRINUSE") {
                throw DaemonServerError("cannot listen on \(place): the address is in use; stop what holds it or pass another --port")
            }
            if text.contains("bind") || text.contains("Cannot assign requested address") || text.contains("resolve") {
                throw DaemonServerError("cannot listen on \(place): \(text); check --host and --port")
            }
            throw error
        }
    }

    /// The Hummingbird application (for `HummingbirdTesting`; ``run()`` runs it).
    package func makeApplication() -> some ApplicationProtocol {
        Application(
            router: makeRouter(),
            // A new handler for every connection: the closure is called per channel.
            server: .http1(configuration: .init(additionalChannelHandlers: [OFREPFastPath(server: self)])),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: nil),
            onServerRunning: { [self] channel in
                let port = channel.localAddress?.port ?? configuration.port
                boundPort.withLock { $0 = port }
                logger.info(
                    "Serving OFREP",
                    metadata: ["flagpole.address": "http://\(configuration.host):\(port)", "flagpole.auth": "\(configuration.tokens.isEnabled)"])
                await onListening(configuration.host, port)
            },
            logger: logger)
    }

    func makeRouter() -> Router<BasicRequestContext> {
        let router = Router()
        router.post("/ofrep/v1/evaluate/flags/:key") { [self] request, context in
            let start = ContinuousClock.now
            defer { counters.time(.evaluate, since: start) }
            return await evaluate(request, key: context.parameters.get("key") ?? "")
        }
        router.post("/ofrep/v1/evaluate/flags") { [self] request, _ in
            let start = ContinuousClock.now
            defer { counters.time(.bulk, since: start) }
            return await bulk(request)
        }
        router.post("/flagpole/v1/outcomes") { [self] request, _ in
            let start = ContinuousClock.now
            defer { counters.time(.outcomes, since: start) }
            return await reportOutcomes(request)
        }
        router.get("/healthz") { _, _ in
            Self.text(.ok, "ok\n")
        }
        router.get("/readyz") { [self] _, _ in
            readiness()
        }
        router.get("/metrics") { [self] _, _ in
            Self.text(.ok, prometheusText(), contentType: "text/plain; version=0.0.4; charset=utf-8")
        }
        console?.register(on: router)
        return router
    }

    // MARK: - OFREP

    func evaluate(_ request: Request, key rawKey: String) async -> Response {
        let key = Self.decodedKey(rawKey)
        if let early = earlyEvaluationAnswer(headers: request.headers, key: key) { return early.response }
        return await answerEvaluation(key: key, body: readBody(request)).response
    }

    /// The answer a single evaluation gets from its headers alone, before its body is read: 401 or
    /// 403 for a token that may not evaluate, 413 for a `Content-Length` past the limit, 415 for a
    /// body that is not JSON (counted).
    /// Nil when the body is needed: then ``answerEvaluation(key:body:)`` answers.
    func earlyEvaluationAnswer(headers: HTTPFields, key: String) -> Answer? {
        if let denied = authorize(headers, .evaluate, key: key) {
            counters.count(.evaluate, status: denied.status.code)
            return denied
        }
        if let length = headers[.contentLength].flatMap({ Int($0) }), length > configuration.maxBodySize {
            counters.count(.evaluate, status: 413)
            return tooLarge(key: key)
        }
        if let unsupported = Self.requireJSON(headers, orNone: true) {
            counters.count(.evaluate, status: 415)
            return unsupported
        }
        return nil
    }

    /// Decodes a percent-encoded key; most keys are not, and Foundation's decoding is not free.
    static func decodedKey(_ rawKey: String) -> String {
        rawKey.utf8.contains(UInt8(ascii: "%")) ? (rawKey.removingPercentEncoding ?? rawKey) : rawKey
    }

    /// One OFREP single evaluation of `key` (decoded) from the request's whole body (nil when
    /// larger than the limit), counted; for a request ``earlyEvaluationAnswer(headers:key:)``
    /// let through.
    ///
    /// Synchronous and without I/O: the Hummingbird route and ``OFREPFastPath``, which answers on
    /// the event loop that read the request, both answer with it.
    func answerEvaluation(key: String, body: [UInt8]?) -> Answer {
        let context: EvaluationContext
        switch readContext(body, .evaluate, key: key) {
        case .success(let c): context = c
        case .failure(let failure): return failure.answer
        }
        let result = client.evaluate(key, context: context, isUse: true)
        let (status, text) = OFREPCoding.single(result, metadataJSON: metadataCache.json(for: result))
        let http: HTTPResponse.Status
        switch status {
        case .ok: http = .ok
        case .badRequest: http = .badRequest
        case .notFound: http = .notFound
        }
        counters.count(.evaluate, status: http.code)
        return Self.json(http, text)
    }

    func bulk(_ request: Request) async -> Response {
        // A token that may not evaluate is refused before the body is read.
        if let denied = authorize(request.headers, .evaluate, key: nil) {
            counters.count(.bulk, status: denied.status.code)
            return denied.response
        }
        if let unsupported = Self.requireJSON(request.headers, orNone: true) {
            counters.count(.bulk, status: 415)
            return unsupported.response
        }
        let context: EvaluationContext
        switch readContext(await readBody(request), .bulk, key: nil) {
        case .success(let c): context = c
        case .failure(let failure): return failure.answer.response
        }
        // The tag needs no evaluation: a match answers 304 without evaluating anything.
        let tag = OFREPCoding.entityTag(version: client.dataVersion, context: context)
        if let ifNoneMatch = request.headers[.ifNoneMatch], OFREPCoding.matches(ifNoneMatch: ifNoneMatch, tag: tag) {
            counters.count(.bulk, status: 304)
            return Response(status: .notModified, headers: [.eTag: tag])
        }
        let evaluation = client.evaluateAll(context: context)
        // The data may have changed between the tag and the evaluation: tag what was evaluated.
        let evaluatedTag = OFREPCoding.entityTag(version: evaluation.version, context: context)
        counters.count(.bulk, status: 200)
        return Response(
            status: .ok, headers: [.contentType: "application/json", .eTag: evaluatedTag],
            body: .init(byteBuffer: ByteBuffer(string: OFREPCoding.bulk(evaluation))))
    }

    /// The context in an OFREP request's body, or the 400 / 413 answer (counted for `endpoint`).
    private func readContext(_ body: [UInt8]?, _ endpoint: RequestCounters.Endpoint, key: String?) -> Result<EvaluationContext, ResponseFailure> {
        let failure: Answer
        if let bytes = body {
            do {
                return .success(try OFREPCoding.context(fromBody: bytes))
            } catch {
                failure = Self.json(.badRequest, OFREPCoding.failure(key: key, code: .invalidContext, details: error.details))
            }
        } else {
            failure = tooLarge(key: key)
        }
        counters.count(endpoint, status: failure.status.code)
        return .failure(ResponseFailure(failure))
    }

    /// 413 for an evaluation whose body is past the limit.
    private func tooLarge(key: String?) -> Answer {
        Self.json(
            .contentTooLarge,
            OFREPCoding.failure(
                key: key, code: .general,
                details:
                    "the request body is larger than \(configuration.maxBodySize) bytes; send a smaller context (the daemon's --max-body-size sets the limit)"
            ))
    }

    // MARK: - Outcomes

    func reportOutcomes(_ request: Request) async -> Response {
        // Refused from the headers alone before the body is read.
        if let early = outcomeHeaderAnswer(request.headers) {
            counters.count(.outcomes, status: early.status.code)
            return early.response
        }
        return answerOutcomes(headers: request.headers, body: await readBody(request)).response
    }

    /// Records a report of outcomes, or refuses all of it: 401/403 without a token that may
    /// report, 415 without a JSON body, 413 past the body limit, 400 for a bad field, an unknown
    /// flag or variant, or more outcomes than one request may hold, 429 (with `Retry-After`) past
    /// the token's rate. Nothing of a refused request is recorded; an accepted one is added in
    /// one step per outcome (its `count` is never a loop). Counted in the request metrics.
    func answerOutcomes(headers: HTTPFields, body: [UInt8]?) -> Answer {
        let answer = outcomeHeaderAnswer(headers) ?? outcomeAnswer(headers: headers, body: body)
        counters.count(.outcomes, status: answer.status.code)
        return answer
    }

    /// 401/403 for a token that may not report, 415 for a body that is not JSON; nil when the
    /// body is to be read.
    private func outcomeHeaderAnswer(_ headers: HTTPFields) -> Answer? {
        authorize(headers, .report, key: nil) ?? Self.requireJSON(headers)
    }

    private func outcomeAnswer(headers: HTTPFields, body: [UInt8]?) -> Answer {
        guard let bytes = body else {
            return Self.json(
                .contentTooLarge,
                Self.errorBody("the request body is larger than \(configuration.maxBodySize) bytes; send fewer outcomes per request"))
        }
        let report: OutcomeReport
        do {
            report = try OutcomeReport(body: bytes)
        } catch {
            return Self.json(.badRequest, Self.errorBody(error.details))
        }
        let environment = client.configuration.environment
        for (index, outcome) in report.outcomes.enumerated() {
            switch client.outcomeProblem(flag: outcome.flag, variant: outcome.variant) {
            case nil:
                continue
            case .unknownFlag:
                return Self.json(
                    .badRequest,
                    Self.errorBody(
                        "outcomes[\(index)].flag: '\(outcome.flag)' is not a flag of environment '\(environment)'; report outcomes of the flags the daemon serves (nothing of this request was recorded)"
                    ))
            case .unknownVariant(let known):
                return Self.json(
                    .badRequest,
                    Self.errorBody(
                        "outcomes[\(index)].variant: '\(outcome.variant ?? "")' is not a variant of '\(outcome.flag)' (its variants: \(known.joined(separator: ", "))); send the variant the evaluation returned, or null for the code default (nothing of this request was recorded)"
                    ))
            }
        }
        let total = report.total
        let token = configuration.tokens.tokenIndex(authorization: headers[.authorization], apiKey: headers[Self.apiKey])
        let elapsed = Self.epoch.duration(to: .now).components
        let now = Double(elapsed.seconds) + Double(elapsed.attoseconds) * 1e-18
        switch reportBuckets.withLock({ $0.take(total, for: token, now: now) }) {
        case .allowed:
            break
        case .tooMany(let limit):
            return Self.json(
                .badRequest,
                Self.errorBody(
                    "this request records \(total) outcomes; one request may record at most \(limit) (the daemon's --report-rate-limit); send them in several requests"
                ))
        case .retryAfter(let seconds):
            var answer = Self.json(
                .tooManyRequests,
                Self.errorBody(
                    "this token reported more than \(configuration.reportRateLimit.perSecond) outcomes a second; retry after \(seconds) s (the daemon's --report-rate-limit sets the rate)"
                ))
            answer.headers[.retryAfter] = String(seconds)
            return answer
        }
        for outcome in report.outcomes {
            client.recordOutcomes(
                flag: outcome.flag, variant: outcome.variant, success: outcome.success, duration: outcome.duration, count: Int64(outcome.count))
        }
        return Self.json(.accepted, "{\"recorded\":\(total)}")
    }

    /// The instant the rate limiter counts seconds from.
    private static let epoch = ContinuousClock.now

    /// 415 unless the request says its body is JSON (`Content-Type: application/json`, any
    /// parameters): a browser cannot send that cross-site without a preflight, so a page the
    /// operator opens cannot post to the daemon behind their back. With `orNone` (OFREP
    /// evaluations: reads, which flagd answers with or without a body), a request without a
    /// `Content-Type` passes too; one that names another type does not.
    static func requireJSON(_ headers: HTTPFields, orNone: Bool = false) -> Answer? {
        if orNone, headers[.contentType] == nil { return nil }
        if let type = headers[.contentType] {
            let media = type.split(separator: ";", maxSplits: 1).first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
            if media == "application/json" { return nil }
        }
        return json(
            .unsupportedMediaType,
            errorBody(
                "send the request body as JSON with the header 'Content-Type: application/json' (got \(headers[.contentType].map { "'\($0)'" } ?? "none"))"
            ))
    }

    // MARK: - Health

    func readiness() -> Response {
        var lines: [String] = []
        var ready = client.isReady
        let freshness = client.freshness
        let revision = freshness.revision.map { "revision \($0)" } ?? "no revision"
        let state =
            "\(freshness.source.rawValue), \(revision)\(freshness.isInSync ? ", in sync" : ", not in sync")\(freshness.isStale ? ", STALE" : "")"
        lines.append(client.isReady ? "client: ready (\(state))" : "client: not ready (waiting for Redis; \(state))")
        if isOpenBeyondLoopback {
            lines.append(
                "auth: OFF on \(configuration.host) (--allow-unauthenticated): anyone who reaches this port can read every flag and report outcomes")
        }
        for check in readinessChecks {
            if let problem = check.check() {
                ready = false
                lines.append("\(check.name): not ready (\(problem))")
            } else {
                lines.append("\(check.name): ready")
            }
        }
        return Self.text(ready ? .ok : .serviceUnavailable, lines.joined(separator: "\n") + "\n")
    }

    /// `/metrics`: the registry's text (the Prometheus text format 0.0.4), after the refresh
    /// closures ran and `flagpole_ready` was set.
    package func prometheusText() -> String {
        for refresh in metricsRefresh { refresh() }
        ready.set(to: client.isReady && readinessChecks.allSatisfy { $0.check() == nil } ? 1.0 : 0.0)
        return registry.emitToString()
    }

    // MARK: - Helpers

    /// A whole response as values, which either transport writes: the Hummingbird route as a
    /// `Response`, ``OFREPFastPath`` as HTTP parts.
    struct Answer: Sendable {
        var status: HTTPResponse.Status
        var headers: HTTPFields
        var body: String

        var response: Response {
            Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: body)))
        }
    }

    struct ResponseFailure: Error {
        var answer: Answer
        init(_ answer: Answer) { self.answer = answer }
    }

    /// The 401 / 403 answer when a request with these headers may not do `scope`; nil when it may.
    private func authorize(_ headers: HTTPFields, _ scope: AccessTokens.Scope, key: String?) -> Answer? {
        let tokens = configuration.tokens
        guard tokens.isEnabled else { return nil }
        switch tokens.decide(authorization: headers[.authorization], apiKey: headers[Self.apiKey]) {
        case .open:
            return nil
        case .granted(let scopes) where scopes.contains(scope):
            return nil
        case .granted:
            let what = scope == .report ? "report outcomes" : "evaluate flags"
            return Self.json(
                .forbidden,
                Self.errorBody("this token may not \(what); grant it the scope '\(scope == .report ? "report" : "evaluate")' in the token file"))
        case .missing:
            var response = Self.json(
                .unauthorized, Self.errorBody("missing token: send 'Authorization: Bearer <token>' (or 'X-API-Key: <token>')"))
            response.headers[.wwwAuthenticate] = "Bearer realm=\"flagpole\""
            return response
        case .unknown:
            var response = Self.json(
                .unauthorized, Self.errorBody("unknown token: check the token the daemon was given (--tokens-file or $FLAGPOLE_DAEMON_TOKENS)"))
            response.headers[.wwwAuthenticate] = "Bearer realm=\"flagpole\", error=\"invalid_token\""
            return response
        }
    }

    /// The body, or nil when it is larger than the limit.
    private func readBody(_ request: Request) async -> [UInt8]? {
        await Self.readBody(request, limit: configuration.maxBodySize)
    }

    /// A request's body, or nil when it is (or says it is) larger than `limit` bytes; what arrived
    /// before a broken connection otherwise.
    static func readBody(_ request: Request, limit: Int) async -> [UInt8]? {
        if let length = request.headers[.contentLength].flatMap({ Int($0) }), length > limit { return nil }
        var bytes: [UInt8] = []
        do {
            for try await buffer in request.body {
                if bytes.count + buffer.readableBytes > limit { return nil }
                bytes.append(contentsOf: buffer.readableBytesView)
            }
        } catch {
            return bytes
        }
        return bytes
    }

    static let apiKey = HTTPField.Name("X-API-Key")!

    static func errorBody(_ details: String) -> String {
        var out = "{\"errorDetails\":"
        JSONValue.writeString(details, to: &out)
        return out + "}"
    }

    static func json(_ status: HTTPResponse.Status, _ body: String) -> Answer {
        Answer(status: status, headers: [.contentType: "application/json"], body: body)
    }

    static func text(_ status: HTTPResponse.Status, _ body: String, contentType: String = "text/plain; charset=utf-8") -> Response {
        Response(status: status, headers: [.contentType: contentType], body: .init(byteBuffer: ByteBuffer(string: body)))
    }
}

/// The daemon's HTTP server could not start.
package struct DaemonServerError: Error, Sendable, CustomStringConvertible {
    /// What went wrong, where, and how to fix it.
    package var message: String

    package init(_ message: String) { self.message = message }

    package var description: String { message }
}
