import Testing

@testable import FlagpoleCore

@Suite("Reading YAML the way flagd does")
struct YAMLLoadingTests {
    @Test(
        "plain scalars resolve as yaml.v3 resolves them",
        arguments: [
            ("true", JSONValue.bool(true)), ("True", .bool(true)), ("TRUE", .bool(true)), ("false", .bool(false)),
            ("on", .string("on")), ("Off", .string("Off")), ("yes", .string("yes")), ("NO", .string("NO")),
            ("y", .string("y")), ("n", .string("n")),
            ("~", .null), ("null", .null), ("", .null),
            ("12", .int(12)), ("-12", .int(-12)), ("+12", .int(12)), ("0x1F", .int(31)), ("0o17", .int(15)),
            ("017", .int(15)), ("0b101", .int(5)), ("1_000", .int(1000)),
            ("1.5", .double(1.5)), ("1.0", .double(1.0)), ("1e3", .double(1000)), (".5", .double(0.5)),
            ("-2.5e-3", .double(-0.0025)), ("08", .double(8)), ("1.", .double(1)),
            ("16:00", .string("16:00")), ("2026-01-01", .string("2026-01-01")), ("1.2.3", .string("1.2.3")),
            ("0x", .string("0x")), ("1e400", .string("1e400")), ("fri 16:00", .string("fri 16:00")),
        ])
    func plainScalars(text: String, expected: JSONValue) {
        let document = SourceDocument.parse(path: "a.yaml", text: "v: \(text)\n")
        #expect(document.value?["v"] == expected)
        #expect(!document.diagnostics.contains { $0.isError })
    }

    @Test(
        "quoted, block and tagged scalars",
        arguments: [
            ("\"true\"", JSONValue.string("true")), ("'on'", .string("on")), ("\"12\"", .string("12")),
            ("!!str 12", .string("12")), ("!!float 1", .double(1)), ("!!int \"12\"", .int(12)), ("! 12", .string("12")),
            ("|\n  two\n  lines", .string("two\nlines\n")), (">-\n  folded\n  text", .string("folded text")),
        ])
    func otherScalars(text: String, expected: JSONValue) {
        let document = SourceDocument.parse(path: "a.yaml", text: "v: \(text)\n")
        #expect(document.value?["v"] == expected)
        #expect(document.diagnostics.isEmpty)
    }

    @Test("YAML 1.1 booleans used as variant names and values stay strings, with a warning at each")
    func yaml11Booleans() {
        let text = """
            flags:
              f:
                state: ENABLED
                variants:
                  on: true
                  off: false
                metadata: {approved: yes}
                defaultVariant: on
            """
        let load = LoadingTestSupport.load(text)
        #expect(load.flags["f"]?["variants"] == ["on": true, "off": false])
        #expect(load.flags["f"]?["metadata"] == ["approved": "yes"])
        #expect(load.flags["f"]?["defaultVariant"] == "on")
        #expect(LoadingTestSupport.places(load.diagnostics) == ["W 5:7 f", "W 6:7 f", "W 7:26 f", "W 8:21 f"])
        #expect(load.diagnostics[0].message.contains(#"the string "on""#))
        #expect(load.diagnostics[0].message.contains("not the boolean true"))
        #expect(load.diagnostics[2].message.contains(#"the string "yes""#))
        #expect(load.diagnostics[1].hint == #"quote it ("off") to keep the string, or write false for a boolean"#)
        #expect(!load.hasErrors)
    }

    @Test("non-string keys become strings the way Go's %v prints them; a changed spelling warns")
    func keys() {
        let document = SourceDocument.parse(
            path: "a.yaml", text: "k:\n  true: a\n  1: b\n  1.0: c\n  0x10: d\n  ~: e\n  1e6: f\n  '1.5': g\n")
        #expect(document.value?["k"] == ["true": "a", "1": "b", "16": "d", "<nil>": "e", "1e+06": "f", "1.5": "g"])
        // `1.0` also becomes "1": the key collides with `1` (flagd would keep either one).
        #expect(LoadingTestSupport.places(document.diagnostics) == ["W 4:3 -", "E 4:3 -", "W 5:3 -", "W 6:3 -", "W 7:3 -"])
        #expect(document.diagnostics[1].message == #"this key and an earlier one (a.yaml:3:3) both become "1" in JSON; flagd would keep either"#)
        #expect(document.diagnostics[2].message == #"the key 0x10 is read as a number, which flagd turns into the string "16""#)
        #expect(document.diagnostics[3].message.hasPrefix("the key ~ is read as null"))
    }

    @Test("anchors, aliases and merge keys work; explicit keys win over merged ones")
    func mergeKeys() {
        let text = """
            base: &base
              state: ENABLED
              variants: {a: 1, b: 2}
              defaultVariant: a
            flags:
              one: *base
              two:
                <<: *base
                defaultVariant: b
              three:
                defaultVariant: b
                <<: [*base]
            """
        let document = SourceDocument.parse(path: "a.yaml", text: text)
        let x: JSONValue = ["state": "ENABLED", "variants": ["a": 1, "b": 2], "defaultVariant": "a"]
        var y = x.objectValue!
        y["defaultVariant"] = "b"
        #expect(document.value?["flags"] == ["one": x, "two": .object(y), "three": .object(y)])
        #expect(document.diagnostics.isEmpty)
    }

    @Test("the same flags in YAML and in JSON load to the same document")
    func equivalence() {
        let yaml = """
            $evaluators:
              staff:
                ends_with: [{var: email}, "@example.com"]
            metadata:
              flagSetId: shop
              version: 3
            flags:
              color:
                state: ENABLED
                variants: {red: "#f00", blue: "#00f"}
                defaultVariant: red
                targeting:
                  if: [{$ref: staff}, blue, null]
              ratio:
                state: DISABLED
                variants: {low: 0.5, high: 1.0}
                defaultVariant: low
                metadata: {owner: team, rollout.minSamples: 500}
              config:
                state: ENABLED
                variants:
                  small: {size: 1, tags: [a, b], nested: {deep: true}}
                  none: {}
            """
        let json = """
            {
              "$evaluators": {"staff": {"ends_with": [{"var": "email"}, "@example.com"]}},
              "metadata": {"flagSetId": "shop", "version": 3},
              "flags": {
                "color": {"state": "ENABLED", "variants": {"red": "#f00", "blue": "#00f"}, "defaultVariant": "red",
                          "targeting": {"if": [{"$ref": "staff"}, "blue", null]}},
                "ratio": {"state": "DISABLED", "variants": {"low": 0.5, "high": 1.0}, "defaultVariant": "low",
                          "metadata": {"owner": "team", "rollout.minSamples": 500}},
                "config": {"state": "ENABLED",
                           "variants": {"small": {"size": 1, "tags": ["a", "b"], "nested": {"deep": true}}, "none": {}}}
              }
            }
            """
        let fromYAML = LoadingTestSupport.load(yaml, path: "a.yaml")
        let fromJSON = LoadingTestSupport.load(json, path: "a.json")
        #expect(fromYAML.document == fromJSON.document)
        #expect(fromYAML.diagnostics.isEmpty)
        #expect(fromJSON.diagnostics.isEmpty)
        #expect(fromYAML.flags["ratio"]?["variants"]?["high"] == .double(1.0))
        #expect(fromYAML.metadata["version"] == .int(3))
    }

    @Test("records where keys and values stand")
    func locations() {
        let text = "flags:\n  f:\n    state: ENABLED\n    variants:\n      \"x\": [1, 2]\n"
        let document = SourceDocument.parse(path: "a.yaml", text: text)
        #expect(document.sourceMap.keys["/flags/f"] == FlagpoleCore.SourceLocation(line: 2, column: 3))
        #expect(document.sourceMap.values["/flags/f/state"] == FlagpoleCore.SourceLocation(line: 3, column: 12))
        #expect(document.sourceMap.keys["/flags/f/variants/x"] == FlagpoleCore.SourceLocation(line: 5, column: 7))
        #expect(document.sourceMap.values["/flags/f/variants/x/1"] == FlagpoleCore.SourceLocation(line: 5, column: 16))
        #expect(document.location(of: "/flags/f/variants/x/1/nothing").description == "a.yaml:5:16")
    }

    @Test(
        "malformed YAML is an error at the parser's location",
        arguments: [
            ("flags:\n  a: [1, 2\n", 3, 1, "did not find expected ',' or ']'"),
            ("\tflags: 1\n", 1, 1, "cannot start any token"),
            ("", 1, 1, "holds no YAML document"),
            ("v: 1\n---\nv: 2\n", 2, 1, "another document"),
            ("a: &x {b: 1}\nc: *y\n", 2, 4, "undefined alias"),
            ("v: .inf\n", 1, 4, "not a number JSON can carry"),
            ("v: !!int abc\n", 1, 4, "cannot read \"abc\" as !!int"),
        ])
    func malformed(text: String, line: Int, column: Int, fragment: String) {
        let document = SourceDocument.parse(path: "a.yaml", text: text)
        let error = document.diagnostics.first { $0.isError }
        #expect(error?.line == line)
        #expect(error?.column == column)
        #expect(error?.message.contains(fragment) == true, "\(String(describing: error))")
    }

    @Test("a flag key twice in one YAML file is an error naming both places; the rest is still checked")
    func duplicateFlag() {
        let text = """
            flags:
              a:
                state: ENABLED
                variants: {x: 1}
              b:
                state: enabled
                variants: {x: 1}
              a:
                state: DISABLED
                variants: {x: 1}
            """
        let load = LoadingTestSupport.load(text)
        #expect(
            load.diagnostics.map(\.description) == [
                "flags/test/a.yaml:6:12: b: state must be ENABLED or DISABLED, not \"enabled\" (hint: write it in capitals: ENABLED)",
                "flags/test/a.yaml:8:3: a: flag \"a\" is defined twice in this file (first at flags/test/a.yaml:2:3) (hint: a flag key may appear once per environment; remove or rename one of them)",
            ])
        #expect(load.flags["a"]?["state"] == "ENABLED")
    }

    @Test("any other repeated key is an error too: yaml.v3 rejects the file")
    func duplicateKey() {
        let text = "flags:\n  a:\n    state: ENABLED\n    variants: {x: 1}\n    state: DISABLED\n"
        let load = LoadingTestSupport.load(text)
        #expect(LoadingTestSupport.places(load.diagnostics) == ["E 5:5 a"])
        #expect(load.diagnostics[0].message.hasPrefix("key \"state\" appears twice in one mapping (first at flags/test/a.yaml:3:5)"))
    }

    @Test("a repeated key in a flow mapping is reported where Yams finds it, with earlier block duplicates")
    func duplicateInFlow() {
        let text = "flags:\n  a:\n    state: ENABLED\n    state: DISABLED\n  b: {x: 1, x: 2}\n"
        let load = LoadingTestSupport.load(text)
        #expect(LoadingTestSupport.places(load.diagnostics) == ["E 4:5 -", "E 5:7 -"])
        #expect(load.flags.isEmpty)
    }
}
