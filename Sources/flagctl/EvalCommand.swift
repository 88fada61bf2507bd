import ArgumentParser
import FlagpoleControl
import FlagpoleCore
import Foundation

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Evaluate flags from the files, offline: what does user X get?",
        discussion: """
            flagctl eval FLAG --env ENV [--context JSON] [--type T] [--default VALUE]
              prints the value, variant, reason and error code for one context.
            flagctl eval --flags PATH --jsonl < cases.jsonl
              reads JSON lines {"flag": …, "context": {…}, "type": …, "default": …} ("type" and "default"
              optional: the type then comes from the flag's variants, the default is its zero value) and
              writes one line per input, in order: {"flag","value","variant","reason","errorCode"}.

            --flags takes a flags folder (with --env), an environment folder, or a single flagd file.
            Semantics are flagd's; fractional uses the project config's algorithm (v3 unless set).
            Exit status: 0 evaluated (errors are results, not failures), 1 invalid flag files, 2 usage.
            """
    )

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The flag to evaluate (not with --jsonl).")
    var flag: String?

    @Option(help: ArgumentHelp("The evaluation context as JSON, e.g. '{\"targetingKey\":\"u1\",\"email\":\"a@example.com\"}'.", valueName: "json"))
    var context: String?

    @Option(help: "The type to read the flag as: boolean, string, integer, float or object (default: from its variants).")
    var type: FlagValueType?

    @Option(name: .customLong("default"), help: ArgumentHelp("The code default, as JSON (default: the type's zero value).", valueName: "json"))
    var defaultValue: String?

    @Flag(help: "Read JSON lines from standard input and write one result line each.")
    var jsonl = false

    @Option(help: "The fractional bucketing algorithm, v3 or v2 (default: the project config's).")
    var fractional: FractionalAlgorithm?

    @Flag(help: "Print the result as JSON.")
    var json = false

    func validate() throws {
        if jsonl && flag != nil { throw ValidationError("give FLAG or --jsonl, not both") }
        if !jsonl && flag == nil { throw ValidationError("name a FLAG to evaluate, or use --jsonl") }
    }

    func run() throws {
        let env = global.env ?? ProcessInfo.processInfo.environment["FLAGPOLE_ENV"]
        let evaluation: OfflineEvaluation
        do {
            evaluation = try OfflineEvaluation(path: global.flags, environment: env, algorithm: fractional)
        } catch {
            Output.error(error.description)
            throw ExitCode(2)
        }
        if evaluation.load.hasErrors {
            for d in evaluation.load.diagnostics where d.isError { FileHandle.standardError.write(Data((d.description + "\n").utf8)) }
            Output.error("the flag files are invalid; fix them (flagctl validate) before evaluating")
            throw ExitCode.failure
        }
        if jsonl {
            let input = FileHandle.standardInput.readDataToEndOfFile()
            let output = evaluation.evaluateJSONLines([UInt8](input))
            FileHandle.standardOutput.write(Data(output))
            return
        }
        let ctx: EvaluationContext
        do { ctx = EvaluationContext(try JSONParser.parse(context ?? "{}")) } catch {
            throw ValidationError("--context is not valid JSON: \(error)")
        }
        var fallback: JSONValue?
        if let defaultValue {
            do { fallback = try JSONParser.parse(defaultValue) } catch {
                // A bare word is a string default: --default off
                fallback = .string(defaultValue)
            }
        }
        let flag = self.flag!
        let result = evaluation.evaluate(flag, context: ctx, type: type, default: fallback)
        if json {
            Output.json([
                "flag": .string(flag), "value": result.value ?? .null, "variant": result.variant.map { .string($0) } ?? .null,
                "reason": .string(result.reason.rawValue), "errorCode": result.errorCode.map { .string($0.rawValue) } ?? .null,
                "errorMessage": result.errorMessage.map { .string($0) } ?? .null, "metadata": .object(result.metadata),
            ])
            return
        }
        print("flag:    \(flag)")
        print("value:   \(result.value?.jsonString ?? "null")")
        print("variant: \(result.variant ?? "-")")
        print("reason:  \(result.reason.rawValue)")
        if let code = result.errorCode { print("error:   \(code.rawValue)" + (result.errorMessage.map { " — \($0)" } ?? "")) }
    }
}

extension FlagValueType: ExpressibleByArgument {}
extension FractionalAlgorithm: ExpressibleByArgument {}
