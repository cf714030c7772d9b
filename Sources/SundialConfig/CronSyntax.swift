import SundialCore

/// Cron syntax check for the loader. Delegates to the time engine's parser once merged.
enum CronSyntax {
    struct Problem { var column: Int; var message: String }
    static func check(_ text: String) -> Problem? {
        let fields = text.split(separator: " ", omittingEmptySubsequences: true)
        if text.hasPrefix("@") { return nil }
        return fields.count == 5 || fields.count == 6 ? nil : Problem(column: 1, message: "expected 5 or 6 fields, found \(fields.count)")
    }
}
