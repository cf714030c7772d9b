import Foundation
import SundialCore
import SundialRuntime
import SundialTesting
import Testing

/// The fleet contract (SundialCore/Fleet/FleetCoordinator.swift), rule by rule, against a real
/// PostgreSQL (PGTest). Each test works in a fresh schema.
@Suite("PostgresFleetCoordinator", .serialized, .enabled(if: PGTest.enabled), .offPool)
struct PostgresFleetCoordinatorTests {
    let t = Instant(unixSeconds: 1_800_000_000)
    func key(_ job: String = "report", _ s: Int64 = 0) -> FleetClaimKey { FleetClaimKey(job: job, scheduledFor: t + .seconds(s)) }

    func lease(_ outcome: FleetClaimOutcome) -> FleetLease? {
        if case let .won(l) = outcome { return l }
        return nil
    }

    /// Polls until the lease's expiry has passed on the database clock (bounded).
    func waitExpired(_ c: PostgresFleetCoordinator, job: String, count: Int = 1) -> [FleetLease] {
        var found: [FleetLease] = []
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            found = c.expiredLeases(jobs: [job], limit: 100)
            if found.count >= count { return found }
            usleep(20_000)
        }
        return found
    }

    @Test func migrationsFromEmptyAreIdempotentWithFiveConcurrentStarters() throws {
        let url = try PGTest.freshURL()
        let errors = concurrently(5) { _ -> String? in
            let c = PostgresConnection(settings: PostgresSettings(url: url))
            defer { c.close() }
            do throws(PostgresError) { try FleetDatabaseSchema.migrate(c) } catch { return error.message }
            return nil
        }
        #expect(errors.compactMap { $0 } == [])
        let c = PostgresConnection(settings: PostgresSettings(url: url))
        defer { c.close() }
        let versions = try c.query("SELECT version FROM sundial_schema ORDER BY version")
        #expect(versions.map { $0[0] } == (1...FleetDatabaseSchema.latestVersion).map { String($0) })
        // Again, on a migrated database: nothing to do, no error.
        try FleetDatabaseSchema.migrate(c)
        #expect(try c.query("SELECT count(*) FROM sundial_schema")[0][0] == String(FleetDatabaseSchema.latestVersion))
        for table in ["sundial_claims", "sundial_boxes", "sundial_runs"] {
            #expect(try c.query("SELECT to_regclass($1) IS NOT NULL", [table])[0][0] == "t")
        }
    }

    @Test func aNewerSchemaIsRefusedWithAHint() throws {
        let url = try PGTest.freshURL()
        let c = PostgresConnection(settings: PostgresSettings(url: url))
        defer { c.close() }
        try FleetDatabaseSchema.migrate(c)
        try c.query("INSERT INTO sundial_schema (version) VALUES (999)")
        #expect(throws: PostgresError.self) { try FleetDatabaseSchema.migrate(c) }
        do { try FleetDatabaseSchema.migrate(c) } catch { #expect(error.message.contains("upgrade sundial")) }
    }

    @Test func anInstantIsClaimedOnceAndOthersAreToldWhoHoldsIt() throws {
        let url = try PGTest.freshURL()
        let a = PGTest.coordinator(url, box: "a")
        let b = PGTest.coordinator(url, box: "b")
        let won = try #require(lease(a.claim(key(), box: "a", leaseMs: 30_000, forbidOverlap: false)))
        #expect(won.box == "a" && won.key == key())
        #expect(b.claim(key(), box: "b", leaseMs: 30_000, forbidOverlap: false) == .heldBy(box: "a", token: won.token, state: .running))
        // The holder itself, after a restart, is told too (never a second run).
        #expect(a.claim(key(), box: "a", leaseMs: 30_000, forbidOverlap: false) == .heldBy(box: "a", token: won.token, state: .running))
        #expect(a.finish(won, outcome: "succeeded"))
        #expect(b.claim(key(), box: "b", leaseMs: 30_000, forbidOverlap: false) == .heldBy(box: "a", token: won.token, state: .finished))
    }

    @Test func fiveBoxesRacingForEachOfManyInstantsGiveExactlyOneWinnerEach() throws {
        let url = try PGTest.freshURL()
        let boxes = (0..<5).map { PGTest.coordinator(url, box: "box\($0)") }
        let winners = concurrently(5) { i -> [Int64] in
            (0..<40).compactMap { s -> Int64? in
                if case .won = boxes[i].claim(key("tick", Int64(s)), box: "box\(i)", leaseMs: 30_000, forbidOverlap: false) { return Int64(s) }
                return nil
            }
        }
        #expect(winners.flatMap { $0 }.sorted() == (0..<40).map { Int64($0) })
    }

    @Test func fencingTokensOnlyIncreaseAcrossClaimsAndTakeovers() throws {
        let url = try PGTest.freshURL()
        let a = PGTest.coordinator(url, box: "a")
        let b = PGTest.coordinator(url, box: "b")
        var tokens: [Int64] = []
        for s in 0..<5 {
            let c = s.isMultiple(of: 2) ? a : b
            tokens.append(try #require(lease(c.claim(key("j", Int64(s)), box: c.box, leaseMs: 50, forbidOverlap: false))).token)
        }
        let expired = waitExpired(a, job: "j", count: 5)
        #expect(expired.count == 5)
        let taken = try #require(lease(b.resolveLost(expired[0], action: .rerun, box: "b", leaseMs: 30_000)))
        tokens.append(taken.token)
        #expect(tokens == tokens.sorted() && Set(tokens).count == tokens.count)
        #expect(taken.token > expired[0].token)
    }

    @Test func aRenewalAfterATakeoverIsLostAndItsFinishRefused() throws {
        let url = try PGTest.freshURL()
        let a = PGTest.coordinator(url, box: "a")
        let b = PGTest.coordinator(url, box: "b")
        let held = try #require(lease(a.claim(key(), box: "a", leaseMs: 50, forbidOverlap: false)))
        let expired = try #require(waitExpired(b, job: "report").first)
        #expect(expired.token == held.token && expired.box == "a")
        let taken = try #require(lease(b.resolveLost(expired, action: .rerun, box: "b", leaseMs: 30_000)))
        #expect(a.renew(held, leaseMs: 30_000) == .lost(byBox: "b", token: taken.token))
        #expect(!a.finish(held, outcome: "succeeded"))
        guard case let .renewed(r) = b.renew(taken, leaseMs: 60_000) else {
            Issue.record("the new holder's renewal failed")
            return
        }
        #expect(r.expiresAt > taken.expiresAt)
        #expect(b.finish(r, outcome: "succeeded"))
    }

    @Test func aRenewalBeforeAnyTakeoverExtendsEvenAnExpiredLease() throws {
        let url = try PGTest.freshURL()
        let a = PGTest.coordinator(url, box: "a")
        let held = try #require(lease(a.claim(key(), box: "a", leaseMs: 50, forbidOverlap: false)))
        _ = try #require(waitExpired(a, job: "report").first)
        guard case let .renewed(r) = a.renew(held, leaseMs: 30_000) else {
            Issue.record("renewal refused")
            return
        }
        #expect(r.token == held.token)
        #expect(a.expiredLeases(jobs: ["report"], limit: 10).isEmpty)
    }

    @Test func anExpiredLeaseIsResolvedOnceByOneOfTwoConcurrentCallers() throws {
        let url = try PGTest.freshURL()
        let a = PGTest.coordinator(url, box: "a")
        for action in [FleetLostAction.rerun, .skip] {
            let job = "job-\(action)"
            _ = try #require(lease(a.claim(FleetClaimKey(job: job, scheduledFor: t), box: "a", leaseMs: 50, forbidOverlap: false)))
            let expired = try #require(waitExpired(a, job: job).first)
            let boxes = [PGTest.coordinator(url, box: "b"), PGTest.coordinator(url, box: "c")]
            let outcomes = concurrently(2) { i in boxes[i].resolveLost(expired, action: action, box: boxes[i].box, leaseMs: 30_000) }
            switch action {
            case .rerun:
                let won = outcomes.compactMap(lease)
                #expect(won.count == 1)
                let other = outcomes.first { lease($0) == nil }
                #expect(other == .heldBy(box: won.first?.box ?? "?", token: won.first?.token ?? -1, state: .running))
            case .skip:
                // The box that acted is named; the other finds the claim already lost.
                #expect(
                    Set(outcomes) == [.heldBy(box: "b", token: expired.token, state: .lost), .heldBy(box: "a", token: expired.token, state: .lost)]
                        || Set(outcomes) == [.heldBy(box: "c", token: expired.token, state: .lost), .heldBy(box: "a", token: expired.token, state: .lost)])
                #expect(
                    a.claim(FleetClaimKey(job: job, scheduledFor: t), box: "a", leaseMs: 50, forbidOverlap: false)
                        == .heldBy(box: "a", token: expired.token, state: .lost))
            }
            #expect(a.expiredLeases(jobs: [job], limit: 10).isEmpty)
        }
    }

    @Test func forbidRefusesASecondInstantWhileOneRunsAnywhereInTheFleet() throws {
        let url = try PGTest.freshURL()
        let a = PGTest.coordinator(url, box: "a")
        let b = PGTest.coordinator(url, box: "b")
        let first = try #require(lease(a.claim(key("backup", 0), box: "a", leaseMs: 30_000, forbidOverlap: true)))
        #expect(b.claim(key("backup", 60), box: "b", leaseMs: 30_000, forbidOverlap: true) == .busy(box: "a", scheduledFor: t))
        // Without forbid the second instant is independent.
        #expect(lease(b.claim(key("backup", 120), box: "b", leaseMs: 30_000, forbidOverlap: false)) != nil)
        #expect(a.finish(first, outcome: "succeeded"))
        let url2 = try PGTest.freshURL()
        // Racing forbid claims of different instants: exactly one runs.
        let boxes = (0..<5).map { PGTest.coordinator(url2, box: "box\($0)") }
        let outcomes = concurrently(5) { i in boxes[i].claim(key("backup", Int64(i)), box: "box\(i)", leaseMs: 30_000, forbidOverlap: true) }
        #expect(outcomes.compactMap(lease).count == 1)
        #expect(outcomes.filter { if case .busy = $0 { true } else { false } }.count == 4)
        _ = b
    }

    @Test func forbidIgnoresAnExpiredLease() throws {
        let url = try PGTest.freshURL()
        let a = PGTest.coordinator(url, box: "a")
        let b = PGTest.coordinator(url, box: "b")
        _ = try #require(lease(a.claim(key("backup", 0), box: "a", leaseMs: 50, forbidOverlap: true)))
        _ = try #require(waitExpired(b, job: "backup").first)
        #expect(lease(b.claim(key("backup", 60), box: "b", leaseMs: 30_000, forbidOverlap: true)) != nil)
    }

    @Test func jobNamesWithQuotesCommasAndBracesAreData() throws {
        let url = try PGTest.freshURL()
        let a = PGTest.coordinator(url, box: "a")
        let odd = "we\"ird,{job}\\ 'x'"
        _ = try #require(lease(a.claim(key(odd), box: "a", leaseMs: 50, forbidOverlap: false)))
        #expect(waitExpired(a, job: odd).first?.key.job == odd)
    }

    @Test func aStoppedServerIsUnavailableWithoutThePasswordAndAReturnedOneServesAgain() throws {
        _ = try PGTest.requireURL()
        let cluster = try PrivatePGCluster()
        defer { cluster.destroy() }
        let a = PGTest.coordinator(cluster.url, box: "a")
        _ = try #require(lease(a.claim(key("j", 0), box: "a", leaseMs: 30_000, forbidOverlap: false)))
        try cluster.stop()
        let outcome = a.claim(key("j", 1), box: "a", leaseMs: 30_000, forbidOverlap: false)
        guard case let .unavailable(reason) = outcome else {
            Issue.record("expected unavailable, got \(outcome)")
            return
        }
        #expect(!reason.contains(cluster.password) && !reason.isEmpty)
        #expect(a.statistics.unavailable >= 1)
        if case let .unavailable(r2) = a.renew(FleetLease(key: key("j", 0), box: "a", token: 1, expiresAt: t), leaseMs: 1000) {
            #expect(!r2.contains(cluster.password))
        } else {
            Issue.record("renew should be unavailable")
        }
        #expect(a.expiredLeases(jobs: ["j"], limit: 5) == [])
        try cluster.start()
        // Back within the bounded backoff (at most 5 s between attempts).
        var back: FleetClaimOutcome = .unavailable(reason: "")
        let deadline = Date().addingTimeInterval(15)
        while Date() < deadline {
            back = a.claim(key("j", 1), box: "a", leaseMs: 30_000, forbidOverlap: false)
            if case .unavailable = back {
                usleep(100_000)
                continue
            }
            break
        }
        #expect(lease(back) != nil)
    }

    @Test func aStaleConnectionAfterARestartIsReplacedWithinTheSameCall() throws {
        let url = try PGTest.freshURL()
        let a = PGTest.coordinator(url, box: "a")
        _ = try #require(lease(a.claim(key("j", 0), box: "a", leaseMs: 30_000, forbidOverlap: false)))
        // The server ends every connection of the test's schema user but ours to it (as a restart would).
        let admin = PostgresConnection(settings: PostgresSettings(url: url))
        defer { admin.close() }
        try admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'sundial' AND pid <> pg_backend_pid()")
        #expect(lease(a.claim(key("j", 1), box: "a", leaseMs: 30_000, forbidOverlap: false)) != nil)
    }
}
