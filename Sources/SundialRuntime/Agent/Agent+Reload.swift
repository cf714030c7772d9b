import OrderedCollections
import SundialConfig
import SundialCore

extension Agent {
    /// Starts a reload unless one is running; a request during a reload runs one more after it,
    /// so the last change is never missed and a burst of requests is at most two loads.
    func beginReload(reason: String) {
        guard phase == .running else { return }
        if reloadInFlight {
            reloadPending = true
            return
        }
        reloadInFlight = true
        for o in reloadObservers { o() }
        let load = loadConfiguration
        // Loading (reading, parsing, validating) happens off the actor: a large set must not
        // delay a due fire.
        Task.detached {
            let result = load()
            await self.finishReload(result, reason: reason)
        }
    }

    func finishReload(_ result: ConfigLoadResult, reason: String) {
        reloadInFlight = false
        defer {
            if reloadPending {
                reloadPending = false
                beginReload(reason: "changed during reload")
            }
        }
        guard phase == .running else { return }
        let now = clock.wallNow()
        guard result.isValid, let set = result.jobSet else {
            // Design §2: an invalid set changes nothing; the last good set keeps running.
            let errors: [JSONValue] = result.diagnostics.filter { $0.severity == .error }.prefix(1000).map { d in
                [
                    "file": .string(d.location.file), "line": .int(Int64(d.location.line)),
                    "column": .int(Int64(d.location.column)), "message": .string(d.fullMessage),
                ]
            }
            emit(Event("config.rejected", at: now, level: .error, [
                "reason": .string(reason), "errors": .array(errors), "running_revision": .string(jobSet.revision),
            ]))
            return
        }
        guard set.revision != jobSet.revision || set != jobSet else {
            emit(Event("config.unchanged", at: now, level: .info, ["reason": .string(reason), "revision": .string(set.revision)]))
            return
        }
        let old = jobSet
        jobSet = set
        emit(configLoadedEvent(old: old, new: set, at: now, reason: reason))
        perform(scheduler.handle(.configReplaced(set), at: now))
    }

    /// `config.loaded` (design §3): the revision and what changed against the running set.
    func configLoadedEvent(old: JobSet?, new: JobSet, at now: Instant, reason: String? = nil) -> Event {
        var added: [JSONValue] = [], removed: [JSONValue] = [], changed: [JSONValue] = []
        for (id, job) in new.jobs {
            if let before = old?.jobs[id] {
                if before != job { changed.append(.string(id)) }
            } else {
                added.append(.string(id))
            }
        }
        for id in old?.jobs.keys ?? [] where new.jobs[id] == nil { removed.append(.string(id)) }
        var e = Event("config.loaded", at: now, level: .info, [
            "revision": .string(new.revision), "files": .int(Int64(new.files.count)), "jobs": .int(Int64(new.jobs.count)),
            "added": .array(added), "removed": .array(removed), "changed": .array(changed),
        ])
        if let reason { e["reason"] = .string(reason) }
        return e
    }
}
