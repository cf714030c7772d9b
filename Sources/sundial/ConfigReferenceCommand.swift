import ArgumentParser
import SundialConfig

/// `sundial config-reference` (hidden): prints docs/configuration.md, generated from the
/// embedded schema. Used by scripts/generate-docs.sh; a test checks the committed file.
struct ConfigReferenceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config-reference",
        abstract: "Print the configuration reference (Markdown) generated from the JSON Schema.",
        shouldDisplay: false)

    func run() throws {
        do {
            print(try ConfigurationReference.markdown(schemaText: JobSchema.text), terminator: "")
        } catch {
            printError("sundial: \(error)\n")
            throw ExitCode(1)
        }
    }
}
