import FlagpoleCore

/// Synthetic outcome traffic of a flag during a rollout step, as `flagctl rollout simulate` and the
/// watcher's replay test generate it: Poisson arrivals in each cohort, each request failing at its
/// cohort's error rate — and, as real traffic does, shared incidents, a drifting baseline, heavy
/// users whose requests fail together, and outcomes recorded late. Every effect is off in
/// ``plain``; ``real`` turns each on at its default.
package struct RolloutTraffic: Sendable, Hashable {
    /// Shared incidents: for a while, every request of both cohorts fails with an extra probability.
    package struct Incidents: Sendable, Hashable {
        /// How many start an hour, at random (a Poisson process). Default: 1.
        package var perHour: Double
        /// The shortest and longest incident, drawn uniformly. Default: 1 to 5 minutes.
        package var shortest: Int64
        package var longest: Int64
        /// The lowest and highest error rate of an incident, drawn uniformly. Default: 10 % to 50 %.
        package var lowestErrorRate: Double
        package var highestErrorRate: Double
        /// When set, one more incident starts at a uniformly random second this long after the step
        /// began (seconds), so that every run has one during the step. Default: nil.
        package var oneWithin: Int64?

        /// Creates incidents; every default is stated on its property.
        package init(
            perHour: Double = 1, shortest: Int64 = 60, longest: Int64 = 300, lowestErrorRate: Double = 0.1, highestErrorRate: Double = 0.5,
            oneWithin: Int64? = nil
        ) {
            self.perHour = perHour
            self.shortest = shortest
            self.longest = longest
            self.lowestErrorRate = lowestErrorRate
            self.highestErrorRate = highestErrorRate
            self.oneWithin = oneWithin
        }
    }

    /// A baseline error rate that moves: the baseline times 1 + amplitude · sin(2π t / period + a
    /// random phase), the same absolute change in both cohorts.
    package struct Drift: Sendable, Hashable {
        /// Default: 0.5 (±50 %).
        package var amplitude: Double
        /// Seconds. Default: 7200 (from −50 % to +50 % within an hour).
        package var period: Int64

        /// Creates a drift.
        package init(amplitude: Double = 0.5, period: Int64 = 7200) {
            self.amplitude = amplitude
            self.period = period
        }
    }

    /// A few users with much of the traffic, sticky in one cohort like everyone (in the treatment
    /// with the step's probability), whose requests fail together for a while now and then.
    package struct HeavyUsers: Sendable, Hashable {
        /// Default: 3.
        package var count: Int
        /// Each one's share of the flag's requests. Default: 0.005.
        package var share: Double
        /// How many failure spells each has an hour, at random. Default: 0.5.
        package var spellsPerHour: Double
        /// The shortest and longest spell in seconds. Default: 60 to 180.
        package var shortestSpell: Int64
        package var longestSpell: Int64
        /// The share of their requests that fail during a spell. Default: 1.
        package var failingShare: Double

        /// Creates heavy users.
        package init(
            count: Int = 3, share: Double = 0.005, spellsPerHour: Double = 0.5, shortestSpell: Int64 = 60, longestSpell: Int64 = 180,
            failingShare: Double = 1
        ) {
            self.count = count
            self.share = share
            self.spellsPerHour = spellsPerHour
            self.shortestSpell = shortestSpell
            self.longestSpell = longestSpell
            self.failingShare = failingShare
        }
    }

    /// Outcomes recorded after their request: into the counters' minute of their arrival.
    package struct Lateness: Sendable, Hashable {
        /// The share of outcomes that arrive late. Default: 0.5.
        package var share: Double
        /// The longest delay in seconds, delays drawn uniformly. Default: 60.
        package var longest: Int64

        /// Creates lateness.
        package init(share: Double = 0.5, longest: Int64 = 60) {
            self.share = share
            self.longest = longest
        }
    }

    package var incidents: Incidents?
    package var drift: Drift?
    package var heavyUsers: HeavyUsers?
    package var lateness: Lateness?

    /// Creates traffic with the given effects (none by default).
    package init(incidents: Incidents? = nil, drift: Drift? = nil, heavyUsers: HeavyUsers? = nil, lateness: Lateness? = nil) {
        self.incidents = incidents
        self.drift = drift
        self.heavyUsers = heavyUsers
        self.lateness = lateness
    }

    /// Independent outcomes at constant rates.
    package static let plain = RolloutTraffic()
    /// Every effect at its defaults: an incident an hour, ±50 % drift, three heavy users, half the
    /// outcomes up to a minute late.
    package static let real = RolloutTraffic(incidents: .init(), drift: .init(), heavyUsers: .init(), lateness: .init())

    /// `plain`, or the effects joined by `+`: `incidents+drift+heavy users+late`, `incident in the step`.
    package var name: String {
        var parts: [String] = []
        if let i = incidents {
            if i.oneWithin != nil { parts.append("an incident in the step") }
            if i.perHour > 0 { parts.append("incidents") }
        }
        if drift != nil { parts.append("drift") }
        if heavyUsers != nil { parts.append("heavy users") }
        if lateness != nil { parts.append("late") }
        return parts.isEmpty ? "plain" : parts.joined(separator: "+")
    }
}

extension RolloutTraffic {
    /// A cohort of the step.
    package enum Cohort: Sendable, Hashable {
        case treatment, control
    }

    /// Outcomes of one cohort recorded in one minute.
    package struct Outcomes: Sendable, Hashable {
        package var cohort: Cohort
        /// The Unix minute they were recorded in (their arrival's).
        package var minute: Int64
        package var successes: Int
        package var failures: Int
    }

    /// One run's traffic: its incidents, drift phase, heavy users and their spells are drawn at
    /// creation; ``requests(from:to:treatmentRate:controlRate:treatmentErrorRate:controlErrorRate:baselineErrorRate:)``
    /// draws the outcomes of a span, ``arrived(before:)`` hands them over as they are recorded.
    package struct Run: Sendable {
        package let traffic: RolloutTraffic
        var random: SimulationRandom
        var incidents: [(from: Int64, to: Int64, rate: Double)] = []
        var phase = 0.0
        var heavy: [(inTreatment: Bool, spells: [(from: Int64, to: Int64)])] = []
        var pending: [(at: Int64, outcomes: Outcomes)] = []

        /// A run whose step begins at `stepStart` (Unix seconds) and whose traffic spans `[from, to)`.
        /// Heavy users are in the treatment with probability `treatmentShare`.
        package init(traffic: RolloutTraffic, stepStart: Int64, from: Int64, to: Int64, treatmentShare: Double, seed: UInt64) {
            self.traffic = traffic
            random = SimulationRandom(seed: seed)
            if let i = traffic.incidents {
                func incident(at start: Int64) -> (Int64, Int64, Double) {
                    let length = i.shortest + Int64(random.next() % UInt64(max(1, i.longest - i.shortest + 1)))
                    let rate = i.lowestErrorRate + (i.highestErrorRate - i.lowestErrorRate) * random.nextOpenUnit()
                    return (start, start + length, rate)
                }
                for start in events(perHour: i.perHour, from: from - i.longest, to: to) { incidents.append(incident(at: start)) }
                if let within = i.oneWithin { incidents.append(incident(at: stepStart + Int64(random.next() % UInt64(max(1, within))))) }
            }
            if traffic.drift != nil { phase = 2 * Double.pi * random.nextOpenUnit() }
            if let h = traffic.heavyUsers {
                for _ in 0..<max(0, h.count) {
                    let inTreatment = random.nextOpenUnit() <= treatmentShare
                    let spells = events(perHour: h.spellsPerHour, from: from - h.longestSpell, to: to).map { start -> (Int64, Int64) in
                        (start, start + h.shortestSpell + Int64(random.next() % UInt64(max(1, h.longestSpell - h.shortestSpell + 1))))
                    }
                    heavy.append((inTreatment, spells))
                }
            }
        }

        /// The starts of a Poisson process of `perHour` events an hour in `[from, to)`.
        mutating func events(perHour: Double, from: Int64, to: Int64) -> [Int64] {
            guard perHour > 0 else { return [] }
            var out: [Int64] = []
            var t = Double(from)
            while true {
                t += -RolloutMath.log(random.nextOpenUnit()) * 3600 / perHour
                guard t < Double(to) else { return out }
                out.append(Int64(t))
            }
        }

        /// The incidents drawn, as `(from, to, error rate)` in Unix seconds.
        package var incidentSpans: [(from: Int64, to: Int64, rate: Double)] { incidents }

        /// Draws the outcomes of the requests in `[from, to)`: each cohort at its rate (requests a
        /// second) and error rate; `baselineErrorRate` scales the drift. Heavy users take their
        /// share of the flag's requests out of their cohort's (all in the control while the
        /// treatment gets none). Outcomes are held until they arrive.
        package mutating func requests(
            from: Int64, to: Int64, treatmentRate: Double, controlRate: Double, treatmentErrorRate: Double, controlErrorRate: Double,
            baselineErrorRate: Double
        ) {
            var t = from
            while t < to {
                let end = min(to, (Self.minute(t) + 1) * 60, t + 10)
                let length = Double(end - t)
                let middle = Double(t) + length / 2
                var shift = 0.0
                if let d = traffic.drift, d.period > 0 {
                    shift = baselineErrorRate * d.amplitude * RolloutMath.sin(2 * Double.pi * middle / Double(d.period) + phase)
                }
                var clear = 1.0
                for i in incidents where Double(i.from) <= middle && middle < Double(i.to) { clear *= 1 - i.rate }
                let flagRate = treatmentRate + controlRate
                for cohort in [Cohort.treatment, .control] {
                    let rate = cohort == .treatment ? treatmentRate : controlRate
                    guard rate > 0 else { continue }
                    let base = min(1, max(0, (cohort == .treatment ? treatmentErrorRate : controlErrorRate) + shift))
                    let p = 1 - clear * (1 - base)
                    var ordinary = rate
                    var successes = 0, failures = 0
                    if let h = traffic.heavyUsers {
                        for user in heavy where (user.inTreatment && treatmentRate > 0) == (cohort == .treatment) {
                            let userRate = min(ordinary, h.share * flagRate)
                            ordinary -= userRate
                            let spell = user.spells.contains { Double($0.from) <= middle && middle < Double($0.to) }
                            let pu = spell ? 1 - (1 - h.failingShare) * (1 - p) : p
                            let n = random.poisson(mean: userRate * length)
                            let f = random.binomial(trials: n, probability: pu)
                            successes += n - f
                            failures += f
                        }
                    }
                    let n = random.poisson(mean: ordinary * length)
                    let f = random.binomial(trials: n, probability: p)
                    successes += n - f
                    failures += f
                    record(cohort: cohort, at: t, length: end - t, successes: successes, failures: failures)
                }
                t = end
            }
        }

        /// Holds outcomes of requests in `[at, at + length)` until they are recorded: now, or a
        /// uniformly random delay later for the late share.
        mutating func record(cohort: Cohort, at: Int64, length: Int64, successes: Int, failures: Int) {
            var lateS = 0, lateF = 0
            if let l = traffic.lateness, l.longest > 0 {
                lateS = random.binomial(trials: successes, probability: l.share)
                lateF = random.binomial(trials: failures, probability: l.share)
            }
            if successes - lateS + failures - lateF > 0 {
                pending.append((at, Outcomes(cohort: cohort, minute: Self.minute(at), successes: successes - lateS, failures: failures - lateF)))
            }
            guard lateS + lateF > 0, let l = traffic.lateness else { return }
            // Six delay bins, each a sixth of the longest delay; their counts by successive binomials.
            var s = lateS, f = lateF
            for bin in 0..<6 {
                let share = 1 / Double(6 - bin)
                let bs = bin == 5 ? s : random.binomial(trials: s, probability: share)
                let bf = bin == 5 ? f : random.binomial(trials: f, probability: share)
                s -= bs
                f -= bf
                guard bs + bf > 0 else { continue }
                let arrival = at + length / 2 + (Int64(bin) * l.longest + l.longest / 2) / 6
                pending.append((arrival, Outcomes(cohort: cohort, minute: Self.minute(arrival), successes: bs, failures: bf)))
            }
        }

        /// The outcomes recorded before `time` (Unix seconds), taken out of the run, oldest first.
        package mutating func arrived(before time: Int64) -> [Outcomes] {
            var out: [Outcomes] = []
            var kept: [(at: Int64, outcomes: Outcomes)] = []
            for p in pending {
                if p.at < time { out.append(p.outcomes) } else { kept.append(p) }
            }
            pending = kept
            return out
        }

        /// The Unix minute of a Unix second.
        static func minute(_ t: Int64) -> Int64 { t >= 0 ? t / 60 : (t - 59) / 60 }
    }
}
