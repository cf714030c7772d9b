#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>
#include "sundial_webhook_curl.h"

// libcurl's few declarations this file needs, written out here rather than taken from
// <curl/curl.h>: libcurl is loaded with dlopen (the agent never maps it; only the short-lived
// webhook child does), so nothing links against it and building needs no libcurl4-openssl-dev.
// The values are part of libcurl's stable ABI (soname libcurl.so.4, unchanged since 2006): see
// curl.h's CURLOPTTYPE_* arithmetic (LONG 0, OBJECTPOINT 10000, FUNCTIONPOINT 20000,
// OFF_T 30000) and CURLINFO_LONG 0x200000.
typedef void CURL;
struct curl_slist;
typedef int CURLcode;
enum {
    CURLOPT_URL = 10002,
    CURLOPT_ERRORBUFFER = 10010,
    CURLOPT_POSTFIELDS = 10015,
    CURLOPT_HTTPHEADER = 10023,
    CURLOPT_CAINFO = 10065,
    CURLOPT_WRITEFUNCTION = 20011,
    CURLOPT_POST = 47,
    CURLOPT_FOLLOWLOCATION = 52,
    CURLOPT_SSL_VERIFYPEER = 64,
    CURLOPT_SSL_VERIFYHOST = 81,
    CURLOPT_NOSIGNAL = 99,
    CURLOPT_TIMEOUT_MS = 155,
    CURLOPT_CONNECTTIMEOUT_MS = 156,
    CURLOPT_PROTOCOLS = 181,  // deprecated in 7.85 for CURLOPT_PROTOCOLS_STR, still honoured; 7.81 (Ubuntu 22.04) lacks the new one
    CURLOPT_REDIR_PROTOCOLS = 182,
    CURLOPT_POSTFIELDSIZE_LARGE = 30120,
    CURLINFO_RESPONSE_CODE = 0x200002,
    CURLPROTO_HTTP = 1,
    CURLPROTO_HTTPS = 2,
    CURL_GLOBAL_DEFAULT = 3,
    CURL_ERROR_SIZE = 256,
};

struct curl_api {
    CURLcode (*global_init)(long);
    CURL *(*easy_init)(void);
    CURLcode (*easy_setopt)(CURL *, int, ...);
    CURLcode (*easy_perform)(CURL *);
    CURLcode (*easy_getinfo)(CURL *, int, ...);
    const char *(*easy_strerror)(CURLcode);
    void (*easy_cleanup)(CURL *);
    struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
    void (*slist_free_all)(struct curl_slist *);
};

static int load(const char *library, struct curl_api *api, char *message, size_t size) {
    void *lib = dlopen(library, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        snprintf(message, size, "%s", dlerror());
        return 0;
    }
    struct { void **slot; const char *name; } symbols[] = {
        {(void **)&api->global_init, "curl_global_init"},   {(void **)&api->easy_init, "curl_easy_init"},
        {(void **)&api->easy_setopt, "curl_easy_setopt"},   {(void **)&api->easy_perform, "curl_easy_perform"},
        {(void **)&api->easy_getinfo, "curl_easy_getinfo"}, {(void **)&api->easy_strerror, "curl_easy_strerror"},
        {(void **)&api->easy_cleanup, "curl_easy_cleanup"}, {(void **)&api->slist_append, "curl_slist_append"},
        {(void **)&api->slist_free_all, "curl_slist_free_all"},
    };
    for (size_t i = 0; i < sizeof symbols / sizeof symbols[0]; i++) {
        *symbols[i].slot = dlsym(lib, symbols[i].name);
        if (!*symbols[i].slot) {
            snprintf(message, size, "%s lacks %s", library, symbols[i].name);
            return 0;
        }
    }
    return 1;
}

/// The answer's body: counted and dropped (the status is all that matters, and it must not
/// reach standard output, where curl writes by default).
static size_t discard(char *data, size_t size, size_t count, void *user) {
    (void)data;
    (void)user;
    return size * count;
}

int sundial_webhook_post(const char *library, const char *url, char *const headers[], size_t count, const void *body,
                         size_t body_length, const char *ca_file, long timeout_ms, struct sundial_webhook_result *result) {
    result->status = 0;
    result->message[0] = 0;
    struct curl_api api;
    if (!load(library, &api, result->message, sizeof result->message)) return SUNDIAL_WEBHOOK_NO_LIBRARY;
    if (api.global_init(CURL_GLOBAL_DEFAULT) != 0) {
        snprintf(result->message, sizeof result->message, "libcurl: curl_global_init failed");
        return SUNDIAL_WEBHOOK_FAILED;
    }
    CURL *curl = api.easy_init();
    if (!curl) {
        snprintf(result->message, sizeof result->message, "libcurl: curl_easy_init failed");
        return SUNDIAL_WEBHOOK_FAILED;
    }
    struct curl_slist *list = NULL;
    for (size_t i = 0; i < count; i++) {
        struct curl_slist *next = api.slist_append(list, headers[i]);
        if (!next) break;
        list = next;
    }
    // An empty `Expect:` stops curl from waiting for a "100 Continue" on larger bodies (many
    // receivers never send one, and the wait would eat the timeout).
    struct curl_slist *next = api.slist_append(list, "Expect:");
    if (next) list = next;
    char error[CURL_ERROR_SIZE] = {0};
    api.easy_setopt(curl, CURLOPT_URL, url);
    api.easy_setopt(curl, CURLOPT_ERRORBUFFER, error);
    api.easy_setopt(curl, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
    api.easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
    api.easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
    api.easy_setopt(curl, CURLOPT_POST, 1L);
    api.easy_setopt(curl, CURLOPT_POSTFIELDS, body);
    api.easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (long long)body_length);
    api.easy_setopt(curl, CURLOPT_HTTPHEADER, list);
    api.easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard);
    api.easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
    api.easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
    if (ca_file) api.easy_setopt(curl, CURLOPT_CAINFO, ca_file);
    // No signals: the threaded resolver is bounded by the timeout without SIGALRM.
    api.easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    api.easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout_ms);
    api.easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
    CURLcode rc = api.easy_perform(curl);
    int outcome = SUNDIAL_WEBHOOK_ANSWERED;
    if (rc == 0) {
        api.easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &result->status);
    } else {
        outcome = SUNDIAL_WEBHOOK_FAILED;
        snprintf(result->message, sizeof result->message, "%s", error[0] ? error : api.easy_strerror(rc));
    }
    api.slist_free_all(list);
    api.easy_cleanup(curl);
    return outcome;
}
