import FlagpoleRedis
import FlagpoleStore
import Foundation

/// The checks `flagctl doctor` runs: what a person needs before anything else works.
package struct Doctor: Sendable {
    /// One check's outcome.
    package struct Check: Sendable, Codable, Equatable {
        package enum Status: String, Sendable, Codable { case ok, warning, failed }
        package var name: String
        package var status: Status
        package var detail: String

        package init(_ name: String, _ status: Status, _ detail: String) {
            self.name = name
            self.status = status
            self.detail = detail
        }
    }

    /// Everything `doctor` found.
    package struct Report: Sendable, Codable {
        package var redis: String
        package var checks: [Check]
        /// True when no check failed.
        package var healthy: Bool { !checks.contains { $0.status == .failed } }
    }

    /// The commands Flagpole runs, by role, with a representative key of `environment`, for the
    /// permission check.
    static func neededCommands(environment: String) -> [(role: String, command: [String])] {
        let p = "flagpole:{\(environment)}:"
        return [
            ("read", ["GET", p + "revision"]),
            ("read", ["HGETALL", p + "flags"]),
            ("read", ["XREVRANGE", p + "audit", "+", "-", "COUNT", "1"]),
            ("read", ["SUBSCRIBE", p + "changes"]),
            ("write", ["EVALSHA", "0000000000000000000000000000000000000000", "1", p + "flags"]),
            ("write", ["EVAL", "return 1", "1", p + "flags"]),
            ("write", ["HSET", p + "flags", "f", "v"]),
            ("write", ["XADD", p + "audit", "*", "f", "v"]),
            ("write", ["PUBLISH", p + "changes", "m"]),
        ]
    }

    package var redis: RedisConfiguration
    package var flagsDirectory: String
    /// The environment whose keys the permission check names (users of `flagctl acl` are limited
    /// to one); `doctor` when none is given.
    package var environment: String

    /// - Parameters:
    ///   - redis: the server to check. Its connect timeout is capped at 2 s so that an unreachable
    ///     server is reported well within 5 s.
    ///   - flagsDirectory: the flag folder to look for.
    ///   - environment: the environment whose keys the permission check uses (default: `doctor`).
    ///   - checkEnvironment: also check that the environment holds data (it was synced).
    package init(redis: RedisConfiguration, flagsDirectory: String, environment: String? = nil, checkEnvironment: Bool = false) {
        var redis = redis
        redis.connectTimeout = min(redis.connectTimeout, .seconds(2))
        redis.commandTimeout = min(redis.commandTimeout, .seconds(2))
        self.redis = redis
        self.flagsDirectory = flagsDirectory
        self.environment = environment ?? "doctor"
        self.checksEnvironment = checkEnvironment && environment != nil
    }

    /// Whether an environment was named: then its data in Redis is checked too.
    let checksEnvironment: Bool

    /// Runs every check.
    package func run() async -> Report {
        var checks: [Check] = []
        checks.append(Check("hiredis", .ok, "hiredis \(RedisConnection.hiredisVersion)"))
        checks += await redisChecks()
        checks.append(flagsCheck())
        return Report(redis: redis.redactedURL, checks: checks)
    }

    private func redisChecks() async -> [Check] {
        let client = RedisClient(configuration: redis)
        defer { Task { await client.close() } }
        var checks: [Check] = []
        // Reachable, with the round-trip time (best of five PINGs).
        var best = Duration.seconds(3600)
        do {
            for _ in 0..<5 {
                let start = ContinuousClock.now
                _ = try await client.send("PING")
                best = min(best, start.duration(to: .now))
            }
        } catch let error as RedisError {
            var why = error.message
            if error.code == .authenticationFailed {
                checks.append(Check("redis", .ok, "reachable at \(redis.address)"))
                checks.append(Check("authentication", .failed, "\(why) (check the user and password in the URL)"))
                return checks
            }
            if error.code == .connectionFailed || error.code == .timeout {
                why += " — is redis-server running there? Set FLAGPOLE_REDIS_URL or --redis to point elsewhere"
            }
            checks.append(Check("redis", .failed, "cannot reach \(redis.address): \(why)"))
            return checks
        } catch {
            checks.append(Check("redis", .failed, "cannot reach \(redis.address): \(error)"))
            return checks
        }
        var version = "version unknown (INFO not permitted)"
        if let info = try? await client.send("INFO", "server").string,
            let line = info.split(whereSeparator: \.isNewline).first(where: { $0.hasPrefix("redis_version:") })
        {
            version = "Redis " + line.dropFirst("redis_version:".count)
        }
        let rtt = String(format: "%.3f ms", best.seconds * 1000)
        checks.append(Check("redis", .ok, "\(redis.address), \(version), round trip \(rtt)"))

        // Who we are.
        let user = (try? await client.send("ACL", "WHOAMI").string) ?? redis.username ?? "default"
        let how = redis.password == nil ? "no password (the default user)" : "authenticated as '\(user)'"
        checks.append(Check("authentication", .ok, redis.password == nil ? how : how))

        // What we may run.
        checks.append(await permissionsCheck(client: client, user: user))
        if checksEnvironment { checks.append(await environmentCheck(client: client)) }
        return checks
    }

    /// The named environment holds data: a client started against an environment that was never
    /// synced (a typo in FLAGPOLE_ENV, the wrong Redis) serves only code defaults.
    private func environmentCheck(client: RedisClient) async -> Check {
        do {
            let store = try FlagStore(client: client, environment: environment)
            let revision = try await store.revision()
            guard revision > 0 else {
                return Check(
                    "environment", .failed,
                    "environment '\(environment)' was never synced into \(redis.address) (revision 0, no flags): clients "
                        + "would serve only their code defaults. Check the name, or run flagctl sync --env \(environment)")
            }
            let keys = try await store.flagKeys()
            return Check("environment", .ok, "'\(environment)' at revision \(revision), \(keys.count) flag\(keys.count == 1 ? "" : "s")")
        } catch let error as StoreError {
            return Check("environment", .failed, "cannot read environment '\(environment)': \(error.message)")
        } catch {
            return Check("environment", .failed, "cannot read environment '\(environment)': \(error)")
        }
    }

    private func permissionsCheck(client: RedisClient, user: String) async -> Check {
        var allowed: [String] = []
        var denied: [String] = []
        var canDryRun = true
        for (role, command) in Self.neededCommands(environment: environment) {
            let label = "\(command[0]) (\(role))"
            do {
                let reply = try await client.send(RedisCommand(["ACL", "DRYRUN", RedisArgument(user)] + command.map { RedisArgument($0) }))
                if reply == .status("OK") { allowed.append(label) } else { denied.append(label) }
            } catch let error as RedisError where error.code == .permissionDenied {
                canDryRun = false
                break
            } catch {
                denied.append(label)
            }
        }
        if !canDryRun {
            return Check(
                "permissions", .warning,
                "user '\(user)' may not run ACL DRYRUN, so its rights are unknown; the reads Flagpole's client needs are tried when it runs")
        }
        if denied.isEmpty {
            return Check("permissions", .ok, "user '\(user)' may read and write Flagpole keys: " + allowed.joined(separator: ", "))
        }
        return Check(
            "permissions", .warning,
            "user '\(user)' may run " + (allowed.isEmpty ? "none of Flagpole's commands" : allowed.joined(separator: ", "))
                + "; not " + denied.joined(separator: ", ")
                + " (fine for a read-only client user; flagctl sync and set need the writes)")
    }

    private func flagsCheck() -> Check {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: flagsDirectory, isDirectory: &isDirectory), isDirectory.boolValue else {
            return Check(
                "flags", .failed,
                "no flag folder at \(flagsDirectory) (run from the project root, or pass --flags DIR)")
        }
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: flagsDirectory)) ?? []
        let environments = entries.filter { name in
            var dir: ObjCBool = false
            return !name.hasPrefix(".") && FileManager.default.fileExists(atPath: flagsDirectory + "/" + name, isDirectory: &dir) && dir.boolValue
        }.sorted()
        if environments.isEmpty {
            return Check("flags", .warning, "found \(flagsDirectory), but no environment folders in it (expected flags/<env>/)")
        }
        return Check("flags", .ok, "found \(flagsDirectory) (environments: \(environments.joined(separator: ", ")))")
    }
}
