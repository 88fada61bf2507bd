// HelloFlags: an HTTP service that reads a flag on every request and reports how the work went.
//
//   FLAGPOLE_REDIS_URL=redis://127.0.0.1:6379 FLAGPOLE_ENV=prod swift run HelloFlags
//   curl 'http://127.0.0.1:8080/checkout?user=ann'
//   flagctl set new-checkout on --env prod          # the next request takes the new path
import Flagpole
import Foundation
import Hummingbird
import Logging

let env = ProcessInfo.processInfo.environment
let logger = Logger(label: "hello-flags")

// The client: where Redis is, which environment, who we are. Everything else has a default.
var configuration = FlagpoleClient.Configuration(
    redis: try RedisConfiguration.resolve(),  // FLAGPOLE_REDIS_URL, else redis://127.0.0.1:6379
    environment: env["FLAGPOLE_ENV"] ?? "prod",
    application: "hello-flags")
configuration.flagFiles = .init(directory: env["FLAGPOLE_FLAGS"] ?? "flags")  // cold start, Redis down, no snapshot yet
let flags = FlagpoleClient(configuration: configuration, logger: logger)

let router = Router()
router.get("checkout") { request, _ -> String in
    let user = request.uri.queryParameters["user"].map(String.init) ?? ""
    do {
        return try checkoutPage(user: user, flags: flags)  // Checkout.swift
    } catch {
        throw HTTPError(.badRequest, message: "checkout failed")
    }
}
router.get("readyz") { _, _ -> HTTPResponse.Status in
    flags.isReady ? .ok : .serviceUnavailable
}

// The client is a Service: the application runs it beside the HTTP server and stops it on SIGTERM.
let app = Application(
    router: router,
    configuration: .init(address: .hostname("127.0.0.1", port: Int(env["PORT"] ?? "") ?? 8080)),
    services: [flags],
    logger: logger)
try await app.runService()
