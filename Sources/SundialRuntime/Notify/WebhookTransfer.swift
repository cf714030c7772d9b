import CSundialShim

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The webhook child's one POST (`sundial internal-webhook`): libcurl, loaded here with dlopen,
/// does the HTTP and the TLS (see docs/decisions.md, "Webhooks over https").
///
/// Only ever run in the short-lived child: loading libcurl maps it and its TLS library for the
/// rest of the process, which the agent must not carry (memory, and a remote server's
/// handshake and answer parsed in the agent's address space).
public enum WebhookTransfer {
    /// libcurl's soname: Debian's `libcurl4` (OpenSSL flavour).
    public static let library = "libcurl.so.4"

    /// Performs `request`. `library`: another soname, for the test of a missing library.
    public static func perform(_ request: WebhookWire.Request, library: String = WebhookTransfer.library) -> WebhookWire.Answer {
        if let ca = request.caFile, access(ca, R_OK) != 0 {
            return .failed("ca_file \(ca): \(FileSystem.errnoString())")
        }
        // CURLOPT_NOSIGNAL (set for the threaded resolver) leaves SIGPIPE to the caller: a
        // receiver closing the connection mid-send must be a reason, not this process's death.
        sundial_ignore_sigpipe()
        var result = sundial_webhook_result()
        let headers = CStringArray(request.headers)
        let outcome = request.body.withUnsafeBytes { body in
            sundial_webhook_post(
                library, request.url, headers.pointer, request.headers.count, body.baseAddress, body.count,
                request.caFile, Int(request.timeoutMs), &result)
        }
        let message = withUnsafeBytes(of: &result.message) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        switch outcome {
        case 0: return .status(Int(result.status))  // SUNDIAL_WEBHOOK_ANSWERED
        case 1: return .noLibrary(message)  // SUNDIAL_WEBHOOK_NO_LIBRARY
        default: return .failed(message)
        }
    }
}
