import Flagpole
import FlagpoleControl
import FlagpoleRedis
import FlagpoleStore
import Logging

extension ConsoleServer {
    /// The console `flagctl daemon` serves: over `client`, reading and writing Redis at `redis`
    /// (the daemon's own connection settings), with the flag files under `flags` (for drift) and
    /// the project config's `production` mark for `environment`.
    ///
    /// - Throws: ``StoreError`` for an environment name that cannot name Redis keys.
    package static func forDaemon(
        client: FlagpoleClient, redis: RedisConfiguration, environment: String, flags: String, tokens: AccessTokens,
        loopbackOnly: Bool, logger: Logger
    ) throws -> ConsoleServer {
        let directory = FlagDirectory(root: flags)
        let control = try EnvironmentControl(
            environment: environment, client: RedisClient(configuration: redis, logger: logger), directory: directory)
        var configuration = Configuration()
        configuration.isProduction = directory.loadConfig().config.environment(named: environment)?.isProduction ?? false
        if !loopbackOnly { configuration.openScopes = [.view] }
        return ConsoleServer(client: client, control: control, tokens: tokens, configuration: configuration, logger: logger)
    }
}
