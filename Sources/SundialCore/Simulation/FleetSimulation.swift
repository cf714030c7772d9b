import HeapModule
import OrderedCollections
import Synchronization

/// Many boxes sharing one fleet database, on virtual time: the `lock: fleet` figures of
/// docs/fleet.md, and the property that no instant is lost or run twice under faults.
///
/// Every box is a real ``Scheduler`` (the agent's decisions, not a model of them) with its own
/// clock skew; the database is a ``FleetLedger`` whose clock is the true time. Requests and
/// answers each take half a round trip (some boxes are slow); processes run for the job's
/// scripted time; a fenced process lingers for its termination grace (the worst case). Faults:
/// box deaths (a box and its processes vanish; its leases expire), database outages (every call
/// fails; `finish` is retried by the box, as the agent's fleet worker does), clock skew.
///
/// Checks, per instant of each fleet-locked job in the window (the first minute and the last
/// `lease + 2 min` are left out: edges, not behaviour):
/// - **doubled**: two executions of the instant overlapped in true time, or two completed.
/// - **lost**: no execution completed, although the policy did not say skip: the database was
///   reachable at the instant (not in an outage, where `fleet_unavailable: skip` decides), some
///   box was alive, and no `on_lost: skip` marked the instant lost.
public struct FleetSimulation {
    public struct Config: Sendable {
        public var boxes: Int
        public var start: Instant
        public var durationMs: Int64
        public var jobs: JobSet
        /// How long each job's runs take (absent: 100 ms).
        public var runMs: [JobID: Int64] = [:]
        /// Each box's clock is off by a uniform draw in `[-maxSkewMs, maxSkewMs]`.
        public var maxSkewMs: Int64 = 5_000
        /// Round trip to the database; `slowBoxes` of the boxes take `slowRoundTripMs`.
        public var roundTripMs: Int64 = 2
        public var slowBoxes: Double = 0.05
        public var slowRoundTripMs: Int64 = 1_500
        /// Database outages: (start offset from `start`, length).
        public var outages: [(atMs: Int64, lengthMs: Int64)] = []
        /// Boxes that die, at uniform times in the run (they do not come back).
        public var deaths: Int = 0
        /// Deaths that strike, at uniform times, a box running a fleet job at that moment (a
        /// random box when none is): the faults that test `on_lost`.
        public var targetedDeaths: Int = 0
        public var seed: UInt64 = 0xF1EE7
        public var scanIntervalMs: Int64 = 15_000

        public init(boxes: Int, start: Instant, durationMs: Int64, jobs: JobSet) {
            self.boxes = boxes
            self.start = start
            self.durationMs = durationMs
            self.jobs = jobs
        }
    }

    public struct Report: Sendable, CustomStringConvertible {
        public var boxes = 0
        public var seconds = 0.0
        public var instants = 0
        public var executions = 0
        public var lost = 0
        public var doubled = 0
        /// Instants the policy skipped: in an outage (`fleet_unavailable: skip`) or marked lost
        /// (`on_lost: skip`).
        public var skippedByPolicy = 0
        public var fencedRuns = 0
        public var diedRuns = 0
        public var database = FleetLedger.Counters()
        public var peakClaimsPerSecond = 0
        public var examples: [String] = []

        public var claimsPerSecond: Double { seconds > 0 ? Double(database.claims) / seconds : 0 }
        /// Database calls (claims, renewals, finishes, scans, takeovers) per instant of a fleet job.
        public var roundTripsPerFire: Double { instants > 0 ? Double(database.total) / Double(instants) : 0 }

        public var description: String {
            func f(_ x: Double) -> String {
                let r = (x * 100).rounded() / 100
                return "\(r)"
            }
            return """
                boxes: \(boxes), simulated: \(f(seconds)) s, fleet instants: \(instants), executions: \(executions)
                database calls: \(database.total) (claims \(database.claims), renewals \(database.renewals), finishes \(database.finishes), scans \(database.scans), takeovers \(database.resolutions), refused \(database.refused))
                claims per second at the database: \(f(claimsPerSecond)) mean, \(peakClaimsPerSecond) peak
                round trips per fire: \(f(roundTripsPerFire)) (all boxes together)
                runs fenced: \(fencedRuns), runs that died with their box: \(diedRuns)
                instants skipped by policy: \(skippedByPolicy)
                instants lost: \(lost), instants doubled: \(doubled)
                """ + (examples.isEmpty ? "" : "\n" + examples.joined(separator: "\n"))
        }
    }

    struct Box {
        var scheduler: Scheduler
        var skew: Int64
        var roundTrip: Int64
        var alive = true
        var wakeSeq: UInt64 = 0
        var running: [RunID: Int] = [:]
        func local(_ t: Int64) -> Instant { Instant(unixMillis: t &+ skew) }
    }

    struct Execution {
        var job: JobID
        var instant: Instant
        var box: Int
        var start: Int64
        var end: Int64?
        var completed = false
        var fenced = false
        var died = false
    }

    enum Kind {
        case wake(Int, UInt64)
        case request(Int, SchedulerAction)
        case answer(Int, SchedulerEvent)
        case processEnd(Int, RunID, attempt: Int, exec: Int)
        case die(Int)
        case outage(Bool)
    }

    struct Item: Comparable {
        var at: Int64
        var seq: UInt64
        var kind: Kind
        static func < (a: Item, b: Item) -> Bool { a.at != b.at ? a.at < b.at : a.seq < b.seq }
        static func == (a: Item, b: Item) -> Bool { a.seq == b.seq }
    }

    let config: Config
    let calculator: any FireCalculating
    var boxes: [Box] = []
    var queue = Heap<Item>()
    var seq: UInt64 = 0
    var executions: [Execution] = []
    let ledger: FleetLedger
    var random: SeededRandom
    var claimsThisSecond = 0
    var currentSecond: Int64 = 0
    var report = Report()

    public init(_ config: Config, calculator: any FireCalculating) {
        self.config = config
        self.calculator = calculator
        ledger = FleetLedger(now: config.start)
        random = SeededRandom(seed: config.seed)
    }

    /// Runs the whole simulation and checks every instant.
    public static func run(_ config: Config, calculator: any FireCalculating) -> Report {
        var sim = FleetSimulation(config, calculator: calculator)
        sim.simulate()
        return sim.check()
    }

    mutating func push(_ at: Int64, _ kind: Kind) {
        seq &+= 1
        queue.insert(Item(at: at, seq: seq, kind: kind))
    }

    mutating func simulate() {
        let t0 = config.start.unixMillis
        var options = SchedulerOptions(recordsState: false, fleetConfigured: true)
        options.fleetScanIntervalMs = config.scanIntervalMs
        for i in 0..<config.boxes {
            let skew = Int64((random.nextUnit() * 2 - 1) * Double(config.maxSkewMs))
            let slow = random.nextUnit() < config.slowBoxes
            let scheduler = Scheduler(
                jobs: config.jobs, calculator: calculator, random: SeededRandom(seed: config.seed &+ UInt64(i) &* 7919),
                options: options)
            boxes.append(Box(scheduler: scheduler, skew: skew, roundTrip: slow ? config.slowRoundTripMs : config.roundTripMs))
        }
        for _ in 0..<config.deaths {
            let box = Int(random.nextUnit() * Double(config.boxes)) % max(1, config.boxes)
            push(t0 + Int64(random.nextUnit() * Double(config.durationMs)), .die(box))
        }
        for _ in 0..<config.targetedDeaths {
            push(t0 + Int64(random.nextUnit() * Double(config.durationMs)), .die(-1))
        }
        for o in config.outages {
            push(t0 + o.atMs, .outage(true))
            push(t0 + o.atMs + o.lengthMs, .outage(false))
        }
        for b in boxes.indices {
            handle(b, .start(restored: RestoredState(), reboot: false), at: t0)
        }
        let end = t0 + config.durationMs
        while let item = queue.min, item.at <= end {
            _ = queue.removeMin()
            let t = item.at
            switch item.kind {
            case let .wake(b, s):
                guard boxes[b].alive, boxes[b].wakeSeq == s else { continue }
                handle(b, .tick, at: t)
            case let .request(b, action):
                serve(b, action, at: t)
            case let .answer(b, event):
                guard boxes[b].alive else { continue }
                handle(b, event, at: t)
            case let .processEnd(b, id, attempt, exec):
                guard boxes[b].alive, executions[exec].end == nil else { continue }
                executions[exec].end = t
                executions[exec].completed = !executions[exec].fenced
                boxes[b].running[id] = nil
                let outcome: RunOutcome = executions[exec].fenced ? .signal(15) : .success(exitCode: 0)
                handle(b, .attemptFinished(runID: id, attempt: attempt, outcome: outcome, durationMs: t - executions[exec].start), at: t)
            case let .die(target):
                let b = target >= 0 ? target : victim()
                guard boxes[b].alive else { continue }
                boxes[b].alive = false
                for (_, exec) in boxes[b].running where executions[exec].end == nil {
                    executions[exec].end = t
                    executions[exec].died = true
                }
                boxes[b].running = [:]
            case let .outage(down):
                ledger.setOutage(down)
            }
        }
        report.database = ledger.counters
    }

    /// A box running a fleet job now (the most recent such execution), else a random one.
    mutating func victim() -> Int {
        for e in executions.suffix(2000).reversed() where e.end == nil && boxes[e.box].alive { return e.box }
        return Int(random.nextUnit() * Double(boxes.count)) % max(1, boxes.count)
    }

    /// One scheduler step of box `b` at true time `t`, and what it asks for.
    mutating func handle(_ b: Int, _ event: SchedulerEvent, at t: Int64) {
        var inbox: [SchedulerEvent] = [event]
        var i = 0
        while i < inbox.count, i < 10_000 {
            let actions = boxes[b].scheduler.handle(inbox[i], at: boxes[b].local(t))
            i += 1
            for action in actions {
                switch action {
                case let .launch(order):
                    let exec = executions.count
                    executions.append(Execution(job: order.job.id, instant: order.scheduledFor, box: b, start: t))
                    boxes[b].running[order.runID] = exec
                    inbox.append(.attemptLaunched(runID: order.runID, attempt: order.attempt, pid: 1))
                    push(t + (config.runMs[order.job.id] ?? 100), .processEnd(b, order.runID, attempt: order.attempt, exec: exec))
                case let .terminate(id, graceMs, _):
                    // The worst case: the process obeys only at the end of its grace.
                    guard let exec = boxes[b].running[id], executions[exec].end == nil else { continue }
                    executions[exec].fenced = true
                    push(t + graceMs, .processEnd(b, id, attempt: 1, exec: exec))
                case let .wake(at):
                    boxes[b].wakeSeq &+= 1
                    push(max(t, at.unixMillis &- boxes[b].skew), .wake(b, boxes[b].wakeSeq))
                case .claim, .renewLease, .finishClaim, .scanLostLeases, .resolveLost:
                    push(t + boxes[b].roundTrip / 2, .request(b, action))
                default:
                    break
                }
            }
        }
    }

    /// The database serves one request at true time `t` and the answer travels back.
    mutating func serve(_ b: Int, _ action: SchedulerAction, at t: Int64) {
        ledger.setNow(Instant(unixMillis: t))
        let box = "box-\(b)"
        let back = t + boxes[b].roundTrip - boxes[b].roundTrip / 2
        switch action {
        case let .claim(key, leaseMs, forbid):
            let second = t / 1000
            if second != currentSecond {
                currentSecond = second
                claimsThisSecond = 0
            }
            claimsThisSecond += 1
            report.peakClaimsPerSecond = max(report.peakClaimsPerSecond, claimsThisSecond)
            push(back, .answer(b, .claimResolved(key, ledger.claim(key, box: box, leaseMs: leaseMs, forbidOverlap: forbid))))
        case let .renewLease(lease, leaseMs):
            push(back, .answer(b, .leaseRenewed(lease.key, ledger.renew(lease, leaseMs: leaseMs))))
        case let .finishClaim(lease, outcome):
            // The agent's fleet worker retries a finish that did not get through.
            if !ledger.finish(lease, outcome: outcome), ledger.isUnreachable(box: box), boxes[b].alive {
                push(t + 2_000, .request(b, action))
            }
        case let .scanLostLeases(jobs, limit):
            push(back, .answer(b, .lostLeasesFound(ledger.expiredLeases(jobs: jobs, limit: limit))))
        case let .resolveLost(lease, lostAction, leaseMs):
            push(back, .answer(b, .lostResolved(lease, ledger.resolveLost(lease, action: lostAction, box: box, leaseMs: leaseMs))))
        default:
            break
        }
    }

    /// Checks every instant of every fleet-locked job in the window.
    mutating func check() -> Report {
        var r = report
        r.boxes = config.boxes
        r.seconds = Double(config.durationMs) / 1000
        r.executions = executions.count
        r.fencedRuns = executions.filter(\.fenced).count
        r.diedRuns = executions.filter(\.died).count
        var byInstant: [FleetClaimKey: [Int]] = [:]
        for (i, e) in executions.enumerated() { byInstant[FleetClaimKey(job: e.job, scheduledFor: e.instant), default: []].append(i) }
        let t0 = config.start.unixMillis
        let end = t0 + config.durationMs
        let claims = ledger.allClaims
        for spec in config.jobs.jobs.values where spec.lock == .fleet && spec.enabled {
            let from = Instant(unixMillis: t0 + 60_000)
            let to = Instant(unixMillis: end - spec.leaseMs - 120_000)
            var cursor = from
            while let f = calculator.nextFire(of: spec, after: cursor, anchor: config.start), f <= to {
                cursor = f
                r.instants += 1
                let key = FleetClaimKey(job: spec.id, scheduledFor: f)
                let execs = (byInstant[key] ?? []).map { executions[$0] }
                let completed = execs.filter(\.completed).count
                var overlap = false
                for i in execs.indices {
                    for j in execs.indices where j > i {
                        let a = execs[i]
                        let b = execs[j]
                        if a.start < (b.end ?? .max) && b.start < (a.end ?? .max) { overlap = true }
                    }
                }
                if completed >= 2 || overlap {
                    r.doubled += 1
                    if r.examples.count < 10 { r.examples.append("doubled: \(key) \(execs)") }
                    continue
                }
                if completed == 1 { continue }
                if claims[key]?.state == .lost || inOutage(f.unixMillis) {
                    r.skippedByPolicy += 1
                    continue
                }
                if execs.contains(where: { $0.end == nil }) { continue }  // still running at the end
                r.lost += 1
                if r.examples.count < 10 { r.examples.append("lost: \(key) claim \(String(describing: claims[key])) \(execs)") }
            }
        }
        return r
    }

    /// Whether the database was down at (or just around, for the boxes' skew) true time `t`.
    func inOutage(_ t: Int64) -> Bool {
        let t0 = config.start.unixMillis
        let margin = config.maxSkewMs + config.slowRoundTripMs
        return config.outages.contains { t0 + $0.atMs - margin <= t && t <= t0 + $0.atMs + $0.lengthMs + margin }
    }
}

extension FleetLedger {
    /// Whether `box` could not reach the database now (for drivers retrying a finish).
    public func isUnreachable(box: String) -> Bool { state.withLock { $0.outage || $0.cutOff.contains(box) } }
}
