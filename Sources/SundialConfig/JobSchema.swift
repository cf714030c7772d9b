import OrderedCollections
import SundialCore

/// The job-file schema (`schemas/sundial-jobs.v1.schema.json`), compiled once, and the
/// translation of its violations into positioned, human diagnostics (design §5).
public struct JobSchema: Sendable {
    /// The compiled schema. The embedded text is generated from the schema file and a test
    /// keeps the two identical, so a failure here is a build defect, not bad input.
    public static let shared: JobSchema = {
        do {
            let document = try JSONParser.parse(text)
            guard case let .int(maxJobs)? = document["properties"]?["jobs"]?["maxProperties"] else {
                fatalError("the embedded job schema has no `jobs.maxProperties`")
            }
            return JobSchema(schema: try JSONSchema(document), maxJobsPerFile: Int(maxJobs))
        } catch {
            fatalError("the embedded job schema does not compile: \(error)")
        }
    }()

    public let schema: JSONSchema
    /// The most jobs one file may define (the schema's `jobs.maxProperties`). The loader checks
    /// it before anything else in a file, so a file far over it costs a count, not a check of
    /// every job.
    public let maxJobsPerFile: Int

    init(schema: JSONSchema, maxJobsPerFile: Int) {
        self.schema = schema
        self.maxJobsPerFile = maxJobsPerFile
    }

    /// Schema violations of a document, as positioned diagnostics (all of them).
    public func diagnostics(for root: YAMLNode) -> [Diagnostic] {
        schema.validate(root.jsonValue()).map { diagnostic(for: $0, root: root) }
    }

    /// Keys that may appear on a job but not in `defaults` (design §1).
    static let jobOnlyKeys: Set<String> = ["description", "schedule", "every", "offset", "at", "needs", "command", "shell"]

    func diagnostic(for v: SchemaViolation, root: YAMLNode) -> Diagnostic {
        let path = v.instancePath
        let node = root.node(at: path)
        let key = path.last.flatMap { Int($0) == nil ? $0 : nil }
        let subject = key.map { "`\($0)`: " } ?? ""
        let isJob = path.count == 2 && path[0] == "jobs"
        let schemaTail = v.schemaPath.suffix(3)

        switch v.kind {
        case let .unknownProperty(name, allowed):
            let parent = root.node(at: Array(path.dropLast()))
            let at = parent.keyNode(name)?.location ?? node.location
            if path.first == "defaults", path.count == 2, Self.jobOnlyKeys.contains(name) {
                return Diagnostic(at: at, "`\(name)` cannot be set in `defaults`", hint: "set it on each job")
            }
            if name == "<<" {
                return Diagnostic(at: at, "YAML merge keys (`<<`) are not supported", hint: "use `defaults:` for shared values")
            }
            let hint =
                DidYouMean.hint(name, from: allowed)
                ?? (allowed.count <= 12 ? "allowed keys: " + allowed.joined(separator: ", ") : nil)
            return Diagnostic(at: at, "unknown key `\(name)`", hint: hint)

        case let .missingProperty(name):
            if path.isEmpty, name == "version" {
                return Diagnostic(at: node.location, "missing `version: 1` at the top of the file")
            }
            if path.isEmpty, name == "jobs" {
                return Diagnostic(at: node.location, "missing `jobs:`, the map of jobs by id")
            }
            if v.keyword == "dependentRequired" {
                return Diagnostic(
                    at: node.keyNode("offset")?.location ?? node.location, "`offset` needs `every`",
                    hint: "offset aligns an interval; add `every:` or remove `offset:`")
            }
            if isJob, name == "command" || name == "shell" {
                return jobMessage(
                    path, root, "job `\(path[1])` has nothing to run",
                    hint: "add `command:` (a list: program and arguments) or `shell:` (a string)")
            }
            return Diagnostic(at: keyLocation(path, root), "missing required key `\(name)`")

        case let .matchesSeveral(branches) where isJob && schemaTail.last == "oneOf":
            _ = branches
            return jobMessage(
                path, root, "job `\(path[1])` has both `command` and `shell`",
                hint: "keep one: `command` runs a program directly, `shell` runs /bin/sh -c")

        case let .typeMismatch(expected, actual):
            var hint: String?
            // YAML reads a plain `true`, `8080` or `1.10` as a boolean or a number; where any text
            // is wanted (an argument, an env value) quoting keeps it text, digit for digit. Not
            // where the text has a shape of its own (`cpu: 50` wants `50%`): quoting alone would
            // only trade this error for another.
            if expected.contains("string"), ["boolean", "integer", "number"].contains(actual),
                case let .scalar(s, true) = node.kind, acceptsAnyString(v)
            {
                hint = "quote it: \"\(s)\""
            }
            if expected == ["boolean"], case let .scalar(s, _) = node.kind,
                ["yes", "no", "on", "off", "y", "n"].contains(s.lowercased())
            {
                hint = "write true or false"
            }
            if v.schemaPath.contains("duration"), actual == "integer" || actual == "number" {
                hint = "durations need a unit, e.g. 30s, 5m or 1h30m"
            }
            if expected == ["object"], path.isEmpty {
                return Diagnostic(at: node.location, "a job file must be a map with `version:` and `jobs:`, found \(node.typeDescription)")
            }
            return Diagnostic(at: node.location, subject + v.message, hint: hint)

        case let .patternMismatch(pattern):
            _ = pattern
            let text = node.scalarText ?? ""
            if v.schemaPath.contains("duration") {
                if text.hasPrefix("-") {
                    return Diagnostic(at: node.location, subject + "duration `\(text)` is negative", hint: "durations must be positive")
                }
                return Diagnostic(
                    at: node.location, subject + "invalid duration `\(text)`",
                    hint: "write numbers with units from largest to smallest: 500ms, 30s, 5m, 1h30m, 1d")
            }
            if v.schemaPath.contains("jobId") {
                // A job id used as a key points at the key; inside `needs` at the value.
                let parent = root.node(at: Array(path.dropLast()))
                let at = key.flatMap { parent.keyNode($0)?.location } ?? node.location
                let id = key ?? text
                return Diagnostic(
                    at: at, "invalid job id `\(path.first == "jobs" && path.count == 2 ? id : text)`",
                    hint: "use 1-63 lowercase letters, digits, '_', '.' or '-', starting with a letter or digit")
            }
            if v.schemaPath.contains("rfc3339") {
                return Diagnostic(
                    at: node.location, subject + "invalid time `\(text)`",
                    hint: "write RFC 3339 with an offset, e.g. 2026-12-24T18:00:00+01:00")
            }
            if v.schemaPath.contains("umask") {
                return Diagnostic(at: node.location, "`umask`: invalid mask `\(text)`", hint: "write a quoted octal string such as \"0027\"")
            }
            return Diagnostic(at: node.location, subject + v.message)

        case let .notInEnum(allowed):
            let names = allowed.compactMap(\.stringValue)
            if key == "version" || v.keyword == "const", path == ["version"] {
                return Diagnostic(at: node.location, "unsupported `version`; this Sundial reads version 1", hint: "write `version: 1`")
            }
            let hint = node.scalarText.flatMap { DidYouMean.hint($0, from: names) }
            let list = names.isEmpty ? v.message : "must be one of: " + names.joined(separator: ", ")
            return Diagnostic(at: node.location, subject + list, hint: hint)

        default:
            if isJob, v.keyword == "not" {
                return jobMessage(
                    path, root, "job `\(path[1])` has more than one of `schedule`, `every` and `at`",
                    hint: "keep one; a job with several schedules is two jobs")
            }
            if isJob, v.keyword == "oneOf" {
                return jobMessage(path, root, "job `\(path[1])` needs exactly one of `command` and `shell`")
            }
            return Diagnostic(at: node.location, subject + v.message)
        }
    }

    /// Whether the schema object holding the failed `type` accepts every string (no `pattern`,
    /// `enum`, `const` or `format` narrowing it; a length bound is met by any number or boolean).
    private func acceptsAnyString(_ v: SchemaViolation) -> Bool {
        guard case let .object(members)? = schema.subschema(at: v.schemaPath.dropLast()) else { return false }
        return !["pattern", "enum", "const", "format"].contains { members[$0] != nil }
    }

    /// A message about a whole job, at its id.
    private func jobMessage(_ path: [String], _ root: YAMLNode, _ message: String, hint: String? = nil) -> Diagnostic {
        Diagnostic(at: keyLocation(path, root), message, hint: hint)
    }

    /// The location of the key that names the node at `path` (its value's location otherwise).
    private func keyLocation(_ path: [String], _ root: YAMLNode) -> SourceLocation {
        guard let last = path.last else { return root.location }
        return root.node(at: Array(path.dropLast())).keyNode(last)?.location ?? root.node(at: path).location
    }
}
