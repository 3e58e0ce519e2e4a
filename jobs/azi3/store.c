/* SPDX-License-Identifier: MIT */
/* The azi3 store's queries, written once over store-db.h; the backend is chosen at open. */
#include <ctype.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <time.h>

#include "store-db.h"
#include "uuid.h"

/* The persisted names are part of the file format, so they are spelled here rather than
 * borrowed from the model's log names. */
static const char *const reason_names[_WINDOW_CLOSE_REASON_MAX] = {
        [WINDOW_CLOSE_ACTIVITY] = "activity",
        [WINDOW_CLOSE_EXPIRED] = "expired",
        [WINDOW_CLOSE_ENDED] = "ended",
};

static const char *const result_names[_SESSION_RESULT_MAX] = {
        [SESSION_RESULT_NO_ALARMS] = "no_alarms",
        [SESSION_RESULT_ALARMS_RAISED] = "alarms_raised",
        [SESSION_RESULT_RULE_REMOVED] = "rule_removed",
        [SESSION_RESULT_NO_EVENTS] = "no_events",
        [SESSION_RESULT_ALARMS_TOO_LATE] = "alarms_too_late",
};

static const char *const alarm_names[_WINDOW_ALARM_STATE_MAX] = {
        [WINDOW_ALARM_OWED] = "owed",
        [WINDOW_ALARM_ALARMED] = "alarmed",
        [WINDOW_ALARM_TOO_LATE] = "too_late",
        [WINDOW_ALARM_DROPPED] = "dropped",
};

static int name_lookup(const char *const *names, size_t n, const char *s) {
        if (!s)
                return -EINVAL;
        for (size_t i = 0; i < n; i++)
                if (names[i] && streq(names[i], s))
                        return (int) i;
        return -EINVAL;
}

/* --- errors -------------------------------------------------------------------------------- */

int store_fail(azi3_store *s, int r, const char *fmt, ...) {
        va_list ap;
        int n = snprintf(s->error, sizeof(s->error), "azi3 store %s: ", s->path);

        if (n < 0 || (size_t) n >= sizeof(s->error))
                n = 0;
        va_start(ap, fmt);
        (void) vsnprintf(s->error + n, sizeof(s->error) - (size_t) n, fmt, ap);
        va_end(ap);
        return r;
}

const char *azi3_store_last_error(const azi3_store *s) {
        return s ? s->error : "";
}

/* --- backend dispatch ---------------------------------------------------------------------- */

bool azi3_store_is_conninfo(const char *store) {
        const char *p;

        if (!store)
                return false;
        if (strncmp(store, "postgresql://", 13) == 0 || strncmp(store, "postgres://", 11) == 0)
                return true;
        /* key=value form: the first word is followed by '=' (a file path never starts so in
         * practice; a path with '=' in it can be written as ./name=x) */
        p = store;
        while (*p == ' ' || *p == '\t')
                p++;
        if (!isalpha((unsigned char) *p))
                return false;
        while (isalnum((unsigned char) *p) || *p == '_')
                p++;
        while (*p == ' ' || *p == '\t')
                p++;
        return *p == '=';
}

static int batch_enter(azi3_store *s);

int store_prepare(azi3_store *s, store_stmt **ret, const char *sql, const char *fmt, ...) {
        va_list ap;
        int r;

        if (s->batching) {
                r = batch_enter(s);
                if (r < 0)
                        return r;
        }
        va_start(ap, fmt);
        r = s->backend == STORE_BACKEND_PG ? store_pg_prepare(s, ret, sql, fmt, ap)
                                           : store_sqlite_prepare(s, ret, sql, fmt, ap);
        va_end(ap);
        return r;
}

store_stmt *store_stmt_free(store_stmt *st) {
        if (!st)
                return NULL;
        if (st->backend == STORE_BACKEND_PG)
                store_pg_stmt_free(st);
        else
                store_sqlite_stmt_free(st);
        free(st);
        return NULL;
}

int store_step(azi3_store *s, store_stmt *st, const char *what) {
        return st->backend == STORE_BACKEND_PG ? store_pg_step(s, st, what) : store_sqlite_step(s, st, what);
}

int store_run(azi3_store *s, store_stmt *st, const char *what) {
        /* A write outside the caller's transaction takes the write lock too, as SQLite's
         * implicit transaction does: otherwise another node's single UPDATE (an alarm marked
         * posted) could land between the reads and writes of a locked transaction. */
        bool own = st->backend == STORE_BACKEND_PG && !azi3_store_in_transaction(s);
        int r;

        if (own) {
                r = azi3_store_begin(s);
                if (r < 0)
                        return r;
        }
        r = store_step(s, st, what);
        if (r >= 0)
                r = st->backend == STORE_BACKEND_PG ? st->changes : store_sqlite_changes(s);
        if (own) {
                char saved[sizeof(s->error)];
                int k;

                if (r < 0) {
                        memcpy(saved, s->error, sizeof(saved));
                        (void) azi3_store_rollback(s);
                        memcpy(s->error, saved, sizeof(saved));
                        return r;
                }
                k = azi3_store_commit(s);
                if (k < 0)
                        return k;
        }
        return r;
}

bool store_col_null(store_stmt *st, int i) {
        return st->backend == STORE_BACKEND_PG ? store_pg_col_null(st, i) : store_sqlite_col_null(st, i);
}

int64_t store_col_int64(store_stmt *st, int i) {
        return st->backend == STORE_BACKEND_PG ? store_pg_col_int64(st, i) : store_sqlite_col_int64(st, i);
}

const char *store_col_text(store_stmt *st, int i) {
        return st->backend == STORE_BACKEND_PG ? store_pg_col_text(st, i) : store_sqlite_col_text(st, i);
}

int store_exec(azi3_store *s, const char *sql, const char *what) {
        return s->backend == STORE_BACKEND_PG ? store_pg_exec(s, sql, what) : store_sqlite_exec(s, sql, what);
}

static int col_i64(store_stmt *st, int i, int64_t *ret) {
        *ret = store_col_null(st, i) ? 0 : store_col_int64(st, i);
        return 0;
}

static int col_usec(store_stmt *st, int i, usec_t *ret) {
        int64_t v = store_col_int64(st, i);
        if (v < 0)
                return -EBADMSG;
        *ret = (usec_t) v;
        return 0;
}

static int col_text(store_stmt *st, int i, char *buf, size_t size) {
        const char *t = store_col_text(st, i);
        size_t n = t ? strlen(t) : 0;

        if (n >= size)
                return -EBADMSG;
        memcpy(buf, t ? t : "", n);
        buf[n] = 0;
        return 0;
}

/* --- transactions -------------------------------------------------------------------------- */

bool azi3_store_in_transaction(azi3_store *s) {
        if (!s || !s->db)
                return false;
        if (s->batching)
                return s->batch_tx;
        return s->backend == STORE_BACKEND_PG ? store_pg_in_transaction(s) : store_sqlite_in_transaction(s);
}

/* --- batched commits (SQLite) --- */

/* Runs one statement without rows through the statement cache: the savepoints of a batch come
 * several times per session, and sqlite3_exec() would parse each again. */
static int prepare_unbatched(azi3_store *s, store_stmt **ret, const char *sql, const char *fmt, ...) {
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = store_sqlite_prepare(s, ret, sql, fmt, ap);
        va_end(ap);
        return r;
}

static int exec_cached(azi3_store *s, const char *sql, const char *what) {
        _cleanup_(store_stmt_freep) store_stmt *st = NULL;
        int r;

        r = prepare_unbatched(s, &st, sql, "");
        if (r < 0)
                return r;
        r = store_step(s, st, what);
        return r < 0 ? r : 0;
}

/* Opens the outer transaction of a batch unless it is open. SQLite rolls a transaction back by
 * itself after some errors (disk full, I/O): a batch found gone that way is marked lost, for the
 * next flush to report, and a new one is opened. */
static int batch_enter(azi3_store *s) {
        int r;

        if (s->batch_open && store_sqlite_in_transaction(s))
                return 0;
        if (s->batch_open) {
                s->batch_open = s->batch_tx = false;
                s->batch_lost = true;
        }
        r = store_sqlite_begin(s);
        if (r < 0)
                return r;
        s->batch_open = true;
        return 0;
}

int azi3_store_batch_begin(azi3_store *s) {
        if (!s || !s->db)
                return -EINVAL;
        if (s->batching || azi3_store_in_transaction(s))
                return store_fail(s, -EALREADY, "a transaction or a batch is already open");
        if (s->backend == STORE_BACKEND_PG)
                return 0;
        s->batching = true;
        s->batch_open = s->batch_tx = s->batch_lost = false;
        return 1;
}

int azi3_store_batch_flush(azi3_store *s) {
        bool lost;
        int r;

        if (!s || !s->batching)
                return 0;
        if (s->batch_tx)
                return store_fail(s, -EBUSY, "a batch cannot be committed inside the caller's open transaction");
        lost = s->batch_lost || (s->batch_open && !store_sqlite_in_transaction(s));
        s->batch_lost = false;
        if (lost) {
                s->batch_open = false;
                if (store_sqlite_in_transaction(s))
                        (void) store_sqlite_exec(s, "ROLLBACK", "rolling back a lost batch");
                return store_fail(s, -EIO, "SQLite rolled back a batch of writes after an error; they are lost");
        }
        if (!s->batch_open)
                return 0;
        s->batch_open = false;
        r = store_sqlite_exec(s, "COMMIT", "committing a batch of writes");
        if (r < 0 && store_sqlite_in_transaction(s)) {
                char saved[sizeof(s->error)];

                memcpy(saved, s->error, sizeof(saved));
                (void) store_sqlite_exec(s, "ROLLBACK", "rolling back a failed batch");
                memcpy(s->error, saved, sizeof(saved));
        }
        return r;
}

int azi3_store_batch_end(azi3_store *s) {
        int r;

        if (!s || !s->batching)
                return 0;
        if (s->batch_tx)
                (void) azi3_store_rollback(s);
        r = azi3_store_batch_flush(s);
        s->batching = false;
        return r;
}

/* Undoes the caller's transaction inside a batch (its savepoint), leaving the batch's other
 * writes; nothing to undo when SQLite already rolled the whole batch back (the flush says so). */
static int batch_tx_rollback(azi3_store *s) {
        int r;

        if (!store_sqlite_in_transaction(s))
                return 0;
        r = exec_cached(s, "ROLLBACK TO azi3_tx", "rolling back a transaction in the batch");
        if (r >= 0)
                r = exec_cached(s, "RELEASE azi3_tx", "closing a transaction in the batch");
        return r;
}

int azi3_store_begin(azi3_store *s) {
        int r;

        if (azi3_store_in_transaction(s))
                return store_fail(s, -EALREADY, "a transaction is already open");
        if (!s->batching)
                return s->backend == STORE_BACKEND_PG ? store_pg_begin(s) : store_sqlite_begin(s);
        r = batch_enter(s);
        if (r >= 0)
                r = exec_cached(s, "SAVEPOINT azi3_tx", "opening a transaction in the batch");
        if (r < 0)
                return r;
        s->batch_tx = true;
        return 0;
}

int azi3_store_commit(azi3_store *s) {
        int r;

        if (!azi3_store_in_transaction(s))
                return store_fail(s, -ENOTCONN, "commit without an open transaction");
        if (s->batching) {
                s->batch_tx = false;
                if (!store_sqlite_in_transaction(s)) {
                        s->batch_open = false;
                        s->batch_lost = true;
                        return store_fail(s, -EIO, "SQLite rolled back the batch of writes after an error");
                }
                r = exec_cached(s, "RELEASE azi3_tx", "committing a transaction in the batch");
                if (r < 0) {
                        char saved[sizeof(s->error)];

                        memcpy(saved, s->error, sizeof(saved));
                        (void) batch_tx_rollback(s);
                        memcpy(s->error, saved, sizeof(saved));
                }
                return r;
        }
        r = store_exec(s, "COMMIT", "committing");
        if (r < 0 && azi3_store_in_transaction(s))
                (void) store_exec(s, "ROLLBACK", "rolling back a failed commit");
        return r;
}

int azi3_store_rollback(azi3_store *s) {
        if (!azi3_store_in_transaction(s))
                return 0;
        if (s->batching) {
                s->batch_tx = false;
                return batch_tx_rollback(s);
        }
        return store_exec(s, "ROLLBACK", "rolling back");
}

/* A multi-statement call is atomic on its own: it runs in its own transaction, or inside the
 * caller's under a savepoint, so a failure halfway leaves the caller's earlier work intact. */
typedef enum tx_kind { TX_OWN, TX_SAVEPOINT } tx_kind;

static int tx_enter(azi3_store *s, tx_kind *ret) {
        int r;

        if (azi3_store_in_transaction(s)) {
                r = s->backend == STORE_BACKEND_PG ? store_exec(s, "SAVEPOINT azi3_step", "opening a savepoint")
                                                   : exec_cached(s, "SAVEPOINT azi3_step", "opening a savepoint");
                if (r < 0)
                        return r;
                *ret = TX_SAVEPOINT;
                return 0;
        }
        r = azi3_store_begin(s);
        if (r < 0)
                return r;
        *ret = TX_OWN;
        return 0;
}

static int tx_leave(azi3_store *s, tx_kind kind, int r) {
        char saved[sizeof(s->error)];
        int k;

        if (r < 0) {
                /* keep the message of the failure, not of the rollback */
                memcpy(saved, s->error, sizeof(saved));
                if (kind == TX_OWN)
                        (void) store_exec(s, "ROLLBACK", "rolling back");
                else
                        (void) store_exec(s, "ROLLBACK TO azi3_step; RELEASE azi3_step", "rolling back a savepoint");
                memcpy(s->error, saved, sizeof(saved));
                return r;
        }
        if (kind == TX_OWN) {
                k = azi3_store_commit(s);
                return k < 0 ? k : r;
        }
        k = s->backend == STORE_BACKEND_PG ? store_exec(s, "RELEASE azi3_step", "releasing a savepoint")
                                           : exec_cached(s, "RELEASE azi3_step", "releasing a savepoint");
        return k < 0 ? k : r;
}

/* --- opening ------------------------------------------------------------------------------- */

int azi3_store_open(const char *path, char *errbuf, size_t errlen, azi3_store **ret) {
        _cleanup_(azi3_store_closep) azi3_store *s = NULL;
        int r;

        if (isempty(path)) {
                if (errbuf && errlen > 0)
                        snprintf(errbuf, errlen, "azi3 store: no path given; expected the `store:` file path or a "
                                 "PostgreSQL connection string");
                return -EINVAL;
        }

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->path = strdup(path);
        if (!s->path)
                return -ENOMEM;
        s->backend = azi3_store_is_conninfo(path) ? STORE_BACKEND_PG : STORE_BACKEND_SQLITE;

        if (s->backend == STORE_BACKEND_PG) {
                char err[512];
                r = azi3_store_conninfo_check(path, err, sizeof(err));
                if (r < 0) {
                        /* never echo a string that may hold a password */
                        if (errbuf && errlen > 0)
                                snprintf(errbuf, errlen, "azi3 store: %s", err);
                        return r;
                }
                r = store_pg_open(s);
        } else
                r = store_sqlite_open(s);
        if (r < 0) {
                if (errbuf && errlen > 0)
                        snprintf(errbuf, errlen, "%s", s->error);
                return r;
        }

        s->error[0] = 0;
        *ret = TAKE_PTR(s);
        return 0;
}

azi3_store *azi3_store_close(azi3_store *s) {
        if (!s)
                return NULL;
        if (s->backend == STORE_BACKEND_PG)
                store_pg_close(s);
        else
                store_sqlite_close(s);
        free(s->path);
        free(s);
        return NULL;
}

int azi3_store_set_busy_timeout(azi3_store *s, unsigned msec) {
        return s->backend == STORE_BACKEND_PG ? store_pg_set_busy_timeout(s, msec) : store_sqlite_set_busy_timeout(s, msec);
}

int azi3_store_schema_version(azi3_store *s, int *ret) {
        int v, r;

        r = s->backend == STORE_BACKEND_PG ? store_pg_schema_version(s, &v) : store_sqlite_schema_version(s, &v);
        if (r < 0)
                return r;
        *ret = v;
        return 0;
}

bool azi3_store_is_pg(const azi3_store *s) {
        return s && s->backend == STORE_BACKEND_PG;
}

/* --- row readers --------------------------------------------------------------------------- */

typedef int (*row_reader)(azi3_store *s, store_stmt *st, void *ret);

#define SESSION_COLUMNS                                                                            \
        "id, robot_id, rule_id, local_day, start_usec, end_usec, window_usec, subscription_id, "  \
        "state, result, created_usec, completed_usec"

static int read_session(azi3_store *s, store_stmt *st, void *ret) {
        azi3_session x = {};
        const char *state = store_col_text(st, 8);
        const char *result = store_col_text(st, 9);
        int r = 0;

        r |= col_i64(st, 0, &x.id);
        r |= col_i64(st, 1, &x.robot_id);
        r |= col_text(st, 2, x.rule_id, sizeof(x.rule_id));
        r |= col_text(st, 3, x.local_day, sizeof(x.local_day));
        r |= col_usec(st, 4, &x.params.a);
        r |= col_usec(st, 5, &x.params.b);
        r |= col_usec(st, 6, &x.params.w);
        r |= col_i64(st, 7, &x.subscription_id);
        r |= col_usec(st, 10, &x.created_usec);
        r |= col_usec(st, 11, &x.completed_usec);
        x.completed = state && streq(state, "completed");
        if (x.completed) {
                int v = name_lookup(result_names, ELEMENTSOF(result_names), result);
                if (v < 0)
                        r = -EBADMSG;
                else
                        x.result = (session_result) v;
        }
        if (r < 0)
                return store_fail(s, -EBADMSG, "session row %" PRId64 " is malformed (corrupt file?)", x.id);

        *(azi3_session *) ret = x;
        return 0;
}

#define WINDOW_COLUMNS                                                                             \
        "id, session_id, since_usec, until_usec, closed_usec, reason, closing_event_id, "         \
        "alarm_state, alarm_reference_id, alarm_posted_usec, alarm_event_id, alarm_verified_usec"

static int read_window(azi3_store *s, store_stmt *st, void *ret) {
        azi3_window x = {};
        const char *reason = store_col_text(st, 5);
        const char *alarm = store_col_text(st, 7);
        int r = 0;

        r |= col_i64(st, 0, &x.id);
        r |= col_i64(st, 1, &x.session_id);
        r |= col_usec(st, 2, &x.span.since);
        r |= col_usec(st, 3, &x.span.until);
        r |= col_usec(st, 4, &x.closed_usec);
        x.current = store_col_null(st, 4);
        r |= col_i64(st, 6, &x.closing_event_id);
        r |= col_text(st, 8, x.alarm_reference_id, sizeof(x.alarm_reference_id));
        r |= col_usec(st, 9, &x.alarm_posted_usec);
        r |= col_i64(st, 10, &x.alarm_event_id);
        if (!x.current) {
                int v = name_lookup(reason_names, ELEMENTSOF(reason_names), reason);
                if (v < 0)
                        r = -EBADMSG;
                else
                        x.reason = (window_close_reason) v;
        }
        r |= col_usec(st, 11, &x.alarm_verified_usec);
        if (!alarm)
                x.alarm = WINDOW_ALARM_NONE;
        else {
                int v = name_lookup(alarm_names, ELEMENTSOF(alarm_names), alarm);
                if (v <= 0)
                        r = -EBADMSG;
                else
                        x.alarm = (window_alarm_state) v;
        }
        if (r < 0)
                return store_fail(s, -EBADMSG, "window row %" PRId64 " is malformed (corrupt file?)", x.id);

        *(azi3_window *) ret = x;
        return 0;
}

static int read_event(azi3_store *s, store_stmt *st, void *ret) {
        azi3_event x = {};
        const char *outcome = store_col_text(st, 4);
        int r = 0;

        r |= col_i64(st, 0, &x.session_id);
        r |= col_i64(st, 1, &x.source_event_id);
        r |= col_usec(st, 2, &x.created_usec);
        r |= col_usec(st, 3, &x.applied_usec);
        x.stale = outcome && streq(outcome, "stale");
        if (r < 0)
                return store_fail(s, -EBADMSG, "event row %" PRId64 " is malformed (corrupt file?)",
                                  x.source_event_id);
        *(azi3_event *) ret = x;
        return 0;
}

static int read_unsubscription(azi3_store *s, store_stmt *st, void *ret) {
        azi3_unsubscription x = {};
        int64_t attempts;
        const char *err = store_col_text(st, 3);
        int r = 0;

        r |= col_i64(st, 0, &x.robot_id);
        r |= col_i64(st, 1, &x.subscription_id);
        r |= col_i64(st, 2, &attempts);
        r |= col_usec(st, 4, &x.next_attempt_usec);
        if (r < 0 || attempts < 0)
                return store_fail(s, -EBADMSG, "pending unsubscription row is malformed (corrupt file?)");
        x.attempts = attempts > UINT_MAX ? UINT_MAX : (unsigned) attempts;
        /* An error text is for humans: truncating it is fine, refusing the row is not. */
        snprintf(x.last_error, sizeof(x.last_error), "%s", err ? err : "");
        *(azi3_unsubscription *) ret = x;
        return 0;
}

/* Reads exactly one row. -ENOENT (with NOTFOUND as the message) if there is none. */
static int store_get_one(azi3_store *s, store_stmt *st, row_reader reader, void *ret, const char *notfound) {
        int r = store_step(s, st, notfound);
        if (r < 0)
                return r;
        if (r == 0)
                return store_fail(s, -ENOENT, "%s", notfound);
        return reader(s, st, ret);
}

static int store_collect(azi3_store *s, store_stmt *st, size_t size, row_reader reader, const char *what,
                         void **ret, size_t *ret_n) {
        _cleanup_free_ void *a = NULL;
        size_t n = 0, allocated = 0;
        int r;

        for (;;) {
                r = store_step(s, st, what);
                if (r < 0)
                        return r;
                if (r == 0)
                        break;
                if (n == allocated) {
                        size_t m = allocated ? allocated * 2 : 8;
                        void *b = reallocarray(a, m, size);
                        if (!b)
                                return -ENOMEM;
                        a = b;
                        allocated = m;
                }
                r = reader(s, st, (char *) a + n * size);
                if (r < 0)
                        return r;
                n++;
        }

        *ret = n > 0 ? TAKE_PTR(a) : NULL;
        *ret_n = n;
        return 0;
}

/* --- sessions ------------------------------------------------------------------------------ */

static bool local_day_valid(const char *d) {
        if (!d || strlen(d) != AZI3_LOCAL_DAY_LEN)
                return false;
        for (size_t i = 0; i < AZI3_LOCAL_DAY_LEN; i++)
                if (i == 4 || i == 7 ? d[i] != '-' : (d[i] < '0' || d[i] > '9'))
                        return false;
        return true;
}

static int check_session_key(azi3_store *s, int64_t robot_id, const char *rule_id, const char *local_day) {
        if (robot_id < 0)
                return store_fail(s, -EINVAL, "robot id %" PRId64 " is negative, expected >= 0", robot_id);
        if (isempty(rule_id))
                return store_fail(s, -EINVAL, "empty rule id, expected the rule's rule_id");
        if (strlen(rule_id) > AZI3_STORE_RULE_ID_MAX)
                return store_fail(s, -ENAMETOOLONG, "rule id \"%.40s...\" is longer than %d bytes", rule_id,
                                  AZI3_STORE_RULE_ID_MAX);
        if (!local_day_valid(local_day))
                return store_fail(s, -EINVAL, "local day \"%s\" is not a date, expected YYYY-MM-DD",
                                  local_day ? local_day : "(null)");
        return 0;
}

int azi3_store_session_find(azi3_store *s, int64_t robot_id, const char *rule_id, const char *local_day,
                            azi3_session *ret) {
        _cleanup_(store_stmt_freep) store_stmt *st = NULL;
        char notfound[256];
        int r;

        r = check_session_key(s, robot_id, rule_id, local_day);
        if (r < 0)
                return r;
        r = store_prepare(s, &st,
                          "SELECT " SESSION_COLUMNS " FROM sessions WHERE robot_id = ? AND rule_id = ? AND local_day = ?",
                          "itt", robot_id, rule_id, local_day);
        if (r < 0)
                return r;
        snprintf(notfound, sizeof(notfound), "no session for robot %" PRId64 ", rule %s, day %s", robot_id,
                 rule_id, local_day);
        return store_get_one(s, st, read_session, ret, notfound);
}

int azi3_store_session_create(azi3_store *s, int64_t robot_id, const char *rule_id, const char *local_day,
                              const window_params *p, usec_t created_usec, azi3_session *ret) {
        _cleanup_(store_stmt_freep) store_stmt *st = NULL;
        azi3_session x = {};
        tx_kind kind;
        int r, created;

        r = check_session_key(s, robot_id, rule_id, local_day);
        if (r < 0)
                return r;
        if (!window_params_valid(p))
                return store_fail(s, -EINVAL, "session of robot %" PRId64 ", rule %s, day %s: expected A < B and W > 0",
                                  robot_id, rule_id, local_day);

        r = tx_enter(s, &kind);
        if (r < 0)
                return r;
        r = store_prepare(s, &st,
                          "INSERT INTO sessions (robot_id, rule_id, local_day, start_usec, end_usec, window_usec, created_usec) "
                          "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (robot_id, rule_id, local_day) DO NOTHING",
                          "ittuuuu", robot_id, rule_id, local_day, p->a, p->b, p->w, created_usec);
        if (r >= 0)
                r = store_run(s, st, "creating a session");
        created = r > 0;
        if (r >= 0)
                r = azi3_store_session_find(s, robot_id, rule_id, local_day, &x);
        r = tx_leave(s, kind, r);
        if (r < 0)
                return r;

        *ret = x;
        return created;
}

int azi3_store_session_get(azi3_store *s, int64_t session_id, azi3_session *ret) {
        _cleanup_(store_stmt_freep) store_stmt *st = NULL;
        char notfound[64];
        int r;

        r = store_prepare(s, &st, "SELECT " SESSION_COLUMNS " FROM sessions WHERE id = ?", "i", session_id);
        if (r < 0)
                return r;
        snprintf(notfound, sizeof(notfound), "no session %" PRId64, session_id);
        return store_get_one(s, st, read_session, ret, notfound);
}

int azi3_store_session_find_by_subscription(azi3_store *s, int64_t subscription_id, int64_t robot_id,
                                            azi3_session *ret) {
        _cleanup_(store_stmt_freep) store_stmt *st = NULL;
        char notfound[128];
        int r;

        r = store_prepare(s, &st, "SELECT " SESSION_COLUMNS " FROM sessions WHERE subscription_id = ? AND robot_id = ?",
                          "ii", subscription_id, robot_id);
        if (r < 0)
                return r;
        snprintf(notfound, sizeof(notfound), "no session for subscription %" PRId64 " of robot %" PRId64,
                 subscription_id, robot_id);
        return store_get_one(s, st, read_session, ret, notfound);
}

int azi3_store_session_set_subscription(azi3_store *s, int64_t session_id, int64_t subscription_id) {
        _cleanup_(store_stmt_freep) store_stmt *st = NULL;
        azi3_session x;
        tx_kind kind;
        int r;

        if (subscription_id <= 0)
                return store_fail(s, -EINVAL, "subscription id %" PRId64 " is not positive", subscription_id);

        r = tx_enter(s, &kind);
        if (r < 0)
                return r;
        r = azi3_store_session_get(s, session_id, &x);
        if (r >= 0 && x.subscription_id != 0 && x.subscription_id != subscription_id)
                r = store_fail(s, -EEXIST, "session %" PRId64 " already has subscription %" PRId64 ", not %" PRId64,
                               session_id, x.subscription_id, subscription_id);
        if (r >= 0 && x.subscription_id == 0) {
                r = store_prepare(s, &st, "UPDATE sessions SET subscription_id = ? WHERE id = ?", "ii",
                                  subscription_id, session_id);
                if (r >= 0)
                        r = store_run(s, st, "storing the subscription id");
                if (r == -EEXIST)
                        r = store_fail(s, -EEXIST, "subscription %" PRId64 " of robot %" PRId64
                                       " already belongs to another session", subscription_id, x.robot_id);
        }
        return tx_leave(s, kind, r < 0 ? r : 0);
}

static int count_windows(azi3_store *s, int64_t session_id, const char *where, int64_t *ret) {
        _cleanup_(store_stmt_freep) store_stmt *st = NULL;
        char sql[256];
        int r;

        snprintf(sql, sizeof(sql), "SELECT count(*) FROM windows WHERE session_id = ? AND %s", where);
        r = store_prepare(s, &st, sql, "i", session_id);
        if (r < 0)
                return r;
        r = store_step(s, st, "counting windows");
        if (r < 0)
                return r;
        *ret = store_col_int64(st, 0);
        return 0;
}

static int count_rows_where(azi3_store *s, const char *sql, int64_t id, int64_t *ret) {
        _cleanup_(store_stmt_freep) store_stmt *st = NULL;
        int r;

        r = store_prepare(s, &st, sql, "i", id);
        if (r < 0)
                return r;
        r = store_step(s, st, "counting rows");
        if (r < 0)
                return r;
        *ret = r > 0 ? store_col_int64(st, 0) : 0;
        return 0;
}

static int session_complete(azi3_store *s, int64_t session_id, usec_t completed_usec, bool rule_removed,
                            session_result *ret) {
        _cleanup_(store_stmt_freep) store_stmt *st = NULL;
        azi3_session x;
        int64_t n_current = 0, n_owed = 0, n_alarmed = 0, n_too_late = 0, n_applied = 0;
        session_result result = SESSION_RESULT_NO_ALARMS;
        tx_kind kind;
        int r;

        if (completed_usec == 0)
                return store_fail(s, -EINVAL, "completion time of session %" PRId64 " is 0", session_id);

        r = tx_enter(s, &kind);
        if (r < 0)
                return r;
        r = azi3_store_session_get(s, session_id, &x);
        if (r >= 0 && x.completed)
                r = store_fail(s, -EALREADY, "session %" PRId64 " is already completed", session_id);
        if (r >= 0)
                r = count_windows(s, session_id, "closed_usec IS NULL", &n_current);
        if (r >= 0)
                r = count_windows(s, session_id, "alarm_state = 'owed'", &n_owed);
        if (r >= 0)
                r = count_windows(s, session_id, "alarm_state = 'alarmed'", &n_alarmed);
        if (r >= 0 && (n_current > 0 || n_owed > 0))
                r = store_fail(s, -EBUSY,
                               "session %" PRId64 " cannot complete: %" PRId64 " current window(s) and %" PRId64
                               " owed alarm(s), expected none",
                               session_id, n_current, n_owed);
        if (r >= 0)
                r = count_windows(s, session_id, "alarm_state = 'too_late'", &n_too_late);
        if (r >= 0)
                r = count_rows_where(s, "SELECT count(*) FROM events WHERE session_id = ? AND outcome = 'applied'",
                                     session_id, &n_applied);
        if (r >= 0) {
                result = window_session_result_full(rule_removed, (size_t) n_applied, (size_t) n_alarmed,
                                                    (size_t) n_too_late);
                r = store_prepare(s, &st,
                                  "UPDATE sessions SET state = 'completed', result = ?, completed_usec = ? WHERE id = ?",
                                  "tui", result_names[result], completed_usec, session_id);
        }
        if (r >= 0)
                r = store_run(s, st, "completing a session");
        r = tx_leave(s, kind, r);
        if (r < 0)
                return r;
        if (ret)
                *ret = result;
        return 0;
}

int azi3_store_session_complete(azi3_store *s, int64_t session_id, usec_t completed_usec, session_result *ret) {
        return session_complete(s, session_id, completed_usec, false, ret);
}

int azi3_store_session_complete_rule_removed(azi3_store *s, int64_t session_id, usec_t completed_usec,
                                             size_t *ret_dropped, session_result *ret) {
        _cleanup_(store_stmt_freep) store_stmt *close = NULL, *drop = NULL;
        session_result result;
        tx_kind kind;
        int r, n = 0;

        r = tx_enter(s, &kind);
        if (r < 0)
                return r;
        r = store_prepare(s, &close,
                          "UPDATE windows SET closed_usec = ?, reason = 'ended' WHERE session_id = ? AND closed_usec IS NULL",
                          "ui", completed_usec, session_id);
        if (r >= 0)
                r = store_run(s, close, "closing the current window of a removed rule");
        if (r >= 0)
                r = store_prepare(s, &drop, "UPDATE windows SET alarm_state = 'dropped' WHERE session_id = ? AND alarm_state = 'owed'",
                                  "i", session_id);
        if (r >= 0)
                r = n = store_run(s, drop, "dropping the owed alarms of a removed rule");
        if (r >= 0)
                r = session_complete(s, session_id, completed_usec, true, &result);
        r = tx_leave(s, kind, r);
        if (r < 0)
                return r;
        if (ret_dropped)
                *ret_dropped = (size_t) n;
        if (ret)
                *ret = result;
        return 0;
}

int azi3_store_session_rewind(azi3_store *s, int64_t session_id, int64_t window_id) {
        _cleanup_(store_stmt_freep) store_stmt *del = NULL, *reopen = NULL, *events = NULL;
        azi3_window w;
        int64_t n_posted = 0;
        tx_kind kind;
        int r;

        r = tx_enter(s, &kind);
        if (r < 0)
                return r;
        r = azi3_store_window_get(s, window_id, &w);
        if (r >= 0 && (w.session_id != session_id || w.current || w.alarm == WINDOW_ALARM_ALARMED))
                r = store_fail(s, -EINVAL, "window %" PRId64 " of session %" PRId64 " cannot be judged again (%s)",
                               window_id, session_id, w.current ? "it is current" : w.session_id != session_id ?
                               "it belongs to another session" : "its alarm was posted");
        if (r >= 0)
                r = count_rows_where(s, "SELECT count(*) FROM windows WHERE session_id = (SELECT session_id FROM windows "
                                     "WHERE id = ?1) AND id > ?1 AND alarm_state = 'alarmed'", window_id, &n_posted);
        if (r >= 0 && n_posted > 0)
                r = store_fail(s, -EBUSY, "window %" PRId64 " cannot be judged again: %" PRId64
                               " later window(s) of session %" PRId64 " had their alarm posted",
                               window_id, n_posted, session_id);
        if (r >= 0)
                r = store_prepare(s, &del, "DELETE FROM windows WHERE session_id = ? AND id > ?", "ii", session_id,
                                  window_id);
        if (r >= 0)
                r = store_run(s, del, "deleting the windows after a window judged again");
        if (r >= 0)
                r = store_prepare(s, &reopen,
                                  "UPDATE windows SET closed_usec = NULL, reason = NULL, closing_event_id = NULL, "
                                  "alarm_state = NULL, alarm_verified_usec = NULL, alarm_claim_owner = NULL, alarm_claim_until = NULL "
                                  "WHERE id = ?",
                                  "i", window_id);
        if (r >= 0)
                r = store_run(s, reopen, "reopening a window judged again");
        if (r >= 0)
                r = store_prepare(s, &events, "DELETE FROM events WHERE session_id = ? AND created_usec >= ?", "iu",
                                  session_id, w.span.since);
        if (r >= 0)
                r = store_run(s, events, "forgetting the events to apply again");
        return tx_leave(s, kind, r < 0 ? r : 0);
}

int azi3_store_sessions_list_open(azi3_store *s, azi3_session **ret, size_t *ret_n) {
        _cleanup_(store_stmt_freep) store_stmt *st = NULL;
        int r;

        r = store_prepare(s, &st, "SELECT " SESSION_COLUMNS " FROM sessions WHERE state = 'open' ORDER BY end_usec, id",
                          "");
        if (r < 0)
                return r;
        return store_collect(s, st, sizeof(azi3_session), read_session, "listing open sessions", (void **) ret, ret_n);
}

int azi3_store_sessions_list_due(azi3_store *s, usec_t now, azi3_session **ret, size_t *ret_n, size_t *ret_n_open) {
        _cleanup_(store_stmt_freep) store_stmt *count = NULL, *st = NULL;
        int64_t n_open;
        int r;

        r = store_prepare(s, &count, "SELECT count(*) FROM sessions WHERE state = 'open'", "");
        if (r < 0)
                return r;
        r = store_step(s, count, "counting open sessions");
        if (r < 0)
                return r;
        r = col_i64(count, 0, &n_open);
        if (r < 0)
                return store_fail(s, r, "counting open sessions: not a count");
        r = store_prepare(s, &st,
                          "SELECT " SESSION_COLUMNS " FROM sessions WHERE state = 'open' AND (end_usec <= ?1 "
                          "OR id IN (SELECT session_id FROM windows WHERE closed_usec IS NULL AND until_usec <= ?1) "
                          "OR id IN (SELECT session_id FROM windows WHERE alarm_state = 'owed')) "
                          "ORDER BY end_usec, id",
                          "u", MIN(now, (usec_t) INT64_MAX));
        if (r < 0)
                return r;
        r = store_collect(s, st, sizeof(azi3_session), read_session, "listing open sessions with work due", (void **) ret,
                          ret_n);
        if (r < 0)
                return r;
        *ret_n_open = (size_t) MAX(n_open, (int64_t) *ret_n);
        return 0;
}

int azi3_store_sessions_list(azi3_store *s, const char *local_day, int64_t robot_id, azi3_session **ret,
                             size_t *ret_n) {
        _cleanup_(store_stmt_freep) store_stmt *st = NULL;
        int r;

        r = store_prepare(s, &st,
                          "SELECT " SESSION_COLUMNS " FROM sessions "
                          "WHERE (?1 IS NULL OR local_day = ?1) AND (?2 < 0 OR robot_id = ?2) "
                          "ORDER BY local_day, robot_id, rule_id",
                          "ti", local_day, robot_id);
        if (r < 0)
                return r;
        return store_collect(s, st, sizeof(azi3_session), read_session, "listing sessions", (void **) ret, ret_n);
}

int azi3_store_sessions_delete_completed(azi3_store *s, usec_t cutoff, size_t *ret_n) {
        _cleanup_(store_stmt_freep) store_stmt *st = NULL;
        int r;

        /* Windows and events go with their session: ON DELETE CASCADE. */
        r = store_prepare(s, &st, "DELETE FROM sessions WHERE state = 'completed' AND completed_usec < ?", "u",
                          MIN(cutoff, (usec_t) INT64_MAX));
        if (r < 0)
                return r;
        r = store_run(s, st, "deleting completed sessions");
        if (r < 0)
                return r;
        if (ret_n)
                *ret_n = (size_t) r;
        return 0;
}

/* --- windows ------------------------------------------------------------------------------- */

int azi3_store_window_get(azi3_store *s, int64_t window_id, azi3_window *ret) {
        _cleanup_(store_stmt_freep) store_stmt *st = NULL;
        char notfound[64];
        int r;

        r = store_prepare(s, &st, "SELECT " WINDOW_COLUMNS " FROM windows WHERE id = ?", "i", window_id);
        if (r < 0)
                return r;
        snprintf(notfound, sizeof(notfound), "no window %" PRId64, window_id);
        return store_get_one(s, st, read_window, ret, notfound);
}

int azi3_store_window_current(azi3_store *s, int64_t session_id, azi3_window *ret) {
        _cleanup_(store_stmt_freep) store_stmt *st = NULL;
        char notfound[64];
        int r;

        r = store_prepare(s, &st, "SELECT " WINDOW_COLUMNS " FROM windows WHERE session_id = ? AND closed_usec IS NULL",
                          "i", session_id);
        if (r < 0)
                return r;
        snprintf(notfound, sizeof(notfound), "session %" PRId64 " has no current window", session_id);
        return store_get_one(s, st, read_window, ret, notfound);
}

/* A UUID, fixed when the window opens: every attempt to post its alarm carries the
 * same reference, and unlike row ids it is never reused after a retention delete or with a
 * fresh file. */
/* Since issue 17 it also names the window, "azi3-<uuid>-<since>-<until>" in compact UTC
 * (20260329T074112Z): SPEC 8.3's alarm body has no other field that could carry it, and a
 * reader of Megazord's events sees which gap an alarm is about. */
_Static_assert(sizeof("azi3-") - 1 + AZI3_UUID_STRING_MAX + 2 * sizeof("-20260329T074112Z") <= AZI3_REFERENCE_ID_MAX,
               "reference id buffer too small");

static void format_compact_utc(usec_t t, char buf[static 24]) {
        time_t sec = (time_t) (t / USEC_PER_SEC);
        struct tm tm;

        if (!gmtime_r(&sec, &tm) || strftime(buf, 24, "%Y%m%dT%H%M%SZ", &tm) == 0)
                snprintf(buf, 24, "%" PRIu64, t / USEC_PER_SEC);
}

/* The UUID is version 7 on the window's since: windows open in time order, so the unique index
 * on the reference is appended to; random (version 4) ids made each run's commits write a page
 * of it per window opened. */
static int make_reference_id(const window_span *span, char *buf, size_t size) {
        char uuid[AZI3_UUID_STRING_MAX], since[24], until[24];
        int r = azi3_uuid_v7(span->since / USEC_PER_MSEC, uuid);
        if (r < 0)
                return r;
        format_compact_utc(span->since, since);
        format_compact_utc(span->until, until);
        snprintf(buf, size, "azi3-%s-%s-%s", uuid, since, until);
        return 0;
}

/* The INSERT of a window, inside the caller's transaction. The session's checks (open, SPAN
 * [t, min(t+W, B)) inside [A, B)) are in the statement: the session is read only to say why a
 * window was refused, so opening the next window costs one statement. */
static int window_insert(azi3_store *s, int64_t session_id, const window_span *span) {
        _cleanup_(store_stmt_freep) store_stmt *st = NULL;
        char ref[AZI3_REFERENCE_ID_MAX];
        azi3_session x;
        int r;

        r = make_reference_id(span, ref, sizeof(ref));
        if (r < 0)
                return store_fail(s, r, "cannot draw random bytes for an alarm reference id: %s", strerror(-r));

        r = store_prepare(s, &st,
                          "INSERT INTO windows (session_id, since_usec, until_usec, alarm_reference_id) "
                          "SELECT id, ?2, ?3, ?4 FROM sessions WHERE id = ?1 AND state = 'open' "
                          "AND ?2 >= start_usec AND ?2 < ?3 "
                          "AND ?3 = CASE WHEN ?2 + window_usec < end_usec THEN ?2 + window_usec ELSE end_usec END",
                          "iuut", session_id, span->since, span->until, ref);
        if (r < 0)
                return r;
        r = store_run(s, st, "opening a window");
        if (r == -EEXIST)
                return store_fail(s, -EEXIST, "session %" PRId64 " already has a current window", session_id);
        if (r != 0)
                return r < 0 ? r : 0;

        r = azi3_store_session_get(s, session_id, &x);
        if (r < 0)
                return r;
        if (x.completed)
                return store_fail(s, -ESTALE, "session %" PRId64 " is completed, it takes no new windows", session_id);
        return store_fail(s, -EINVAL,
                          "window [%" PRIu64 ", %" PRIu64 ") does not fit session %" PRId64
                          ", expected [t, min(t+W, B)) inside [A, B)",
                          span->since, span->until, session_id);
}

int azi3_store_window_open(azi3_store *s, int64_t session_id, const window_span *span, azi3_window *ret) {
        azi3_window w;
        tx_kind kind;
        int r;

        r = tx_enter(s, &kind);
        if (r < 0)
                return r;
        r = window_insert(s, session_id, span);
        if (r >= 0 && ret)
                /* the window just opened is the current one: one current window per session */
                r = azi3_store_window_current(s, session_id, &w);
        r = tx_leave(s, kind, r);
        if (r < 0)
                return r;
        if (ret)
                *ret = w;
        return 0;
}

/* Closes WINDOW_ID, of SESSION_ID (0: any), with HOLD written beside (may be NULL). One
 * statement when it succeeds; the row is read only to say why it did not. */
static int window_close_in(azi3_store *s, int64_t session_id, int64_t window_id, usec_t closed_usec,
                           window_close_reason reason, int64_t closing_event_id, const azi3_alarm_hold *hold) {
        _cleanup_(store_stmt_freep) store_stmt *st = NULL;
        azi3_window w;
        int r;

        if (reason < 0 || reason >= _WINDOW_CLOSE_REASON_MAX)
                return store_fail(s, -EINVAL, "window %" PRId64 ": invalid closing reason %d", window_id, (int) reason);
        if (closing_event_id < 0)
                return store_fail(s, -EINVAL, "window %" PRId64 ": closing event id %" PRId64 " is negative", window_id,
                                  closing_event_id);
        if (hold && reason != WINDOW_CLOSE_EXPIRED)
                return store_fail(s, -EINVAL, "window %" PRId64 " closes as %s: only an expired window owes an alarm "
                                  "to verify or claim", window_id, reason_names[reason]);

        /* COALESCE: without a hold, what the row holds stays as it was */
        r = store_prepare(s, &st,
                          "UPDATE windows SET closed_usec = ?1, reason = ?2, closing_event_id = ?3, alarm_state = ?4, "
                          "alarm_verified_usec = COALESCE(?5, alarm_verified_usec), "
                          "alarm_claim_owner = COALESCE(?6, alarm_claim_owner), "
                          "alarm_claim_until = COALESCE(?7, alarm_claim_until) "
                          "WHERE id = ?8 AND closed_usec IS NULL AND (?9 = 0 OR session_id = ?9)",
                          "utztZtZii", closed_usec, reason_names[reason], closing_event_id,
                          reason == WINDOW_CLOSE_EXPIRED ? "owed" : NULL, hold ? hold->verified_usec : 0,
                          hold ? hold->claim_owner : NULL, hold && hold->claim_owner ? hold->claim_until_usec : 0,
                          window_id, session_id);
        if (r < 0)
                return r;
        r = store_run(s, st, "closing a window");
        if (r != 0)
                return r < 0 ? r : 0;

        r = azi3_store_window_get(s, window_id, &w);
        if (r < 0)
                return r;
        if (session_id != 0 && w.session_id != session_id)
                return store_fail(s, -EINVAL, "window %" PRId64 " belongs to session %" PRId64 ", not %" PRId64,
                                  window_id, w.session_id, session_id);
        return store_fail(s, -EALREADY, "window %" PRId64 " is already closed (%s)", window_id, reason_names[w.reason]);
}

int azi3_store_window_close(azi3_store *s, int64_t window_id, usec_t closed_usec, window_close_reason reason,
                            int64_t closing_event_id) {
        return window_close_in(s, 0, window_id, closed_usec, reason, closing_event_id, NULL);
}

int azi3_store_apply_transition(azi3_store *s, int64_t session_id, int64_t current_window_id,
                                const window_transition *t, usec_t at, int64_t event_id,
                                const azi3_alarm_hold *hold, azi3_window *ret_opened) {
        azi3_window opened;
        tx_kind kind;
        bool atomic;
        int r = 0;

        if (t->close && (t->alarm == WINDOW_ALARM_OWED) != (t->reason == WINDOW_CLOSE_EXPIRED))
                return store_fail(s, -EINVAL, "transition of session %" PRId64 " owes an alarm iff expired, got %s/%d",
                                  session_id, t->reason >= 0 && t->reason < _WINDOW_CLOSE_REASON_MAX ? reason_names[t->reason] : "?",
                                  (int) t->alarm);
        if (hold && !t->close)
                return store_fail(s, -EINVAL, "transition of session %" PRId64 " closes no window, so it has no "
                                  "alarm to verify or claim", session_id);
        if (!t->close && !t->open)
                return 0;

        /* a lone statement is atomic by itself: a savepoint is paid only for two */
        atomic = t->open && (t->close || ret_opened);
        if (atomic) {
                r = tx_enter(s, &kind);
                if (r < 0)
                        return r;
        }
        if (t->close)
                r = window_close_in(s, session_id, current_window_id, at, t->reason, event_id, hold);
        if (r >= 0 && t->open) {
                r = window_insert(s, session_id, &t->next);
                /* the opened window is read back only for a caller who wants it */
                if (r >= 0 && ret_opened)
                        r = azi3_store_window_current(s, session_id, &opened);
        }
        if (atomic)
                r = tx_leave(s, kind, r);
        if (r < 0)
                return r;
        if (t->open && ret_opened)
                *ret_opened = opened;
        return t->open ? 1 : 0;
}

int azi3_store_windows_list(azi3_store *s, int64_t session_id, azi3_window **ret, size_t *ret_n) {
        _cleanup_(store_stmt_freep) store_stmt *st = NULL;
        int r;

        r = store_prepare(s, &st, "SELECT " WINDOW_COLUMNS " FROM windows WHERE session_id = ? ORDER BY since_usec, id",
                          "i", session_id);
        if (r < 0)
                return r;
        return store_collect(s, st, sizeof(azi3_window), read_window, "listing windows", (void **) ret, ret_n);
}

/* Time order of windows: since, until, then id (two windows of a session can share a since when
 * activity came at the very start of one). */
static int window_time_compare(const void *a, const void *b) {
        const azi3_window *x = a, *y = b;

        if (x->span.since != y->span.since)
                return x->span.since < y->span.since ? -1 : 1;
        if (x->span.until != y->span.until)
                return x->span.until < y->span.until ? -1 : 1;
        return (x->id > y->id) - (x->id < y->id);
}

void azi3_windows_sort_by_time(azi3_window *w, size_t n) {
        if (n > 1)
                qsort(w, n, sizeof(*w), window_time_compare);
}

int azi3_store_alarms_owed(azi3_store *s, int64_t session_id, azi3_window **ret, size_t *ret_n) {
        _cleanup_(store_stmt_freep) store_stmt *st = NULL;
        azi3_window *w = NULL;
        size_t n = 0;
        int r;

        /* Two statements, not "(?1 = 0 OR session_id = ?1)": that form cannot use an index on
         * session_id, so every session's call scanned every owed window of every session, and
         * window-expiration over 10,000 sessions spent its two minutes here. */
        if (session_id == 0)
                r = store_prepare(s, &st,
                                  "SELECT " WINDOW_COLUMNS " FROM windows WHERE alarm_state = 'owed' "
                                  "ORDER BY since_usec, until_usec, id",
                                  "");
        else
                /* ordered by windows_session alone; the ties are broken below: "ORDER BY
                 * since_usec, until_usec, id" here made SQLite build a temporary b-tree for every
                 * session (a tenth of window-expiration's CPU) to sort a window or two */
                r = store_prepare(s, &st,
                                  "SELECT " WINDOW_COLUMNS " FROM windows WHERE session_id = ? AND alarm_state = 'owed' "
                                  "ORDER BY since_usec",
                                  "i", session_id);
        if (r < 0)
                return r;
        r = store_collect(s, st, sizeof(azi3_window), read_window, "listing owed alarms", (void **) &w, &n);
        if (r < 0)
                return r;
        if (session_id != 0 && n > 1)
                qsort(w, n, sizeof(*w), window_time_compare);
        *ret = w;
        *ret_n = n;
        return 0;
}

int azi3_store_windows_in_play(azi3_store *s, int64_t session_id, azi3_windows_in_play *ret) {
        _cleanup_(store_stmt_freep) store_stmt *st = NULL;
        _cleanup_free_ azi3_window *w = NULL;
        azi3_windows_in_play x = {};
        size_t n = 0, k = 0;
        int r;

        /* by windows_session, as azi3_store_alarms_owed() for one session */
        r = store_prepare(s, &st,
                          "SELECT " WINDOW_COLUMNS " FROM windows WHERE session_id = ? "
                          "AND (closed_usec IS NULL OR alarm_state = 'owed') ORDER BY since_usec",
                          "i", session_id);
        if (r < 0)
                return r;
        r = store_collect(s, st, sizeof(azi3_window), read_window, "reading the windows in play", (void **) &w, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                if (!w[i].current) {
                        w[k++] = w[i];
                        continue;
                }
                if (x.has_current)
                        return store_fail(s, -EBADMSG, "session %" PRId64 " has two current windows, %" PRId64
                                          " and %" PRId64 " (corrupt file?)", session_id, x.current.id, w[i].id);
                x.has_current = true;
                x.current = w[i];
        }
        if (k > 1)
                qsort(w, k, sizeof(*w), window_time_compare);
        x.n_owed = k;
        x.owed = k > 0 ? TAKE_PTR(w) : NULL;
        *ret = x;
        return 0;
}

/* Session, then owed before current, then time order. */
static int window_in_play_compare(const void *a, const void *b) {
        const azi3_window *x = a, *y = b;

        if (x->session_id != y->session_id)
                return x->session_id < y->session_id ? -1 : 1;
        if (x->current != y->current)
                return x->current ? 1 : -1;
        return window_time_compare(a, b);
}

int azi3_store_windows_in_play_all(azi3_store *s, azi3_window **ret, size_t *ret_n) {
        _cleanup_(store_stmt_freep) store_stmt *st = NULL;
        azi3_window *w = NULL;
        size_t n = 0;
        int r;

        /* two arms, each by its partial index (windows_current, windows_owed); a window is
         * owed only once closed, so none is in both */
        r = store_prepare(s, &st,
                          "SELECT " WINDOW_COLUMNS " FROM windows WHERE closed_usec IS NULL "
                          "UNION ALL SELECT " WINDOW_COLUMNS " FROM windows WHERE alarm_state = 'owed'",
                          "");
        if (r < 0)
                return r;
        r = store_collect(s, st, sizeof(azi3_window), read_window, "reading the windows in play", (void **) &w, &n);
        if (r < 0)
                return r;
        if (n > 1)
                qsort(w, n, sizeof(*w), window_in_play_compare);
        *ret = w;
        *ret_n = n;
        return 0;
}

int azi3_store_alarm_mark_posted(azi3_store *s, int64_t window_id, usec_t posted_usec, int64_t alarm_event_id) {
        _cleanup_(store_stmt_freep) store_stmt *st = NULL;
        azi3_window w;
        int r;

        if (alarm_event_id <= 0)
                return store_fail(s, -EINVAL, "window %" PRId64 ": alarm event id %" PRId64 " is not positive", window_id,
                                  alarm_event_id);

        r = store_prepare(s, &st,
                          "UPDATE windows SET alarm_state = 'alarmed', alarm_posted_usec = ?, alarm_event_id = ?, "
                          "alarm_claim_owner = NULL, alarm_claim_until = NULL "
                          "WHERE id = ? AND alarm_state = 'owed'",
                          "uii", posted_usec, alarm_event_id, window_id);
        if (r < 0)
                return r;
        r = store_run(s, st, "marking an alarm posted");
        if (r != 0)
                return r < 0 ? r : 0;

        r = azi3_store_window_get(s, window_id, &w);
        if (r < 0)
                return r;
        if (w.alarm == WINDOW_ALARM_ALARMED)
                return store_fail(s, -EALREADY, "the alarm of window %" PRId64 " was already posted as event %" PRId64,
                                  window_id, w.alarm_event_id);
        return store_fail(s, -EINVAL, "window %" PRId64 " owes no alarm (it is %s)", window_id,
                          w.current ? "current" : reason_names[w.reason]);
}

int azi3_store_alarm_claim(azi3_store *s, int64_t window_id, const char *owner, usec_t now_usec, usec_t until_usec) {
        _cleanup_(store_stmt_freep) store_stmt *st = NULL, *holder = NULL;
        azi3_window w;
        int r;

        if (isempty(owner))
                return store_fail(s, -EINVAL, "window %" PRId64 ": an alarm claim needs an owner", window_id);

        /* One conditional UPDATE: on PostgreSQL a second claimer blocks on the row until the
         * first commits and then finds the claim taken; on SQLite the write lock orders them. */
        r = store_prepare(s, &st,
                          "UPDATE windows SET alarm_claim_owner = ?1, alarm_claim_until = ?2 "
                          "WHERE id = ?3 AND alarm_state = 'owed' "
                          "AND (alarm_claim_until IS NULL OR alarm_claim_until <= ?4 OR alarm_claim_owner = ?1)",
                          "tuiu", owner, until_usec, window_id, now_usec);
        if (r < 0)
                return r;
        r = store_run(s, st, "claiming an owed alarm");
        if (r != 0)
                return r < 0 ? r : 1;

        r = azi3_store_window_get(s, window_id, &w);
        if (r < 0)
                return r;
        if (w.alarm == WINDOW_ALARM_ALARMED)
                return store_fail(s, -EALREADY, "the alarm of window %" PRId64 " was already posted as event %" PRId64,
                                  window_id, w.alarm_event_id);
        if (w.alarm != WINDOW_ALARM_OWED)
                return store_fail(s, -EINVAL, "window %" PRId64 " owes no alarm", window_id);
        r = store_prepare(s, &holder, "SELECT alarm_claim_owner, alarm_claim_until FROM windows WHERE id = ?", "i",
                          window_id);
        if (r >= 0)
                r = store_step(s, holder, "reading the claim on an owed alarm");
        if (r < 0)
                return r;
        return store_fail(s, 0, "the alarm of window %" PRId64 " is being posted by %s (claimed until %" PRId64
                          " us, %" PRId64 " s from now)", window_id, r > 0 ? store_col_text(holder, 0) ?: "?" : "?",
                          r > 0 ? store_col_int64(holder, 1) : 0,
                          r > 0 ? (store_col_int64(holder, 1) - (int64_t) MIN(now_usec, (usec_t) INT64_MAX)) /
                                  (int64_t) USEC_PER_SEC : 0);
}

int azi3_store_alarm_release(azi3_store *s, int64_t window_id, const char *owner) {
        _cleanup_(store_stmt_freep) store_stmt *st = NULL;
        int r;

        r = store_prepare(s, &st,
                          "UPDATE windows SET alarm_claim_owner = NULL, alarm_claim_until = NULL "
                          "WHERE id = ? AND alarm_claim_owner = ?",
                          "it", window_id, owner);
        if (r < 0)
                return r;
        r = store_run(s, st, "releasing the claim on an owed alarm");
        return r < 0 ? r : 0;
}

int azi3_store_alarm_mark_verified(azi3_store *s, int64_t window_id, usec_t verified_usec) {
        _cleanup_(store_stmt_freep) store_stmt *st = NULL;
        int r;

        r = store_prepare(s, &st, "UPDATE windows SET alarm_verified_usec = ? WHERE id = ? AND alarm_state = 'owed'",
                          "ui", verified_usec, window_id);
        if (r < 0)
                return r;
        r = store_run(s, st, "marking an owed alarm verified");
        if (r < 0)
                return r;
        return r > 0 ? 0 : store_fail(s, -EINVAL, "window %" PRId64 " owes no alarm", window_id);
}

int azi3_store_alarm_mark_too_late(azi3_store *s, int64_t window_id) {
        _cleanup_(store_stmt_freep) store_stmt *st = NULL;
        int r;

        r = store_prepare(s, &st, "UPDATE windows SET alarm_state = 'too_late' WHERE id = ? AND alarm_state = 'owed'",
                          "i", window_id);
        if (r < 0)
                return r;
        r = store_run(s, st, "recording an alarm as too late");
        if (r < 0)
                return r;
        return r > 0 ? 0 : store_fail(s, -EINVAL, "window %" PRId64 " owes no alarm", window_id);
}

/* --- meta ---------------------------------------------------------------------------------- */

int azi3_store_stats_get(azi3_store *s, azi3_store_stats *ret) {
        _cleanup_(store_stmt_freep) store_stmt *open = NULL, *reasons = NULL, *alarms = NULL, *oldest = NULL;
        azi3_store_stats x = {};
        int r;

        r = store_prepare(s, &open, "SELECT count(*) FROM sessions WHERE state = 'open'", "");
        if (r >= 0)
                r = store_step(s, open, "counting open sessions");
        if (r > 0)
                x.sessions_open = (size_t) store_col_int64(open, 0);
        if (r >= 0)
                r = store_prepare(s, &reasons, "SELECT reason, count(*) FROM windows WHERE reason IS NOT NULL GROUP BY reason",
                                  "");
        while (r >= 0 && (r = store_step(s, reasons, "counting windows by reason")) > 0) {
                int v = name_lookup(reason_names, ELEMENTSOF(reason_names), store_col_text(reasons, 0));
                if (v >= 0)
                        x.windows_closed[v] = (size_t) store_col_int64(reasons, 1);
        }
        if (r >= 0)
                r = store_prepare(s, &alarms,
                                  "SELECT alarm_state, count(*) FROM windows WHERE alarm_state IS NOT NULL GROUP BY alarm_state",
                                  "");
        while (r >= 0 && (r = store_step(s, alarms, "counting alarms by state")) > 0) {
                int v = name_lookup(alarm_names, ELEMENTSOF(alarm_names), store_col_text(alarms, 0));
                if (v >= 0)
                        x.alarms[v] = (size_t) store_col_int64(alarms, 1);
        }
        if (r >= 0)
                r = store_prepare(s, &oldest, "SELECT min(until_usec) FROM windows WHERE alarm_state = 'owed'", "");
        if (r >= 0)
                r = store_step(s, oldest, "finding the oldest owed alarm");
        if (r > 0 && !store_col_null(oldest, 0))
                x.oldest_owed_until = (usec_t) MAX(store_col_int64(oldest, 0), (int64_t) 0);
        if (r < 0)
                return r;
        *ret = x;
        return 0;
}

int azi3_store_meta_get(azi3_store *s, const char *key, char *buf, size_t size) {
        _cleanup_(store_stmt_freep) store_stmt *st = NULL;
        int r;

        r = store_prepare(s, &st, "SELECT value FROM meta WHERE key = ?", "t", key);
        if (r < 0)
                return r;
        r = store_step(s, st, "reading a meta value");
        if (r < 0)
                return r;
        if (r == 0)
                return -ENOENT;
        snprintf(buf, size, "%s", store_col_text(st, 0) ?: "");
        return 0;
}

int azi3_store_meta_set(azi3_store *s, const char *key, const char *value) {
        _cleanup_(store_stmt_freep) store_stmt *st = NULL;
        int r;

        r = store_prepare(s, &st, "INSERT INTO meta (key, value) VALUES (?, ?) "
                          "ON CONFLICT (key) DO UPDATE SET value = excluded.value", "tt", key, value);
        if (r < 0)
                return r;
        r = store_run(s, st, "writing a meta value");
        return r < 0 ? r : 0;
}

/* --- events -------------------------------------------------------------------------------- */

int azi3_store_event_record(azi3_store *s, int64_t session_id, int64_t source_event_id, usec_t created_usec,
                            usec_t applied_usec, window_event_outcome outcome) {
        _cleanup_(store_stmt_freep) store_stmt *st = NULL;
        const char *o;
        int r;

        switch (outcome) {
        case WINDOW_EVENT_STALE:
                o = "stale";
                break;
        case WINDOW_EVENT_ACTIVITY:
        case WINDOW_EVENT_LATE:
                o = "applied";
                break;
        default:
                return store_fail(s, -EINVAL, "event %" PRId64 ": outcome %d is not recordable", source_event_id,
                                  (int) outcome);
        }
        if (source_event_id <= 0)
                return store_fail(s, -EINVAL, "source event id %" PRId64 " is not positive", source_event_id);

        r = store_prepare(s, &st,
                          "INSERT INTO events (session_id, source_event_id, created_usec, applied_usec, outcome) "
                          "VALUES (?, ?, ?, ?, ?) ON CONFLICT (session_id, source_event_id) DO NOTHING",
                          "iiuut", session_id, source_event_id, created_usec, applied_usec, o);
        if (r < 0)
                return r;
        r = store_run(s, st, "recording an event");
        if (r == -ENOENT)
                return store_fail(s, -ENOENT, "event %" PRId64 ": no session %" PRId64, source_event_id, session_id);
        if (r < 0)
                return r;
        return r > 0 ? 1 : 0;
}

int azi3_store_event_seen(azi3_store *s, int64_t session_id, int64_t source_event_id) {
        _cleanup_(store_stmt_freep) store_stmt *st = NULL;
        int r;

        r = store_prepare(s, &st, "SELECT 1 FROM events WHERE session_id = ? AND source_event_id = ?", "ii", session_id,
                          source_event_id);
        if (r < 0)
                return r;
        return store_step(s, st, "looking up an event");
}

int azi3_store_events_list(azi3_store *s, int64_t session_id, azi3_event **ret, size_t *ret_n) {
        _cleanup_(store_stmt_freep) store_stmt *st = NULL;
        int r;

        r = store_prepare(s, &st,
                          "SELECT session_id, source_event_id, created_usec, applied_usec, outcome FROM events "
                          "WHERE session_id = ? ORDER BY created_usec, source_event_id",
                          "i", session_id);
        if (r < 0)
                return r;
        return store_collect(s, st, sizeof(azi3_event), read_event, "listing events", (void **) ret, ret_n);
}

/* --- pending unsubscriptions --------------------------------------------------------------- */

int azi3_store_unsubscription_add(azi3_store *s, int64_t robot_id, int64_t subscription_id,
                                  usec_t next_attempt_usec) {
        _cleanup_(store_stmt_freep) store_stmt *st = NULL;
        int r;

        if (subscription_id <= 0)
                return store_fail(s, -EINVAL, "subscription id %" PRId64 " is not positive", subscription_id);

        r = store_prepare(s, &st,
                          "INSERT INTO pending_unsubscriptions (robot_id, subscription_id, next_attempt_usec) "
                          "VALUES (?, ?, ?) ON CONFLICT (robot_id, subscription_id) DO NOTHING",
                          "iiu", robot_id, subscription_id, next_attempt_usec);
        if (r < 0)
                return r;
        r = store_run(s, st, "queuing an unsubscription");
        if (r < 0)
                return r;
        return r > 0 ? 1 : 0;
}

int azi3_store_unsubscription_failed(azi3_store *s, int64_t robot_id, int64_t subscription_id, const char *error,
                                     usec_t next_attempt_usec) {
        _cleanup_(store_stmt_freep) store_stmt *st = NULL;
        int r;

        r = store_prepare(s, &st,
                          "UPDATE pending_unsubscriptions SET attempts = attempts + 1, last_error = ?, next_attempt_usec = ? "
                          "WHERE robot_id = ? AND subscription_id = ?",
                          "tuii", error, next_attempt_usec, robot_id, subscription_id);
        if (r < 0)
                return r;
        r = store_run(s, st, "recording a failed unsubscription");
        if (r < 0)
                return r;
        if (r == 0)
                return store_fail(s, -ENOENT, "no pending unsubscription %" PRId64 " of robot %" PRId64, subscription_id,
                                  robot_id);
        return 0;
}

int azi3_store_unsubscriptions_due(azi3_store *s, usec_t now, azi3_unsubscription **ret, size_t *ret_n) {
        _cleanup_(store_stmt_freep) store_stmt *st = NULL;
        int r;

        r = store_prepare(s, &st,
                          "SELECT robot_id, subscription_id, attempts, last_error, next_attempt_usec "
                          "FROM pending_unsubscriptions WHERE next_attempt_usec <= ? "
                          "ORDER BY next_attempt_usec, robot_id, subscription_id",
                          "u", MIN(now, (usec_t) INT64_MAX));
        if (r < 0)
                return r;
        return store_collect(s, st, sizeof(azi3_unsubscription), read_unsubscription, "listing pending unsubscriptions",
                             (void **) ret, ret_n);
}

int azi3_store_unsubscription_remove(azi3_store *s, int64_t robot_id, int64_t subscription_id) {
        _cleanup_(store_stmt_freep) store_stmt *st = NULL;
        int r;

        r = store_prepare(s, &st, "DELETE FROM pending_unsubscriptions WHERE robot_id = ? AND subscription_id = ?", "ii",
                          robot_id, subscription_id);
        if (r < 0)
                return r;
        r = store_run(s, st, "removing a pending unsubscription");
        if (r < 0)
                return r;
        if (r == 0)
                return store_fail(s, -ENOENT, "no pending unsubscription %" PRId64 " of robot %" PRId64, subscription_id,
                                  robot_id);
        return 0;
}
