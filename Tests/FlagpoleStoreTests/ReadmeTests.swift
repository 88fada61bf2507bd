import FlagpoleStore
import Foundation
import Testing

@Suite("The docs stay true")
struct ReadmeTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// A document of the repository; a missing one fails the test that reads it.
    static func document(_ path: String) throws -> String {
        try String(contentsOf: root.appendingPathComponent(path), encoding: .utf8)
    }

    @Test("the ACL lines in docs/security.md are the ones the code and tests use")
    func aclLines() throws {
        let security = try Self.document("docs/security.md")
        for role in AccessRules.Role.allCases {
            let line = AccessRules.setUserCommand(
                user: AccessRules.defaultUser(role, environment: "prod"), password: "PASSWORD",
                rules: AccessRules.rules(for: role, environment: "prod")!)
            #expect(security.contains(line), "docs/security.md lacks the \(role) line: \(line)")
        }
        let allWriter = AccessRules.setUserCommand(
            user: AccessRules.defaultUser(.writer, environment: nil), password: "PASSWORD", rules: AccessRules.writer)
        #expect(security.contains(allWriter), "docs/security.md lacks the all-environment writer line: \(allWriter)")
    }

    @Test("docs/client.md's Swift examples (the app, its test, the /metrics endpoint) are the compiled files, verbatim")
    func example() throws {
        let doc = try Self.document("docs/client.md")
        for path in [
            "Examples/HelloFlags/main.swift", "Examples/HelloFlags/Checkout.swift", "Tests/FlagpoleTests/ExampleWithTestKitTests.swift",
            "Examples/TrafficGenerator/MetricsEndpoint.swift", "Examples/PlainService/main.swift",
        ] {
            let source = try Self.document(path)
            #expect(
                doc.contains("```swift\n" + source.trimmingCharacters(in: .whitespacesAndNewlines) + "\n```"), "docs/client.md does not quote \(path)"
            )
        }
    }

    @Test("every key of the layout is documented in docs/redis-layout.md")
    func layout() throws {
        let layout = try StoreLayout(environment: "ENV")
        let doc = try Self.document("docs/redis-layout.md")
        for key in layout.scriptKeys + [layout.changes] {
            #expect(doc.contains("`\(key)`"), "docs/redis-layout.md does not document \(key)")
        }
    }
}
