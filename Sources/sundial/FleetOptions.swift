import ArgumentParser
import SundialCore
import SundialRuntime

#if canImport(Glibc)
import Glibc
#endif

/// The fleet's database flags, shared by `sundial run` and `sundial fleet` (docs/fleet.md).
struct FleetOptions: ParsableArguments {
    @Option(
        name: .customLong("fleet"),
        help: ArgumentHelp(
            "The fleet's PostgreSQL, a libpq URL (default: $SUNDIAL_FLEET_URL). Its password is never logged.", valueName: "URL"))
    var url: String?

    @Option(name: .customLong("fleet-password-file"), help: ArgumentHelp("Read the database password from this file's first line.", valueName: "PATH"))
    var passwordFile: String?

    @Option(name: .customLong("fleet-connect-timeout"), help: "Give up connecting to the fleet's database after this long.")
    var connectTimeout: String = "5s"

    @Option(name: .customLong("fleet-statement-timeout"), help: "The database aborts a fleet statement after this long.")
    var statementTimeout: String = "5s"

    func validate() throws {
        for (name, value) in [("--fleet-connect-timeout", connectTimeout), ("--fleet-statement-timeout", statementTimeout)] {
            let ms: Int64
            do throws(DurationParser.ParseError) { ms = try DurationParser.parseMilliseconds(value) } catch {
                throw ValidationError("\(name): \(error.message)")
            }
            guard ms >= 1 else { throw ValidationError("\(name) must be positive") }
        }
        if let url = resolvedURL, url.isEmpty { throw ValidationError("--fleet: the URL is empty") }
    }

    /// `--fleet`, else `$SUNDIAL_FLEET_URL`, else none (no fleet).
    var resolvedURL: String? {
        if let url { return url }
        if let env = getenv("SUNDIAL_FLEET_URL"), env.pointee != 0 { return String(cString: env) }
        return nil
    }

    /// The connection settings, or nil without a fleet. The password file is read here, once.
    func settings() throws -> PostgresSettings? {
        guard let url = resolvedURL else {
            if passwordFile != nil { throw ValidationError("--fleet-password-file needs --fleet URL (or SUNDIAL_FLEET_URL)") }
            return nil
        }
        var s = PostgresSettings(url: url)
        if let passwordFile {
            do throws(FleetSettingsError) { s.password = try PostgresSettings.readPasswordFile(passwordFile) } catch {
                throw ValidationError("--fleet-password-file: \(error.message)")
            }
        }
        let connectMs = (try? DurationParser.parseMilliseconds(connectTimeout)) ?? 5000
        s.connectTimeoutSeconds = Int(max(2, (connectMs + 999) / 1000))
        s.statementTimeoutMs = (try? DurationParser.parseMilliseconds(statementTimeout)) ?? 5000
        return s
    }
}

/// `--box NAME`: this box's name in the fleet (default: the hostname).
enum FleetBoxName {
    static func resolve(_ explicit: String?) throws -> String {
        if let explicit {
            guard !explicit.isEmpty, explicit.count <= 255, !explicit.contains(where: { $0.isNewline || $0 == "\0" }) else {
                throw ValidationError("--box must be 1 to 255 characters on one line")
            }
            return explicit
        }
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count) == 0 else { throw ValidationError("cannot read the hostname: name this box with --box NAME") }
        let name = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        guard !name.isEmpty else { throw ValidationError("the hostname is empty: name this box with --box NAME") }
        return name
    }
}

/// `sundial run --fleet`: builds the coordinator and the result backend's settings into the
/// agent's options. Nothing happens (no libpq, no thread) without a fleet URL.
enum FleetAgentSetup {
    static func apply(_ fleet: FleetOptions, box: String?, to options: inout AgentOptions) throws {
        guard let settings = try fleet.settings() else {
            if box != nil { throw ValidationError("--box names this box in a fleet: it needs --fleet URL (or SUNDIAL_FLEET_URL)") }
            return
        }
        let name = try FleetBoxName.resolve(box)
        // libpq is loaded now, so that a box without libpq5 fails at start with the fix, not at its first fleet job.
        do throws(PostgresError) { try PostgresConnection.loadLibrary() } catch {
            throw ValidationError("--fleet: \(error.message)")
        }
        options.fleet = PostgresFleetCoordinator(settings: settings, box: name)
        options.box = name
        options.fleetResults = FleetResultsOptions(settings: settings, box: name)
    }
}
