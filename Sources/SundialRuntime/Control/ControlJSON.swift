import SundialCore

/// JSON text → ``JSONValue`` for the control protocol, through the core's own strict parser.
///
/// It replaced Foundation's `JSONSerialization`, which took about 100 ms to decode a `status`
/// reply for 1,000 jobs (400 KB) on the development machine, twice the whole budget of issue 7
/// ("`sundial status` answers in under 50 ms with 1,000 jobs"), and then needed a conversion
/// (with its `NSNumber` type guessing) on top. The core parser keeps integers apart from doubles
/// and never traps on any input.
enum ControlJSON {
    struct ParseError: Error, CustomStringConvertible {
        var description: String
    }

    static func parse(_ bytes: [UInt8]) throws(ParseError) -> JSONValue {
        do {
            return try JSONParser.parse(bytes)
        } catch {
            throw ParseError(description: "not valid JSON")
        }
    }
}
