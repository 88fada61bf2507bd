import FlagpoleCore

/// A batch of outcomes reported over HTTP (`POST /flagpole/v1/outcomes`), for applications that
/// evaluate flags over OFREP and want their errors to guard rollouts as the Swift library's do.
///
/// ```json
/// {"outcomes": [
///   {"flag": "new-checkout", "variant": "on", "success": true, "durationMs": 12.5},
///   {"flag": "new-checkout", "variant": "on", "success": false, "count": 3},
///   {"flag": "new-checkout", "variant": null, "success": true}
/// ]}
/// ```
///
/// `variant` is the variant the evaluation returned; null or absent when the code default was
/// served (no variant). `durationMs` (optional, 0 to ``maximumDurationMilliseconds``, one hour) is
/// how long the work took; `count` (optional, 1 to ``maximumCount``, default 1) records the same
/// outcome that many times, added in one step. The daemon also checks that each flag is one it
/// serves and each variant one of the flag's (``DaemonServer``), and limits outcomes per token.
package struct OutcomeReport: Sendable, Hashable {
    /// One reported outcome.
    package struct Outcome: Sendable, Hashable {
        /// The flag key.
        package var flag: String
        /// The variant served; nil for the code default.
        package var variant: String?
        /// Whether the work succeeded.
        package var success: Bool
        /// How long the work took, if measured.
        package var duration: Duration?
        /// How many times this outcome happened.
        package var count: Int

        /// An outcome from its parts.
        package init(flag: String, variant: String?, success: Bool, duration: Duration? = nil, count: Int = 1) {
            self.flag = flag
            self.variant = variant
            self.success = success
            self.duration = duration
            self.count = count
        }
    }

    /// The most outcomes one request may carry.
    package static let maximumOutcomes = 1000
    /// The largest `count` of one outcome.
    package static let maximumCount = 10_000
    /// The longest `durationMs`: one hour. A longer one is refused (400), never stored.
    package static let maximumDurationMilliseconds = 3_600_000.0

    /// The outcomes, in request order.
    package var outcomes: [Outcome]

    /// A report from its outcomes.
    package init(outcomes: [Outcome]) {
        self.outcomes = outcomes
    }

    static let shape = #"send {"outcomes": [{"flag": "KEY", "variant": "VARIANT", "success": true, "durationMs": 12.5}]}"#

    /// Reads a request body, checking every field; nothing of a bad body is recorded.
    ///
    /// - Throws: ``OFREPCoding/RequestError`` naming the first bad field (`outcomes[2].success: …`)
    ///   and what it should be.
    package init(body bytes: [UInt8]) throws(OFREPCoding.RequestError) {
        let body: JSONValue
        do {
            body = try JSONParser.parse(bytes: bytes)
        } catch {
            throw .init("the request body is not valid JSON (\(error.location): \(error.message)); \(Self.shape)")
        }
        guard case .array(let items)? = body["outcomes"], case .object = body else {
            throw .init("the request body must be an object with an array \"outcomes\"; \(Self.shape)")
        }
        guard items.count <= Self.maximumOutcomes else {
            throw .init("outcomes holds \(items.count) entries; send at most \(Self.maximumOutcomes) per request")
        }
        var outcomes: [Outcome] = []
        outcomes.reserveCapacity(items.count)
        for (index, item) in items.enumerated() {
            let at = "outcomes[\(index)]"
            guard case .object(let fields) = item else {
                throw .init("\(at): must be an object like {\"flag\": \"KEY\", \"variant\": \"VARIANT\", \"success\": true}")
            }
            if let unknown = fields.keys.sorted().first(where: { !["flag", "variant", "success", "durationMs", "count"].contains($0) }) {
                throw .init("\(at).\(unknown): unknown field; the fields are flag, variant, success, durationMs and count")
            }
            guard case .string(let flag)? = fields["flag"], !flag.isEmpty else {
                throw .init("\(at).flag: required, a non-empty string (the flag key)")
            }
            let variant: String?
            switch fields["variant"] {
            case nil, .null?: variant = nil
            case .string(let v)?: variant = v
            default: throw .init("\(at).variant: must be a string (the variant the evaluation returned) or null (the code default)")
            }
            guard case .bool(let success)? = fields["success"] else {
                throw .init("\(at).success: required, true or false")
            }
            var duration: Duration?
            switch fields["durationMs"] {
            case nil, .null?: break
            case let value?:
                guard let ms = value.numberValue, ms.isFinite, ms >= 0, ms <= Self.maximumDurationMilliseconds else {
                    throw .init("\(at).durationMs: must be a number of milliseconds from 0 to 3600000 (one hour)")
                }
                duration = .microseconds(Int64((ms * 1000).rounded()))
            }
            var count = 1
            switch fields["count"] {
            case nil, .null?: break
            case .int(let n)? where n >= 1 && n <= Int64(Self.maximumCount): count = Int(n)
            default: throw .init("\(at).count: must be an integer from 1 to \(Self.maximumCount)")
            }
            outcomes.append(Outcome(flag: flag, variant: variant, success: success, duration: duration, count: count))
        }
        self.outcomes = outcomes
    }

    /// How many outcomes the report records (counts summed).
    package var total: Int { outcomes.reduce(0) { $0.saturatingAdding($1.count) } }
}
