#if canImport(Glibc)
import Glibc
#endif

/// `sundial-bench gen-config DIR JOBS FILES [--not-due] [--timeout-retry]`: writes a realistic job set for
/// the validation, load, idle and reload benchmarks: a mix of cron schedules in a dozen zones,
/// intervals, dependency chains, retries and environments. With `--not-due`, no job fires
/// for at least a day after the set is written: calendar jobs are in a month five to seven
/// months away, and intervals are days long with an offset that puts their next fire half a
/// period (a day or more) ahead. (Before, two-hour intervals aligned to 01:30 UTC fired at odd
/// hours and the 12 zones' `@daily` midnights came round every hour, so a long idle
/// measurement could catch a fire.) With `--timeout-retry`, every job also sets its own
/// `timeout` and `retry` (not only through `defaults`), the shape of issue 15's validation
/// figure, where those two keys nearly doubled the cost of `validate`.
func generateConfig(_ args: [String]) {
    guard args.count >= 3, let jobs = Int(args[1]), let files = Int(args[2]), files > 0 else {
        print("usage: sundial-bench gen-config DIR JOBS FILES [--not-due] [--timeout-retry]")
        exit(2)
    }
    let dir = args[0]
    let notDue = args.contains("--not-due")
    let timeoutRetry = args.contains("--timeout-retry")
    // The benchmark tool may read the clock; only the core may not.
    let now = Int64(time(nil))
    var tmNow = tm()
    var t = time_t(now)
    gmtime_r(&t, &tmNow)
    let farMonth = (Int(tmNow.tm_mon) + 6) % 12 + 1  // 1...12, six months from now
    mkdir(dir, 0o755)
    let zones = [
        "UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo", "Australia/Lord_Howe", "Asia/Kathmandu",
        "Pacific/Chatham", "Europe/Dublin", "America/Los_Angeles", "Africa/Cairo", "America/Sao_Paulo", "Asia/Kolkata",
    ]
    let perFile = (jobs + files - 1) / files
    var written = 0
    for f in 0..<files {
        var text = "# yaml-language-server: $schema=../schemas/sundial-jobs.v1.schema.json\nversion: 1\n"
        text +=
            "defaults:\n  timeout: 10m\n  env: { APP_ENV: production, REGION: eu-\(f % 3) }\n  retry: { attempts: 3, backoff: exponential, delay: 10s, max_delay: 5m }\njobs:\n"
        for j in 0..<perFile where written < jobs {
            let id = "job-\(f)-\(j)"
            text += "  \(id):\n"
            text += "    description: Generated job \(j) of file \(f)\n"
            switch j % 6 {
            case 0, 1, 2:
                let minute = (f * 7 + j) % 60
                let hour = notDue ? (f + j) % 12 + 1 : (f + j) % 24
                let dow = j % 4 == 0 ? "MON-FRI" : "*"
                let day = notDue ? "\(1 + (f + j) % 28)" : "*"
                let month = notDue ? "\(farMonth)" : "*"
                // A restricted day of the week would let the job fire on any matching weekday
                // (Vixie's either-day rule), so not-due jobs keep it unrestricted.
                text += "    schedule: \"\(minute) \(hour) \(day) \(month) \(notDue ? "*" : dow)\"\n"
                text += "    timezone: \(zones[(f + j) % zones.count])\n"
            case 3:
                if notDue {
                    let periodHours = Int64(48 + 24 * (j % 5))  // 2 to 6 days
                    let period = periodHours * 3600
                    // Fires at offset + k * period: the next one is half a period from now.
                    let offset = ((now + period / 2) % period + period) % period
                    text += "    every: \(periodHours)h\n    offset: \(offset)s\n"
                } else {
                    text += "    every: \(30 + j % 120)s\n"
                }
            case 4:
                text += "    needs: [job-\(f)-\(j - 1)]\n"
            default:
                text += "    schedule: \"\(notDue ? "0 0 1 \(farMonth) *" : "@daily")\"\n    timezone: \(zones[j % zones.count])\n"
            }
            if j % 2 == 0 {
                text += "    command: [/bin/true, --job, \(id)]\n"
            } else {
                text += "    shell: echo \(id) done\n"
            }
            if j % 5 == 0 { text += "    concurrency: queue\n    jitter: 30s\n" }
            if timeoutRetry {
                text += "    timeout: \(1 + j % 50)m\n"
                text += "    retry: { attempts: \(1 + j % 5), backoff: exponential, delay: \(5 + j % 20)s, max_delay: 10m, on: [failure, timeout] }\n"
            } else if j % 7 == 0 {
                text += "    retry: { attempts: 5, on: [failure, timeout] }\n"
            }
            written += 1
        }
        let path = "\(dir)/jobs-\(String(repeating: "0", count: max(0, 4 - String(f).count)))\(f).yaml"
        guard let fp = fopen(path, "w") else {
            print("cannot write \(path)")
            exit(1)
        }
        fputs(text, fp)
        fclose(fp)
    }
    print("wrote \(written) jobs in \(files) files to \(dir)")
}
