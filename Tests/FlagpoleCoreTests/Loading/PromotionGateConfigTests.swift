import FlagpoleCore
import FlagpoleRollout
import Testing

@Suite("Project config: requirePassIn, the promotion gate")
struct PromotionGateConfigTests {
    @Test("requirePassIn names the environment a rollout must complete in first")
    func reads() {
        let load = ProjectConfigLoader.load(
            path: "flags/flagpole.yaml",
            text: """
                version: 1
                environments:
                  prod: {production: true, requirePassIn: test}
                  test: {}
                """)
        #expect(load.diagnostics.isEmpty, "\(load.diagnostics)")
        #expect(load.config.environment(named: "prod")?.requirePassIn == "test")
        #expect(load.config.environment(named: "test")?.requirePassIn == nil)
    }

    @Test(
        "a gate naming no environment, or its own, is an error at its line",
        arguments: [
            (
                "environments:\n  test: {}\n  prod: {requirePassIn: tset}\n",
                #"E 3:25 -: requirePassIn names environment "tset", which is not one of the environments"#, #"did you mean "test"?"#
            ),
            (
                "environments:\n  test: {}\n  prod:\n    requirePassIn: staging\n", #"E 4:20 -: requirePassIn names environment "staging""#,
                #""prod", "test""#
            ),
            (
                "environments:\n  prod: {requirePassIn: prod}\n", #"E 2:25 -: environment "prod" cannot require a pass in itself"#,
                "e.g. requirePassIn: test"
            ),
            (
                "environments:\n  test: {}\n  prod: {requirePassIn: [test]}\n", "E 3:25 -: requirePassIn must name an environment",
                "e.g. requirePassIn: test"
            ),
        ])
    func problems(text: String, expected: String, hint: String) {
        let load = ProjectConfigLoader.load(path: "flags/flagpole.yaml", text: text)
        #expect(load.diagnostics.count == 1, "\(load.diagnostics)")
        #expect(load.diagnostics.first?.brief.hasPrefix(expected) == true, "\(load.diagnostics.map(\.brief))")
        #expect(load.diagnostics.first?.description.contains("flags/flagpole.yaml:") == true)
        #expect(load.diagnostics.first?.description.contains(hint) == true, "\(load.diagnostics.map(\.description))")
        #expect(load.hasErrors)
    }
}
