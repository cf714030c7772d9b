/// A webhook's `http[s]://host[:port]/path?query`, split so that validation can say what is
/// wrong at the file's line and the logs can name the receiver (``hostHeader``).
///
/// Hand-parsed (no Foundation `URL`). The delivery itself hands the text to libcurl in the
/// webhook child; ``isTLS`` says whether it is https:// (`ca_file` needs it).
public struct WebhookURL: Hashable, Sendable {
    public var isTLS: Bool
    /// A name, an IPv4 address, or an IPv6 address without its brackets.
    public var host: String
    public var port: UInt16
    /// The request target: path and query, at least `/`. The fragment is dropped.
    public var target: String

    public init(isTLS: Bool, host: String, port: UInt16, target: String) {
        self.isTLS = isTLS
        self.host = host
        self.port = port
        self.target = target
    }

    public struct ParseError: Error, Hashable, Sendable, CustomStringConvertible {
        public var description: String
    }

    public static func parse(_ text: String) throws(ParseError) -> WebhookURL {
        let lower = text.lowercased()
        let isTLS: Bool
        let rest: Substring
        if lower.hasPrefix("http://") {
            isTLS = false
            rest = text.dropFirst(7)
        } else if lower.hasPrefix("https://") {
            isTLS = true
            rest = text.dropFirst(8)
        } else {
            throw ParseError(description: "must start with http:// or https://")
        }
        for u in text.unicodeScalars where u.value <= 0x20 || u.value == 0x7F {
            throw ParseError(description: "contains a space or control character; percent-encode it (%20)")
        }
        let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" || $0 == "#" } ?? rest.endIndex
        var authority = rest[..<authorityEnd]
        var target = String(rest[authorityEnd...])
        if let hash = target.firstIndex(of: "#") { target = String(target[..<hash]) }
        if target.isEmpty || target.first == "?" { target = "/" + target }
        if authority.contains("@") { throw ParseError(description: "user:password@ is not supported; send credentials in `headers` (Authorization)") }
        var host: Substring
        var portText: Substring?
        if authority.first == "[" {
            guard let close = authority.firstIndex(of: "]") else { throw ParseError(description: "an IPv6 address lacks its closing ]") }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.first == ":" else { throw ParseError(description: "unexpected text after the IPv6 address") }
                portText = after.dropFirst()
            }
        } else {
            if let colon = authority.lastIndex(of: ":") {
                portText = authority[authority.index(after: colon)...]
                authority = authority[..<colon]
            }
            host = authority
        }
        guard !host.isEmpty else { throw ParseError(description: "has no host") }
        guard host.count <= 253 else { throw ParseError(description: "its host is longer than 253 characters") }
        var port: UInt16 = isTLS ? 443 : 80
        if let portText {
            guard let p = UInt16(portText), p > 0 else { throw ParseError(description: "port `\(portText)` is not a number from 1 to 65535") }
            port = p
        }
        return WebhookURL(isTLS: isTLS, host: String(host), port: port, target: target)
    }

    /// The `Host:` header value: the port only when it is not the scheme's default.
    public var hostHeader: String {
        let h = host.contains(":") ? "[\(host)]" : host
        return port == (isTLS ? 443 : 80) ? h : "\(h):\(port)"
    }
}
