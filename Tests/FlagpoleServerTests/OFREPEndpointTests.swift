import Flagpole
import FlagpoleServer
import FlagpoleStore
import FlagpoleTesting
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Prometheus
import Synchronization
import Testing

@Suite("DaemonServer: OFREP, outcomes, health and metrics", .timeLimit(.minutes(2)))
struct OFREPEndpointTests {
    static let staff = #"{"context": {"targetingKey": "u1", "email": "ann@flagpole.dev"}}"#
    static let guest = #"{"context": {"targetingKey": "u2", "email": "bob@example.com"}}"#

    @Test("single evaluation: 200 with key, value, variant, reason and merged metadata for every type", arguments: Transport.allCases)
    func singleTypes(transport: Transport) async throws {
        try await ServerFixture.with(transport) { _, client in
            let on = try await client.post("/ofrep/v1/evaluate/flags/new-checkout", Self.staff)
            #expect(on.status == .ok)
            #expect(on.headers[.contentType] == "application/json")
            #expect(
                on.json == [
                    "key": "new-checkout", "value": true, "variant": "on", "reason": "TARGETING_MATCH",
                    "metadata": ["owner": "checkout-team", "rollout.maxErrorRate": 0.02, "version": "9", "flagSetId": "shop/prod"],
                ])
            let off = try await client.post("/ofrep/v1/evaluate/flags/new-checkout", Self.guest)
            #expect(off.json["value"] == false && off.json["variant"] == "off" && off.json["reason"] == "DEFAULT")

            let color = try await client.post("/ofrep/v1/evaluate/flags/color", Self.guest).json
            #expect(color["value"] == "#1F6FEB" && color["reason"] == "STATIC" && color["variant"] == "blue")
            // Flag-set metadata alone when the flag has none.
            #expect(color["metadata"] == ["flagSetId": "shop/prod", "version": "7"])
            let limit = try await client.post("/ofrep/v1/evaluate/flags/limit", Self.guest)
            #expect(limit.text.contains(#""value":100"#), "integers stay integers: \(limit.text)")
            let ratio = try await client.post("/ofrep/v1/evaluate/flags/ratio", Self.guest)
            #expect(ratio.text.contains(#""value":1.0"#), "floats stay floats, even integral ones: \(ratio.text)")
            let theme = try await client.post("/ofrep/v1/evaluate/flags/theme", Self.guest).json
            #expect(theme["value"] == ["bg": "#000", "sizes": [1, 2]])
        }
    }

    @Test("DISABLED and DEFAULT without a default variant: 200 without value or variant (the code default)", arguments: Transport.allCases)
    func codeDefaults(transport: Transport) async throws {
        try await ServerFixture.with(transport) { _, client in
            let disabled = try await client.post("/ofrep/v1/evaluate/flags/legacy", Self.guest)
            #expect(disabled.status == .ok)
            #expect(disabled.json["reason"] == "DISABLED" && disabled.json["value"] == nil && disabled.json["variant"] == nil)
            #expect(disabled.json["metadata"]?["flagSetId"] == "shop/prod")
            let fallback = try await client.post("/ofrep/v1/evaluate/flags/no-default", Self.guest)
            #expect(fallback.status == .ok)
            #expect(fallback.json == ["key": "no-default", "reason": "DEFAULT", "metadata": ["flagSetId": "shop/prod", "version": "7"]])
        }
    }

    @Test("unknown flag: 404 with errorCode FLAG_NOT_FOUND and the key", arguments: Transport.allCases)
    func notFound(transport: Transport) async throws {
        try await ServerFixture.with(transport) { _, client in
            let response = try await client.post("/ofrep/v1/evaluate/flags/nope", Self.guest)
            #expect(response.status == .notFound)
            #expect(response.json["key"] == "nope" && response.json["errorCode"] == "FLAG_NOT_FOUND")
            #expect(response.json["errorDetails"] == "flag 'nope' was not found")
        }
    }

    @Test("evaluation errors: 400 with PARSE_ERROR for a broken rule, GENERAL for an unknown variant", arguments: Transport.allCases)
    func evaluationErrors(transport: Transport) async throws {
        try await ServerFixture.with(transport) { _, client in
            let broken = try await client.post("/ofrep/v1/evaluate/flags/broken", Self.guest)
            #expect(broken.status == .badRequest)
            #expect(broken.json["key"] == "broken" && broken.json["errorCode"] == "PARSE_ERROR")
            #expect(broken.json["errorDetails"]?.stringValue?.isEmpty == false)
            let unknown = try await client.post("/ofrep/v1/evaluate/flags/by-tier", #"{"context": {"tier": "platinum"}}"#)
            #expect(unknown.status == .badRequest && unknown.json["errorCode"] == "GENERAL")
            let known = try await client.post("/ofrep/v1/evaluate/flags/by-tier", #"{"context": {"tier": "gold"}}"#)
            #expect(known.status == .ok && known.json["value"] == "g")
        }
    }

    @Test(
        "bad bodies: 400 INVALID_CONTEXT saying what is wrong, for single and bulk",
        arguments: [
            ("{not json", "not valid JSON"),
            ("[1, 2]", "must be a JSON object, not an array"),
            (#"{"context": "u1"}"#, "context must be a JSON object, not a string"),
            (#"{"context": {"targetingKey": 42}}"#, "context.targetingKey must be a string, not a number"),
        ], Transport.allCases)
    func badBodies(case: (body: String, message: String), transport: Transport) async throws {
        let (body, message) = `case`
        try await ServerFixture.with(transport) { _, client in
            let single = try await client.post("/ofrep/v1/evaluate/flags/color", body)
            #expect(single.status == .badRequest)
            #expect(single.json["errorCode"] == "INVALID_CONTEXT" && single.json["key"] == "color")
            #expect(single.json["errorDetails"]?.stringValue?.contains(message) == true, "\(single.text)")
            let bulk = try await client.post("/ofrep/v1/evaluate/flags", body)
            #expect(bulk.status == .badRequest && bulk.json["errorCode"] == "INVALID_CONTEXT" && bulk.json["key"] == nil)
        }
    }

    @Test("an empty body and a body without context evaluate with the empty context, as flagd does", arguments: Transport.allCases)
    func emptyContext(transport: Transport) async throws {
        try await ServerFixture.with(transport) { _, client in
            for body in [nil, "", "{}", #"{"context": null}"#] as [String?] {
                let response = try await client.post("/ofrep/v1/evaluate/flags/color", body)
                #expect(response.status == .ok && response.json["value"] == "#1F6FEB", "\(String(describing: body))")
            }
        }
    }

    @Test("a body past the limit: 413, for evaluations and outcome reports", arguments: Transport.allCases)
    func bodyLimit(transport: Transport) async throws {
        try await ServerFixture.with(transport, maxBodySize: 1024) { _, client in
            let big = #"{"context": {"targetingKey": "u1", "pad": ""# + String(repeating: "x", count: 2000) + #""}}"#
            let single = try await client.post("/ofrep/v1/evaluate/flags/color", big)
            #expect(single.status == .contentTooLarge)
            #expect(single.json["errorDetails"]?.stringValue?.contains("larger than 1024 bytes") == true)
            #expect(try await client.post("/ofrep/v1/evaluate/flags", big).status == .contentTooLarge)
            #expect(try await client.post("/flagpole/v1/outcomes", big).status == .contentTooLarge)
            // Just under the limit is fine.
            let fits = #"{"context": {"targetingKey": "u1", "pad": ""# + String(repeating: "x", count: 900) + #""}}"#
            #expect(try await client.post("/ofrep/v1/evaluate/flags/color", fits).status == .ok)
        }
    }

    @Test("a percent-encoded key is decoded", arguments: Transport.allCases)
    func encodedKey(transport: Transport) async throws {
        try await ServerFixture.with(transport) { _, client in
            let response = try await client.post("/ofrep/v1/evaluate/flags/new%2Dcheckout", Self.staff)
            #expect(response.status == .ok && response.json["key"] == "new-checkout")
        }
    }

    @Test("bearer tokens: 401 without or with an unknown token, 403 without the scope, 200 by Bearer or X-API-Key", arguments: Transport.allCases)
    func authentication(transport: Transport) async throws {
        let tokens = try AccessTokens(
            fileContents: """
                # test tokens
                reader-token-0123456789 evaluate
                full-token-abcdefghijkl
                """, path: "tokens.txt")
        try await ServerFixture.with(transport, tokens: tokens) { _, client in
            let missing = try await client.post("/ofrep/v1/evaluate/flags/color", Self.guest)
            #expect(missing.status == .unauthorized)
            #expect(missing.headers[.wwwAuthenticate]?.hasPrefix("Bearer") == true)
            #expect(missing.json["errorDetails"]?.stringValue?.contains("missing token") == true)
            let wrong = try await client.post(
                "/ofrep/v1/evaluate/flags/color", Self.guest, headers: [.authorization: "Bearer reader-token-0123456780"])
            #expect(wrong.status == .unauthorized && wrong.json["errorDetails"]?.stringValue?.contains("unknown token") == true)
            #expect(
                try await client.post("/ofrep/v1/evaluate/flags/color", Self.guest, headers: [.authorization: "Basic abc"]).status == .unauthorized)
            #expect(try await client.post("/ofrep/v1/evaluate/flags", Self.guest).status == .unauthorized)

            let reader: HTTPFields = [.authorization: "Bearer reader-token-0123456789"]
            #expect(try await client.post("/ofrep/v1/evaluate/flags/color", Self.guest, headers: reader).status == .ok)
            #expect(try await client.post("/ofrep/v1/evaluate/flags", Self.guest, headers: reader).status == .ok)
            let report = #"{"outcomes": [{"flag": "color", "variant": "blue", "success": true}]}"#
            let forbidden = try await client.post("/flagpole/v1/outcomes", report, headers: reader)
            #expect(forbidden.status == .forbidden && forbidden.json["errorDetails"]?.stringValue?.contains("report") == true)

            let apiKey = HTTPFields([HTTPField(name: HTTPField.Name("X-API-Key")!, value: "full-token-abcdefghijkl")])
            #expect(try await client.post("/ofrep/v1/evaluate/flags/color", Self.guest, headers: apiKey).status == .ok)
            #expect(
                try await client.post("/flagpole/v1/outcomes", report, headers: [.authorization: "bearer full-token-abcdefghijkl"]).status
                    == .accepted)
            // Health, readiness and metrics need no token.
            #expect(try await client.get("/healthz").status == .ok)
            #expect(try await client.get("/readyz").status == .ok)
            #expect(try await client.get("/metrics").status == .ok)
        }
    }

    @Test("bulk: every flag in key order with failures inline, flag-set metadata, and an ETag")
    func bulk() async throws {
        try await ServerFixture.with { _, client in
            let response = try await client.post("/ofrep/v1/evaluate/flags", Self.staff)
            #expect(response.status == .ok)
            let tag = try #require(response.headers[.eTag])
            #expect(tag.hasPrefix("\"") && tag.hasSuffix("\"") && tag.count == 18)
            let flags = try #require(response.json["flags"]?.arrayValue)
            #expect(
                flags.compactMap { $0["key"]?.stringValue } == [
                    "broken", "by-tier", "color", "legacy", "limit", "new-checkout", "no-default", "ratio", "theme",
                ])
            let byKey = Dictionary(uniqueKeysWithValues: flags.map { ($0["key"]!.stringValue!, $0) })
            #expect(byKey["new-checkout"]?["value"] == true && byKey["new-checkout"]?["reason"] == "TARGETING_MATCH")
            #expect(byKey["broken"]?["errorCode"] == "PARSE_ERROR" && byKey["broken"]?["value"] == nil)
            #expect(byKey["by-tier"]?["value"] == "s" && byKey["by-tier"]?["reason"] == "DEFAULT")
            #expect(byKey["legacy"]?["reason"] == "DISABLED" && byKey["legacy"]?["value"] == nil)
            #expect(byKey["no-default"]?["reason"] == "DEFAULT" && byKey["no-default"]?["value"] == nil)
            #expect(response.json["metadata"] == ["flagSetId": "shop/prod", "version": "7"])
            // A trailing slash routes the same, as in flagd.
            #expect(try await client.post("/ofrep/v1/evaluate/flags/", Self.staff).headers[.eTag] == tag)
        }
    }

    @Test("ETag: 304 without a body for a matching If-None-Match; a new tag when the context or the revision changes")
    func entityTags() async throws {
        try await ServerFixture.with { fixture, client in try await Self.checkEntityTags(fixture, client) }
    }

    static func checkEntityTags(_ fixture: ServerFixture, _ client: any TestClientProtocol) async throws {
        do {
            let first = try await client.post("/ofrep/v1/evaluate/flags", Self.staff)
            let tag = try #require(first.headers[.eTag])

            let again = try await client.post("/ofrep/v1/evaluate/flags", Self.staff, headers: [.ifNoneMatch: tag])
            #expect(again.status == .notModified)
            #expect(again.body.readableBytes == 0)
            #expect(again.headers[.eTag] == tag)
            // Weak and listed forms match too; a stale tag does not.
            #expect(
                try await client.post("/ofrep/v1/evaluate/flags", Self.staff, headers: [.ifNoneMatch: "\"0000000000000000\", W/\(tag)"]).status
                    == .notModified)
            #expect(try await client.post("/ofrep/v1/evaluate/flags", Self.staff, headers: [.ifNoneMatch: "\"0000000000000000\""]).status == .ok)

            // Another context: another tag, and the old one does not match.
            let other = try await client.post("/ofrep/v1/evaluate/flags", Self.guest, headers: [.ifNoneMatch: tag])
            #expect(other.status == .ok)
            #expect(other.headers[.eTag] != tag)
            // The same context with its keys in another order is the same context.
            let reordered = #"{"context": {"email": "ann@flagpole.dev", "targetingKey": "u1"}}"#
            #expect(try await client.post("/ofrep/v1/evaluate/flags", reordered, headers: [.ifNoneMatch: tag]).status == .notModified)

            // A change in Redis: a new revision, a new tag, the new value.
            let before = fixture.client.freshness.revision ?? 0
            _ = try await fixture.control.apply(.set(variant: "green"), flag: "color", actor: "tests", reason: "etag test")
            let flags = fixture.client
            try await waitUntil("the client applies the change") { (flags.freshness.revision ?? 0) > before }
            let changed = try await client.post("/ofrep/v1/evaluate/flags", Self.staff, headers: [.ifNoneMatch: tag])
            #expect(changed.status == .ok)
            #expect(changed.headers[.eTag] != tag)
            let color = changed.json["flags"]?.arrayValue?.first { $0["key"] == "color" }
            #expect(color?["value"] == "#2DA44E")
        }
    }

    @Test("outcomes: 202, counted per flag and variant in the same Redis counters the Swift library writes")
    func outcomes() async throws {
        try await ServerFixture.with { fixture, client in
            let report = """
                {"outcomes": [
                  {"flag": "new-checkout", "variant": "on", "success": true, "durationMs": 12.5},
                  {"flag": "new-checkout", "variant": "on", "success": false, "count": 3},
                  {"flag": "new-checkout", "variant": null, "success": true}
                ]}
                """
            let response = try await client.post("/flagpole/v1/outcomes", report)
            #expect(response.status == .accepted)
            #expect(response.json == ["recorded": 5])
            let minute = Int64(Date().timeIntervalSince1970) / 60
            try await waitUntil("the outcomes reach Redis") {
                let counts = try await fixture.control.store.outcomes(flag: "new-checkout", minutes: (minute - 1)...(minute + 1))
                return counts["on"]?.succeeded == 1 && counts["on"]?.failed == 3 && counts[nil as String?]?.succeeded == 1
            }
            let counts = try await fixture.control.store.outcomes(flag: "new-checkout", minutes: (minute - 1)...(minute + 1))
            #expect(counts["on"]?.totalMicroseconds == 12_500 && counts["on"]?.timed == 1)
        }
    }

    @Test(
        "bad outcome reports: 400 naming the field, nothing recorded",
        arguments: [
            ("{", "not valid JSON"),
            (#"{"flag": "x"}"#, "an array \"outcomes\""),
            (#"{"outcomes": [{"variant": "on", "success": true}]}"#, "outcomes[0].flag: required"),
            (#"{"outcomes": [{"flag": "a", "success": true}, {"flag": "a", "success": "yes"}]}"#, "outcomes[1].success: required, true or false"),
            (#"{"outcomes": [{"flag": "a", "variant": 3, "success": true}]}"#, "outcomes[0].variant: must be a string"),
            (#"{"outcomes": [{"flag": "a", "success": true, "durationMs": -1}]}"#, "outcomes[0].durationMs"),
            (#"{"outcomes": [{"flag": "a", "success": true, "count": 0}]}"#, "outcomes[0].count"),
            (#"{"outcomes": [{"flag": "a", "success": true, "sucess": true}]}"#, "outcomes[0].sucess: unknown field"),
        ])
    func badOutcomes(body: String, message: String) async throws {
        try await ServerFixture.with { fixture, client in
            let response = try await client.post("/flagpole/v1/outcomes", body)
            #expect(response.status == .badRequest)
            #expect(response.json["errorDetails"]?.stringValue?.contains(message) == true, "\(response.text)")
            #expect(fixture.server.prometheusText().contains(#"flagpole_daemon_requests_total{endpoint="outcomes",status="400"} 1"#))
        }
    }

    @Test(
        "/healthz, /readyz with extra checks, /metrics from one registry: the client's swift-metrics, requests, latencies, outcomes and what others registered"
    )
    func health() async throws {
        let watcherReady = ManagedFlag(false)
        let registry = PrometheusCollectorRegistry()
        let rollouts = registry.makeGauge(
            descriptor: MetricNameDescriptor(
                namespace: nil, subsystem: nil, metricName: "flagpole_watcher_rollouts", unitName: "", helpText: "A series someone else keeps."))
        try await ServerFixture.with(
            registry: registry, metricsRefresh: [{ rollouts.set(to: 2) }],
            readinessChecks: [ReadinessCheck(name: "watcher") { watcherReady.value ? nil : "no lease yet" }]
        ) { _, client in
            let health = try await client.get("/healthz")
            #expect(health.status == .ok && health.text == "ok\n")

            let notReady = try await client.get("/readyz")
            #expect(notReady.status == .serviceUnavailable)
            #expect(notReady.text.contains("client: ready (redis, revision 1, in sync)"), "\(notReady.text)")
            #expect(notReady.text.contains("watcher: not ready (no lease yet)"))
            watcherReady.value = true
            let ready = try await client.get("/readyz")
            #expect(ready.status == .ok && ready.text.contains("watcher: ready"))

            _ = try await client.post("/ofrep/v1/evaluate/flags/color", Self.guest)
            _ = try await client.post("/ofrep/v1/evaluate/flags/nope", Self.guest)
            let report = #"{"outcomes": [{"flag": "color", "variant": "green", "success": false, "durationMs": 0.3, "count": 2}]}"#
            #expect(try await client.post("/flagpole/v1/outcomes", report).status == .accepted)
            let expected = [
                #"flagpole_ready{environment="prod"} 1.0"#, #"flagpole_applied_revision{environment="prod"} 1.0"#,
                #"flagpole_in_sync{environment="prod"} 1.0"#, #"flagpole_stale{environment="prod"} 0.0"#,
                #"flagpole_source{environment="prod",source="redis"} 1.0"#, #"flagpole_source{environment="prod",source="disk"} 0.0"#,
                #"flagpole_data_age_seconds{environment="prod"} 0.0"#,
                #"flagpole_evaluations_total{environment="prod",reason="STATIC"} 1"#,
                #"flagpole_evaluations_total{environment="prod",reason="ERROR"} 1"#,
                #"flagpole_daemon_requests_total{endpoint="evaluate",status="200"} 1"#,
                #"flagpole_daemon_requests_total{endpoint="evaluate",status="404"} 1"#,
                #"flagpole_daemon_requests_total{endpoint="outcomes",status="202"} 1"#,
                #"flagpole_daemon_request_duration_seconds_count{endpoint="evaluate"} 2"#,
                // The reported outcomes, per flag and variant; the flag's other variants start at zero.
                #"flagpole_outcomes_total{environment="prod",flag="color",variant="green",result="failure"} 2"#,
                #"flagpole_outcomes_total{environment="prod",flag="color",variant="green",result="success"} 0"#,
                #"flagpole_outcomes_total{environment="prod",flag="color",variant="blue",result="failure"} 0"#,
                #"flagpole_outcome_duration_seconds_bucket{environment="prod",flag="color",variant="green",le="0.000128"} 0"#,
                #"flagpole_outcome_duration_seconds_bucket{environment="prod",flag="color",variant="green",le="0.000384"} 2"#,
                #"flagpole_outcome_duration_seconds_bucket{environment="prod",flag="color",variant="green",le="+Inf"} 2"#,
                #"flagpole_outcome_duration_seconds_count{environment="prod",flag="color",variant="green"} 2"#,
                "flagpole_watcher_rollouts 2.0",
            ]
            // The client hands its evaluation counts to swift-metrics once a second and counts
            // outcomes at its flush: wait for both.
            var metrics = try await client.get("/metrics")
            try await waitUntil("every expected series is in /metrics", timeout: .seconds(5)) {
                metrics = try await client.get("/metrics")
                return expected.allSatisfy { metrics.text.contains($0 + "\n") }
            }
            #expect(metrics.status == .ok)
            #expect(metrics.headers[.contentType]?.hasPrefix("text/plain; version=0.0.4") == true)
            for line in expected {
                #expect(metrics.text.contains(line + "\n"), "missing \(line) in\n\(metrics.text)")
            }
            #expect(metrics.text.contains("# HELP flagpole_daemon_requests_total "))
            #expect(metrics.text.contains("# TYPE flagpole_daemon_request_duration_seconds histogram\n"))
        }
    }
}

/// A Bool that tests flip while the server reads it.
final class ManagedFlag: Sendable {
    private let storage: Mutex<Bool>
    init(_ value: Bool) { storage = Mutex(value) }
    var value: Bool {
        get { storage.withLock { $0 } }
        set { storage.withLock { $0 = newValue } }
    }
}
