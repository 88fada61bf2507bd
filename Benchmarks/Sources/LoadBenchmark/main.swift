// Loading one environment of N flags: parse + merge + validate (FlagSetLoader.load), as
// `flagctl validate` and `flagctl sync` do, for the same flags written as YAML and as indented JSON.
//
//   cd Benchmarks && swift run -c release load-benchmark [--flags 10000] [--rounds 5] [--valid-only] [--no-check]
//
// Prints the median of the rounds in ms, wall clock and this thread's CPU time (the machine may be
// busy with other work, which shows in the wall clock only), then (unless --valid-only) the same for
// files with a problem deep inside one flag, which makes the loader find that location too.
// Unless --no-check, it also checks that both formats load to the same document with no
// diagnostics, and that each file with a problem gets one diagnostic.
import FlagpoleCore
import Foundation

func arg(_ name: String, _ fallback: Int) -> Int {
    if let i = CommandLine.arguments.firstIndex(of: name), i + 1 < CommandLine.arguments.count,
        let v = Int(CommandLine.arguments[i + 1])
    {
        return v
    }
    return fallback
}
let flagCount = arg("--flags", 10_000)
let rounds = max(1, arg("--rounds", 5))
let check = !CommandLine.arguments.contains("--no-check")
let validOnly = CommandLine.arguments.contains("--valid-only")

/// The last percentage-split flag: the one `broken` breaks.
let brokenFlag = stride(from: flagCount - 1, through: 0, by: -1).first { $0 % 3 == 2 } ?? -1

/// The mix `flagctl sync` is measured with: a third static booleans, a third email targeting, a
/// third percentage splits. `broken` makes the last split's `treatment` variant null (a warning).
func yamlText(broken: Bool = false) -> String {
    var yaml = "flags:\n"
    yaml.reserveCapacity(flagCount * 160)
    for i in 0..<flagCount {
        switch i % 3 {
        case 0:
            yaml += "  flag-\(i):\n    state: ENABLED\n    variants: {\"on\": true, \"off\": false}\n    defaultVariant: \"off\"\n"
        case 1:
            yaml += "  flag-\(i):\n    state: ENABLED\n    variants: {a: \"A\", b: \"B\"}\n    defaultVariant: a\n"
            yaml += "    targeting: {if: [{ends_with: [{var: email}, \"@team.example\"]}, b, a]}\n"
        default:
            let treatment = broken && i == brokenFlag ? "null" : "1"
            yaml += "  flag-\(i):\n    state: ENABLED\n    variants: {control: 0, treatment: \(treatment)}\n    defaultVariant: control\n"
            yaml += "    targeting: {fractional: [[control, 90], [treatment, 10]]}\n"
        }
    }
    return yaml
}

/// The same flags as JSON indented by two spaces, one member or element a line (Python's
/// `json.dump(indent=2)` layout).
func jsonText(broken: Bool = false) -> String {
    var json = "{\n  \"flags\": {\n"
    json.reserveCapacity(flagCount * 320)
    for i in 0..<flagCount {
        json += "    \"flag-\(i)\": {\n      \"state\": \"ENABLED\",\n"
        switch i % 3 {
        case 0:
            json += "      \"variants\": {\n        \"on\": true,\n        \"off\": false\n      },\n      \"defaultVariant\": \"off\"\n"
        case 1:
            json += "      \"variants\": {\n        \"a\": \"A\",\n        \"b\": \"B\"\n      },\n      \"defaultVariant\": \"a\",\n"
            json += "      \"targeting\": {\n        \"if\": [\n          {\n            \"ends_with\": [\n"
            json += "              {\n                \"var\": \"email\"\n              },\n              \"@team.example\"\n"
            json += "            ]\n          },\n          \"b\",\n          \"a\"\n        ]\n      }\n"
        default:
            let treatment = broken && i == brokenFlag ? "null" : "1"
            json += "      \"variants\": {\n        \"control\": 0,\n        \"treatment\": \(treatment)\n      },\n"
            json += "      \"defaultVariant\": \"control\",\n      \"targeting\": {\n        \"fractional\": [\n"
            json += "          [\n            \"control\",\n            90\n          ],\n"
            json += "          [\n            \"treatment\",\n            10\n          ]\n        ]\n      }\n"
        }
        json += i == flagCount - 1 ? "    }\n" : "    },\n"
    }
    json += "  }\n}"
    return json
}

func ms(_ d: Duration) -> Double { Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15 }
func fmt(_ x: Double) -> String { String(format: "%.1f", x) }

/// This thread's CPU time in ms.
func cpuTime() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t)
    return Double(t.tv_sec) * 1000 + Double(t.tv_nsec) / 1e6
}

/// Times `rounds` loads of one file; returns the last load and the medians of wall and CPU time.
func time(_ path: String, _ text: String) -> (FlagSetLoad, wall: Double, cpu: Double) {
    let clock = ContinuousClock()
    var walls: [Double] = []
    var cpus: [Double] = []
    var last: FlagSetLoad?
    for _ in 0..<rounds {
        let start = clock.now
        let cpuStart = cpuTime()
        let load = FlagSetLoader.load([FlagSource(path: path, text: text)])
        cpus.append(cpuTime() - cpuStart)
        walls.append(ms(clock.now - start))
        last = load
    }
    return (last!, walls.sorted()[rounds / 2], cpus.sorted()[rounds / 2])
}

func report(_ label: String, _ result: (FlagSetLoad, wall: Double, cpu: Double), _ extra: String = "") {
    print("  \(label): \(fmt(result.wall)) ms (CPU \(fmt(result.cpu)) ms)\(extra)")
}

print("loading \(flagCount) flags, median of \(rounds)")
let yaml = yamlText()
let json = jsonText()
let yamlResult = time("flags/prod/flags.yaml", yaml)
report("YAML, \(yaml.utf8.count / 1024) KiB", yamlResult)
let jsonResult = time("flags/prod/flags.json", json)
report("JSON, \(json.utf8.count / 1024) KiB", jsonResult)
let fromYAML = yamlResult.0, fromJSON = jsonResult.0
var problems: [String] = []
if !validOnly {
    let brokenYAML = time("flags/prod/flags.yaml", yamlText(broken: true))
    report("YAML, one deep problem", brokenYAML, brokenYAML.0.diagnostics.first.map { " at \($0.location)" } ?? "")
    let brokenJSON = time("flags/prod/flags.json", jsonText(broken: true))
    report("JSON, one deep problem", brokenJSON, brokenJSON.0.diagnostics.first.map { " at \($0.location)" } ?? "")
    if brokenYAML.0.diagnostics.count != 1 || brokenJSON.0.diagnostics.count != 1 { problems.append("expected one diagnostic per file with a problem") }
}

if check {
    if fromYAML.flags.count != flagCount { problems.append("YAML loaded \(fromYAML.flags.count) flags") }
    if fromYAML.document != fromJSON.document { problems.append("YAML and JSON load to different documents") }
    if !fromYAML.diagnostics.isEmpty || !fromJSON.diagnostics.isEmpty { problems.append("unexpected diagnostics") }
    if !problems.isEmpty {
        print("check failed: " + problems.joined(separator: "; "))
        exit(1)
    }
}
