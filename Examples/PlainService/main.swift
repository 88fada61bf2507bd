// PlainService: the client in a plain ServiceGroup, without an HTTP framework, beside the app's
// own work (a bot, a queue consumer). It says what a flag serves whenever the flag changes.
//
//   FLAGPOLE_REDIS_URL=redis://127.0.0.1:6379 FLAGPOLE_ENV=prod swift run PlainService
//   flagctl set new-checkout on --env prod          # logs "new-checkout for ann" value=true
import Flagpole
import Foundation
import Logging
import ServiceLifecycle

let env = ProcessInfo.processInfo.environment
let logger = Logger(label: "plain-service")

let configuration = FlagpoleClient.Configuration(
    redis: try RedisConfiguration(url: env["FLAGPOLE_REDIS_URL"] ?? "redis://127.0.0.1:6379"),
    environment: env["FLAGPOLE_ENV"] ?? "prod",
    application: "plain-service")
let flags = FlagpoleClient(configuration: configuration, logger: logger)

/// The app's own work, run by the same ServiceGroup as the client.
struct Worker: Service {
    let flags: FlagpoleClient
    let logger: Logger

    func run() async throws {
        let ann = EvaluationContext(targetingKey: "ann", attributes: ["plan": "pro"])
        let changes = flags.changes()  // subscribe before the first read, so no change is missed
        if await !flags.waitUntilReady(timeout: .seconds(10)) {
            logger.warning("no flags from Redis yet: serving code defaults until they arrive")
        }
        logger.info("new-checkout for ann", metadata: ["value": "\(flags.bool("new-checkout", default: false, context: ann))"])
        for await changed in changes.cancelOnGracefulShutdown() where changed.contains("new-checkout") {
            logger.info("new-checkout for ann", metadata: ["value": "\(flags.bool("new-checkout", default: false, context: ann))"])
        }
    }
}

// SIGTERM or SIGINT stops both: the worker's loop ends, the client flushes its outcomes and leaves.
let group = ServiceGroup(
    configuration: .init(
        services: [.init(service: flags), .init(service: Worker(flags: flags, logger: logger))],
        gracefulShutdownSignals: [.sigterm, .sigint],
        logger: logger))
try await group.run()
