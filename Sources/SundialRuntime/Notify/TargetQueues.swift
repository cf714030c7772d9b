import SundialCore

/// The deliveries a ``NotificationQueue`` holds: one first-in-first-out line per target, and
/// the targets that have a delivery in flight. A plain value: each queue keeps it under its
/// own mutex.
///
/// ## Taking
/// ``take()`` returns the oldest waiting delivery whose target has none in flight, so a
/// target's deliveries go one at a time and in queueing order, while other targets' go on
/// beside them: a dead receiver delays only its own notifications.
///
/// ## Full: the target that holds the most gives way
/// When the queue is full, ``admit(_:capacity:)`` drops the *newest waiting* delivery of the
/// target that would hold the most: the new one itself when its own target would hold at least
/// as many as any other (as before this policy: a full queue refused the newcomer), otherwise
/// the last one waiting for the biggest other target. Why this rule and not a fixed per-target
/// share: it needs no tuning and uses the whole capacity however many targets there are, yet a
/// target is refused only while it holds at least as much as every other one, so one dead
/// receiver can never push out the alerts of a healthy one (with N targets, each always has room
/// for capacity/N). Why the newest of the victim and not its oldest: its oldest waiting
/// delivery is the first alert of the outage, the one a person needs; the later ones repeat it,
/// and the line keeps its order. Dropped deliveries are logged by the notifier
/// (`notify.failed`, reason `queue full: …`), as a refused one always was.
struct TargetQueues {
    /// A delivery not yet taken. `id` is `nil` while a durable queue has not written its row.
    struct Waiting {
        var request: NotificationRequest
        var target: DeliveryTarget
        var id: UInt64?
    }

    enum Admission {
        /// There is room.
        case room
        /// Room was made by dropping this delivery of another target.
        case dropped(Waiting)
        /// No room: the new delivery's target holds the most.
        case refused
    }

    /// A target's waiting sequence numbers, oldest first.
    private struct Line {
        private var seqs: [UInt64] = []
        private var head = 0
        var count: Int { seqs.count - head }
        var first: UInt64? { head < seqs.count ? seqs[head] : nil }

        mutating func append(_ seq: UInt64) { seqs.append(seq) }

        mutating func removeFirst() -> UInt64 {
            let seq = seqs[head]
            head += 1
            compact()
            return seq
        }

        mutating func removeLast() -> UInt64 {
            let seq = seqs.removeLast()
            compact()
            return seq
        }

        private mutating func compact() {
            if head == seqs.count {
                seqs.removeAll(keepingCapacity: false)
                head = 0
            } else if head >= 64, head * 2 >= seqs.count {
                seqs.removeFirst(head)
                head = 0
            }
        }
    }

    /// Waiting deliveries by sequence number (queueing order across targets).
    private var entries: [UInt64: Waiting] = [:]
    /// Only targets with at least one waiting delivery.
    private var lines: [DeliveryTarget: Line] = [:]
    /// In flight: id to target, and the targets themselves (at most one delivery each).
    private var flying: [UInt64: DeliveryTarget] = [:]
    private var busy: Set<DeliveryTarget> = []
    private var nextSeq: UInt64 = 1
    /// When each target was last served (``take()``'s turns); forgotten once a target holds
    /// nothing, so the map is bounded by the targets holding deliveries.
    private var served: [DeliveryTarget: UInt64] = [:]
    private var turns: UInt64 = 0

    /// Waiting and in flight.
    var count: Int { entries.count + flying.count }

    /// Deliveries `target` holds, waiting and in flight.
    func held(_ target: DeliveryTarget) -> Int { (lines[target]?.count ?? 0) + (busy.contains(target) ? 1 : 0) }

    /// Makes room for one more delivery to `target` under `capacity` (see the type's comment).
    mutating func admit(_ target: DeliveryTarget, capacity: Int) -> Admission {
        guard count >= capacity else { return .room }
        let mine = held(target) + 1
        var biggest: (target: DeliveryTarget, held: Int)?
        for (t, line) in lines where t != target {
            let h = line.count + (busy.contains(t) ? 1 : 0)
            if h > (biggest?.held ?? 0) { biggest = (t, h) }
        }
        // Holding more than `mine` >= 1, with at most one in flight: it has one waiting.
        guard let victim = biggest, victim.held > mine, var line = lines[victim.target] else { return .refused }
        let seq = line.removeLast()
        lines[victim.target] = line.count == 0 ? nil : line
        guard let dropped = entries.removeValue(forKey: seq) else { return .refused }
        return .dropped(dropped)
    }

    /// Appends a waiting delivery (after ``admit(_:capacity:)``); returns its sequence number.
    @discardableResult
    mutating func append(_ request: NotificationRequest, id: UInt64?) -> UInt64 {
        let seq = nextSeq
        nextSeq &+= 1
        let target = request.deliveryTarget
        entries[seq] = Waiting(request: request, target: target, id: id)
        lines[target, default: Line()].append(seq)
        return seq
    }

    /// The waiting delivery `seq`, if it is still waiting.
    func waiting(_ seq: UInt64) -> Waiting? { entries[seq] }

    /// Gives the waiting delivery `seq` its id; `false` when it is no longer waiting (dropped).
    mutating func setID(_ id: UInt64, for seq: UInt64) -> Bool {
        guard entries[seq] != nil else { return false }
        entries[seq]?.id = id
        return true
    }

    /// The next delivery of the free target (none in flight) served longest ago, the oldest of
    /// that target's (one that has an id); it is in flight from now until ``done(_:)``.
    ///
    /// Targets take turns rather than the oldest delivery going first: with more dead receivers
    /// than workers, oldest-first would hand every freed worker the next dead delivery (the
    /// backlog of an outage is older than a healthy target's new one), and a healthy target would
    /// wait behind all of them. In turns it waits for at most one attempt per dead target.
    mutating func take() -> QueuedNotification? {
        var best: (target: DeliveryTarget, turn: UInt64, seq: UInt64)?
        for (t, line) in lines where !busy.contains(t) {
            guard let seq = line.first, entries[seq]?.id != nil else { continue }
            let turn = served[t] ?? 0
            if let b = best, (b.turn, b.seq) <= (turn, seq) { continue }
            best = (t, turn, seq)
        }
        guard let best, var line = lines[best.target] else { return nil }
        turns &+= 1
        served[best.target] = turns
        _ = line.removeFirst()
        lines[best.target] = line.count == 0 ? nil : line
        guard let entry = entries.removeValue(forKey: best.seq), let id = entry.id else { return nil }
        busy.insert(best.target)
        flying[id] = best.target
        return QueuedNotification(id: id, request: entry.request)
    }

    /// The delivery `id` has ended: its target may send its next one. `false` if it was not in
    /// flight.
    @discardableResult
    mutating func done(_ id: UInt64) -> Bool {
        guard let target = flying.removeValue(forKey: id) else { return false }
        busy.remove(target)
        if lines[target] == nil { served[target] = nil }
        return true
    }
}
