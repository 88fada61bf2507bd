import Testing

@testable import FlagpoleCore

@Suite("Locations found on demand")
struct DeferredLocationTests {
    static let yaml = """
        base: &base
          state: ENABLED
          variants: {"on": true, "off": false}
        $evaluators:
          staff: {ends_with: [{var: email}, "@example.com"]}
        metadata: {flagSetId: shop, "a/b~c": 1}
        flags:
          one: *base
          two:
            <<: *base
            defaultVariant: "off"
            targeting: {if: [{$ref: staff}, "on", "off"]}
          "x/y~z":
            state: DISABLED
            variants:
              big: {list: [1, [2, {deep: [3, 4]}]], "k/~": null}
          three:
            <<: [*base, {defaultVariant: "on"}]
            variants: {"on": 1, "off": 0}
          1.0: {state: ENABLED}
          1: {state: ENABLED}

        """

    static let json = """
        {
          "$evaluators": {"staff": {"ends_with": [{"var": "email"}, "@example.com"]}},
          "flags": {
            "one": {"state": "ENABLED", "variants": {"on": true, "off": false}},
            "x/y~z": {"state": "DISABLED", "variants": {"big": {"list": [1, [2, {"deep": [3, 4]}]], "k/~": null}}},
            "": {"state": "ENABLED", "variants": {"": []}}
          },
          "metadata": {"flagSetId": "shop"}
        }
        """

    /// Every pointer the full map knows, each one level deeper, and some it does not.
    static func pointers(_ document: SourceDocument) -> [String] {
        var pointers = Set(document.sourceMap.values.keys).union(document.sourceMap.keys.keys)
        for p in Array(pointers) {
            pointers.formUnion([p + "/0", p + "/nothing", p + "/0/1/2/3"])
        }
        pointers.formUnion(["", "/", "//", "/flags/", "/flags/01", "/flags/-1", "/flags/x~1y~0z/variants/big/list/01", "no-slash"])
        return pointers.sorted()
    }

    @Test("the loader's documents answer every pointer as the full parse does", arguments: [("a.yaml", yaml), ("a.json", json)])
    func sameAnswers(path: String, text: String) {
        let full = SourceDocument.parse(path: path, text: text)
        let loading = SourceDocument.parseForLoading(path: path, text: text)
        #expect(full.deferred == nil)
        #expect(loading.deferred != nil)
        #expect(loading.value == full.value)
        #expect(loading.diagnostics.map(\.description) == full.diagnostics.map(\.description))
        #expect(loading.sourceMap.values.keys.allSatisfy { JSONPointer.depth($0) <= SourceDocument.loadingDepth })
        let pointers = Self.pointers(full)
        #expect(pointers.count > DeferredLocations.lookupsBeforeMap)
        // The first deep lookups read the log; the later ones the map built from it.
        for round in 0..<2 {
            for p in pointers {
                #expect(loading.location(of: p) == full.location(of: p), "round \(round): \(p)")
                #expect(loading.keyLocation(of: p) == full.keyLocation(of: p), "round \(round): \(p)")
            }
        }
        #expect(loading.withFullSourceMap().sourceMap == full.sourceMap)
    }

    @Test("a deep location is found without building the map")
    func oneLookup() {
        let loading = SourceDocument.parseForLoading(path: "a.yaml", text: Self.yaml)
        #expect(loading.location(of: "/flags/x~1y~0z/variants/big/list/1/1/deep/1").description == "a.yaml:16:38")
        #expect(loading.keyLocation(of: "/flags/x~1y~0z/variants/big/k~1~0").description == "a.yaml:16:45")
        #expect(loading.location(of: "/flags/two/targeting/if/0/$ref").description == "a.yaml:12:29")
    }

    @Test("a JSON file with a repeated key is read with every location, and the repeat reported")
    func repeatedJSONKey() {
        let text = "{\"flags\": {\"a\": {\"state\": \"ENABLED\"}, \"a\": {\"state\": \"DISABLED\"}}}"
        let full = SourceDocument.parse(path: "a.json", text: text)
        let loading = SourceDocument.parseForLoading(path: "a.json", text: text)
        #expect(loading.deferred == nil)
        #expect(loading.sourceMap == full.sourceMap)
        #expect(loading.diagnostics.map(\.description) == full.diagnostics.map(\.description))
        #expect(loading.diagnostics.count == 1)
    }

    @Test("malformed JSON is reported the same way")
    func malformedJSON() {
        let text = "{\"flags\": {\"a\": tru}}"
        let loading = SourceDocument.parseForLoading(path: "a.json", text: text)
        #expect(loading.value == nil)
        #expect(loading.diagnostics.map(\.description) == SourceDocument.parse(path: "a.json", text: text).diagnostics.map(\.description))
    }

    @Test("a lazy pointer spells what JSONPointer.child builds")
    func lazyPointer() {
        var lazy = LazyPointer("/flags/f")
        var built = "/flags/f"
        for (i, token) in ["targeting", "a/b", "~", "if", "", "x~1"].enumerated() {
            lazy = lazy.child(token).child(i)
            built = JSONPointer.child(JSONPointer.child(built, token), i)
            #expect(lazy.string == built)
        }
        #expect(NoPointer().child("x").child(3).string == "")
    }
}
