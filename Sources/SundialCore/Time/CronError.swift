/// A cron expression that does not parse, or that can never fire.
///
/// Public and a struct (not an enum) because its audience is a person reading a diagnostic:
/// the config loader turns `column` into a `file:line:column` position, and `sundial next`
/// prints `description` as is.
public struct CronError: Error, Hashable, Sendable, CustomStringConvertible {
    /// 1-based column within the expression text (in Unicode scalars) where the problem is.
    public var column: Int
    /// The field the problem is in (`minute`, `hour`, `day-of-month`, `month`, `day-of-week`,
    /// `second`), or `nil` when it concerns the whole expression.
    public var field: String?
    /// What is wrong and, where it helps, how to write it instead.
    public var message: String

    public init(column: Int, field: String?, message: String) {
        self.column = column
        self.field = field
        self.message = message
    }

    /// `column 9: hour 24 is out of range 0-23`.
    public var description: String { "column \(column): \(message)" }
}
