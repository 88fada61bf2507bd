import FlagpoleControl
import FlagpoleRollout
import Foundation
import Testing

@Suite("The repository's project config, read as flagctl reads it")
struct RepositoryConfigTests {
    @Test("flags/flagpole.yaml is clean (its zones from the system's tz database), and its weekend follows Europe/Berlin")
    func repositoryConfig() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let load = FlagDirectory(root: root.appendingPathComponent("flags").path).loadConfig()
        #expect(load.diagnostics.isEmpty, "\(load.diagnostics)")
        #expect(load.config.environments.map(\.name) == ["test", "prod"])
        #expect(load.config.environments.map(\.isProduction) == [false, true], "prod is marked production (the console asks twice)")
        #expect(load.config.fractionalAlgorithm == .v3)
        let weekend = try #require(load.config.freezeWindows.first { $0.name == "weekend" })
        // Friday 16:00 in Berlin is 15:00 UTC in winter (CET) and 14:00 UTC in summer (CEST).
        #expect(weekend.contains(unixTime: 1_797_001_200))  // 2026-12-11T15:00:00Z, Fri 16:00 CET
        #expect(!weekend.contains(unixTime: 1_797_001_199))
        #expect(weekend.contains(unixTime: 1_783_692_000))  // 2026-07-10T14:00:00Z, Fri 16:00 CEST
        #expect(!weekend.contains(unixTime: 1_783_691_999))
    }
}
