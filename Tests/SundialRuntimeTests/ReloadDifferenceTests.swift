import OrderedCollections
import SundialCore
import Testing

@testable import SundialRuntime

/// What a reload reports as added, removed and changed (`config.loaded`, `sundial reload`): the
/// same whether the jobs kept their places or moved, since the comparison walks both sets by
/// position first and falls back to ids.
@Suite("Reload difference")
struct ReloadDifferenceTests {
    static func job(_ id: String, _ command: String = "true") -> JobSpec {
        JobSpec(id: JobID(id), schedule: .cron("*/5 * * * *"), command: .shell(command))
    }

    static func set(_ jobs: [JobSpec]) -> JobSet {
        var d: OrderedDictionary<JobID, JobSpec> = [:]
        for j in jobs { d[j.id] = j }
        return JobSet(jobs: d, files: ["a.yaml"], revision: "r")
    }

    /// The answer by definition: lookups by id only.
    static func expected(_ old: JobSet?, _ new: JobSet) -> Agent.Difference {
        let added = new.jobs.keys.filter { old?.jobs[$0] == nil }
        let removed = (old?.jobs.keys ?? []).filter { new.jobs[$0] == nil }
        let changed = new.jobs.keys.filter { id in old?.jobs[id].map { $0 != new.jobs[id]! } ?? false }
        return (Array(added), Array(removed), Array(changed))
    }

    static let cases: [(String, [JobSpec], [JobSpec])] = [
        ("unchanged", [job("a"), job("b"), job("c")], [job("a"), job("b"), job("c")]),
        ("one changed in place", [job("a"), job("b"), job("c")], [job("a"), job("b", "false"), job("c")]),
        ("appended", [job("a"), job("b")], [job("a"), job("b"), job("c")]),
        ("last removed", [job("a"), job("b"), job("c")], [job("a"), job("b")]),
        ("first removed", [job("a"), job("b"), job("c")], [job("b"), job("c")]),
        ("inserted at the front", [job("b"), job("c")], [job("a"), job("b"), job("c", "x")]),
        ("reversed", [job("a"), job("b"), job("c")], [job("c"), job("b", "y"), job("a")]),
        ("one swapped for another", [job("a"), job("b"), job("c")], [job("a"), job("d"), job("c")]),
        ("all new", [job("a"), job("b")], [job("c"), job("d")]),
        ("emptied", [job("a"), job("b")], []),
    ]

    @Test(arguments: cases.indices)
    func matchesTheDefinition(_ i: Int) {
        let (name, before, after) = Self.cases[i]
        let old = Self.set(before)
        let new = Self.set(after)
        let d = Agent.difference(old: old, new: new)
        let e = Self.expected(old, new)
        #expect(d.added == e.added, "\(name): added")
        #expect(d.removed == e.removed, "\(name): removed")
        #expect(d.changed == e.changed, "\(name): changed")
    }

    @Test func aFirstLoadAddsEverything() {
        let new = Self.set([Self.job("a"), Self.job("b")])
        let d = Agent.difference(old: nil, new: new)
        #expect(d.added == ["a", "b"] && d.removed.isEmpty && d.changed.isEmpty)
    }
}
