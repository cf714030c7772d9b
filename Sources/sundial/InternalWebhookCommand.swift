import ArgumentParser
import SundialRuntime

#if canImport(Glibc)
import Glibc
#endif

/// `sundial internal-webhook`: one webhook POST, run by the agent as a child process.
///
/// Not for people (hidden from help): the agent (``WebhookDelivery``) starts it with resource
/// limits for each attempt of a `webhook:` notification, writes the request to its standard
/// input (``WebhookWire``) and kills it at the entry's timeout. It loads libcurl — only here,
/// never in the agent — posts, and writes one answer line to standard output.
struct InternalWebhookCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "internal-webhook",
        abstract: "Deliver one webhook for the agent (used by `sundial run`).",
        shouldDisplay: false)

    func run() throws {
        // Bounded: one byte past the limit is enough to refuse.
        var input: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while input.count <= WebhookWire.maxRequestBytes {
            let n = buffer.withUnsafeMutableBytes { read(0, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw ExitCode(3)
            }
            if n == 0 { break }
            input += buffer[0..<n]
        }
        let answer: WebhookWire.Answer
        do throws(WebhookWire.DecodeError) {
            answer = WebhookTransfer.perform(try WebhookWire.decode(input))
        } catch {
            answer = .failed("bad request from the agent: \(error.description)")
        }
        let bytes = WebhookWire.encode(answer)
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { write(1, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw ExitCode(3)
            }
            offset += n
        }
    }
}
