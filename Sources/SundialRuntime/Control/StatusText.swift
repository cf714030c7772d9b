import SundialCore

/// How `sundial status` (and `trigger --wait`) put times and outcomes for people: "in 4 min",
/// "2 h ago", "12 s". Pure functions of their arguments (the current instant included), so
/// tests pin them on fixed instants; `--format json` keeps the exact instants.
///
/// Units are truncated, never rounded up (a fire 4 min 59 s away is "in 4 min", as a clock
/// would say), and one unit is shown below an hour, two above (a day is long enough that
/// "in 23 h" hides too much), so the columns stay short.
public enum StatusText {
    /// A span of milliseconds: `850 ms`, `12 s`, `4 min`, `4 min 5 s`, `2 h 5 min`, `3 d 4 h`.
    public static func span(milliseconds ms: Int64) -> String {
        let ms = max(0, ms)
        if ms < 1000 { return "\(ms) ms" }
        let s = ms / 1000
        if s < 60 { return "\(s) s" }
        let m = s / 60
        if m < 60 { return s % 60 == 0 || m >= 10 ? "\(m) min" : "\(m) min \(s % 60) s" }
        let h = m / 60
        if h < 24 { return m % 60 == 0 ? "\(h) h" : "\(h) h \(m % 60) min" }
        let d = h / 24
        return h % 24 == 0 ? "\(d) d" : "\(d) d \(h % 24) h"
    }

    /// `t` from `now`'s point of view: `in 4 min`, `2 h ago`, `now` (within a second).
    public static func relative(_ t: Instant, now: Instant) -> String {
        let delta = t.unixMillis - now.unixMillis
        if abs(delta) < 1000 { return "now" }
        let text = coarse(milliseconds: abs(delta))
        return delta > 0 ? "in \(text)" : "\(text) ago"
    }

    /// A span for relative times: one unit below an hour (`4 min`), hours and minutes below a
    /// day, days and hours beyond; seconds only below a minute.
    public static func coarse(milliseconds ms: Int64) -> String {
        let s = ms / 1000
        if s < 60 { return "\(s) s" }
        if s < 3600 { return "\(s / 60) min" }
        return span(milliseconds: (s / 60) * 60_000)
    }

    /// The NEXT column: `in 4 min`, `paused (skips the fire in 4 min)`, `held (clock not
    /// synchronised)`, `disabled`, `-` (no fire of its own).
    public static func next(_ job: StatusReport.Job, now: Instant) -> String {
        if !job.enabled { return "disabled" }
        let when = job.next.map { relative($0, now: now) }
        if job.paused { return when.map { "paused (skips the fire \($0))" } ?? "paused" }
        if job.held { return "held (clock not synchronised)" }
        return when ?? "-"
    }

    /// The LAST column: `success in 12 s, 2 h ago`, `failure (exit 3) in 1 s, 5 min ago`,
    /// `running since 3 min`, `-`.
    public static func last(_ run: RunSummary?, now: Instant) -> String {
        guard let run else { return "-" }
        guard let outcome = run.outcome, let finished = run.finishedAt else {
            return "running for \(coarse(milliseconds: max(0, now.unixMillis - run.startedAt.unixMillis)))"
        }
        return "\(outcomeText(outcome)) in \(span(milliseconds: finished.unixMillis - run.startedAt.unixMillis)), "
            + relative(finished, now: now)
    }

    /// The ZONE column: the job's `timezone`, `local` for a calendar job without one (the
    /// agent's zone), `-` for a job whose schedule does not depend on a zone.
    public static func zone(_ job: StatusReport.Job) -> String {
        if let zone = job.zone { return zone }
        let s = job.schedule
        if s == "manual" || s == "@reboot" || s.hasPrefix("after ") || s.hasPrefix("every ") || s.hasPrefix("at ") { return "-" }
        return "local"
    }

    /// `success`, `success (exit 3)`, `failure (exit 1)`, `signal 9`, `timeout`, ...
    public static func outcomeText(_ outcome: RunOutcome) -> String {
        switch outcome {
        case let .success(code) where code != 0: "success (exit \(code))"
        case .success: "success"
        case let .failure(code): "failure (exit \(code))"
        case let .signal(s): "signal \(s)"
        case .timeout: "timeout"
        // The reason may quote a job file's text (a command path written with `\e` in YAML):
        // shown escaped, as the diagnostics are (`TerminalText`).
        case let .launchFailed(reason): "launch failed: \(TerminalText.escaped(reason))"
        case .interrupted: "interrupted"
        case .unknown: "unknown (adopted after an agent restart)"
        }
    }
}
