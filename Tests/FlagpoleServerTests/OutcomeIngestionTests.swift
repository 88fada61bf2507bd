import Flagpole
import FlagpoleServer
import FlagpoleStore
import FlagpoleTesting
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import Testing

/// Outcome reports are the evidence the watcher reverts on: a stranger, a browser page or a
/// buggy client must not be able to forge or flood them.
@Suite("Outcome ingestion: refused whole when it cannot be trusted", .timeLimit(.minutes(2)))
struct OutcomeIngestionTests {
    /// The request that forged 1,260,000 outcomes and wrapped a latency sum (20 in parallel).
    static let attack = #"{"outcomes": [{"flag": "new-checkout", "variant": "on", "success": false, "count": 10000, "durationMs": 999999999999}]}"#

    /// Every outcome key of `prod` in Redis.
    static func outcomeKeys(_ fixture: ServerFixture) async throws -> [String] {
        let reply = try await fixture.control.store.client.send("KEYS", "flagpole:{prod}:outcomes:*")
        return (reply.array ?? []).compactMap(\.string).filter { !$0.contains(":outcomes:flushed:") }.sorted()
    }

    /// Records one valid outcome of `color` and waits until it is in Redis: every flush before it
    /// has landed too, so what is in Redis then is everything the refused requests left.
    static func settle(_ fixture: ServerFixture, _ client: any TestClientProtocol) async throws {
        let marker = #"{"outcomes": [{"flag": "color", "variant": "blue", "success": true}]}"#
        #expect(try await client.post("/flagpole/v1/outcomes", marker).status == .accepted)
        let minute = Int64(Date().timeIntervalSince1970) / 60
        try await waitUntil("the marker outcome lands") {
            try await fixture.control.store.outcomes(flag: "color", minutes: (minute - 1)...(minute + 1))["blue"]?.succeeded ?? 0 >= 1
        }
    }

    @Test("the forging request, 20 at once: every one 400 naming durationMs, Redis unchanged, the daemon healthy")
    func forgedReport() async throws {
        // Through the router: 20 requests at once on the test client's one live connection would
        // only measure how it queues them.
        try await ServerFixture.with(.router) { fixture, client in
            let statuses = try await withThrowingTaskGroup(of: (HTTPResponse.Status, String).self) { group in
                for _ in 0..<20 {
                    group.addTask {
                        let r = try await client.post("/flagpole/v1/outcomes", Self.attack)
                        return (r.status, r.text)
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(statuses.allSatisfy { $0.0 == .badRequest }, "\(statuses.map(\.0))")
            #expect(statuses.allSatisfy { $0.1.contains("outcomes[0].durationMs") && $0.1.contains("one hour") }, "\(statuses[0].1)")
            try await Self.settle(fixture, client)
            #expect(try await Self.outcomeKeys(fixture).allSatisfy { !$0.hasSuffix(":new-checkout") })
            #expect(try await client.get("/readyz").status == .ok)
        }
    }

    @Test(
        "without 'Content-Type: application/json' an outcome report is 415 (a page in a browser cannot post one); an evaluation naming another type too"
    )
    func contentType() async throws {
        try await ServerFixture.with(.live) { fixture, client in
            let valid = #"{"outcomes": [{"flag": "new-checkout", "variant": "on", "success": false}]}"#
            for type in [nil, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"] as [String?] {
                var headers: HTTPFields = [:]
                if let type { headers[.contentType] = type }
                let r = try await client.execute(uri: "/flagpole/v1/outcomes", method: .post, headers: headers, body: ByteBuffer(string: valid))
                #expect(r.status == .unsupportedMediaType, "\(type ?? "none"): \(r.status)")
                #expect(r.text.contains("Content-Type: application/json"))
            }
            let charset = try await client.execute(
                uri: "/flagpole/v1/outcomes", method: .post, headers: [.contentType: "Application/JSON; charset=utf-8"],
                body: ByteBuffer(string: valid))
            #expect(charset.status == .accepted)
            for uri in ["/ofrep/v1/evaluate/flags/color", "/ofrep/v1/evaluate/flags"] {
                let r = try await client.execute(
                    uri: uri, method: .post, headers: [.contentType: "text/plain"], body: ByteBuffer(string: #"{"context": {}}"#))
                #expect(r.status == .unsupportedMediaType, "\(uri)")
            }
            #expect(fixture.server.prometheusText().contains(#"flagpole_daemon_requests_total{endpoint="outcomes",status="415"} 4"#))
        }
    }

    @Test(
        "outcomes of flags the daemon does not serve, or of variants they lack: 400 naming the entry, nothing of the request recorded",
        arguments: [
            (
                #"{"flag": "new-checkout", "variant": "on", "success": true}, {"flag": "no-such-flag", "variant": "on", "success": false}"#,
                "outcomes[1].flag: 'no-such-flag' is not a flag of environment 'prod'"
            ),
            (
                #"{"flag": "new-checkout", "variant": "purple", "success": false}"#,
                "outcomes[0].variant: 'purple' is not a variant of 'new-checkout' (its variants: off, on)"
            ),
        ])
    func unknownNames(entries: String, message: String) async throws {
        try await ServerFixture.with { fixture, client in
            let r = try await client.post("/flagpole/v1/outcomes", #"{"outcomes": ["# + entries + "]}")
            #expect(r.status == .badRequest)
            #expect(r.json["errorDetails"]?.stringValue?.contains(message) == true, "\(r.text)")
            try await Self.settle(fixture, client)
            #expect(try await Self.outcomeKeys(fixture).allSatisfy { !$0.hasSuffix(":new-checkout") && !$0.hasSuffix(":no-such-flag") })
        }
    }

    @Test("count is added in one step, exactly; the longest duration is accepted and summed without overflow")
    func countInOneStep() async throws {
        try await ServerFixture.with { fixture, client in
            let report =
                #"{"outcomes": [{"flag": "new-checkout", "variant": "on", "success": false, "count": 10000, "durationMs": 3600000}, {"flag": "new-checkout", "variant": null, "success": true, "count": 7}]}"#
            let r = try await client.post("/flagpole/v1/outcomes", report)
            #expect(r.status == .accepted && r.json == ["recorded": 10007])
            let minute = Int64(Date().timeIntervalSince1970) / 60
            try await waitUntil("the outcomes reach Redis") {
                let c = try await fixture.control.store.outcomes(flag: "new-checkout", minutes: (minute - 1)...(minute + 1))
                return c["on"]?.failed == 10_000 && c[nil as String?]?.succeeded == 7
            }
            let c = try #require(try await fixture.control.store.outcomes(flag: "new-checkout", minutes: (minute - 1)...(minute + 1))["on"])
            #expect(c.timed == 10_000 && c.totalMicroseconds == 10_000 * 3_600_000_000)
        }
    }

    @Test("past a token's rate: 429 with Retry-After, nothing recorded; more than a burst in one request: 400; each token has its own budget")
    func rateLimit() async throws {
        let tokens = try AccessTokens(fileContents: "alpha-token-0123456789 report\nbravo-token-0123456789 report\n", path: "tokens")
        try await ServerFixture.with(tokens: tokens, reportRateLimit: OutcomeRateLimit(perSecond: 100, burst: 150)) { fixture, client in
            func report(_ count: Int, token: String) async throws -> TestResponse {
                try await client.post(
                    "/flagpole/v1/outcomes", #"{"outcomes": [{"flag": "color", "variant": "green", "success": true, "count": \#(count)}]}"#,
                    headers: [.authorization: "Bearer \(token)"])
            }
            #expect(try await report(120, token: "alpha-token-0123456789").status == .accepted)
            let limited = try await report(100, token: "alpha-token-0123456789")
            #expect(limited.status == .tooManyRequests)
            let retry = try #require(limited.headers[.retryAfter].flatMap { Int($0) })
            #expect((1...2).contains(retry), "\(retry)")
            #expect(limited.text.contains("retry after"))
            #expect(try await report(100, token: "bravo-token-0123456789").status == .accepted)
            let huge = try await report(151, token: "bravo-token-0123456789")
            #expect(huge.status == .badRequest && huge.text.contains("at most 150"), "\(huge.text)")
            let minute = Int64(Date().timeIntervalSince1970) / 60
            try await waitUntil("the accepted outcomes reach Redis") {
                try await fixture.control.store.outcomes(flag: "color", minutes: (minute - 1)...(minute + 1))["green"]?.succeeded == 220
            }
            #expect(fixture.server.prometheusText().contains(#"flagpole_daemon_requests_total{endpoint="outcomes",status="429"} 1"#))
        }
    }

    @Test("the rate limiter refills at its rate up to its burst, refuses without taking, and ignores a clock that goes back")
    func rateLimiter() {
        var buckets = OutcomeRateLimit.Buckets(limit: OutcomeRateLimit(perSecond: 10, burst: 20))
        #expect(buckets.take(20, for: 0, now: 0) == .allowed)
        #expect(buckets.take(1, for: 0, now: 0) == .retryAfter(seconds: 1))
        #expect(buckets.take(16, for: 0, now: 0.5) == .retryAfter(seconds: 2))
        #expect(buckets.take(5, for: 0, now: 0.5) == .allowed)
        #expect(buckets.take(1, for: 0, now: 0.2) == .retryAfter(seconds: 1))
        #expect(buckets.take(20, for: 0, now: 100) == .allowed)
        #expect(buckets.take(20, for: nil, now: 0) == .allowed)
        #expect(buckets.take(21, for: 1, now: 0) == .tooMany(limit: 20))
        #expect(OutcomeRateLimit().burst == 20_000)
    }

    @Test("no tokens on an address other machines reach: run() refuses; loopback and tokens are fine; --allow-unauthenticated says so in /readyz")
    func unauthenticatedBind() async throws {
        for (host, loopback) in [
            ("127.0.0.1", true), ("127.8.9.10", true), ("localhost", true), ("::1", true), ("[::1]", true),
            ("0.0.0.0", false), ("::", false), ("192.0.2.7", false), ("flagpole.internal", false), ("127.0.0.1.evil", false),
        ] {
            #expect(DaemonServer.isLoopback(host: host) == loopback, "\(host)")
        }
        var configuration = DaemonServer.Configuration()
        configuration.host = "0.0.0.0"
        configuration.port = 0
        #expect(DaemonServer.refusal(configuration)?.contains("--allow-unauthenticated") == true)
        let client = FlagpoleClient(
            configuration: .init(redis: try RedisConfiguration(url: "redis://127.0.0.1:1"), environment: "prod", application: "t"))
        let server = DaemonServer(client: client, configuration: configuration, logger: Logger(label: "t"))
        await #expect(throws: DaemonServerError.self) { try await server.run() }
        var withTokens = configuration
        withTokens.tokens = try AccessTokens(tokens: ["a-token-of-16-chars"], origin: "test")
        #expect(DaemonServer.refusal(withTokens) == nil)
        var allowed = configuration
        allowed.allowUnauthenticated = true
        #expect(DaemonServer.refusal(allowed) == nil)
        let open = DaemonServer(client: client, configuration: allowed, logger: Logger(label: "t"))
        try await open.makeApplication().test(TestingSetup.router) { c in
            let ready = try await c.get("/readyz")
            #expect(ready.text.contains("auth: OFF on 0.0.0.0 (--allow-unauthenticated)"), "\(ready.text)")
        }
    }
}
