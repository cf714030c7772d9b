#ifndef SUNDIAL_WEBHOOK_CURL_H
#define SUNDIAL_WEBHOOK_CURL_H
#include <stddef.h>

/// How `sundial_webhook_post` ended (its return value).
#define SUNDIAL_WEBHOOK_ANSWERED 0   ///< the server answered: `status` is its HTTP status
#define SUNDIAL_WEBHOOK_NO_LIBRARY 1 ///< libcurl could not be loaded: `message` is dlerror()'s text
#define SUNDIAL_WEBHOOK_FAILED 2     ///< no answer (resolve, connect, TLS, timeout): `message` says why

struct sundial_webhook_result {
    long status;
    char message[512];
};

/// POSTs `body` to `url` (http:// or https://) with libcurl, loaded here with dlopen(`library`,
/// "libcurl.so.4" but for a test): TLS verified against the system CA store, or `ca_file` (a PEM bundle)
/// when not NULL, the host name checked, proxies taken from the environment (`https_proxy`,
/// `no_proxy`), no redirects followed, only http and https, everything (name resolution
/// included) within `timeout_ms`. `headers`: `count` complete "Name: value" lines. The answer's
/// body is read and dropped (at most what arrives before the timeout).
///
/// Meant for the short-lived `sundial internal-webhook` child only: it maps libcurl and its TLS
/// library into the calling process for good (they are never dlclose'd).
int sundial_webhook_post(const char *library, const char *url, char *const headers[], size_t count, const void *body,
                         size_t body_length, const char *ca_file, long timeout_ms, struct sundial_webhook_result *result);

#endif
