import ArgumentParser
import SundialConfig

/// `sundial schema`: prints the JSON Schema the agent validates with (the same file editors use).
struct SchemaCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schema",
        abstract: "Print the JSON Schema of job files.",
        discussion: "The schema is draft 2020-12; point yaml-language-server or your editor at it for completion and help.")

    func run() throws {
        print(JobSchema.text, terminator: JobSchema.text.hasSuffix("\n") ? "" : "\n")
    }
}
