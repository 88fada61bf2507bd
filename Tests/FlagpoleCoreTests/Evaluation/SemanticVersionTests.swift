import Testing

@testable import FlagpoleCore

@Suite("sem_ver versions")
struct SemanticVersionTests {
    @Test(
        "valid and invalid versions",
        arguments: [
            ("1.2.3", true), ("v1.2.3", true), ("V1.2.3", true), ("1", true), ("1.2", true), ("1-rc.1", true),
            ("1.2+build", true), ("1.0.0-alpha.1+build.5", true), ("0.0.0", true),
            ("99999999999999999999999.0.0", true), ("1.0.0+001", true),
            ("", false), ("v", false), ("vv1.0.0", false), ("2.0.0.0", false), ("not-a-version", false),
            ("01.0.0", false), ("1.02.0", false), ("1.0.0-01", false), ("1.0.0-", false), ("1.0.0+", false),
            ("1.0.0-a..b", false), ("1.", false), (".1", false), ("1.0.0 ", false), ("1.0.0-ä", false),
        ])
    func parsing(text: String, valid: Bool) {
        #expect((SemanticVersion(text) != nil) == valid)
    }

    @Test(
        "comparisons",
        arguments: [
            ("2.0.0", SemVerOperator.equal, "2.0.0", true),
            ("2.0.0", .equal, "v2", true),
            ("2.0.0-alpha", .less, "2.0.0", true),
            ("1.0.0-alpha", .less, "1.0.0-alpha.1", true),
            ("1.0.0-alpha.1", .less, "1.0.0-alpha.beta", true),
            ("1.0.0-alpha.beta", .less, "1.0.0-beta", true),
            ("1.0.0-beta.2", .less, "1.0.0-beta.11", true),
            ("1.0.0-beta.11", .less, "1.0.0-rc.1", true),
            ("1.0.0-rc.1", .less, "1.0.0", true),
            ("1.0.0+other", .equal, "1.0.0+build", true),
            ("10.0.0", .greater, "9.0.0", true),
            ("99999999999999999999999.0.0", .greater, "9.0.0", true),
            ("99999999999999999999999.0.0", .greater, "99999999999999999999998.5.0", true),
            ("1.99999999999999999999999.0", .tilde, "1.99999999999999999999999.7", true),
            ("1.99999999999999999999999.0", .tilde, "1.9999999999999999999.0", false),
            ("1.1", .greater, "1.1.0", false),
            ("1.2", .greaterOrEqual, "1.1", true),
            ("1.0.0", .notEqual, "1.0.1", true),
            ("1.0.0", .lessOrEqual, "1.0.0", true),
            ("3.0.1", .tilde, "3.0.0", true),
            ("3.1.0", .tilde, "3.0.0", false),
            ("3.1.0", .caret, "3.0.0", true),
            ("4.0.0", .caret, "3.0.0", false),
        ])
    func comparisons(a: String, op: SemVerOperator, b: String, expected: Bool) throws {
        let va = try #require(SemanticVersion(a))
        let vb = try #require(SemanticVersion(b))
        #expect(SemanticVersion.evaluate(va, op, vb) == expected)
    }

    @Test("numbers in context read as their JavaScript text")
    func numericOperands() {
        #expect(SemanticVersion(semVerOperand: .int(2))?.major == 2)
        #expect(SemanticVersion(semVerOperand: .double(1.2))?.minor == 2)
        #expect(SemanticVersion(semVerOperand: .double(1.0)) != nil)
        #expect(SemanticVersion(semVerOperand: .bool(true)) == nil)
        #expect(SemanticVersion(semVerOperand: .null) == nil)
        #expect(SemanticVersion(semVerOperand: .array(["1.0.0"])) == nil)
    }
}
