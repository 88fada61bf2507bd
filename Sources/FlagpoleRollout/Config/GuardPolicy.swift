import FlagpoleCore

/// When the watcher reverts a rollout: how long it watches each step and which limits it enforces.
///
/// Set per flag with flat scalar metadata keys (so the file stays a valid flagd file):
///
/// ```yaml
/// metadata:
///   rollout.watch: 1h
///   rollout.maxErrorRate: 0.02
///   rollout.maxErrorIncrease: 0.005
///   rollout.minSamples: 500
///   rollout.maxP95Latency: 300ms
///   rollout.steps: "5,25,50,100"
///   rollout.holdback: 2%                  # the last step keeps 2 % on the old variant while watched
///   rollout.metric: prometheus            # or builtin (the default)
///   rollout.prometheusUrl: http://prometheus:9090
///   rollout.prometheusQuery: 'sum(rate(http_errors_total{flag="$flag",variant="$variant"}[$window])) / sum(rate(http_requests_total{flag="$flag",variant="$variant"}[$window]))'
/// ```
///
/// and project-wide in the `guard` section of the project config (same names, no prefix). A flag's
/// own values win over the project's, which win over ``builtIn``.
package struct GuardPolicy: Sendable, Hashable {
    /// How long each step is watched before the watcher advances or completes. Built in: `1h`.
    package var watch: Duration?
    /// The absolute ceiling on the treatment cohort's error rate (0…1); above it the rollout is
    /// reverted at once. Built in: `0.05`.
    package var maxErrorRate: Double?
    /// How much the treatment cohort's error rate may exceed the control cohort's, as a fraction
    /// (0.01 = one percentage point). Built in: `0.01`.
    package var maxErrorIncrease: Double?
    /// The fewest outcomes in each cohort before a decision is made; fewer means "hold". Built in: `200`.
    package var minSamples: Int?
    /// The ceiling on the treatment cohort's 95th-percentile latency. Built in: none (not checked).
    package var maxP95Latency: Duration?
    /// The rollout steps in percent, increasing, each 1…100 (e.g. `[5, 25, 50, 100]`). Built in:
    /// `[100]` (all at once, then watched).
    package var steps: [Int]?
    /// The share of users, in percent (0…50), that the final step keeps on what they had before
    /// while it is watched, so that its comparison is with a concurrent control rather than the
    /// window before the rollout; released when the rollout completes. Built in: 0 (none).
    package var holdback: Double?
    /// Where the cohorts' outcomes come from. Built in: ``Metric/builtin``.
    package var metric: Metric?
    /// The Prometheus server's base URL (`http://prometheus:9090`), for ``Metric/prometheus``.
    /// Built in: none.
    package var prometheusURL: String?
    /// The PromQL query that gives one cohort's error ratio (0…1) as a single sample, for
    /// ``Metric/prometheus``; may use the ``placeholders``. Built in: none, which means the
    /// default queries over the client library's own outcome series
    /// (`flagpole_outcomes_total{flag,variant,result}`; see docs/rollouts.md).
    package var prometheusQuery: String?
    /// The PromQL query that gives one cohort's number of requests over the window, for
    /// ``Metric/prometheus``; may use the ``placeholders``. Built in: none (the sample counts come
    /// from the client library's counters for the same cohort).
    package var prometheusRequestsQuery: String?

    /// Where the watcher reads error rates from.
    package enum Metric: String, Sendable, Hashable, CaseIterable {
        /// The client library's outcome counters in Redis.
        case builtin
        /// A PromQL query against a Prometheus server (``GuardPolicy/prometheusURL``,
        /// ``GuardPolicy/prometheusQuery``).
        case prometheus
    }

    /// The placeholders a Prometheus query may use, replaced for each cohort: `$flag` (the flag
    /// key), `$variant` (the rollout's target variant), `$cohort` (`treatment` or `control`), `$env`
    /// (the environment), `$window` (the window's length in seconds, e.g. `600s`) and
    /// `$variant_matcher` (a label matcher selecting the cohort's variants: `variant="on"`,
    /// `variant!="on"`, or `variant=~".*"` for the control at 100 %).
    package static let placeholders = ["flag", "variant", "cohort", "env", "window", "variant_matcher"]

    /// The fields, by the name they have in metadata (after `rollout.`) and in the config's `guard` section.
    package enum Field: String, Sendable, Hashable, CaseIterable {
        case watch, maxErrorRate, maxErrorIncrease, minSamples, maxP95Latency, steps, holdback
        case metric, prometheusUrl, prometheusQuery, prometheusRequestsQuery
    }

    /// The prefix of guard-policy keys in flag metadata.
    package static let metadataPrefix = "rollout."

    /// Flagpole's defaults: watch `1h`, maxErrorRate `0.05`, maxErrorIncrease `0.01`, minSamples
    /// `200`, no latency ceiling, steps `[100]`, no holdback, metric `builtin`, no Prometheus settings.
    package static let builtIn = GuardPolicy(
        watch: .seconds(3600), maxErrorRate: 0.05, maxErrorIncrease: 0.01, minSamples: 200, maxP95Latency: nil,
        steps: [100], holdback: 0, metric: .builtin)

    /// Creates a policy; every field defaults to unset (inherit).
    package init(
        watch: Duration? = nil, maxErrorRate: Double? = nil, maxErrorIncrease: Double? = nil,
        minSamples: Int? = nil, maxP95Latency: Duration? = nil, steps: [Int]? = nil, holdback: Double? = nil,
        metric: Metric? = nil, prometheusURL: String? = nil, prometheusQuery: String? = nil,
        prometheusRequestsQuery: String? = nil
    ) {
        self.watch = watch
        self.maxErrorRate = maxErrorRate
        self.maxErrorIncrease = maxErrorIncrease
        self.minSamples = minSamples
        self.maxP95Latency = maxP95Latency
        self.steps = steps
        self.holdback = holdback
        self.metric = metric
        self.prometheusURL = prometheusURL
        self.prometheusQuery = prometheusQuery
        self.prometheusRequestsQuery = prometheusRequestsQuery
    }

    /// The policy a flag's metadata sets (`rollout.*` keys). Invalid values are left unset; the
    /// validator reports them.
    package init(flagMetadata: JSONValue?) {
        self.init()
        guard let metadata = flagMetadata?.objectValue else { return }
        for (key, value) in metadata where key.hasPrefix(GuardPolicy.metadataPrefix) {
            if let field = Field(rawValue: String(key.dropFirst(GuardPolicy.metadataPrefix.count))) {
                _ = set(field, from: value)
            }
        }
    }

    /// This policy with every unset field taken from `base`.
    package func overriding(_ base: GuardPolicy) -> GuardPolicy {
        GuardPolicy(
            watch: watch ?? base.watch, maxErrorRate: maxErrorRate ?? base.maxErrorRate,
            maxErrorIncrease: maxErrorIncrease ?? base.maxErrorIncrease, minSamples: minSamples ?? base.minSamples,
            maxP95Latency: maxP95Latency ?? base.maxP95Latency, steps: steps ?? base.steps, holdback: holdback ?? base.holdback,
            metric: metric ?? base.metric,
            prometheusURL: prometheusURL ?? base.prometheusURL, prometheusQuery: prometheusQuery ?? base.prometheusQuery,
            prometheusRequestsQuery: prometheusRequestsQuery ?? base.prometheusRequestsQuery)
    }

    /// The limits a step is judged by: this policy's, with unset ones from ``builtIn``
    /// (``maxP95Latency`` in microseconds, nil when not checked).
    package var limits: GuardLimits {
        let p = overriding(.builtIn)
        return GuardLimits(
            maxErrorRate: p.maxErrorRate ?? 0.05, maxErrorIncrease: p.maxErrorIncrease ?? 0.01, minSamples: p.minSamples ?? 200,
            maxP95LatencyMicros: p.maxP95Latency.map { $0.microseconds })
    }

    /// How long each step is watched: ``watch``, else ``builtIn``'s (1 h).
    package var watchDuration: Duration { watch ?? GuardPolicy.builtIn.watch ?? .seconds(3600) }

    /// What keeps this policy (resolved: flag over project over ``builtIn``) from reading its
    /// metric, or nil when it can: ``Metric/prometheus`` needs ``prometheusURL`` (without
    /// ``prometheusQuery`` it asks for the client library's own outcome series).
    package var metricProblem: Problem? {
        guard (metric ?? .builtin) == .prometheus, prometheusURL == nil else { return nil }
        return Problem(
            message: "metric prometheus needs prometheusUrl, which neither the flag's metadata nor the project config's guard section sets",
            hint:
                "set rollout.prometheusUrl in the flag's metadata or prometheusUrl in the guard section of flags/flagpole.yaml (or pass --prometheus-url)"
        )
    }

    /// What is wrong with a value, and how to write it.
    package struct Problem: Sendable, Hashable {
        /// What is wrong.
        package var message: String
        /// How to write it instead.
        package var hint: String
    }

    /// Sets a field from a JSON value, or leaves it and returns what is wrong.
    package mutating func set(_ field: Field, from value: JSONValue) -> Problem? {
        switch field {
        case .watch, .maxP95Latency:
            guard case .string(let text) = value else {
                return Problem(
                    message: "\(field.rawValue) must be a duration like \"1h\" or \"30m\", not \(MessageText.literal(value))",
                    hint: "write the unit: ms, s, m, h or d")
            }
            guard let d = DurationText.parse(text), d > .zero else {
                return Problem(
                    message: "\(field.rawValue) \"\(text)\" is not a positive duration",
                    hint: "write it like 1h, 30m, 1h30m, 90s or 250ms")
            }
            if field == .watch { watch = d } else { maxP95Latency = d }
        case .maxErrorRate, .maxErrorIncrease:
            guard let x = value.numberValue, x >= 0, x <= 1 else {
                return Problem(
                    message: "\(field.rawValue) must be a fraction between 0 and 1, not \(MessageText.literal(value))",
                    hint: "0.02 means 2%")
            }
            if field == .maxErrorRate { maxErrorRate = x } else { maxErrorIncrease = x }
        case .minSamples:
            guard let x = value.numberValue, x == x.rounded(), x >= 1, x <= Double(Int32.max) else {
                return Problem(
                    message: "minSamples must be a whole number of at least 1, not \(MessageText.literal(value))",
                    hint: "e.g. 500")
            }
            minSamples = Int(x)
        case .steps:
            var numbers: [Double] = []
            switch value {
            case .string(let text):
                for part in text.split(separator: ",") {
                    guard let n = Double(String(part).trimmingSpaces().replacing("%", with: "")) else {
                        numbers = []
                        break
                    }
                    numbers.append(n)
                }
            case .array(let items):
                numbers = items.compactMap(\.numberValue)
                if numbers.count != items.count { numbers = [] }
            default:
                break
            }
            let valid =
                !numbers.isEmpty && numbers.allSatisfy { $0 == $0.rounded() && $0 >= 1 && $0 <= 100 }
                && zip(numbers, numbers.dropFirst()).allSatisfy { $0 < $1 }
            guard valid else {
                return Problem(
                    message: "steps must be increasing percentages between 1 and 100, not \(MessageText.literal(value))",
                    hint: "e.g. \"5,25,50,100\"")
            }
            steps = numbers.map { Int($0) }
        case .holdback:
            guard let x = Self.holdbackPercent(value) else {
                return Problem(
                    message: "holdback must be a percentage between 0 and 50, not \(MessageText.literal(value))",
                    hint: "e.g. 2 or \"2%\": the share of users the last step keeps on the old variant while it is watched")
            }
            holdback = x
        case .metric:
            guard case .string(let text) = value, let m = Metric(rawValue: text) else {
                return Problem(
                    message: "metric must be \"builtin\" or \"prometheus\", not \(MessageText.literal(value))",
                    hint: "builtin reads the client library's outcome counters; prometheus runs prometheusQuery")
            }
            metric = m
        case .prometheusUrl:
            let hint = "the server's base URL, e.g. http://prometheus:9090 (Flagpole adds /api/v1/query)"
            guard case .string(let text) = value else {
                return Problem(message: "prometheusUrl must be an http:// or https:// URL, not \(MessageText.literal(value))", hint: hint)
            }
            if let problem = Self.prometheusURLProblem(text) {
                return Problem(message: "prometheusUrl must be an http:// or https:// URL, \(problem)", hint: hint)
            }
            prometheusURL = text
        case .prometheusQuery, .prometheusRequestsQuery:
            guard case .string(let text) = value, !text.trimmingSpaces().isEmpty else {
                return Problem(
                    message: "\(field.rawValue) must be a PromQL query (a non-empty string), not \(MessageText.literal(value))",
                    hint: field == .prometheusQuery
                        ? "a query giving the cohort's error ratio, e.g. sum(rate(errors_total{flag=\"$flag\",cohort=\"$cohort\"}[$window])) / sum(rate(requests_total{flag=\"$flag\",cohort=\"$cohort\"}[$window]))"
                        : "a query giving the cohort's request count, e.g. sum(increase(requests_total{flag=\"$flag\",cohort=\"$cohort\"}[$window]))")
            }
            if let unknown = Self.unknownPlaceholders(in: text).first {
                var hint = "placeholders are " + Self.placeholders.map { "$" + $0 }.joined(separator: ", ")
                if let s = MessageText.suggestion(for: unknown, among: Self.placeholders) { hint = "did you mean \"$\(s)\"?" }
                return Problem(message: "\(field.rawValue) uses the unknown placeholder \"$\(unknown)\"", hint: hint)
            }
            if field == .prometheusQuery { prometheusQuery = text } else { prometheusRequestsQuery = text }
        }
        return nil
    }

    /// A holdback in percent from `2`, `2.5`, `"2%"` or `"2"`; nil unless it is between 0 and 50.
    package static func holdbackPercent(_ value: JSONValue) -> Double? {
        var x: Double?
        switch value {
        case .int, .double: x = value.numberValue
        case .string(let text):
            var t = text.trimmingSpaces()
            if t.hasSuffix("%") { t.removeLast() }
            x = Double(t.trimmingSpaces())
        default: x = nil
        }
        guard let x, x.isFinite, x >= 0, x <= 50 else { return nil }
        return x
    }

    /// What is wrong with a Prometheus base URL (the end of a sentence "… must be an http:// or
    /// https:// URL, <problem>"), or nil.
    package static func prometheusURLProblem(_ text: String) -> String? {
        let lower = text.lowercased()
        guard let scheme = ["http://", "https://"].first(where: { lower.hasPrefix($0) }) else {
            return "not \"\(text)\""
        }
        let rest = text.dropFirst(scheme.count)
        guard let host = rest.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false).first, !host.isEmpty else {
            return "and \"\(text)\" names no host"
        }
        guard !text.contains(" "), !text.contains("?"), !text.contains("#") else {
            return "without spaces, query or fragment, not \"\(text)\""
        }
        return nil
    }

    /// The `$name` placeholders of a query that are not ``placeholders``, in order.
    package static func unknownPlaceholders(in query: String) -> [String] {
        var out: [String] = []
        var scalars = query.unicodeScalars[...]
        while let dollar = scalars.firstIndex(of: "$") {
            scalars = scalars[scalars.index(after: dollar)...]
            let name = String(String.UnicodeScalarView(scalars.prefix { $0.isASCII && ($0.properties.isAlphabetic || $0 == "_") }))
            if !name.isEmpty && !placeholders.contains(name) { out.append(name) }
        }
        return out
    }
}

extension Duration {
    /// The duration in microseconds, as a `Double`.
    fileprivate var microseconds: Double {
        let (s, a) = components
        return Double(s) * 1_000_000 + Double(a) / 1_000_000_000_000
    }
}
