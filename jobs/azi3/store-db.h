/* SPDX-License-Identifier: MIT */
#pragma once

/* Inside the azi3 store: the small database interface store.c's queries are written against,
 * with two drivers, store-sqlite.c (a file) and store-pg.c (PostgreSQL through libpq). Not for
 * use outside jobs/azi3/store*.c.
 *
 * SQL handed to store_prepare() is the common subset of both dialects, with SQLite's
 * placeholders: `?` (the next parameter) or `?N` (parameter N again); the PostgreSQL driver
 * rewrites them to `$N`. A statement runs on its first store_step()/store_run(). */

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include "store.h"

typedef enum store_backend {
        STORE_BACKEND_SQLITE,
        STORE_BACKEND_PG,
} store_backend;

typedef struct store_stmt store_stmt;

struct azi3_store {
        store_backend backend;
        void *db;          /* sqlite3 * or PGconn * */
        char *path;        /* the file, or the connection string (never holds a password) */
        usec_t busy_timeout;
        usec_t busy_waited;
        struct store_sqlite_cache *sqlite_cache; /* SQLite: prepared statements kept for reuse */
        /* Batched commits (azi3_store_batch_begin(), SQLite only): BATCH_OPEN while the outer
         * transaction is open, BATCH_TX while the caller's own transaction is a savepoint in it,
         * BATCH_LOST once SQLite rolled the outer transaction back by itself after an error. */
        bool batching, batch_open, batch_tx, batch_lost;
        char error[1024];
};

/* Parameter kinds for store_prepare()'s FMT, one character each:
 *   'i' int64_t       'z' int64_t, NULL when 0
 *   'u' usec_t        'Z' usec_t, NULL when 0
 *   't' const char *  (NULL binds NULL) */
int store_prepare(azi3_store *s, store_stmt **ret, const char *sql, const char *fmt, ...);
store_stmt *store_stmt_free(store_stmt *st);
DEFINE_TRIVIAL_CLEANUP_FUNC(store_stmt *, store_stmt_free);

/* Returns 1 with a row, 0 when done; WHAT names the step in the error. */
int store_step(azi3_store *s, store_stmt *st, const char *what);
/* Runs a statement that returns no rows; returns the number of rows changed. */
int store_run(azi3_store *s, store_stmt *st, const char *what);

bool store_col_null(store_stmt *st, int i);
int64_t store_col_int64(store_stmt *st, int i);  /* 0 for NULL */
const char *store_col_text(store_stmt *st, int i); /* NULL for NULL */

/* Runs SQL without parameters or rows (several statements allowed). */
int store_exec(azi3_store *s, const char *sql, const char *what);

/* Formats the last error into s->error, prefixed with the store's name; returns R. */
_printf_(3, 4) int store_fail(azi3_store *s, int r, const char *fmt, ...);

/* Driver entry points, one set per backend. */
int store_sqlite_open(azi3_store *s);
int store_sqlite_prepare(azi3_store *s, store_stmt **ret, const char *sql, const char *fmt, va_list ap);
int store_sqlite_exec(azi3_store *s, const char *sql, const char *what);
bool store_sqlite_in_transaction(azi3_store *s);
int store_sqlite_begin(azi3_store *s);
int store_sqlite_schema_version(azi3_store *s, int *ret);
int store_sqlite_set_busy_timeout(azi3_store *s, unsigned msec);
void store_sqlite_close(azi3_store *s);
int store_sqlite_step(azi3_store *s, store_stmt *st, const char *what);
int store_sqlite_changes(azi3_store *s);
bool store_sqlite_col_null(store_stmt *st, int i);
int64_t store_sqlite_col_int64(store_stmt *st, int i);
const char *store_sqlite_col_text(store_stmt *st, int i);
void store_sqlite_stmt_free(store_stmt *st);
/* How many prepared statements the connection keeps for reuse (for tests). */
unsigned store_sqlite_cached_count(azi3_store *s);

int store_pg_open(azi3_store *s);
int store_pg_prepare(azi3_store *s, store_stmt **ret, const char *sql, const char *fmt, va_list ap);
int store_pg_exec(azi3_store *s, const char *sql, const char *what);
bool store_pg_in_transaction(azi3_store *s);
int store_pg_begin(azi3_store *s);
int store_pg_schema_version(azi3_store *s, int *ret);
int store_pg_set_busy_timeout(azi3_store *s, unsigned msec);
void store_pg_close(azi3_store *s);
int store_pg_step(azi3_store *s, store_stmt *st, const char *what);
void store_pg_stmt_free(store_stmt *st);
bool store_pg_col_null(store_stmt *st, int i);
int64_t store_pg_col_int64(store_stmt *st, int i);
const char *store_pg_col_text(store_stmt *st, int i);

/* The statement object both drivers fill: one of the two halves is used. */
struct store_stmt {
        store_backend backend;
        void *sqlite;          /* sqlite3_stmt * */
        struct store_sqlite_cached *cached; /* its cache entry, reset instead of finalized; or NULL */
        /* PostgreSQL: the statement and its parameters until it runs, then its result */
        char *sql;
        int n_params;
        char **values;
        unsigned *types;
        void *result;          /* PGresult * */
        int row, n_rows;
        int changes;
};

static inline int usec_to_i64(usec_t u, int64_t *ret) {
        if (u > (usec_t) INT64_MAX)
                return -ERANGE;
        *ret = (int64_t) u;
        return 0;
}
