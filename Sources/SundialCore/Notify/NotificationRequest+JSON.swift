import OrderedCollections

/// A request as one JSON document and back: what a durable ``NotificationRequest`` queue (rows
/// in `state.db`) stores, so deliveries pending at a stop can be sent after the restart.
///
/// Decoding treats the text as untrusted (a damaged database): a wrong field is `nil`, never a
/// trap.
extension NotificationRequest {
    public var json: JSONValue {
        var o: OrderedDictionary<String, JSONValue> = [
            "event": .string(event.rawValue), "job": .string(job), "entry": .int(Int64(entry)),
            "env_file": envFile.map(JSONValue.string) ?? .null,
        ]
        switch target {
        case let .command(argv): o["command"] = .array(argv.map(JSONValue.string))
        case let .webhook(w):
            o["webhook"] = [
                "url": .string(w.url), "headers": .array(w.headers.map { [.string($0.key), .string($0.value)] }),
                "secret_env": w.secretEnv.map(JSONValue.string) ?? .null, "ca_file": w.caFile.map(JSONValue.string) ?? .null,
                "timeout_ms": .int(w.timeoutMs),
                "retries": .int(Int64(w.retries)),
            ]
        }
        o["facts"] = facts.json
        return .object(o)
    }

    public init?(json v: JSONValue) {
        guard let event = v["event"]?.stringValue.flatMap(NotifyEvent.init(rawValue:)), let job = v["job"]?.stringValue,
            let entry = v["entry"]?.notifyInt.flatMap({ Int(exactly: $0) }), entry >= 0,
            let facts = NotificationFacts(json: v["facts"])
        else { return nil }
        let target: NotifyTarget
        if case let .array(items)? = v["command"] {
            let argv = items.compactMap(\.stringValue)
            guard !argv.isEmpty, argv.count == items.count else { return nil }
            target = .command(argv)
        } else if let w = v["webhook"], let url = w["url"]?.stringValue, let timeout = w["timeout_ms"]?.notifyInt,
            // A job file's durations are at most 100 years; anything beyond is damage, and
            // `started + timeout` would overflow at the delivery.
            (1...DurationParser.maximumMilliseconds).contains(timeout),
            let retries = w["retries"]?.notifyInt, (0...Int64(WebhookSpec.maxRetries)).contains(retries),
            case let .array(pairs)? = w["headers"]
        {
            var spec = WebhookSpec(
                url: url, secretEnv: w["secret_env"]?.stringValue, caFile: w["ca_file"]?.stringValue, timeoutMs: timeout, retries: Int(retries))
            for pair in pairs {
                guard case let .array(kv) = pair, kv.count == 2, let k = kv[0].stringValue, let value = kv[1].stringValue,
                    !(k + value).unicodeScalars.contains(where: { $0 == "\r" || $0 == "\n" })
                else { return nil }
                spec.headers[k] = value
            }
            target = .webhook(spec)
        } else {
            return nil
        }
        self.init(event: event, target: target, job: job, entry: entry, envFile: v["env_file"]?.stringValue, facts: facts)
    }
}

extension NotificationFacts {
    /// The facts back from their JSON document (``json``).
    public init?(json v: JSONValue?) {
        guard let v, let event = v["event"]?.stringValue.flatMap(NotifyEvent.init(rawValue:)), let job = v["job"]?.stringValue,
            let box = v["box"]?.stringValue
        else { return nil }
        func instant(_ key: String) -> Instant? { v[key]?.stringValue.flatMap { try? RFC3339.parse($0).instant } }
        func int32(_ key: String) -> Int32? { v[key]?.notifyInt.flatMap { Int32(exactly: $0) } }
        self.init(event: event, fact: RunFact(kind: .attemptEnded(willRetry: false), job: job, at: Instant(unixMillis: 0)), box: box)
        runID = v["run_id"]?.stringValue.map(RunID.init(rawValue:))
        attempt = v["attempt"]?.notifyInt.flatMap { Int(exactly: $0) }
        outcome = v["outcome"]?.stringValue
        exitCode = int32("exit_code")
        signal = int32("signal")
        reason = v["reason"]?.stringValue
        startedAt = instant("started_at")
        finishedAt = instant("finished_at")
        durationMs = v["duration_ms"]?.notifyInt
        missedCount = v["missed_count"]?.notifyInt.flatMap { Int(exactly: $0) }
        scheduledFor = instant("scheduled_for")
    }
}
