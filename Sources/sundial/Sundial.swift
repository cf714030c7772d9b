import ArgumentParser
import Dispatch
import SundialConfig
import SundialRuntime

#if canImport(Glibc)
import Glibc
#endif

struct Sundial: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sundial",
        abstract: "A small, careful job scheduler for Linux machines nobody logs into.",
        version: SundialVersion.current,
        subcommands: [
            RunCommand.self,
            ValidateCommand.self,
            DiffCommand.self,
            NextCommand.self,
            ExplainCommand.self,
            SimulateCommand.self,
            StatusCommand.self,
            TriggerCommand.self,
            HistoryCommand.self,
            WhyCommand.self,
            LogsCommand.self,
            PauseCommand.self,
            ResumeCommand.self,
            ReloadCommand.self,
            // The fleet's PostgreSQL (issue 19).
            FleetCommand.self,
            SchemaCommand.self,
            // Packaging, migration and docs (issue 8).
            ImportCrontabCommand.self,
            ConfigReferenceCommand.self,
            CompletionsCommand.self,
            ManCommand.self,
            // The agent's isolated children (hidden): the configuration loader, a webhook POST.
            InternalLoadCommand.self,
            InternalWebhookCommand.self,
        ]
    )
}

enum SundialVersion {
    static let current = "0.1.0"
}

/// The entry point. It differs from ArgumentParser's default `main` in two ways:
/// - a usage error exits with 2, as docs/reference.md promises (and most Unix tools do), not `EX_USAGE` (64);
/// - it is synchronous until the command is known, so that `sundial run` can block the
///   signals it handles before any thread exists (a thread started earlier would keep them
///   unblocked, and the kernel could deliver SIGTERM there and kill the agent outright).
@main
enum Main {
    static func main() {
        // The loader child, started by the agent at every reload, skips the parser: building
        // the command tree (its reflection over every command's properties) cost more than
        // loading a file of 100 jobs. The agent passes `--` (after the request flag, if any)
        // before its paths; anything else that looks like an option (`--help`) is the
        // parser's, as for every command.
        let arguments = CommandLine.arguments
        if arguments.count >= 3, arguments[1] == InternalLoadCommand.configuration.commandName,
            [LoaderMemo.requestFlag, "--"].contains(arguments[2]) || !arguments[2].hasPrefix("-")
        {
            InternalLoadCommand.answer(arguments: Array(arguments.dropFirst(2)))
        }
        let command: any ParsableCommand
        do {
            command = try Sundial.parseAsRoot()
        } catch {
            exitWith(error)
        }
        if command is RunCommand { AgentSignals.prepareProcess() }
        // Before the first task: tasks run on Sundial's own pool, which sleeps without a timer
        // when idle (libdispatch's wakes the process every second; see GlobalExecutor).
        GlobalExecutor.install()
        guard let asyncCommand = command as? any AsyncParsableCommand else {
            var sync = command
            do { try sync.run() } catch { exitWith(error) }
            exit(0)
        }
        // The agent's event loop runs on this thread, which would otherwise only wait (one
        // thread fewer for an idle agent, issue 16). Not `dispatchMain()`: it clears the main
        // thread's signal mask on Linux and would let SIGTERM kill the agent instead of
        // reaching its signalfd.
        var loop: EventLoop?
        if command is RunCommand {
            do throws(EventLoop.StartError) { loop = try EventLoop(name: "sundial", startsThread: false) } catch {
                printError("sundial: cannot start the event loop: \(error)\n")
                exit(1)
            }
        }
        nonisolated(unsafe) var cmd = asyncCommand
        // Detached: `main` is on the main actor, whose queue nobody drains while it is parked.
        Task.detached { [loop] in
            do {
                if let run = cmd as? RunCommand { try await run.run(on: loop) } else { try await cmd.run() }
            } catch { exitWith(error) }
            exit(0)
        }
        // The loop returns when the agent stops it; the task above then ends the process.
        loop?.runOnCurrentThread()
        let parked = DispatchSemaphore(value: 0)
        while true { parked.wait() }
    }

    static func exitWith(_ error: any Error) -> Never {
        let code = Sundial.exitCode(for: error)
        if code.rawValue == 64 {
            printError(Sundial.fullMessage(for: error) + "\n")
            exit(2)
        }
        Sundial.exit(withError: error)
    }
}
