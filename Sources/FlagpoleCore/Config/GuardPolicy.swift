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
/// ```
///
/// and project-wide in the `guard` section of the project config (same names, no prefix). A flag's
/// own values win over the project's, which win over ``builtIn``.
public struct GuardPolicy: Sendable, Hashable {
    /// How long each step is watched before the watcher advances or completes. Built in: `1h`.
    public var watch: Duration?
    /// The absolute ceiling on the treatment cohort's error rate (0…1); above it the rollout is
    /// reverted at once. Built in: `0.05`.
    public var maxErrorRate: Double?
    /// How much the treatment cohort's error rate may exceed the control cohort's, as a fraction
    /// (0.01 = one percentage point). Built in: `0.01`.
    public var maxErrorIncrease: Double?
    /// The fewest outcomes in each cohort before a decision is made; fewer means "hold". Built in: `200`.
    public var minSamples: Int?
    /// The ceiling on the treatment cohort's 95th-percentile latency. Built in: none (not checked).
    public var maxP95Latency: Duration?
    /// The rollout steps in percent, increasing, each 1…100 (e.g. `[5, 25, 50, 100]`). Built in:
    /// `[100]` (all at once, then watched).
    public var steps: [Int]?

    /// The fields, by the name they have in metadata (after `rollout.`) and in the config's `guard` section.
    public enum Field: String, Sendable, Hashable, CaseIterable {
        case watch, maxErrorRate, maxErrorIncrease, minSamples, maxP95Latency, steps
    }

    /// The prefix of guard-policy keys in flag metadata.
    public static let metadataPrefix = "rollout."

    /// Flagpole's defaults: watch `1h`, maxErrorRate `0.05`, maxErrorIncrease `0.01`, minSamples
    /// `200`, no latency ceiling, steps `[100]`.
    public static let builtIn = GuardPolicy(
        watch: .seconds(3600), maxErrorRate: 0.05, maxErrorIncrease: 0.01, minSamples: 200, maxP95Latency: nil,
        steps: [100])

    /// Creates a policy; every field defaults to unset (inherit).
    public init(
        watch: Duration? = nil, maxErrorRate: Double? = nil, maxErrorIncrease: Double? = nil,
        minSamples: Int? = nil, maxP95Latency: Duration? = nil, steps: [Int]? = nil
    ) {
        self.watch = watch
        self.maxErrorRate = maxErrorRate
        self.maxErrorIncrease = maxErrorIncrease
        self.minSamples = minSamples
        self.maxP95Latency = maxP95Latency
        self.steps = steps
    }

    /// The policy a flag's metadata sets (`rollout.*` keys). Invalid values are left unset; the
    /// validator reports them.
    public init(flagMetadata: JSONValue?) {
        self.init()
        guard let metadata = flagMetadata?.objectValue else { return }
        for (key, value) in metadata where key.hasPrefix(GuardPolicy.metadataPrefix) {
            if let field = Field(rawValue: String(key.dropFirst(GuardPolicy.metadataPrefix.count))) {
                _ = set(field, from: value)
            }
        }
    }

    /// This policy with every unset field taken from `base`.
    public func overriding(_ base: GuardPolicy) -> GuardPolicy {
        GuardPolicy(
            watch: watch ?? base.watch, maxErrorRate: maxErrorRate ?? base.maxErrorRate,
            maxErrorIncrease: maxErrorIncrease ?? base.maxErrorIncrease, minSamples: minSamples ?? base.minSamples,
            maxP95Latency: maxP95Latency ?? base.maxP95Latency, steps: steps ?? base.steps)
    }

    /// What is wrong with a value, and how to write it.
    public struct Problem: Sendable, Hashable {
        /// What is wrong.
        public var message: String
        /// How to write it instead.
        public var hint: String
    }

    /// Sets a field from a JSON value, or leaves it and returns what is wrong.
    public mutating func set(_ field: Field, from value: JSONValue) -> Problem? {
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
            let valid = !numbers.isEmpty && numbers.allSatisfy { $0 == $0.rounded() && $0 >= 1 && $0 <= 100 }
                && zip(numbers, numbers.dropFirst()).allSatisfy { $0 < $1 }
            guard valid else {
                return Problem(
                    message: "steps must be increasing percentages between 1 and 100, not \(MessageText.literal(value))",
                    hint: "e.g. \"5,25,50,100\"")
            }
            steps = numbers.map { Int($0) }
        }
        return nil
    }
}
