import ArgumentParser
import SundialCore
import SundialRuntime

/// `sundial reload`: reload the configuration now (as SIGHUP does). Exits 1 when the new set is
/// rejected; the last good set keeps running.
struct ReloadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "reload", abstract: "Make the agent reload its configuration now.")

    @OptionGroup var client: ClientOptions

    func run() async throws {
        let body = try await client.ask(.reload)
        guard client.format == .text else { return }
        let r = try client.decode(body, ReloadReport.init(json:))
        print("configuration reloaded: revision \(r.revision) (\(r.added.count) added, \(r.removed.count) removed, \(r.changed.count) changed)")
        for (label, ids) in [("added", r.added), ("removed", r.removed), ("changed", r.changed)] where !ids.isEmpty {
            print("  \(label): \(ids.joined(separator: ", "))")
        }
    }
}
