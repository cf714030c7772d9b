#ifndef SUNDIAL_PQ_H
#define SUNDIAL_PQ_H
/*
 * The few libpq calls the fleet uses, through a table filled by dlopen("libpq.so.5") + dlsym
 * the first time `--fleet` needs them (docs/decisions.md, "The fleet's PostgreSQL client").
 *
 * Why not link libpq: it pulls libssl, libcrypto, Kerberos and LDAP, whose relocations cost
 * private memory at every start of every agent, fleet or not. Loaded on demand, an agent without
 * --fleet maps none of it. Connections and results are opaque pointers (PGconn*, PGresult*).
 */
#include <stddef.h>

/* Loads libpq once (thread-safe). 0 on success; otherwise -1 and a message in err. */
int sundial_pq_load(char *err, size_t errlen);
/* 1 when libpq has been loaded in this process. */
int sundial_pq_loaded(void);

/* PQconnectdbParams(keywords, values, expand_dbname = 1). NULL only when out of memory; check
 * sundial_pq_ok. keywords and values end with a NULL entry. */
void *sundial_pq_connect(const char *const *keywords, const char *const *values);
int sundial_pq_ok(void *conn);
const char *sundial_pq_conn_error(void *conn);
void sundial_pq_finish(void *conn);
/* The server's PID for this connection (tests end it with pg_terminate_backend). */
int sundial_pq_backend_pid(void *conn);

/* PQexecParams with text parameters and text results; NULL when out of memory. */
void *sundial_pq_exec(void *conn, const char *sql, int nparams, const char *const *values);
/* 0: command ok, 1: rows, -1: error. */
int sundial_pq_result_kind(void *res);
const char *sundial_pq_result_error(void *res);
/* The SQLSTATE, or NULL. */
const char *sundial_pq_result_sqlstate(void *res);
int sundial_pq_ntuples(void *res);
int sundial_pq_nfields(void *res);
/* The value, or NULL for SQL NULL. */
const char *sundial_pq_value(void *res, int row, int col);
void sundial_pq_clear(void *res);

#endif
