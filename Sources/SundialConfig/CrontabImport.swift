import OrderedCollections
import SundialCore

/// Converts a crontab into a Sundial job file (`sundial import-crontab`).
///
/// Pure: text in, YAML text and problems out. It reads the formats of Vixie cron and cronie
/// (crontab(5)): a user crontab (`min hour dom mon dow command`), or with `system` the format
/// of `/etc/crontab` and `/etc/cron.d/*` with a user column before the command. What it maps:
/// - `VAR=value` lines → the `env` of the jobs *after* them (order matters, as in cron);
///   quotes around the value are removed as cron does;
/// - `CRON_TZ=` (and `TZ=`, which cron also exports to the command) → `timezone`;
/// - `RANDOM_DELAY=N` (cronie, minutes) → `jitter`;
/// - `SHELL=/bin/bash` → `command: [/bin/bash, -c, …]` (Sundial's `shell` is `/bin/sh -c`);
/// - `HOME=/dir` → `workdir` (cron runs commands in the home directory);
/// - `MAILTO=addr` → a `notify` entry (`on: failure`) whose command mails the run's facts to
///   `addr` through `sendmail` (failing with a clear reason where the box has none); an empty
///   `MAILTO` → a comment (cron discarded the output); `MAILFROM` is ignored;
/// - `@reboot`, `@daily`… → the same macros;
/// - `%` in a command: cron turns the first unescaped `%` into the end of the command and the
///   rest (with `%` as newlines) into standard input; that becomes `printf '%s' '…' | …`,
///   and `\%` becomes `%`.
/// A line that is neither is reported with its number and skipped; the rest is converted.
public enum CrontabImport {
    public struct Options: Sendable {
        /// `/etc/crontab` format: a user column after the schedule.
        public var system: Bool
        /// For a user crontab: the user its jobs ran as (`user:` in every job).
        public var user: String?
        /// The name shown in comments and problems.
        public var fileName: String
        /// What the `yaml-language-server` comment points at.
        public var schemaReference: String

        public init(
            system: Bool = false, user: String? = nil, fileName: String = "crontab",
            schemaReference: String = CrontabImport.installedSchemaPath
        ) {
            self.system = system
            self.user = user
            self.fileName = fileName
            self.schemaReference = schemaReference
        }
    }

    /// Where the Debian package installs the schema.
    public static let installedSchemaPath = "/usr/share/sundial/sundial-jobs.v1.schema.json"

    /// A line that could not be converted.
    public struct Problem: Hashable, Sendable, CustomStringConvertible {
        public var file: String
        public var line: Int
        public var message: String
        /// `FILE:LINE: error: message`.
        public var description: String { "\(file):\(line): error: \(message)" }
    }

    public struct Result: Sendable {
        /// The job file, starting with the schema comment and `version: 1`.
        public var yaml: String
        public var problems: [Problem]
        /// The ids of the converted jobs, in crontab order.
        public var jobIDs: [String]
    }

    /// One converted crontab entry.
    struct Job {
        var id = ""
        var line: Int
        var source: String
        var comments: [String]
        var schedule: String
        var user: String?
        var shell: String?
        var argv: [String]?
        var timezone: String?
        var jitterMinutes: Int?
        var workdir: String?
        var env: OrderedDictionary<String, String>
        var notes: [String] = []
        /// `MAILTO` in force for the job (non-empty): rendered as a `notify` entry.
        var mailto: String?
        /// The command as written (before `%` conversion), to name the job after.
        var slugSource = ""
    }

    /// Converts `text`; never throws, every problem is in the result.
    public static func convert(_ text: String, options: Options = Options()) -> Result {
        var problems: [Problem] = []
        var jobs: [Job] = []
        var env: OrderedDictionary<String, String> = [:]
        var cronTZ: String?
        var tz: String?
        var shell: String?
        var randomDelay: Int?
        var home: String?
        var mailto: String?
        var pendingComments: [String] = []

        func fail(_ n: Int, _ m: String) { problems.append(Problem(file: options.fileName, line: n, message: m)) }

        // Split on the byte: "\r\n" is one `Character` in Swift, so a `Character` split read a
        // crontab with CRLF line ends as one line (a leading comment swallowed every job).
        for (index, rawLine) in text.utf8.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated() {
            let n = index + 1
            var line = Substring(rawLine)
            if line.last == "\r" { line = line.dropLast() }
            let trimmed = line.drop { $0 == " " || $0 == "\t" }
            if trimmed.isEmpty {
                pendingComments = []
                continue
            }
            if trimmed.first == "#" {
                pendingComments.append(String(trimmed.dropFirst().drop { $0 == " " }))
                continue
            }
            // cron stops a line at a NUL; a job file refuses one in anything that reaches
            // execve. Either way the line cannot be carried over as written.
            if trimmed.utf8.contains(0) {
                pendingComments = []
                fail(n, "the line contains a NUL character; it was not converted")
                continue
            }
            if let (name, value) = parseEnvironmentLine(trimmed) {
                pendingComments = []
                switch name {
                case "CRON_TZ", "TZ":
                    if name == "TZ" { env[name] = value }
                    guard value.isEmpty || isZoneName(value) else {
                        fail(n, "\(name) '\(value)' is not a time zone name such as Europe/Berlin; the jobs below keep the zone they had")
                        continue
                    }
                    if name == "CRON_TZ" { cronTZ = value.isEmpty ? nil : value } else { tz = value.isEmpty ? nil : value }
                case "SHELL":
                    env[name] = value
                    // An empty SHELL would become an empty argv[0], which the schema refuses
                    // (and cron could not exec either).
                    guard !value.isEmpty else {
                        fail(n, "SHELL is empty; the jobs below run with /bin/sh")
                        shell = nil
                        continue
                    }
                    shell = value
                case "RANDOM_DELAY":
                    guard let minutes = Int(value), minutes >= 0 else {
                        fail(n, "RANDOM_DELAY must be a number of minutes, not '\(value)'")
                        continue
                    }
                    // The jitter it becomes is a duration, and durations end at 100 years.
                    guard minutes <= DurationParser.maximumMilliseconds / 60_000 else {
                        fail(n, "RANDOM_DELAY of \(minutes) minutes is longer than the 100 years a jitter may be")
                        continue
                    }
                    randomDelay = minutes
                case "HOME":
                    home = value
                    env[name] = value
                case "MAILTO": mailto = value
                case "MAILFROM", "CONTENT_TYPE", "CONTENT_TRANSFER_ENCODING": break
                default:
                    guard isValidEnvName(name) else {
                        fail(n, "'\(name)' is not a valid environment variable name")
                        continue
                    }
                    env[name] = value
                }
                continue
            }
            switch parseJobLine(trimmed, system: options.system) {
            case let .failure(message):
                fail(n, message)
                pendingComments = []
            case let .success(entry):
                var job = Job(
                    line: n, source: String(trimmed), comments: pendingComments, schedule: entry.schedule,
                    user: entry.user ?? options.user, timezone: cronTZ ?? tz, jitterMinutes: randomDelay,
                    env: env)
                pendingComments = []
                let (command, stdin) = splitPercent(entry.command)
                var commandLine = command.trimmingTrailingBlanks
                job.slugSource = commandLine
                if var stdin {
                    // Lines on standard input end with a newline, as a heredoc would give them.
                    if !stdin.hasSuffix("\n") { stdin += "\n" }
                    commandLine = "printf '%s' " + shellQuote(stdin) + " | " + commandLine
                    job.notes.append("cron fed the text after '%' to standard input; printf does the same here")
                }
                if let shell, shell != "/bin/sh" {
                    job.argv = [shell, "-c", commandLine]
                } else {
                    job.shell = commandLine
                }
                if let home, home.hasPrefix("/") { job.workdir = home }
                if let mailto {
                    if mailto.isEmpty {
                        job.notes.append("MAILTO was empty: cron discarded the output; Sundial logs it as run.output events")
                    } else {
                        job.mailto = mailto
                        job.notes.append(
                            "cron mailed any output to \(mailto) (MAILTO); Sundial mails when the job fails (notify) and logs the output as run.output events")
                    }
                }
                jobs.append(job)
            }
        }
        assignIDs(&jobs)
        return Result(yaml: render(jobs, options: options), problems: problems, jobIDs: jobs.map(\.id))
    }

    // MARK: - Lines

    /// `NAME = value` as cron's `load_env` reads it: the name is a word (optionally quoted),
    /// then `=`, then the value with surrounding blanks and one pair of matching quotes removed.
    static func parseEnvironmentLine(_ line: Substring) -> (String, String)? {
        var rest = line
        var name: Substring
        if let q = rest.first, q == "\"" || q == "'" {
            rest = rest.dropFirst()
            guard let end = rest.firstIndex(of: q) else { return nil }
            name = rest[..<end]
            rest = rest[rest.index(after: end)...]
        } else {
            let end = rest.firstIndex { $0 == "=" || $0 == " " || $0 == "\t" } ?? rest.endIndex
            name = rest[..<end]
            rest = rest[end...]
        }
        rest = rest.drop { $0 == " " || $0 == "\t" }
        guard !name.isEmpty, rest.first == "=" else { return nil }
        var value = rest.dropFirst().drop { $0 == " " || $0 == "\t" }
        while let last = value.last, last == " " || last == "\t" { value = value.dropLast() }
        if value.count >= 2, let q = value.first, q == "\"" || q == "'", value.last == q {
            value = value.dropFirst().dropLast()
        }
        return (String(name), String(value))
    }

    static func isValidEnvName(_ s: String) -> Bool {
        guard let f = s.unicodeScalars.first, f == "_" || (f.isASCII && f.properties.isAlphabetic) else { return false }
        return s.unicodeScalars.allSatisfy { $0 == "_" || ($0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0))) }
    }

    /// The schema's `timezone` pattern, `^[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*$`: a zone the
    /// importer writes must pass it, or the whole file would fail to load.
    static func isZoneName(_ s: String) -> Bool {
        s.split(separator: "/", omittingEmptySubsequences: false).allSatisfy { part in
            !part.isEmpty
                && part.unicodeScalars.allSatisfy {
                    $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || "_+-".unicodeScalars.contains($0))
                }
        }
    }

    struct Entry {
        var schedule: String
        var user: String?
        var command: Substring
    }

    enum LineResult {
        case success(Entry)
        case failure(String)
    }

    static let macros: Set<String> = ["@reboot", "@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"]

    static func parseJobLine(_ line: Substring, system: Bool) -> LineResult {
        var rest = line
        func word() -> Substring? {
            rest = rest.drop { $0 == " " || $0 == "\t" }
            guard !rest.isEmpty else { return nil }
            let end = rest.firstIndex { $0 == " " || $0 == "\t" } ?? rest.endIndex
            defer { rest = rest[end...] }
            return rest[..<end]
        }
        var schedule: String
        if line.first == "@" {
            let macro = String(word()!).lowercased()
            guard macros.contains(macro) else {
                return .failure("unknown schedule '\(macro)'; expected one of \(macros.sorted().joined(separator: " "))")
            }
            schedule = macro
        } else {
            var fields: [Substring] = []
            for _ in 0..<5 {
                guard let w = word() else {
                    return .failure(
                        fields.isEmpty
                            ? "not a crontab line (expected an environment setting NAME=value or a job)"
                            : "expected 5 time fields and a command, found \(fields.count) field\(fields.count == 1 ? "" : "s")")
                }
                fields.append(w)
            }
            schedule = fields.joined(separator: " ")
        }
        // The loader's check (the time engine's parser plus "never fires"): the same problems,
        // in the same words, as `sundial validate` would report for the converted file.
        // (`@reboot` has no calendar times, so it is not checked: it is valid as it is.)
        if schedule != "@reboot", let problem = CronSyntax.check(schedule) { return .failure(problem.message) }
        var user: String?
        if system {
            guard let u = word() else { return .failure("missing user and command (system crontab format: schedule, user, command)") }
            user = String(u)
        }
        let command = rest.drop { $0 == " " || $0 == "\t" }
        guard !command.isEmpty else { return .failure("missing command after the schedule\(system ? " and user" : "")") }
        return .success(Entry(schedule: schedule, user: user, command: command))
    }

    /// Splits at the first unescaped `%`: the command (with `\%` → `%`), and the standard
    /// input text (with unescaped `%` → newline, `\%` → `%`) if there was one.
    static func splitPercent(_ command: Substring) -> (String, String?) {
        var cmd = ""
        var input: String?
        var escaped = false
        for ch in command {
            if escaped {
                if ch != "%" { (input == nil ? { cmd.append("\\") } : { input!.append("\\") })() }
                if input == nil { cmd.append(ch) } else { input!.append(ch) }
                escaped = false
            } else if ch == "\\" {
                escaped = true
            } else if ch == "%" {
                if input == nil { input = "" } else { input!.append("\n") }
            } else {
                if input == nil { cmd.append(ch) } else { input!.append(ch) }
            }
        }
        if escaped { if input == nil { cmd.append("\\") } else { input!.append("\\") } }
        return (cmd, input)
    }

    /// A single-quoted shell word.
    static func shellQuote(_ s: String) -> String { "'" + s.replacingAll("'", with: "'\\''") + "'" }

    // MARK: - Ids

    /// Words of a command that say nothing about what it does.
    static let noiseWords: Set<String> = [
        "test", "cd", "&&", "||", "{", "}", ";", "/", "[", "]", "if", "then", "fi",
        "exec", "nice", "ionice", "sudo", "env", "sh", "bash", "-c", "/bin/sh", "/bin/bash",
        "printf", "echo", "true", "|", "timeout", "flock", "command", "/dev/null",
    ]

    /// A readable, unique id per job: the first three meaningful words of the command
    /// (basenames of paths, no flags or redirections), as a slug; `job-LINE` if none.
    static func assignIDs(_ jobs: inout [Job]) {
        var used: Set<String> = []
        for i in jobs.indices {
            let base = slug(for: jobs[i].slugSource)
            var id = base.isEmpty ? "job-\(jobs[i].line)" : base
            var k = 2
            while used.contains(id) {
                let suffix = "-\(k)"
                id = String((base.isEmpty ? "job-\(jobs[i].line)" : base).prefix(63 - suffix.count)) + suffix
                k += 1
            }
            used.insert(id)
            jobs[i].id = id
        }
    }

    static func slug(for command: String) -> String {
        var words: [String] = []
        var skipNext = false
        for raw in command.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }) {
            var w = String(raw)
            if skipNext {
                skipNext = false
                continue
            }
            // A redirection's target ("> /dev/null") says nothing about the job.
            if [">", ">>", "<", "2>", "2>>", "1>", "&>", "&>>"].contains(w) {
                skipNext = true
                continue
            }
            let isAssignment = w.firstIndex(of: "=").map { isValidEnvName(String(w[..<$0])) } ?? false
            if noiseWords.contains(w) || w.hasPrefix("-") || w.hasPrefix(">") || w.hasPrefix("<") || w.hasPrefix("2>")
                || w.hasPrefix("1>") || w.hasPrefix("&") || isAssignment || w.hasPrefix("$") || w.hasPrefix("'") || w.hasPrefix("\"")
            {
                continue
            }
            if w.hasSuffix(";") { w.removeLast() }
            if let slash = w.lastIndex(of: "/") { w = String(w[w.index(after: slash)...]) }
            let cleaned = String(w.lowercased().map { ($0.isASCII && ($0.isLetter || $0.isNumber)) || $0 == "." || $0 == "_" || $0 == "-" ? $0 : "-" })
                .split(separator: "-", omittingEmptySubsequences: true).joined(separator: "-")
            let trimmedWord = cleaned.drop { !($0.isLetter || $0.isNumber) }
            guard !trimmedWord.isEmpty, !noiseWords.contains(String(trimmedWord)) else { continue }
            words.append(String(trimmedWord))
            if words.count == 3 { break }
        }
        var s = words.joined(separator: "-")
        if s.count > 48 { s = String(s.prefix(48)) }
        while let l = s.last, !(l.isLetter || l.isNumber) { s.removeLast() }
        return s
    }
}

extension String {
    var trimmingTrailingBlanks: String {
        var s = self
        while let l = s.last, l == " " || l == "\t" { s.removeLast() }
        return s
    }

    /// Replaces by Unicode scalars, not Characters: a quote followed by a combining mark is one
    /// Character that is not a quote, yet YAML and the shell see the quote, so quoting left it
    /// undoubled (found by the `crontab` fuzz target).
    func replacingAll(_ target: String, with replacement: String) -> String {
        let t = Array(target.unicodeScalars)
        guard !t.isEmpty else { return self }
        let s = Array(unicodeScalars)
        var out = String.UnicodeScalarView()
        var i = 0
        while i < s.count {
            if i + t.count <= s.count, s[i..<(i + t.count)].elementsEqual(t) {
                out.append(contentsOf: replacement.unicodeScalars)
                i += t.count
            } else {
                out.append(s[i])
                i += 1
            }
        }
        return String(out)
    }
}

extension Substring {
    func range(of target: String) -> Range<Index>? {
        guard !target.isEmpty, target.count <= count else { return nil }
        var i = startIndex
        while i < endIndex {
            if self[i...].hasPrefix(target) { return i..<index(i, offsetBy: target.count) }
            i = index(after: i)
        }
        return nil
    }
}
