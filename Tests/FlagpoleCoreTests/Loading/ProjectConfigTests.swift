import Foundation
import Testing

@testable import FlagpoleCore
@testable import FlagpoleRollout

@Suite("The project config")
struct ProjectConfigTests {
    static let full = """
        version: 1
        fractionalAlgorithm: v2
        environments:
          test: {redisUrlEnv: TEST_REDIS}
          prod:
        guard:
          watch: 90m
          maxErrorRate: 0.1
          steps: [5, 50, 100]
        freezeWindows:
          - name: weekend
            from: fri 16:00
            to: "mon 08:00"
            timezone: "+01:00"
            environments: [prod]
            reason: nobody watches
          - name: nights
            from: "22:00"
            to: "06:00"
          - name: holidays
            from: "2026-12-24T00:00:00Z"
            to: 2026-12-27T00:00:00+01:00
        alerts:
          - {name: hook, type: webhook, url: "https://hooks.example.com/x"}
          - {name: chat, type: slack, urlEnv: SLACK_URL, environments: [prod]}
          - {name: bot, type: telegram, botTokenEnv: TG_TOKEN, chatIdEnv: TG_CHAT, notify: [prod]}
        """

    @Test("every section is read")
    func full() {
        let load = ProjectConfigLoader.load(path: "flags/flagpole.yaml", text: Self.full)
        #expect(load.diagnostics.isEmpty, "\(load.diagnostics)")
        let config = load.config
        #expect(config.fractionalAlgorithm == .v2)
        #expect(config.environments == [EnvironmentConfig(name: "test", redisURLVariable: "TEST_REDIS"), EnvironmentConfig(name: "prod")])
        #expect(config.guardPolicy == GuardPolicy(watch: .seconds(5400), maxErrorRate: 0.1, steps: [5, 50, 100]))
        #expect(config.freezeWindows.map(\.name) == ["weekend", "nights", "holidays"])
        #expect(config.freezeWindows[0].schedule == .weekly(start: 4 * 1440 + 960, end: 480, zone: .fixed(3600)))
        #expect(config.freezeWindows[0].environments == ["prod"])
        #expect(config.freezeWindows[0].reason == "nobody watches")
        #expect(config.freezeWindows[1].schedule == .daily(start: 1320, end: 360, zone: .utc))
        #expect(config.freezeWindows[2].schedule == .between(start: 1_798_070_400, end: 1_798_326_000))
        #expect(
            config.alertTargets == [
                AlertTarget(name: "hook", destination: .webhook(url: .literal("https://hooks.example.com/x"))),
                AlertTarget(name: "chat", destination: .slack(url: .environmentVariable("SLACK_URL")), environments: ["prod"]),
                AlertTarget(
                    name: "bot", destination: .telegram(botToken: .environmentVariable("TG_TOKEN"), chatID: .environmentVariable("TG_CHAT")),
                    notify: ["prod"]),
            ])
        #expect(config.alertTargets[1].description == #"slack alert target "chat" (URL from $SLACK_URL)"#)
        #expect(!config.alertTargets[0].description.contains("hooks.example.com"))
        #expect(config.alertTargets(forEnvironment: "test").map(\.name) == ["hook", "bot"])
        #expect(load.environmentLocations["prod"]?.description == "flags/flagpole.yaml:5:3")
    }

    @Test("freeze windows cover the right instants")
    func freezeWindows() throws {
        let config = ProjectConfigLoader.load(path: "c.yaml", text: Self.full).config
        let weekend = config.freezeWindows[0]
        // 2026-11-27 is a Friday. 15:00Z = 16:00+01:00.
        let fridayAt1500Z: Int64 = 1_795_791_600
        #expect(!weekend.contains(unixTime: fridayAt1500Z - 1))
        #expect(weekend.contains(unixTime: fridayAt1500Z))
        #expect(weekend.contains(unixTime: fridayAt1500Z + 2 * 86_400))  // Sunday
        #expect(weekend.contains(unixTime: fridayAt1500Z + 3 * 86_400 - 8 * 3_600 - 1))  // Monday 07:59:59+01:00
        #expect(!weekend.contains(unixTime: fridayAt1500Z + 3 * 86_400 - 8 * 3_600))  // Monday 08:00+01:00
        let nights = config.freezeWindows[1]
        #expect(nights.contains(unixTime: fridayAt1500Z + 7 * 3_600))  // 22:00Z
        #expect(nights.contains(unixTime: fridayAt1500Z + 14 * 3_600))  // 05:00Z
        #expect(!nights.contains(unixTime: fridayAt1500Z + 15 * 3_600))  // 06:00Z
        #expect(config.activeFreezeWindows(environment: "test", unixTime: fridayAt1500Z + 7 * 3_600).map(\.name) == ["nights"])
        #expect(config.activeFreezeWindows(environment: "prod", unixTime: fridayAt1500Z + 7 * 3_600).map(\.name) == ["weekend", "nights"])
        let holidays = config.freezeWindows[2]
        #expect(holidays.contains(unixTime: 1_798_070_400))
        #expect(!holidays.contains(unixTime: 1_798_326_000))
    }

    @Test(
        "problems are reported where they stand",
        arguments: [
            ("fractionalAlgorithm: v1\n", [#"E 1:22 -: fractionalAlgorithm must be "v3" or "v2", not "v1""#]),
            ("version: 2\n", ["E 1:10 -: version must be 1, not 2"]),
            ("environments:\n  prod: {redisUrl: x}\n", [#"W 2:10 -: unknown environment key "redisUrl" is ignored"#]),
            ("environments:\n  \"pr{od}\": {}\n", [#"E 2:3 -: "pr{od}" cannot be an environment name"#]),
            ("environments:\n  prod: {redisUrlEnv: \"redis://x\"}\n", [#"E 2:23 -: "redis://x" is not an environment variable name"#]),
            ("freezeWindows:\n  - {name: a, from: \"fri 16:00\", to: \"2026-01-01T00:00:00Z\"}\n", ["E 2:38 -: from and to must have the same form"]),
            (
                "freezeWindows:\n  - {name: a, from: \"16:00\", to: \"18:00\", timezone: \"Mars Base\"}\n",
                ["E 2:53 -: timezone \"Mars Base\" is neither a time zone name nor a UTC offset"]
            ),
            ("freezeWindows:\n  - {name: a, from: \"frid 16:00\", to: \"sat 10:00\"}\n", [#"E 2:21 -: from "frid 16:00" is not a weekday and time"#]),
            ("freezeWindows:\n  - {from: \"16:00\", to: \"16:00\"}\n", [#"E 2:5 -: a freeze window needs "name""#]),
            // 24:00 is the next midnight: "sun 24:00" to "mon 00:00" (and "24:00" to "00:00") would be empty.
            ("freezeWindows:\n  - {name: a, from: \"sun 24:00\", to: \"mon 00:00\"}\n", ["E 2:38 -: from and to are the same time"]),
            ("freezeWindows:\n  - {name: a, from: \"24:00\", to: \"00:00\"}\n", ["E 2:34 -: from and to are the same time"]),
            (
                "freezeWindows:\n  - {name: a, from: \"2026-01-02T00:00:00Z\", to: \"2026-01-01T00:00:00Z\"}\n",
                ["E 2:49 -: to must be later than from"]
            ),
            ("alerts:\n  - {name: t, type: telegram, botTokenEnv: TOKEN}\n", [#"E 2:5 -: a telegram target needs "chatIdEnv""#]),
            ("alerts:\n  - {name: s, type: slack, url: \"https://hooks.slack.com/T/B/x\"}\n", ["W 2:33 -: a Slack webhook URL is a secret"]),
            ("alerts:\n  - {name: w, type: webhook, url: ftp://x}\n", ["E 2:35 -: url must be an http:// or https:// URL"]),
            ("alerts:\n  - {name: w, type: email, url: \"https://x.example\"}\n", [#"E 2:21 -: unknown alert type "email""#]),
            (
                "guard:\n  watch: 60\n  minSample: 5\n",
                [
                    #"W 3:3 -: unknown guard key "minSample" is ignored"#,
                    #"E 2:10 -: watch must be a duration like "1h" or "30m", not 60"#,
                ]
            ),
            ("enviroments: {}\n", [#"W 1:1 -: unknown project config key "enviroments" is ignored"#]),
            ("environments:\n  prod: {production: yes please}\n", ["E 2:22 -: production must be true or false"]),
            (
                "environments: [test, prod]\nalerts:\n  - {name: w, type: webhook, url: \"https://x.example\", notify: [prdo]}\n",
                [#"E 3:64 -: notify names environment "prdo", which is not one of the environments"#]
            ),
            (
                "alerts:\n  - {name: w, type: webhook, url: \"https://x.example\", notify: 5}\n",
                ["E 2:64 -: notify must be a list of environment names, not number"]
            ),
            (
                "alerts:\n  - {name: w, type: webhook, url: \"https://x.example\", notify: \"a b\"}\n",
                [#"E 2:64 -: notify names "a b", which is not an environment name"#]
            ),
        ])
    func problems(text: String, expected: [String]) {
        let load = ProjectConfigLoader.load(path: "flags/flagpole.yaml", text: text)
        let actual = load.diagnostics.map(\.brief)
        #expect(actual.count == expected.count, "\(actual)")
        for e in expected {
            #expect(actual.contains { $0.hasPrefix(e) }, "\(actual) lacks \(e)")
        }
    }

    @Test(
        "durations",
        arguments: [
            ("1h", Duration.seconds(3600)), ("30m", .seconds(1800)), ("1h30m", .seconds(5400)), ("90s", .seconds(90)),
            ("250ms", .milliseconds(250)), ("1.5s", .milliseconds(1500)), ("2d", .seconds(172_800)), (" 1m ", .seconds(60)),
        ])
    func durations(text: String, expected: Duration) {
        #expect(DurationText.parse(text) == expected)
        #expect(DurationText.parse(DurationText.format(expected)) == expected)
    }

    @Test("not durations", arguments: ["", "1", "h", "1x", "1.h", ".5s", "1h-2m", "99999999999999999999h"])
    func notDurations(text: String) {
        #expect(DurationText.parse(text) == nil)
    }
}
