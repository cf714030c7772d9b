import ArgumentParser
import SundialCore
import SundialRuntime

#if canImport(Glibc)
import Glibc
#endif

/// Options shared by the commands that talk to a running agent (`status`, `trigger`, `history`,
/// `why`, `logs`, `pause`, `resume`, `reload`): how to find its control socket and state
/// directory, and how to print the answer.
struct ClientOptions: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "The agent's state directory, with its socket and the state.db read when no agent answers (default: $SUNDIAL_STATE, else /var/lib/sundial as root, else ./.sundial).",
            valueName: "DIR"))
    var state: String?

    @Option(name: .long, help: ArgumentHelp("The agent's control socket (default: STATE/sundial.sock).", valueName: "SOCKET"))
    var control: String?

    @Option(name: .long, help: "Output format: text or json (the agent's reply, one line).")
    var format: OutputFormat = .text

    @Option(name: .long, help: ArgumentHelp("Seconds to wait for the agent.", valueName: "SECONDS"))
    var timeout: Int = 10

    enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
        case text, json
    }

    /// The one variable the default state directory depends on.
    static var stateEnvironment: [String: String] {
        getenv("SUNDIAL_STATE").map { ["SUNDIAL_STATE": String(cString: $0)] } ?? [:]
    }

    var socketPath: String {
        StateDirectory.socketPath(control: control, state: state, environment: Self.stateEnvironment, uid: getuid())
    }

    /// The state directory: `--state`, else `$SUNDIAL_STATE`, else the default (as the agent).
    var statePath: String {
        let dir = state.flatMap { $0.isEmpty ? nil : $0 } ?? StateDirectory.defaultPath(environment: Self.stateEnvironment, uid: getuid())
        return dir.count > 1 && dir.hasSuffix("/") ? String(dir.dropLast()) : dir
    }

    var databasePath: String { statePath + "/state.db" }

    /// Sends `request`. Prints the reply as JSON with `--format json`. Exits 3 when no agent
    /// answers, 1 when the agent answers with an error; otherwise returns the reply's body.
    func ask(_ request: ControlRequest) async throws -> JSONValue {
        try await ask(request, offline: nil).body
    }

    /// An answer, and whether it was read from `state.db` because no agent answered.
    struct Answer {
        var body: JSONValue
        var offline: Bool
    }

    /// ``ask(_:)``, but when no agent answers (or it does not answer in time) and `offline` is
    /// given, the answer is read from `state.db` read-only (``StateReader``) instead, after one
    /// line on stderr saying so: the database holds what `history`, `why`, `logs` and `status`
    /// show, and an operator looking at a stopped box should not have to start the agent. When
    /// the database cannot be read either, exits 3 naming both.
    func ask(_ request: ControlRequest, offline: ((StateReader) throws -> ControlResponse)?) async throws -> Answer {
        let client = ControlClient(path: socketPath, timeout: .seconds(max(1, timeout)))
        let response: ControlResponse
        var fromDatabase = false
        do {
            response = try await client.response(to: request)
        } catch {
            guard let offline, error.code != .protocolError else {
                printClientError(error.description)
                throw ExitCode(error.code == .protocolError ? 1 : 3)
            }
            response = try readDatabase(after: error, offline)
            fromDatabase = true
        }
        if format == .json { print(response.json.jsonText) }
        guard response.ok else {
            if format == .text { printClientError(response.error ?? "the agent refused the request") }
            throw ExitCode(1)
        }
        return Answer(body: response.body, offline: fromDatabase)
    }

    /// The answer from `state.db`, said so on stderr; exits 3 when the database cannot be opened
    /// (no agent, no readable state: nothing to show), 1 when a read fails.
    private func readDatabase(after unreachable: ControlClientError, _ answer: (StateReader) throws -> ControlResponse) throws -> ControlResponse {
        let path = databasePath
        let reader: StateReader
        do { reader = try StateReader(path: path) } catch {
            printClientError("\(unreachable); and the state database cannot be read either: \(error)")
            throw ExitCode(3)
        }
        printClientError("\(unreachable); showing \(path) as of its last commit")
        do { return try answer(reader) } catch {
            printClientError("cannot read the state database: \(error)")
            throw ExitCode(1)
        }
    }

    /// Decodes a reply body, or exits 1 with the reason.
    func decode<T>(_ body: JSONValue, _ make: (JSONValue) throws(ControlProtocolError) -> T) throws -> T {
        do { return try make(body) } catch {
            printClientError("unexpected reply from the agent on \(socketPath): \(error.message)")
            throw ExitCode(1)
        }
    }
}

func printClientError(_ message: String) {
    printError("sundial: \(message)\n")
}

/// Plain-text tables for the client commands: columns padded to their widest cell.
enum TextTable {
    static func render(_ rows: [[String]]) -> String {
        guard let first = rows.first else { return "" }
        var widths = [Int](repeating: 0, count: first.count)
        for row in rows { for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) } }
        return rows.map { row in
            row.enumerated().map { i, cell in i == row.count - 1 ? cell : cell + String(repeating: " ", count: max(0, widths[i] - cell.count)) }
                .joined(separator: "  ")
        }.joined(separator: "\n")
    }
}

extension RunSummary {
    /// `success (exit 0)`, `signal 9`, `running`... (a launch failure's reason escaped for the
    /// terminal: ``StatusText/outcomeText(_:)``).
    var outcomeText: String { outcome.map(StatusText.outcomeText) ?? "running" }

    var durationText: String {
        guard let finishedAt else { return "-" }
        let ms = (finishedAt - startedAt).milliseconds
        return ms < 1000 ? "\(ms)ms" : ms < 60_000 ? "\(ms / 1000).\((ms % 1000) / 100)s" : "\(ms / 60_000)m\((ms % 60_000) / 1000)s"
    }
}
