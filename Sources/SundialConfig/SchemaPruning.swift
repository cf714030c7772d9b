import SundialCore

/// The document with every value the schema rejected taken out, for the later stages.
///
/// Why: the semantic checks (zones, cron syntax, durations in range, `needs`) must run even
/// when another key of the same file, or of the same job, is wrong, so that one run reports
/// every problem. They must not see a value the schema already rejected, or that value would
/// be reported twice in different words (`every: 30` as "durations need a unit" and again as
/// "invalid duration"). So each rejected value is removed, key and all, and the rest decoded.
///
/// What is a "rejected value": the node a violation points at, unless the violation is about
/// the shape of a map as a whole (a missing key, two keys that exclude each other, a key name
/// that is not a valid job id): those remove nothing, because the values themselves are fine.
enum SchemaPruning {
    /// Keywords whose violations concern a map's set of keys, not the value at their path.
    static let structuralKeywords: Set<String> = ["required", "dependentRequired", "oneOf", "anyOf", "not", "minProperties", "maxProperties"]

    /// The paths (JSON pointer tokens) of values to leave out of decoding.
    static func rejectedPaths(_ violations: [SchemaViolation], root: YAMLNode) -> Set<[String]> {
        var paths: Set<[String]> = []
        for v in violations {
            if v.schemaPath.contains("propertyNames") { continue }
            if structuralKeywords.contains(v.keyword), case .mapping = root.node(at: v.instancePath).kind { continue }
            paths.insert(v.instancePath)
        }
        return paths
    }

    /// `root` without the nodes at `paths`; `nil` when the root itself is rejected.
    static func prune(_ root: YAMLNode, removing paths: Set<[String]>) -> YAMLNode? {
        guard !paths.isEmpty else { return root }
        // Only the ancestors of a rejected path need rebuilding; other subtrees are shared.
        var ancestors: Set<[String]> = []
        for path in paths {
            for n in 0..<path.count { ancestors.insert(Array(path.prefix(n))) }
        }
        return prune(root, at: [], paths, ancestors)
    }

    private static func prune(_ node: YAMLNode, at path: [String], _ paths: Set<[String]>, _ ancestors: Set<[String]>) -> YAMLNode? {
        if paths.contains(path) { return nil }
        guard ancestors.contains(path) else { return node }
        switch node.kind {
        case .scalar:
            return node
        case let .sequence(items):
            // Indices are the original ones, as in the violations' paths.
            let kept = items.enumerated().compactMap { i, item in prune(item, at: path + [String(i)], paths, ancestors) }
            var pruned = node
            pruned.kind = .sequence(kept)
            return pruned
        case let .mapping(pairs):
            var kept: [(key: YAMLNode, value: YAMLNode)] = []
            for pair in pairs {
                let name = pair.key.scalarText ?? pair.key.jsonValue().jsonText
                if let value = prune(pair.value, at: path + [name], paths, ancestors) { kept.append((pair.key, value)) }
            }
            var pruned = node
            pruned.kind = .mapping(kept)
            return pruned
        }
    }
}
