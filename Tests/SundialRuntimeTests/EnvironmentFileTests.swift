import Foundation
import SundialTesting
import Testing

@testable import SundialRuntime

@Suite(.offPool) struct EnvironmentFileTests {
    @Test func parsesTheCommonSyntax() throws {
        let text = """
            # a comment
              
            PLAIN=hello world  
            export EXPORTED=1
            EMPTY=
            SINGLE='it is $HOME \\n'
            DOUBLE="a \\"quoted\\" \\$x\\n" # trailing comment
            SPACED = value
            URL=http://x/?a=b#frag
            PLAIN=again
            """
        let pairs = try EnvironmentFile.parse(text, path: "f.env")
        let env = Dictionary(pairs.map { ($0.key, $0.value) }, uniquingKeysWith: { _, b in b })
        #expect(env["PLAIN"] == "again")
        #expect(env["EXPORTED"] == "1")
        #expect(env["EMPTY"] == "")
        #expect(env["SINGLE"] == "it is $HOME \\n")
        #expect(env["DOUBLE"] == "a \"quoted\" $x\n")
        #expect(env["SPACED"] == "value")
        #expect(env["URL"] == "http://x/?a=b#frag")
        #expect(pairs.count == 8)
    }

    /// A file saved with CRLF line ends reads as with LF. "\r\n" is one `Character` in Swift:
    /// a split on "\n" had read the file as one line, so the first value carried every later
    /// line (secrets included) and the other variables were never set.
    @Test func crlfLineEndsReadLikeLF() throws {
        let pairs = try EnvironmentFile.parse("# settings\r\nA=1\r\nexport B='two'\r\n\r\nC=\"x y\"  \r\n", path: "f.env")
        #expect(pairs.map(\.key) == ["A", "B", "C"])
        #expect(pairs.map(\.value) == ["1", "two", "x y"])
        #expect(throws: LaunchError.self) { try EnvironmentFile.parse("A=1\r\nnot a pair\r\n", path: "f.env") }
        do { _ = try EnvironmentFile.parse("A=1\r\nnot a pair\r\n", path: "f.env") } catch {
            #expect(error.message == "env_file f.env:2: expected KEY=VALUE")
        }
    }

    @Test func singleQuotesAreLiteral() throws {
        let pairs = try EnvironmentFile.parse("K='$HOME \\n'", path: "f")
        #expect(pairs.first?.value == "$HOME \\n")
    }

    @Test(arguments: [
        ("NOEQUALS", "f.env:1: expected KEY=VALUE"),
        ("1BAD=x", "f.env:1: the text before the first `=` (4 characters) is not a variable name"),
        ("\nK=\"open", "f.env:2: unterminated double quote"),
        ("K='a' b", "f.env:1: unexpected text after the closing quote"),
    ])
    func errorsHaveFileAndLine(text: String, message: String) {
        #expect {
            _ = try EnvironmentFile.parse(text, path: "f.env")
        } throws: { error in
            guard let e = error as? LaunchError else { return false }
            return e.code == .envFile && e.message.hasPrefix("env_file " + message)
        }
    }

    /// A line that is a bare secret (a connection string, a base64 token ending in `=`) was
    /// quoted up to its `=` in the reason, which is logged, stored and sent to notifications.
    @Test func aMalformedLineIsNotQuoted() {
        for line in ["postgres://app:Hunter2Secret@db.internal/app?sslmode=require", "4f9a8bNGY5SHVudGVyMg=="] {
            do {
                _ = try EnvironmentFile.parse("OK=1\n\(line)\n", path: "f.env")
                Issue.record("accepted \(line)")
            } catch {
                #expect(!error.message.contains("Hunter2") && !error.message.contains("NGY5"), "\(error.message)")
                #expect(error.message.hasPrefix("env_file f.env:2: "))
            }
        }
    }

    @Test func refusesAGroupReadableFileWithSecrets() throws {
        let dir = try temporaryDirectory()
        let path = dir + "/secrets.env"
        try TestFile.write("TOKEN=s3cr3t\n", to: path, mode: 0o644)
        #expect(throws: LaunchError.self) { _ = try EnvironmentFile.load(path: path, requirePrivate: true) }
        do {
            _ = try EnvironmentFile.load(path: path, requirePrivate: true)
        } catch {
            #expect(error.code == .insecureEnvFile)
            #expect(error.message.contains("chmod 600 \(path)"))
            #expect(error.message.contains("0644"))
        }
        // Without secrets, the same file is fine; private, it is fine with secrets.
        #expect(try EnvironmentFile.load(path: path, requirePrivate: false).first?.value == "s3cr3t")
        chmod(path, 0o600)
        #expect(try EnvironmentFile.load(path: path, requirePrivate: true).first?.value == "s3cr3t")
    }

    @Test func missingFileIsAClearError() {
        do {
            _ = try EnvironmentFile.load(path: "/nonexistent/x.env", requirePrivate: false)
            Issue.record("expected an error")
        } catch {
            #expect(error.message == "env_file /nonexistent/x.env: cannot open: No such file or directory")
        }
    }
}
