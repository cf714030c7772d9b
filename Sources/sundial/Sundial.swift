import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif

struct Sundial: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sundial",
        abstract: "A small, careful job scheduler for Linux machines nobody logs into.",
        version: SundialVersion.current,
        subcommands: [
            ValidateCommand.self,
            SchemaCommand.self,
            // Packaging, migration and docs (issue 8).
            ImportCrontabCommand.self,
            ConfigReferenceCommand.self,
        ]
    )
}

enum SundialVersion {
    static let current = "0.1.0"
}

/// The entry point. Differs from ArgumentParser's default `main` in one respect: a usage
/// error exits with 2, as design §4 (and most Unix tools) say, not with `EX_USAGE` (64).
@main
enum Main {
    static func main() async {
        do {
            var command = try Sundial.parseAsRoot()
            if var async = command as? any AsyncParsableCommand {
                try await async.run()
            } else {
                try command.run()
            }
        } catch {
            let code = Sundial.exitCode(for: error)
            if code.rawValue == 64 {
                printError(Sundial.fullMessage(for: error) + "\n")
                exit(2)
            }
            Sundial.exit(withError: error)
        }
    }
}
