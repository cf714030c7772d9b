import OrderedCollections

/// A webhook POST's header lines and its retry timing: pure, so the exact headers are tested
/// line by line and the runtime only hands them to the delivery process (libcurl adds `Host`,
/// `Content-Length` and `Accept` itself, and reads the answer's status line).
public enum WebhookRequest {
    /// The request's own header lines: the user agent, the JSON content type, the signature
    /// when a key is given, then the entry's own headers in their order.
    public static func headerFields(
        headers: OrderedDictionary<String, String>, body: [UInt8], signatureKey: [UInt8]?,
        userAgent: String = "sundial"
    ) -> [String] {
        var lines = ["User-Agent: \(userAgent)", "Content-Type: application/json"]
        if let signatureKey { lines.append("X-Sundial-Signature: \(HMACSHA256.signature(key: signatureKey, body: body))") }
        for (name, value) in headers { lines.append("\(name): \(value)") }
        return lines
    }

    /// The wait before attempt `attempt + 1` of a delivery: 1 s, doubling, at most 60 s.
    public static func backoffMs(afterAttempt attempt: Int) -> Int64 {
        let shift = min(max(attempt - 1, 0), 6)
        return min(1000 << Int64(shift), 60_000)
    }
}

/// One delivery's attempts on a given clock: when the next is due, or that it has given up.
///
/// Pure (instants in, instants out) so the backoff is tested on virtual time; the runtime's
/// worker waits for ``nextAttemptAt`` with a timer and never sleeps in between.
public struct DeliveryAttempts: Hashable, Sendable {
    /// Attempts allowed in all (1 + retries).
    public let limit: Int
    public private(set) var made = 0
    public private(set) var nextAttemptAt: Instant?
    public private(set) var reasons: [String] = []

    public init(retries: Int, now: Instant) {
        limit = 1 + max(0, retries)
        nextAttemptAt = now
    }

    /// Records a failed attempt ending at `now`; the next attempt's time, or `nil` when none
    /// is left.
    public mutating func failed(reason: String, now: Instant) -> Instant? {
        made += 1
        if reasons.count < 4 { reasons.append(reason) } else { reasons[3] = reason }
        guard made < limit else {
            nextAttemptAt = nil
            return nil
        }
        nextAttemptAt = Instant(unixMillis: now.unixMillis &+ WebhookRequest.backoffMs(afterAttempt: made))
        return nextAttemptAt
    }

    /// Records the attempt that succeeded.
    public mutating func succeeded() {
        made += 1
        nextAttemptAt = nil
    }
}
