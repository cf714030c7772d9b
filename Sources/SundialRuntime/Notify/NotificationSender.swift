import SundialCore

/// How one delivery attempt ended.
public enum DeliveryResult: Hashable, Sendable {
    /// Delivered; `detail` says how (`exit 0`, `HTTP 204`).
    case sent(detail: String)
    /// Not delivered, and why (logged as `notify.failed`'s `reason`).
    case failed(reason: String)
}

/// Carries out one attempt of a delivery. Blocking: called on the notifier's own thread, never
/// on the agent's actor. Injected so the queue and retry logic are tested without processes or
/// sockets.
public protocol NotificationSender: Sendable {
    func send(_ request: NotificationRequest) -> DeliveryResult
}

/// The real sender: commands through ``CommandDelivery``, webhooks through ``WebhookDelivery``.
public struct SystemNotificationSender: NotificationSender {
    public var commandTimeoutMs: Int64
    public init(commandTimeoutMs: Int64 = CommandDelivery.defaultTimeoutMs) { self.commandTimeoutMs = commandTimeoutMs }

    public func send(_ request: NotificationRequest) -> DeliveryResult {
        switch request.target {
        case let .command(argv):
            return CommandDelivery(timeoutMs: commandTimeoutMs).run(argv: argv, facts: request.facts)
        case let .webhook(spec):
            var key: [UInt8]?
            if let name = spec.secretEnv {
                guard let path = request.envFile else { return .failed(reason: "secret_env `\(name)`: the job has no env_file") }
                switch Self.secret(name, in: path) {
                case let .success(value): key = Array(value.utf8)
                case let .failure(e): return .failed(reason: e.description)
                }
            }
            return WebhookDelivery(spec: spec).post(body: Array(request.facts.json.jsonText.utf8), signatureKey: key)
        }
    }

    /// Reads `name` from the job's env file at delivery time (a rotated secret is used at once).
    static func secret(_ name: String, in path: String) -> Result<String, SecretError> {
        // A signing key is a secret: a file others may read is refused, as for a job's `secrets`.
        do throws(LaunchError) {
            let pairs = try EnvironmentFile.load(path: path, requirePrivate: true)
            guard let value = pairs.last(where: { $0.key == name })?.value else {
                return .failure(SecretError("secret_env `\(name)` is not set in \(path)"))
            }
            return .success(value)
        } catch {
            return .failure(SecretError("secret_env `\(name)`: \(error)"))
        }
    }

    struct SecretError: Error, CustomStringConvertible {
        var description: String
        init(_ d: String) { description = d }
    }
}
