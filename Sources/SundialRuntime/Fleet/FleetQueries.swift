import OrderedCollections
import SundialCore

/// What `sundial fleet status` and `sundial fleet history JOB` read from the fleet's database.
public enum FleetQueries {
    public struct BoxStatus: Sendable, Equatable {
        public var box: String
        public var lastContact: Instant
        public var version: String
        /// The last published outcome of each job this box ran, by job name.
        public var lastOutcomes: [(job: String, outcome: String, finishedAt: Instant)]
        public static func == (a: BoxStatus, b: BoxStatus) -> Bool {
            a.box == b.box && a.lastContact == b.lastContact && a.version == b.version
                && a.lastOutcomes.map { "\($0.job)|\($0.outcome)|\($0.finishedAt.unixMillis)" }
                    == b.lastOutcomes.map { "\($0.job)|\($0.outcome)|\($0.finishedAt.unixMillis)" }
        }
    }

    public struct RunRecord: Sendable, Equatable {
        public var runID: String
        public var job: String
        public var box: String
        public var attempt: Int
        public var scheduledFor: Instant?
        public var startedAt: Instant
        public var finishedAt: Instant
        public var outcome: String
        public var exitCode: Int?
        public var token: Int64?
        public var outputTail: String?
    }

    /// Every box that ever contacted the database (within retention), by name, with the last
    /// outcome per job. Bounded: at most `maxBoxes` boxes.
    public static func status(_ db: PostgresConnection, maxBoxes: Int = 10_000) throws(PostgresError) -> [BoxStatus] {
        let boxes = try db.query("SELECT box, sundial_ms(last_contact), version FROM sundial_boxes ORDER BY box LIMIT $1", [String(maxBoxes)])
        let last = try db.query(
            """
            SELECT DISTINCT ON (box, job) box, job, outcome, sundial_ms(finished_at) FROM sundial_runs
            WHERE box = ANY($1::text[]) ORDER BY box, job, finished_at DESC
            """, [PostgresFleetCoordinator.textArray(boxes.compactMap { $0[0] })])
        var byBox: [String: [(job: String, outcome: String, finishedAt: Instant)]] = [:]
        for r in last {
            guard let box = r[0], let job = r[1], let outcome = r[2], let at = r[3].flatMap({ Int64($0) }) else { continue }
            byBox[box, default: []].append((job, outcome, Instant(unixMillis: at)))
        }
        return boxes.compactMap { r in
            guard let box = r[0], let at = r[1].flatMap({ Int64($0) }) else { return nil }
            return BoxStatus(box: box, lastContact: Instant(unixMillis: at), version: r[2] ?? "", lastOutcomes: byBox[box] ?? [])
        }
    }

    /// The newest `limit` published runs of `job` across the fleet, newest first.
    public static func history(_ db: PostgresConnection, job: String, limit: Int) throws(PostgresError) -> [RunRecord] {
        let rows = try db.query(
            """
            SELECT run_id, job, box, attempt, sundial_ms(scheduled_for), sundial_ms(started_at), sundial_ms(finished_at),
                   outcome, exit_code, token, output_tail
            FROM sundial_runs WHERE job = $1 ORDER BY finished_at DESC, run_id DESC LIMIT $2
            """, [job, String(limit)])
        return rows.compactMap { r in
            guard r.count == 11, let id = r[0], let job = r[1], let box = r[2], let st = r[5].flatMap({ Int64($0) }),
                let fin = r[6].flatMap({ Int64($0) }), let outcome = r[7]
            else { return nil }
            return RunRecord(
                runID: id, job: job, box: box, attempt: r[3].flatMap { Int($0) } ?? 1,
                scheduledFor: r[4].flatMap { Int64($0) }.map(Instant.init(unixMillis:)),
                startedAt: Instant(unixMillis: st), finishedAt: Instant(unixMillis: fin), outcome: outcome,
                exitCode: r[8].flatMap { Int($0) }, token: r[9].flatMap { Int64($0) }, outputTail: r[10])
        }
    }
}

extension FleetQueries.BoxStatus {
    public var json: JSONValue {
        .object([
            "box": .string(box), "last_contact": .string("\(lastContact)"), "version": .string(version),
            "jobs": .array(lastOutcomes.map { .object(["job": .string($0.job), "outcome": .string($0.outcome), "finished_at": .string("\($0.finishedAt)")]) }),
        ])
    }
}

extension FleetQueries.RunRecord {
    public var json: JSONValue {
        .object([
            "run_id": .string(runID), "job": .string(job), "box": .string(box), "attempt": .int(Int64(attempt)),
            "scheduled_for": scheduledFor.map { .string("\($0)") } ?? .null,
            "started_at": .string("\(startedAt)"), "finished_at": .string("\(finishedAt)"), "outcome": .string(outcome),
            "exit_code": exitCode.map { .int(Int64($0)) } ?? .null, "token": token.map { .int($0) } ?? .null,
            "output_tail": outputTail.map { .string($0) } ?? .null,
        ])
    }
}
