import ArgumentParser

/// `flagctl rollout …`: guarded rollouts.
struct RolloutCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rollout",
        abstract: "Turn a flag on at once or in steps, watched by `flagctl daemon`, reverted by itself on a regression.",
        subcommands: [RolloutSimulateCommand.self]
    )
}
