import FlagpoleRollout
import Foundation
import Testing

@testable import FlagpoleCore

@Suite("The example flags/ folder")
struct ExampleFlagsTests {
    static func load(_ environment: String) throws -> FlagSetLoad {
        let folder = LoadingTestSupport.packageRoot.appendingPathComponent("flags/\(environment)")
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { !$0.hasPrefix(".") }.sorted()
        let sources = try names.map { name in
            FlagSource(path: "flags/\(environment)/\(name)", text: try LoadingTestSupport.read(folder.appendingPathComponent(name)))
        }
        return FlagSetLoader.load(sources)
    }

    @Test("each environment validates without errors or warnings", arguments: ["test", "prod"])
    func clean(environment: String) throws {
        let load = try Self.load(environment)
        #expect(load.diagnostics.isEmpty, "\(load.diagnostics.map(\.description))")
        #expect(load.flags.count >= 7)
    }

    @Test("it shows every value type, targeting, a split, shared evaluators and a guard policy")
    func coverage() throws {
        let load = try Self.load("prod")
        var types: Set<String> = []
        for flag in load.flags.values {
            for value in flag["variants"]?.objectValue?.values ?? [:].values {
                switch value {
                case .int: types.insert("integer")
                case .double: types.insert("float")
                default: types.insert(value.typeName)
                }
            }
        }
        #expect(types == ["boolean", "string", "integer", "float", "object"])
        #expect(load.flags.values.contains { $0["targeting"]?.jsonString.contains("ends_with") == true })
        #expect(load.flags.values.contains { $0["targeting"]?.jsonString.contains("fractional") == true })
        #expect(!load.evaluators.isEmpty)
        #expect(load.guardPolicy(forFlag: "new-checkout")?.maxErrorRate == 0.02)
    }

    @Test("prod and test differ the way .env.prod and .env.test would")
    func differ() throws {
        let prod = try Self.load("prod"), test = try Self.load("test")
        #expect(Set(prod.flags.keys) == Set(test.flags.keys))
        #expect(prod.flags["legacy-search"]?["state"] == "DISABLED")
        #expect(test.flags["legacy-search"]?["state"] == "ENABLED")
        #expect(prod.metadata["flagSetId"] == "shop/prod")
        #expect(test.metadata["flagSetId"] == "shop/test")
    }
}
