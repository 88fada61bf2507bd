import ArgumentParser

/// `flagctl daemon`: the watcher, OFREP, health and metrics.
struct DaemonCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "daemon",
        abstract: "Run the rollout watcher and serve OFREP, /healthz, /readyz and /metrics."
    )

    func run() async throws {
        throw ValidationError("not built yet")
    }
}
