import Foundation
import SundialRuntime
import SundialTesting
import Testing

/// The fleet's password never shows: in the URL as logged, in connection errors.
@Suite("PostgresSettings", .offPool)
struct PostgresSettingsTests {
    @Test func theURLPasswordIsMaskedAsWrittenAndDecoded() {
        let s = PostgresSettings(url: "postgresql://sundial:s%40cr3t@db.example:5432/fleet?sslmode=require")
        #expect(s.maskedURL == "postgresql://sundial:***@db.example:5432/fleet?sslmode=require")
        #expect(s.masked("auth failed for s@cr3t and s%40cr3t") == "auth failed for *** and ***")
    }

    @Test func aQueryOrKeywordPasswordAndTheFilePasswordAreMasked() {
        #expect(PostgresSettings(url: "postgres://u@h/db?password=hunter2&x=1").maskedURL == "postgres://u@h/db?password=***&x=1")
        #expect(PostgresSettings(url: "host=h password=hunter2 dbname=d").maskedURL == "host=h password=*** dbname=d")
        #expect(PostgresSettings(url: "host=h password = 'two words' dbname=d").maskedURL == "host=h password = '***' dbname=d")
        let f = PostgresSettings(url: "postgresql://u@h/d", password: "fromfile")
        #expect(f.masked("x fromfile y") == "x *** y")
        #expect(PostgresSettings(url: "postgresql://u@h/d").maskedURL == "postgresql://u@h/d")
    }

    @Test func aConnectionErrorNamesTheMaskedURLOnly() throws {
        // Port 1 on loopback: refused at once.
        var s = PostgresSettings(url: "postgresql://sundial:topsecret@127.0.0.1:1/fleet", password: "filesecret")
        s.connectTimeoutSeconds = 2
        let c = PostgresConnection(settings: s)
        do {
            try c.query("SELECT 1")
            Issue.record("connected to port 1?")
        } catch {
            #expect(error.connectionLost)
            #expect(error.message.contains("postgresql://sundial:***@127.0.0.1:1/fleet"))
            #expect(!error.message.contains("topsecret") && !error.message.contains("filesecret"))
        }
        // Within the backoff the next call fails at once, saying when it tries again.
        do { try c.query("SELECT 1") } catch {
            #expect(error.message.contains("next attempt in"))
            #expect(!error.message.contains("topsecret"))
        }
    }

    @Test func thePasswordFileGivesItsFirstLineAndBadFilesAClearError() throws {
        let dir = TempDir("pw")
        defer { dir.remove() }
        try "s3cret\nignored\n".write(toFile: dir.path + "/pw", atomically: true, encoding: .utf8)
        #expect(try PostgresSettings.readPasswordFile(dir.path + "/pw") == "s3cret")
        try "\n".write(toFile: dir.path + "/empty", atomically: true, encoding: .utf8)
        #expect(throws: FleetSettingsError.self) { try PostgresSettings.readPasswordFile(dir.path + "/empty") }
        do { _ = try PostgresSettings.readPasswordFile(dir.path + "/missing") } catch {
            #expect(error.message.contains(dir.path + "/missing"))
        }
    }
}
