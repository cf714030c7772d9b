import CSundialShim
import OrderedCollections
import SundialConfig
import SundialCore
import SundialRuntime

#if canImport(Glibc)
import Glibc
#endif

/// `sundial-bench wire DIR [ROUNDS]`: the parts of a reload besides the child's own parse, in
/// process and in CPU time: `ConfigurationLoading.load` (what the child does), `LoaderWire.encode`
/// (the child's answer) and `LoaderWire.decode` (the agent reading it). Issue 15's reload
/// target is 15 ms for 1,000 jobs; this shows which part the time goes to.
func benchmarkWire(_ args: [String]) {
    guard let dir = args.first else {
        print("usage: sundial-bench wire DIR [ROUNDS]")
        return
    }
    let rounds = max(1, args.count > 1 ? Int(args[1]) ?? 20 : 20)
    var load: [Double] = []
    var encode: [Double] = []
    var decode: [Double] = []
    var size = 0
    var jobs = 0
    for _ in 0..<rounds {
        let t0 = wireCPUms()
        let result = ConfigurationLoading.load(paths: [dir])
        let t1 = wireCPUms()
        let bytes = LoaderWire.encode(result)
        let t2 = wireCPUms()
        let back = try? LoaderWire.decode(bytes, maxBytes: 256 << 20)
        let t3 = wireCPUms()
        load.append(t1 - t0)
        encode.append(t2 - t1)
        decode.append(t3 - t2)
        size = bytes.count
        jobs = back?.jobSet?.jobs.count ?? -1
    }
    func med(_ a: [Double]) -> String {
        let m = a.sorted()[a.count / 2]
        return "\(Double(Int(m * 100)) / 100)"
    }
    print("wire: \(jobs) jobs, answer \(size) bytes; CPU median of \(rounds): load \(med(load)) ms, encode \(med(encode)) ms, decode \(med(decode)) ms")
}

private func wireCPUms() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
    return Double(ts.tv_sec) * 1000 + Double(ts.tv_nsec) / 1e6
}
