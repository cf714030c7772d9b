/// Where something came from in a job file: 1-based line and column.
///
/// Line and column are stored in 32 bits: every job and every `needs` entry of a loaded set
/// keeps one, and files are bounded far below 2³¹ lines (the loader's size limit), so the
/// 64-bit words only cost an idle agent memory. Values beyond the range are clamped.
public struct SourceLocation: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var file: String
    private var line32: Int32
    private var column32: Int32

    public var line: Int {
        get { Int(line32) }
        set { line32 = Int32(clamping: newValue) }
    }

    public var column: Int {
        get { Int(column32) }
        set { column32 = Int32(clamping: newValue) }
    }

    public init(file: String, line: Int, column: Int) {
        self.file = file
        self.line32 = Int32(clamping: line)
        self.column32 = Int32(clamping: column)
    }

    public static func < (a: SourceLocation, b: SourceLocation) -> Bool {
        (a.file, a.line32, a.column32) < (b.file, b.line32, b.column32)
    }

    /// `file:line:column`, the form editors and CI annotate.
    public var description: String { "\(file):\(line):\(column)" }
}

/// A problem found in the input, positioned like a compiler diagnostic.
public struct Diagnostic: Hashable, Sendable, Comparable, CustomStringConvertible {
    public enum Severity: String, Sendable, Hashable { case error, warning, note }

    public var severity: Severity
    public var location: SourceLocation
    public var message: String
    /// An optional fix, shown after the message ("did you mean `timeout`?").
    public var hint: String?
    /// The location is on a value that may hold a secret (a `writeOnly` schema value: a webhook
    /// URL's token, a header's API key), so the source line under the message is not printed.
    public var sourceMayHoldSecret = false

    public init(_ severity: Severity = .error, at location: SourceLocation, _ message: String, hint: String? = nil) {
        self.severity = severity
        self.location = location
        self.message = message
        self.hint = hint
    }

    /// The message with its hint, as one line.
    public var fullMessage: String { hint.map { "\(message); \($0)" } ?? message }

    public static func < (a: Diagnostic, b: Diagnostic) -> Bool {
        (a.location, a.message) < (b.location, b.message)
    }

    /// gcc style: `file:line:column: error: message`.
    public var description: String { "\(location): \(severity.rawValue): \(fullMessage)" }
}
