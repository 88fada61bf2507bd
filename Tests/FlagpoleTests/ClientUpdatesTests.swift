import Flagpole
import FlagpoleTesting
import Foundation
import Testing

@Suite("FlagpoleClient.updates(): every installed snapshot with its revision", .timeLimit(.minutes(1)))
struct ClientUpdatesTests {
    @Test("each change written arrives as one update with its revision, in order, with the flags it changed")
    func updatesCarryRevisions() async throws {
        try await RedisServer.withServer { server in
            let fx = try await Fixture(server)
            defer { fx.remove() }
            let client = FlagpoleClient(configuration: fx.configuration())
            try await whileRunning(client) {
                #expect(await client.waitUntilReady(timeout: .seconds(5)))
                let updates = client.updates()
                var written: [Int64] = []
                for i in 0..<5 {
                    let outcome = try await fx.control.apply(.set(variant: i % 2 == 0 ? "on" : "off"), flag: "new-checkout", actor: "t", reason: nil)
                    written.append(try #require(outcome.revision))
                }
                var seen: [FlagpoleClient.Update] = []
                for await update in updates {
                    seen.append(update)
                    if update.revision == written.last { break }
                }
                #expect(seen.compactMap(\.revision) == written)
                #expect(seen.allSatisfy { $0.changed == ["new-checkout"] })
                let now = Int64(Date().timeIntervalSince1970 * 1e9)
                #expect(seen.allSatisfy { abs($0.appliedAtUnixNanos - now) < 60_000_000_000 })
                #expect(zip(seen, seen.dropFirst()).allSatisfy { $0.appliedAtUnixNanos <= $1.appliedAtUnixNanos })
            }
        }
    }
}
