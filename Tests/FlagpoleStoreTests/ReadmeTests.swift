import Foundation
import FlagpoleStore
import Testing

@Suite("README stays true")
struct ReadmeTests {
    static let readme: String = {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return (try? String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)) ?? ""
    }()

    @Test("the ACL lines in the README are the ones the code and tests use")
    func aclLines() {
        for role in AccessRules.Role.allCases {
            let line = AccessRules.setUserCommand(
                user: AccessRules.defaultUser(role, environment: "prod"), password: "PASSWORD", rules: AccessRules.rules(for: role, environment: "prod")!)
            #expect(Self.readme.contains(line), "README lacks the \(role) line: \(line)")
        }
        let allWriter = AccessRules.setUserCommand(user: AccessRules.defaultUser(.writer, environment: nil), password: "PASSWORD", rules: AccessRules.writer)
        #expect(Self.readme.contains(allWriter), "README lacks the all-environment writer line: \(allWriter)")
    }

    @Test("the README's Swift example is the compiled Examples/HelloFlags/main.swift, verbatim")
    func example() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let source = try String(contentsOf: root.appendingPathComponent("Examples/HelloFlags/main.swift"), encoding: .utf8)
        #expect(Self.readme.contains("```swift\n" + source.trimmingCharacters(in: .whitespacesAndNewlines) + "\n```"))
    }

    @Test("every key of the layout is documented")
    func layout() throws {
        let layout = try StoreLayout(environment: "ENV")
        for key in layout.scriptKeys + [layout.changes] {
            #expect(Self.readme.contains("`\(key)`"), "README does not document \(key)")
        }
    }
}
