import FlagpoleCore
import Foundation

extension FlagpoleClient {
    /// An object flag's value decoded as `T`, or `defaultValue` when the flag is missing,
    /// disabled, broken, or its value does not fit `T`.
    ///
    /// ```swift
    /// struct Banner: Decodable, Sendable { var title: String; var color: String }
    /// let banner = flags.object("homepage-banner", as: Banner.self, default: Banner(title: "Welcome", color: "blue"))
    /// ```
    public func object<T: Decodable & Sendable>(
        _ key: String, as type: T.Type, default defaultValue: T, context: EvaluationContext = .empty
    ) -> T {
        objectDetails(key, as: type, default: defaultValue, context: context).value
    }

    /// ``object(_:as:default:context:)`` with the evaluation details. A value that does not fit
    /// `T` gives `defaultValue` with reason `ERROR`, error code `TYPE_MISMATCH`, and a message
    /// naming the path that did not decode (`homepage-banner: at color: expected String, found a number`).
    public func objectDetails<T: Decodable & Sendable>(
        _ key: String, as type: T.Type, default defaultValue: T, context: EvaluationContext = .empty
    ) -> EvaluationDetails<T> {
        let raw = objectDetails(key, default: .null, context: context)
        // The code default was served (missing, disabled, broken, no default variant): keep why.
        guard raw.variant != nil, raw.reason != .error else {
            return EvaluationDetails(
                flagKey: key, value: defaultValue, variant: nil, reason: raw.reason, errorCode: raw.errorCode,
                errorMessage: raw.errorMessage, metadata: raw.metadata)
        }
        do {
            let value = try JSONDecoder().decode(T.self, from: Data(raw.value.jsonString.utf8))
            return EvaluationDetails(
                flagKey: key, value: value, variant: raw.variant, reason: raw.reason, metadata: raw.metadata)
        } catch {
            return EvaluationDetails(
                flagKey: key, value: defaultValue, variant: nil, reason: .error, errorCode: .typeMismatch,
                errorMessage: "\(key): \(Self.describe(error, as: T.self))", metadata: raw.metadata)
        }
    }

    /// Where and why a value did not decode, in one line.
    static func describe<T>(_ error: any Error, as type: T.Type) -> String {
        func path(_ p: [any CodingKey]) -> String {
            p.isEmpty ? "the top level" : p.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
        }
        guard let error = error as? DecodingError else { return "the value does not decode as \(T.self): \(error)" }
        switch error {
        case .typeMismatch(let expected, let c):
            return "at \(path(c.codingPath)): expected \(expected) (\(c.debugDescription))"
        case .valueNotFound(let expected, let c):
            return "at \(path(c.codingPath)): expected \(expected), found null"
        case .keyNotFound(let key, let c):
            return "at \(path(c.codingPath + [key])): missing (\(T.self) requires it)"
        case .dataCorrupted(let c):
            return "at \(path(c.codingPath)): \(c.debugDescription)"
        @unknown default:
            return "the value does not decode as \(T.self): \(error)"
        }
    }
}
