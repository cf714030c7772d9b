import CSundialShim
import OrderedCollections
import SundialConfig
import SundialCore

#if canImport(Glibc)
import Glibc
#endif

/// `sundial-bench schema [JOBS] [ROUNDS]`: validates JOBS (default 10,000) generated job
/// objects, in one document, against a schema shaped like Sundial's jobs schema (every key of
/// design §1, `$ref`s, `oneOf`, `not`, enums, patterns, `additionalProperties: false`).
///
/// Reports the median and best of ROUNDS (default 7) for: compiling the schema, validating the
/// valid document, and validating a copy where one job in ten has a mistake (the error path
/// builds messages and runs `oneOf` best-match). Target (issue 2): well under 200 ms for 10,000.
enum SchemaBench {
    static func run(_ args: [String]) {
        let jobs = args.first.flatMap { Int($0) } ?? 10_000
        let rounds = args.dropFirst().first.flatMap { Int($0) } ?? 7

        let schemaValue: JSONValue
        do { schemaValue = try JSONParser.parse(schemaText) } catch { fatalError("bench schema: \(error)") }
        var schema: JSONSchema?
        let compile = measure(rounds: rounds) {
            schema = try? JSONSchema(schemaValue)
        }
        guard let schema else { fatalError("bench schema does not compile") }

        let valid = document(jobs: jobs, mistakes: false)
        let invalid = document(jobs: jobs, mistakes: true)
        guard schema.validate(valid).isEmpty else { fatalError("generated document is invalid: \(schema.validate(valid).prefix(3))") }
        var count = 0
        let validTimes = measure(rounds: rounds) { count = schema.validate(valid).count }
        let invalidTimes = measure(rounds: rounds) { count = schema.validate(invalid).count }
        let text = valid.jsonText
        var parsed: JSONValue = nil
        let parseTimes = measure(rounds: rounds) { parsed = (try? JSONParser.parse(text)) ?? nil }
        precondition(parsed != nil)

        print("schema: \(jobs) jobs, \(rounds) rounds, CPU time (median / best)")
        print("  compile schema:                \(show(compile))")
        print("  validate, all valid:           \(show(validTimes))")
        print("  validate, 1 in 10 invalid:     \(show(invalidTimes))  (\(count) violations)")
        print("  parse the document as JSON:    \(show(parseTimes))  (\(text.utf8.count / 1024) KiB)")
    }

    /// CPU time of this thread per round, sorted: unlike wall time, it does not count the
    /// time other processes on a busy 2-core machine take from us.
    private static func measure(rounds: Int, _ body: () -> Void) -> [Duration] {
        (0..<max(1, rounds)).map { _ in
            let start = threadCPUTime()
            body()
            return threadCPUTime() - start
        }.sorted()
    }

    private static func threadCPUTime() -> Duration {
        var ts = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
        return .seconds(ts.tv_sec) + .nanoseconds(ts.tv_nsec)
    }

    private static func show(_ times: [Duration]) -> String {
        func ms(_ d: Duration) -> String {
            let v = Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15
            let r = (v * 100).rounded() / 100
            return "\(r) ms"
        }
        return "\(ms(times[times.count / 2])) / \(ms(times[0]))"
    }

    // MARK: - Data

    /// A deterministic document of `jobs` varied jobs; with `mistakes`, every tenth job has one
    /// of several typical errors (misspelt key, wrong type, bad enum, both command and shell,
    /// bad duration, bad needs item).
    static func document(jobs: Int, mistakes: Bool) -> JSONValue {
        var all: [(String, JSONValue)] = []
        all.reserveCapacity(jobs)
        for i in 0..<jobs {
            var job: [(String, JSONValue)] = [("description", .string("Generated job number \(i)"))]
            switch i % 4 {
            case 0: job.append(("schedule", .string("\(i % 60) \(i % 24) * * *")))
            case 1: job.append(("every", .string("\(i % 50 + 1)m")))
            case 2: job.append(("at", .array([.string("2030-01-0\(i % 9 + 1)T10:00:00Z")])))
            default: break
            }
            if i % 3 == 0 {
                job.append(("command", .array([.string("/usr/bin/backup"), .string("--id"), .string("\(i)")])))
            } else {
                job.append(("shell", .string("echo job \(i) && sleep 1")))
            }
            job.append(("timeout", .string("\(i % 5 + 1)h30m")))
            job.append(("concurrency", .string(["forbid", "allow", "replace", "queue"][i % 4])))
            job.append(("env", .object(["APP_ENV": "production", "JOB_INDEX": .string("\(i)")])))
            if i % 2 == 0 {
                job.append(
                    (
                        "retry",
                        .object([
                            "attempts": .int(Int64(i % 5 + 1)), "backoff": "exponential", "delay": "10s", "max_delay": "10m", "jitter": 0.2,
                            "on": ["failure", "timeout"],
                        ])
                    ))
            }
            if i > 0, i % 5 == 0 {
                job.append(("needs", .array([.string("job-\(i - 1)"), .object(["job": .string("job-\(i - 2)"), "on": "completion"])])))
            }
            job.append(("catchup", .string(["none", "latest", "all"][i % 3])))
            job.append(("output", .object(["max_line_bytes": 8192, "max_bytes": 1_048_576])))
            if mistakes, i % 10 == 9 {
                switch (i / 10) % 6 {
                case 0: job.append(("timout", "5m"))
                case 1: job.append(("enabled", "yes"))
                case 2: job[job.firstIndex { $0.0 == "concurrency" }!] = ("concurrency", "sometimes")
                case 3: job.append(contentsOf: [("command", ["x"]), ("shell", "x")].filter { k in !job.contains { $0.0 == k.0 } })
                case 4: job[job.firstIndex { $0.0 == "timeout" }!] = ("timeout", "5 minutes")
                default: job.append(("needs", [42]))
                }
            }
            all.append(("job-\(i)", .object(.init(job, uniquingKeysWith: { _, b in b }))))
        }
        return .object([
            "version": 1,
            "defaults": ["timezone": "Europe/Berlin", "timeout": "30m", "retry": ["attempts": 3, "backoff": "exponential"]],
            "jobs": .object(.init(all, uniquingKeysWith: { _, b in b })),
        ])
    }

    /// Shaped like Sundial's jobs schema; the real one lives in `schemas/`.
    static let schemaText = #"""
        {
          "$schema": "https://json-schema.org/draft/2020-12/schema",
          "$id": "https://sundial.invalid/bench.schema.json",
          "type": "object",
          "required": ["version", "jobs"],
          "additionalProperties": false,
          "properties": {
            "version": {"const": 1, "description": "File format version."},
            "defaults": {"$ref": "#/$defs/settings"},
            "jobs": {
              "type": "object",
              "propertyNames": {"pattern": "^[a-z0-9][a-z0-9_.-]{0,62}$"},
              "additionalProperties": {"$ref": "#/$defs/job"}
            }
          },
          "$defs": {
            "duration": {"type": "string", "pattern": "^([0-9]+(w|d|h|m|s|ms))+$"},
            "timestamp": {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$"},
            "jobId": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_.-]{0,62}$"},
            "settingsProperties": {
              "timezone": {"type": "string", "minLength": 1},
              "dst": {"type": "object", "additionalProperties": false, "properties": {
                "gap": {"enum": ["shift", "skip"]}, "overlap": {"enum": ["first", "last", "both"]}}},
              "jitter": {"$ref": "#/$defs/duration"},
              "workdir": {"type": "string"},
              "env": {"type": "object", "propertyNames": {"pattern": "^[A-Za-z_][A-Za-z0-9_]*$"}, "additionalProperties": {"type": "string"}},
              "env_file": {"type": "string"},
              "user": {"type": "string"}, "group": {"type": "string"},
              "umask": {"type": "string", "pattern": "^0?[0-7]{3}$"},
              "timeout": {"$ref": "#/$defs/duration"},
              "kill_grace": {"$ref": "#/$defs/duration"},
              "retry": {"type": "object", "additionalProperties": false, "properties": {
                "attempts": {"type": "integer", "minimum": 1, "maximum": 100},
                "backoff": {"enum": ["fixed", "linear", "exponential"]},
                "delay": {"$ref": "#/$defs/duration"}, "max_delay": {"$ref": "#/$defs/duration"},
                "jitter": {"type": "number", "minimum": 0, "maximum": 1},
                "on": {"type": "array", "uniqueItems": true, "items": {"enum": ["failure", "timeout", "signal"]}},
                "exit_codes": {"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 255}}}},
              "success_exit_codes": {"type": "array", "minItems": 1, "items": {"type": "integer", "minimum": 0, "maximum": 255}},
              "concurrency": {"enum": ["forbid", "allow", "replace", "queue"]},
              "catchup": {"enum": ["none", "latest", "all"]},
              "catchup_window": {"$ref": "#/$defs/duration"},
              "enabled": {"type": "boolean"},
              "output": {"type": "object", "additionalProperties": false, "properties": {
                "max_line_bytes": {"type": "integer", "minimum": 1}, "max_bytes": {"type": "integer", "minimum": 1}}},
              "secrets": {"type": "array", "items": {"type": "string"}}
            },
            "settings": {
              "type": "object",
              "additionalProperties": false,
              "properties": {
                "timezone": {"$ref": "#/$defs/settingsProperties/timezone"},
                "dst": {"$ref": "#/$defs/settingsProperties/dst"},
                "jitter": {"$ref": "#/$defs/settingsProperties/jitter"},
                "workdir": {"$ref": "#/$defs/settingsProperties/workdir"},
                "env": {"$ref": "#/$defs/settingsProperties/env"},
                "env_file": {"$ref": "#/$defs/settingsProperties/env_file"},
                "user": {"$ref": "#/$defs/settingsProperties/user"},
                "group": {"$ref": "#/$defs/settingsProperties/group"},
                "umask": {"$ref": "#/$defs/settingsProperties/umask"},
                "timeout": {"$ref": "#/$defs/settingsProperties/timeout"},
                "kill_grace": {"$ref": "#/$defs/settingsProperties/kill_grace"},
                "retry": {"$ref": "#/$defs/settingsProperties/retry"},
                "success_exit_codes": {"$ref": "#/$defs/settingsProperties/success_exit_codes"},
                "concurrency": {"$ref": "#/$defs/settingsProperties/concurrency"},
                "catchup": {"$ref": "#/$defs/settingsProperties/catchup"},
                "catchup_window": {"$ref": "#/$defs/settingsProperties/catchup_window"},
                "enabled": {"$ref": "#/$defs/settingsProperties/enabled"},
                "output": {"$ref": "#/$defs/settingsProperties/output"},
                "secrets": {"$ref": "#/$defs/settingsProperties/secrets"}
              }
            },
            "job": {
              "type": "object",
              "additionalProperties": false,
              "properties": {
                "description": {"type": "string"},
                "schedule": {"type": "string", "minLength": 1},
                "every": {"$ref": "#/$defs/duration"},
                "offset": {"$ref": "#/$defs/duration"},
                "at": {"oneOf": [{"$ref": "#/$defs/timestamp"}, {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/timestamp"}}]},
                "command": {"type": "array", "minItems": 1, "items": {"type": "string"}},
                "shell": {"type": "string", "minLength": 1},
                "needs": {"type": "array", "items": {"oneOf": [
                  {"$ref": "#/$defs/jobId"},
                  {"type": "object", "required": ["job"], "additionalProperties": false, "properties": {
                    "job": {"$ref": "#/$defs/jobId"}, "on": {"enum": ["success", "failure", "completion"]}}}]}},
                "timezone": {"$ref": "#/$defs/settingsProperties/timezone"},
                "dst": {"$ref": "#/$defs/settingsProperties/dst"},
                "jitter": {"$ref": "#/$defs/settingsProperties/jitter"},
                "workdir": {"$ref": "#/$defs/settingsProperties/workdir"},
                "env": {"$ref": "#/$defs/settingsProperties/env"},
                "env_file": {"$ref": "#/$defs/settingsProperties/env_file"},
                "user": {"$ref": "#/$defs/settingsProperties/user"},
                "group": {"$ref": "#/$defs/settingsProperties/group"},
                "umask": {"$ref": "#/$defs/settingsProperties/umask"},
                "timeout": {"$ref": "#/$defs/settingsProperties/timeout"},
                "kill_grace": {"$ref": "#/$defs/settingsProperties/kill_grace"},
                "retry": {"$ref": "#/$defs/settingsProperties/retry"},
                "success_exit_codes": {"$ref": "#/$defs/settingsProperties/success_exit_codes"},
                "concurrency": {"$ref": "#/$defs/settingsProperties/concurrency"},
                "catchup": {"$ref": "#/$defs/settingsProperties/catchup"},
                "catchup_window": {"$ref": "#/$defs/settingsProperties/catchup_window"},
                "enabled": {"$ref": "#/$defs/settingsProperties/enabled"},
                "output": {"$ref": "#/$defs/settingsProperties/output"},
                "secrets": {"$ref": "#/$defs/settingsProperties/secrets"}
              },
              "oneOf": [{"required": ["command"]}, {"required": ["shell"]}],
              "not": {"anyOf": [{"required": ["schedule", "every"]}, {"required": ["schedule", "at"]}, {"required": ["every", "at"]}]}
            }
          }
        }
        """#
}
