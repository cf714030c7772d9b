import Testing

/// A small, strict parser of the Prometheus text format for tests: it checks what a scraper
/// would reject (a sample before its family's `# TYPE`, a family declared twice, bad escapes,
/// non-cumulative buckets) and returns the samples for value checks.
struct Exposition {
    struct Sample: Equatable {
        var name: String
        var labels: [String: String]
        var value: Double
    }

    struct ParseError: Error, CustomStringConvertible {
        var line: Int
        var message: String
        var description: String { "line \(line): \(message)" }
    }

    var samples: [Sample] = []
    var types: [String: String] = [:]
    var help: [String: String] = [:]

    init(_ text: String) throws {
        guard text.isEmpty || text.hasSuffix("\n") else { throw ParseError(line: 0, message: "missing final newline") }
        var current: String?
        var declared: Set<String> = []
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).dropLast().enumerated() {
            let line = String(raw)
            let n = i + 1
            if line.hasPrefix("# HELP ") {
                let rest = line.dropFirst(7)
                guard let sp = rest.firstIndex(of: " ") else { throw ParseError(line: n, message: "HELP without text") }
                let name = String(rest[..<sp])
                help[name] = String(rest[rest.index(after: sp)...])
                continue
            }
            if line.hasPrefix("# TYPE ") {
                let parts = line.dropFirst(7).split(separator: " ")
                guard parts.count == 2, ["counter", "gauge", "histogram", "summary", "untyped"].contains(String(parts[1])) else {
                    throw ParseError(line: n, message: "bad TYPE line")
                }
                let name = String(parts[0])
                guard !declared.contains(name) else { throw ParseError(line: n, message: "family \(name) declared twice") }
                guard help[name] != nil else { throw ParseError(line: n, message: "TYPE before HELP for \(name)") }
                declared.insert(name)
                types[name] = String(parts[1])
                current = name
                continue
            }
            if line.hasPrefix("#") || line.isEmpty { continue }
            let sample = try Self.parseSample(line, line: n)
            guard let family = current,
                sample.name == family || (types[family] == "histogram" && ["_bucket", "_sum", "_count"].contains(where: { sample.name == family + $0 }))
            else {
                throw ParseError(line: n, message: "sample \(sample.name) outside its family")
            }
            if types[family] == "counter" || sample.name.hasSuffix("_count") || sample.name.hasSuffix("_bucket") {
                guard sample.value >= 0 else { throw ParseError(line: n, message: "negative counter") }
            }
            samples.append(sample)
        }
        try checkHistograms()
    }

    static func parseSample(_ line: String, line n: Int) throws -> Sample {
        let chars = Array(line.unicodeScalars)
        var i = 0
        var name = ""
        while i < chars.count, chars[i] != "{", chars[i] != " " {
            name.unicodeScalars.append(chars[i])
            i += 1
        }
        guard !name.isEmpty, name.unicodeScalars.allSatisfy({ $0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "_" || $0 == ":" }) else {
            throw ParseError(line: n, message: "bad metric name \(name)")
        }
        var labels: [String: String] = [:]
        if i < chars.count, chars[i] == "{" {
            i += 1
            while i < chars.count, chars[i] != "}" {
                var key = ""
                while i < chars.count, chars[i] != "=" {
                    key.unicodeScalars.append(chars[i])
                    i += 1
                }
                guard i + 1 < chars.count, chars[i + 1] == "\"" else { throw ParseError(line: n, message: "label without quotes") }
                i += 2
                var value = ""
                while i < chars.count, chars[i] != "\"" {
                    if chars[i] == "\\" {
                        i += 1
                        guard i < chars.count else { throw ParseError(line: n, message: "dangling escape") }
                        switch chars[i] {
                        case "\\": value += "\\"
                        case "\"": value += "\""
                        case "n": value += "\n"
                        default: throw ParseError(line: n, message: "bad escape \\\(chars[i])")
                        }
                    } else {
                        value.unicodeScalars.append(chars[i])
                    }
                    i += 1
                }
                guard i < chars.count else { throw ParseError(line: n, message: "unterminated label value") }
                i += 1
                guard labels[key] == nil else { throw ParseError(line: n, message: "duplicate label \(key)") }
                labels[key] = value
                if i < chars.count, chars[i] == "," { i += 1 }
            }
            guard i < chars.count else { throw ParseError(line: n, message: "unterminated labels") }
            i += 1
        }
        guard i < chars.count, chars[i] == " " else { throw ParseError(line: n, message: "expected a space before the value") }
        let valueText = String(String.UnicodeScalarView(chars[(i + 1)...]))
        let value: Double
        switch valueText {
        case "+Inf": value = .infinity
        case "-Inf": value = -.infinity
        case "NaN": value = .nan
        default:
            guard let v = Double(valueText) else { throw ParseError(line: n, message: "bad value \(valueText)") }
            value = v
        }
        return Sample(name: name, labels: labels, value: value)
    }

    /// Buckets are cumulative, end with `+Inf`, and `+Inf` equals `_count`.
    func checkHistograms() throws {
        for (family, type) in types where type == "histogram" {
            var series: [[String: String]: [(Double, Double)]] = [:]
            for s in samples where s.name == family + "_bucket" {
                var key = s.labels
                guard let le = key.removeValue(forKey: "le") else { throw ParseError(line: 0, message: "bucket without le") }
                series[key, default: []].append((le == "+Inf" ? .infinity : Double(le)!, s.value))
            }
            for (key, buckets) in series {
                guard buckets.last?.0 == .infinity else { throw ParseError(line: 0, message: "\(family) lacks +Inf") }
                for (a, b) in zip(buckets, buckets.dropFirst()) where !(a.0 < b.0 && a.1 <= b.1) {
                    throw ParseError(line: 0, message: "\(family)\(key) buckets not ascending/cumulative")
                }
                let count = samples.first { $0.name == family + "_count" && $0.labels == key }?.value
                guard count == buckets.last?.1 else { throw ParseError(line: 0, message: "\(family) +Inf != _count") }
            }
        }
    }

    /// The value of the one sample with this name and exactly these labels.
    func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
        samples.first { $0.name == name && $0.labels == labels }?.value
    }

    func series(_ name: String) -> [Sample] { samples.filter { $0.name == name } }
}
