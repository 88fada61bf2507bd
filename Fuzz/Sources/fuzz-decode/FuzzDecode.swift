import FlagpoleCore
import FuzzSupport
import Foundation

// Prints what fuzz inputs mean: `fuzz-decode flagfile|jsonlogic FILE…`. For a flag-file input,
// the file name and text; for a JsonLogic input, the rule and context as JSON — the form
// Tests/FlagpoleCoreTests/Fuzz/ keeps regression cases in. `--run` also runs each input (to
// reproduce a crash without the sanitizers).
@main
struct FuzzDecode {
    static func main() {
        let arguments = Array(CommandLine.arguments.dropFirst())
        guard let kind = arguments.first, kind == "flagfile" || kind == "jsonlogic" else {
            FileHandle.standardError.write(Data("usage: fuzz-decode flagfile|jsonlogic [--run] FILE…\n".utf8))
            exit(2)
        }
        let run = arguments.contains("--run")
        for path in arguments.dropFirst() where path != "--run" {
            guard let data = FileManager.default.contents(atPath: path) else {
                FileHandle.standardError.write(Data("cannot read \(path)\n".utf8))
                exit(1)
            }
            let bytes = [UInt8](data)
            if kind == "flagfile" {
                let (name, text) = FlagFileFuzz.decode(bytes)
                print("== \(path): \(name)\n\(text)")
                if run { FlagFileFuzz.run(bytes) }
            } else if let c = JsonLogicFuzz.decode(bytes) {
                print("== \(path)")
                print(JSONValue.object(["rule": c.rule, "context": c.context]).jsonString)
                if run { JsonLogicFuzz.run(c) }
            } else {
                print("== \(path): not a case (JSON mode, but not JSON)")
            }
        }
    }
}
