import ArgumentParser

/// `sundial man` (hidden): prints sundial(1) in roff, generated from the command definitions.
///
/// The page used to be hand-written around a generated command list, and its option lists
/// fell behind the binary. Now every command's usage, abstract, discussion and every visible
/// option come from swift-argument-parser's description of the commands (`_dumpHelp`, the
/// data behind `--experimental-dump-help`); only the prose sections (``ManualPage/Prose``)
/// are written by hand. packaging/build-deb.sh installs its output as sundial.1.gz, and a
/// test checks that every option of every command appears in it.
struct ManCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "man",
        abstract: "Print the sundial(1) manual page (roff), generated from the command definitions.",
        shouldDisplay: false)

    func run() throws {
        do {
            print(try ManualPage.render(helpJSON: Sundial._dumpHelp(), version: SundialVersion.current), terminator: "")
        } catch {
            printError("sundial: cannot generate the manual page: \(error)\n")
            throw ExitCode(1)
        }
    }
}
