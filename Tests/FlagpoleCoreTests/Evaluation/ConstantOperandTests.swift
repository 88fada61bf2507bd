import Testing

@testable import FlagpoleCore

/// `in` over a constant string array and `starts_with` / `ends_with` with a constant affix compile
/// to dedicated instructions; they must answer exactly as the general ones (reached here by
/// computing the same constant with `merge` / `cat`, which the compiler does not fold).
@Suite("Constant-operand instructions")
struct ConstantOperandTests {
    static let data = [
        #"{"x": "ann@example.com"}"#, #"{"x": "someone.with.a.long.address@example.com"}"#, #"{"x": "DE"}"#,
        #"{"x": "de"}"#, #"{"x": "é"}"#, #"{"x": "e\u0301"}"#, #"{"x": ""}"#, #"{"x": 1}"#, #"{"x": true}"#,
        #"{"x": null}"#, #"{"x": ["DE"]}"#, #"{"x": {"a": 1}}"#, "{}", #"{"y": "DE"}"#,
        #"{"x": "a-long-enough-string-to-be-stored-out-of-line"}"#,
    ]

    static let pairs: [(specialised: String, general: String)] = [
        (#"{"in": [{"var": "x"}, ["DE", "FR", "é", ""]]}"#, #"{"in": [{"var": "x"}, {"merge": [["DE", "FR", "é", ""]]}]}"#),
        (#"{"in": [{"var": "x"}, []]}"#, #"{"in": [{"var": "x"}, {"merge": [[]]}]}"#),
        (
            #"{"in": [{"var": "x"}, ["a-long-enough-string-to-be-stored-out-of-line"]]}"#,
            #"{"in": [{"var": "x"}, {"merge": [["a-long-enough-string-to-be-stored-out-of-line"]]}]}"#
        ),
        (#"{"in": [{"var": ["x", "DE"]}, ["DE"]]}"#, #"{"in": [{"var": ["x", "DE"]}, {"merge": [["DE"]]}]}"#),
        (#"{"in": [{"var": "x.a"}, ["1"]]}"#, #"{"in": [{"var": "x.a"}, {"merge": [["1"]]}]}"#),
        (#"{"ends_with": [{"var": "x"}, "@example.com"]}"#, #"{"ends_with": [{"var": "x"}, {"cat": ["@example.com"]}]}"#),
        (#"{"ends_with": [{"var": "x"}, ""]}"#, #"{"ends_with": [{"var": "x"}, {"cat": [""]}]}"#),
        (#"{"starts_with": [{"var": "x"}, "e"]}"#, #"{"starts_with": [{"var": "x"}, {"cat": ["e"]}]}"#),
        (#"{"starts_with": [{"var": "x"}, "ann"]}"#, #"{"starts_with": [{"var": "x"}, {"cat": ["ann"]}]}"#),
        (#"{"starts_with": [{"var": ["x", "zz"]}, "z"]}"#, #"{"starts_with": [{"var": ["x", "zz"]}, {"cat": ["z"]}]}"#),
        (#"{"if": [{"ends_with": [{"var": "x"}, "m"]}, "yes", "no"]}"#, #"{"if": [{"ends_with": [{"var": "x"}, {"cat": ["m"]}]}, "yes", "no"]}"#),
        (#"{"if": [{"in": [{"var": "x"}, ["DE"]]}, "yes", "no"]}"#, #"{"if": [{"in": [{"var": "x"}, {"merge": [["DE"]]}]}, "yes", "no"]}"#),
        (#"{"map": [["DE", "US", 1], {"in": [{"var": ""}, ["DE"]]}]}"#, #"{"map": [["DE", "US", 1], {"in": [{"var": ""}, {"merge": [["DE"]]}]}]}"#),
        (
            #"{"map": [["ab", "ba", 1], {"ends_with": [{"var": ""}, "a"]}]}"#,
            #"{"map": [["ab", "ba", 1], {"ends_with": [{"var": ""}, {"cat": ["a"]}]}]}"#
        ),
    ]

    @Test("they compile to the dedicated instructions")
    func compiled() throws {
        for rule in [#"{"in": [{"var": "x"}, ["DE"]]}"#, #"{"ends_with": [{"var": "x"}, "m"]}"#] {
            let program = try RuleProgram(compiling: try JSONParser.parse(rule), flagKey: "f", algorithm: .v3)
            switch program.nodes[Int(program.root)] {
            case .inStrings, .constantAffix: break
            default: Issue.record("\(rule) did not compile to a dedicated instruction")
            }
        }
        // Not every element a string, or extra arguments: the general instructions.
        for rule in [#"{"in": [{"var": "x"}, ["DE", 1]]}"#, #"{"ends_with": [{"var": "x"}, "m", 1]}"#, #"{"in": [{"var": "x"}, "DE"]}"#] {
            let program = try RuleProgram(compiling: try JSONParser.parse(rule), flagKey: "f", algorithm: .v3)
            switch program.nodes[Int(program.root)] {
            case .inStrings, .constantAffix: Issue.record("\(rule) compiled to a dedicated instruction")
            default: break
            }
        }
    }

    @Test("they answer as the general instructions")
    func sameAnswers() throws {
        for (specialised, general) in Self.pairs {
            for data in Self.data {
                let a = try evaluateRule(specialised, data)
                let b = try evaluateRule(general, data)
                #expect(a == b, "\(specialised) on \(data): \(a), expected \(b)")
            }
        }
    }

    @Test("an unknown operator as the operand is still an error")
    func operandErrors() {
        #expect(throws: RuleError.self) { try evaluateRule(#"{"in": [{"nope": []}, ["DE"]]}"#) }
        #expect(throws: RuleError.self) { try evaluateRule(#"{"ends_with": [{"nope": []}, "m"]}"#) }
    }
}
