/* SPDX-License-Identifier: MIT */
/* The history on PostgreSQL, through libpq: the contract of store/history.h on a server that
 * several daemons share. Each call is one statement where it can be (data-modifying CTEs make
 * "finish the run and count it" one atomic round trip); inside a batch each call is a savepoint,
 * so a failed call undoes only itself, as on SQLite. A lost connection fails the call with
 * -ENOTCONN and is re-established by a later call, with backoff (see history_open_store()). */
#include <assert.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basic/clock.h"
#include "store/history-backend.h"
#include "store/history-pg.h"
#include "store/pg-connect.h"

#define RUN_FAILURE_STATUSES "('failed', 'timed_out', 'crashed', 'interrupted')"
#define RECONNECT_FIRST_MS 1000U
#define PARAMS_MAX 12

/* The statements of every fire and run end, prepared once per connection: planning a
 * data-modifying CTE costs more than running it. */
typedef enum prep_id {
        PREP_NONE = -1,
        PREP_CLAIM,
        PREP_FINISH,
        PREP_SKIP,
        PREP_MISS,
        PREP_SET_PID,
        PREP_SET_START,
        PREP_SET_LAST_SCHEDULED,
        _PREP_MAX,
} prep_id;

/* A run's result not yet durable on the server: kept to be written again (see pending_*). */
typedef struct pending_result {
        int64_t run_id;
        history_result r;               /* message and output owned */
} pending_result;

typedef struct pending_list {
        pending_result *items;
        size_t n, allocated;
} pending_list;

typedef struct pg_history {
        history base;
        char *conninfo;                 /* as configured: validated, without a password */
        PGconn *conn;                   /* NULL while disconnected */
        bool in_batch;
        int batch_lost;                 /* why the open batch ended by itself, or 0 */
        usec_t next_connect;            /* CLOCK_MONOTONIC: no attempt before this */
        unsigned backoff_ms;            /* 0 while connected */
        uint64_t connections;
        uint32_t prepared;              /* bit i: PREP_i is prepared on this connection */
        history_pg_connect_fn connect_hook;
        void *connect_userdata;
        pending_list batch_results;     /* results written in the open batch, not committed */
        pending_list pending;           /* results lost with the connection: written on reconnection */
        uint64_t pending_dropped;
} pg_history;

static const history_ops pg_ops;

static pg_history *pg_of(history *h) {
        return h && h->ops == &pg_ops ? (pg_history *) h : NULL;
}

#define set_error(h, ...) history_set_error(&(h)->base, __VA_ARGS__)

static void pqclearp(PGresult **r) {
        if (*r)
                PQclear(*r);
}
#define _cleanup_pgresult_ _cleanup_(pqclearp)

/* ---- results kept across an outage ------------------------------------------------------
 * A run that ends while the server is unreachable (or whose batch is lost with the connection)
 * must not lose its result: the handle keeps it and writes it first thing on reconnection. Its
 * UPDATE only touches a row still 'running', so writing it twice changes nothing. */

static void pending_result_done(pending_result *p) {
        free((char *) p->r.message);
        free((char *) p->r.output);
}

static void pending_clear(pending_list *l) {
        for (size_t i = 0; i < l->n; i++)
                pending_result_done(&l->items[i]);
        free(l->items);
        *l = (pending_list) {};
}

static int pending_add(pg_history *h, pending_list *l, int64_t run_id, const history_result *r) {
        pending_result p = { .run_id = run_id, .r = *r };

        if (l->n >= HISTORY_PG_PENDING_MAX) {
                /* the oldest goes: bounded memory over an outage of days */
                pending_result_done(&l->items[0]);
                memmove(l->items, l->items + 1, (l->n - 1) * sizeof *l->items);
                l->n--;
                h->pending_dropped++;
        }
        if (l->n == l->allocated) {
                size_t a = l->allocated ? l->allocated * 2 : 16;
                pending_result *t = realloc(l->items, a * sizeof *t);
                if (!t)
                        return -ENOMEM;
                l->items = t;
                l->allocated = a;
        }
        p.r.message = r->message ? strdup(r->message) : NULL;
        p.r.output = NULL;
        if (r->output) {
                size_t off = history_utf8_tail_offset(r->output, r->output_size, HISTORY_OUTPUT_MAX);
                char *o = malloc(r->output_size - off + 1);
                if (o) {
                        memcpy(o, r->output + off, r->output_size - off);
                        o[r->output_size - off] = '\0';
                }
                p.r.output = o;
                p.r.output_size = r->output_size - off;
        }
        if ((r->message && !p.r.message) || (r->output && !p.r.output)) {
                pending_result_done(&p);
                return -ENOMEM;
        }
        l->items[l->n++] = p;
        return 0;
}

/* The open batch is gone: what it wrote of results is to be written again. */
static void batch_results_lost(pg_history *h) {
        for (size_t i = 0; i < h->batch_results.n; i++)
                (void) pending_add(h, &h->pending, h->batch_results.items[i].run_id, &h->batch_results.items[i].r);
        pending_clear(&h->batch_results);
}

/* ---- parameters --------------------------------------------------------------------------- */

/* Text parameters, but for bytes (binary). */
typedef struct pg_params {
        int n;
        const char *values[PARAMS_MAX];
        int lengths[PARAMS_MAX];
        int formats[PARAMS_MAX];
        char numbers[PARAMS_MAX][24];
} pg_params;

static void param_null(pg_params *p) {
        assert(p->n < PARAMS_MAX);
        p->values[p->n++] = NULL;
}

static void param_text(pg_params *p, const char *s) {
        assert(p->n < PARAMS_MAX);
        p->values[p->n++] = s;
}

static void param_i64(pg_params *p, int64_t v) {
        assert(p->n < PARAMS_MAX);
        snprintf(p->numbers[p->n], sizeof p->numbers[p->n], "%" PRId64, v);
        p->values[p->n] = p->numbers[p->n];
        p->n++;
}

/* USEC_INFINITY is NULL (callers checked the range). */
static void param_usec(pg_params *p, usec_t u) {
        if (u == USEC_INFINITY)
                param_null(p);
        else
                param_i64(p, (int64_t) u);
}

static void param_bytes(pg_params *p, const char *b, size_t n) {
        assert(p->n < PARAMS_MAX);
        p->values[p->n] = b ?: "";
        p->lengths[p->n] = (int) n;
        p->formats[p->n] = 1;
        p->n++;
}

/* ---- results ------------------------------------------------------------------------------ */

static int64_t get_i64(const PGresult *res, int row, int col) {
        if (PQgetisnull(res, row, col))
                return 0;
        return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

static usec_t get_usec(const PGresult *res, int row, int col) {
        if (PQgetisnull(res, row, col))
                return USEC_INFINITY;
        int64_t v = strtoll(PQgetvalue(res, row, col), NULL, 10);
        return v < 0 ? 0 : (usec_t) v;
}

static const char *get_str(const PGresult *res, int row, int col) {
        return PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col);
}

/* ---- errors ------------------------------------------------------------------------------- */

int history_pg_sqlstate_to_errno(const char *st) {
        if (!st || strlen(st) != 5)
                return -EIO;
        if (streq(st, "23505") || streq(st, "42P07") || streq(st, "42710"))
                return -EEXIST;
        if (streq(st, "23503"))
                return -ENOENT;
        if ((strncmp(st, "08", 2) == 0) || streq(st, "57P01") || streq(st, "57P02") || streq(st, "57P03"))
                return -ENOTCONN;
        if (streq(st, "25006"))
                return -EROFS;
        if (streq(st, "53100"))
                return -ENOSPC;
        if (streq(st, "53200"))
                return -ENOMEM;
        if (streq(st, "40001") || streq(st, "40P01") || streq(st, "55P03") || streq(st, "53300"))
                return -EBUSY;
        if (streq(st, "57014"))
                return -ETIMEDOUT;
        if ((strncmp(st, "28", 2) == 0) || streq(st, "42501"))
                return -EACCES;
        if ((strncmp(st, "22", 2) == 0) || (strncmp(st, "23", 2) == 0))
                return -EINVAL;
        return -EIO;
}

static void drop_conn(pg_history *h) {
        if (!h->conn)
                return;
        PQfinish(h->conn);
        h->conn = NULL;
        /* the first attempt after a loss comes at once; failures back off */
        h->next_connect = 0;
        h->backoff_ms = 0;
        if (h->in_batch) {
                h->in_batch = false;
                h->batch_lost = -ENOTCONN;
                batch_results_lost(h);
        }
}

static int fail(pg_history *h, const PGresult *res, const char *what) {
        const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
        const char *m = res ? PQresultErrorMessage(res) : NULL;
        char line[HISTORY_ERROR_MAX];
        int r;

        if (isempty(m) && h->conn)
                m = PQerrorMessage(h->conn);
        pg_message_line(m, line, sizeof line);
        r = history_pg_sqlstate_to_errno(state);
        if (!h->conn || PQstatus(h->conn) == CONNECTION_BAD) {
                r = -ENOTCONN;
                drop_conn(h);
        }
        if (state)
                set_error(h, "%s: %s (SQLSTATE %s)", what, line, state);
        else
                set_error(h, "%s: %s", what, line);
        /* An error outside a savepoint ended the batch's transaction. */
        if (h->in_batch && h->conn && PQtransactionStatus(h->conn) != PQTRANS_INTRANS) {
                (void) PQclear(PQexec(h->conn, "ROLLBACK"));
                h->in_batch = false;
                h->batch_lost = r;
                batch_results_lost(h);
        }
        return r;
}

int history_pg_fail(history *base, const PGresult *res, const char *what) {
        pg_history *h = pg_of(base);
        if (!h)
                return -EINVAL;
        return fail(h, res, what);
}

/* ---- the connection ----------------------------------------------------------------------- */

static int migrate(pg_history *h);
static void pending_flush(pg_history *h);

/* The server as "PostgreSQL HOST:PORT/DB" for messages, from the parsed string (a list of
 * hosts stays a list). */
static char *describe(PQconninfoOption *opts) {
        const char *host = NULL, *port = NULL, *db = NULL, *service = NULL;
        char *s;

        for (PQconninfoOption *o = opts; o && o->keyword; o++) {
                if (!o->val)
                        continue;
                if (streq(o->keyword, "host") || (streq(o->keyword, "hostaddr") && !host))
                        host = o->val;
                else if (streq(o->keyword, "port"))
                        port = o->val;
                else if (streq(o->keyword, "dbname"))
                        db = o->val;
                else if (streq(o->keyword, "service"))
                        service = o->val;
        }
        if (service && !host)
                return asprintf(&s, "PostgreSQL service %s", service) < 0 ? NULL : s;
        if (asprintf(&s, "PostgreSQL %s%s%s/%s", host ?: getenv("PGHOST") ?: "(libpq default host)",
                     port ? ":" : "", port ?: "", db ?: getenv("PGDATABASE") ?: "(default database)") < 0)
                return NULL;
        return s;
}

/* Connects now: libpq walks the hosts of the string (target_session_attrs picks among them),
 * each for at most connect_timeout. Session settings bound every later call. */
static int connect_now(pg_history *h) {
        char err[HISTORY_ERROR_MAX];
        PGconn *c;

        int q = pg_connect_bounded(h->conninfo, "schedulerd", err, sizeof err, &c);
        if (q < 0) {
                set_error(h, q == -EIO ? "%s" : "cannot connect: %s", err);
                return q;
        }
        h->conn = c;
        h->prepared = 0;

        int r = migrate(h);
        if (r < 0) {
                drop_conn(h);
                return r;
        }
        h->connections++;
        h->backoff_ms = 0;
        pending_flush(h);
        if (h->connect_hook) {
                r = h->connect_hook(&h->base, c, h->connect_userdata);
                if (r < 0) {
                        drop_conn(h);
                        return r;
                }
        }
        return 0;
}

/* A live connection, or -ENOTCONN: the first attempt after a loss is immediate, failed ones
 * back off 1 s, 2 s, ... HISTORY_PG_RECONNECT_MAX_MS, failing at once in between (a scheduler
 * that fires every second must not spend each second waiting for a server that is down). */
static int ensure_conn(pg_history *h) {
        if (h->conn && PQstatus(h->conn) == CONNECTION_OK)
                return 0;
        if (h->conn)
                drop_conn(h);

        usec_t now = clock_now_monotonic();
        if (now < h->next_connect) {
                /* h->error still has the last attempt's reason */
                return -ENOTCONN;
        }
        int r = connect_now(h);
        if (r >= 0)
                return 0;
        h->backoff_ms = h->backoff_ms == 0 ? RECONNECT_FIRST_MS : MIN(h->backoff_ms * 2, (unsigned) HISTORY_PG_RECONNECT_MAX_MS);
        /* the attempt held the caller (the event loop) as long as it took: the next one waits
         * a multiple of that, at least */
        usec_t after = clock_now_monotonic();
        h->next_connect = after + MAX((usec_t) h->backoff_ms * USEC_PER_MSEC, PG_CONNECT_BACKOFF_FACTOR * (after - now));
        return r;
}

PGconn *history_pg_conn(history *base) {
        pg_history *h = pg_of(base);
        if (!h || !h->conn || PQstatus(h->conn) != CONNECTION_OK)
                return NULL;
        return h->conn;
}

int history_pg_connect(history *base) {
        pg_history *h = pg_of(base);
        if (!h)
                return -EINVAL;
        return ensure_conn(h);
}

void history_pg_set_connect_hook(history *base, history_pg_connect_fn fn, void *userdata) {
        pg_history *h = pg_of(base);
        if (!h)
                return;
        h->connect_hook = fn;
        h->connect_userdata = userdata;
}

size_t history_pg_pending_results(history *base, uint64_t *ret_dropped) {
        pg_history *h = pg_of(base);
        if (ret_dropped)
                *ret_dropped = h ? h->pending_dropped : 0;
        return h ? h->pending.n : 0;
}

uint64_t history_pg_connections(history *base) {
        pg_history *h = pg_of(base);
        return h ? h->connections : 0;
}

/* ---- statements --------------------------------------------------------------------------- */

/* Runs SQL on the current connection as it is (inside whatever transaction is open). A result
 * that is not OK is turned into the errno. */
static int exec_prep(pg_history *h, prep_id prep, const char *sql, const pg_params *p, const char *what,
                     PGresult **ret) {
        PGresult *res;
        char name[16];

        if (!h->conn) {
                set_error(h, "%s: not connected", what);
                return -ENOTCONN;
        }
        if (prep != PREP_NONE) {
                snprintf(name, sizeof name, "history_%d", (int) prep);
                if (!(h->prepared & (UINT32_C(1) << prep))) {
                        res = PQprepare(h->conn, name, sql, p ? p->n : 0, NULL);
                        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
                                int r = fail(h, res, what);
                                PQclear(res);
                                return r;
                        }
                        PQclear(res);
                        h->prepared |= UINT32_C(1) << prep;
                }
                res = PQexecPrepared(h->conn, name, p ? p->n : 0, p ? p->values : NULL, p ? p->lengths : NULL,
                                     p ? p->formats : NULL, 0);
        } else if (p)
                res = PQexecParams(h->conn, sql, p->n, NULL, p->values, p->lengths, p->formats, 0);
        else
                res = PQexec(h->conn, sql);
        ExecStatusType st = PQresultStatus(res);
        if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
                int r = fail(h, res, what);
                PQclear(res);
                return r;
        }
        if (ret)
                *ret = res;
        else
                PQclear(res);
        return 0;
}

static int exec_raw(pg_history *h, const char *sql, const pg_params *p, const char *what, PGresult **ret) {
        return exec_prep(h, PREP_NONE, sql, p, what, ret);
}

/* For clean-up paths: must not overwrite the error being reported. */
static void exec_quiet(pg_history *h, const char *sql) {
        char saved[sizeof h->base.error];

        if (!h->conn)
                return;
        memcpy(saved, h->base.error, sizeof saved);
        (void) exec_raw(h, sql, NULL, "cleaning up", NULL);
        memcpy(h->base.error, saved, sizeof saved);
}

/* Operations of several statements run atomically: in their own transaction, or as a
 * savepoint inside the caller's batch. */
static int op_begin(pg_history *h) {
        int r = ensure_conn(h);
        if (r < 0)
                return r;
        return exec_raw(h, h->in_batch ? "SAVEPOINT history_op" : "BEGIN", NULL, "starting a transaction", NULL);
}

static int op_end(pg_history *h, int r) {
        if (r >= 0) {
                int q = exec_raw(h, h->in_batch ? "RELEASE history_op" : "COMMIT", NULL, "committing a transaction",
                                 NULL);
                if (q >= 0)
                        return r;
                r = q;
        }
        if (!h->conn)
                return r;
        if (h->in_batch) {
                exec_quiet(h, "ROLLBACK TO history_op");
                exec_quiet(h, "RELEASE history_op");
        } else if (PQtransactionStatus(h->conn) != PQTRANS_IDLE)
                exec_quiet(h, "ROLLBACK");
        return r;
}

/* One statement, one call of the interface: connected first; inside a batch, in a savepoint
 * of its own (a failure must not end the batch). */
static int query_prep(pg_history *h, prep_id prep, const char *sql, const pg_params *p, const char *what,
                      PGresult **ret) {
        int r;

        if (!h->in_batch) {
                r = ensure_conn(h);
                if (r < 0)
                        return r;
                return exec_prep(h, prep, sql, p, what, ret);
        }
        r = op_begin(h);
        if (r < 0)
                return r;
        PGresult *res = NULL;
        r = op_end(h, exec_prep(h, prep, sql, p, what, &res));
        if (r < 0) {
                if (res)
                        PQclear(res);
                return r;
        }
        if (ret)
                *ret = res;
        else
                PQclear(res);
        return 0;
}

static int query(pg_history *h, const char *sql, const pg_params *p, const char *what, PGresult **ret) {
        return query_prep(h, PREP_NONE, sql, p, what, ret);
}

static int64_t affected(const PGresult *res) {
        const char *t = PQcmdTuples((PGresult *) res);
        return isempty(t) ? 0 : strtoll(t, NULL, 10);
}

/* ---- migrations --------------------------------------------------------------------------- */

static int schema_version(pg_history *h, bool *ret_exists, int64_t *ret_version) {
        _cleanup_pgresult_ PGresult *res = NULL;
        int r = exec_raw(h, "SELECT to_regclass('schedulerd_schema') IS NOT NULL, to_regclass('runs') IS NOT NULL",
                         NULL, "reading the schema version", &res);
        if (r < 0)
                return r;
        bool exists = streq(PQgetvalue(res, 0, 0), "t"), runs = streq(PQgetvalue(res, 0, 1), "t");
        if (!exists) {
                if (runs) {
                        set_error(h, "not a schedulerd history database (it has a table \"runs\" but no "
                                  "schedulerd_schema); expected an empty database or one written by schedulerd");
                        return -EBADMSG;
                }
                *ret_exists = false;
                *ret_version = 0;
                return 0;
        }
        PQclear(TAKE_PTR(res));
        r = exec_raw(h, "SELECT COALESCE(max(version), 0) FROM schedulerd_schema", NULL, "reading the schema version",
                     &res);
        if (r < 0)
                return r;
        *ret_exists = true;
        *ret_version = get_i64(res, 0, 0);
        return 0;
}

static int check_not_newer(pg_history *h, int64_t version) {
        if (version <= (int64_t) history_pg_schema_steps)
                return 0;
        set_error(h, "schema version %" PRId64 " is newer than this schedulerd knows (%zu); run a schedulerd at "
                  "least as new as the one that wrote it",
                  version, history_pg_schema_steps);
        return -EPROTO;
}

static int migrate_locked(pg_history *h) {
        char lock[80];
        bool exists;
        int64_t version;
        int r;

        snprintf(lock, sizeof lock, "SELECT pg_advisory_xact_lock(%" PRId64 ")", HISTORY_PG_MIGRATION_LOCK);
        r = exec_raw(h, lock, NULL, "locking the schema for migration", NULL);
        if (r < 0)
                return r;
        /* decided under the lock: another daemon may just have migrated */
        r = schema_version(h, &exists, &version);
        if (r < 0)
                return r;
        if ((r = check_not_newer(h, version)) < 0)
                return r;
        if (!exists) {
                r = exec_raw(h,
                             "CREATE TABLE schedulerd_schema (\n"
                             "        version integer PRIMARY KEY,\n"
                             "        description text NOT NULL,\n"
                             "        applied_at timestamptz NOT NULL DEFAULT now()\n"
                             ")",
                             NULL, "creating the schema version table", NULL);
                if (r < 0)
                        return r;
        }
        for (; version < (int64_t) history_pg_schema_steps; version++) {
                char what[96];
                pg_params p = {};

                snprintf(what, sizeof what, "migrating the schema from version %" PRId64 " to %" PRId64, version,
                         version + 1);
                r = exec_raw(h, history_pg_schema[version].sql, NULL, what, NULL);
                if (r < 0)
                        return r;
                param_i64(&p, version + 1);
                param_text(&p, history_pg_schema[version].description);
                r = exec_raw(h, "INSERT INTO schedulerd_schema (version, description) VALUES ($1, $2)", &p, what,
                             NULL);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int migrate(pg_history *h) {
        bool exists;
        int64_t version;
        int r;

        /* the common case, without a lock: nothing to do. The two to_regclass() of one statement
         * may see another daemon's migration commit between them ("runs" but no schema table):
         * -EBADMSG here is decided again under the lock. */
        r = schema_version(h, &exists, &version);
        if (r < 0 && r != -EBADMSG)
                return r;
        if (r >= 0 && (r = check_not_newer(h, version)) < 0)
                return r;
        if (r >= 0 && exists && version == (int64_t) history_pg_schema_steps)
                return 0;

        /* A backend reads the catalogs as of its transaction's start, and an advisory lock does
         * not refresh them: a daemon that waited for another's migration can still think the
         * tables missing and fail to create them (-EEXIST), or see half of them (-EBADMSG). A
         * second transaction sees them all; a database that is really not ours fails twice. */
        for (unsigned attempt = 0;; attempt++) {
                r = exec_raw(h, "BEGIN", NULL, "starting the schema migration", NULL);
                if (r < 0)
                        return r;
                r = migrate_locked(h);
                if (r >= 0)
                        r = exec_raw(h, "COMMIT", NULL, "committing the schema migration", NULL);
                if (r < 0 && h->conn && PQtransactionStatus(h->conn) != PQTRANS_IDLE)
                        exec_quiet(h, "ROLLBACK");
                if ((r != -EEXIST && r != -EBADMSG) || attempt > 0)
                        return r;
        }
}

/* ---- opening and closing ------------------------------------------------------------------ */

static history *pg_close(history *base) {
        pg_history *h = (pg_history *) base;
        if (!h)
                return NULL;
        if (h->conn) {
                if (PQtransactionStatus(h->conn) != PQTRANS_IDLE)
                        PQclear(PQexec(h->conn, "ROLLBACK"));
                PQfinish(h->conn);
        }
        free(h->conninfo);
        pending_clear(&h->batch_results);
        pending_clear(&h->pending);
        history_base_done(&h->base);
        free(h);
        return NULL;
}

static void pg_history_freep(pg_history **p) {
        if (*p)
                (void) pg_close(&(*p)->base);
}

static void conninfo_freep(PQconninfoOption **p) {
        if (*p)
                PQconninfoFree(*p);
}

/* Parses CONNINFO as libpq will, refusing a password in it. */
static int parse_conninfo(const char *conninfo, char *error, size_t error_size, PQconninfoOption **ret) {
        PQconninfoOption *opts;
        char *perr = NULL;

        opts = PQconninfoParse(conninfo, &perr);
        if (!opts) {
                char line[HISTORY_ERROR_MAX];
                pg_message_line(perr ?: "out of memory", line, sizeof line);
                if (error && error_size > 0)
                        snprintf(error, error_size, "scheduler.store: not a libpq connection string or URI: %s "
                                 "(expected \"sqlite\", \"host=... dbname=...\" or \"postgresql://host/db\")", line);
                int r = perr ? -EINVAL : -ENOMEM;
                PQfreemem(perr);
                return r;
        }
        for (PQconninfoOption *o = opts; o->keyword; o++)
                if (streq(o->keyword, "password") && o->val) {
                        if (error && error_size > 0)
                                snprintf(error, error_size, "scheduler.store: the connection string holds a password; "
                                         "remove it and put it in ~/.pgpass of the daemon's user, in a file named by "
                                         "PGPASSFILE, or in a service file (PGSERVICEFILE), which libpq reads");
                        PQconninfoFree(opts);
                        return -EINVAL;
                }
        *ret = opts;
        return 0;
}

int history_pg_check(const char *conninfo, char *error, size_t error_size) {
        PQconninfoOption *opts = NULL;
        int r = parse_conninfo(conninfo, error, error_size, &opts);
        if (r < 0)
                return r;
        PQconninfoFree(opts);
        return 0;
}

int history_pg_open(const char *conninfo, char *error, size_t error_size, history **ret) {
        _cleanup_(pg_history_freep) pg_history *h = NULL;
        _cleanup_(conninfo_freep) PQconninfoOption *opts = NULL;
        _cleanup_free_ char *where = NULL;
        int r;

        if (isempty(conninfo) || !ret)
                return -EINVAL;

        r = parse_conninfo(conninfo, error, error_size, &opts);
        if (r < 0)
                return r;
        where = describe(opts);
        if (!where)
                return -ENOMEM;

        h = calloc(1, sizeof *h);
        if (!h)
                return -ENOMEM;
        if (history_base_init(&h->base, &pg_ops, where) < 0 || !(h->conninfo = strdup(conninfo)))
                return -ENOMEM;

        r = ensure_conn(h);
        if (r < 0) {
                if (error && error_size > 0)
                        snprintf(error, error_size, "%s", h->base.error);
                return r;
        }
        h->base.error[0] = '\0';
        *ret = &TAKE_PTR(h)->base;
        return 0;
}

/* ---- batches ------------------------------------------------------------------------------ */

static int pg_set_size_limit(history *base, uint64_t max_bytes) {
        pg_history *h = (pg_history *) base;
        set_error(h, "a size limit is the PostgreSQL administrator's (a quota or a tablespace), not schedulerd's");
        return -EOPNOTSUPP;
}

static int pg_begin(history *base) {
        pg_history *h = (pg_history *) base;
        if (h->in_batch) {
                set_error(h, "a batch is already open (expected history_commit() first)");
                return -EALREADY;
        }
        h->batch_lost = 0;
        int r = ensure_conn(h);
        if (r < 0)
                return r;
        pending_flush(h);
        if (!h->conn) {
                set_error(h, "starting a batch: the connection was lost while writing kept results");
                return -ENOTCONN;
        }
        r = exec_raw(h, "BEGIN", NULL, "starting a batch", NULL);
        if (r < 0)
                return r;
        h->in_batch = true;
        return 0;
}

static int pg_commit(history *base) {
        pg_history *h = (pg_history *) base;
        if (!h->in_batch) {
                int lost = h->batch_lost;
                h->batch_lost = 0;
                if (lost < 0)
                        return lost; /* the error still says why */
                set_error(h, "no batch is open (expected history_begin() first)");
                return -ENOTCONN;
        }
        h->in_batch = false;
        int r = exec_raw(h, "COMMIT", NULL, "committing a batch", NULL);
        if (r < 0 && h->conn && PQtransactionStatus(h->conn) != PQTRANS_IDLE)
                exec_quiet(h, "ROLLBACK");
        if (r < 0)
                batch_results_lost(h);
        else
                pending_clear(&h->batch_results);
        return r;
}

static int pg_rollback(history *base) {
        pg_history *h = (pg_history *) base;
        if (!h->in_batch) {
                bool lost = h->batch_lost < 0;
                h->batch_lost = 0;
                if (lost)
                        return 0; /* gone already */
                set_error(h, "no batch is open (expected history_begin() first)");
                return -ENOTCONN;
        }
        h->in_batch = false;
        pending_clear(&h->batch_results); /* the caller's choice: not written again */
        return exec_raw(h, "ROLLBACK", NULL, "rolling back a batch", NULL);
}

static int pg_wal_pages(history *base) {
        return base ? 0 : -EINVAL;
}

static int pg_checkpoint(history *base) {
        pg_history *h = (pg_history *) base;
        if (h->in_batch) {
                set_error(h, "a batch is open (expected history_commit() first)");
                return -EBUSY;
        }
        return 0;
}

/* ---- runs --------------------------------------------------------------------------------- */

/* A copy of S cut to HISTORY_MESSAGE_MAX bytes with every byte that is not part of valid UTF-8
 * replaced by '?': text columns take UTF-8 only, and a job's message must not cost its row. */
static char *message_dup(const char *s) {
        size_t n = history_utf8_head_length(s, strlen(s), HISTORY_MESSAGE_MAX);
        char *c = malloc(n + 1);
        if (!c)
                return NULL;
        for (size_t i = 0; i < n;) {
                unsigned char b = (unsigned char) s[i];
                size_t len = b < 0x80 ? 1 : (b & 0xe0) == 0xc0 && b >= 0xc2 ? 2 : (b & 0xf0) == 0xe0 ? 3
                           : (b & 0xf8) == 0xf0 && b <= 0xf4 ? 4 : 0;
                bool ok = len > 0 && i + len <= n;
                for (size_t k = 1; ok && k < len; k++)
                        ok = ((unsigned char) s[i + k] & 0xc0) == 0x80;
                if (!ok) {
                        c[i++] = '?';
                        continue;
                }
                memcpy(c + i, s + i, len);
                i += len;
        }
        c[n] = '\0';
        return c;
}

#define INSERT_RUN_COLUMNS                                                                           \
        "INSERT INTO runs (job, trigger, attempt, claim_class, retry_of, scheduled_usec, started_usec," \
        " finished_usec, status, message, pid)"

static int pg_claim_fire(history *base, const char *job, run_trigger trigger, usec_t scheduled, usec_t started,
                         pid_t pid, int64_t *ret_run_id) {
        pg_history *h = (pg_history *) base;
        _cleanup_pgresult_ PGresult *res = NULL;
        pg_params p = {};
        int r;

        if ((r = history_check_job(base, job)) < 0 || (r = history_check_first_trigger(base, trigger)) < 0 ||
            (r = history_check_usec(base, scheduled, false, "scheduled time")) < 0 ||
            (r = history_check_usec(base, started, false, "start time")) < 0)
                return r;

        param_text(&p, job);
        param_text(&p, run_trigger_to_string(trigger));
        param_text(&p, history_claim_class_of(trigger));
        param_i64(&p, (int64_t) scheduled);
        param_i64(&p, (int64_t) started);
        if (pid > 0)
                param_i64(&p, pid);
        else
                param_null(&p);
        /* One statement: the unique index does the claiming, cluster-wide. */
        r = query_prep(h, PREP_CLAIM,
                  INSERT_RUN_COLUMNS " VALUES ($1, $2, 0, $3, NULL, $4, $5, NULL, 'running', NULL, $6)"
                  " ON CONFLICT (job, scheduled_usec, attempt, claim_class) DO NOTHING RETURNING id",
                  &p, "recording a run", &res);
        if (r < 0)
                return r;
        if (PQntuples(res) == 0) {
                set_error(h, "job '%s': the fire at %" PRIu64 " (attempt 0) was already claimed", job, scheduled);
                return -EEXIST;
        }
        if (ret_run_id)
                *ret_run_id = get_i64(res, 0, 0);
        return 0;
}

static int pg_claim_retry(history *base, int64_t first_run_id, unsigned attempt, usec_t started, pid_t pid,
                          int64_t *ret_run_id) {
        pg_history *h = (pg_history *) base;
        _cleanup_pgresult_ PGresult *res = NULL, *why = NULL;
        pg_params p = {};
        int r;

        if (attempt < 1) {
                set_error(h, "retry attempt 0 (expected 1 or more)");
                return -EINVAL;
        }
        if ((r = history_check_usec(base, started, false, "start time")) < 0)
                return r;

        param_i64(&p, first_run_id);
        param_i64(&p, attempt);
        param_i64(&p, (int64_t) started);
        if (pid > 0)
                param_i64(&p, pid);
        else
                param_null(&p);
        r = query(h,
                  INSERT_RUN_COLUMNS " SELECT job, 'retry', $2, claim_class, id, scheduled_usec, $3, NULL, 'running',"
                  " NULL, $4 FROM runs WHERE id = $1 AND attempt = 0"
                  " ON CONFLICT (job, scheduled_usec, attempt, claim_class) DO NOTHING RETURNING id",
                  &p, "recording a retry", &res);
        if (r < 0)
                return r;
        if (PQntuples(res) > 0) {
                if (ret_run_id)
                        *ret_run_id = get_i64(res, 0, 0);
                return 0;
        }

        /* nothing inserted: say why */
        pg_params q = {};
        param_i64(&q, first_run_id);
        r = query(h, "SELECT attempt, job, scheduled_usec FROM runs WHERE id = $1", &q, "reading the run to retry", &why);
        if (r < 0)
                return r;
        if (PQntuples(why) == 0) {
                set_error(h, "run %" PRId64 " to retry does not exist", first_run_id);
                return -ENOENT;
        }
        if (get_i64(why, 0, 0) != 0) {
                set_error(h, "run %" PRId64 " is itself a retry (expected the first attempt's run id)", first_run_id);
                return -EINVAL;
        }
        set_error(h, "job '%s': the fire at %" PRIu64 " (attempt %u) was already claimed", get_str(why, 0, 1) ?: "?",
                  get_usec(why, 0, 2), attempt);
        return -EEXIST;
}

static int pg_record_skipped(history *base, const char *job, run_trigger trigger, usec_t scheduled, usec_t now,
                             const char *message, int64_t *ret_run_id) {
        pg_history *h = (pg_history *) base;
        _cleanup_pgresult_ PGresult *res = NULL;
        _cleanup_free_ char *m = NULL;
        pg_params p = {};
        int r;

        if ((r = history_check_job(base, job)) < 0 || (r = history_check_first_trigger(base, trigger)) < 0 ||
            (r = history_check_usec(base, scheduled, false, "scheduled time")) < 0 ||
            (r = history_check_usec(base, now, false, "current time")) < 0)
                return r;
        if (message && !(m = message_dup(message)))
                return -ENOMEM;

        param_text(&p, job);
        param_text(&p, run_trigger_to_string(trigger));
        param_text(&p, history_claim_class_of(trigger));
        param_i64(&p, (int64_t) scheduled);
        param_i64(&p, (int64_t) now);
        param_text(&p, m);
        /* the claim and the count, one statement: both or neither */
        r = query_prep(h, PREP_SKIP,
                  "WITH i AS (" INSERT_RUN_COLUMNS " VALUES ($1, $2, 0, $3, NULL, $4, $5, $5, 'skipped', $6, NULL)"
                  "  ON CONFLICT (job, scheduled_usec, attempt, claim_class) DO NOTHING RETURNING id, job),"
                  " c AS (INSERT INTO jobs (name, skipped_total) SELECT job, 1 FROM i"
                  "  ON CONFLICT (name) DO UPDATE SET skipped_total = jobs.skipped_total + 1)"
                  " SELECT id FROM i",
                  &p, "recording a skipped run", &res);
        if (r < 0)
                return r;
        if (PQntuples(res) == 0) {
                set_error(h, "job '%s': the fire at %" PRIu64 " (attempt 0) was already claimed", job, scheduled);
                return -EEXIST;
        }
        if (ret_run_id)
                *ret_run_id = get_i64(res, 0, 0);
        return 0;
}

static int pg_record_missed(history *base, const char *job, run_trigger trigger, usec_t first, usec_t last,
                            uint64_t count, usec_t now, const char *message, int64_t *ret_run_id) {
        pg_history *h = (pg_history *) base;
        _cleanup_pgresult_ PGresult *res = NULL;
        _cleanup_free_ char *m = NULL;
        pg_params p = {};
        int r;

        if ((r = history_check_job(base, job)) < 0 || (r = history_check_first_trigger(base, trigger)) < 0 ||
            (r = history_check_usec(base, first, false, "first missed instant")) < 0 ||
            (r = history_check_usec(base, last, false, "last missed instant")) < 0 ||
            (r = history_check_usec(base, now, false, "current time")) < 0)
                return r;
        if (count == 0 || count > INT64_MAX || last < first) {
                set_error(h, "job '%s': %" PRIu64 " fires missed from %" PRIu64 " to %" PRIu64
                          " (expected at least one, in order)", job, count, first, last);
                return -EINVAL;
        }
        if (message && !(m = message_dup(message)))
                return -ENOMEM;

        param_text(&p, job);
        param_text(&p, run_trigger_to_string(trigger));
        param_text(&p, history_claim_class_of(trigger));
        param_i64(&p, (int64_t) first);
        param_i64(&p, (int64_t) now);
        param_text(&p, m);
        param_i64(&p, (int64_t) count);
        param_i64(&p, (int64_t) last);
        /* the claim of FIRST and the count, one statement: both or neither */
        r = query_prep(h, PREP_MISS,
                  "WITH i AS (INSERT INTO runs (job, trigger, attempt, claim_class, scheduled_usec, started_usec,"
                  "  finished_usec, status, message, missed_count, missed_last_usec)"
                  "  VALUES ($1, $2, 0, $3, $4, $5, $5, 'missed', $6, $7::bigint, $8)"
                  "  ON CONFLICT (job, scheduled_usec, attempt, claim_class) DO NOTHING RETURNING id, job),"
                  " c AS (INSERT INTO jobs (name, missed_total) SELECT job, $7::bigint FROM i"
                  "  ON CONFLICT (name) DO UPDATE SET missed_total = jobs.missed_total + excluded.missed_total)"
                  " SELECT id FROM i",
                  &p, "recording missed fires", &res);
        if (r < 0)
                return r;
        if (PQntuples(res) == 0) {
                set_error(h, "job '%s': the fire at %" PRIu64 " (attempt 0) was already claimed", job, first);
                return -EEXIST;
        }
        if (ret_run_id)
                *ret_run_id = get_i64(res, 0, 0);
        return 0;
}

/* Why an UPDATE of a running row changed nothing: -ENOENT or -ESTALE. */
static int explain_not_running(pg_history *h, int64_t run_id) {
        _cleanup_pgresult_ PGresult *res = NULL;
        pg_params p = {};

        param_i64(&p, run_id);
        int r = query(h, "SELECT job, status FROM runs WHERE id = $1", &p, "reading a run", &res);
        if (r < 0)
                return r;
        if (PQntuples(res) == 0) {
                set_error(h, "run %" PRId64 " does not exist", run_id);
                return -ENOENT;
        }
        set_error(h, "run %" PRId64 " of job '%s' already finished as %s", run_id, get_str(res, 0, 0) ?: "?",
                  get_str(res, 0, 1) ?: "?");
        return -ESTALE;
}

static int pg_skip_claimed(history *base, int64_t run_id, usec_t now, const char *message) {
        pg_history *h = (pg_history *) base;
        _cleanup_pgresult_ PGresult *res = NULL;
        _cleanup_free_ char *m = NULL;
        pg_params p = {};
        int r;

        if ((r = history_check_usec(base, now, false, "current time")) < 0)
                return r;
        if (message && !(m = message_dup(message)))
                return -ENOMEM;
        param_i64(&p, run_id);
        param_i64(&p, (int64_t) now);
        param_text(&p, m);
        /* the row and the count, one statement: both or neither */
        r = query(h,
                  "WITH f AS (UPDATE runs SET status = 'skipped', finished_usec = $2, message = $3"
                  "  WHERE id = $1 AND status = 'running' RETURNING job),"
                  " c AS (INSERT INTO jobs (name, skipped_total) SELECT job, 1 FROM f"
                  "  ON CONFLICT (name) DO UPDATE SET skipped_total = jobs.skipped_total + 1)"
                  " SELECT 1 FROM f",
                  &p, "recording a claimed fire skipped", &res);
        if (r < 0)
                return r;
        if (PQntuples(res) == 0)
                return explain_not_running(h, run_id);
        return 0;
}

static int update_running(pg_history *h, int64_t run_id, pid_t pid, usec_t started, const char *what) {
        _cleanup_pgresult_ PGresult *res = NULL;
        pg_params p = {};

        param_i64(&p, run_id);
        param_i64(&p, pid);
        if (started != USEC_INFINITY)
                param_i64(&p, (int64_t) started);
        int r = query_prep(h, started == USEC_INFINITY ? PREP_SET_PID : PREP_SET_START,
                      started == USEC_INFINITY
                              ? "UPDATE runs SET pid = $2 WHERE id = $1 AND status = 'running'"
                              : "UPDATE runs SET pid = CASE WHEN $2 > 0 THEN $2 ELSE pid END, started_usec = $3"
                                " WHERE id = $1 AND status = 'running'",
                      &p, what, &res);
        if (r < 0)
                return r;
        if (affected(res) == 0)
                return explain_not_running(h, run_id);
        return 0;
}

static int pg_set_pid(history *base, int64_t run_id, pid_t pid) {
        if (pid <= 0)
                return -EINVAL;
        return update_running((pg_history *) base, run_id, pid, USEC_INFINITY, "setting a run's pid");
}

static int pg_set_start(history *base, int64_t run_id, pid_t pid, usec_t started) {
        if (started == USEC_INFINITY || started > INT64_MAX)
                return -EINVAL;
        return update_running((pg_history *) base, run_id, pid, started, "setting a run's start");
}

static int finish_write(pg_history *h, int64_t run_id, const history_result *res) {
        _cleanup_pgresult_ PGresult *out = NULL;
        _cleanup_free_ char *m = NULL;
        pg_params p = {};
        int r;

        if (res->message && !(m = message_dup(res->message)))
                return -ENOMEM;

        param_i64(&p, run_id);
        param_i64(&p, (int64_t) res->finished_usec);
        param_text(&p, run_status_to_string(res->status));
        if (res->exit_code >= 0)
                param_i64(&p, res->exit_code);
        else
                param_null(&p);
        if (res->signal > 0)
                param_i64(&p, res->signal);
        else
                param_null(&p);
        param_usec(&p, res->duration_usec);
        param_text(&p, m);
        if (res->output) {
                size_t off = history_utf8_tail_offset(res->output, res->output_size, HISTORY_OUTPUT_MAX);
                param_bytes(&p, res->output + off, res->output_size - off);
        } else
                param_null(&p);
        param_i64(&p, run_status_is_failure(res->status));
        if (res->started_usec > 0)
                param_i64(&p, (int64_t) res->started_usec);
        else
                param_null(&p);
        if (res->pid > 0)
                param_i64(&p, res->pid);
        else
                param_null(&p);
        /* The result and the job's counters in one statement: atomic without a transaction of
         * its own, and one round trip; with the start and pid not recorded yet ($10, $11). */
        r = query_prep(h, PREP_FINISH,
                  "WITH f AS (UPDATE runs SET finished_usec = $2, status = $3, exit_code = $4, signal = $5,"
                  "  duration_usec = COALESCE($6::bigint, GREATEST($2::bigint - COALESCE($10::bigint, started_usec), 0)),"
                  "  message = $7, output = $8,"
                  "  started_usec = COALESCE($10::bigint, started_usec), pid = COALESCE($11::integer, pid)"
                  "  WHERE id = $1 AND status = 'running' RETURNING job, duration_usec)"
                  " INSERT INTO jobs AS j (name, runs_total, failures_total, last_run_id, last_status,"
                  "  last_finished_usec, last_duration_usec)"
                  " SELECT job, 1, $9, $1, $3, $2, duration_usec FROM f"
                  " ON CONFLICT (name) DO UPDATE SET runs_total = j.runs_total + 1,"
                  "  failures_total = j.failures_total + excluded.failures_total,"
                  "  last_run_id = excluded.last_run_id, last_status = excluded.last_status,"
                  "  last_finished_usec = excluded.last_finished_usec,"
                  "  last_duration_usec = excluded.last_duration_usec"
                  " RETURNING 1",
                  &p, "recording a run's result", &out);
        if (r < 0)
                return r;
        if (PQntuples(out) == 0)
                return explain_not_running(h, run_id);
        return 0;
}

static int pg_finish_run(history *base, int64_t run_id, const history_result *res) {
        pg_history *h = (pg_history *) base;
        int r;

        if (!res)
                return -EINVAL;
        if (!run_status_is_final(res->status) || res->status == RUN_STATUS_SKIPPED ||
            res->status == RUN_STATUS_MISSED) {
                set_error(h, "run %" PRId64 ": status %d cannot finish a run (expected a final status other than "
                          "skipped or missed)", run_id, (int) res->status);
                return -EINVAL;
        }
        if ((r = history_check_usec(base, res->finished_usec, false, "finish time")) < 0 ||
            (r = history_check_usec(base, res->duration_usec, true, "duration")) < 0 ||
            (res->started_usec > 0 && (r = history_check_usec(base, res->started_usec, false, "start time")) < 0))
                return r;
        if (res->output_size > 0 && !res->output)
                return -EINVAL;

        bool in_batch = h->in_batch;
        r = finish_write(h, run_id, res);
        if (r == -ENOTCONN)
                /* not written, not lost: written on reconnection */
                (void) pending_add(h, &h->pending, run_id, res);
        else if (r >= 0 && in_batch && h->in_batch)
                (void) pending_add(h, &h->batch_results, run_id, res);
        return r;
}

/* Right after a (re)connection, before anything else, and before each batch: the results kept
 * over an outage or lost with a batch (a COMMIT can fail without the connection going). One the
 * server refuses for good (taken over, gone, invalid) is done with; one that fails for a passing
 * reason (a timeout, a lock) stays for the next flush, behind nothing. */
static void pending_flush(pg_history *h) {
        size_t kept = 0, i = 0;
        char saved[sizeof h->base.error];

        if (h->pending.n == 0 || h->in_batch)
                return;
        memcpy(saved, h->base.error, sizeof saved);
        for (; i < h->pending.n && h->conn; i++) {
                pending_result *p = &h->pending.items[i];
                int r = finish_write(h, p->run_id, &p->r);
                if (r == -ENOTCONN)
                        break;
                if (r >= 0 || r == -ESTALE || r == -ENOENT || r == -EINVAL)
                        pending_result_done(p);
                else
                        h->pending.items[kept++] = *p;
        }
        memcpy(h->base.error, saved, sizeof saved);
        memmove(h->pending.items + kept, h->pending.items + i, (h->pending.n - i) * sizeof *h->pending.items);
        h->pending.n = kept + (h->pending.n - i);
}

static int pg_mark_interrupted(history *base, unsigned *ret_count) {
        pg_history *h = (pg_history *) base;
        _cleanup_pgresult_ PGresult *res = NULL;

        int r = query(h,
                      "WITH m AS (UPDATE runs SET status = 'interrupted',"
                      "  message = COALESCE(message, 'the daemon stopped while this run was in flight')"
                      "  WHERE status = 'running' RETURNING id, job),"
                      " c AS (INSERT INTO jobs AS j (name, runs_total, failures_total, last_run_id, last_status)"
                      "  SELECT job, count(*), count(*), max(id), 'interrupted' FROM m GROUP BY job"
                      "  ON CONFLICT (name) DO UPDATE SET"
                      "  runs_total = j.runs_total + excluded.runs_total,"
                      "  failures_total = j.failures_total + excluded.failures_total,"
                      /* a run finished after the interrupted one still is the last one */
                      "  last_status = CASE WHEN excluded.last_run_id > COALESCE(j.last_run_id, 0)"
                      "          THEN 'interrupted' ELSE j.last_status END,"
                      "  last_finished_usec = CASE WHEN excluded.last_run_id > COALESCE(j.last_run_id, 0)"
                      "          THEN NULL ELSE j.last_finished_usec END,"
                      "  last_duration_usec = CASE WHEN excluded.last_run_id > COALESCE(j.last_run_id, 0)"
                      "          THEN NULL ELSE j.last_duration_usec END,"
                      "  last_run_id = GREATEST(COALESCE(j.last_run_id, 0), excluded.last_run_id))"
                      " SELECT count(*) FROM m",
                      NULL, "marking runs interrupted", &res);
        if (r < 0)
                return r;
        if (ret_count)
                *ret_count = (unsigned) get_i64(res, 0, 0);
        return 0;
}

static int pg_prune(history *base, usec_t now, usec_t max_age, unsigned max_runs_per_job, unsigned *ret_deleted) {
        pg_history *h = (pg_history *) base;
        unsigned n = 0;
        int r;

        if ((r = history_check_usec(base, now, false, "current time")) < 0)
                return r;
        r = op_begin(h);
        if (r < 0)
                return r;
        if (max_age > 0 && max_age != USEC_INFINITY && max_age < now) {
                _cleanup_pgresult_ PGresult *res = NULL;
                pg_params p = {};
                param_i64(&p, (int64_t) (now - max_age));
                r = exec_raw(h, "DELETE FROM runs WHERE status != 'running' AND started_usec < $1", &p,
                             "pruning runs by age", &res);
                if (r < 0)
                        return op_end(h, r);
                n += (unsigned) affected(res);
        }
        if (max_runs_per_job > 0) {
                _cleanup_pgresult_ PGresult *res = NULL;
                pg_params p = {};
                param_i64(&p, max_runs_per_job);
                r = exec_raw(h,
                             "DELETE FROM runs WHERE id IN (SELECT id FROM"
                             " (SELECT id, ROW_NUMBER() OVER (PARTITION BY job ORDER BY id DESC) AS n"
                             "  FROM runs WHERE status != 'running') AS ranked WHERE n > $1)",
                             &p, "pruning runs by count", &res);
                if (r < 0)
                        return op_end(h, r);
                n += (unsigned) affected(res);
        }
        r = op_end(h, 0);
        if (r < 0)
                return r;
        if (ret_deleted)
                *ret_deleted = n;
        return 0;
}

/* ---- job state ---------------------------------------------------------------------------- */

#define JOB_STATE_COLUMNS                                                                                   \
        "enabled_override, last_scheduled_usec, runs_total, failures_total, skipped_total, last_run_id," \
        " last_status, last_finished_usec, last_duration_usec, first_loaded_usec, missed_total"

static history_job_state job_state_from_row(const PGresult *res, int row) {
        const char *st = get_str(res, row, 6);
        return (history_job_state) {
                .enabled_override = PQgetisnull(res, row, 0) ? -1 : (int) get_i64(res, row, 0),
                .last_scheduled_usec = get_usec(res, row, 1),
                .runs_total = (uint64_t) get_i64(res, row, 2),
                .failures_total = (uint64_t) get_i64(res, row, 3),
                .skipped_total = (uint64_t) get_i64(res, row, 4),
                .last_run_id = get_i64(res, row, 5),
                .last_status = st ? run_status_from_string(st) : _RUN_STATUS_INVALID,
                .last_finished_usec = get_usec(res, row, 7),
                .last_duration_usec = get_usec(res, row, 8),
                .first_loaded_usec = get_usec(res, row, 9),
                .missed_total = (uint64_t) get_i64(res, row, 10),
        };
}

static int pg_get_job_state(history *base, const char *job, history_job_state *ret) {
        pg_history *h = (pg_history *) base;
        _cleanup_pgresult_ PGresult *res = NULL;
        pg_params p = {};
        int r;

        if (!ret)
                return -EINVAL;
        if ((r = history_check_job(base, job)) < 0)
                return r;
        param_text(&p, job);
        r = query(h, "SELECT " JOB_STATE_COLUMNS " FROM jobs WHERE name = $1", &p, "reading a job's state", &res);
        if (r < 0)
                return r;
        if (PQntuples(res) == 0) {
                *ret = (history_job_state) {
                        .enabled_override = -1,
                        .last_scheduled_usec = USEC_INFINITY,
                        .last_status = _RUN_STATUS_INVALID,
                        .last_finished_usec = USEC_INFINITY,
                        .last_duration_usec = USEC_INFINITY,
                        .first_loaded_usec = USEC_INFINITY,
                };
                return 0;
        }
        *ret = job_state_from_row(res, 0);
        return 1;
}

static int pg_foreach_job_state(history *base, history_job_state_fn fn, void *userdata) {
        pg_history *h = (pg_history *) base;
        _cleanup_pgresult_ PGresult *res = NULL;

        if (!fn)
                return -EINVAL;
        int r = query(h, "SELECT " JOB_STATE_COLUMNS ", name FROM jobs", NULL, "reading the jobs' state", &res);
        if (r < 0)
                return r;
        for (int i = 0; i < PQntuples(res); i++) {
                history_job_state st = job_state_from_row(res, i);
                r = fn(PQgetvalue(res, i, 11), &st, userdata);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int pg_set_enabled_override(history *base, const char *job, int override) {
        pg_history *h = (pg_history *) base;
        pg_params p = {};
        int r;

        if ((r = history_check_job(base, job)) < 0)
                return r;
        if (override < -1 || override > 1) {
                set_error(h, "job '%s': enable override %d (expected -1, 0 or 1)", job, override);
                return -EINVAL;
        }
        param_text(&p, job);
        if (override >= 0)
                param_i64(&p, override);
        else
                param_null(&p);
        return query(h, "INSERT INTO jobs (name, enabled_override) VALUES ($1, $2::integer)"
                               " ON CONFLICT (name) DO UPDATE SET enabled_override = excluded.enabled_override", &p, "storing a job's enable override", NULL);
}

static int pg_set_last_scheduled(history *base, const char *job, usec_t scheduled) {
        pg_history *h = (pg_history *) base;
        pg_params p = {};
        int r;

        if ((r = history_check_job(base, job)) < 0 ||
            (r = history_check_usec(base, scheduled, true, "last scheduled time")) < 0)
                return r;
        param_text(&p, job);
        param_usec(&p, scheduled);
        return query_prep(h, PREP_SET_LAST_SCHEDULED, "INSERT INTO jobs (name, last_scheduled_usec) VALUES ($1, $2::bigint)"
                               " ON CONFLICT (name) DO UPDATE SET last_scheduled_usec = excluded.last_scheduled_usec", &p, "storing a job's last scheduled time", NULL);
}

static int pg_set_first_loaded(history *base, const char *job, usec_t when) {
        pg_history *h = (pg_history *) base;
        pg_params p = {};
        int r;

        if ((r = history_check_job(base, job)) < 0 || (r = history_check_usec(base, when, false, "first load time")) < 0)
                return r;
        param_text(&p, job);
        param_i64(&p, (int64_t) when);
        return query(h, "INSERT INTO jobs AS j (name, first_loaded_usec) VALUES ($1, $2::bigint)"
                               " ON CONFLICT (name) DO UPDATE SET"
                               " first_loaded_usec = COALESCE(j.first_loaded_usec, excluded.first_loaded_usec)", &p, "storing when a job was first loaded", NULL);
}

/* ---- reading runs ------------------------------------------------------------------------- */

static int read_run(const PGresult *res, int i, history_run *ret) {
        history_run run = {
                .id = get_i64(res, i, 0),
                .trigger = run_trigger_from_string(get_str(res, i, 2)),
                .attempt = (unsigned) get_i64(res, i, 3),
                .retry_of = get_i64(res, i, 4),
                .scheduled_usec = get_usec(res, i, 5),
                .started_usec = get_usec(res, i, 6),
                .finished_usec = get_usec(res, i, 7),
                .status = run_status_from_string(get_str(res, i, 8)),
                .exit_code = PQgetisnull(res, i, 9) ? -1 : (int) get_i64(res, i, 9),
                .signal = (int) get_i64(res, i, 10),
                .duration_usec = get_usec(res, i, 11),
                .pid = (pid_t) get_i64(res, i, 14),
                .missed_count = (uint64_t) get_i64(res, i, 15),
                .missed_last_usec = get_usec(res, i, 16),
        };

        run.job = strdup(PQgetvalue(res, i, 1));
        if (!run.job)
                goto oom;
        if (!PQgetisnull(res, i, 12) && !(run.message = strdup(PQgetvalue(res, i, 12))))
                goto oom;
        if (!PQgetisnull(res, i, 13)) {
                size_t n = 0;
                unsigned char *b = PQunescapeBytea((const unsigned char *) PQgetvalue(res, i, 13), &n);
                if (!b)
                        goto oom;
                run.output = malloc(n + 1);
                if (run.output) {
                        memcpy(run.output, b, n);
                        run.output[n] = '\0';
                        run.output_size = n;
                }
                PQfreemem(b);
                if (!run.output)
                        goto oom;
        }
        *ret = run;
        return 0;
oom:
        free(run.job);
        free(run.message);
        free(run.output);
        return -ENOMEM;
}

static int pg_list_runs(history *base, const char *job, usec_t since, run_status status, unsigned limit,
                        history_run **ret_runs, size_t *ret_n) {
        pg_history *h = (pg_history *) base;
        _cleanup_pgresult_ PGresult *res = NULL;
        history_run *runs = NULL;
        pg_params p = {};
        int r;

        if (!ret_runs || !ret_n)
                return -EINVAL;
        if ((r = history_check_usec(base, since, false, "since")) < 0)
                return r;
        if (status != _RUN_STATUS_INVALID && !run_status_to_string(status))
                return -EINVAL;

        param_text(&p, job);
        param_i64(&p, (int64_t) since);
        param_text(&p, status != _RUN_STATUS_INVALID ? run_status_to_string(status) : NULL);
        if (limit > 0)
                param_i64(&p, limit);
        else
                param_null(&p);
        r = query(h,
                  "SELECT id, job, trigger, attempt, retry_of, scheduled_usec, started_usec, finished_usec, status,"
                  " exit_code, signal, duration_usec, message, output, pid, missed_count, missed_last_usec"
                  " FROM runs WHERE ($1::text IS NULL OR job = $1) AND started_usec >= $2"
                  " AND ($3::text IS NULL OR status = $3) ORDER BY id DESC LIMIT $4::bigint",
                  &p, "listing runs", &res);
        if (r < 0)
                return r;
        size_t n = (size_t) PQntuples(res);
        if (n > 0) {
                runs = calloc(n, sizeof *runs);
                if (!runs)
                        return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++) {
                r = read_run(res, (int) i, &runs[i]);
                if (r < 0) {
                        history_runs_free(runs, i);
                        return r;
                }
        }
        *ret_runs = runs;
        *ret_n = n;
        return 0;
}

static int pg_get_job_stats(history *base, const char *job, usec_t since, history_job_stats *ret) {
        pg_history *h = (pg_history *) base;
        _cleanup_pgresult_ PGresult *res = NULL;
        history_job_stats st = {
                .average_duration_usec = USEC_INFINITY,
                .last_status = _RUN_STATUS_INVALID,
                .last_started_usec = USEC_INFINITY,
                .last_finished_usec = USEC_INFINITY,
        };
        pg_params p = {};
        int r;

        if (!ret)
                return -EINVAL;
        if ((r = history_check_job(base, job)) < 0 || (r = history_check_usec(base, since, false, "since")) < 0)
                return r;
        param_text(&p, job);
        param_i64(&p, (int64_t) since);
        /* one statement: both parts see the same snapshot */
        r = query(h,
                  "SELECT s.runs, s.failures, s.skipped, s.average, l.id, l.status, l.started_usec, l.finished_usec,"
                  " s.missed"
                  " FROM (SELECT count(*) FILTER (WHERE status NOT IN ('running', 'skipped', 'missed')) AS runs,"
                  "  count(*) FILTER (WHERE status IN " RUN_FAILURE_STATUSES ") AS failures,"
                  "  count(*) FILTER (WHERE status = 'skipped') AS skipped,"
                  "  avg(duration_usec) FILTER (WHERE status NOT IN ('running', 'skipped', 'missed')) AS average,"
                  "  COALESCE(sum(missed_count), 0) AS missed"
                  "  FROM runs WHERE job = $1 AND started_usec >= $2) AS s"
                  " LEFT JOIN LATERAL (SELECT id, status, started_usec, finished_usec FROM runs"
                  "  WHERE job = $1 AND started_usec >= $2 ORDER BY id DESC LIMIT 1) AS l ON true",
                  &p, "computing job statistics", &res);
        if (r < 0)
                return r;
        st.runs = (uint64_t) get_i64(res, 0, 0);
        st.failures = (uint64_t) get_i64(res, 0, 1);
        st.skipped = (uint64_t) get_i64(res, 0, 2);
        st.missed = (uint64_t) get_i64(res, 0, 8);
        if (!PQgetisnull(res, 0, 3))
                st.average_duration_usec = (usec_t) (strtod(PQgetvalue(res, 0, 3), NULL) + 0.5);
        if (!PQgetisnull(res, 0, 4)) {
                st.last_run_id = get_i64(res, 0, 4);
                st.last_status = run_status_from_string(get_str(res, 0, 5));
                st.last_started_usec = get_usec(res, 0, 6);
                st.last_finished_usec = get_usec(res, 0, 7);
        }
        *ret = st;
        return 0;
}

/* ---- retries ------------------------------------------------------------------------------ */

static int pg_put_retry(history *base, const history_retry *rt) {
        pg_history *h = (pg_history *) base;
        pg_params p = {};
        int r;

        if (!rt || rt->first_run_id <= 0 || rt->attempt < 1)
                return -EINVAL;
        if ((r = history_check_job(base, rt->job)) < 0 ||
            (r = history_check_usec(base, rt->scheduled_usec, false, "scheduled time")) < 0 ||
            (r = history_check_usec(base, rt->due_usec, false, "retry due time")) < 0)
                return r;
        param_i64(&p, rt->first_run_id);
        param_text(&p, rt->job);
        param_i64(&p, rt->attempt);
        param_i64(&p, (int64_t) rt->scheduled_usec);
        param_i64(&p, (int64_t) rt->due_usec);
        return query(h,
                     "INSERT INTO retries (first_id, job, attempt, scheduled_usec, due_usec) VALUES ($1, $2, $3, $4, $5)"
                     " ON CONFLICT (first_id) DO UPDATE SET job = excluded.job, attempt = excluded.attempt,"
                     " scheduled_usec = excluded.scheduled_usec, due_usec = excluded.due_usec",
                     &p, "storing a pending retry", NULL);
}

static int pg_remove_retry(history *base, int64_t first_run_id) {
        pg_params p = {};
        param_i64(&p, first_run_id);
        return query((pg_history *) base, "DELETE FROM retries WHERE first_id = $1", &p, "removing a pending retry",
                     NULL);
}

static int pg_foreach_retry(history *base, history_retry_fn fn, void *userdata) {
        _cleanup_pgresult_ PGresult *res = NULL;

        if (!fn)
                return -EINVAL;
        int r = query((pg_history *) base,
                      "SELECT first_id, job, attempt, scheduled_usec, due_usec FROM retries ORDER BY due_usec", NULL,
                      "reading the pending retries", &res);
        if (r < 0)
                return r;
        for (int i = 0; i < PQntuples(res); i++) {
                history_retry rt = {
                        .first_run_id = get_i64(res, i, 0),
                        .job = PQgetvalue(res, i, 1),
                        .attempt = (unsigned) get_i64(res, i, 2),
                        .scheduled_usec = get_usec(res, i, 3),
                        .due_usec = get_usec(res, i, 4),
                };
                r = fn(&rt, userdata);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int pg_get_size(history *base, uint64_t *ret_runs, uint64_t *ret_bytes) {
        _cleanup_pgresult_ PGresult *res = NULL;

        int r = query((pg_history *) base,
                      "SELECT (SELECT count(*) FROM runs), pg_total_relation_size('runs') +"
                      " pg_total_relation_size('jobs') + pg_total_relation_size('retries') +"
                      " pg_total_relation_size('pauses') + pg_total_relation_size('backfills')",
                      NULL, "measuring the history", &res);
        if (r < 0)
                return r;
        if (ret_runs)
                *ret_runs = (uint64_t) get_i64(res, 0, 0);
        if (ret_bytes)
                *ret_bytes = (uint64_t) get_i64(res, 0, 1);
        return 0;
}

/* ---- pauses and backfills ----------------------------------------------------------------- */

static int pg_set_pause(history *base, const char *job, bool paused, usec_t until) {
        pg_history *h = (pg_history *) base;
        pg_params p = {};
        int r;

        if ((r = history_check_job(base, job)) < 0 ||
            (paused && (r = history_check_usec(base, until, true, "pause end")) < 0))
                return r;
        param_text(&p, job);
        if (!paused)
                return query(h, "DELETE FROM pauses WHERE job = $1", &p, "removing a pause", NULL);
        param_usec(&p, until);
        return query(h, "INSERT INTO pauses (job, until_usec) VALUES ($1, $2::bigint)"
                               " ON CONFLICT (job) DO UPDATE SET until_usec = excluded.until_usec", &p, "storing a pause", NULL);
}

static int pg_foreach_pause(history *base, history_pause_fn fn, void *userdata) {
        _cleanup_pgresult_ PGresult *res = NULL;

        if (!fn)
                return -EINVAL;
        int r = query((pg_history *) base, "SELECT job, until_usec FROM pauses", NULL, "reading pauses", &res);
        if (r < 0)
                return r;
        for (int i = 0; i < PQntuples(res); i++)
                if ((r = fn(PQgetvalue(res, i, 0), get_usec(res, i, 1), userdata)) < 0)
                        return r;
        return 0;
}

static int pg_set_backfill(history *base, const char *job, const history_backfill *b) {
        pg_history *h = (pg_history *) base;
        pg_params p = {};
        int r;

        if ((r = history_check_job(base, job)) < 0)
                return r;
        param_text(&p, job);
        if (!b)
                return query(h, "DELETE FROM backfills WHERE job = $1", &p, "removing a backfill", NULL);
        if ((r = history_check_usec(base, b->from_usec, false, "backfill start")) < 0 ||
            (r = history_check_usec(base, b->to_usec, false, "backfill end")) < 0 ||
            (r = history_check_usec(base, b->next_usec, false, "backfill cursor")) < 0)
                return r;
        param_i64(&p, (int64_t) b->from_usec);
        param_i64(&p, (int64_t) b->to_usec);
        param_i64(&p, (int64_t) b->next_usec);
        return query(h, "INSERT INTO backfills (job, from_usec, to_usec, next_usec) VALUES ($1, $2, $3, $4)"
                               " ON CONFLICT (job) DO UPDATE SET from_usec = excluded.from_usec,"
                               " to_usec = excluded.to_usec, next_usec = excluded.next_usec", &p, "storing a backfill", NULL);
}

static int pg_foreach_backfill(history *base, history_backfill_fn fn, void *userdata) {
        _cleanup_pgresult_ PGresult *res = NULL;

        if (!fn)
                return -EINVAL;
        int r = query((pg_history *) base, "SELECT job, from_usec, to_usec, next_usec FROM backfills", NULL,
                      "reading backfills", &res);
        if (r < 0)
                return r;
        for (int i = 0; i < PQntuples(res); i++) {
                history_backfill b = {
                        .from_usec = get_usec(res, i, 1),
                        .to_usec = get_usec(res, i, 2),
                        .next_usec = get_usec(res, i, 3),
                };
                if ((r = fn(PQgetvalue(res, i, 0), &b, userdata)) < 0)
                        return r;
        }
        return 0;
}

static int pg_fire_claimed(history *base, const char *job, usec_t scheduled) {
        _cleanup_pgresult_ PGresult *res = NULL;
        pg_params p = {};
        int r;

        if ((r = history_check_job(base, job)) < 0)
                return r;
        param_text(&p, job);
        param_i64(&p, (int64_t) scheduled);
        r = query((pg_history *) base,
                  "SELECT 1 FROM runs WHERE job = $1 AND scheduled_usec = $2 AND attempt = 0 AND claim_class = 'fire'",
                  &p, "looking up a claim", &res);
        if (r < 0)
                return r;
        return PQntuples(res) > 0;
}

static const history_ops pg_ops = {
        .backend = HISTORY_BACKEND_POSTGRESQL,
        .close = pg_close,
        .set_size_limit = pg_set_size_limit,
        .begin = pg_begin,
        .commit = pg_commit,
        .rollback = pg_rollback,
        .checkpoint = pg_checkpoint,
        .wal_pages = pg_wal_pages,
        .claim_fire = pg_claim_fire,
        .claim_retry = pg_claim_retry,
        .record_skipped = pg_record_skipped,
        .skip_claimed = pg_skip_claimed,
        .record_missed = pg_record_missed,
        .set_pid = pg_set_pid,
        .set_start = pg_set_start,
        .finish_run = pg_finish_run,
        .mark_interrupted = pg_mark_interrupted,
        .prune = pg_prune,
        .get_job_state = pg_get_job_state,
        .foreach_job_state = pg_foreach_job_state,
        .set_enabled_override = pg_set_enabled_override,
        .set_last_scheduled = pg_set_last_scheduled,
        .list_runs = pg_list_runs,
        .get_job_stats = pg_get_job_stats,
        .put_retry = pg_put_retry,
        .remove_retry = pg_remove_retry,
        .foreach_retry = pg_foreach_retry,
        .set_first_loaded = pg_set_first_loaded,
        .get_size = pg_get_size,
        .set_pause = pg_set_pause,
        .foreach_pause = pg_foreach_pause,
        .set_backfill = pg_set_backfill,
        .foreach_backfill = pg_foreach_backfill,
        .fire_claimed = pg_fire_claimed,
};
