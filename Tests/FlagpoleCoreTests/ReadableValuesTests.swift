import FlagpoleCore
import Foundation
import Testing

@Suite("Values an app developer prints and encodes")
struct ReadableValuesTests {
    @Test("reasons and error codes print their OpenFeature names; JSON prints compact; details print as one line")
    func descriptions() {
        #expect("\(EvaluationReason.targetingMatch)" == "TARGETING_MATCH")
        #expect("\(EvaluationReason.staticValue)" == "STATIC")
        #expect(String(describing: EvaluationErrorCode.flagNotFound) == "FLAG_NOT_FOUND")
        let code: EvaluationErrorCode? = .typeMismatch
        #expect("\(code.map(String.init(describing:)) ?? "")" == "TYPE_MISMATCH")
        let object: JSONValue = ["title": "Hi", "sizes": [1, 2.5], "on": true, "none": nil]
        #expect("\(object)" == #"{"none":null,"on":true,"sizes":[1,2.5],"title":"Hi"}"#)
        let hit = EvaluationDetails(flagKey: "new-checkout", value: true, variant: "on", reason: .targetingMatch)
        #expect("\(hit)" == "new-checkout = true (variant on, TARGETING_MATCH)")
        let miss = EvaluationDetails(flagKey: "limit", value: "x", reason: .error, errorCode: .flagNotFound, errorMessage: "no flag 'limit'")
        #expect("\(miss)" == #"limit = "x" (default, ERROR FLAG_NOT_FOUND: no flag 'limit')"#)
        let theme = EvaluationDetails(flagKey: "theme", value: ["bg": "#000"] as JSONValue, variant: "dark", reason: .staticValue)
        #expect("\(theme)" == ##"theme = {"bg":"#000"} (variant dark, STATIC)"##)
    }

    @Test("JSONValue round-trips through JSONEncoder and JSONDecoder, keeping integers apart from floats")
    func codable() throws {
        let value: JSONValue = [
            "int": 3, "float": 1.5, "whole float": .double(2), "s": "x", "b": false, "n": nil, "a": [1, "two", [3]], "o": ["k": 1],
        ]
        let data = try JSONEncoder().encode(value)
        let back = try JSONDecoder().decode(JSONValue.self, from: data)
        #expect(back["int"] == .int(3))
        #expect(back["float"] == .double(1.5))
        #expect(back["s"] == "x" && back["b"] == false && back["n"] == .null)
        #expect(back["a"] == [1, "two", [3]] && back["o"] == ["k": 1])
        // Nested in a Codable type of the app's own.
        struct Wrapper: Codable, Equatable { var config: JSONValue }
        let wrapped = try JSONDecoder().decode(Wrapper.self, from: Data(#"{"config": {"a": [true, null]}}"#.utf8))
        #expect(wrapped.config == ["a": [true, nil]])
        #expect(try JSONDecoder().decode(Wrapper.self, from: try JSONEncoder().encode(wrapped)) == wrapped)
    }
}
