import Testing

@testable import FlagpoleCore

@Suite("JSON parser")
struct JSONParserTests {
    @Test("keeps integers apart from floats")
    func numbers() throws {
        let v = try JSONParser.parse(#"{"a": 1, "b": 1.0, "c": -2.5e3, "d": [true, null, "x\u00e9\n"]}"#)
        #expect(v["a"] == .int(1))
        #expect(v["b"] == .double(1.0))
        #expect(v["c"] == .double(-2500))
        #expect(v["d"] == .array([.bool(true), .null, .string("xé\n")]))
    }

    @Test(
        "reports line and column of the error",
        arguments: [
            ("{\n  \"a\": 1,\n  \"b\" 2\n}", 3, 7),
            ("[1, 2,", 1, 7),
            ("{\"a\": tru}", 1, 7),
        ])
    func errors(text: String, line: Int, column: Int) {
        #expect {
            _ = try JSONParser.parse(text)
        } throws: { error in
            guard let e = error as? JSONParseError else { return false }
            return e.location == SourceLocation(line: line, column: column)
        }
    }

    @Test("records where values start and which keys repeat")
    func sourceMap() throws {
        let text = "{\n  \"flags\": {\n    \"a\": {},\n    \"a\": {\"x\": 1}\n  }\n}"
        let (value, map) = try JSONParser.parseWithSourceMap(text)
        #expect(value["flags"]?["a"] == .object(["x": .int(1)]))
        #expect(map.locations["/flags"] == SourceLocation(line: 2, column: 12))
        #expect(map.location(of: "/flags/a/x") == SourceLocation(line: 4, column: 16))
        #expect(map.duplicateKeys.count == 1)
        #expect(map.duplicateKeys.first?.locations == [SourceLocation(line: 3, column: 5), SourceLocation(line: 4, column: 5)])
    }

    @Test("serialises with sorted keys and round-trips")
    func roundTrip() throws {
        let v: JSONValue = ["b": [1, 2.5, "q\"uote"], "a": ["z": nil, "y": false]]
        #expect(v.jsonString == #"{"a":{"y":false,"z":null},"b":[1,2.5,"q\"uote"]}"#)
        #expect(try JSONParser.parse(v.jsonString) == v)
        #expect(try JSONParser.parse(v.prettyJSONString) == v)
    }
}
