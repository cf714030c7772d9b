/* libpq through dlopen: see include/sundial_pq.h for why. The prototypes come from libpq's own
 * header (libpq-dev at build time), so a mismatch is a compile error, not a crash. */
#include "sundial_pq.h"
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <postgresql/libpq-fe.h>

static struct {
    __typeof__(&PQconnectdbParams) connectdbParams;
    __typeof__(&PQstatus) status;
    __typeof__(&PQerrorMessage) errorMessage;
    __typeof__(&PQfinish) finish;
    __typeof__(&PQbackendPID) backendPID;
    __typeof__(&PQexecParams) execParams;
    __typeof__(&PQresultStatus) resultStatus;
    __typeof__(&PQresultErrorMessage) resultErrorMessage;
    __typeof__(&PQresultErrorField) resultErrorField;
    __typeof__(&PQntuples) ntuples;
    __typeof__(&PQnfields) nfields;
    __typeof__(&PQgetvalue) getvalue;
    __typeof__(&PQgetisnull) getisnull;
    __typeof__(&PQclear) clear;
} pq;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int load_status = -1;
static char load_error[256];

static void load(void) {
    void *h = dlopen("libpq.so.5", RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        const char *e = dlerror();
        snprintf(load_error, sizeof load_error, "cannot load libpq.so.5 (apt-get install libpq5): %s", e ? e : "unknown error");
        return;
    }
#define SYM(field, name)                                                                           \
    do {                                                                                           \
        *(void **)(&pq.field) = dlsym(h, name);                                                    \
        if (pq.field == NULL) {                                                                    \
            snprintf(load_error, sizeof load_error, "libpq.so.5 lacks %s", name);                  \
            return;                                                                                \
        }                                                                                          \
    } while (0)
    SYM(connectdbParams, "PQconnectdbParams");
    SYM(status, "PQstatus");
    SYM(errorMessage, "PQerrorMessage");
    SYM(finish, "PQfinish");
    SYM(backendPID, "PQbackendPID");
    SYM(execParams, "PQexecParams");
    SYM(resultStatus, "PQresultStatus");
    SYM(resultErrorMessage, "PQresultErrorMessage");
    SYM(resultErrorField, "PQresultErrorField");
    SYM(ntuples, "PQntuples");
    SYM(nfields, "PQnfields");
    SYM(getvalue, "PQgetvalue");
    SYM(getisnull, "PQgetisnull");
    SYM(clear, "PQclear");
#undef SYM
    load_status = 0;
}

int sundial_pq_load(char *err, size_t errlen) {
    pthread_once(&once, load);
    if (load_status != 0 && err != NULL && errlen > 0) snprintf(err, errlen, "%s", load_error);
    return load_status;
}

int sundial_pq_loaded(void) { return load_status == 0; }

void *sundial_pq_connect(const char *const *keywords, const char *const *values) {
    return pq.connectdbParams(keywords, values, 1);
}

int sundial_pq_ok(void *conn) { return conn != NULL && pq.status((PGconn *)conn) == CONNECTION_OK; }

const char *sundial_pq_conn_error(void *conn) { return conn ? pq.errorMessage((PGconn *)conn) : "out of memory"; }

void sundial_pq_finish(void *conn) {
    if (conn) pq.finish((PGconn *)conn);
}

int sundial_pq_backend_pid(void *conn) { return conn ? pq.backendPID((PGconn *)conn) : 0; }

void *sundial_pq_exec(void *conn, const char *sql, int nparams, const char *const *values) {
    return pq.execParams((PGconn *)conn, sql, nparams, NULL, values, NULL, NULL, 0);
}

int sundial_pq_result_kind(void *res) {
    if (res == NULL) return -1;
    switch (pq.resultStatus((PGresult *)res)) {
    case PGRES_COMMAND_OK: return 0;
    case PGRES_TUPLES_OK: return 1;
    default: return -1;
    }
}

const char *sundial_pq_result_error(void *res) { return res ? pq.resultErrorMessage((PGresult *)res) : "out of memory"; }

const char *sundial_pq_result_sqlstate(void *res) { return res ? pq.resultErrorField((PGresult *)res, PG_DIAG_SQLSTATE) : NULL; }

int sundial_pq_ntuples(void *res) { return pq.ntuples((PGresult *)res); }

int sundial_pq_nfields(void *res) { return pq.nfields((PGresult *)res); }

const char *sundial_pq_value(void *res, int row, int col) {
    if (pq.getisnull((PGresult *)res, row, col)) return NULL;
    return pq.getvalue((PGresult *)res, row, col);
}

void sundial_pq_clear(void *res) {
    if (res) pq.clear((PGresult *)res);
}
