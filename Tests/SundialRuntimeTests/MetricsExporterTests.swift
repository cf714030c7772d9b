import CSundialShim
import Foundation
import Glibc
import OrderedCollections
import SundialCore
import SundialTesting
import Synchronization
import Testing

@testable import SundialRuntime

/// A blocking HTTP client over loopback with a hard receive/send timeout, so a server bug
/// fails the test instead of hanging it.
fileprivate func httpExchange(port: UInt16, request: [UInt8], timeoutSeconds: Int = 5) throws -> String {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    #expect(fd >= 0)
    defer { close(fd) }
    var tv = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    var sa = sockaddr_in()
    sa.sin_family = sa_family_t(AF_INET)
    sa.sin_port = port.bigEndian
    sa.sin_addr.s_addr = inet_addr("127.0.0.1")
    let rc = withUnsafePointer(to: &sa) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    guard rc == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
    _ = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    var out: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n < 0 { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        if n == 0 { break }
        out += buf[0..<n]
    }
    return String(decoding: out, as: UTF8.self)
}

fileprivate func get(_ port: UInt16, _ path: String, method: String = "GET") throws -> String {
    try httpExchange(port: port, request: Array("\(method) \(path) HTTP/1.1\r\nHost: localhost\r\nUser-Agent: test\r\n\r\n".utf8))
}

fileprivate func metricsTempDir() -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sundial-metrics-\(UUID().uuidString)").path
    try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

fileprivate let sampleFinished = LogRecord.runFinished(
    .init(
        job: "backup", runID: RunID(rawValue: "R1"), attempt: 1, outcome: .success(exitCode: 0),
        exitCode: 0, signal: nil, durationMs: 1500, at: Instant(unixSeconds: 1_767_225_600)))

@Suite(.timeLimit(.minutes(1)), .offPool) struct MetricsExporterTests {
    @Test func servesMetricsOverLoopback() throws {
        let exporter = try MetricsExporter(filePath: nil, listen: "127.0.0.1:0", version: "9.9.9")
        try exporter.start()
        defer { exporter.stop() }
        let port = try #require(exporter.port)
        #expect(port != 0)
        exporter.observe(sampleFinished)

        let ok = try get(port, "/metrics")
        #expect(ok.hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(ok.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"))
        #expect(ok.contains("Connection: close\r\n"))
        #expect(ok.contains("sundial_build_info{version=\"9.9.9\"} 1\n"))
        #expect(ok.contains("sundial_runs_finished_total{job_name=\"backup\",outcome=\"success\"} 1\n"))
        let body = ok.components(separatedBy: "\r\n\r\n")[1]
        let length = ok.components(separatedBy: "Content-Length: ")[1].prefix { $0.isNumber }
        #expect(Int(length) == body.utf8.count)

        #expect(try get(port, "/metrics?x=1").hasPrefix("HTTP/1.1 200 "))
        let head = try get(port, "/metrics", method: "HEAD")
        #expect(head.hasPrefix("HTTP/1.1 200 ") && head.hasSuffix("\r\n\r\n"))
        #expect(try get(port, "/").hasPrefix("HTTP/1.1 404 "))
        let post = try get(port, "/metrics", method: "POST")
        #expect(post.hasPrefix("HTTP/1.1 405 ") && post.contains("Allow: GET, HEAD\r\n"))
        #expect(try httpExchange(port: port, request: Array("garbage\r\n\r\n".utf8)).hasPrefix("HTTP/1.1 400 "))
        let huge = Array("GET /metrics HTTP/1.1\r\nX: ".utf8) + Array(repeating: UInt8(ascii: "a"), count: 10_000)
        #expect(try httpExchange(port: port, request: huge).hasPrefix("HTTP/1.1 431 "))
    }

    @Test func aStalledClientDelaysOthersOnlyBriefly() throws {
        let exporter = try MetricsExporter(filePath: nil, listen: "127.0.0.1:0", version: "1")
        try exporter.start()
        defer { exporter.stop() }
        let port = try #require(exporter.port)
        // A client that connects and says nothing does not hold up others (the server multiplexes).
        let idle = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(idle) }
        var sa = sockaddr_in()
        sa.sin_family = sa_family_t(AF_INET)
        sa.sin_port = port.bigEndian
        sa.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &sa) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(idle, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        let start = ContinuousClock.now
        let answer = try httpExchange(port: port, request: Array("GET /metrics HTTP/1.1\r\n\r\n".utf8), timeoutSeconds: 10)
        #expect(answer.hasPrefix("HTTP/1.1 200 "))
        #expect(ContinuousClock.now - start < .seconds(8))
    }

    @Test func refusesNonLoopbackUnlessAllowed() throws {
        #expect(throws: ListenAddress.ParseError.self) { try MetricsExporter(filePath: nil, listen: "0.0.0.0:9464", version: "1") }
        #expect(throws: ListenAddress.ParseError.self) { try ListenAddress(parsing: "192.168.1.10:9464") }
        #expect(throws: ListenAddress.ParseError.self) { try ListenAddress(parsing: "[::]:9464") }
        #expect(throws: ListenAddress.ParseError.self) { try ListenAddress(parsing: "example.com:9464") }
        #expect(throws: ListenAddress.ParseError.self) { try ListenAddress(parsing: "127.0.0.1") }
        #expect(throws: ListenAddress.ParseError.self) { try ListenAddress(parsing: "127.0.0.1:70000") }
        #expect(try ListenAddress(parsing: "0.0.0.0:9464", allowNonLoopback: true).description == "0.0.0.0:9464")
        #expect(try ListenAddress(parsing: "127.0.0.2:1").isLoopback)
        #expect(try ListenAddress(parsing: "[::1]:9464").description == "[::1]:9464")
        #expect(try ListenAddress(parsing: "localhost:9464").description == "127.0.0.1:9464")
    }

    @Test func bindFailureIsAStartError() throws {
        let first = try MetricsExporter(filePath: nil, listen: "127.0.0.1:0", version: "1")
        try first.start()
        defer { first.stop() }
        let second = try MetricsExporter(filePath: nil, listen: "127.0.0.1:\(try #require(first.port))", version: "1")
        #expect(throws: MetricsExporter.StartError.self) { try second.start() }
    }

    @Test func writesTheFileAtomicallyOnStartOnChangeAndOnStop() throws {
        let dir = metricsTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/sundial.prom"
        // A long interval: only start(), writeFileNow() and stop() write in this test.
        let exporter = try MetricsExporter(filePath: path, listen: nil, version: "1", writeInterval: .seconds(3600))
        try exporter.start()
        var text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(text.contains("sundial_build_info{version=\"1\"} 1\n"))
        #expect(!text.contains("backup"))
        let before = try FileManager.default.attributesOfItem(atPath: path)[.systemFileNumber] as? Int
        exporter.observe(sampleFinished)
        try exporter.writeFileNow()
        text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(text.contains("sundial_runs_finished_total{job_name=\"backup\",outcome=\"success\"} 1\n"))
        // A new inode: replaced by rename, never rewritten in place.
        let after = try FileManager.default.attributesOfItem(atPath: path)[.systemFileNumber] as? Int
        #expect(before != after)
        exporter.observe(.logDropped(lines: 4, at: Instant(unixSeconds: 0)))
        exporter.stop()
        text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(text.contains("sundial_log_dropped_lines_total 4\n"))
        // No temporary file left behind.
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["sundial.prom"])
    }

    @Test func rewritesTheFileEveryIntervalWhenChanged() throws {
        let dir = metricsTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/sundial.prom"
        let exporter = try MetricsExporter(filePath: path, listen: nil, version: "1", writeInterval: .milliseconds(20))
        try exporter.start()
        defer { exporter.stop() }
        exporter.observe(sampleFinished)
        // Bounded wait for the thread's periodic write (the interval is 20 ms; allow 10 s).
        let deadline = ContinuousClock.now + .seconds(10)
        var seen = false
        while ContinuousClock.now < deadline {
            if let t = try? String(contentsOfFile: path, encoding: .utf8), t.contains("job_name=\"backup\"") {
                seen = true
                break
            }
            usleep(10_000)
        }
        #expect(seen)
    }

    @Test func fileErrorsAreReportedOnceAndNotThrownFromStart() throws {
        let errors = ErrorLog()
        let exporter = try MetricsExporter(
            filePath: "/nonexistent-dir/sundial.prom", listen: nil, version: "1",
            writeInterval: .seconds(3600), onError: { errors.append($0) })
        try exporter.start()
        exporter.observe(sampleFinished)
        #expect(throws: AtomicFileWriter.WriteError.self) { try exporter.writeFileNow() }
        exporter.stop()
        #expect(errors.messages.count == 1)
        #expect(errors.messages.first?.contains("/nonexistent-dir/sundial.prom") == true)
    }

    @Test func stepEndRequestsAreCoalescedAndEndStepSettlesAndSetsNextFires() throws {
        let exporter = try MetricsExporter(filePath: nil, listen: nil, version: "1")
        let requests = Mutex(0)
        exporter.onStepEndRequest { requests.withLock { $0 += 1 } }
        let t0 = Instant(unixSeconds: 1_767_225_600)
        exporter.observe(
            .runFinished(
                .init(job: "backup", runID: RunID(rawValue: "R1"), attempt: 1, outcome: .failure(exitCode: 1), exitCode: 1, signal: nil, durationMs: 5, at: t0))
        )
        exporter.observe(.logDropped(lines: 1, at: t0))
        // One request in flight covers every line until the agent answers it.
        #expect(requests.withLock { $0 } == 1)
        var text = exporter.render()
        #expect(text.contains("sundial_runs_finished_total{job_name=\"backup\",outcome=\"failure\"} 0\n"))
        exporter.endStep(nextFires: ["backup": t0 + .seconds(3600)])
        text = exporter.render()
        #expect(text.contains("sundial_runs_finished_total{job_name=\"backup\",outcome=\"failure\"} 1\n"))
        #expect(text.contains("sundial_job_last_failure_timestamp_seconds{job_name=\"backup\"} 1767225600\n"))
        #expect(text.contains("sundial_job_next_fire_timestamp_seconds{job_name=\"backup\"} 1767229200\n"))
        exporter.observe(.logDropped(lines: 1, at: t0))
        #expect(requests.withLock { $0 } == 2)
    }

    @Test func aPassedPlannedFireAsksForFreshPlans() throws {
        let exporter = try MetricsExporter(filePath: nil, listen: nil, version: "1")
        let requests = Mutex(0)
        exporter.onStepEndRequest { requests.withLock { $0 += 1 } }
        let now = Instant(unixMillis: Int64(Date().timeIntervalSince1970 * 1000))
        exporter.endStep(nextFires: ["a": now + .seconds(3600)])
        _ = exporter.render()
        #expect(requests.withLock { $0 } == 0)
        // A fire that logged nothing (queued behind a run): the plan shown has passed.
        exporter.endStep(nextFires: ["a": now - .seconds(60)])
        _ = exporter.render()
        #expect(requests.withLock { $0 } == 1)
    }

    @Test func stopCountsAFailureNoRetryFollowed() throws {
        let dir = metricsTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/sundial.prom"
        let exporter = try MetricsExporter(filePath: path, listen: nil, version: "1", writeInterval: .seconds(3600))
        try exporter.start()
        exporter.observe(
            .runFinished(
                .init(
                    job: "backup", runID: RunID(rawValue: "R1"), attempt: 1, outcome: .failure(exitCode: 1), exitCode: 1, signal: nil, durationMs: 5,
                    at: Instant(unixSeconds: 10))))
        exporter.stop()
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(text.contains("sundial_runs_finished_total{job_name=\"backup\",outcome=\"failure\"} 1\n"))
    }

    @Test func requestHeadParsing() {
        #expect(HTTPRequestHead.parse(Array("GET /metrics HTTP/1.1\r\n".utf8), limit: 100) == .incomplete)
        #expect(HTTPRequestHead.parse(Array("GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n".utf8), limit: 100) == .request(method: "GET", target: "/metrics"))
        #expect(HTTPRequestHead.parse(Array("GET /metrics HTTP/1.0\n\n".utf8), limit: 100) == .request(method: "GET", target: "/metrics"))
        #expect(HTTPRequestHead.parse(Array("GET metrics HTTP/1.1\r\n\r\n".utf8), limit: 100) == .invalid(status: 400, reason: "Bad Request"))
        #expect(HTTPRequestHead.parse(Array("GET /metrics HTTP/2\r\n\r\n".utf8), limit: 100) == .invalid(status: 400, reason: "Bad Request"))
        #expect(
            HTTPRequestHead.parse(Array(repeating: UInt8(ascii: "a"), count: 100), limit: 100)
                == .invalid(status: 431, reason: "Request Header Fields Too Large"))
    }
}

fileprivate final class ErrorLog: @unchecked Sendable {  // guarded by `lock`
    private let lock = NSLock()
    private var _messages: [String] = []
    func append(_ m: String) {
        lock.lock()
        _messages.append(m)
        lock.unlock()
    }
    var messages: [String] {
        lock.lock()
        defer { lock.unlock() }
        return _messages
    }
}
