import SundialCore

/// The job-file schema (`schemas/sundial-jobs.v1.schema.json`), compiled once.
public struct JobSchema: Sendable {
    public static let shared = JobSchema()

    /// Schema violations of a document, as positioned diagnostics.
    public func diagnostics(for root: YAMLNode) -> [Diagnostic] {
        []  // wired to the JSON Schema validator when it lands (branch `schema`)
    }
}
