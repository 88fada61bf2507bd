import FlagpoleControl
import FlagpoleCore
import FlagpoleRollout
import FlagpoleStore
import Testing

/// A freeze window during a rollout: the state machine holds instead of advancing or completing,
/// and says until when; a revert goes through. On a manual clock, with no Redis.
@Suite("Rollout state machine in a freeze window")
struct RolloutFreezeTests {
    typealias Machine = RolloutStateMachine
    typealias Base = RolloutStateMachineTests

    /// Thursday mornings in Berlin; the manual clock starts on Thursday 2026-01-01 at 01:00 CET.
    static let windows: [FreezeWindow] = {
        let text = """
            freezeWindows:
              - {name: thursday-morning, from: "thu 00:00", to: "thu 12:00", timezone: Europe/Berlin, environments: [prod], reason: release train}
            """
        let load = ProjectConfigLoader.load(path: "flags/flagpole.yaml", text: text, zones: SystemZoneDatabase.resolver())
        return load.config.freezeWindows
    }()

    static func freeze(_ clock: ManualRolloutClock) -> FreezeHold? {
        FreezeHold.at(clock.nowSeconds(), environment: "prod", windows: windows)
    }

    /// Ticks and judges once, as the watcher does.
    static func look(_ m: inout Machine, _ verdict: RolloutVerdict, clock: ManualRolloutClock) -> [Machine.Action] {
        let now = clock.nowMilliseconds()
        let measure = m.event(.tick(now: now, freeze: freeze(clock)))
        #expect(Base.kinds(measure) == [.measure])
        return m.event(.judged(Base.decision(verdict), Base.reading, now: now))
    }

    @Test("the config's window applies now and ends at noon Berlin time")
    func windowInForce() throws {
        #expect(Self.windows.count == 1, "the tz database is needed (scripts/install-deps.sh installs tzdata)")
        let hold = try #require(Self.freeze(ManualRolloutClock()))
        #expect(hold.until == RolloutStateMachineTests.start + 11 * 3_600)
        #expect(hold.description == "frozen until Thu 2026-01-01 12:00 CET (thursday-morning: release train)")
    }

    @Test("an advance or a completion in a freeze window is a hold that says until when", arguments: [RolloutVerdict.advance, .complete])
    func frozen(verdict: RolloutVerdict) throws {
        let clock = ManualRolloutClock()
        var m = Base.machine(Base.record(stepIndex: verdict == .complete ? 2 : 0))
        let actions = Self.look(&m, verdict, clock: clock)
        #expect(Base.kinds(actions) == [.observe(required: true, audited: true), .finished(.frozen)])
        #expect(Base.write(actions) == nil, "nothing written")
        let (observation, audit) = try #require(Base.observation(actions))
        #expect(observation.verdict == .hold && observation.holds == 1)
        #expect(
            observation.reason.hasPrefix(
                "frozen until Thu 2026-01-01 12:00 CET (thursday-morning: release train); the step passed and would \(verdict.rawValue)"),
            "\(observation.reason)")
        #expect(observation.evidence["freeze"]?["window"] == "thursday-morning")
        #expect(observation.evidence["freeze"]?["until"] == .int(RolloutStateMachineTests.start + 11 * 3_600))
        #expect(audit?.action == "rollout-hold" && audit?.reason == observation.reason)
        #expect(m.record.stepIndex == (verdict == .complete ? 2 : 0) && m.record.status == .running)
    }

    @Test("frozen looks are audited like holds: at most one a minute")
    func sampled() {
        let clock = ManualRolloutClock()
        var m = Base.machine(Base.record())
        #expect(Base.kinds(Self.look(&m, .advance, clock: clock)) == [.observe(required: true, audited: true), .finished(.frozen)])
        clock.advance(by: .seconds(30))
        #expect(Base.kinds(Self.look(&m, .advance, clock: clock)) == [.observe(required: true, audited: false), .finished(.frozen)])
        clock.advance(by: .seconds(30))
        #expect(Base.kinds(Self.look(&m, .advance, clock: clock)) == [.observe(required: true, audited: true), .finished(.frozen)])
    }

    @Test("a revert is always allowed in a freeze window")
    func revert() throws {
        let clock = ManualRolloutClock()
        var m = Base.machine(Base.record())
        let actions = Self.look(&m, .revert, clock: clock)
        #expect(Base.kinds(actions) == [.write(.revert)])
        #expect(Self.freeze(clock) != nil)
    }

    @Test("when the window ends the next look advances")
    func afterTheWindow() throws {
        let clock = ManualRolloutClock()
        var m = Base.machine(Base.record())
        #expect(Base.kinds(Self.look(&m, .advance, clock: clock)).last == .finished(.frozen))
        clock.advance(by: .seconds(11 * 3_600 - 1))
        #expect(Base.kinds(Self.look(&m, .advance, clock: clock)).last == .finished(.frozen), "11:59:59 CET")
        clock.advance(by: .seconds(1))
        #expect(Self.freeze(clock) == nil)
        #expect(Base.kinds(Self.look(&m, .advance, clock: clock)) == [.write(.advance)])
    }

    @Test("a dry run in a freeze window reports frozen, not would-advance; a paused rollout stays paused")
    func dryRunAndPaused() {
        let clock = ManualRolloutClock()
        var dry = Base.machine(Base.record(dryRun: true))
        #expect(Base.kinds(Self.look(&dry, .advance, clock: clock)).last == .finished(.frozen))
        var paused = Base.machine(Base.record(status: .paused))
        #expect(Base.kinds(Self.look(&paused, .advance, clock: clock)).last == .finished(.paused))
    }
}
