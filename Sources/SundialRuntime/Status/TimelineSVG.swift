import SundialCore

/// Draws ``StatusTimeline`` as inline SVG on the server: one row per job, one bar per run from
/// its start to its end (to the window's end while running), coloured by outcome.
///
/// Sized for 200 jobs to stay readable (16 px rows, ids cut at 28 characters with the full id
/// in a `<title>` tooltip) and bounded for any number: at most ``maxBarsPerRow`` bars per row
/// (the newest), each at least 2 px wide so a one-second run in a 24-hour window still shows.
/// Bars carry `class="bar o-OUTCOME"` and `data-job`, which the browser tests read.
public enum TimelineSVG {
    public static let labelWidth = 200
    public static let chartWidth = 960
    public static let rowHeight = 16
    public static let axisHeight = 20
    /// Bars drawn per row at most; a job firing every minute has 1,440 runs a day, which at
    /// 960 px would overlap anyway.
    public static let maxBarsPerRow = 480

    /// Fill colours by outcome (the same as the page's `.o-*` classes).
    static let colours: [String: String] = [
        "success": "#1f77b4", "failure": "#d62728", "timeout": "#ff7f0e", "signal": "#9467bd",
        "launch_failed": "#8c564b", "interrupted": "#7f7f7f", "unknown": "#bcbd22", "running": "#17becf",
    ]

    public static func render(_ t: StatusTimeline, into out: inout [UInt8]) {
        let width = labelWidth + chartWidth + 10
        let height = axisHeight + max(1, t.rows.count) * rowHeight + 4
        let span = max(1, t.end.unixMillis - t.start.unixMillis)
        func x(_ ms: Int64) -> Int {
            let clamped = min(max(ms, t.start.unixMillis), t.end.unixMillis)
            return labelWidth + Int((clamped - t.start.unixMillis) * Int64(chartWidth) / span)
        }
        func put(_ s: String) { out.append(contentsOf: s.utf8) }

        put(
            "<svg id=\"timeline\" xmlns=\"http://www.w3.org/2000/svg\" width=\"\(width)\" height=\"\(height)\" viewBox=\"0 0 \(width) \(height)\" role=\"img\" aria-label=\"Runs of the last 24 hours\">\n"
        )
        // Hour grid: a line every hour, a label every three (UTC).
        let hour: Int64 = 3_600_000
        var tick = (t.start.unixMillis / hour + 1) * hour
        while tick < t.end.unixMillis {
            let px = x(tick)
            let h = Int((tick / hour) % 24)
            put("<line x1=\"\(px)\" y1=\"\(axisHeight - 4)\" x2=\"\(px)\" y2=\"\(height)\" stroke=\"#eee\"/>")
            if h % 3 == 0 { put("<text x=\"\(px - 14)\" y=\"12\" fill=\"#555\">\(h < 10 ? "0" : "")\(h):00</text>") }
            tick += hour
        }
        put("\n")
        for (i, row) in t.rows.enumerated() {
            let y = axisHeight + i * rowHeight
            put("<g class=\"row\" data-job=\"")
            HTMLEscape.append(row.job, to: &out, limit: 200)
            put("\"><title>")
            HTMLEscape.append(row.job, to: &out, limit: 200)
            put("</title>")
            if i % 2 == 1 { put("<rect x=\"0\" y=\"\(y)\" width=\"\(width)\" height=\"\(rowHeight)\" fill=\"#fafafa\"/>") }
            put("<text x=\"4\" y=\"\(y + rowHeight - 4)\" fill=\"#222\">")
            HTMLEscape.append(row.job, to: &out, limit: 28)
            put("</text>")
            let runs = row.runs.sorted { $0.startedAt > $1.startedAt }.prefix(maxBarsPerRow)
            for run in runs {
                let x0 = x(run.startedAt.unixMillis)
                let x1 = x((run.finishedAt ?? t.end).unixMillis)
                let w = max(2, x1 - x0)
                let cls = run.statusClass
                put(
                    "<rect class=\"bar o-\(cls)\" x=\"\(x0)\" y=\"\(y + 2)\" width=\"\(w)\" height=\"\(rowHeight - 4)\" fill=\"\(colours[cls] ?? "#000")\"><title>"
                )
                HTMLEscape.append("\(cls) \(run.startedAt)", to: &out, limit: 200)
                put("</title></rect>")
            }
            put("</g>\n")
        }
        put("</svg>\n")
    }
}
