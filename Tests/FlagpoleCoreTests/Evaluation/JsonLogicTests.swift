import Testing

@testable import FlagpoleCore

/// Evaluates a JsonLogic rule (JSON text) against data (JSON text), the way a flag's targeting is.
func evaluateRule(
    _ rule: String, _ data: String = "{}", flagKey: String = "flag", timestamp: Int64 = 1_700_000_000,
    algorithm: FractionalAlgorithm = .v3
) throws -> JSONValue {
    let program = try RuleProgram(compiling: try JSONParser.parse(rule), flagKey: flagKey, algorithm: algorithm)
    return try program.evaluate(EvaluationContext(try JSONParser.parse(data)), timestamp: timestamp)
}

@Suite("JsonLogic operators")
struct JsonLogicTests {
    @Test(
        "operators follow json-logic-js",
        arguments: [
            // equality and coercion
            (#"{"==": [1, 1]}"#, "{}", "true"),
            (#"{"==": [1, "1"]}"#, "{}", "true"),
            (#"{"==": [0, false]}"#, "{}", "true"),
            (#"{"==": ["", 0]}"#, "{}", "true"),
            (#"{"==": [null, 0]}"#, "{}", "false"),
            (#"{"==": [null, null]}"#, "{}", "true"),
            (#"{"==": [[1, 2], "1,2"]}"#, "{}", "true"),
            (#"{"==": ["é", "e\u0301"]}"#, "{}", "false"),
            (#"{"===": [1, "1"]}"#, "{}", "false"),
            (#"{"===": [1, 1.0]}"#, "{}", "true"),
            (#"{"!=": [1, 2]}"#, "{}", "true"),
            (#"{"!==": [1, "1"]}"#, "{}", "true"),
            // comparison, between
            (#"{">": [2, 1]}"#, "{}", "true"),
            (#"{">=": [1, 1]}"#, "{}", "true"),
            (#"{"<": [1, 2, 3]}"#, "{}", "true"),
            (#"{"<": [1, 1, 3]}"#, "{}", "false"),
            (#"{"<=": [1, 1, 3]}"#, "{}", "true"),
            (#"{"<": ["a", "b"]}"#, "{}", "true"),
            (#"{"<": ["11", "2"]}"#, "{}", "true"),
            (#"{"<": [11, "2"]}"#, "{}", "false"),
            (#"{"<": [{"var": "missing"}, 1]}"#, "{}", "true"),
            (#"{">": ["abc", 1]}"#, "{}", "false"),
            // logic
            (#"{"!": [true]}"#, "{}", "false"),
            (#"{"!": []}"#, "{}", "true"),
            (#"{"!!": [[]]}"#, "{}", "false"),
            (#"{"!!": ["0"]}"#, "{}", "true"),
            (#"{"!!": [{}]}"#, "{}", "true"),
            (#"{"or": [false, 0, "a"]}"#, "{}", #""a""#),
            (#"{"or": [false, 0]}"#, "{}", "0"),
            (#"{"and": [true, "", 3]}"#, "{}", #""""#),
            (#"{"and": [true, 3]}"#, "{}", "3"),
            (#"{"and": []}"#, "{}", "null"),
            (#"{"if": [false, 1, false, 2, 3]}"#, "{}", "3"),
            (#"{"if": [true, "yes"]}"#, "{}", #""yes""#),
            (#"{"if": [false, "yes"]}"#, "{}", "null"),
            (#"{"if": []}"#, "{}", "null"),
            (#"{"if": "only"}"#, "{}", #""only""#),
            // arithmetic
            (#"{"+": [1, "2"]}"#, "{}", "3.0"),
            (#"{"+": ["3.14"]}"#, "{}", "3.14"),
            (#"{"+": []}"#, "{}", "0"),
            (#"{"-": [5]}"#, "{}", "-5"),
            (#"{"-": ["5"]}"#, "{}", "-5.0"),
            (#"{"-": [5, "2"]}"#, "{}", "3.0"),
            (#"{"*": [2, 3.5]}"#, "{}", "7.0"),
            (#"{"/": [4, 2]}"#, "{}", "2.0"),
            (#"{"%": [101, 2]}"#, "{}", "1"),
            (#"{"%": [-7, 2]}"#, "{}", "-1"),
            (#"{"min": [3, 1, 2]}"#, "{}", "1"),
            (#"{"max": [1, "5", 3]}"#, "{}", "5.0"),
            (#"{"max": []}"#, "{}", "null"),
            (#"{"+": [9223372036854775807, 1]}"#, "{}", "9.223372036854776e+18"),
            // strings
            (#"{"cat": ["I love", " pie"]}"#, "{}", #""I love pie""#),
            (#"{"cat": ["a", null, 1, 2.5, true, [1, [2, null]]]}"#, "{}", #""a12.5true1,2,""#),
            (#"{"cat": [1.0, 0.1, 1e21, 1e-7]}"#, "{}", #""10.11e+211e-7""#),
            (#"{"substr": ["jsonlogic", 4]}"#, "{}", #""logic""#),
            (#"{"substr": ["jsonlogic", -5]}"#, "{}", #""logic""#),
            (#"{"substr": ["jsonlogic", 1, 3]}"#, "{}", #""son""#),
            (#"{"substr": ["jsonlogic", 4, -2]}"#, "{}", #""log""#),
            (#"{"substr": ["jsonlogic", 20]}"#, "{}", #""""#),
            (#"{"substr": ["héllo", 1, 2]}"#, "{}", #""él""#),
            (#"{"in": ["Spring", "Springfield"]}"#, "{}", "true"),
            (#"{"in": ["", "abc"]}"#, "{}", "true"),
            (#"{"in": ["b", ["a", "b"]]}"#, "{}", "true"),
            (#"{"in": [1, ["1"]]}"#, "{}", "false"),
            (#"{"in": ["a", null]}"#, "{}", "false"),
            (#"{"starts_with": ["abcdef", "abc"]}"#, "{}", "true"),
            (#"{"ends_with": ["abcdef", "def"]}"#, "{}", "true"),
            (#"{"ends_with": ["abcdef", "abc"]}"#, "{}", "false"),
            (#"{"ends_with": ["abcdef", 3]}"#, "{}", "null"),
            (#"{"starts_with": ["abc"]}"#, "{}", "null"),
            (#"{"starts_with": ["abc", "a", "b"]}"#, "{}", "null"),
            (#"{"ends_with": ["é", "e\u0301"]}"#, "{}", "false"),
            // arrays
            (#"{"merge": [[1, 2], [3, 4]]}"#, "{}", "[1,2,3,4]"),
            (#"{"merge": [1, 2, [3, [4]]]}"#, "{}", "[1,2,3,[4]]"),
            (#"{"map": [{"var": "integers"}, {"*": [{"var": ""}, 2]}]}"#, #"{"integers": [1, 2, 3]}"#, "[2,4,6]"),
            (#"{"map": [{"var": "missing"}, {"var": ""}]}"#, "{}", "[]"),
            (#"{"filter": [{"var": "integers"}, {"%": [{"var": ""}, 2]}]}"#, #"{"integers": [1, 2, 3, 4, 5]}"#, "[1,3,5]"),
            (#"{"reduce": [{"var": "integers"}, {"+": [{"var": "current"}, {"var": "accumulator"}]}, 0]}"#, #"{"integers": [1, 2, 3, 4, 5]}"#, "15"),
            (#"{"reduce": [{"var": "nothing"}, {"+": [1, 2]}, 7]}"#, "{}", "7"),
            (#"{"all": [[1, 2, 3], {">": [{"var": ""}, 0]}]}"#, "{}", "true"),
            (#"{"all": [[], {">": [{"var": ""}, 0]}]}"#, "{}", "false"),
            (#"{"some": [[-1, 0, 1], {">": [{"var": ""}, 0]}]}"#, "{}", "true"),
            (#"{"none": [[-3, -2], {"==": [{"var": ""}, 0]}]}"#, "{}", "true"),
            (
                #"{"some": [{"var": "pies"}, {"==": [{"var": "filling"}, "apple"]}]}"#, #"{"pies": [{"filling": "pumpkin"}, {"filling": "apple"}]}"#,
                "true"
            ),
            // data access
            (#"{"var": "a.b"}"#, #"{"a": {"b": 1}}"#, "1"),
            (#"{"var": ["a.c", "d"]}"#, #"{"a": {"b": 1}}"#, #""d""#),
            (#"{"var": "a.c"}"#, #"{"a": {"c": null}}"#, "null"),
            (#"{"var": "list.1"}"#, #"{"list": ["x", "y"]}"#, #""y""#),
            (#"{"var": "list.length"}"#, #"{"list": ["x", "y"]}"#, "2"),
            (#"{"var": 1}"#, #"{"1": "one"}"#, #""one""#),
            (#"{"var": {"cat": ["a", ".b"]}}"#, #"{"a": {"b": "dyn"}}"#, #""dyn""#),
            (#"{"var": "targetingKey"}"#, #"{"targetingKey": "user-1"}"#, #""user-1""#),
            (#"{"var": "targetingKey"}"#, #"{"targetingKey": 12}"#, "12"),
            (#"{"var": "$flagd.flagKey"}"#, #"{"$flagd": {"flagKey": "spoofed"}}"#, #""flag""#),
            (#"{"var": "$flagd.timestamp"}"#, "{}", "1700000000"),
            (#"{"var": "$flagd.other"}"#, "{}", "null"),
            (#"{"var": ""}"#, #"{"a": 1}"#, #"{"$flagd":{"flagKey":"flag","timestamp":1700000000},"a":1}"#),
            (#"{"missing": ["a", "b", "c"]}"#, #"{"a": 1, "c": ""}"#, #"["b","c"]"#),
            (#"{"missing": "a"}"#, "{}", #"["a"]"#),
            (#"{"missing_some": [1, ["a", "b", "c"]]}"#, #"{"a": 1}"#, "[]"),
            (#"{"missing_some": [2, ["a", "b", "c"]]}"#, #"{"a": 1}"#, #"["b","c"]"#),
            // data, not operators
            (#"{"a": 1, "b": 2}"#, "{}", #"{"a":1,"b":2}"#),
            (#"[1, {"var": "x"}]"#, #"{"x": 2}"#, "[1,2]"),
        ])
    func operators(rule: String, data: String, expected: String) throws {
        let result = try evaluateRule(rule, data)
        #expect(result.jsonString == expected, "\(rule) with \(data)")
    }

    @Test("an unknown operator is an error when evaluated, and only then")
    func unknownOperators() throws {
        #expect(throws: RuleError.self) { try evaluateRule(#"{"invalid": ["x"]}"#) }
        #expect(throws: RuleError.self) { try evaluateRule(#"{"log": "x"}"#) }
        #expect(throws: RuleError.self) { try evaluateRule(#"{"==": [1, {"nope": 1}]}"#) }
        #expect(throws: RuleError.self) { try evaluateRule(#"{"starts_with": [{"nope": 1}]}"#) }
        #expect(try evaluateRule(#"{"if": [false, {"nope": 1}, "ok"]}"#) == "ok")
        #expect(try evaluateRule(#"{"or": [true, {"nope": 1}]}"#) == true)
    }

    @Test(
        "sem_ver through JsonLogic",
        arguments: [
            (#"{"sem_ver": ["1.2.3", "=", "1.2.3"]}"#, "true"),
            (#"{"sem_ver": [{"var": "v"}, ">=", "1.1"]}"#, "true"),
            (#"{"sem_ver": [{"var": "v"}, "<", "1.2"]}"#, "true"),
            (#"{"sem_ver": [{"var": "n"}, "^", "2.9.9"]}"#, "true"),
            (#"{"sem_ver": ["1.2.3", "===", "1.2.3"]}"#, "null"),
            (#"{"sem_ver": ["1.2.3", {"var": "op"}, "1.2.4"]}"#, "true"),
            (#"{"sem_ver": ["1.2.3", "="]}"#, "null"),
            (#"{"sem_ver": ["nope", "=", "1.2.3"]}"#, "null"),
            (#"{"sem_ver": [{"var": "missing"}, "=", "1.2.3"]}"#, "null"),
            (#"{"sem_ver": [true, "=", "1.2.3"]}"#, "null"),
        ])
    func semVer(rule: String, expected: String) throws {
        let result = try evaluateRule(rule, #"{"v": "v1.2.0-rc.1+b", "n": 2, "op": "<"}"#)
        #expect(result.jsonString == expected)
    }

    @Test("JavaScript number text")
    func numberText() {
        let cases: [(Double, String)] = [
            (0, "0"), (-0.0, "0"), (1, "1"), (-1.5, "-1.5"), (0.1 + 0.2, "0.30000000000000004"),
            (1e21, "1e+21"), (1e20, "100000000000000000000"), (Double("123456789012345680000")!, "123456789012345680000"),
            (1e-7, "1e-7"), (1.5e-7, "1.5e-7"), (0.000001, "0.000001"), (Double.leastNonzeroMagnitude, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"), (.nan, "NaN"), (-.infinity, "-Infinity"),
        ]
        for (d, text) in cases {
            #expect(JSONValue.jsString(d) == text)
        }
    }

    @Test("JavaScript ToNumber on strings")
    func stringToNumber() {
        let cases: [(String, Double?)] = [
            ("", 0), ("  ", 0), (" 12 ", 12), ("1e3", 1000), (".5", 0.5), ("5.", 5), ("-2.5", -2.5), ("+3", 3),
            ("0x1F", 31), ("0b101", 5), ("0o17", 15), ("Infinity", .infinity), ("-Infinity", -.infinity),
            ("abc", nil), ("12abc", nil), ("inf", nil), ("nan", nil), ("1e", nil), ("--1", nil), ("0x", nil),
        ]
        for (s, expected) in cases {
            let n = JSONValue.jsNumber(parsing: s)
            if let expected {
                #expect(n == expected, "\(s)")
            } else {
                #expect(n.isNaN, "\(s)")
            }
        }
    }
}
