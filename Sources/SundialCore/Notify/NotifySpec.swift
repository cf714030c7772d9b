import OrderedCollections

/// What a `notify:` entry reacts to (its `on:` list).
///
/// `failure` is the run's final failure, after its retries are exhausted; `retry` an attempt
/// that failed and will be retried; `recovered` the first success after a final failure;
/// `timeout` any attempt stopped by its `timeout`; `missed` fires skipped while the agent was
/// down (the `run.skipped` summary with reason `missed`).
public enum NotifyEvent: String, Hashable, Sendable, CaseIterable {
    case failure, success, retry, recovered, missed, timeout
}

/// One `notify:` entry of a job: which run ends it reacts to and where it sends them.
public struct NotifySpec: Hashable, Sendable {
    public var on: Set<NotifyEvent>
    public var target: NotifyTarget
    /// Where the entry is written (its `on:` key's mapping). Excluded from `==`, as
    /// ``JobSpec/location`` is.
    public var location: SourceLocation?

    public init(on: Set<NotifyEvent>, target: NotifyTarget, location: SourceLocation? = nil) {
        self.on = on
        self.target = target
        self.location = location
    }

    public static func == (a: NotifySpec, b: NotifySpec) -> Bool { a.on == b.on && a.target == b.target }
    public func hash(into hasher: inout Hasher) {
        hasher.combine(on)
        hasher.combine(target)
    }
}

/// Where a notification goes.
public enum NotifyTarget: Hashable, Sendable {
    /// An argv (no shell), run with the facts as `SUNDIAL_*` variables and JSON on stdin.
    case command([String])
    /// A JSON POST to a URL.
    case webhook(WebhookSpec)
}

/// `webhook:` of a `notify:` entry.
public struct WebhookSpec: Hashable, Sendable {
    public var url: String
    /// Extra request headers, in the order written.
    public var headers: OrderedDictionary<String, String>
    /// A variable of the job's `env_file` whose value keys the `X-Sundial-Signature` HMAC.
    public var secretEnv: String?
    /// A PEM bundle of the CAs that may sign an https:// receiver's certificate, instead of the
    /// system store (a private CA). `nil`: the system store.
    public var caFile: String?
    /// Limit of one attempt, name lookup and TLS handshake included, in milliseconds.
    public var timeoutMs: Int64
    /// Attempts after the first when one fails (connection error, timeout, non-2xx status).
    public var retries: Int

    public static let defaultTimeoutMs: Int64 = 10_000
    public static let defaultRetries = 3
    /// At most this many retries: with the backoff's 1 s doubling to a 60 s cap, 10 retries
    /// already span about six minutes.
    public static let maxRetries = 10

    public init(
        url: String, headers: OrderedDictionary<String, String> = [:], secretEnv: String? = nil,
        caFile: String? = nil, timeoutMs: Int64 = WebhookSpec.defaultTimeoutMs, retries: Int = WebhookSpec.defaultRetries
    ) {
        self.url = url
        self.headers = headers
        self.secretEnv = secretEnv
        self.caFile = caFile
        self.timeoutMs = timeoutMs
        self.retries = retries
    }
}
