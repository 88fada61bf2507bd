import Flagpole
import FlagpoleCore

/// OFREP's wire format (`ofrep/openapi.yaml` v0.3.0, NOTES.md §5): reading a request's context and
/// writing evaluation results. Pure functions, no I/O.
package enum OFREPCoding {
    /// A request that cannot be evaluated: answered 400 with `errorCode` INVALID_CONTEXT.
    package struct RequestError: Error, Sendable, Hashable, CustomStringConvertible {
        /// What is wrong and how to send it right.
        package var details: String

        package init(_ details: String) { self.details = details }

        package var description: String { details }
    }

    static let expectedShape = #"send {"context": {"targetingKey": "user-1", …}}"#

    /// The evaluation context of a request body `{"context": {…}}`.
    ///
    /// As flagd does, an empty body, and a body without `context` (or with `"context": null`),
    /// evaluate with the empty context, and a missing `targetingKey` is no error (flags without
    /// targeting need none; rules reading it see null).
    ///
    /// - Throws: ``RequestError`` when the body is not JSON, not an object, `context` is not an
    ///   object, or `context.targetingKey` is not a string.
    package static func context(fromBody bytes: [UInt8]) throws(RequestError) -> EvaluationContext {
        if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) { return .empty }
        let body: JSONValue
        do {
            body = try JSONParser.parse(bytes: bytes)
        } catch {
            throw RequestError("the request body is not valid JSON (\(error.location): \(error.message)); \(expectedShape)")
        }
        guard case .object(let members) = body else {
            throw RequestError("the request body must be a JSON object, not \(article(body.typeName)); \(expectedShape)")
        }
        switch members["context"] {
        case nil, .null?:
            return .empty
        case .object(var attributes)?:
            switch attributes.removeValue(forKey: "targetingKey") {
            case nil, .null?:
                return EvaluationContext(targetingKey: nil, attributes: attributes)
            case .string(let key)?:
                return EvaluationContext(targetingKey: key, attributes: attributes)
            case let other?:
                throw RequestError("context.targetingKey must be a string, not \(article(other.typeName))")
            }
        case let other?:
            throw RequestError("context must be a JSON object, not \(article(other.typeName)); \(expectedShape)")
        }
    }

    private static func article(_ typeName: String) -> String {
        switch typeName.first {
        case "a", "e", "i", "o", "u": "an \(typeName)"
        default: "a \(typeName)"
        }
    }

    // MARK: - Responses

    /// How a single evaluation is answered.
    package enum Status: Sendable, Hashable {
        /// 200: `evaluationSuccess` (with a value, or without one for the code default).
        case ok
        /// 400: `evaluationFailure` (PARSE_ERROR, GENERAL, …).
        case badRequest
        /// 404: `flagNotFound`.
        case notFound
    }

    /// The HTTP status and body of a single evaluation (`POST /ofrep/v1/evaluate/flags/{key}`).
    ///
    /// A value-less result that is no error (DISABLED, DEFAULT without a default variant) is a
    /// 200 without `value` and `variant`: the caller's code default (ADR-0006). FLAG_NOT_FOUND is a
    /// 404, every other error a 400 with its code.
    ///
    /// - Parameters:
    ///   - result: The evaluation.
    ///   - metadataJSON: `result.metadata` as ``metadataJSON(_:)`` writes it, when the caller has
    ///     it already (the daemon caches it per flag). Default: written here.
    package static func single(_ result: EvaluationResult, metadataJSON: String? = nil) -> (Status, String) {
        var out = ""
        out.reserveCapacity(512)
        let status: Status
        if let code = result.errorCode {
            status = code == .flagNotFound ? .notFound : .badRequest
            writeFailure(result, code: code, metadataJSON: metadataJSON, to: &out)
        } else {
            status = .ok
            writeSuccess(result, metadataJSON: metadataJSON, to: &out)
        }
        return (status, out)
    }

    /// Metadata as OFREP allows it (booleans, strings and numbers; others left out), keys sorted.
    package static func metadataJSON(_ metadata: [String: JSONValue]) -> String {
        var out = ""
        writeMetadata(metadata, to: &out)
        return out
    }

    /// The body of a bulk evaluation (`POST /ofrep/v1/evaluate/flags`): every flag, successes and
    /// failures inline, and the flag-set metadata.
    package static func bulk(_ evaluation: FlagpoleClient.BulkEvaluation) -> String {
        var out = "{\"flags\":["
        out.reserveCapacity(64 + 96 * evaluation.results.count)
        for (index, result) in evaluation.results.enumerated() {
            if index > 0 { out += "," }
            if let code = result.errorCode {
                writeFailure(result, code: code, to: &out)
            } else {
                writeSuccess(result, to: &out)
            }
        }
        out += "],\"metadata\":"
        writeMetadata(evaluation.flagSetMetadata, to: &out)
        out += "}"
        return out
    }

    /// A whole-request failure body: `{"errorCode": …, "errorDetails": …}` (with `key` for a
    /// single evaluation).
    package static func failure(key: String?, code: EvaluationErrorCode, details: String) -> String {
        var out = "{"
        if let key {
            out += "\"key\":"
            JSONValue.writeString(key, to: &out)
            out += ","
        }
        out += "\"errorCode\":\"\(code.rawValue)\",\"errorDetails\":"
        JSONValue.writeString(details, to: &out)
        out += "}"
        return out
    }

    static func writeSuccess(_ result: EvaluationResult, metadataJSON: String? = nil, to out: inout String) {
        out += "{\"key\":"
        JSONValue.writeString(result.flagKey, to: &out)
        out += ",\"reason\":\""
        out += result.reason.rawValue
        out += "\""
        if let value = result.value {
            if let variant = result.variant {
                out += ",\"variant\":"
                JSONValue.writeString(variant, to: &out)
            }
            out += ",\"value\":"
            value.writeJSON(to: &out)
        }
        out += ",\"metadata\":"
        if let metadataJSON { out += metadataJSON } else { writeMetadata(result.metadata, to: &out) }
        out += "}"
    }

    static func writeFailure(_ result: EvaluationResult, code: EvaluationErrorCode, metadataJSON: String? = nil, to out: inout String) {
        out += "{\"key\":"
        JSONValue.writeString(result.flagKey, to: &out)
        out += ",\"errorCode\":\"\(code.rawValue)\",\"errorDetails\":"
        let details: String
        if code == .flagNotFound {
            details = "flag '\(result.flagKey)' was not found"
        } else {
            details = result.errorMessage ?? code.rawValue
        }
        JSONValue.writeString(details, to: &out)
        out += ",\"metadata\":"
        if let metadataJSON { out += metadataJSON } else { writeMetadata(result.metadata, to: &out) }
        out += "}"
    }

    /// Metadata as OFREP allows it: booleans, strings and numbers only (others are left out),
    /// keys sorted.
    static func writeMetadata(_ metadata: [String: JSONValue], to out: inout String) {
        if metadata.isEmpty {
            out += "{}"
            return
        }
        out += "{"
        var first = true
        for key in metadata.keys.sorted() {
            let value = metadata[key]!
            switch value {
            case .bool, .string, .int, .double: break
            case .null, .array, .object: continue
            }
            if !first { out += "," }
            first = false
            JSONValue.writeString(key, to: &out)
            out += ":"
            value.writeJSON(to: &out)
        }
        out += "}"
    }

    // MARK: - ETag

    /// The bulk response's entity tag: a hash of the data version (environment, revision,
    /// staleness) and the context, quoted. It changes when the revision or the context does.
    ///
    /// Rules that read `$flagd.timestamp` can answer differently under one tag; a client polling
    /// such a flag should not send `If-None-Match`.
    package static func entityTag(version: FlagpoleClient.DataVersion, context: EvaluationContext) -> String {
        var hash = FNV1a()
        hash.add(version.description)
        hash.add([0])
        hash.add(context.jsonValue.jsonString)
        let hex = String(hash.value, radix: 16)
        return "\"" + String(repeating: "0", count: 16 - hex.count) + hex + "\""
    }

    /// Whether an `If-None-Match` header matches `tag`: one of its comma-separated tags equals it
    /// (weak comparison: a `W/` prefix is ignored), or it is `*`.
    package static func matches(ifNoneMatch header: String, tag: String) -> Bool {
        for candidate in header.split(separator: ",") {
            var c = candidate.trimmingSpaces
            if c == "*" { return true }
            if c.hasPrefix("W/") { c = c.dropFirst(2) }
            if c == tag[...] { return true }
        }
        return false
    }
}

/// 64-bit FNV-1a: small, fast and stable across processes and machines (Swift's `Hasher` is
/// seeded per process, so two daemons would disagree).
struct FNV1a {
    private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325

    mutating func add(_ bytes: some Sequence<UInt8>) {
        for b in bytes {
            value ^= UInt64(b)
            value &*= 0x0000_0100_0000_01B3
        }
    }

    mutating func add(_ text: String) {
        add(text.utf8)
    }
}

extension Substring {
    var trimmingSpaces: Substring {
        var s = self
        while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
        return s
    }
}
