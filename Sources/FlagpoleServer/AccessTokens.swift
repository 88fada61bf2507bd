import Foundation

/// The bearer tokens `flagctl daemon` accepts, each with what it may do.
///
/// Requests carry a token as `Authorization: Bearer <token>` or `X-API-Key: <token>` (the two
/// schemes OFREP names). Tokens are compared in constant time: every configured token is compared
/// in full, whatever the candidate, so the time taken does not tell how much of a guess was right.
///
/// The token file has one token per line, optionally followed by the scopes it grants
/// (`evaluate`, `report`, `view`, `operate`; `evaluate,report` when none are named) and a name
/// (`name=ann`, what the web console's audit entries name as the actor); `#` starts a comment:
///
/// ```
/// # flagctl daemon tokens
/// 3f9c0e7a1b2d4c6e8f0a1b2c3d4e5f60   evaluate          # the Python bots: read flags only
/// 9a8b7c6d5e4f30211f2e3d4c5b6a7988   evaluate,report   # the checkout service
/// 0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f   view,operate  name=ann   # a release manager, in the console
/// ```
///
/// `view` opens the web console's pages (`/console`); `operate` also allows its actions (kill
/// switch, overrides, rollout commands). Neither is granted unless named.
package struct AccessTokens: Sendable {
    /// What a token allows.
    package struct Scope: OptionSet, Sendable, Hashable {
        package let rawValue: UInt8
        package init(rawValue: UInt8) { self.rawValue = rawValue }

        /// Evaluate flags over OFREP.
        package static let evaluate = Scope(rawValue: 1)
        /// Report outcomes (`POST /flagpole/v1/outcomes`).
        package static let report = Scope(rawValue: 2)
        /// Read the web console's pages.
        package static let view = Scope(rawValue: 4)
        /// Act in the web console (kill switch, overrides, rollout commands); implies ``view``.
        package static let operate = Scope(rawValue: 8)
        /// What a token gets when its line names no scope, and every token of
        /// `$FLAGPOLE_DAEMON_TOKENS`: evaluate and report (the console's scopes only by name).
        package static let all: Scope = [.evaluate, .report]

        /// The scope named `name` (`evaluate`, `report`, `view` or `operate`), if any.
        package init?(name: String) {
            switch name {
            case "evaluate": self = .evaluate
            case "report": self = .report
            case "view": self = .view
            case "operate": self = .operate
            default: return nil
            }
        }
    }

    /// What a request's credentials amount to.
    package enum Decision: Sendable, Hashable {
        /// No token configured: everyone may do everything.
        case open
        /// A known token, with its scopes.
        case granted(Scope)
        /// No `Authorization: Bearer` or `X-API-Key` header (or a malformed one): 401.
        case missing
        /// A token that matches none: 401.
        case unknown
    }

    /// The shortest token accepted, in characters.
    package static let minimumLength = 16

    struct Entry: Sendable {
        var token: [UInt8]
        var scopes: Scope
        /// The token's name (`name=` in the file; else where it was configured, e.g. `tokens:3`).
        var name: String
    }

    let entries: [Entry]

    /// No tokens: authentication off.
    package static let none = AccessTokens(entries: [])

    init(entries: [Entry]) {
        self.entries = entries
    }

    /// Whether any token is configured (authentication on).
    package var isEnabled: Bool { !entries.isEmpty }

    /// How many tokens are configured.
    package var count: Int { entries.count }

    /// Tokens with every scope (e.g. from an environment variable).
    ///
    /// - Parameters:
    ///   - tokens: The tokens.
    ///   - origin: Where they came from, for error messages (e.g. `$FLAGPOLE_DAEMON_TOKENS`).
    /// - Throws: ``AccessTokensError`` for a token that is too short or holds characters other
    ///   than visible ASCII.
    package init(tokens: [String], origin: String) throws(AccessTokensError) {
        var entries: [Entry] = []
        for (index, token) in tokens.enumerated() {
            try Self.check(token, at: "\(origin), token \(index + 1)")
            entries.append(Entry(token: Array(token.utf8), scopes: .all, name: "\(origin) #\(index + 1)"))
        }
        self.entries = entries
    }

    /// Tokens from a comma- or whitespace-separated list, each with every scope: the format of
    /// `FLAGPOLE_DAEMON_TOKENS`.
    package init(list: String, origin: String) throws(AccessTokensError) {
        let tokens = list.split(whereSeparator: { $0 == "," || $0.isWhitespace }).map(String.init)
        try self.init(tokens: tokens, origin: origin)
    }

    /// Tokens from the text of a token file (see the type's documentation for the format).
    ///
    /// - Parameters:
    ///   - text: The file's contents.
    ///   - path: The file's path, for error messages.
    /// - Throws: ``AccessTokensError`` naming the line of a bad token or an unknown scope, or when
    ///   the file holds no token at all.
    package init(fileContents text: String, path: String) throws(AccessTokensError) {
        var entries: [Entry] = []
        for (number, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            let words = line.split(whereSeparator: \.isWhitespace)
            guard let first = words.first else { continue }
            let place = "\(path):\(number + 1)"
            let token = String(first)
            try Self.check(token, at: place)
            var scopes: Scope = []
            var tokenName = "\((path as NSString).lastPathComponent):\(number + 1)"
            for word in words.dropFirst() {
                if word.hasPrefix("name=") {
                    let given = word.dropFirst(5)
                    guard !given.isEmpty, given.count <= 64, given.allSatisfy({ $0.isLetter || $0.isNumber || "@._-+".contains($0) }) else {
                        throw AccessTokensError(
                            "\(place): the token's name must be 1 to 64 letters, digits or @._-+ (e.g. name=ann@example.com)")
                    }
                    tokenName = String(given)
                    continue
                }
                for name in word.split(separator: ",") {
                    guard let scope = Scope(name: String(name)) else {
                        throw AccessTokensError(
                            "\(place): unknown scope '\(name)'; the scopes are evaluate, report, view and operate (none named: evaluate,report)")
                    }
                    scopes.insert(scope)
                }
            }
            entries.append(Entry(token: Array(token.utf8), scopes: scopes.isEmpty ? .all : scopes, name: tokenName))
        }
        if entries.isEmpty {
            throw AccessTokensError("\(path) holds no token; write one per line (e.g. the output of `openssl rand -hex 32`)")
        }
        self.entries = entries
    }

    /// Tokens from a token file.
    ///
    /// - Throws: ``AccessTokensError`` when the file cannot be read or holds a bad line.
    package static func load(path: String) throws(AccessTokensError) -> AccessTokens {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw AccessTokensError("cannot read the token file \(path): \(error.localizedDescription)")
        }
        return try AccessTokens(fileContents: text, path: path)
    }

    /// These tokens and `other`'s.
    package func merging(_ other: AccessTokens) -> AccessTokens {
        AccessTokens(entries: entries + other.entries)
    }

    private static func check(_ token: String, at place: String) throws(AccessTokensError) {
        guard token.utf8.allSatisfy({ (0x21...0x7E).contains($0) }) else {
            throw AccessTokensError("\(place): a token may hold visible ASCII characters only (no spaces, no control characters)")
        }
        guard token.utf8.count >= minimumLength else {
            throw AccessTokensError(
                "\(place): the token is \(token.utf8.count) characters long; use at least \(minimumLength) (e.g. `openssl rand -hex 32`)")
        }
    }

    /// Decides what a request's headers allow.
    ///
    /// - Parameters:
    ///   - authorization: The `Authorization` header, if any (`Bearer <token>`; the scheme is
    ///     case-insensitive).
    ///   - apiKey: The `X-API-Key` header, if any.
    package func decide(authorization: String?, apiKey: String?) -> Decision {
        guard isEnabled else { return .open }
        guard let candidate = Self.candidate(authorization: authorization, apiKey: apiKey) else { return .missing }
        var scopes: Scope = []
        var matched = false
        // Compare with every token, in full, whatever matches: no early exit.
        for entry in entries {
            let equal = Self.constantTimeEquals(candidate.utf8, entry.token)
            matched = matched || equal
            scopes.formUnion(equal ? entry.scopes : [])
        }
        return matched ? .granted(scopes) : .unknown
    }

    /// The configured token equal to `candidate`: its index, scopes and name; nil when none is.
    /// Compares with every token in full, as ``decide(authorization:apiKey:)`` does.
    package func match(_ candidate: some Collection<UInt8>) -> (index: Int, scopes: Scope, name: String)? {
        var found: (index: Int, scopes: Scope, name: String)?
        for (index, entry) in entries.enumerated() {
            let equal = Self.constantTimeEquals(candidate, entry.token)
            if equal && found == nil { found = (index, entry.scopes, entry.name) }
        }
        return found
    }

    /// The name of the token at `index` (from ``match(_:)``), if there is one.
    package func name(at index: Int) -> String? {
        entries.indices.contains(index) ? entries[index].name : nil
    }

    /// Which configured token a request carries (its index), for per-token accounting such as
    /// rate limits; nil when none matches. Compares with every token in full, as
    /// ``decide(authorization:apiKey:)`` does.
    package func tokenIndex(authorization: String?, apiKey: String?) -> Int? {
        guard isEnabled, let candidate = Self.candidate(authorization: authorization, apiKey: apiKey) else { return nil }
        var found: Int?
        for (index, entry) in entries.enumerated() where Self.constantTimeEquals(candidate.utf8, entry.token) {
            found = found ?? index
        }
        return found
    }

    /// The token a request presents: `Authorization: Bearer <token>` (scheme case-insensitive),
    /// else `X-API-Key`; nil when neither (or a malformed `Authorization`).
    private static func candidate(authorization: String?, apiKey: String?) -> Substring? {
        if let authorization {
            let parts = authorization.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
            guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
            return parts[1].drop { $0 == " " }
        }
        return apiKey.map { Substring($0) }
    }

    /// Whether `a` and `b` hold the same bytes, in time that depends on their lengths only.
    package static func constantTimeEquals(_ a: some Collection<UInt8>, _ b: [UInt8]) -> Bool {
        var difference = UInt64(truncatingIfNeeded: a.count ^ b.count)
        var index = 0
        // Walk the full length of `b` (the secret), reading `a` where it has bytes.
        var iterator = a.makeIterator()
        while index < b.count {
            let x = iterator.next() ?? 0
            difference |= UInt64(x ^ b[index])
            index += 1
        }
        return difference == 0
    }
}

/// A token file or list could not be used.
package struct AccessTokensError: Error, Sendable, CustomStringConvertible {
    /// What is wrong, where, and how to fix it. Never contains a token.
    package var message: String

    package init(_ message: String) { self.message = message }

    package var description: String { message }
}
