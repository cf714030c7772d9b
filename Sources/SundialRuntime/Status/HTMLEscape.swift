/// Escapes text for HTML element content and double- or single-quoted attribute values.
///
/// Every string the status pages show that a user or a job controls (job ids, commands, output
/// lines, file paths, diagnostics) goes through here, so a job printing `<script>` shows the
/// characters and runs nothing. Beyond the five markup characters it also:
/// - replaces C0 controls (except tab and newline) and DEL with U+FFFD, so a terminal escape
///   sequence in a job's output cannot garble the page or smuggle markup past a parser;
/// - cuts the text at ``maxBytes`` bytes with a visible marker, so one 10 MB output line cannot
///   make a page unbounded.
/// Invalid UTF-8 never reaches it: Swift strings are valid Unicode (invalid bytes from a job
/// became U+FFFD when the line was decoded), and ``escape(bytes:)`` decodes raw bytes so.
public enum HTMLEscape {
    /// The most bytes of UTF-8 shown from one field; the rest is cut with a "… (N more bytes)"
    /// marker.
    public static let maxBytes = 4096

    /// `text` escaped and bounded (see the type's documentation).
    public static func escape(_ text: String, limit: Int = maxBytes) -> String {
        var out: [UInt8] = []
        append(text, to: &out, limit: limit)
        return String(decoding: out, as: UTF8.self)
    }

    /// Raw bytes (e.g. a job's output) decoded as UTF-8, invalid sequences as U+FFFD, then escaped.
    public static func escape(bytes: [UInt8], limit: Int = maxBytes) -> String {
        escape(String(decoding: bytes, as: UTF8.self), limit: limit)
    }

    /// Appends the escaped text to `out` (the renderers build pages as bytes).
    ///
    /// Works on the UTF-8 bytes: every byte that needs escaping is ASCII, and a Swift string's
    /// UTF-8 is valid, so multi-byte sequences are copied whole. `limit` counts bytes and the
    /// cut never splits a sequence.
    public static func append(_ text: String, to out: inout [UInt8], limit: Int = maxBytes) {
        var text = text
        text.withUTF8 { buf in
            var cut = buf.count
            if buf.count > limit {
                cut = limit
                while cut > 0, buf[cut] & 0xC0 == 0x80 { cut -= 1 }
            }
            var runStart = 0
            for i in 0..<cut {
                let c = buf[i]
                let replacement: StaticString
                switch c {
                case UInt8(ascii: "&"): replacement = "&amp;"
                case UInt8(ascii: "<"): replacement = "&lt;"
                case UInt8(ascii: ">"): replacement = "&gt;"
                case UInt8(ascii: "\""): replacement = "&quot;"
                case UInt8(ascii: "'"): replacement = "&#39;"
                case 0x09, 0x0A: continue
                case 0..<0x20, 0x7F: replacement = "\u{FFFD}"
                default: continue
                }
                out.append(contentsOf: UnsafeBufferPointer(rebasing: buf[runStart..<i]))
                replacement.withUTF8Buffer { out.append(contentsOf: $0) }
                runStart = i + 1
            }
            out.append(contentsOf: UnsafeBufferPointer(rebasing: buf[runStart..<cut]))
            if cut < buf.count { out.append(contentsOf: " … (\(buf.count - cut) more bytes)".utf8) }
        }
    }

    /// A path segment (a job id in a link) percent-encoded: anything but `[A-Za-z0-9._~-]`.
    /// Job ids are restricted to `[a-z0-9_.-]` by the schema, so this only matters for ids that
    /// come from old history; it keeps a link from ever leaving its attribute or its path.
    public static func percentEncode(_ segment: String) -> String {
        var out = ""
        for byte in segment.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                let hex = Array("0123456789ABCDEF".unicodeScalars)
                out.unicodeScalars.append("%")
                out.unicodeScalars.append(hex[Int(byte >> 4)])
                out.unicodeScalars.append(hex[Int(byte & 15)])
            }
        }
        return out
    }

    /// Decodes `%XX` escapes of a request path segment; nil for a malformed escape or a result
    /// that is not valid UTF-8 (the router answers 404).
    public static func percentDecode(_ segment: Substring) -> String? {
        var bytes: [UInt8] = []
        var it = Array(segment.utf8)[...]
        while let b = it.popFirst() {
            guard b == UInt8(ascii: "%") else {
                bytes.append(b)
                continue
            }
            guard it.count >= 2, let hi = hexValue(it[it.startIndex]), let lo = hexValue(it[it.startIndex + 1]) else { return nil }
            bytes.append(hi << 4 | lo)
            it = it.dropFirst(2)
        }
        return String(validating: bytes, as: UTF8.self)
    }

    private static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
