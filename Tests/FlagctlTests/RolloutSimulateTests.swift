import ArgumentParser
import FlagpoleCore
import FlagpoleRollout
import Foundation
import Testing

@testable import flagctl

@Suite("flagctl rollout simulate")
struct RolloutSimulateTests {
    @Test("parses the grid, the guard options and --json")
    func parse() throws {
        let plain = try RolloutSimulateCommand.parse([])
        let p = try plain.parsed()
        #expect(p.rps == [0.1, 1, 5, 20, 100])
        #expect(p.treatment == [0.01, 0.015, 0.02, 0.03, 0.05, 0.1])
        #expect(p.configuration.runs == 200)
        #expect(p.configuration.stepWatch == .seconds(3600))
        #expect(p.configuration.limits == RolloutSimulator.builtInLimits)
        let custom = try RolloutSimulateCommand.parse([
            "--runs", "10", "--seed", "9", "--rps", "2, 3", "--baseline", "0.02", "--treatment", "0.02,0.04",
            "--max-error-rate", "0.1", "--max-error-increase", "0.005", "--min-samples", "500", "--watch", "30m",
            "--interval", "5s", "--window", "2m", "--alpha", "0.05", "--json",
        ]).parsed()
        #expect(custom.rps == [2, 3])
        #expect(custom.treatment == [0.02, 0.04])
        #expect(custom.configuration.limits == GuardLimits(maxErrorRate: 0.1, maxErrorIncrease: 0.005, minSamples: 500))
        #expect(custom.configuration.stepWatch == .seconds(1800))
        #expect(custom.configuration.lookInterval == .seconds(5))
        #expect(custom.configuration.detectionWindow == .seconds(120))
        #expect(custom.configuration.seed == 9 && custom.configuration.alpha == 0.05)
        for bad in [["--rps", "fast"], ["--treatment", "2"], ["--watch", "soon"], ["--runs", "0"], ["--alpha", "1"]] {
            #expect(throws: (any Error).self) { try RolloutSimulateCommand.parse(bad) }
        }
    }

    @Test("prints the grid and three passing goals, exit 0")
    func passes() throws {
        let r = try FlagctlProcess.run(["rollout", "simulate", "--runs", "60", "--rps", "0.1,20", "--treatment", "0.01,0.03", "--traffic", "none"])
        #expect(r.status == 0, "\(r.stderr)")
        let lines = r.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first?.hasPrefix("60 runs per cell, seed 1; a look every 10s for 1h") == true)
        #expect(lines.contains { $0.hasPrefix("req/s  baseline  treatment") })
        #expect(lines.filter { $0.hasPrefix("PASS  ") }.count == 3)
        #expect(lines.contains { $0.hasPrefix("   20  1%        3%") })
    }

    @Test("a goal that fails prints FAIL and exits 1")
    func fails() throws {
        // With 5 pp allowed, a regression to 3% is within the allowance: never reverted.
        let r = try FlagctlProcess.run([
            "rollout", "simulate", "--runs", "20", "--rps", "20", "--treatment", "0.03", "--max-error-increase", "0.05", "--traffic", "none",
        ])
        #expect(r.status == 1)
        #expect(r.stdout.contains("FAIL  20 req/s, 1% -> 3%"))
        #expect(r.stdout.contains("SKIP  no regression"))
    }

    @Test("--json prints the cells and goals")
    func json() throws {
        let r = try FlagctlProcess.run(["rollout", "simulate", "--runs", "10", "--rps", "20", "--treatment", "0.1", "--traffic", "none", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let value = try JSONParser.parse(r.stdout)
        #expect(value["cells"]?.arrayValue?.count == 1)
        #expect(value["cells"]?.arrayValue?.first?["revertsWithinWindow"] == .int(10))
        #expect(value["goals"]?.arrayValue?.count == 3)
        #expect(value["configuration"]?["runs"] == .int(10))
    }

    @Test("rows of real traffic: one per kind, with and without a regression, named in a traffic column")
    func trafficRows() throws {
        let p = try RolloutSimulateCommand.parse([]).parsed()
        #expect(p.traffic.map(\.name) == ["unequal", "incidents", "incident", "drift", "heavy", "late", "real"])
        let r = try FlagctlProcess.run([
            "rollout", "simulate", "--runs", "4", "--rps", "20", "--treatment", "0.03", "--traffic", "unequal,incident", "--watch", "10m",
        ])
        let lines = r.stdout.split(separator: "\n").map(String.init)
        #expect(lines.contains { $0.hasPrefix("req/s  baseline  treatment  traffic") })
        #expect(lines.filter { $0.hasPrefix("   20") && $0.contains("unequal 20/80 req/s") }.count == 2)
        #expect(lines.filter { $0.hasPrefix("   20") && $0.contains("an incident in the step") }.count == 2)
        #expect(lines.contains { $0.contains("a shared incident during the step: no revert") })
        #expect(throws: (any Error).self) { try RolloutSimulateCommand.parse(["--traffic", "bursty"]) }
    }

    @Test("a bad option is a usage error")
    func usage() throws {
        let r = try FlagctlProcess.run(["rollout", "simulate", "--rps", "fast"])
        #expect(r.status != 0 && r.status != 1)
        #expect(r.stderr.contains("--rps must be comma-separated request rates above 0"))
    }
}
