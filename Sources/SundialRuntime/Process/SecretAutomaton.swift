/// An Aho–Corasick automaton over a job's secret values, as bytes: it reads a stream one byte at
/// a time, whatever its chunking, and tells at each byte the longest secret that ends there and
/// how many of the last bytes may still begin one.
///
/// Why: ``SecretStreamMasker`` compared every secret at every position that began one, and
/// re-compared its held-back tail at each read. A 100 KB repetitive secret (`aaaa…`) against
/// output that nearly matches it over and over cost secret length × output length: seconds of
/// the agent's loop for a few MB, and a per-second job missed its fires. Here each byte costs
/// one transition, plus failure links that are paid for by earlier transitions (the depth rises
/// by one per byte and each failure lowers it): at most two steps per byte, whatever the
/// secrets.
///
/// Hand-written: no package in the mirror (nor the project's dependencies) offers a streaming
/// multi-pattern matcher whose state carries across chunks; the few Aho–Corasick packages
/// search a whole string at once.
///
/// Layout, for a bounded memory: the trie is numbered in preorder (built from the sorted values,
/// each sharing with its predecessor the prefix it shares with any earlier one), its edges in
/// one array per field (21 bytes a node: a node per distinct prefix, so at most the secrets'
/// total length + 1). The root's 256 transitions are a table (the common state in output that
/// holds no secret); another node's are found by a search among its children, sorted by byte.
/// No per-byte transition table (`256 × nodes`): for a 1 MiB `env_file` it would need 1 GiB.
/// Node numbers are `Int32`: secrets come from the configuration (its expanded text is bounded
/// far below 2 GiB) and from an `env_file` (at most 1 MiB).
///
/// Immutable once built, so the two streams of a run share one.
final class SecretAutomaton: @unchecked Sendable {
    /// Length of the longest secret.
    let longest: Int
    /// Number of nodes (the root is node 0).
    let nodeCount: Int
    /// The root's transition on each byte; 0 for none (no node's child is the root).
    private let rootNext: UnsafeMutableBufferPointer<Int32>
    /// Node `v`'s children are the edges `edgeStart[v]..<edgeStart[v + 1]`, bytes ascending.
    private let edgeStart: UnsafeMutableBufferPointer<Int32>
    private let edgeByte: UnsafeMutableBufferPointer<UInt8>
    private let edgeTarget: UnsafeMutableBufferPointer<Int32>
    /// The node of the longest proper suffix of `v`'s bytes that is also a node.
    private let fail: UnsafeMutableBufferPointer<Int32>
    /// In state `v`: how many of the last bytes read are a proper beginning of some secret (the
    /// deepest node with children on `v`'s failure chain); those bytes are still undecided.
    private let holdDepth: UnsafeMutableBufferPointer<Int32>
    /// In state `v`: the length of the longest secret that ends with the last byte read, 0 if none.
    private let matchLength: UnsafeMutableBufferPointer<Int32>

    /// `nil` when no value needs masking: empty values (they would match everywhere) and values
    /// made only of newlines (masking leaves them unchanged, and they would hold every line back)
    /// are ignored; duplicates are one value.
    init?(secrets values: some Sequence<String>) {
        var seen = Set<[UInt8]>()
        var list: [[UInt8]] = []
        for v in values {
            let bytes = Array(v.utf8)
            guard bytes.contains(where: { $0 != 0x0A }), seen.insert(bytes).inserted else { continue }
            list.append(bytes)
        }
        guard !list.isEmpty else { return nil }
        list.sort { $0.lexicographicallyPrecedes($1) }
        longest = list.map(\.count).max()!

        // The trie, in preorder: node ids ascend along each value, and a node's children ascend
        // by byte (the values are sorted, so a smaller byte's child is made first).
        var parent: [Int32] = [0]
        var byte: [UInt8] = [0]
        var terminal: [Bool] = [false]
        var path: [Int32] = [0]  // path[d]: the previous value's node at depth d
        var previous: [UInt8] = []
        for value in list {
            // A sorted, duplicate-free list: the previous value is never this one, nor longer
            // with this one as its prefix, so at least one node is new.
            var common = 0
            while common < min(previous.count, value.count), previous[common] == value[common] { common += 1 }
            path.removeSubrange((common + 1)...)
            for d in common..<value.count {
                path.append(Int32(parent.count))
                parent.append(path[d])
                byte.append(value[d])
                terminal.append(false)
            }
            terminal[Int(path[value.count])] = true
            previous = value
        }
        let n = parent.count
        nodeCount = n

        // Edges, grouped by parent (a count, then prefix sums).
        let start = UnsafeMutableBufferPointer<Int32>.allocate(capacity: n + 1)
        start.initialize(repeating: 0)
        for v in 1..<n { start[Int(parent[v]) + 1] += 1 }
        for v in 0..<n { start[v + 1] += start[v] }
        let bytes = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: max(1, n - 1))
        bytes.initialize(repeating: 0)
        let targets = UnsafeMutableBufferPointer<Int32>.allocate(capacity: max(1, n - 1))
        targets.initialize(repeating: 0)
        var filled = [Int32](repeating: 0, count: n)
        for v in 1..<n {
            let p = Int(parent[v])
            let k = Int(start[p] + filled[p])
            bytes[k] = byte[v]
            targets[k] = Int32(v)
            filled[p] += 1
        }
        let root = UnsafeMutableBufferPointer<Int32>.allocate(capacity: 256)
        root.initialize(repeating: 0)
        for k in Int(start[0])..<Int(start[1]) { root[Int(bytes[k])] = targets[k] }
        rootNext = root
        edgeStart = start
        edgeByte = bytes
        edgeTarget = targets
        parent = []
        byte = []
        filled = []

        // Failure links breadth first (a node's link is shallower, so already known), and with
        // them the two answers per state.
        let failLinks = UnsafeMutableBufferPointer<Int32>.allocate(capacity: n)
        failLinks.initialize(repeating: 0)
        let hold = UnsafeMutableBufferPointer<Int32>.allocate(capacity: n)
        hold.initialize(repeating: 0)
        let match = UnsafeMutableBufferPointer<Int32>.allocate(capacity: n)
        match.initialize(repeating: 0)
        var depth = [Int32](repeating: 0, count: n)
        var queue: [Int32] = [0]
        queue.reserveCapacity(n)
        var head = 0
        while head < queue.count {
            let u = Int(queue[head])
            head += 1
            if u != 0 {
                let f = Int(failLinks[u])
                hold[u] = start[u] < start[u + 1] ? depth[u] : hold[f]
                match[u] = terminal[u] ? depth[u] : match[f]
            }
            for k in Int(start[u])..<Int(start[u + 1]) {
                let v = Int(targets[k])
                depth[v] = depth[u] + 1
                if u != 0 {
                    var f = failLinks[u]
                    while true {
                        let t = Self.child(of: f, on: bytes[k], root, start, bytes, targets)
                        if t != 0 || f == 0 {
                            failLinks[v] = t
                            break
                        }
                        f = failLinks[Int(f)]
                    }
                }
                queue.append(Int32(v))
            }
        }
        fail = failLinks
        holdDepth = hold
        matchLength = match
    }

    deinit {
        rootNext.deallocate()
        edgeStart.deallocate()
        edgeByte.deallocate()
        edgeTarget.deallocate()
        fail.deallocate()
        holdDepth.deallocate()
        matchLength.deallocate()
    }

    /// How many of the last bytes read in `state` may still begin a secret (at most
    /// ``longest`` − 1).
    func held(in state: Int32) -> Int { Int(holdDepth[Int(state)]) }

    /// Reads `chunk` from `state` and returns the state after it. For each byte that ends a
    /// secret, calls `match(end, length)`: `end` is the index just after that byte in `chunk`,
    /// `length` the longest secret ending there (the shorter ones ending there lie inside it).
    /// `steps` counts transitions tried, failure links included (tests: the work is linear).
    func read(
        _ chunk: UnsafeRawBufferPointer, from state: Int32, steps: inout Int, _ match: (Int, Int) -> Void
    ) -> Int32 {
        var s = state
        var tried = 0
        for i in 0..<chunk.count {
            let c = chunk[i]
            while true {
                tried += 1
                let t = Self.child(of: s, on: c, rootNext, edgeStart, edgeByte, edgeTarget)
                if t != 0 {
                    s = t
                    break
                }
                if s == 0 { break }
                s = fail[Int(s)]
            }
            let length = matchLength[Int(s)]
            if length > 0 { match(i + 1, Int(length)) }
        }
        steps += tried
        return s
    }

    /// The child of `node` on byte `c`, 0 if none.
    @inline(__always)
    private static func child(
        of node: Int32, on c: UInt8, _ root: UnsafeMutableBufferPointer<Int32>, _ start: UnsafeMutableBufferPointer<Int32>,
        _ bytes: UnsafeMutableBufferPointer<UInt8>, _ targets: UnsafeMutableBufferPointer<Int32>
    ) -> Int32 {
        if node == 0 { return root[Int(c)] }
        var lo = Int(start[Int(node)])
        var hi = Int(start[Int(node) + 1])
        while lo < hi {
            let mid = (lo + hi) >> 1
            let b = bytes[mid]
            if b == c { return targets[mid] }
            if b < c { lo = mid + 1 } else { hi = mid }
        }
        return 0
    }
}
