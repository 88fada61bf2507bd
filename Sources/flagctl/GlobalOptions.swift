import ArgumentParser
import FlagpoleRedis
import Foundation

/// Options every command shares.
struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The Redis server URL (default: $FLAGPOLE_REDIS_URL, else redis://127.0.0.1:6379).", valueName: "url"))
    var redis: String?

    @Option(name: .long, help: ArgumentHelp("The flag folder.", valueName: "dir"))
    var flags: String = "./flags"

    @Option(name: .long, help: ArgumentHelp("The environment (default: $FLAGPOLE_ENV).", valueName: "name"))
    var env: String?

    /// The Redis configuration these options name.
    func redisConfiguration() throws -> RedisConfiguration {
        do {
            return try RedisConfiguration.resolve(url: redis)
        } catch {
            throw ValidationError(error.message)
        }
    }

    /// The environment from `--env` or `FLAGPOLE_ENV`, or a usage error.
    func environment() throws -> String {
        if let env, !env.isEmpty { return env }
        if let env = ProcessInfo.processInfo.environment["FLAGPOLE_ENV"], !env.isEmpty { return env }
        throw ValidationError("no environment: pass --env NAME or set FLAGPOLE_ENV")
    }
}
