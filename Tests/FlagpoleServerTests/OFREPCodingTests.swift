import Flagpole
import FlagpoleCore
import Testing

@testable import FlagpoleServer

@Suite("OFREP coding and access tokens (no I/O)")
struct OFREPCodingTests {
    @Test("a context: targeting key apart, attributes kept, null targeting key ignored")
    func context() throws {
        let context = try OFREPCoding.context(fromBody: Array(#"{"context": {"targetingKey": "u1", "plan": "pro", "age": 42}}"#.utf8))
        #expect(context.targetingKey == "u1")
        #expect(context.attributes == ["plan": "pro", "age": 42])
        #expect(try OFREPCoding.context(fromBody: Array(#"{"context": {"targetingKey": null}}"#.utf8)) == .empty)
        #expect(try OFREPCoding.context(fromBody: Array(" \n".utf8)) == .empty)
    }

    @Test("the ETag depends on the revision, the staleness, the environment and the context, not on key order")
    func entityTag() {
        let version = FlagpoleClient.DataVersion(environment: "prod", revision: 4, source: .redis, loadedAt: 10, isStale: false)
        let context = EvaluationContext(targetingKey: "u1", attributes: ["a": 1, "b": "x"])
        let tag = OFREPCoding.entityTag(version: version, context: context)
        #expect(tag == OFREPCoding.entityTag(version: version, context: EvaluationContext(targetingKey: "u1", attributes: ["b": "x", "a": 1])))
        var next = version
        next.revision = 5
        var stale = version
        stale.isStale = true
        var test = version
        test.environment = "test"
        let others = [
            OFREPCoding.entityTag(version: next, context: context), OFREPCoding.entityTag(version: stale, context: context),
            OFREPCoding.entityTag(version: test, context: context),
            OFREPCoding.entityTag(version: version, context: EvaluationContext(targetingKey: "u2", attributes: ["a": 1, "b": "x"])),
        ]
        #expect(Set(others + [tag]).count == 5)
    }

    @Test("If-None-Match: exact, weak, listed and * match; others do not")
    func ifNoneMatch() {
        let tag = "\"0123456789abcdef\""
        #expect(OFREPCoding.matches(ifNoneMatch: tag, tag: tag))
        #expect(OFREPCoding.matches(ifNoneMatch: "W/\(tag)", tag: tag))
        #expect(OFREPCoding.matches(ifNoneMatch: "\"x\" , \(tag)", tag: tag))
        #expect(OFREPCoding.matches(ifNoneMatch: "*", tag: tag))
        #expect(!OFREPCoding.matches(ifNoneMatch: "\"0123456789abcdeF\"", tag: tag))
        #expect(!OFREPCoding.matches(ifNoneMatch: "0123456789abcdef", tag: tag))
    }

    @Test("metadata keeps booleans, strings and numbers only")
    func metadata() {
        let result = EvaluationResult(
            flagKey: "f", value: .bool(true), variant: "on", reason: .staticValue,
            metadata: ["owner": "team", "weight": 0.5, "n": 2, "on": true, "list": [1], "nested": ["a": 1], "gone": .null])
        let (status, body) = OFREPCoding.single(result)
        #expect(status == .ok)
        #expect(body == #"{"key":"f","reason":"STATIC","variant":"on","value":true,"metadata":{"n":2,"on":true,"owner":"team","weight":0.5}}"#)
    }

    @Test("the metadata cache answers a flag's metadata as written, and the new one once the flag's metadata changes")
    func metadataCache() {
        let cache = MetadataCache(limit: 2)
        func result(_ key: String, _ metadata: [String: JSONValue], error: EvaluationErrorCode? = nil) -> EvaluationResult {
            EvaluationResult(
                flagKey: key, value: error == nil ? .bool(true) : nil, variant: error == nil ? "on" : nil,
                reason: error == nil ? .staticValue : .error, errorCode: error, metadata: metadata)
        }
        let v1: [String: JSONValue] = ["owner": "team-a", "version": "1"]
        #expect(cache.json(for: result("f", v1)) == #"{"owner":"team-a","version":"1"}"#)
        #expect(cache.json(for: result("f", v1)) == #"{"owner":"team-a","version":"1"}"#)
        #expect(cache.count == 1)
        // The flag changed: a different dictionary, the new JSON.
        #expect(cache.json(for: result("f", ["owner": "team-b", "version": "1"])) == #"{"owner":"team-b","version":"1"}"#)
        // Unknown keys answer the flag-set metadata and are never kept; the limit empties the cache.
        #expect(cache.json(for: result("nope", ["set": "s"], error: .flagNotFound)) == #"{"set":"s"}"#)
        #expect(cache.count == 1, "unknown keys are not kept")
        #expect(cache.json(for: result("g", ["x": 1])) == #"{"x":1}"#)
        #expect(cache.count == 2)
        #expect(cache.json(for: result("h", ["y": 2])) == #"{"y":2}"#)
        #expect(cache.count == 1, "past the limit the cache starts over")
        #expect(cache.json(for: result("f", ["owner": "team-c"])) == #"{"owner":"team-c"}"#)
    }

    @Test("constant-time comparison: equal only for the same bytes and length")
    func constantTime() {
        let secret = Array("abcdefghijklmnop".utf8)
        #expect(AccessTokens.constantTimeEquals("abcdefghijklmnop".utf8, secret))
        #expect(!AccessTokens.constantTimeEquals("abcdefghijklmnoq".utf8, secret))
        #expect(!AccessTokens.constantTimeEquals("abcdefghijklmno".utf8, secret))
        #expect(!AccessTokens.constantTimeEquals("abcdefghijklmnopq".utf8, secret))
        #expect(!AccessTokens.constantTimeEquals("".utf8, secret))
    }

    @Test("token file: scopes per line, comments, both scopes by default; decisions by header")
    func tokenFile() throws {
        let tokens = try AccessTokens(
            fileContents: """
                # readers
                reader-token-0123456789   evaluate   # the bots

                writer-token-0123456789 evaluate,report
                admin-token-01234567890
                """, path: "t.txt")
        #expect(tokens.count == 3)
        #expect(tokens.decide(authorization: "Bearer reader-token-0123456789", apiKey: nil) == .granted(.evaluate))
        #expect(tokens.decide(authorization: "BEARER writer-token-0123456789", apiKey: nil) == .granted(.all))
        #expect(tokens.decide(authorization: nil, apiKey: "admin-token-01234567890") == .granted(.all))
        #expect(tokens.decide(authorization: nil, apiKey: nil) == .missing)
        #expect(tokens.decide(authorization: "Token x", apiKey: nil) == .missing)
        #expect(tokens.decide(authorization: "Bearer reader-token-012345678", apiKey: nil) == .unknown)
        #expect(AccessTokens.none.decide(authorization: nil, apiKey: nil) == .open)
    }

    @Test(
        "bad token files say where and how to fix it, and never print a token",
        arguments: [
            ("short-token\n", "t.txt:1: the token is 11 characters long; use at least 16"),
            ("# only a comment\n\n", "t.txt holds no token"),
            ("good-token-0123456789 evaluate,write\n", "t.txt:1: unknown scope 'write'; the scopes are evaluate, report, view and operate"),
        ])
    func badTokenFiles(text: String, message: String) {
        #expect {
            _ = try AccessTokens(fileContents: text, path: "t.txt")
        } throws: { error in
            let description = "\(error)"
            return description.contains(message) && !description.contains("short-token") && !description.contains("good-token")
        }
    }

    @Test("a token list from the environment: comma- or space-separated, every scope")
    func tokenList() throws {
        let tokens = try AccessTokens(list: "first-token-0123456789, second-token-0123456789", origin: "$FLAGPOLE_DAEMON_TOKENS")
        #expect(tokens.count == 2)
        #expect(tokens.decide(authorization: "Bearer second-token-0123456789", apiKey: nil) == .granted(.all))
        #expect(throws: AccessTokensError.self) { try AccessTokens(list: "tiny", origin: "$FLAGPOLE_DAEMON_TOKENS") }
    }
}
