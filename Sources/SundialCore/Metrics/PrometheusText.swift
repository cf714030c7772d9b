/// Helpers for the Prometheus text exposition format, version 0.0.4
/// (<https://prometheus.io/docs/instrumenting/exposition_formats/>).
///
/// Hand-written rather than a client library: Sundial exports a fixed, small set of series, and
/// the format is a few escaping rules; a dependency would cost build time and binary size on
/// edge boxes for no gain.
public enum PrometheusText {
    /// The `Content-Type` of the exposition: scrapers use it to pick the parser.
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    /// Escapes a label value: `\` → `\\`, `"` → `\"`, newline → `\n`.
    public static func escapeLabelValue(_ s: String) -> String {
        guard s.utf8.contains(where: { $0 == 0x5C || $0 == 0x22 || $0 == 0x0A }) else { return s }
        var out = ""
        out.reserveCapacity(s.utf8.count + 4)
        for ch in s.unicodeScalars {
            switch ch {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.unicodeScalars.append(ch)
            }
        }
        return out
    }

    /// Escapes `# HELP` text: `\` → `\\`, newline → `\n` (quotes stay as they are).
    public static func escapeHelp(_ s: String) -> String {
        var out = ""
        for ch in s.unicodeScalars {
            switch ch {
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            default: out.unicodeScalars.append(ch)
            }
        }
        return out
    }

    /// Formats a sample value the way Prometheus parses it: integers without a fraction,
    /// `+Inf`/`-Inf`/`NaN` spelled as the format requires.
    public static func formatValue(_ v: Double) -> String {
        if v.isNaN { return "NaN" }
        if v.isInfinite { return v > 0 ? "+Inf" : "-Inf" }
        if v == v.rounded(), abs(v) < 1e15 { return String(Int64(v)) }
        return v.description
    }

    /// Formats milliseconds as seconds without going through binary floating point for the
    /// common case, so `1500` prints `1.5` and `1` prints `0.001` exactly.
    public static func formatMillisAsSeconds(_ ms: Int64) -> String {
        let negative = ms < 0
        let a = ms.magnitude
        let whole = a / 1000
        let frac = a % 1000
        var s = (negative ? "-" : "") + String(whole)
        if frac != 0 {
            var f = String(frac)
            while f.count < 3 { f = "0" + f }
            while f.hasSuffix("0") { f.removeLast() }
            s += "." + f
        }
        return s
    }

    /// Renders `{a="x",b="y"}` (or nothing for no labels), escaping values.
    public static func labels(_ pairs: [(String, String)]) -> String {
        guard !pairs.isEmpty else { return "" }
        var s = "{"
        for (i, (k, v)) in pairs.enumerated() {
            if i > 0 { s += "," }
            s += k + "=\"" + escapeLabelValue(v) + "\""
        }
        return s + "}"
    }
}

/// Accumulates exposition text family by family, so that every family has exactly one
/// `# HELP` and `# TYPE` line before its samples, as the format requires.
public struct PrometheusWriter {
    public enum MetricType: String { case counter, gauge, histogram }

    public private(set) var text = ""

    public init() { text.reserveCapacity(4096) }

    /// Starts a family. Call once per metric name, before its samples.
    public mutating func family(_ name: String, _ type: MetricType, help: String) {
        text += "# HELP " + name + " " + PrometheusText.escapeHelp(help) + "\n"
        text += "# TYPE " + name + " " + type.rawValue + "\n"
    }

    public mutating func sample(_ name: String, _ labels: [(String, String)] = [], _ value: String) {
        text += name + PrometheusText.labels(labels) + " " + value + "\n"
    }

    public mutating func sample(_ name: String, _ labels: [(String, String)] = [], _ value: Int64) {
        sample(name, labels, String(value))
    }

    /// Writes the `_bucket` (cumulative, ending with `le="+Inf"`), `_sum` and `_count`
    /// samples of one histogram series.
    public mutating func histogram(_ name: String, _ labels: [(String, String)], _ h: MillisHistogram) {
        var cumulative: Int64 = 0
        for (i, bound) in h.boundsMillis.enumerated() {
            cumulative += h.counts[i]
            sample(name + "_bucket", labels + [("le", PrometheusText.formatMillisAsSeconds(bound))], cumulative)
        }
        sample(name + "_bucket", labels + [("le", "+Inf")], h.count)
        sample(name + "_sum", labels, PrometheusText.formatMillisAsSeconds(h.sumMillis))
        sample(name + "_count", labels, h.count)
    }
}
