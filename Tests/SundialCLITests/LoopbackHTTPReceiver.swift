import CSundialShim
import Foundation
import Glibc
import Synchronization

/// A tiny HTTP/1.1 receiver on 127.0.0.1 for the notification tests: an accept loop on its own
/// thread that reads one request per connection (headers, then `Content-Length` bytes), keeps
/// it, and answers with the next status of `statuses` (the last one repeats).
final class LoopbackHTTPReceiver: Sendable {
    struct Request: Sendable {
        var requestLine: String
        var headers: [String: String]  // lower-cased names
        var body: [UInt8]
    }

    let port: UInt16
    private let fd: Int32
    private let received = Mutex<[Request]>([])
    private let statuses: Mutex<[Int]>
    private let stopped = Atomic<Bool>(false)

    /// `port` 0: one the kernel picks; another: that one (a test's receiver coming back).
    init(statuses: [Int], port wanted: UInt16 = 0) throws {
        self.statuses = Mutex(statuses)
        let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var one: Int32 = 1
        setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = wanted.bigEndian
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(s, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(s, 16) == 0 else { throw CocoaError(.fileWriteUnknown) }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(s, $0, &len) } }
        fd = s
        port = UInt16(bigEndian: addr.sin_port)
        let thread = Thread { [self] in acceptLoop() }
        thread.start()
    }

    var requests: [Request] { received.withLock { $0 } }

    func stop() {
        stopped.store(true, ordering: .sequentiallyConsistent)
        shutdown(fd, Int32(SHUT_RDWR))
        close(fd)
    }

    private func acceptLoop() {
        while !stopped.load(ordering: .sequentiallyConsistent) {
            let c = accept(fd, nil, nil)
            guard c >= 0 else { if errno == EINTR { continue } else { return } }
            var tv = timeval(tv_sec: 5, tv_usec: 0)
            setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            if let r = readRequest(c) {
                received.withLock { $0.append(r) }
                let status = statuses.withLock { s in s.count > 1 ? s.removeFirst() : (s.first ?? 204) }
                let answer = "HTTP/1.1 \(status) X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                _ = answer.withCString { send(c, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
            }
            close(c)
        }
    }

    private func readRequest(_ c: Int32) -> Request? {
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        var headerEnd: Int?
        var expected = Int.max
        while data.count < 1 << 20 {
            if let h = headerEnd, data.count >= h + expected { break }
            let n = recv(c, &buffer, buffer.count, 0)
            guard n > 0 else { break }
            data += buffer[0..<n]
            if headerEnd == nil,
                let r = data.indices.dropLast(3).first(where: { data[$0] == 13 && data[$0 + 1] == 10 && data[$0 + 2] == 13 && data[$0 + 3] == 10 })
            {
                headerEnd = r + 4
                let head = String(decoding: data[0..<r], as: UTF8.self)
                expected =
                    head.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
                    .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) } ?? 0
            }
        }
        guard let h = headerEnd else { return nil }
        let lines = String(decoding: data[0..<(h - 4)], as: UTF8.self).components(separatedBy: "\r\n")
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return Request(requestLine: lines[0], headers: headers, body: Array(data[h...]))
    }
}
