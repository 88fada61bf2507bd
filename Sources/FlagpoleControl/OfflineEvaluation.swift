import FlagpoleCore
import FlagpoleRollout
import Foundation

/// Evaluating flags straight from files, with no Redis: `flagctl eval`.
package struct OfflineEvaluation: Sendable {
    package let load: FlagSetLoad
    package let flagSet: CompiledFlagSet

    /// Loads flags from `path`: a single flag file, an environment folder, or a flags folder (then
    /// `environment` picks the folder). The fractional algorithm comes from `algorithm`, else the
    /// project config, else v3.
    package init(path: String, environment: String?, algorithm: FractionalAlgorithm?) throws(FlagDirectoryError) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw FlagDirectoryError(code: .notFound, path: path, message: "no such file or folder")
        }
        let load: FlagSetLoad
        var configAlgorithm: FractionalAlgorithm = .v3
        if !isDirectory.boolValue {
            let parent = (path as NSString).deletingLastPathComponent
            for candidate in [parent, (parent as NSString).deletingLastPathComponent] where FlagDirectory(root: candidate).configPath != nil {
                configAlgorithm = FlagDirectory(root: candidate).loadConfig().config.fractionalAlgorithm
                break
            }
            load = FlagDirectory.load(files: [path], options: .init(fractionalAlgorithm: algorithm ?? configAlgorithm))
        } else {
            let directory = FlagDirectory(root: path)
            let files = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
            let holdsFlagFiles = files.contains { FlagDirectory.isFlagFile($0) && !ProjectConfig.fileNames.contains($0) }
            if holdsFlagFiles {
                let parent = FlagDirectory(root: (path as NSString).deletingLastPathComponent)
                if parent.configPath != nil { configAlgorithm = parent.loadConfig().config.fractionalAlgorithm }
                load = FlagDirectory.load(
                    files: try FlagDirectory.flagFiles(under: path), options: .init(fractionalAlgorithm: algorithm ?? configAlgorithm))
            } else {
                guard let environment else {
                    let names = (try? directory.environmentNames()) ?? []
                    throw FlagDirectoryError(
                        code: .unknownEnvironment, path: path,
                        message: "a flags folder: pick an environment with --env (\(names.joined(separator: ", ")))")
                }
                if directory.configPath != nil { configAlgorithm = directory.loadConfig().config.fractionalAlgorithm }
                load = try directory.loadEnvironment(environment, options: .init(fractionalAlgorithm: algorithm ?? configAlgorithm))
            }
        }
        self.load = load
        self.flagSet = CompiledFlagSet(load.document, options: .init(fractionalAlgorithm: algorithm ?? configAlgorithm))
    }

    /// The type a flag's variants have: all booleans, all strings, all integers, all numbers, else object.
    package func inferredType(of flag: String) -> FlagValueType {
        let values = Array((load.flags[flag]?["variants"]?.objectValue ?? [:]).values)
        if values.isEmpty { return .boolean }
        if values.allSatisfy({ if case .bool = $0 { true } else { false } }) { return .boolean }
        if values.allSatisfy({ if case .string = $0 { true } else { false } }) { return .string }
        if values.allSatisfy({ if case .int = $0 { true } else { false } }) { return .integer }
        if values.allSatisfy({ $0.numberValue != nil }) { return .float }
        return .object
    }

    /// The zero value a type's default falls back to when the caller gives none.
    package static func zeroValue(_ type: FlagValueType) -> JSONValue {
        switch type {
        case .boolean: return false
        case .string: return ""
        case .integer: return 0
        case .float: return 0.0
        case .object: return .object([:])
        }
    }

    /// Evaluates one flag: the value (the default when the flag gives none), variant, reason, error.
    package func evaluate(_ flag: String, context: EvaluationContext, type: FlagValueType?, default defaultValue: JSONValue?) -> EvaluationResult {
        let type = type ?? inferredType(of: flag)
        var result = flagSet.evaluate(flag, type: type, context: context)
        if result.value == nil || result.errorCode != nil { result.value = defaultValue ?? Self.zeroValue(type) }
        if case .float = type, case .int(let i)? = result.value { result.value = .double(Double(i)) }
        return result
    }

    /// One JSON line in, one JSON line out: `{"flag","context","type","default"}` →
    /// `{"flag","value","variant","reason","errorCode"}`. A line that is not such an object gives
    /// `reason: ERROR, errorCode: INVALID_CONTEXT` (or PARSE_ERROR) with the line number in `errorMessage`.
    package func evaluateJSONLines(_ input: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(input.count)
        var lineNumber = 0
        var start = 0
        func emit(_ value: JSONValue) {
            out.append(contentsOf: value.jsonString.utf8)
            out.append(0x0A)
        }
        while start < input.count {
            var end = start
            while end < input.count && input[end] != 0x0A { end += 1 }
            lineNumber += 1
            let line = Array(input[start..<end])
            start = end + 1
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
            let request: JSONValue
            do {
                request = try JSONParser.parse(bytes: line)
            } catch {
                emit([
                    "flag": .null, "value": .null, "variant": .null, "reason": "ERROR", "errorCode": "PARSE_ERROR",
                    "errorMessage": .string("line \(lineNumber): \(error)"),
                ])
                continue
            }
            guard case .string(let flag)? = request["flag"] else {
                emit([
                    "flag": .null, "value": .null, "variant": .null, "reason": "ERROR", "errorCode": "INVALID_CONTEXT",
                    "errorMessage": .string("line \(lineNumber): needs \"flag\" (a string)"),
                ])
                continue
            }
            var type: FlagValueType?
            if case .string(let t)? = request["type"] {
                guard let parsed = FlagValueType(rawValue: t) else {
                    emit([
                        "flag": .string(flag), "value": .null, "variant": .null, "reason": "ERROR", "errorCode": "INVALID_CONTEXT",
                        "errorMessage": .string("line \(lineNumber): unknown type \"\(t)\" (boolean, string, integer, float, object)"),
                    ])
                    continue
                }
                type = parsed
            }
            let contextValue = request["context"] ?? .object([:])
            guard case .object = contextValue else {
                emit([
                    "flag": .string(flag), "value": request["default"] ?? .null, "variant": .null, "reason": "ERROR", "errorCode": "INVALID_CONTEXT",
                    "errorMessage": .string("line \(lineNumber): \"context\" must be an object"),
                ])
                continue
            }
            let result = evaluate(flag, context: EvaluationContext(contextValue), type: type, default: request["default"])
            // Written by hand to keep the documented field order.
            var text = "{\"flag\":"
            JSONValue.writeString(flag, to: &text)
            text += ",\"value\":"
            text += (result.value ?? .null).jsonString
            text += ",\"variant\":"
            if let v = result.variant { JSONValue.writeString(v, to: &text) } else { text += "null" }
            text += ",\"reason\":\""
            text += result.reason.rawValue
            text += "\",\"errorCode\":"
            if let code = result.errorCode { text += "\"" + code.rawValue + "\"" } else { text += "null" }
            text += "}\n"
            out.append(contentsOf: text.utf8)
        }
        return out
    }
}
