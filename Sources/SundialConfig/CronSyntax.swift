import SundialCore

/// The loader's cron check: the time engine's parser, plus "never fires" (design §2: an
/// expression that can never fire, such as `0 0 30 2 *`, is an error, not a silent no-op).
enum CronSyntax {
    struct Problem {
        /// 1-based column within the expression.
        var column: Int
        var message: String
    }

    static func check(_ text: String) -> Problem? {
        do throws(CronError) {
            let expression = try CronExpression(text)
            if expression.neverFires {
                return Problem(column: 1, message: "it never fires (no such date: check the day and month fields)")
            }
            return nil
        } catch {
            return Problem(column: error.column, message: error.message)
        }
    }
}
