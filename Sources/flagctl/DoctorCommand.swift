import ArgumentParser
import FlagpoleControl
import FlagpoleRedis
import Foundation

struct DoctorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Check that Redis and the flag folder are ready.",
        discussion: """
            Reports: Redis reachable (address, server version, round-trip time), authentication, which
            of Flagpole's commands the configured user may run (on the keys of --env or $FLAGPOLE_ENV
            when given: users from `flagctl acl` are limited to one environment), the hiredis
            version, and whether the flag folder is found. With --env, also that the environment
            was synced into this Redis (a client of a never-synced environment serves only its code
            defaults: a typo in FLAGPOLE_ENV, or the wrong Redis). Exits 0 when all is well, 1 when a check fails (an unreachable Redis
            is reported, with its address and the reason, within 5 seconds).
            """
    )

    @OptionGroup var global: GlobalOptions

    @Flag(help: "Print the report as JSON.")
    var json = false

    func run() async throws {
        let doctor = Doctor(
            redis: try global.redisConfiguration(), flagsDirectory: global.flags, environment: try? global.environment(),
            checkEnvironment: global.env != nil)
        let report = await doctor.run()
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
        } else {
            print("flagctl doctor — \(report.redis)")
            for check in report.checks {
                let mark =
                    switch check.status {
                    case .ok: "ok  "
                    case .warning: "warn"
                    case .failed: "FAIL"
                    }
                print("  [\(mark)] \(check.name.padding(toLength: 14, withPad: " ", startingAt: 0)) \(check.detail)")
            }
            print(report.healthy ? "All checks passed." : "Some checks failed.")
        }
        if !report.healthy { throw ExitCode.failure }
    }
}
