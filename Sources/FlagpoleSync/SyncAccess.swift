import FlagpoleServer
import GRPCCore

/// Who may sync which flag set: the daemon's tokens (the same rules as OFREP) and the selector a
/// provider sends. Pure: takes the request's metadata values, returns the verdict.
package struct SyncAccess: Sendable {
    /// The environment the daemon serves.
    package var environment: String
    /// The daemon's tokens; ``AccessTokens/none`` for none.
    package var tokens: AccessTokens

    package init(environment: String, tokens: AccessTokens) {
        self.environment = environment
        self.tokens = tokens
    }

    /// Why a request may not sync, as the gRPC status to end it with; nil when it may.
    ///
    /// - Parameters:
    ///   - authorization: The `authorization` metadata (`Bearer TOKEN`), if any.
    ///   - apiKey: The `x-api-key` metadata, if any.
    ///   - selector: The `flagd-selector` metadata, else the request's (deprecated) `selector`
    ///     field; empty for none.
    package func refusal(authorization: String?, apiKey: String?, selector: String) -> RPCError? {
        switch tokens.decide(authorization: authorization, apiKey: apiKey) {
        case .open:
            break
        case .granted(let scopes) where scopes.contains(.evaluate):
            break
        case .granted:
            return RPCError(
                code: .permissionDenied, message: "this token may not read flags; grant it the scope 'evaluate' in the token file")
        case .missing:
            return RPCError(
                code: .unauthenticated,
                message: "missing token: send the metadata 'authorization: Bearer <token>' (or 'x-api-key: <token>')")
        case .unknown:
            return RPCError(
                code: .unauthenticated,
                message: "unknown token: check the token the daemon was given (--tokens-file or $FLAGPOLE_DAEMON_TOKENS)")
        }
        if let problem = selectorProblem(selector) { return RPCError(code: .notFound, message: problem) }
        return nil
    }

    /// Why `selector` names no flag set this daemon serves; nil when it names its environment (or
    /// is empty). Accepted: `ENV`, `flagSetId=ENV`, `environment=ENV`.
    package func selectorProblem(_ selector: String) -> String? {
        let trimmed = selector.trimmingSpaces
        if trimmed.isEmpty { return nil }
        var value = Substring(trimmed)
        if let equals = trimmed.firstIndex(of: "=") {
            let key = trimmed[..<equals].trimmingSpaces
            guard key == "flagSetId" || key == "environment" else {
                return
                    "selector '\(selector)': this daemon selects by flag set only; use 'flagSetId=\(environment)' (or no selector)"
            }
            value = Substring(trimmed[trimmed.index(after: equals)...].trimmingSpaces)
        }
        guard value == environment else {
            return
                "selector '\(selector)' names the flag set '\(value)', but this daemon serves the environment '\(environment)'; connect to that environment's daemon, or select 'flagSetId=\(environment)'"
        }
        return nil
    }
}

extension StringProtocol {
    fileprivate var trimmingSpaces: String {
        String(drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }
}
