import SundialCore

/// The loader's cron check: the time engine's parser, plus "never fires" (design §2: an
/// expression that can never fire, such as `0 0 30 2 *`, is an error, not a silent no-op),
/// plus the parser's warnings (cronie-compatible forms that probably say something else than
/// meant, such as `*/90` in minutes).
enum CronSyntax {
    struct Problem {
        /// 1-based column within the expression.
        var column: Int
        var message: String
        /// A warning does not make the file invalid: the expression runs as cronie runs it.
        var isWarning = false
    }

    /// The error, if the expression is invalid (warnings are not looked at).
    static func check(_ text: String) -> Problem? {
        problems(text).first { !$0.isWarning }
    }

    /// Either the one error or every warning.
    static func problems(_ text: String) -> [Problem] {
        do throws(CronError) {
            let expression = try CronExpression(text)
            if expression.neverFires {
                return [Problem(column: 1, message: "it never fires (no such date: check the day and month fields)")]
            }
            return expression.warnings.map { Problem(column: $0.column, message: $0.message, isWarning: true) }
        } catch {
            return [Problem(column: error.column, message: error.message)]
        }
    }
}
