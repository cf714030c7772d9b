import ArgumentParser

@main
struct Sundial: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sundial",
        abstract: "A small, careful job scheduler for Linux machines nobody logs into.",
        version: SundialVersion.current,
        subcommands: [StatusCommand.self, TriggerCommand.self, HistoryCommand.self, WhyCommand.self, ReloadCommand.self]
    )
}

enum SundialVersion {
    static let current = "0.1.0"
}
