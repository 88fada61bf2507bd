import ArgumentParser

/// `flagctl rollout simulate`: replays synthetic traffic through the watcher's decision code.
struct RolloutSimulateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate",
        abstract: "Replay synthetic traffic through the real decision code: detection time and false-revert rate."
    )

    func run() async throws {
        throw ValidationError("not built yet")
    }
}
