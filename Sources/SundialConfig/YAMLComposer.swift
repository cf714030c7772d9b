import SundialCore

/// Builds the positioned ``YAMLNode`` tree of one document from libyaml's events.
///
/// Iterative on purpose: open collections live on an explicit stack, never on the call stack,
/// so no input can overflow the thread's stack (a few kilobytes of `[` used to crash the agent
/// through a recursive composer). The stack is also where depth is measured, exactly, from the
/// events themselves, and refused past `limits.maxDepth` before anything deeper is built.
///
/// Aliases are resolved by copying the anchored node, positions included, as they were with
/// Yams; copies share storage (Swift arrays are copy-on-write), so a copy costs nothing, but
/// every copied node counts against `limits.maxNodes` because every later stage walks them all,
/// and every copied scalar's bytes against `limits.maxExpandedBytes`: a few thousand aliases of
/// one megabyte-long scalar are few nodes, but later stages scan each copy (the NUL check took
/// minutes on a 4 MB file) and the loader's answer carries each one. The same bytes count
/// against what the load's other files leave (`allowance`, ``ExpansionBudget``), so that a set
/// of files stops being parsed at the file that crosses the load's total.
struct YAMLComposer {
    /// Why composing stopped: a libyaml error (formatted by the reader, which has the bytes) or
    /// a finished diagnostic.
    enum Failure: Error {
        case syntax(YAMLSyntaxError)
        case diagnostic(Diagnostic)
        /// The load's total of expanded text is crossed at this node (``ExpansionGrant/stop(exact:)``):
        /// the loader words the diagnostic, it knows the total.
        case overBudget(YAMLMark, exact: Bool)
        /// An earlier file crossed the load's total (``ExpansionGrant/abandon``).
        case abandoned
    }

    let file: String
    let limits: YAMLReader.Limits
    /// What the load's other files leave this document (``ExpansionBudget``), asked each time
    /// it passes `byteLimit`; nil when only `limits.maxExpandedBytes` applies.
    private let allowance: ((Int) -> ExpansionGrant)?
    /// The bytes this document may expand to before it asks `allowance` again.
    private var byteLimit: Int

    /// A finished node with what limits need to know about it.
    private struct Composed {
        var node: YAMLNode
        /// Nodes in the subtree after alias expansion, itself included.
        var size: Int
        /// Collection levels in the subtree: 0 for a scalar, 1 for a list of scalars.
        var height: Int
        /// Scalar bytes in the subtree after alias expansion.
        var bytes: Int
    }

    /// An open sequence or mapping.
    private struct Frame {
        var location: SourceLocation
        var anchor: String?
        var isMapping: Bool
        var items: [YAMLNode] = []
        var pairs: [(key: YAMLNode, value: YAMLNode)] = []
        var pendingKey: YAMLNode?
        var size = 1
        var height = 1
        var bytes = 0
    }

    private var stack: [Frame] = []
    private var anchors: [String: Composed] = [:]
    /// Nodes as written: one per scalar, collection and alias.
    private var writtenNodes = 0
    /// Nodes after alias expansion.
    private var expandedNodes = 0
    /// Scalar bytes after alias expansion.
    private(set) var expandedBytes = 0

    init(file: String, limits: YAMLReader.Limits, allowance: ((Int) -> ExpansionGrant)? = nil) {
        self.file = file
        self.limits = limits
        self.allowance = allowance
        byteLimit = allowance == nil ? limits.maxExpandedBytes : 0
    }

    /// The single document's root, or `nil` for a stream with no document (an empty file).
    mutating func compose(_ parser: YAMLEventParser) throws(Failure) -> YAMLNode? {
        let start = try next(parser)
        guard case .streamStart = start.event else { throw unexpected(start) }
        let first = try next(parser)
        if case .streamEnd = first.event { return nil }
        guard case .documentStart = first.event else { throw unexpected(first) }

        var root: Composed?
        while root == nil {
            let current = try next(parser)
            let mark = current.mark
            var finished: Composed?
            switch current.event {
            case let .scalar(text, anchor, plain):
                try count(1, bytes: text.utf8.count, at: mark)
                let done = Composed(
                    node: YAMLNode(.scalar(text, plain: plain), at: location(mark), end: current.end), size: 1, height: 0,
                    bytes: text.utf8.count)
                if let anchor { anchors[anchor] = done }
                finished = done
            case let .alias(name):
                // Registered when its node is finished (as Yams did): `&a [*a]` is undefined.
                guard let target = anchors[name] else {
                    throw .syntax(
                        YAMLSyntaxError(
                            kind: .parser, problem: "found undefined alias `*\(name)`", problemMark: mark,
                            context: nil, contextMark: mark, offset: 0, value: 0))
                }
                guard stack.count + target.height <= limits.maxDepth else { throw tooDeep(mark) }
                try count(target.size, bytes: target.bytes, at: mark)
                finished = target
            case let .sequenceStart(anchor), let .mappingStart(anchor):
                guard stack.count < limits.maxDepth else { throw tooDeep(mark) }
                try count(1, bytes: 0, at: mark)
                var isMapping = false
                if case .mappingStart = current.event { isMapping = true }
                stack.append(Frame(location: location(mark), anchor: anchor, isMapping: isMapping))
            case .sequenceEnd, .mappingEnd:
                guard let frame = stack.popLast() else { throw unexpected(current) }
                let node: YAMLNode
                if frame.isMapping {
                    try checkDuplicateKeys(frame.pairs)
                    node = YAMLNode(.mapping(frame.pairs), at: frame.location, end: current.end)
                } else {
                    node = YAMLNode(.sequence(frame.items), at: frame.location, end: current.end)
                }
                let done = Composed(node: node, size: frame.size, height: frame.height, bytes: frame.bytes)
                if let anchor = frame.anchor { anchors[anchor] = done }
                finished = done
            case .streamStart, .streamEnd, .documentStart, .documentEnd:
                throw unexpected(current)
            }
            if let finished {
                if stack.isEmpty { root = finished } else { attach(finished) }
            }
        }

        let end = try next(parser)
        guard case .documentEnd = end.event else { throw unexpected(end) }
        let after = try next(parser)
        guard case .streamEnd = after.event else {
            // Yams' wording, kept so that messages do not change with the parser.
            throw .syntax(
                YAMLSyntaxError(
                    kind: .parser, problem: "but found another document", problemMark: after.mark,
                    context: "expected a single document in the stream",
                    contextMark: YAMLMark(line: 1, column: 1), offset: 0, value: 0))
        }
        return root?.node
    }

    // MARK: - Steps

    private func next(_ parser: YAMLEventParser) throws(Failure) -> (event: YAMLEvent, mark: YAMLMark, end: YAMLMark) {
        do { return try parser.next() } catch { throw .syntax(error) }
    }

    /// Adds a finished node to the innermost open collection, in place (no copy of its items).
    private mutating func attach(_ child: Composed) {
        let i = stack.count - 1
        stack[i].size += child.size
        stack[i].bytes += child.bytes
        stack[i].height = max(stack[i].height, child.height + 1)
        if stack[i].isMapping {
            if let key = stack[i].pendingKey {
                stack[i].pairs.append((key, child.node))
                stack[i].pendingKey = nil
            } else {
                stack[i].pendingKey = child.node
            }
        } else {
            stack[i].items.append(child.node)
        }
    }

    /// Counts a node as written that stands for `expanded` nodes (more than 1 for an alias).
    ///
    /// The message names aliases only when they are the reason: a document that is simply
    /// large gets the plain size message.
    private mutating func count(_ expanded: Int, bytes: Int, at mark: YAMLMark) throws(Failure) {
        writtenNodes += 1
        expandedNodes += expanded
        expandedBytes += bytes
        if expandedBytes > byteLimit { try passedByteLimit(at: mark) }
        guard expandedNodes > limits.maxNodes else { return }
        if writtenNodes > limits.maxNodes {
            throw .diagnostic(
                Diagnostic(
                    at: location(mark), "the document has more than \(limits.maxNodes) nodes",
                    hint: "split the jobs over several files"))
        }
        throw .diagnostic(
            Diagnostic(
                at: location(mark),
                "the document expands to more than \(limits.maxNodes) nodes through its aliases",
                hint: "remove the repeated aliases; each one copies the whole anchored value"))
    }

    /// The document's bytes passed `byteLimit`: its own limit, or the last grant of the load's
    /// total (asked again here).
    private mutating func passedByteLimit(at mark: YAMLMark) throws(Failure) {
        if expandedBytes > limits.maxExpandedBytes {
            throw .diagnostic(
                Diagnostic(
                    at: location(mark),
                    "the document expands to more than \(limits.maxExpandedBytes) bytes of text through its aliases",
                    hint: "remove the repeated aliases; each one copies the whole anchored value"))
        }
        guard let allowance else { return }
        switch allowance(expandedBytes) {
        case let .upTo(n): byteLimit = min(limits.maxExpandedBytes, max(n, expandedBytes))
        case let .stop(exact): throw .overBudget(mark, exact: exact)
        case .abandon: throw .abandoned
        }
    }

    private func tooDeep(_ mark: YAMLMark) -> Failure {
        .diagnostic(Diagnostic(at: location(mark), "nesting is deeper than the limit of \(limits.maxDepth) levels"))
    }

    private func unexpected(_ e: (event: YAMLEvent, mark: YAMLMark, end: YAMLMark)) -> Failure {
        .diagnostic(Diagnostic(at: location(e.mark), "cannot parse YAML: unexpected \(e.event) event"))
    }

    private func location(_ mark: YAMLMark) -> SourceLocation {
        SourceLocation(file: file, line: mark.line, column: mark.column)
    }

    // MARK: - Duplicate keys

    /// Refuses a mapping with equal keys, at the first copy of the (alphabetically) first
    /// duplicated key, as Yams did: YAML parsers disagree on which copy wins.
    private func checkDuplicateKeys(_ pairs: [(key: YAMLNode, value: YAMLNode)]) throws(Failure) {
        guard pairs.count > 1 else { return }
        if pairs.count <= 16, Self.scalarKeysAreDistinct(pairs) { return }
        var firstIndex: [KeyIdentity: Int] = [:]
        firstIndex.reserveCapacity(pairs.count)
        var duplicates: Set<KeyIdentity> = []
        for (i, pair) in pairs.enumerated() {
            let id = KeyIdentity(pair.key)
            if firstIndex[id] == nil { firstIndex[id] = i } else { duplicates.insert(id) }
        }
        guard !duplicates.isEmpty else { return }
        let sorted = duplicates.sorted { $0.text < $1.text }
        let keys = sorted.map { "`\($0.display)`" }.joined(separator: ", ")
        let first = pairs[firstIndex[sorted[0]] ?? 0].key
        throw .diagnostic(
            Diagnostic(
                at: first.location, "duplicate key \(keys) in the same mapping",
                hint: "YAML parsers disagree on which copy wins; keep one"))
    }

    /// Whether a small mapping's keys are all scalars with different texts: compared pairwise,
    /// without hashing. Most mappings of a job file are a job's handful of keys, and building a
    /// hash table for each was 3% of validating 10,000 jobs. Anything else (a collection key, a
    /// duplicate) goes the general way, which also words the message.
    private static func scalarKeysAreDistinct(_ pairs: [(key: YAMLNode, value: YAMLNode)]) -> Bool {
        var keys: [String] = []
        keys.reserveCapacity(pairs.count)
        for pair in pairs {
            guard case let .scalar(k, _) = pair.key.kind else { return false }
            keys.append(k)
        }
        for i in keys.indices {
            for j in 0..<i where keys[i] == keys[j] { return false }
        }
        return true
    }

    /// A key's identity for duplicate detection: a scalar's text, or a collection's flow form.
    private struct KeyIdentity: Hashable {
        var isScalar: Bool
        var text: String

        init(_ key: YAMLNode) {
            if case let .scalar(s, _) = key.kind {
                isScalar = true
                text = s
            } else {
                isScalar = false
                text = Self.flow(key)
            }
        }

        /// Shown in the message: long collection keys are cut.
        var display: String { text.count > 60 ? String(text.prefix(57)) + "..." : text }

        /// A canonical flow form. Recursive, but bounded: keys are at most `maxDepth` deep and
        /// their nodes were counted against `maxNodes`.
        static func flow(_ node: YAMLNode) -> String {
            switch node.kind {
            case let .scalar(s, _): return s.debugDescription
            case let .sequence(items): return "[" + items.map(flow).joined(separator: ", ") + "]"
            case let .mapping(pairs): return "{" + pairs.map { flow($0.key) + ": " + flow($0.value) }.joined(separator: ", ") + "}"
            }
        }
    }
}
