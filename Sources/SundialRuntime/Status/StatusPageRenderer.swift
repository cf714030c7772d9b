import SundialCore

/// Renders the status pages as server-side HTML: no JavaScript, nothing fetched from elsewhere,
/// one small inline stylesheet, so a page opened through an SSH tunnel on an offline box works.
///
/// Pages are built as UTF-8 bytes in one buffer (a 1,000-job page is a few hundred KB; see
/// docs/operations.md for the measured figures). Every user-controlled string goes through
/// ``HTMLEscape``; links to a job percent-encode its id. Outcome colours are CSS classes named
/// after the outcome (`o-success`, `o-failure`, … `o-running`), which the browser tests check.
public enum StatusPageRenderer {
    /// The one stylesheet, inline. Colours chosen to be told apart by the colour-blind too
    /// (blue/orange rather than green/red) and to print.
    static let stylesheet = """
        body{font:14px/1.4 system-ui,sans-serif;margin:0 1.5em 2em;color:#1b1b1b;background:#fff}
        nav{padding:.6em 0;border-bottom:1px solid #ccc;margin-bottom:1em}nav a{margin-right:1.2em}
        h1{font-size:1.3em}h2{font-size:1.1em;margin-top:1.5em}
        table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.25em .6em;border-bottom:1px solid #eee;vertical-align:top}
        th{background:#f4f4f4}code,pre{font-family:ui-monospace,monospace;font-size:.92em}
        pre{background:#f7f7f7;padding:.5em;overflow-x:auto;white-space:pre-wrap;word-break:break-all;max-height:30em}
        .muted{color:#666}.badge{display:inline-block;padding:0 .4em;border-radius:3px;font-size:.85em;margin-right:.3em;background:#ddd}
        .outcome{padding:0 .4em;border-radius:3px;color:#fff}
        .o-success{background:#1f77b4}.o-failure{background:#d62728}.o-timeout{background:#ff7f0e}.o-signal{background:#9467bd}
        .o-launch_failed{background:#8c564b}.o-interrupted{background:#7f7f7f}.o-unknown{background:#bcbd22}.o-running{background:#17becf}
        .spark i{display:inline-block;width:6px;height:14px;margin-right:1px;vertical-align:middle}
        .b-paused{background:#ffd54f}.b-held{background:#ffcc80}.b-disabled{background:#e0e0e0}.b-running{background:#b2ebf2}
        .errors li{font-family:ui-monospace,monospace}
        svg text{font:11px system-ui,sans-serif}
        """

    // MARK: - Pages

    /// `/`: the agent header and one row per job.
    public static func jobsPage(agent: StatusAgentInfo, rows: [StatusJobRow]) -> [UInt8] {
        var h = HTMLBuffer()
        h.open(title: "Sundial — jobs")
        agentSection(agent, into: &h)
        h.raw("<h2>Jobs (\(rows.count))</h2>\n")
        h.raw(
            "<table id=\"jobs\"><thead><tr><th>Job</th><th>Schedule</th><th>Zone</th><th>Next fire</th><th>Last outcome</th><th>State</th><th>Last 20</th></tr></thead><tbody>\n"
        )
        for row in rows { jobRow(row, now: agent.now, into: &h) }
        h.raw("</tbody></table>\n")
        h.close()
        return h.bytes
    }

    /// `/jobs/{id}`: definition, `why` ledger, recent runs with their output.
    public static func jobPage(agent: StatusAgentInfo, detail: StatusJobDetail) -> [UInt8] {
        var h = HTMLBuffer()
        let row = detail.row
        h.open(title: "Sundial — " + row.id)
        h.raw("<h1>Job <code class=\"job-id\">")
        h.text(row.id)
        h.raw("</code></h1>\n")
        if let d = row.description {
            h.raw("<p>")
            h.text(d)
            h.raw("</p>\n")
        }
        h.raw("<table id=\"summary\"><tbody>\n")
        h.raw("<tr><th>Schedule</th><td>")
        scheduleCell(row, into: &h)
        h.raw("</td></tr>\n")
        h.raw("<tr><th>Next fire</th><td>")
        nextCell(row, now: agent.now, into: &h)
        h.raw("</td></tr>\n")
        h.raw("<tr><th>State</th><td>")
        markers(row, into: &h)
        h.raw("</td></tr>\n")
        h.raw("</tbody></table>\n")

        h.raw("<h2>Definition</h2>\n")
        if let l = detail.location {
            h.raw("<p class=\"source\">From <code>")
            h.text(l.description)
            h.raw("</code></p>\n")
        }
        if let def = detail.definition {
            h.raw("<table id=\"definition\"><tbody>\n")
            for (k, v) in def {
                h.raw("<tr><th>")
                h.text(k)
                h.raw("</th><td><code>")
                h.text(v)
                h.raw("</code></td></tr>\n")
            }
            h.raw("</tbody></table>\n")
        } else {
            h.raw("<p class=\"muted\">Not in the running configuration: only its history remains.</p>\n")
        }

        h.raw("<h2>Why: planned fires of the last day (\(detail.ledger.count))</h2>\n")
        if detail.ledger.isEmpty {
            h.raw("<p class=\"muted\">None.</p>\n")
        } else {
            h.raw("<table id=\"ledger\"><thead><tr><th>Scheduled for</th><th>Disposition</th><th>Reason</th><th>Run</th></tr></thead><tbody>\n")
            for e in detail.ledger.suffix(500) {
                let c = StateCodes.columns(e.disposition)
                h.raw("<tr><td>")
                h.text(e.scheduledFor.description)
                h.raw("</td><td>")
                h.text(c.name)
                h.raw("</td><td>")
                h.text(c.reason ?? "")
                h.raw("</td><td><code>")
                h.text(c.runID ?? "")
                h.raw("</code></td></tr>\n")
            }
            h.raw("</tbody></table>\n")
        }

        h.raw("<h2>Recent runs (\(detail.runs.count))</h2>\n")
        h.raw(
            "<table id=\"runs\"><thead><tr><th>Started</th><th>Trigger</th><th>Outcome</th><th>Exit</th><th>Attempts</th><th>Duration</th><th>Run id</th></tr></thead><tbody>\n"
        )
        for run in detail.runs {
            let s = run.summary
            h.raw("<tr class=\"run o-row-\(s.statusClass)\"><td>")
            h.text(s.startedAt.description)
            h.raw("</td><td>")
            h.text(s.trigger.rawValue)
            h.raw("</td><td>")
            outcomeBadge(s, into: &h)
            h.raw("</td><td>")
            h.text(s.exitCode.map(String.init) ?? s.outcome?.signalNumber.map { "signal \($0)" } ?? "")
            h.raw("</td><td>\(s.attempts)</td><td>")
            h.text(durationText(s.durationMillis(now: agent.now)))
            h.raw("</td><td><code>")
            h.text(s.id.rawValue)
            h.raw("</code></td></tr>\n")
            if let output = run.output {
                h.raw("<tr class=\"output\"><td colspan=\"7\"><pre>")
                // The newest lines: a run's end says how it ended.
                if output.count > 2000 { h.raw("… (\(output.count - 2000) earlier lines)\n") }
                for line in output.suffix(2000) {
                    h.text(line)
                    h.raw("\n")
                }
                h.raw("</pre></td></tr>\n")
            }
        }
        h.raw("</tbody></table>\n")
        h.close()
        return h.bytes
    }

    /// Jobs per timeline page: 200 rows stay readable and, at the bar limit a row has, well
    /// under 1 MB (1,000 jobs on one page measured 2.9 MB).
    public static let timelineJobsPerPage = 200

    /// `/timeline`: the SVG of the last day, `timelineJobsPerPage` jobs a page (`page` from 1;
    /// past the last page shows the last).
    public static func timelinePage(agent: StatusAgentInfo, timeline: StatusTimeline, page: Int = 1) -> [UInt8] {
        var h = HTMLBuffer()
        h.open(title: "Sundial — timeline")
        h.raw("<h1>Timeline: the last 24 hours</h1>\n<p class=\"muted\">One row per job, one bar per run, coloured by outcome. Times in UTC, up to ")
        h.text(timeline.end.description)
        h.raw(".</p>\n")
        legend(into: &h)
        let per = timelineJobsPerPage
        let pages = max(1, (timeline.rows.count + per - 1) / per)
        let current = min(max(1, page), pages)
        var shown = timeline
        shown.rows = Array(timeline.rows.dropFirst((current - 1) * per).prefix(per))
        if pages > 1 {
            h.raw(
                "<p class=\"pager\">jobs \((current - 1) * per + 1)–\((current - 1) * per + shown.rows.count) of \(timeline.rows.count) · page \(current) of \(pages)"
            )
            if current > 1 { h.raw(" · <a href=\"/timeline?page=\(current - 1)\">← previous</a>") }
            if current < pages { h.raw(" · <a href=\"/timeline?page=\(current + 1)\">next →</a>") }
            h.raw("</p>\n")
        }
        TimelineSVG.render(shown, into: &h.bytes)
        h.close()
        return h.bytes
    }

    /// A page that says what went wrong (404, 503), in the same frame.
    public static func messagePage(title: String, message: String) -> [UInt8] {
        var h = HTMLBuffer()
        h.open(title: "Sundial — " + title)
        h.raw("<h1>")
        h.text(title)
        h.raw("</h1>\n<p>")
        h.text(message)
        h.raw("</p>\n")
        h.close()
        return h.bytes
    }

    // MARK: - Pieces

    static func agentSection(_ a: StatusAgentInfo, into h: inout HTMLBuffer) {
        h.raw("<section id=\"agent\"><h1>Sundial ")
        h.text(a.version)
        h.raw("</h1>\n<p>")
        h.raw("pid \(a.pid) · configuration <code class=\"revision\">")
        h.text(String(a.revision.prefix(12)))
        h.raw("</code>")
        if let loaded = a.configLoadedAt {
            h.raw(" loaded ")
            h.text(relative(loaded, now: a.now))
        }
        h.raw(" · started ")
        h.text(relative(a.startedAt, now: a.now))
        h.raw(" · clock ")
        switch a.clockSynchronised {
        case true?: h.raw("<span class=\"badge clock-synced\">synchronised</span>")
        case false?: h.raw("<span class=\"badge b-held clock-unsynced\">not synchronised</span>")
        case nil: h.raw("<span class=\"badge\">unknown</span>")
        }
        if a.calendarHeld { h.raw(" <span class=\"badge b-held\">calendar jobs held</span>") }
        h.raw("</p>\n")
        if let r = a.lastRejected {
            h.raw("<div id=\"rejected\"><p><strong>Last rejected reload</strong> ")
            h.text(relative(r.at, now: a.now))
            h.raw(" (")
            h.text(r.reason)
            h.raw("): still running the configuration above.</p><ul class=\"errors\">\n")
            for e in r.errors.prefix(50) {
                h.raw("<li>")
                h.text("\(e.file):\(e.line):\(e.column): \(e.message)")
                h.raw("</li>\n")
            }
            if r.errors.count > 50 { h.raw("<li>… and \(r.errors.count - 50) more</li>\n") }
            h.raw("</ul></div>\n")
        }
        h.raw("</section>\n")
    }

    static func jobRow(_ row: StatusJobRow, now: Instant, into h: inout HTMLBuffer) {
        h.raw("<tr class=\"job\" data-job=\"")
        h.text(row.id)
        h.raw("\" data-outcome=\"")
        h.text(row.last?.statusClass ?? "none")
        h.raw("\">")
        h.raw("<td><a href=\"/jobs/")
        h.raw(HTMLEscape.percentEncode(row.id))
        h.raw("\">")
        h.text(row.id)
        h.raw("</a>")
        if let d = row.description {
            h.raw("<br><span class=\"muted\">")
            h.text(d, limit: 200)
            h.raw("</span>")
        }
        h.raw("</td><td>")
        scheduleCell(row, into: &h)
        h.raw("</td><td>")
        h.text(row.timezone ?? "system")
        h.raw("</td><td>")
        nextCell(row, now: now, into: &h)
        h.raw("</td><td>")
        if let last = row.last {
            outcomeBadge(last, into: &h)
            h.raw(" <span class=\"muted\">")
            h.text(durationText(last.durationMillis(now: now)))
            h.raw("</span>")
        } else {
            h.raw("<span class=\"muted\">never ran</span>")
        }
        h.raw("</td><td>")
        markers(row, into: &h)
        // Oldest to newest, left to right; one tooltip for the cell rather than one per mark
        // keeps a 1,000-job page under 1 MB.
        let shown = row.recent.prefix(20)
        h.raw("</td><td class=\"spark\" title=\"last \(shown.count): \(shown.filter { $0.outcome?.isSuccess == true }.count) succeeded\">")
        // Unquoted class (valid HTML): 40 bytes a row.
        for run in shown.reversed() { h.raw("<i class=o-\(run.statusClass)></i>") }
        h.raw("</td></tr>\n")
    }

    static func scheduleCell(_ row: StatusJobRow, into h: inout HTMLBuffer) {
        h.raw("<code>")
        h.text(row.schedule, limit: 300)
        h.raw("</code>")
        if let e = row.explanation {
            h.raw("<br><span class=\"explain\">")
            h.text(e, limit: 300)
            h.raw("</span>")
        }
    }

    static func nextCell(_ row: StatusJobRow, now: Instant, into h: inout HTMLBuffer) {
        guard let next = row.next else {
            h.raw("<span class=\"muted\">—</span>")
            return
        }
        h.text(relative(next, now: now))
        h.raw("<br><span class=\"muted\">")
        h.text(row.nextLocal ?? next.description)
        h.raw("</span>")
    }

    static func markers(_ row: StatusJobRow, into h: inout HTMLBuffer) {
        if row.paused == true { h.raw("<span class=\"badge b-paused\">paused</span>") }
        if row.held { h.raw("<span class=\"badge b-held\">held</span>") }
        if !row.enabled { h.raw("<span class=\"badge b-disabled\">disabled</span>") }
        if row.running { h.raw("<span class=\"badge b-running\">running</span>") }
    }

    static func outcomeBadge(_ run: RunSummary, into h: inout HTMLBuffer) {
        h.raw("<span class=\"outcome o-\(run.statusClass)\">\(run.statusClass)</span>")
    }

    static func legend(into h: inout HTMLBuffer) {
        h.raw("<p class=\"legend\">")
        for name in ["success", "failure", "timeout", "signal", "launch_failed", "interrupted", "unknown", "running"] {
            h.raw("<span class=\"outcome o-\(name)\">\(name)</span> ")
        }
        h.raw("</p>\n")
    }

    // MARK: - Words for times

    /// "in 4 min", "3 h ago", "now".
    public static func relative(_ t: Instant, now: Instant) -> String {
        let delta = t.unixMillis - now.unixMillis
        let span = delta < 0 ? -delta : delta
        if span < 1000 { return "now" }
        let words = durationText(span, coarse: true)
        return delta > 0 ? "in " + words : words + " ago"
    }

    /// "850 ms", "12 s", "4 min 5 s", "3 h 10 min", "2 d 4 h" (`coarse`: the largest unit only,
    /// rounded down, for relative times).
    public static func durationText(_ ms: Int64, coarse: Bool = false) -> String {
        if ms < 1000 { return coarse ? "1 s" : "\(ms) ms" }
        let s = ms / 1000
        if s < 60 { return "\(s) s" }
        let m = s / 60
        if m < 60 { return coarse || s % 60 == 0 ? "\(m) min" : "\(m) min \(s % 60) s" }
        let hours = m / 60
        if hours < 48 { return coarse || m % 60 == 0 ? "\(hours) h" : "\(hours) h \(m % 60) min" }
        return "\(hours / 24) d"
    }
}

/// The bytes of a page being built, with the escaping helpers the renderers use.
struct HTMLBuffer {
    var bytes: [UInt8] = []

    init() { bytes.reserveCapacity(16 * 1024) }

    /// Markup the renderer wrote itself (never user data).
    mutating func raw(_ s: String) { bytes.append(contentsOf: s.utf8) }

    /// User-controlled text, escaped and bounded.
    mutating func text(_ s: String, limit: Int = HTMLEscape.maxBytes) { HTMLEscape.append(s, to: &bytes, limit: limit) }

    mutating func open(title: String) {
        raw("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">")
        raw("<title>")
        text(title)
        raw("</title><style>\n")
        raw(StatusPageRenderer.stylesheet)
        raw(
            "</style></head><body>\n<nav><a href=\"/\">Jobs</a><a href=\"/timeline\">Timeline</a><a href=\"/api/v1/agent\">JSON API</a><a href=\"/metrics\">Metrics</a></nav>\n"
        )
    }

    mutating func close() { raw("</body></html>\n") }
}
