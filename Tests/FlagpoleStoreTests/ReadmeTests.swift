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
        #expect(Self.readme.contains(AccessRules.setUserCommand(user: "flagctl", password: "WRITER_PASSWORD", rules: AccessRules.writer)))
        #expect(Self.readme.contains(AccessRules.setUserCommand(user: "app", password: "READER_PASSWORD", rules: AccessRules.reader)))
    }

    @Test("every key of the layout is documented")
    func layout() throws {
        let layout = try StoreLayout(environment: "ENV")
        for key in layout.scriptKeys + [layout.changes] {
            #expect(Self.readme.contains("`\(key)`"), "README does not document \(key)")
        }
    }
}
