import SundialCore
import SundialTesting
import Testing

/// The in-memory fleet database follows the contract's rules (FleetCoordinator.swift).
@Suite("Fleet ledger", .offPool)
struct FleetLedgerTests {
    let key = FleetClaimKey(job: "j", scheduledFor: at(minute))

    @Test("a claim is unique per instant, tokens increase, and the loser is told who holds it")
    func uniqueClaims() {
        let db = FleetLedger(now: at(minute))
        guard case let .won(a) = db.claim(key, box: "a", leaseMs: 30_000, forbidOverlap: false) else {
            Issue.record("a lost")
            return
        }
        #expect(db.claim(key, box: "b", leaseMs: 30_000, forbidOverlap: false) == .heldBy(box: "a", token: a.token, state: .running))
        let key2 = FleetClaimKey(job: "j", scheduledFor: at(2 * minute))
        guard case let .won(b) = db.claim(key2, box: "b", leaseMs: 30_000, forbidOverlap: false) else {
            Issue.record("b lost")
            return
        }
        #expect(b.token > a.token)
        #expect(a.expiresAt == at(minute + 30_000))
        #expect(db.finish(a, outcome: "success"))
        #expect(db.claim(key, box: "c", leaseMs: 30_000, forbidOverlap: false) == .heldBy(box: "a", token: a.token, state: .finished))
    }

    @Test("forbid: busy while another instant of the job runs with an unexpired lease")
    func forbid() {
        let db = FleetLedger(now: at(minute))
        guard case let .won(a) = db.claim(key, box: "a", leaseMs: 30_000, forbidOverlap: true) else {
            Issue.record()
            return
        }
        let key2 = FleetClaimKey(job: "j", scheduledFor: at(minute + 10_000))
        #expect(db.claim(key2, box: "b", leaseMs: 30_000, forbidOverlap: true) == .busy(box: "a", scheduledFor: at(minute)))
        _ = db.finish(a, outcome: "success")
        guard case .won = db.claim(key2, box: "b", leaseMs: 30_000, forbidOverlap: true) else {
            Issue.record()
            return
        }
    }

    @Test("an expired lease is found by the scan and acted on once; the old holder's renewal is then lost")
    func lostLease() {
        let db = FleetLedger(now: at(minute))
        guard case let .won(a) = db.claim(key, box: "a", leaseMs: 30_000, forbidOverlap: false) else {
            Issue.record()
            return
        }
        #expect(db.expiredLeases(jobs: ["j"], limit: 10).isEmpty)
        db.setNow(at(minute + 31_000))
        let found = db.expiredLeases(jobs: ["j"], limit: 10)
        #expect(found == [a])
        guard case let .won(b) = db.resolveLost(a, action: .rerun, box: "b", leaseMs: 30_000) else {
            Issue.record()
            return
        }
        #expect(b.token > a.token && b.box == "b")
        #expect(db.resolveLost(a, action: .rerun, box: "c", leaseMs: 30_000) == .heldBy(box: "b", token: b.token, state: .running))
        #expect(db.renew(a, leaseMs: 30_000) == .lost(byBox: "b", token: b.token))
        #expect(!db.finish(a, outcome: "success"))
        guard case .renewed = db.renew(b, leaseMs: 30_000) else {
            Issue.record()
            return
        }
    }

    @Test("on_lost skip marks the instant lost for good; an unexpired lease cannot be acted on")
    func skipLost() {
        let db = FleetLedger(now: at(minute))
        guard case let .won(a) = db.claim(key, box: "a", leaseMs: 30_000, forbidOverlap: false) else {
            Issue.record()
            return
        }
        #expect(db.resolveLost(a, action: .skip, box: "b", leaseMs: 30_000) == .heldBy(box: "a", token: a.token, state: .running))
        db.setNow(at(minute + 30_000))
        #expect(db.resolveLost(a, action: .skip, box: "b", leaseMs: 30_000) == .heldBy(box: "a", token: a.token, state: .lost))
        #expect(db.expiredLeases(jobs: ["j"], limit: 10).isEmpty)
        #expect(db.renew(a, leaseMs: 30_000) == .lost(byBox: "a", token: a.token))
    }

    @Test("faults: an outage refuses everyone, a cut-off box only itself")
    func faults() {
        let db = FleetLedger(now: at(minute))
        db.setOutage(true)
        #expect(db.claim(key, box: "a", leaseMs: 1000, forbidOverlap: false) == .unavailable(reason: "database unreachable"))
        #expect(db.expiredLeases(jobs: ["j"], limit: 1).isEmpty)
        db.setOutage(false)
        db.setCutOff("a", true)
        #expect(db.claim(key, box: "a", leaseMs: 1000, forbidOverlap: false) == .unavailable(reason: "database unreachable"))
        guard case .won = db.claim(key, box: "b", leaseMs: 1000, forbidOverlap: false) else {
            Issue.record()
            return
        }
        #expect(db.counters.claimsWon == 1 && db.counters.refused == 3)
    }
}
