import SundialCore

/// `sundial run --fleet`: where and as whom this box publishes its run records.
public struct FleetResultsOptions: Sendable {
    public var settings: PostgresSettings
    public var box: String
    public var publisher: FleetRunPublisher.Options
    public init(settings: PostgresSettings, box: String, publisher: FleetRunPublisher.Options = .init()) {
        self.settings = settings
        self.box = box
        self.publisher = publisher
    }
}

extension FleetRunPublisher {
    /// The agent's publisher: the database password joins the log's masker (it then never shows
    /// in any event, job output included).
    convenience init(host options: FleetResultsOptions, store: SQLiteStateStore, version: String, masker: SecretMasker, log: EventLog) {
        masker.add(options.settings.secrets)
        self.init(
            store: store, settings: options.settings, box: options.box, version: version, options: options.publisher,
            log: { log.log($0) })
    }
}
