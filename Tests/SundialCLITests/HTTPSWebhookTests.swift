import Foundation
import Glibc
import SundialCore
import SundialRuntime
import SundialTesting
import Testing

/// Issue 17: `https://` webhooks through the real binary, against a real TLS receiver on
/// loopback whose certificate is signed by a CA made here with `openssl` (python3's `ssl`
/// serves it). Each delivery is a `sundial internal-webhook` child with libcurl; the agent
/// itself must never map libcurl nor a TLS library.
@Suite(.serialized, .timeLimit(.minutes(2)), .offPool) struct HTTPSWebhookTests {
    /// A CA, and a server certificate for `localhost` only (not 127.0.0.1), signed by it.
    static func makeCertificates(in dir: String) async throws {
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        try "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
            .write(toFile: dir + "/server.ext", atomically: true, encoding: .utf8)
        for args in [
            ["req", "-x509"] + ec + [
                "-keyout", dir + "/ca.key", "-out", dir + "/ca.pem", "-days", "2", "-subj", "/CN=Sundial Test CA",
                "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign",
            ],
            ["req"] + ec + ["-keyout", dir + "/server.key", "-out", dir + "/server.csr", "-subj", "/CN=localhost"],
            [
                "x509", "-req", "-in", dir + "/server.csr", "-CA", dir + "/ca.pem", "-CAkey", dir + "/ca.key", "-CAcreateserial",
                "-out", dir + "/server.pem", "-days", "2", "-extfile", dir + "/server.ext",
            ],
        ] {
            let r = try await CLI.runTool("/usr/bin/openssl", args, timeout: 30)
            try #require(r.status == 0, "openssl \(args.joined(separator: " ")): \(r.stderr)")
        }
    }

    /// The receiver: POSTs answered 204 and logged as JSON lines; and a "black hole" port that
    /// completes TCP connections (the kernel's backlog) but never says a word of TLS.
    static let receiverScript = #"""
        import http.server, json, os, socket, ssl, sys
        directory = sys.argv[1]
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with open(os.path.join(directory, "requests.jsonl"), "a") as f:
                    f.write(json.dumps({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                                        "body": body.decode("utf-8")}) + "\n")
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()
            def log_message(self, *args):
                pass
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(os.path.join(directory, "server.pem"), os.path.join(directory, "server.key"))
        server.socket = context.wrap_socket(server.socket, server_side=True)
        hole = socket.socket()
        hole.bind(("127.0.0.1", 0))
        hole.listen(16)
        with open(os.path.join(directory, "ports.tmp"), "w") as f:
            f.write("%d %d" % (server.server_address[1], hole.getsockname()[1]))
        os.rename(os.path.join(directory, "ports.tmp"), os.path.join(directory, "ports"))
        server.serve_forever()
        """#

    @Test func httpsDeliveriesAreVerifiedSignedAndBounded() async throws {
        let root = try CLI.tempDir()
        defer { try? FileManager.default.removeItem(at: root) }
        let dir = root.path
        try await Self.makeCertificates(in: dir)
        try Self.receiverScript.write(toFile: dir + "/receiver.py", atomically: true, encoding: .utf8)
        let receiver = await (try TestRunner.shared()).start(
            LaunchSpec(
                job: "https-receiver", runID: RunID(rawValue: UUID().uuidString), executable: "/usr/bin/python3",
                arguments: ["/usr/bin/python3", dir + "/receiver.py", dir], environment: ["PATH": "/usr/bin:/bin"],
                workdir: dir, timeoutMs: 100_000, killGraceMs: 500)
        ) { _ in }
        defer { if let pid = receiver.pid { kill(pid, SIGKILL) } }
        var ports: [String] = []
        let until = ContinuousClock.now + .seconds(15)
        while ports.count != 2 && ContinuousClock.now < until {
            ports = ((try? String(contentsOfFile: dir + "/ports", encoding: .utf8)) ?? "").split(separator: " ").map(String.init)
            if ports.count != 2 { try await Task.sleep(for: .milliseconds(50)) }
        }
        try #require(ports.count == 2, "the receiver did not start")
        let (port, hole) = (ports[0], ports[1])

        let envFile = dir + "/hook.env"
        try "HOOK_KEY=tls-key\n".write(toFile: envFile, atomically: true, encoding: .utf8)
        chmod(envFile, 0o600)
        let conf = dir + "/jobs.yaml"
        try """
        version: 1
        jobs:
          broken:
            schedule: "@reboot"
            command: [/bin/false]
            env_file: \(envFile)
            notify:
              - on: failure
                webhook:
                  url: https://localhost:\(port)/ok
                  ca_file: \(dir)/ca.pem
                  headers: { Authorization: Bearer t0k }
                  secret_env: HOOK_KEY
                  retries: 0
              - { on: failure, webhook: { url: "https://localhost:\(port)/no-ca", retries: 0 } }
              - { on: failure, webhook: { url: "https://127.0.0.1:\(port)/wrong-name", ca_file: \(dir)/ca.pem, retries: 0 } }
              - { on: failure, webhook: { url: "https://localhost:\(hole)/silent", ca_file: \(dir)/ca.pem, timeout: 1500ms, retries: 0 } }
        """.write(toFile: conf, atomically: true, encoding: .utf8)
        let agent = try await AgentProcess(root: root, config: [conf])
        defer { agent.kill() }
        #expect(try Self.mappedTLSLines(agent.pid) == 0, "the idle agent maps libcurl or libssl")

        try await agent.waitFor("run.finished") { $0.name == "run.finished" }
        func outcome(_ entry: String) async throws -> JSONValue {
            try await agent.waitFor("\(entry)'s outcome", timeout: 20) {
                ($0.name == "notify.sent" || $0.name == "notify.failed") && $0["entry"]?.stringValue == entry
            }
        }
        let ok = try await outcome("notify[0]")
        #expect(ok.name == "notify.sent" && ok["detail"]?.stringValue == "HTTP 204", "\(ok.jsonText)")
        let noCA = try await outcome("notify[1]")
        #expect(noCA.name == "notify.failed", "\(noCA.jsonText)")
        #expect(noCA["reason"]?.stringValue?.contains("SSL certificate problem: unable to get local issuer certificate") == true, "\(noCA.jsonText)")
        #expect(noCA["reason"]?.stringValue?.contains("ca_file") == true, "\(noCA.jsonText)")
        let wrongName = try await outcome("notify[2]")
        #expect(
            wrongName["reason"]?.stringValue?.contains("no alternative certificate subject name matches target host name '127.0.0.1'") == true,
            "\(wrongName.jsonText)")
        // The silent receiver: cut at its 1.5 s, by libcurl's own timeout or the kill.
        let started = ContinuousClock.now
        let silent = try await outcome("notify[3]")
        #expect(ContinuousClock.now - started < .seconds(6))
        let reason = silent["reason"]?.stringValue?.lowercased() ?? ""
        #expect(silent.name == "notify.failed" && (reason.contains("timeout") || reason.contains("timed out")), "\(silent.jsonText)")

        // Only the verified delivery reached the receiver, signed and with its own headers.
        let lines = try String(contentsOfFile: dir + "/requests.jsonl", encoding: .utf8).split(separator: "\n")
        try #require(lines.count == 1, "\(lines)")
        let request = try JSONParser.parse(Array(lines[0].utf8))
        #expect(request["path"]?.stringValue == "/ok")
        let body = Array((request["body"]?.stringValue ?? "").utf8)
        #expect(request["headers"]?["x-sundial-signature"]?.stringValue == HMACSHA256.signature(key: Array("tls-key".utf8), body: body))
        #expect(request["headers"]?["authorization"]?.stringValue == "Bearer t0k")
        #expect(request["headers"]?["content-type"]?.stringValue == "application/json")
        #expect(try JSONParser.parse(body)["job"]?.stringValue == "broken")

        // The deliveries happened in children: the agent still maps neither library.
        #expect(try Self.mappedTLSLines(agent.pid) == 0, "the agent maps libcurl or libssl after its deliveries")
        _ = await agent.stop()
    }

    /// Lines of /proc/PID/maps naming libcurl or libssl.
    static func mappedTLSLines(_ pid: Int32) throws -> Int {
        let maps = try String(contentsOfFile: "/proc/\(pid)/maps", encoding: .utf8)
        return maps.split(separator: "\n").filter { $0.contains("libcurl") || $0.contains("libssl") }.count
    }
}

/// The host-name lookup is bounded too. libcurl's own timeout does not cut it: its threaded
/// resolver is joined when the transfer ends, so a child whose DNS server never answers
/// lingers until glibc gives up (30 s × attempts here). The parent's kill at the deadline is
/// what bounds it. The child runs in a mount namespace (`unshare -m`, root only) whose
/// /etc/resolv.conf names a "DNS server" on 127.0.0.1:53 that this test holds and never
/// answers.
@Suite(.serialized, .timeLimit(.minutes(1)), .offPool) struct HungLookupWebhookTests {
    @Test(.enabled(if: geteuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/unshare"), "needs root and unshare"))
    func aLookupThatNeverAnswersIsCutAtTheTimeout() async throws {
        let root = try CLI.tempDir()
        defer { try? FileManager.default.removeItem(at: root) }
        // The black hole: bound, never read (UDP) nor accepted (TCP: glibc retries over it).
        var sockets: [Int32] = []
        defer { for s in sockets { close(s) } }
        for type in [Int32(SOCK_DGRAM.rawValue), Int32(SOCK_STREAM.rawValue)] {
            let s = socket(AF_INET, type | Int32(SOCK_CLOEXEC.rawValue), 0)
            var one: Int32 = 1
            setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_addr.s_addr = inet_addr("127.0.0.1")
            addr.sin_port = UInt16(53).bigEndian
            let bound = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(s, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            try #require(bound == 0, "127.0.0.1:53 is taken: \(String(cString: strerror(errno)))")
            if type == Int32(SOCK_STREAM.rawValue) { listen(s, 16) }
            sockets.append(s)
        }
        let resolv = root.appendingPathComponent("resolv.conf").path
        try "nameserver 127.0.0.1\noptions timeout:30 attempts:2\n".write(toFile: resolv, atomically: true, encoding: .utf8)
        let probe = try await CLI.runTool(
            "/usr/bin/unshare", ["-m", "/bin/sh", "-c", "mount --bind \(resolv) /etc/resolv.conf && grep -c 127.0.0.1 /etc/resolv.conf"])
        try #require(probe.status == 0 && probe.stdout == "1\n", "unshare -m with a bind mount (CAP_SYS_ADMIN): \(probe.stderr)")

        let spec = WebhookSpec(url: "https://hooks.example.com/x", timeoutMs: 1500)
        let delivery = WebhookDelivery(
            spec: spec,
            command: [
                "/usr/bin/unshare", "-m", "/bin/sh", "-c", "mount --bind \(resolv) /etc/resolv.conf && exec \(CLI.binary.path) internal-webhook",
            ])
        let started = ContinuousClock.now
        let r = delivery.post(body: Array("{}".utf8), signatureKey: nil)
        let elapsed = ContinuousClock.now - started
        #expect(r == .failed(reason: "timed out after 1s500ms (the delivery process was killed)"), "\(r)")
        #expect(elapsed >= .milliseconds(1400) && elapsed < .seconds(4), "\(elapsed)")
    }
}
