import ArgumentParser
import OrderedCollections
import SundialCore
import SundialRuntime

/// `sundial fleet status|history`: what every box of the fleet did, read from the fleet's
/// PostgreSQL (not from an agent: it works from any machine that can reach the database).
struct FleetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fleet",
        abstract: "Show the fleet's boxes and runs, from its PostgreSQL.",
        subcommands: [FleetStatusCommand.self, FleetHistoryCommand.self])
}

enum FleetFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json
}

/// Connects for a `fleet` command; exits 1 with the (masked) reason when it cannot.
func fleetConnection(_ options: FleetOptions) throws -> PostgresConnection {
    guard let settings = try options.settings() else {
        throw ValidationError("name the fleet's database with --fleet URL or SUNDIAL_FLEET_URL")
    }
    let db = PostgresConnection(settings: settings)
    let ready: [[String?]]
    do throws(PostgresError) {
        try db.ensureConnected()
        // Read-only commands never create the schema; say so rather than fail on a missing table.
        ready = try db.query("SELECT to_regclass('sundial_runs') IS NOT NULL AND to_regclass('sundial_boxes') IS NOT NULL")
    } catch {
        printClientError(error.message)
        throw ExitCode(1)
    }
    guard ready.first?.first == "t" else {
        printClientError("the fleet database \(settings.maskedURL) has no Sundial tables yet: start an agent with --fleet first")
        throw ExitCode(1)
    }
    return db
}

struct FleetStatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "Each box: last contact, last outcome per job.")
    @OptionGroup var fleet: FleetOptions
    @Option(help: "Output format: text or json.") var format: FleetFormat = .text

    func run() async throws {
        let db = try fleetConnection(fleet)
        defer { db.close() }
        let boxes: [FleetQueries.BoxStatus]
        do throws(PostgresError) { boxes = try FleetQueries.status(db) } catch {
            printClientError(error.message)
            throw ExitCode(1)
        }
        if format == .json {
            print(JSONValue.object(["boxes": .array(boxes.map(\.json))]).jsonText)
            return
        }
        guard !boxes.isEmpty else {
            print("no box has contacted the fleet database yet")
            return
        }
        var rows = [["BOX", "LAST CONTACT", "VERSION", "JOB", "LAST OUTCOME", "FINISHED"]]
        for b in boxes {
            if b.lastOutcomes.isEmpty { rows.append([b.box, "\(b.lastContact)", b.version, "-", "-", "-"]) }
            for (i, o) in b.lastOutcomes.enumerated() {
                rows.append(
                    i == 0 ? [b.box, "\(b.lastContact)", b.version, o.job, o.outcome, "\(o.finishedAt)"] : ["", "", "", o.job, o.outcome, "\(o.finishedAt)"])
            }
        }
        print(TextTable.render(rows))
    }
}

struct FleetHistoryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "history", abstract: "The latest runs of a job on every box.")
    @Argument(help: "The job.") var job: String
    @Option(name: .long, help: "How many runs to show (1 to 1000).") var limit: Int = 20
    @OptionGroup var fleet: FleetOptions
    @Option(help: "Output format: text or json.") var format: FleetFormat = .text

    func validate() throws {
        guard (1...1000).contains(limit) else { throw ValidationError("--limit must be from 1 to 1000") }
    }

    func run() async throws {
        let db = try fleetConnection(fleet)
        defer { db.close() }
        let runs: [FleetQueries.RunRecord]
        do throws(PostgresError) { runs = try FleetQueries.history(db, job: job, limit: limit) } catch {
            printClientError(error.message)
            throw ExitCode(1)
        }
        if format == .json {
            print(JSONValue.object(["job": .string(job), "runs": .array(runs.map(\.json))]).jsonText)
            return
        }
        guard !runs.isEmpty else {
            print("\(job): no runs published by any box")
            return
        }
        var rows = [["FINISHED", "BOX", "RUN", "SCHEDULED", "OUTCOME", "EXIT", "ATTEMPT", "TOKEN"]]
        for r in runs {
            rows.append([
                "\(r.finishedAt)", r.box, r.runID, r.scheduledFor.map { "\($0)" } ?? "-", r.outcome,
                r.exitCode.map(String.init) ?? "-", String(r.attempt), r.token.map(String.init) ?? "-",
            ])
        }
        print(TextTable.render(rows))
    }
}
