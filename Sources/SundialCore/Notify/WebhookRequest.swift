import OrderedCollections

/// The bytes of a webhook's HTTP/1.1 POST and the reading of its answer: pure, so the exact
/// request is tested byte for byte and the runtime only moves bytes.
public enum WebhookRequest {
    /// The request: `POST target HTTP/1.1`, `Host`, the JSON content type and length,
    /// `Connection: close` (one request per connection: the answer ends at EOF at the latest),
    /// the signature when a key is given, then the entry's own headers, then the body.
    public static func bytes(url: WebhookURL, headers: OrderedDictionary<String, String>, body: [UInt8],
                             signatureKey: [UInt8]?, userAgent: String = "sundial") -> [UInt8] {
        var head = "POST \(url.target) HTTP/1.1\r\n"
        head += "Host: \(url.hostHeader)\r\n"
        head += "User-Agent: \(userAgent)\r\n"
        head += "Content-Type: application/json\r\n"
        head += "Content-Length: \(body.count)\r\n"
        head += "Connection: close\r\n"
        if let signatureKey { head += "X-Sundial-Signature: \(HMACSHA256.signature(key: signatureKey, body: body))\r\n" }
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        head += "\r\n"
        return Array(head.utf8) + body
    }

    /// The status code of an answer's first line (`HTTP/1.1 204 No Content`), once that line
    /// is complete; `nil` while it is not, or when it is not an HTTP status line.
    public static func status(of answer: ArraySlice<UInt8>) -> Int? {
        guard let end = answer.firstIndex(of: 0x0A) else { return nil }
        var lineEnd = end
        if lineEnd > answer.startIndex, answer[lineEnd - 1] == 0x0D { lineEnd -= 1 }
        let line = String(decoding: answer[answer.startIndex..<lineEnd], as: UTF8.self)
        let parts = line.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), parts[1].count == 3, let code = Int(parts[1]) else { return nil }
        return code
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
        guard made < limit else { nextAttemptAt = nil; return nil }
        nextAttemptAt = Instant(unixMillis: now.unixMillis &+ WebhookRequest.backoffMs(afterAttempt: made))
        return nextAttemptAt
    }

    /// Records the attempt that succeeded.
    public mutating func succeeded() {
        made += 1
        nextAttemptAt = nil
    }
}
