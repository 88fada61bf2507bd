import FlagpoleCore

/// Signs and checks the console's session cookies and CSRF tokens (HMAC-SHA256 with a secret
/// made at start, so a daemon's restart logs everyone out). Pure: the time is passed in.
///
/// A session cookie is `v1.<token index>.<scopes>.<expiry>.<session id>.<name, hex>.<mac>`: the
/// MAC covers everything before it, so a changed scope, expiry or name fails the check. The
/// cookie holds no token. A form's CSRF token is the MAC of the session id: a page on another
/// site can neither read it nor (the cookie being `SameSite=Strict`) send the cookie at all.
struct ConsoleSessions: Sendable {
    /// One logged-in browser.
    struct Session: Sendable, Hashable {
        /// Random, 128 bits, hex.
        var id: String
        /// The token's index in the token list; -1 when no tokens are configured (open on loopback).
        var tokenIndex: Int
        /// What the token may do.
        var scopes: AccessTokens.Scope
        /// The token's name: the actor of the console's changes.
        var name: String
        /// Unix seconds.
        var expiresAt: Int64

        /// Whether the session may read the console's pages.
        var mayView: Bool { !scopes.isDisjoint(with: [.view, .operate]) }
        /// Whether the session may act.
        var mayOperate: Bool { scopes.contains(.operate) }
    }

    private let key: [UInt8]

    /// Sessions signed with `secret` (at least 32 random bytes).
    init(secret: [UInt8]) {
        precondition(secret.count >= 32, "a session secret needs at least 32 bytes")
        key = secret
    }

    /// The cookie value for `session`.
    func cookie(for session: Session) -> String {
        let body = "v1.\(session.tokenIndex).\(session.scopes.rawValue).\(session.expiresAt).\(session.id).\(Self.hex(Array(session.name.utf8)))"
        return body + "." + Self.hmacHex(key: key, message: Array(body.utf8))
    }

    /// The session a cookie value holds, if its MAC is right and it has not expired at `now`.
    func session(fromCookie value: some StringProtocol, now: Int64) -> Session? {
        let parts = value.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 7, parts[0] == "v1", value.utf8.count < 1024 else { return nil }
        let body = parts[0..<6].joined(separator: ".")
        let expected = Array(Self.hmacHex(key: key, message: Array(body.utf8)).utf8)
        guard AccessTokens.constantTimeEquals(parts[6].utf8, expected) else { return nil }
        guard let index = Int(parts[1]), let raw = UInt8(parts[2]), let expires = Int64(parts[3]), expires > now,
            let nameBytes = Self.unhex(parts[5])
        else { return nil }
        return Session(
            id: String(parts[4]), tokenIndex: index, scopes: AccessTokens.Scope(rawValue: raw), name: String(decoding: nameBytes, as: UTF8.self),
            expiresAt: expires)
    }

    /// The CSRF token of `session`'s forms.
    func csrfToken(for session: Session) -> String {
        String(Self.hmacHex(key: key, message: Array("csrf.\(session.id)".utf8)).prefix(40))
    }

    /// Whether `candidate` is `session`'s CSRF token (constant time).
    func checkCSRF(_ candidate: String?, for session: Session) -> Bool {
        guard let candidate else { return false }
        return AccessTokens.constantTimeEquals(candidate.utf8, Array(csrfToken(for: session).utf8))
    }

    /// The CSRF token of the login form, bound to the browser's pre-login nonce cookie.
    func loginToken(nonce: String) -> String {
        String(Self.hmacHex(key: key, message: Array("login.\(nonce)".utf8)).prefix(40))
    }

    // MARK: - HMAC-SHA256 (RFC 2104) over FlagpoleCore's SHA-256

    static func hmacHex(key: [UInt8], message: [UInt8]) -> String {
        var k = key.count > 64 ? unhex(SHA256.hex(key))! : key
        k += [UInt8](repeating: 0, count: 64 - k.count)
        let inner = unhex(SHA256.hex(k.map { $0 ^ 0x36 } + message))!
        return SHA256.hex(k.map { $0 ^ 0x5c } + inner)
    }

    static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 15)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func unhex(_ s: some StringProtocol) -> [UInt8]? {
        let u = Array(s.utf8)
        guard u.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(u.count / 2)
        var i = 0
        while i < u.count {
            guard let hi = ConsoleForm.hexValue(u[i]), let lo = ConsoleForm.hexValue(u[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
            i += 2
        }
        return out
    }
}
