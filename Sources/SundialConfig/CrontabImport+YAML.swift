import OrderedCollections

extension CrontabImport {
    /// The job file text. Values shared by every job (zone, environment, jitter, workdir) go
    /// to `defaults` once; the rest is per job, in crontab order, each job preceded by the
    /// crontab comments above it, any conversion notes, and its source line.
    static func render(_ jobs: [Job], options: Options) -> String {
        var out = "# yaml-language-server: $schema=\(options.schemaReference)\n"
        out += "# Converted from \(oneLine(options.fileName)) by `sundial import-crontab`. Review before installing:\n"
        out += "# - Sundial skips a fire while the job's previous run is still active (concurrency: forbid);\n"
        out += "#   cron started overlapping runs. Add `concurrency: allow` to a job to keep cron's way.\n"
        // Must match what the launcher does (docs/runtime.md, "What a job sees"): jobs never
        // get the agent's environment, and the default workdir depends on `user:`.
        out += "# - cron ran commands in the user's home directory with PATH=/usr/bin:/bin; Sundial runs them\n"
        out += "#   in the state directory (a job with `user:` in that user's home) with a minimal environment\n"
        out += "#   of its own (PATH, HOME, USER, LOGNAME, SHELL, LANG), never the agent's: set `workdir` or\n"
        out += "#   `env` if needed.\n"
        out += "# - Output goes to the event log (run.output events) instead of mail; a MAILTO becomes a\n"
        out += "#   notify entry that mails the run's facts through sendmail when a job fails.\n"
        out += "version: 1\n"

        func common<T: Equatable>(_ key: (Job) -> T?) -> T? {
            guard let first = jobs.first.flatMap(key), jobs.allSatisfy({ key($0) == first }) else { return nil }
            return first
        }
        let zone = common { $0.timezone }
        let env = common { $0.env.isEmpty ? nil : $0.env }
        let jitter = common { $0.jitterMinutes.flatMap { $0 > 0 ? $0 : nil } }
        let workdir = common { $0.workdir }
        let mailto = common { $0.mailto }
        if zone != nil || env != nil || jitter != nil || workdir != nil || mailto != nil {
            out += "defaults:\n"
            if let zone { out += "  timezone: \(scalar(zone))\n" }
            if let jitter { out += "  jitter: \(jitter)m\n" }
            if let workdir { out += "  workdir: \(scalar(workdir))\n" }
            if let env { out += renderEnv(env, indent: "  ") }
            if let mailto { out += renderMail(mailto, indent: "  ") }
        }

        guard !jobs.isEmpty else { return out + "jobs: {}\n" }
        out += "jobs:\n"
        for (i, job) in jobs.enumerated() {
            if i > 0 { out += "\n" }
            for c in job.comments { out += "  # \(oneLine(c))\n" }
            for note in job.notes { out += "  # NOTE: \(oneLine(note))\n" }
            out += "  # \(oneLine(options.fileName)):\(job.line): \(oneLine(job.source))\n"
            out += "  \(job.id):\n"
            out += "    schedule: \(doubleQuoted(job.schedule))\n"
            if zone == nil, let tz = job.timezone { out += "    timezone: \(scalar(tz))\n" }
            if jitter == nil, let j = job.jitterMinutes, j > 0 { out += "    jitter: \(j)m\n" }
            if let user = job.user { out += "    user: \(scalar(user))\n" }
            if workdir == nil, let w = job.workdir { out += "    workdir: \(scalar(w))\n" }
            if env == nil, !job.env.isEmpty { out += renderEnv(job.env, indent: "    ") }
            if let shell = job.shell { out += "    shell: \(scalar(shell))\n" }
            if let argv = job.argv { out += "    command: [" + argv.map(doubleQuoted).joined(separator: ", ") + "]\n" }
            if mailto == nil, let m = job.mailto { out += renderMail(m, indent: "    ") }
        }
        return out
    }

    /// The script of a `MAILTO` notify entry: a mail with the run's facts (the `SUNDIAL_*`
    /// variables, then the JSON document from standard input) through `sendmail -t`. The
    /// address is the script's `$1`, never part of the script text, so no address can inject
    /// shell. Without a `sendmail`, it fails and says why, so `notify.failed` tells the operator.
    public static let mailScript =
        #"m=$(command -v sendmail || echo /usr/sbin/sendmail); "#
        + #"[ -x "$m" ] || { echo "no sendmail on this box: install a mail transfer agent (postfix, msmtp-mta...) or change this notify entry" >&2; exit 1; }; "#
        + #"{ printf 'To: %s\nSubject: [sundial] %s %s on %s\n\n' "$1" "$SUNDIAL_JOB" "$SUNDIAL_EVENT" "$SUNDIAL_BOX"; "#
        + #"env | grep '^SUNDIAL_' | sort; echo; cat; } | "$m" -t"#

    static func renderMail(_ address: String, indent: String) -> String {
        indent + "notify:\n" + indent + "  - on: [failure]\n" + indent + "    command: ["
            + ["/bin/sh", "-c", mailScript, "sundial-mail", address].map(doubleQuoted).joined(separator: ", ") + "]\n"
    }

    static func renderEnv(_ env: OrderedDictionary<String, String>, indent: String) -> String {
        var out = indent + "env:\n"
        for (k, v) in env { out += indent + "  " + scalar(k) + ": " + scalar(v) + "\n" }
        return out
    }

    /// `s` made safe for a `#` comment: line breaks (YAML's, which include NEL, U+2028 and
    /// U+2029) become spaces so that the rest of the line cannot escape the comment, and other
    /// characters YAML forbids in a file (NUL, other controls) become U+FFFD, so the file loads.
    static func oneLine(_ s: String) -> String {
        var out = String.UnicodeScalarView()
        for u in s.unicodeScalars {
            if u == "\n" || u == "\r" || u == "\u{85}" || u == "\u{2028}" || u == "\u{2029}" {
                out.append(" ")
            } else if u != "\t" && needsEscape(u) {
                out.append("\u{FFFD}")
            } else {
                out.append(u)
            }
        }
        return String(out)
    }

    /// Characters that may not appear literally in a scalar Sundial writes: those outside YAML's
    /// printable set (C0 and C1 controls, DEL, U+FFFE, U+FFFF), the byte-order mark (libyaml
    /// refuses it mid-stream), and the line breaks YAML 1.1 adds (NEL, U+2028, U+2029), which
    /// would fold into spaces. Written as escapes inside double quotes instead.
    static func needsEscape(_ u: Unicode.Scalar) -> Bool {
        switch u.value {
        case 0..<0x20, 0x7F...0x9F, 0x2028, 0x2029, 0xFEFF, 0xFFFE, 0xFFFF: true
        default: false
        }
    }

    /// Words YAML 1.1 or 1.2 would read as something other than a string.
    static let reserved: Set<String> = ["true", "false", "yes", "no", "on", "off", "y", "n", "null", "~"]

    /// A YAML scalar for `s` that reads back as exactly the string `s`: plain when that is
    /// unambiguous, else single-quoted, else (control characters) double-quoted.
    static func scalar(_ s: String) -> String {
        if isPlainSafe(s) { return s }
        if !s.unicodeScalars.contains(where: needsEscape) { return "'" + s.replacingAll("'", with: "''") + "'" }
        return doubleQuoted(s)
    }

    static func isPlainSafe(_ s: String) -> Bool {
        // Scalars, not Characters: `>` followed by a combining mark is one grapheme cluster
        // that is not `>`, yet the YAML parser sees the `>` of a folded block scalar (found by
        // the `crontab` fuzz target).
        guard let first = s.unicodeScalars.first, let last = s.unicodeScalars.last else { return false }
        if "-?:,[]{}#&*!|>'\"%@`".unicodeScalars.contains(first) || first == " " || last == " " || last == ":" { return false }
        if reserved.contains(s.lowercased()) { return false }
        if s.contains(": ") || s.contains(" #") || s.contains("\t") { return false }
        if s.unicodeScalars.contains(where: needsEscape) { return false }
        // Anything that starts like a number (1, 0x1F, 1e3, .5, 12:30) could be read as one.
        return !(Character(first).isNumber || first == "." || first == "+")
    }

    static func doubleQuoted(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            default:
                if needsEscape(u) {
                    let hex = String(u.value, radix: 16)
                    out += u.value < 0x100 ? "\\x" + (hex.count < 2 ? "0" : "") + hex : "\\u" + hex
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out + "\""
    }
}
