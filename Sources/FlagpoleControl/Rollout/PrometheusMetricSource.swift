import AsyncHTTPClient
import FlagpoleCore
import FlagpoleRedis
import FlagpoleRollout
import Foundation

/// Cohort counts from a Prometheus server: the team's own PromQL query gives a cohort's **error
/// ratio** (0…1), the way Argo Rollouts and Flagger analyse a canary.
///
/// Each query is an instant query, `GET {url}/api/v1/query?query=…&time=<to>`, after the
/// placeholders are replaced (``GuardPolicy/placeholders``):
///
/// | placeholder | replaced by |
/// |---|---|
/// | `$flag` | the flag key |
/// | `$variant` | the rollout's target variant (for the control cohort too: it is the one the control did *not* get) |
/// | `$cohort` | `treatment` or `control` |
/// | `$env` | the environment |
/// | `$window` | the window's length in seconds, e.g. `600s` (so `rate(x[$window])` at `time=to` covers the window) |
/// | `$variant_matcher` | a label matcher for the cohort's variants: `variant="on"` (treatment), `variant!="on"` (control below 100 %), `variant=~".*"` (control at 100 %) |
///
/// Values are escaped for a PromQL double-quoted string (`\` and `"`), so write placeholders
/// inside quotes: `{flag="$flag"}` (`$variant_matcher` is a whole matcher: `{flag="$flag",$variant_matcher}`).
/// The answer must be one sample: a `scalar`, or a `vector` with exactly one series, whose value
/// is a number in 0…1.
///
/// **Default queries.** Without a query of the team's own, the source asks for Flagpole's own
/// outcome series (`flagpole_outcomes_total{flag,variant,result}` and
/// `flagpole_outcome_duration_seconds_bucket`, which the client library exports through
/// swift-metrics): ``defaultErrorRatioQuery``, ``defaultRequestsQuery`` and
/// ``defaultLatencyQuery`` — the same error rates, sample counts and p95 the built-in counters give,
/// read from Prometheus instead of Redis.
///
/// **Sample counts.** The ratio alone says nothing about how many requests it stands for, and the
/// watcher needs that for its minimum sample and its statistics. With ``Configuration/requestsQuery``
/// (`--prometheus-requests-query`, guard field `prometheusRequestsQuery`) Prometheus answers that too
/// (e.g. `sum(increase(http_requests_total{…}[$window]))`); without it, the total comes from the
/// client library's outcome counters for the same cohort and window (``BuiltinMetricSource``, which
/// also gives the p95 latency), so the application must record outcomes. Failures are
/// `ratio × total`, successes the rest.
///
/// Anything else — an HTTP failure or timeout (5 s by default, a deadline for the whole exchange),
/// a non-success status (a redirect is not followed), a result that is empty, NaN, out of range or
/// made of several series — throws a ``MetricSourceError`` naming the URL (without credentials)
/// and the query, which the watcher turns into a hold. Requests go through AsyncHTTPClient, on
/// connections reused between queries; a `user:password@` in the URL is sent as Basic auth.
package struct PrometheusMetricSource: RolloutMetricSource {
    /// Where Prometheus is and what to ask it.
    package struct Configuration: Sendable {
        /// The server's base URL, e.g. `http://prometheus:9090` (a path prefix such as
        /// `https://host/prometheus` is kept); `/api/v1/query` is added.
        package var url: String
        /// The PromQL template giving a cohort's error ratio (0…1).
        package var errorRatioQuery: String
        /// The PromQL template giving a cohort's number of requests over the window; nil to take it
        /// from the client library's counters. Default: nil.
        package var requestsQuery: String?
        /// The PromQL template giving a cohort's p95 latency over the window, in seconds; nil to
        /// take it from the client library's counters when they give the sample counts, else to go
        /// without. An empty or NaN answer means "not known" (no timed outcomes), not a failure.
        /// Default: nil.
        package var latencyQuery: String?
        /// How long one query may take, connecting and reading the answer included. Default: 5 s.
        package var timeout: Duration = .seconds(5)

        /// A configuration; ``timeout`` defaults to 5 s.
        package init(
            url: String, errorRatioQuery: String, requestsQuery: String? = nil, latencyQuery: String? = nil, timeout: Duration = .seconds(5)
        ) {
            self.url = url
            self.errorRatioQuery = errorRatioQuery
            self.requestsQuery = requestsQuery
            self.latencyQuery = latencyQuery
            self.timeout = timeout
        }

        /// The default queries over Flagpole's own outcome series (``defaultErrorRatioQuery``,
        /// ``defaultRequestsQuery``, ``defaultLatencyQuery``) at `url`.
        package static func flagpoleOutcomes(url: String, timeout: Duration = .seconds(5)) -> Configuration {
            Configuration(
                url: url, errorRatioQuery: defaultErrorRatioQuery, requestsQuery: defaultRequestsQuery, latencyQuery: defaultLatencyQuery,
                timeout: timeout)
        }
    }

    /// The cohort's error ratio from the client library's outcome counters: failures over all
    /// outcomes of the flag's cohort variants in the window (no failure series counts as 0).
    package static let defaultErrorRatioQuery =
        #"(sum(increase(flagpole_outcomes_total{environment="$env",flag="$flag",$variant_matcher,result="failure"}[$window])) or vector(0))"#
        + #" / sum(increase(flagpole_outcomes_total{environment="$env",flag="$flag",$variant_matcher}[$window]))"#

    /// The cohort's number of outcomes in the window, from the client library's outcome counters.
    package static let defaultRequestsQuery =
        #"sum(increase(flagpole_outcomes_total{environment="$env",flag="$flag",$variant_matcher}[$window]))"#

    /// The cohort's p95 latency in seconds, from the client library's latency histogram (the
    /// built-in latency buckets, so it is the p95 the built-in counters give).
    package static let defaultLatencyQuery =
        #"histogram_quantile(0.95, sum by (le) (increase(flagpole_outcome_duration_seconds_bucket{environment="$env",flag="$flag",$variant_matcher}[$window])))"#

    package var name: String { "prometheus" }

    /// Where Prometheus is and what to ask it.
    package let configuration: Configuration
    /// Where sample counts come from when there is no ``Configuration/requestsQuery``.
    package let counters: (any RolloutMetricSource)?
    private let endpoint: URL
    /// Basic auth from the URL's `user:password@`, if any.
    private let authorization: String?

    /// A source asking the Prometheus at `configuration.url`.
    ///
    /// - Parameters:
    ///   - configuration: the server and the queries.
    ///   - counters: the source of sample counts (and p95) when there is no requests query,
    ///     normally a ``BuiltinMetricSource``; nil makes every query without one an error.
    /// - Throws: ``MetricSourceError`` with code `configuration` when the URL or a query is unusable.
    package init(configuration: Configuration, counters: (any RolloutMetricSource)?) throws {
        if let problem = GuardPolicy.prometheusURLProblem(configuration.url) {
            throw MetricSourceError(
                code: .configuration,
                message: "prometheus metric source: the URL must be an http:// or https:// URL, \(problem) "
                    + "(set prometheusUrl in the guard policy or --prometheus-url, e.g. http://prometheus:9090)")
        }
        var base = configuration.url
        while base.hasSuffix("/") { base.removeLast() }
        guard let withCredentials = URL(string: base + "/api/v1/query") else {
            throw MetricSourceError(
                code: .configuration, message: "prometheus metric source: \(Self.redact(configuration.url)) is not a valid URL")
        }
        let queries = [
            ("prometheusQuery", configuration.errorRatioQuery), ("prometheusRequestsQuery", configuration.requestsQuery ?? "x"),
            ("latencyQuery", configuration.latencyQuery ?? "x"),
        ]
        for (what, query) in queries {
            if query.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
                throw MetricSourceError(code: .configuration, message: "prometheus metric source: \(what) is empty; write the PromQL query")
            }
            if let unknown = GuardPolicy.unknownPlaceholders(in: query).first {
                throw MetricSourceError(
                    code: .configuration,
                    message: "prometheus metric source: \(what) uses the unknown placeholder $\(unknown); placeholders are "
                        + GuardPolicy.placeholders.map { "$" + $0 }.joined(separator: ", "))
            }
        }
        self.configuration = configuration
        self.counters = counters
        (endpoint, authorization) = ControlHTTP.splitCredentials(withCredentials)
    }

    /// The cohort's counts: the error ratio from Prometheus, the total from the requests query or
    /// the counters. See the type's documentation.
    package func counts(_ query: CohortQuery) async throws -> CohortCounts {
        // An empty window (a step that began this second, at a minute's start): no outcomes yet,
        // as the built-in counters say; PromQL refuses a `[0s]` range.
        guard query.to > query.from else { return CohortCounts() }
        let ratioQuery = Self.expand(configuration.errorRatioQuery, for: query)
        // The queries run at once, and each is awaited to its end, failed or not: none is cut off
        // mid-request (which would cost its pooled connection). The ratio's failure is reported first.
        async let ratio = Self.attempt { try await sample(ratioQuery, at: query.to) }
        async let sampleCount = Self.attempt { () async throws -> (total: Double, p95: Double?) in
            if let requests = configuration.requestsQuery {
                let requestsQuery = Self.expand(requests, for: query)
                let total = try await sample(requestsQuery, at: query.to)
                guard total >= 0 else {
                    throw error(.badResponse, requestsQuery, "gave \(total) requests; it must give a count of requests, 0 or more")
                }
                return (total, nil)
            } else if let counters {
                let c = try await counters.counts(query)
                return (c.total, c.p95LatencyMicros)
            }
            throw error(
                .configuration, ratioQuery,
                "has no way to count the cohort's requests; set prometheusRequestsQuery (--prometheus-requests-query) or record outcomes with the client library"
            )
        }
        async let latency = Self.attempt { () async throws -> Double?? in
            guard let latency = configuration.latencyQuery else { return .none }
            do {
                let seconds = try await sample(Self.expand(latency, for: query), at: query.to)
                return .some(seconds >= 0 ? seconds * 1_000_000 : nil)
            } catch let error as MetricSourceError where error.code == .badResponse && error.isNoData {
                return .some(nil)  // no timed outcomes in the window: the latency is not known
            }
        }
        let (ratioResult, countResult, latencyResult) = await (ratio, sampleCount, latency)
        let r = try ratioResult.get()
        let (total, counterP95) = try countResult.get()
        let p95: Double? = try latencyResult.get() ?? counterP95
        guard r >= 0, r <= 1 else {
            throw error(
                .badResponse, ratioQuery, "gave \(r); it must give the cohort's error ratio, between 0 and 1 (errors / requests, not a percentage)")
        }
        let failures = r * total
        return CohortCounts(successes: total - failures, failures: failures, p95LatencyMicros: p95)
    }

    /// The outcome of `body`, thrown or returned.
    private static func attempt<T: Sendable>(_ body: @Sendable () async throws -> T) async -> Result<T, any Error> {
        do { return .success(try await body()) } catch { return .failure(error) }
    }

    /// A query template with the placeholders replaced for `query`.
    package static func expand(_ template: String, for query: CohortQuery) -> String {
        let values: [String: String] = [
            "flag": query.flag, "variant": query.variant ?? "", "cohort": query.role, "env": query.environment,
            "window": "\(max(0, query.to - query.from))s", "variant_matcher": variantMatcher(query.cohort),
        ]
        var out = ""
        var scalars = template.unicodeScalars[...]
        while let dollar = scalars.firstIndex(of: "$") {
            out.unicodeScalars.append(contentsOf: scalars[..<dollar])
            let rest = scalars[scalars.index(after: dollar)...]
            let name = String(String.UnicodeScalarView(rest.prefix { $0.isASCII && ($0.properties.isAlphabetic || $0 == "_") }))
            if let value = values[name] {
                out += name == "window" || name == "variant_matcher" ? value : escape(value)
                scalars = rest.dropFirst(name.unicodeScalars.count)
            } else {
                out += "$"
                scalars = rest
            }
        }
        out.unicodeScalars.append(contentsOf: scalars)
        return out
    }

    /// The PromQL label matcher selecting a cohort's variants (`variant=""` is the code default).
    static func variantMatcher(_ cohort: CohortSelector) -> String {
        switch cohort {
        case .variant(let v): return "variant=\"\(escape(v))\""
        case .allBut(let v): return "variant!=\"\(escape(v))\""
        case .all: return #"variant=~".*""#
        }
    }

    private static func escape(_ value: String) -> String {
        var out = ""
        for c in value {
            if c == "\\" || c == "\"" { out.append("\\") }
            out.append(c)
        }
        return out
    }

    /// The URL without user and password, for messages.
    static func redact(_ url: String) -> String {
        guard let scheme = url.range(of: "://"), let at = url[scheme.upperBound...].firstIndex(of: "@") else { return url }
        let slash = url[scheme.upperBound...].firstIndex(of: "/") ?? url.endIndex
        guard at < slash else { return url }
        return String(url[..<scheme.upperBound]) + "…@" + String(url[url.index(after: at)...])
    }

    private func error(
        _ code: MetricSourceError.Code, _ promQL: String, _ what: String, underlying: (any Error)? = nil, noData: Bool = false
    ) -> MetricSourceError {
        MetricSourceError(
            code: code, message: "prometheus metric source \(Self.redact(configuration.url)): the query \(promQL) \(what)",
            underlying: noData ? NoData() : underlying)
    }

    /// The underlying error of an answer that held no usable sample (empty, NaN).
    struct NoData: Error {}

    /// Runs one instant query and returns its single sample.
    func sample(_ promQL: String, at time: Int64) async throws -> Double {
        var components = URLComponents(url: endpoint, resolvingAgainstBaseURL: false)!
        components.queryItems = [URLQueryItem(name: "query", value: promQL), URLQueryItem(name: "time", value: String(time))]
        // `+` is a space in a query string; PromQL uses it for addition.
        components.percentEncodedQuery = components.percentEncodedQuery?.replacingOccurrences(of: "+", with: "%2B")
        var request = HTTPClientRequest(url: components.url!.absoluteString)
        request.method = .GET
        request.headers.add(name: "Accept", value: "application/json")
        request.headers.add(name: "User-Agent", value: "Flagpole/\(FlagpoleVersion.current)")
        if let authorization { request.headers.add(name: "Authorization", value: authorization) }
        let answer: ControlHTTP.Answer
        do {
            answer = try await ControlHTTP.send(request, timeout: configuration.timeout)
        } catch {
            throw self.error(.http, promQL, error.description, underlying: error)
        }
        let status = answer.status
        let json = try? JSONParser.parse(bytes: answer.body)
        let prometheusError = json?["error"]?.stringValue
        guard (200..<300).contains(status) else {
            throw error(.http, promQL, "answered HTTP \(status)" + (prometheusError.map { ": \($0)" } ?? ""))
        }
        guard let json, json["status"]?.stringValue == "success", let result = json["data"]?["result"],
            let type = json["data"]?["resultType"]?.stringValue
        else {
            throw error(.badResponse, promQL, prometheusError.map { "failed: \($0)" } ?? "did not answer a Prometheus query result")
        }
        let pair: JSONValue?
        switch type {
        case "scalar":
            pair = result
        case "vector":
            guard let series = result.arrayValue, !series.isEmpty else {
                throw error(
                    .badResponse, promQL, "gave no sample (empty result): no data for this cohort and window, or labels that match nothing",
                    noData: true)
            }
            guard series.count == 1 else {
                throw error(.badResponse, promQL, "gave \(series.count) series; it must give one (aggregate it, e.g. with sum(...))")
            }
            pair = series[0]["value"]
        default:
            throw error(.badResponse, promQL, "gave a \(type); it must give a scalar or a one-series instant vector")
        }
        guard let items = pair?.arrayValue, items.count == 2, let text = items[1].stringValue, let value = Double(text) else {
            throw error(.badResponse, promQL, "gave a sample that is not a [time, \"value\"] pair")
        }
        guard value.isFinite else {
            throw error(.badResponse, promQL, "gave \(text): no requests in the window (0/0), or a ratio that is not defined", noData: true)
        }
        return value
    }
}

extension MetricSourceError {
    /// Whether Prometheus answered, but with no usable sample (an empty result, NaN).
    fileprivate var isNoData: Bool { underlying is PrometheusMetricSource.NoData }
}
