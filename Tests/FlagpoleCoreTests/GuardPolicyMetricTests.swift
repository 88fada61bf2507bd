import Testing

@testable import FlagpoleCore
@testable import FlagpoleRollout

/// The guard policy's metric-source fields (`metric`, `prometheusUrl`, `prometheusQuery`,
/// `prometheusRequestsQuery`) in flag metadata and in the project config, and the resolution helpers.
@Suite("Guard policy: metric source fields")
struct GuardPolicyMetricTests {
    static let query =
        #"sum(rate(errors_total{flag="$flag",cohort="$cohort"}[$window])) / sum(rate(requests_total{flag="$flag",cohort="$cohort"}[$window]))"#

    @Test("flag metadata sets the metric fields, and they override the project's, which override the built-in")
    func metadataAndLayers() throws {
        let metadata: JSONValue = [
            "rollout.metric": "prometheus", "rollout.prometheusUrl": "http://prometheus:9090",
            "rollout.prometheusQuery": .string(Self.query), "owner": "team-a",
        ]
        let own = GuardPolicy(flagMetadata: metadata)
        #expect(own.metric == .prometheus)
        #expect(own.prometheusURL == "http://prometheus:9090")
        #expect(own.prometheusQuery == Self.query)
        #expect(own.prometheusRequestsQuery == nil)

        let project = ProjectConfig(
            guardPolicy: GuardPolicy(
                maxErrorRate: 0.1, prometheusURL: "http://other:9090", prometheusRequestsQuery: "sum(increase(requests_total[$window]))"))
        let resolved = project.guardPolicy(forFlagMetadata: metadata)
        #expect(resolved.metric == .prometheus)
        #expect(resolved.prometheusURL == "http://prometheus:9090")  // the flag's wins
        #expect(resolved.prometheusRequestsQuery == "sum(increase(requests_total[$window]))")  // inherited
        #expect(resolved.maxErrorRate == 0.1)
        #expect(resolved.metricProblem == nil)

        let plain = project.guardPolicy(forFlagMetadata: nil)
        #expect(plain.metric == .builtin)
        #expect(plain.metricProblem == nil)
    }

    @Test("limits resolve unset fields from the built-in policy; the p95 ceiling is in microseconds")
    func limits() {
        #expect(GuardPolicy().limits == GuardLimits(maxErrorRate: 0.05, maxErrorIncrease: 0.01, minSamples: 200, maxP95LatencyMicros: nil))
        let p = GuardPolicy(maxErrorRate: 0.02, minSamples: 50, maxP95Latency: .milliseconds(300))
        #expect(p.limits == GuardLimits(maxErrorRate: 0.02, maxErrorIncrease: 0.01, minSamples: 50, maxP95LatencyMicros: 300_000))
        #expect(GuardPolicy().watchDuration == .seconds(3600))
        #expect(GuardPolicy(watch: .seconds(90)).watchDuration == .seconds(90))
    }

    @Test("prometheus without a URL says what is missing and where to set it; without a query it takes the default queries")
    func metricProblem() throws {
        #expect(GuardPolicy(metric: .prometheus, prometheusURL: "http://p:9090").metricProblem == nil)
        let problem = try #require(GuardPolicy(metric: .prometheus).metricProblem)
        #expect(problem.message.contains("metric prometheus needs prometheusUrl"))
        #expect(problem.hint.contains("rollout.prometheusUrl"))
        #expect(GuardPolicy.unknownPlaceholders(in: #"x{$variant_matcher,flag="$flag"}"#).isEmpty)
    }

    @Test(
        "bad values are refused with what is wrong and how to write it",
        arguments: [
            (GuardPolicy.Field.metric, JSONValue.string("datadog"), #"metric must be "builtin" or "prometheus", not "datadog""#),
            (.metric, .int(1), #"metric must be "builtin" or "prometheus", not 1"#),
            (.prometheusUrl, .string("prometheus:9090"), #"prometheusUrl must be an http:// or https:// URL, not "prometheus:9090""#),
            (.prometheusUrl, .string("http://"), "prometheusUrl must be an http:// or https:// URL, and \"http://\" names no host"),
            (
                .prometheusUrl, .string("http://p:9090/api/v1/query?query=x"),
                "prometheusUrl must be an http:// or https:// URL, without spaces, query or fragment"
            ),
            (.prometheusQuery, .string("  "), "prometheusQuery must be a PromQL query (a non-empty string)"),
            (.prometheusQuery, .string(#"rate(x{flag="$flg"}[$window])"#), #"prometheusQuery uses the unknown placeholder "$flg""#),
            (.prometheusRequestsQuery, .bool(true), "prometheusRequestsQuery must be a PromQL query (a non-empty string), not true"),
        ])
    func badValues(field: GuardPolicy.Field, value: JSONValue, message: String) throws {
        var policy = GuardPolicy()
        let found = policy.set(field, from: value)
        let problem = try #require(found)
        #expect(problem.message.hasPrefix(message), "\(problem.message)")
        #expect(!problem.hint.isEmpty)
        #expect(policy == GuardPolicy())
    }

    @Test("an unknown placeholder gets a suggestion")
    func placeholderSuggestion() throws {
        var policy = GuardPolicy()
        let found = policy.set(.prometheusQuery, from: #"x{env="$enviroment"}"#)
        let problem = try #require(found)
        #expect(problem.hint == #"did you mean "$env"?"# || problem.hint.contains("placeholders are $flag"))
        #expect(GuardPolicy.unknownPlaceholders(in: #"a{f="$flag", v="$variant", c="$cohort", e="$env"}[$window] $x $"#) == ["x"])
    }

    @Test("the engine alone knows no rollout.* vocabulary; flagctl's loading options bring the guard-policy rules")
    func rulesAreInjected() {
        let text = "flags:\n  f:\n    state: ENABLED\n    variants: {a: 1}\n    metadata: {rollout.watch: soon, rollout.wach: 1h}\n"
        #expect(FlagSetLoader.load(path: "a.yaml", text: text).diagnostics.isEmpty)
        let checked = FlagSetLoader.load(path: "a.yaml", text: text, options: .checkingGuardPolicy())
        #expect(
            checked.diagnostics.map(\.message) == [
                #"rollout.watch "soon" is not a positive duration"#, #"unknown guard-policy key "rollout.wach" is ignored"#,
            ])
        #expect(checked.diagnostics.last?.hint == #"did you mean "rollout.watch"?"#)
    }

    @Test("the validator reports bad metric fields in flag metadata at their file:line:column")
    func flagValidation() {
        let load = LoadingTestSupport.load(
            """
            flags:
              f:
                state: ENABLED
                variants: {a: 1}
                metadata:
                  rollout.metric: datadog
                  rollout.prometheusUrl: prometheus:9090
                  rollout.prometheusQuery: 'rate(x{flag="$flg"}[5m])'
                  rollout.prometheusRequestsQuery: 'sum(increase(requests_total{flag="$flag"}[$window]))'
                  rollout.prometheusQueries: x
            """)
        expectDiagnostics(
            load,
            [
                #"E 6:23 f: rollout.metric must be "builtin" or "prometheus", not "datadog""#,
                #"E 7:30 f: rollout.prometheusUrl must be an http:// or https:// URL, not "prometheus:9090""#,
                #"E 8:32 f: rollout.prometheusQuery uses the unknown placeholder "$flg""#,
                #"W 10:7 f: unknown guard-policy key "rollout.prometheusQueries" is ignored"#,
            ])
    }

    @Test("the project config's guard section takes the metric fields, reports bad ones at file:line, and warns about a missing query")
    func projectConfig() throws {
        let good = ProjectConfigLoader.load(
            path: "flags/flagpole.yaml",
            text: """
                guard:
                  metric: prometheus
                  prometheusUrl: https://prometheus.example/prom
                  prometheusQuery: 'sum(rate(e{cohort="$cohort"}[$window])) / sum(rate(r{cohort="$cohort"}[$window]))'
                  prometheusRequestsQuery: 'sum(increase(r{cohort="$cohort"}[$window]))'
                """)
        #expect(good.diagnostics.isEmpty, "\(good.diagnostics)")
        #expect(good.config.guardPolicy.metric == .prometheus)
        #expect(good.config.guardPolicy.prometheusURL == "https://prometheus.example/prom")
        #expect(good.config.guardPolicy.prometheusRequestsQuery == #"sum(increase(r{cohort="$cohort"}[$window]))"#)

        let bad = ProjectConfigLoader.load(path: "flags/flagpole.yaml", text: "guard:\n  metric: prometheus\n  prometheusUrl: 9090\n")
        #expect(
            bad.diagnostics.map(\.brief) == [
                "W 2:11 -: metric is prometheus but guard sets no prometheusUrl",
                "E 3:18 -: prometheusUrl must be an http:// or https:// URL, not 9090",
            ])
        #expect(bad.diagnostics.allSatisfy { $0.file == "flags/flagpole.yaml" && $0.hint != nil })

        let typo = ProjectConfigLoader.load(path: "flags/flagpole.yaml", text: "guard:\n  metrics: builtin\n")
        #expect(typo.diagnostics.map(\.brief) == [#"W 2:3 -: unknown guard key "metrics" is ignored"#])
        #expect(typo.diagnostics.first?.hint == #"did you mean "metric"?"#)
    }

    @Test("holdback: a percentage 0…50 in flag metadata or the guard section; outside it is an error naming the file and the flag")
    func holdback() {
        #expect(GuardPolicy(flagMetadata: ["rollout.holdback": "2%"]).holdback == 2)
        #expect(GuardPolicy(flagMetadata: ["rollout.holdback": 0.5]).holdback == 0.5)
        #expect(GuardPolicy.builtIn.holdback == 0)
        for bad: JSONValue in [60, -1, "lots", "51%", true] { #expect(GuardPolicy.holdbackPercent(bad) == nil) }
        let load = LoadingTestSupport.load(
            """
            flags:
              f:
                state: ENABLED
                variants: {a: 1}
                metadata:
                  rollout.holdback: 75%
            """)
        expectDiagnostics(load, [#"E 6:25 f: rollout.holdback must be a percentage between 0 and 50, not "75%""#])
        let config = ProjectConfigLoader.load(path: "flags/flagpole.yaml", text: "guard:\n  holdback: 60\n")
        #expect(config.diagnostics.map(\.brief) == ["E 2:13 -: holdback must be a percentage between 0 and 50, not 60"])
        #expect(config.diagnostics.allSatisfy { $0.file == "flags/flagpole.yaml" })
        #expect(ProjectConfigLoader.load(path: "flags/flagpole.yaml", text: "guard:\n  holdback: 2%\n").config.guardPolicy.holdback == 2)
    }
}
