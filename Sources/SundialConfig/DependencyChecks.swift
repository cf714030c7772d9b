import OrderedCollections
import SundialCore

/// Checks of `needs` across the whole set: unknown ids, self-dependencies, cycles (design §2).
enum DependencyChecks {
    static func check(jobs: OrderedDictionary<JobID, JobSpec>, knownIDs: Set<JobID>) -> [Diagnostic] {
        var diagnostics: [Diagnostic] = []
        for job in jobs.values {
            for need in job.needs {
                let loc = need.location ?? job.location ?? SourceLocation(file: "?", line: 1, column: 1)
                if need.job == job.id {
                    diagnostics.append(Diagnostic(at: loc, "job `\(job.id)` needs itself"))
                } else if !knownIDs.contains(need.job) {
                    diagnostics.append(
                        Diagnostic(
                            at: loc, "`needs` refers to unknown job `\(need.job)`",
                            hint: DidYouMean.hint(need.job, from: knownIDs.sorted())))
                }
            }
        }
        diagnostics += cycles(jobs: jobs)
        return diagnostics
    }

    /// Every elementary cycle found by a depth-first search, each reported once, at the `needs`
    /// entry that closes it, with the whole path: `a → b → c → a`.
    static func cycles(jobs: OrderedDictionary<JobID, JobSpec>) -> [Diagnostic] {
        enum Mark { case visiting, done }
        var marks: [JobID: Mark] = [:]
        var stack: [JobID] = []
        var diagnostics: [Diagnostic] = []
        var reported: Set<Set<JobID>> = []

        // Iterative DFS: a 10,000-job chain must not overflow the stack.
        for start in jobs.keys where marks[start] == nil {
            var work: [(JobID, Int)] = [(start, 0)]
            marks[start] = .visiting
            stack.append(start)
            while let (id, index) = work.last {
                let needs = jobs[id]?.needs ?? []
                if index < needs.count {
                    work[work.count - 1].1 += 1
                    let next = needs[index].job
                    guard jobs[next] != nil, next != id else { continue }
                    switch marks[next] {
                    case .none:
                        marks[next] = .visiting
                        stack.append(next)
                        work.append((next, 0))
                    case .visiting:
                        let cycle = Array(stack[stack.lastIndex(of: next)!...])
                        if reported.insert(Set(cycle)).inserted {
                            let path = (cycle + [next]).map { "`\($0)`" }.joined(separator: " → ")
                            let loc = needs[index].location ?? jobs[id]?.location ?? SourceLocation(file: "?", line: 1, column: 1)
                            diagnostics.append(
                                Diagnostic(
                                    at: loc, "dependency cycle: \(path)",
                                    hint: "remove one of these `needs` entries"))
                        }
                    case .done:
                        break
                    }
                } else {
                    marks[id] = .done
                    stack.removeLast()
                    work.removeLast()
                }
            }
        }
        return diagnostics
    }
}
