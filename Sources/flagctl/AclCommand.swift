import ArgumentParser
import FlagpoleStore
import Foundation

/// `flagctl acl`: the `ACL SETUSER` line of a least-privilege Redis user for one role.
struct AclCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "acl",
        abstract: "Print the Redis ACL user (Redis 7+) for an app, a writer or the daemon of one environment.",
        discussion: """
            Prints an `ACL SETUSER` line to run with redis-cli as an admin (standard output),
            and what the user is for and the URL to give it (standard error). Nothing is sent to
            Redis.

            Roles:
              app     (default) a service embedding the client library: reads the
                      environment's flags and follows its changes; writes only its outcome
                      counters and heartbeats. It can change no flag, and cannot touch any
                      other environment: a compromised test app cannot add errors to prod's
                      counters and make the watcher revert a prod flag.
              writer  flagctl for people and CI: sync, set, rollouts, restore, history —
                      for --env only, or every environment with --all-environments.
              daemon  flagctl daemon for one environment: OFREP, outcome flushes, the
                      rollout watcher. Or run the daemon's HTTP side as an app user and give
                      the watcher a daemon user with `flagctl daemon --watcher-redis URL`.

            The password is random unless --password is given. Examples:

              flagctl acl --env prod --role app | redis-cli -h redis.internal --user admin --askpass
              flagctl acl --env prod --role daemon --user flagpole-watcher
            """
    )

    @OptionGroup var global: GlobalOptions

    @Option(help: ArgumentHelp("app, writer or daemon.", valueName: "role"))
    var role: AccessRules.Role = .app

    @Flag(help: "A writer of every environment (only with --role writer).")
    var allEnvironments = false

    @Option(help: ArgumentHelp("The user name (default: flagpole-ROLE-ENV).", valueName: "name"))
    var user: String?

    @Option(help: ArgumentHelp("The password (default: 32 random hex characters).", valueName: "password"))
    var password: String?

    @Option(help: ArgumentHelp("The host:port in the printed URL.", valueName: "host:port"))
    var address = "HOST:6379"

    func validate() throws {
        if allEnvironments && role != .writer {
            throw ValidationError("--all-environments is for --role writer; an \(role.rawValue) user is always limited to one environment")
        }
        if let env = try environment(), !StoreLayout.isValidEnvironmentName(env) {
            throw ValidationError(
                "invalid environment name '\(env)': use letters, digits, '_', '.' and '-' (at most 64, starting with a letter or digit)")
        }
        if let user, user.isEmpty || user.contains(where: { $0.isWhitespace || $0 == ">" || $0 == "<" }) {
            throw ValidationError("--user '\(user)' must be a non-empty name without spaces, '<' or '>'")
        }
        if let password, password.isEmpty || password.contains(where: \.isWhitespace) {
            throw ValidationError("--password must be non-empty and without spaces")
        }
    }

    /// The environment, or nil for a writer of every environment.
    func environment() throws -> String? {
        if allEnvironments { return nil }
        do {
            return try global.environment()
        } catch {
            throw ValidationError("no environment: pass --env NAME (or set FLAGPOLE_ENV)\(role == .writer ? ", or --all-environments" : "")")
        }
    }

    func run() throws {
        let environment = try environment()
        guard let rules = AccessRules.rules(for: role, environment: environment) else {
            throw ValidationError("an \(role.rawValue) user needs --env")
        }
        let user = user ?? AccessRules.defaultUser(role, environment: environment)
        let password = password ?? Self.randomPassword()
        let scope = environment.map { "environment '\($0)'" } ?? "every environment"
        // The command alone goes to standard output, so that it can be piped into redis-cli.
        Self.note("# Flagpole \(role.rawValue) user for \(scope) (Redis 7+): \(role.summary).")
        print(AccessRules.setUserCommand(user: user, password: password, rules: rules))
        Self.note("# Connect with: redis://\(user):\(password)@\(address)")
    }

    static func note(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }

    static func randomPassword() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<16).map { _ in
            let byte = UInt8.random(in: 0...255, using: &generator)
            return String(byte, radix: 16).count == 1 ? "0" + String(byte, radix: 16) : String(byte, radix: 16)
        }.joined()
    }
}

extension AccessRules.Role: ExpressibleByArgument {}
