/* SPDX-License-Identifier: MIT */
#include <check.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "azi3/store-db.h"
#include "azi3/store.h"
#include "azi3/uuid.h"

#define MIN_ (60 * USEC_PER_SEC)
#define A0 ((usec_t) 1774767600 * USEC_PER_SEC) /* 2026-03-29 07:00 UTC */
#define W0 (2 * USEC_PER_HOUR)
#define B0 (A0 + 15 * USEC_PER_HOUR)

/* Every test runs on SQLite; with AZI3_TEST_PG set to a connection string (tests/pg/with-pg-
 * azi3.sh starts a private server) the shared ones run again on PostgreSQL, each on an empty
 * schema azi3. */
static const char *pg;
static char dir[64];
static char path[512];

static PGconn *pg_connect(void) {
        PGconn *c = PQconnectdb(pg);
        ck_assert_msg(PQstatus(c) == CONNECTION_OK, "connect %s: %s", pg, PQerrorMessage(c));
        PQclear(PQexec(c, "SET client_min_messages = warning"));
        PQclear(PQexec(c, "SET search_path TO azi3"));
        return c;
}

/* Runs SQL on PostgreSQL; returns SQLite's code for the outcome, so a test reads the same on
 * both backends. */
static int pg_exec(const char *sql) {
        PGconn *c = pg_connect();
        PGresult *res = PQexec(c, sql);
        ExecStatusType st = PQresultStatus(res);
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        int rc = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? SQLITE_OK
                 : state && strncmp(state, "23", 2) == 0        ? SQLITE_CONSTRAINT
                                                                 : SQLITE_ERROR;
        PQclear(res);
        PQfinish(c);
        return rc;
}

static void setup(void) {
        snprintf(dir, sizeof(dir), "/tmp/test-azi3-store-XXXXXX");
        ck_assert_ptr_nonnull(mkdtemp(dir));
        if (pg) {
                snprintf(path, sizeof(path), "%s", pg);
                ck_assert_int_eq(pg_exec("DROP SCHEMA IF EXISTS azi3 CASCADE"), SQLITE_OK);
        } else
                snprintf(path, sizeof(path), "%s/azi3.db", dir);
}

static void teardown(void) {
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        ck_assert_int_eq(system(cmd), 0);
}

static azi3_store *open_ok(void) {
        azi3_store *s = NULL;
        char err[512] = "";
        int r = azi3_store_open(path, err, sizeof(err), &s);
        ck_assert_msg(r == 0, "open %s: %d %s", path, r, err);
        return s;
}

static const window_params P0 = { .a = A0, .b = B0, .w = W0 };

/* A session with its first window, the way monitoring-scheduler creates one. */
static azi3_session make_session(azi3_store *s, int64_t robot, const char *rule, const char *day) {
        azi3_session x;
        window_span first;
        ck_assert_int_eq(azi3_store_begin(s), 0);
        ck_assert_int_ge(azi3_store_session_create(s, robot, rule, day, &P0, A0, &x), 0);
        ck_assert_int_eq(window_first(&x.params, &first), 0);
        ck_assert_int_eq(azi3_store_window_open(s, x.id, &first, NULL), 0);
        ck_assert_int_eq(azi3_store_commit(s), 0);
        return x;
}

/* The pattern the jobs use: lock, read, compute with the pure model, write, commit. Returns
 * the model's outcome or a negative errno. */
static int apply_event(azi3_store *s, int64_t session_id, int64_t event_id, usec_t e, usec_t now) {
        azi3_session x;
        azi3_window cur;
        window_transition t;
        bool has_cur;
        int r, o;

        r = azi3_store_begin(s);
        if (r < 0)
                return r;
        _cleanup_(azi3_store_rollbackp) _unused_ azi3_store *tx = s;

        r = azi3_store_session_get(s, session_id, &x);
        if (r < 0)
                return r;
        r = azi3_store_window_current(s, session_id, &cur);
        if (r < 0 && r != -ENOENT)
                return r;
        has_cur = r >= 0;
        r = azi3_store_event_seen(s, session_id, event_id);
        if (r < 0)
                return r;
        o = window_apply_event(&x.params, has_cur ? &cur.span : NULL, r > 0, e, &t);
        if (o < 0 || o == WINDOW_EVENT_DUPLICATE)
                return o;
        r = azi3_store_apply_transition(s, session_id, has_cur ? cur.id : 0, &t, now, event_id, NULL, NULL);
        if (r < 0)
                return r;
        r = azi3_store_event_record(s, session_id, event_id, e, now, (window_event_outcome) o);
        if (r < 0)
                return r;
        r = azi3_store_commit(s);
        return r < 0 ? r : o;
}

static int64_t count_rows(const char *sql) {
        sqlite3 *db;
        sqlite3_stmt *st;
        int64_t n;

        if (pg) {
                PGconn *c = pg_connect();
                PGresult *res = PQexec(c, sql);
                ck_assert_msg(PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1, "%s: %s", sql,
                              PQresultErrorMessage(res));
                n = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
                PQclear(res);
                PQfinish(c);
                return n;
        }
        ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
        ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
        ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
        n = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        sqlite3_close(db);
        return n;
}

static void assert_integrity(void) {
        sqlite3 *db;
        sqlite3_stmt *st;

        if (pg)
                return; /* PostgreSQL checks its constraints on every statement */
        ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
        ck_assert_int_eq(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
        ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
        ck_assert_str_eq((const char *) sqlite3_column_text(st, 0), "ok");
        sqlite3_finalize(st);
        sqlite3_close(db);
}

static int raw_exec(const char *sql) {
        sqlite3 *db;
        int rc;

        if (pg)
                return pg_exec(sql);
        ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
        rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
        sqlite3_close(db);
        return rc;
}

/* --- opening ------------------------------------------------------------------------------ */

START_TEST(test_migrate_empty_and_reopen) {
        _cleanup_(azi3_store_closep) azi3_store *s = NULL;
        azi3_session x, y;
        int v = 0, fd;

        /* An existing empty file is a valid starting point, as is a missing one. */
        fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
        ck_assert_int_ge(fd, 0);
        close(fd);

        s = open_ok();
        ck_assert_int_eq(azi3_store_schema_version(s, &v), 0);
        ck_assert_int_eq(v, AZI3_STORE_SCHEMA_VERSION);
        x = make_session(s, 42, "toilet-activity", "2026-03-29");
        s = azi3_store_close(s);
        ck_assert_ptr_null(s);
        ck_assert_int_eq(count_rows("PRAGMA user_version"), AZI3_STORE_SCHEMA_VERSION);
        ck_assert_int_eq(count_rows("SELECT count(*) FROM sessions"), 1);

        s = open_ok();
        ck_assert_int_eq(azi3_store_schema_version(s, &v), 0);
        ck_assert_int_eq(v, AZI3_STORE_SCHEMA_VERSION);
        ck_assert_int_eq(azi3_store_session_find(s, 42, "toilet-activity", "2026-03-29", &y), 0);
        ck_assert_int_eq(y.id, x.id);
        ck_assert_uint_eq(y.params.a, A0);
        ck_assert_uint_eq(y.params.b, B0);
        ck_assert_uint_eq(y.params.w, W0);
        ck_assert_int_eq(count_rows("SELECT count(*) FROM windows"), 1);

        /* Settings that are per file persist; WAL is one of them. */
        {
                sqlite3 *db;
                sqlite3_stmt *st;
                ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
                ck_assert_int_eq(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
                ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
                ck_assert_str_eq((const char *) sqlite3_column_text(st, 0), "wal");
                sqlite3_finalize(st);
                sqlite3_close(db);
        }

        ck_assert_ptr_null(azi3_store_close(NULL));
}
END_TEST

START_TEST(test_newer_version_refused) {
        azi3_store *s = NULL;
        char err[512] = "";

        s = open_ok();
        s = azi3_store_close(s);
        ck_assert_int_eq(raw_exec("PRAGMA user_version = 99"), SQLITE_OK);

        ck_assert_int_eq(azi3_store_open(path, err, sizeof(err), &s), -EPROTONOSUPPORT);
        ck_assert_ptr_null(s);
        ck_assert_msg(strstr(err, path) && strstr(err, "99") && strstr(err, "newer"), "message: %s", err);
        /* Refusing must not touch the file. */
        ck_assert_int_eq(count_rows("PRAGMA user_version"), 99);
}
END_TEST

START_TEST(test_foreign_file_refused) {
        azi3_store *s = NULL;
        char err[512] = "";
        FILE *f;

        ck_assert_int_eq(raw_exec("CREATE TABLE history (x INTEGER)"), SQLITE_OK);
        ck_assert_int_eq(azi3_store_open(path, err, sizeof(err), &s), -EBADMSG);
        ck_assert_msg(strstr(err, "expected an azi3 store"), "message: %s", err);
        ck_assert_ptr_null(s);

        unlink(path);
        f = fopen(path, "we");
        ck_assert_ptr_nonnull(f);
        fputs("this is not a database, it is a text file that is long enough to have a header\n", f);
        fclose(f);
        ck_assert_int_eq(azi3_store_open(path, err, sizeof(err), &s), -EBADMSG);
        ck_assert_msg(strstr(err, "not a database"), "message: %s", err);
}
END_TEST

START_TEST(test_open_errors) {
        azi3_store *s = NULL;
        char err[512] = "", bad[192];

        snprintf(bad, sizeof(bad), "%s/no/such/dir/azi3.db", dir);
        ck_assert_int_eq(azi3_store_open(bad, err, sizeof(err), &s), -ENOENT);
        ck_assert_msg(strstr(err, bad) && strstr(err, "unable to open"), "message: %s", err);
        ck_assert_int_eq(azi3_store_open("", err, sizeof(err), &s), -EINVAL);
        ck_assert_ptr_null(s);
}
END_TEST

/* --- sessions ----------------------------------------------------------------------------- */

START_TEST(test_session_idempotent) {
        _cleanup_(azi3_store_closep) azi3_store *s = open_ok();
        azi3_session x, y, z;
        window_params other = { .a = A0 + USEC_PER_HOUR, .b = B0, .w = W0 };
        char longid[AZI3_STORE_RULE_ID_MAX + 2];

        ck_assert_int_eq(azi3_store_session_create(s, 42, "toilet", "2026-03-29", &P0, A0 + 5, &x), 1);
        ck_assert_int_gt(x.id, 0);
        ck_assert_str_eq(x.rule_id, "toilet");
        ck_assert_str_eq(x.local_day, "2026-03-29");
        ck_assert(!x.completed);
        ck_assert_int_eq(x.subscription_id, 0);
        ck_assert_uint_eq(x.created_usec, A0 + 5);
        ck_assert_uint_eq(x.completed_usec, 0);

        /* Again, even with other parameters: the existing one, unchanged. */
        ck_assert_int_eq(azi3_store_session_create(s, 42, "toilet", "2026-03-29", &other, A0 + 9, &y), 0);
        ck_assert_int_eq(y.id, x.id);
        ck_assert_uint_eq(y.params.a, A0);
        ck_assert_uint_eq(y.created_usec, A0 + 5);

        /* Any part of the key differing makes another session. */
        ck_assert_int_eq(azi3_store_session_create(s, 42, "toilet", "2026-03-30", &P0, A0, &z), 1);
        ck_assert_int_ne(z.id, x.id);
        ck_assert_int_eq(azi3_store_session_create(s, 43, "toilet", "2026-03-29", &P0, A0, &z), 1);
        ck_assert_int_eq(azi3_store_session_create(s, 42, "other", "2026-03-29", &P0, A0, &z), 1);
        ck_assert_int_eq(count_rows("SELECT count(*) FROM sessions"), 4);

        /* Bad input is refused before touching the file, *ret untouched. */
        z.id = -7;
        ck_assert_int_eq(azi3_store_session_create(s, 42, "toilet", "2026-3-29", &P0, A0, &z), -EINVAL);
        ck_assert_msg(strstr(azi3_store_last_error(s), "YYYY-MM-DD"), "%s", azi3_store_last_error(s));
        ck_assert_int_eq(azi3_store_session_create(s, 42, "", "2026-03-29", &P0, A0, &z), -EINVAL);
        ck_assert_int_eq(azi3_store_session_create(s, -1, "toilet", "2026-03-29", &P0, A0, &z), -EINVAL);
        memset(longid, 'r', sizeof(longid) - 1);
        longid[sizeof(longid) - 1] = 0;
        ck_assert_int_eq(azi3_store_session_create(s, 42, longid, "2026-03-29", &P0, A0, &z), -ENAMETOOLONG);
        other = (window_params) { .a = B0, .b = A0, .w = W0 };
        ck_assert_int_eq(azi3_store_session_create(s, 42, "toilet", "2026-04-01", &other, A0, &z), -EINVAL);
        ck_assert_int_eq(z.id, -7);

        ck_assert_int_eq(azi3_store_session_find(s, 42, "toilet", "2026-03-29", &y), 0);
        ck_assert_int_eq(y.id, x.id);
        ck_assert_int_eq(azi3_store_session_find(s, 42, "toilet", "2026-03-31", &y), -ENOENT);
        ck_assert_msg(strstr(azi3_store_last_error(s), "2026-03-31"), "%s", azi3_store_last_error(s));
        ck_assert_int_eq(azi3_store_session_get(s, x.id, &y), 0);
        ck_assert_int_eq(azi3_store_session_get(s, 9999, &y), -ENOENT);
}
END_TEST

START_TEST(test_subscription) {
        _cleanup_(azi3_store_closep) azi3_store *s = open_ok();
        azi3_session x = make_session(s, 42, "toilet", "2026-03-29");
        azi3_session y = make_session(s, 42, "toilet", "2026-03-30");
        azi3_session z = make_session(s, 7, "toilet", "2026-03-29");
        azi3_session f;

        ck_assert_int_eq(azi3_store_session_find_by_subscription(s, 123, 42, &f), -ENOENT);
        ck_assert_int_eq(azi3_store_session_set_subscription(s, x.id, 123), 0);
        ck_assert_int_eq(azi3_store_session_set_subscription(s, x.id, 123), 0); /* same: no-op */
        ck_assert_int_eq(azi3_store_session_set_subscription(s, x.id, 124), -EEXIST);
        ck_assert_int_eq(azi3_store_session_set_subscription(s, y.id, 123), -EEXIST);
        ck_assert_msg(strstr(azi3_store_last_error(s), "another session"), "%s", azi3_store_last_error(s));
        ck_assert_int_eq(azi3_store_session_set_subscription(s, z.id, 123), 0); /* other robot */
        ck_assert_int_eq(azi3_store_session_set_subscription(s, 999, 5), -ENOENT);
        ck_assert_int_eq(azi3_store_session_set_subscription(s, y.id, 0), -EINVAL);

        ck_assert_int_eq(azi3_store_session_find_by_subscription(s, 123, 42, &f), 0);
        ck_assert_int_eq(f.id, x.id);
        ck_assert_int_eq(f.subscription_id, 123);
        ck_assert_int_eq(azi3_store_session_find_by_subscription(s, 123, 7, &f), 0);
        ck_assert_int_eq(f.id, z.id);
        ck_assert_int_eq(azi3_store_session_find_by_subscription(s, 123, 8, &f), -ENOENT);
        ck_assert_int_eq(azi3_store_session_get(s, y.id, &f), 0);
        ck_assert_int_eq(f.subscription_id, 0);
}
END_TEST

START_TEST(test_sessions_list) {
        _cleanup_(azi3_store_closep) azi3_store *s = open_ok();
        _cleanup_free_ azi3_session *l = NULL;
        size_t n = 99;

        ck_assert_int_eq(azi3_store_sessions_list(s, NULL, -1, &l, &n), 0);
        ck_assert_uint_eq(n, 0);
        ck_assert_ptr_null(l);

        make_session(s, 43, "b", "2026-03-29");
        make_session(s, 42, "b", "2026-03-29");
        make_session(s, 42, "a", "2026-03-29");
        make_session(s, 42, "a", "2026-03-28");

        ck_assert_int_eq(azi3_store_sessions_list(s, "2026-03-29", -1, &l, &n), 0);
        ck_assert_uint_eq(n, 3);
        ck_assert(l[0].robot_id == 42 && streq(l[0].rule_id, "a"));
        ck_assert(l[1].robot_id == 42 && streq(l[1].rule_id, "b"));
        ck_assert(l[2].robot_id == 43 && streq(l[2].rule_id, "b"));
        l = mfree(l);

        ck_assert_int_eq(azi3_store_sessions_list(s, NULL, 42, &l, &n), 0);
        ck_assert_uint_eq(n, 3);
        ck_assert_str_eq(l[0].local_day, "2026-03-28");
        l = mfree(l);

        ck_assert_int_eq(azi3_store_sessions_list(s, "2026-03-28", 43, &l, &n), 0);
        ck_assert_uint_eq(n, 0);
        ck_assert_int_eq(azi3_store_sessions_list_open(s, &l, &n), 0);
        ck_assert_uint_eq(n, 4);
}
END_TEST

/* --- windows ------------------------------------------------------------------------------ */

START_TEST(test_one_current_window) {
        _cleanup_(azi3_store_closep) azi3_store *s = open_ok();
        azi3_session x;
        azi3_window w, w2, cur;
        window_span first, next = { A0 + 10 * MIN_, A0 + 10 * MIN_ + W0 }, bad = { A0, A0 + 5 * MIN_ };
        char sql[256];

        ck_assert_int_eq(azi3_store_session_create(s, 42, "toilet", "2026-03-29", &P0, A0, &x), 1);
        ck_assert_int_eq(azi3_store_window_current(s, x.id, &cur), -ENOENT);
        ck_assert_int_eq(window_first(&P0, &first), 0);
        ck_assert_int_eq(azi3_store_window_open(s, x.id, &first, &w), 0);
        ck_assert(w.current);
        ck_assert_uint_eq(w.span.since, A0);
        ck_assert_uint_eq(w.span.until, A0 + W0);
        ck_assert_int_eq(w.alarm, WINDOW_ALARM_NONE);
        /* "azi3-<uuid>-<since>-<until>": the alarm names its window (issue 17) */
        {
                char uuid[AZI3_UUID_STRING_MAX] = "";
                memcpy(uuid, w.alarm_reference_id + 5, AZI3_UUID_STRING_MAX - 1);
                char ms[16];

                ck_assert_msg(strncmp(w.alarm_reference_id, "azi3-", 5) == 0 && azi3_uuid_is_v7(uuid), "%s",
                              w.alarm_reference_id);
                /* version 7 on the window's since: references sort as their windows open */
                snprintf(ms, sizeof(ms), "%08" PRIx64 "-%04" PRIx64, (A0 / 1000) >> 16, (A0 / 1000) & 0xffff);
                ck_assert_msg(strncmp(uuid, ms, 13) == 0, "%s does not start with %s", uuid, ms);
                ck_assert_str_eq(w.alarm_reference_id + 5 + AZI3_UUID_STRING_MAX - 1,
                                 "-20260329T070000Z-20260329T090000Z");
        }

        /* A second current window: refused by the API and by the file itself. */
        ck_assert_int_eq(azi3_store_window_open(s, x.id, &next, NULL), -EEXIST);
        ck_assert_msg(strstr(azi3_store_last_error(s), "already has a current window"), "%s", azi3_store_last_error(s));
        snprintf(sql, sizeof(sql),
                 "INSERT INTO windows (session_id, since_usec, until_usec, alarm_reference_id) VALUES (%" PRId64
                 ", 1, 2, 'x')",
                 x.id);
        ck_assert_int_eq(raw_exec(sql), SQLITE_CONSTRAINT);

        ck_assert_int_eq(azi3_store_window_open(s, x.id, &bad, NULL), -EINVAL); /* not [t, min(t+W, B)) */
        ck_assert_int_eq(azi3_store_window_open(s, 999, &next, NULL), -ENOENT);

        ck_assert_int_eq(azi3_store_window_close(s, w.id, A0 + 10 * MIN_, WINDOW_CLOSE_ACTIVITY, 9001), 0);
        ck_assert_int_eq(azi3_store_window_close(s, w.id, A0 + 11 * MIN_, WINDOW_CLOSE_ACTIVITY, 9002), -EALREADY);
        ck_assert_int_eq(azi3_store_window_close(s, 999, A0, WINDOW_CLOSE_ACTIVITY, 0), -ENOENT);
        ck_assert_int_eq(azi3_store_window_current(s, x.id, &cur), -ENOENT);
        ck_assert_int_eq(azi3_store_window_open(s, x.id, &next, &w2), 0);
        ck_assert_str_ne(w2.alarm_reference_id, w.alarm_reference_id);

        ck_assert_int_eq(azi3_store_window_get(s, w.id, &w), 0);
        ck_assert(!w.current);
        ck_assert_int_eq(w.reason, WINDOW_CLOSE_ACTIVITY);
        ck_assert_int_eq(w.closing_event_id, 9001);
        ck_assert_uint_eq(w.closed_usec, A0 + 10 * MIN_);
        ck_assert_int_eq(w.alarm, WINDOW_ALARM_NONE);

        ck_assert_int_eq(azi3_store_window_current(s, x.id, &cur), 0);
        ck_assert_int_eq(cur.id, w2.id);
}
END_TEST

START_TEST(test_model_through_store) {
        _cleanup_(azi3_store_closep) azi3_store *s = open_ok();
        _cleanup_free_ azi3_window *l = NULL;
        _cleanup_free_ azi3_event *ev = NULL;
        azi3_session x = make_session(s, 42, "toilet", "2026-03-29");
        size_t n;

        /* inside, inside, after until (late: owed), stale (before since), duplicate, after B */
        ck_assert_int_eq(apply_event(s, x.id, 1, A0 + 30 * MIN_, A0 + 31 * MIN_), WINDOW_EVENT_ACTIVITY);
        ck_assert_int_eq(apply_event(s, x.id, 2, A0 + 60 * MIN_, A0 + 61 * MIN_), WINDOW_EVENT_ACTIVITY);
        ck_assert_int_eq(apply_event(s, x.id, 3, A0 + 200 * MIN_, A0 + 201 * MIN_), WINDOW_EVENT_LATE);
        ck_assert_int_eq(apply_event(s, x.id, 4, A0 + 100 * MIN_, A0 + 202 * MIN_), WINDOW_EVENT_STALE);
        ck_assert_int_eq(apply_event(s, x.id, 2, A0 + 60 * MIN_, A0 + 203 * MIN_), WINDOW_EVENT_DUPLICATE);
        ck_assert_int_eq(apply_event(s, x.id, 5, B0, B0), WINDOW_EVENT_STALE);

        ck_assert_int_eq(azi3_store_windows_list(s, x.id, &l, &n), 0);
        ck_assert_uint_eq(n, 4);
        ck_assert(!l[0].current && l[0].reason == WINDOW_CLOSE_ACTIVITY && l[0].closing_event_id == 1);
        ck_assert_uint_eq(l[1].span.since, A0 + 30 * MIN_);
        ck_assert(!l[1].current && l[1].reason == WINDOW_CLOSE_ACTIVITY && l[1].closing_event_id == 2);
        ck_assert(!l[2].current && l[2].reason == WINDOW_CLOSE_EXPIRED && l[2].closing_event_id == 3);
        ck_assert_int_eq(l[2].alarm, WINDOW_ALARM_OWED);
        ck_assert(l[3].current);
        ck_assert_uint_eq(l[3].span.since, A0 + 200 * MIN_);
        ck_assert_uint_eq(l[3].span.until, A0 + 200 * MIN_ + W0);

        ck_assert_int_eq(azi3_store_events_list(s, x.id, &ev, &n), 0);
        ck_assert_uint_eq(n, 5);
        ck_assert(!ev[0].stale && ev[0].source_event_id == 1);
        ck_assert(ev[2].stale && ev[2].source_event_id == 4); /* by created time */
        ck_assert(ev[4].stale && ev[4].source_event_id == 5);
}
END_TEST

START_TEST(test_transition_atomic) {
        _cleanup_(azi3_store_closep) azi3_store *s = open_ok();
        azi3_session x = make_session(s, 42, "toilet", "2026-03-29");
        azi3_window cur, after;
        window_transition t = {
                .close = true, .reason = WINDOW_CLOSE_ACTIVITY, .alarm = WINDOW_ALARM_NONE,
                .open = true, .next = { A0 + MIN_, A0 + MIN_ + 1 }, /* not a window of this session */
        };

        ck_assert_int_eq(azi3_store_window_current(s, x.id, &cur), 0);

        /* Alone: its own transaction; the close is undone with the failed open. */
        ck_assert_int_eq(azi3_store_apply_transition(s, x.id, cur.id, &t, A0 + MIN_, 77, NULL, NULL), -EINVAL);
        ck_assert_int_eq(azi3_store_window_current(s, x.id, &after), 0);
        ck_assert_int_eq(after.id, cur.id);

        /* Inside the caller's transaction: undone to the savepoint, earlier work kept. */
        ck_assert_int_eq(azi3_store_begin(s), 0);
        ck_assert_int_eq(azi3_store_event_record(s, x.id, 76, A0, A0, WINDOW_EVENT_STALE), 1);
        ck_assert_int_eq(azi3_store_apply_transition(s, x.id, cur.id, &t, A0 + MIN_, 77, NULL, NULL), -EINVAL);
        ck_assert(azi3_store_in_transaction(s));
        ck_assert_int_eq(azi3_store_window_current(s, x.id, &after), 0);
        ck_assert_int_eq(after.id, cur.id);
        ck_assert_int_eq(azi3_store_commit(s), 0);
        ck_assert_int_eq(azi3_store_event_seen(s, x.id, 76), 1);

        /* An alarm state that contradicts the reason is refused. */
        t.next = window_open_at(&x.params, A0 + MIN_);
        t.alarm = WINDOW_ALARM_OWED;
        ck_assert_int_eq(azi3_store_apply_transition(s, x.id, cur.id, &t, A0 + MIN_, 77, NULL, NULL), -EINVAL);
        t.alarm = WINDOW_ALARM_NONE;
        /* A window of another session is refused. */
        ck_assert_int_eq(azi3_store_apply_transition(s, x.id + 1, cur.id, &t, A0 + MIN_, 77, NULL, NULL), -EINVAL);
        ck_assert_int_eq(azi3_store_apply_transition(s, x.id, cur.id, &t, A0 + MIN_, 77, NULL, &after), 1);
        ck_assert_uint_eq(after.span.since, A0 + MIN_);
        ck_assert(after.current);
}
END_TEST

/* --- transactions ------------------------------------------------------------------------- */

static int create_then_fail(azi3_store *s) {
        azi3_session x;
        int r = azi3_store_begin(s);
        if (r < 0)
                return r;
        _cleanup_(azi3_store_rollbackp) _unused_ azi3_store *tx = s;
        r = azi3_store_session_create(s, 42, "guarded", "2026-03-29", &P0, A0, &x);
        if (r < 0)
                return r;
        return -EIO; /* early return: the guard rolls back */
}

START_TEST(test_transactions) {
        _cleanup_(azi3_store_closep) azi3_store *s = open_ok();
        azi3_session x;

        ck_assert_int_eq(azi3_store_commit(s), -ENOTCONN);
        ck_assert_int_eq(azi3_store_rollback(s), 0);
        ck_assert_int_eq(azi3_store_rollback(NULL), 0);

        ck_assert_int_eq(azi3_store_begin(s), 0);
        ck_assert_int_eq(azi3_store_begin(s), -EALREADY);
        ck_assert_int_eq(azi3_store_session_create(s, 42, "toilet", "2026-03-29", &P0, A0, &x), 1);
        ck_assert_int_eq(azi3_store_rollback(s), 0);
        ck_assert(!azi3_store_in_transaction(s));
        ck_assert_int_eq(azi3_store_session_find(s, 42, "toilet", "2026-03-29", &x), -ENOENT);

        ck_assert_int_eq(create_then_fail(s), -EIO);
        ck_assert(!azi3_store_in_transaction(s));
        ck_assert_int_eq(azi3_store_session_find(s, 42, "guarded", "2026-03-29", &x), -ENOENT);

        /* A store closed mid-transaction loses the transaction, not the file. */
        ck_assert_int_eq(azi3_store_begin(s), 0);
        ck_assert_int_eq(azi3_store_session_create(s, 42, "toilet", "2026-03-29", &P0, A0, &x), 1);
        s = azi3_store_close(s);
        s = open_ok();
        ck_assert_int_eq(azi3_store_session_find(s, 42, "toilet", "2026-03-29", &x), -ENOENT);
}
END_TEST

static int create_robot(azi3_store *s, int64_t robot_id) {
        azi3_session x;
        return azi3_store_session_create(s, robot_id, "toilet", "2026-03-29", &P0, A0, &x);
}

static int find_robot(azi3_store *s, int64_t robot_id) {
        azi3_session x;
        return azi3_store_session_find(s, robot_id, "toilet", "2026-03-29", &x);
}

/* Batched commits (issue 16: window-expiration's transactions share commits). Inside a batch a
 * transaction is still atomic and rolls back alone; nothing reaches another connection before
 * the flush, all of it after; a batch never flushed, or rolled back by SQLite itself, loses all
 * its writes and the flush says so. On PostgreSQL nothing is batched: each commit is seen at
 * once. */
START_TEST(test_batched_commits) {
        _cleanup_(azi3_store_closep) azi3_store *s = open_ok(), *other = open_ok();

        ck_assert_int_eq(azi3_store_batch_flush(s), 0); /* not batching: nothing to do */
        ck_assert_int_eq(azi3_store_batch_begin(s), pg ? 0 : 1);
        if (!pg)
                ck_assert_int_eq(azi3_store_batch_begin(s), -EALREADY);

        ck_assert_int_eq(azi3_store_commit(s), -ENOTCONN);
        ck_assert_int_eq(azi3_store_begin(s), 0);
        ck_assert(azi3_store_in_transaction(s));
        ck_assert_int_eq(azi3_store_begin(s), -EALREADY);
        ck_assert_int_eq(create_robot(s, 1), 1);
        ck_assert_int_eq(azi3_store_rollback(s), 0);
        ck_assert(!azi3_store_in_transaction(s));
        ck_assert_int_eq(find_robot(s, 1), -ENOENT);

        ck_assert_int_eq(azi3_store_begin(s), 0);
        ck_assert_int_eq(create_robot(s, 2), 1);
        if (!pg)
                ck_assert_int_eq(azi3_store_batch_flush(s), -EBUSY); /* not inside the caller's transaction */
        ck_assert_int_eq(azi3_store_commit(s), 0);
        ck_assert_int_eq(create_robot(s, 3), 1); /* a call's own transaction */
        ck_assert_int_eq(create_then_fail(s), -EIO);
        ck_assert(!azi3_store_in_transaction(s));
        ck_assert_int_eq(find_robot(s, 2), 0);
        ck_assert_int_eq(find_robot(s, 3), 0);

        ck_assert_int_eq(find_robot(other, 2), pg ? 0 : -ENOENT);
        ck_assert_int_eq(find_robot(other, 3), pg ? 0 : -ENOENT);
        ck_assert_int_eq(azi3_store_batch_flush(s), 0);
        ck_assert_int_eq(find_robot(other, 1), -ENOENT);
        ck_assert_int_eq(find_robot(other, 2), 0);
        ck_assert_int_eq(find_robot(other, 3), 0);
        ck_assert_int_eq(azi3_store_session_find(other, 42, "guarded", "2026-03-29", &(azi3_session) {}), -ENOENT);
        ck_assert_int_eq(azi3_store_batch_flush(s), 0); /* nothing open: nothing to do */

        if (!pg) {
                /* SQLite rolls a transaction back by itself after some errors (disk full) */
                ck_assert_int_eq(create_robot(s, 4), 1);
                ck_assert_int_eq(sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
                ck_assert_int_eq(create_robot(s, 5), 1); /* in a new batch */
                ck_assert_int_eq(azi3_store_batch_flush(s), -EIO);
                ck_assert_msg(strstr(azi3_store_last_error(s), "lost"), "%s", azi3_store_last_error(s));
                ck_assert_int_eq(find_robot(other, 4), -ENOENT);
                ck_assert_int_eq(find_robot(other, 5), -ENOENT);
                ck_assert(!azi3_store_in_transaction(s));
        }

        /* the end of a batch flushes it, and rolls back a transaction left open in it */
        ck_assert_int_eq(create_robot(s, 6), 1);
        ck_assert_int_eq(azi3_store_begin(s), 0);
        ck_assert_int_eq(create_robot(s, 7), 1);
        ck_assert_int_eq(azi3_store_batch_end(s), 0);
        if (pg) /* no batch: the transaction is the caller's own */
                ck_assert_int_eq(azi3_store_rollback(s), 0);
        ck_assert(!azi3_store_in_transaction(s));
        ck_assert_int_eq(find_robot(other, 6), 0);
        ck_assert_int_eq(find_robot(other, 7), -ENOENT);
        ck_assert_int_eq(azi3_store_batch_end(s), 0);

        /* a batch closed unflushed loses its writes, all of them */
        ck_assert_int_eq(azi3_store_batch_begin(s), pg ? 0 : 1);
        ck_assert_int_eq(create_robot(s, 8), 1);
        ck_assert_int_eq(create_robot(s, 9), 1);
        s = azi3_store_close(s);
        ck_assert_int_eq(find_robot(other, 8), pg ? 0 : -ENOENT);
        ck_assert_int_eq(find_robot(other, 9), pg ? 0 : -ENOENT);
}
END_TEST

START_TEST(test_busy_maps_to_ebusy) {
        _cleanup_(azi3_store_closep) azi3_store *s = open_ok();
        sqlite3 *db;

        if (pg) {
                /* Another node holds the azi3 write lock for longer than the busy timeout. */
                PGconn *c = pg_connect();
                PQclear(PQexec(c, "BEGIN"));
                PQclear(PQexec(c, "SELECT pg_advisory_xact_lock(1635412275, 2)"));
                ck_assert_int_eq(azi3_store_set_busy_timeout(s, 50), 0);
                ck_assert_int_eq(azi3_store_begin(s), -EBUSY);
                ck_assert_msg(strstr(azi3_store_last_error(s), "write lock") &&
                                      strstr(azi3_store_last_error(s), "55P03"),
                              "%s", azi3_store_last_error(s));
                ck_assert(!azi3_store_in_transaction(s));
                PQclear(PQexec(c, "ROLLBACK"));
                PQfinish(c);
                ck_assert_int_eq(azi3_store_begin(s), 0);
                ck_assert_int_eq(azi3_store_commit(s), 0);
                return;
        }

        /* Another connection holds the write lock for longer than the busy timeout. */
        ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
        ck_assert_int_eq(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
        ck_assert_int_eq(azi3_store_set_busy_timeout(s, 50), 0);
        ck_assert_int_eq(azi3_store_begin(s), -EBUSY);
        ck_assert_msg(strstr(azi3_store_last_error(s), "BEGIN IMMEDIATE") &&
                              strstr(azi3_store_last_error(s), "locked"),
                      "%s", azi3_store_last_error(s));
        ck_assert(!azi3_store_in_transaction(s));
        ck_assert_int_eq(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
        sqlite3_close(db);
        ck_assert_int_eq(azi3_store_begin(s), 0);
        ck_assert_int_eq(azi3_store_commit(s), 0);
}
END_TEST

/* --- events ------------------------------------------------------------------------------- */

START_TEST(test_event_dedup) {
        _cleanup_(azi3_store_closep) azi3_store *s = open_ok();
        azi3_session x = make_session(s, 42, "toilet", "2026-03-29");
        azi3_session y = make_session(s, 43, "toilet", "2026-03-29");
        _cleanup_free_ azi3_event *ev = NULL;
        size_t n;

        ck_assert_int_eq(azi3_store_event_seen(s, x.id, 9001), 0);
        ck_assert_int_eq(azi3_store_event_record(s, x.id, 9001, A0 + 1, A0 + 2, WINDOW_EVENT_ACTIVITY), 1);
        ck_assert_int_eq(azi3_store_event_seen(s, x.id, 9001), 1);
        /* The same event again, even with other data: a duplicate, nothing written. */
        ck_assert_int_eq(azi3_store_event_record(s, x.id, 9001, A0 + 5, A0 + 6, WINDOW_EVENT_STALE), 0);
        /* The key is (session, event): another session may see the same id. */
        ck_assert_int_eq(azi3_store_event_record(s, y.id, 9001, A0 + 1, A0 + 2, WINDOW_EVENT_STALE), 1);

        ck_assert_int_eq(azi3_store_event_record(s, x.id, 9002, A0, A0, WINDOW_EVENT_DUPLICATE), -EINVAL);
        ck_assert_int_eq(azi3_store_event_record(s, x.id, 0, A0, A0, WINDOW_EVENT_STALE), -EINVAL);
        ck_assert_int_eq(azi3_store_event_record(s, 999, 9002, A0, A0, WINDOW_EVENT_STALE), -ENOENT);
        ck_assert_msg(strstr(azi3_store_last_error(s), "no session 999"), "%s", azi3_store_last_error(s));

        ck_assert_int_eq(azi3_store_events_list(s, x.id, &ev, &n), 0);
        ck_assert_uint_eq(n, 1);
        ck_assert_int_eq(ev[0].source_event_id, 9001);
        ck_assert_uint_eq(ev[0].created_usec, A0 + 1);
        ck_assert_uint_eq(ev[0].applied_usec, A0 + 2);
        ck_assert(!ev[0].stale);
        ck_assert_int_eq(count_rows("SELECT count(*) FROM events"), 2);
}
END_TEST

/* Activity every hour from A+1h to A+14h: the last window is cut short by B, no alarm. */
static void activity_all_day(azi3_store *s, const azi3_session *x) {
        for (int h = 1; h <= 14; h++)
                ck_assert_int_eq(apply_event(s, x->id, h, A0 + (usec_t) h * USEC_PER_HOUR, A0 + (usec_t) h * USEC_PER_HOUR),
                                 WINDOW_EVENT_ACTIVITY);
}

/* --- alarms and completion ---------------------------------------------------------------- */

/* Closes the current window of X as expired at its until and opens the next at T. */
static azi3_window expire_at(azi3_store *s, const azi3_session *x, usec_t now) {
        azi3_window cur, opened = {};
        window_transition t;
        ck_assert_int_eq(azi3_store_window_current(s, x->id, &cur), 0);
        ck_assert_int_eq(window_expire(&x->params, &cur.span, now, &t), 1);
        ck_assert_int_ge(azi3_store_apply_transition(s, x->id, cur.id, &t, now, 0, NULL, &opened), 0);
        ck_assert_int_eq(azi3_store_window_get(s, cur.id, &cur), 0);
        return cur;
}

START_TEST(test_owed_alarms_order) {
        _cleanup_(azi3_store_closep) azi3_store *s = open_ok();
        _cleanup_free_ azi3_window *l = NULL;
        azi3_session x = make_session(s, 42, "toilet", "2026-03-29");
        azi3_session y = make_session(s, 43, "toilet", "2026-03-29");
        azi3_window wx1, wx2, wy1, w;
        char ref[AZI3_REFERENCE_ID_MAX];
        size_t n;

        /* Expected order: by since, then until, then id. x's and y's first windows both start
         * at A (x's has the lower id); x's second starts at A+W+5m. Closed out of that order. */
        wx1 = expire_at(s, &x, A0 + W0 + 5 * MIN_);
        wy1 = expire_at(s, &y, A0 + W0 + 1 * MIN_);
        wx2 = expire_at(s, &x, A0 + 2 * W0 + 5 * MIN_);
        ck_assert_int_eq(wx1.reason, WINDOW_CLOSE_EXPIRED);
        ck_assert_int_eq(wx1.alarm, WINDOW_ALARM_OWED);

        ck_assert_int_eq(azi3_store_alarms_owed(s, 0, &l, &n), 0);
        ck_assert_uint_eq(n, 3);
        ck_assert_int_eq(l[0].id, wx1.id); /* same since as wy1, lower id */
        ck_assert_int_eq(l[1].id, wy1.id);
        ck_assert_int_eq(l[2].id, wx2.id);
        snprintf(ref, sizeof(ref), "%s", l[1].alarm_reference_id);
        l = mfree(l);

        /* one session's, in the same order (sorted apart from the query, see the store) */
        ck_assert_int_eq(azi3_store_alarms_owed(s, x.id, &l, &n), 0);
        ck_assert_uint_eq(n, 2);
        ck_assert_int_eq(l[0].id, wx1.id);
        ck_assert_int_eq(l[1].id, wx2.id);
        l = mfree(l);

        /* A failed post changes nothing: the reference stays the same for the next attempt. */
        ck_assert_int_eq(azi3_store_window_get(s, wy1.id, &w), 0);
        ck_assert_str_eq(w.alarm_reference_id, ref);

        ck_assert_int_eq(azi3_store_alarm_mark_posted(s, wy1.id, A0 + W0 + 2 * MIN_, 9100), 0);
        ck_assert_int_eq(azi3_store_alarm_mark_posted(s, wy1.id, A0 + W0 + 3 * MIN_, 9101), -EALREADY);
        ck_assert_msg(strstr(azi3_store_last_error(s), "9100"), "%s", azi3_store_last_error(s));
        ck_assert_int_eq(azi3_store_window_current(s, x.id, &w), 0);
        ck_assert_int_eq(azi3_store_alarm_mark_posted(s, w.id, A0, 9102), -EINVAL);
        ck_assert_int_eq(azi3_store_alarm_mark_posted(s, 999, A0, 9102), -ENOENT);
        ck_assert_int_eq(azi3_store_alarm_mark_posted(s, wx1.id, A0, 0), -EINVAL);

        ck_assert_int_eq(azi3_store_window_get(s, wy1.id, &w), 0);
        ck_assert_int_eq(w.alarm, WINDOW_ALARM_ALARMED);
        ck_assert_int_eq(w.alarm_event_id, 9100);
        ck_assert_uint_eq(w.alarm_posted_usec, A0 + W0 + 2 * MIN_);
        ck_assert_str_eq(w.alarm_reference_id, ref);

        ck_assert_int_eq(azi3_store_alarms_owed(s, 0, &l, &n), 0);
        ck_assert_uint_eq(n, 2);
        ck_assert_int_eq(l[0].id, wx1.id);
        ck_assert_int_eq(l[1].id, wx2.id);
}
END_TEST

START_TEST(test_sessions_due) {
        _cleanup_(azi3_store_closep) azi3_store *s = open_ok();
        _cleanup_free_ azi3_session *l = NULL;
        azi3_session x = make_session(s, 42, "toilet", "2026-03-29");
        azi3_session y = make_session(s, 43, "toilet", "2026-03-29");
        azi3_window wx;
        size_t n = 99, n_open = 99;

        make_session(s, 44, "toilet", "2026-03-29");
        /* every first window runs until A+W: nothing is due before */
        ck_assert_int_eq(azi3_store_sessions_list_due(s, A0 + 10 * MIN_, &l, &n, &n_open), 0);
        ck_assert_uint_eq(n, 0);
        ck_assert_uint_eq(n_open, 3);
        l = mfree(l);
        ck_assert_int_eq(azi3_store_sessions_list_due(s, A0 + W0, &l, &n, &n_open), 0);
        ck_assert_uint_eq(n, 3);
        ck_assert_uint_eq(n_open, 3);
        l = mfree(l);

        /* x's window expired and its alarm is owed: x is due even before the others run out */
        wx = expire_at(s, &x, A0 + W0 + MIN_);
        ck_assert_int_eq(wx.alarm, WINDOW_ALARM_OWED);
        ck_assert_int_eq(azi3_store_sessions_list_due(s, A0 + W0 - MIN_, &l, &n, &n_open), 0);
        ck_assert_uint_eq(n, 1);
        ck_assert_int_eq(l[0].id, x.id);
        l = mfree(l);
        ck_assert_int_eq(azi3_store_alarm_mark_posted(s, wx.id, A0 + W0 + MIN_, 9100), 0);
        ck_assert_int_eq(azi3_store_sessions_list_due(s, A0 + W0 - MIN_, &l, &n, &n_open), 0);
        ck_assert_uint_eq(n, 0);
        l = mfree(l);

        /* at B every open session is due: it is to be completed */
        ck_assert_int_eq(azi3_store_sessions_list_due(s, B0, &l, &n, &n_open), 0);
        ck_assert_uint_eq(n, 3);
        ck_assert_uint_eq(n_open, 3);
        ck_assert_int_eq(l[0].id, x.id);
        ck_assert_int_eq(l[1].id, y.id);
}
END_TEST

START_TEST(test_completion) {
        _cleanup_(azi3_store_closep) azi3_store *s = open_ok();
        _cleanup_free_ azi3_session *l = NULL;
        azi3_session x = make_session(s, 42, "toilet", "2026-03-29");
        azi3_session y = make_session(s, 43, "toilet", "2026-03-29");
        _cleanup_free_ azi3_window *owed = NULL;
        azi3_window w, wx1;
        session_result res;
        size_t n;

        ck_assert_int_eq(azi3_store_session_complete(s, x.id, B0, &res), -EBUSY); /* current window */
        ck_assert_msg(strstr(azi3_store_last_error(s), "1 current window"), "%s", azi3_store_last_error(s));

        /* x: expired by the expiration step, expired by a late event, then cut short by B. */
        wx1 = expire_at(s, &x, A0 + W0);
        ck_assert_int_eq(apply_event(s, x.id, 1, B0 - MIN_, B0 - MIN_), WINDOW_EVENT_LATE);
        w = expire_at(s, &x, B0);
        ck_assert_int_eq(w.reason, WINDOW_CLOSE_ENDED);
        ck_assert_int_eq(w.alarm, WINDOW_ALARM_NONE);
        ck_assert_int_eq(azi3_store_window_current(s, x.id, &w), -ENOENT);

        ck_assert_int_eq(azi3_store_session_complete(s, x.id, B0, &res), -EBUSY); /* alarms owed */
        ck_assert_msg(strstr(azi3_store_last_error(s), "2 owed alarm"), "%s", azi3_store_last_error(s));
        ck_assert_int_eq(azi3_store_alarms_owed(s, x.id, &owed, &n), 0);
        ck_assert_uint_eq(n, 2);
        ck_assert_int_eq(owed[0].id, wx1.id);
        ck_assert_int_eq(azi3_store_alarm_mark_posted(s, owed[0].id, B0, 9100), 0);
        ck_assert_int_eq(azi3_store_session_complete(s, x.id, B0, &res), -EBUSY);
        ck_assert_int_eq(azi3_store_alarm_mark_posted(s, owed[1].id, B0, 9101), 0);
        ck_assert_int_eq(azi3_store_session_complete(s, x.id, B0 + 1, &res), 0);
        ck_assert_int_eq(res, SESSION_RESULT_ALARMS_RAISED);
        ck_assert_int_eq(azi3_store_session_complete(s, x.id, B0 + 2, &res), -EALREADY);
        ck_assert_int_eq(azi3_store_session_get(s, x.id, &x), 0);
        ck_assert(x.completed);
        ck_assert_int_eq(x.result, SESSION_RESULT_ALARMS_RAISED);
        ck_assert_uint_eq(x.completed_usec, B0 + 1);

        /* A completed session takes no windows. */
        ck_assert_int_eq(azi3_store_window_open(s, x.id, &(window_span) { A0, A0 + W0 }, NULL), -ESTALE);

        /* y: activity all day, no alarm. */
        activity_all_day(s, &y);
        w = expire_at(s, &y, B0);
        ck_assert_int_eq(w.reason, WINDOW_CLOSE_ENDED);
        ck_assert_int_eq(azi3_store_session_complete(s, y.id, B0, &res), 0);
        ck_assert_int_eq(res, SESSION_RESULT_NO_ALARMS);

        ck_assert_int_eq(azi3_store_sessions_list_open(s, &l, &n), 0);
        ck_assert_uint_eq(n, 0);
        ck_assert_int_eq(azi3_store_session_complete(s, 999, B0, &res), -ENOENT);
}
END_TEST

/* --- unsubscriptions and retention -------------------------------------------------------- */

START_TEST(test_pending_unsubscriptions) {
        _cleanup_(azi3_store_closep) azi3_store *s = open_ok();
        _cleanup_free_ azi3_unsubscription *l = NULL;
        size_t n;

        ck_assert_int_eq(azi3_store_unsubscription_add(s, 42, 123, A0), 1);
        ck_assert_int_eq(azi3_store_unsubscription_add(s, 42, 123, A0 + 99), 0); /* kept as is */
        ck_assert_int_eq(azi3_store_unsubscription_add(s, 43, 124, A0 - 5), 1);
        ck_assert_int_eq(azi3_store_unsubscription_add(s, 43, 0, A0), -EINVAL);

        ck_assert_int_eq(azi3_store_unsubscriptions_due(s, A0, &l, &n), 0);
        ck_assert_uint_eq(n, 2);
        ck_assert_int_eq(l[0].subscription_id, 124); /* oldest due first */
        ck_assert_int_eq(l[1].subscription_id, 123);
        ck_assert_uint_eq(l[1].attempts, 0);
        ck_assert_str_eq(l[1].last_error, "");
        ck_assert_uint_eq(l[1].next_attempt_usec, A0);
        l = mfree(l);

        ck_assert_int_eq(azi3_store_unsubscription_failed(s, 42, 123, "HTTP 503 from megazord", A0 + MIN_), 0);
        ck_assert_int_eq(azi3_store_unsubscription_failed(s, 42, 123, "timeout", A0 + 2 * MIN_), 0);
        ck_assert_int_eq(azi3_store_unsubscription_failed(s, 42, 999, "x", A0), -ENOENT);

        ck_assert_int_eq(azi3_store_unsubscriptions_due(s, A0 + MIN_, &l, &n), 0);
        ck_assert_uint_eq(n, 1);
        ck_assert_int_eq(l[0].subscription_id, 124);
        l = mfree(l);

        ck_assert_int_eq(azi3_store_unsubscriptions_due(s, USEC_INFINITY, &l, &n), 0);
        ck_assert_uint_eq(n, 2);
        ck_assert_int_eq(l[1].subscription_id, 123);
        ck_assert_uint_eq(l[1].attempts, 2);
        ck_assert_str_eq(l[1].last_error, "timeout");
        ck_assert_uint_eq(l[1].next_attempt_usec, A0 + 2 * MIN_);
        l = mfree(l);

        ck_assert_int_eq(azi3_store_unsubscription_remove(s, 42, 123), 0);
        ck_assert_int_eq(azi3_store_unsubscription_remove(s, 42, 123), -ENOENT);
        ck_assert_int_eq(azi3_store_unsubscriptions_due(s, USEC_INFINITY, &l, &n), 0);
        ck_assert_uint_eq(n, 1);
}
END_TEST

static azi3_session completed_session(azi3_store *s, int64_t robot, usec_t completed) {
        azi3_session x = make_session(s, robot, "toilet", "2026-03-29");
        session_result res;
        activity_all_day(s, &x);
        ck_assert_int_eq(apply_event(s, x.id, 100, A0 - 1, A0), WINDOW_EVENT_STALE);
        expire_at(s, &x, B0);
        ck_assert_int_eq(azi3_store_session_complete(s, x.id, completed, &res), 0);
        return x;
}

START_TEST(test_retention_cascades) {
        _cleanup_(azi3_store_closep) azi3_store *s = open_ok();
        azi3_session old = completed_session(s, 1, B0);
        azi3_session recent = completed_session(s, 2, B0 + USEC_PER_HOUR);
        azi3_session open = make_session(s, 3, "toilet", "2026-03-29");
        azi3_session f;
        size_t n = 99;

        ck_assert_int_eq(azi3_store_unsubscription_add(s, 1, 5, A0), 1);
        ck_assert_int_eq(count_rows("SELECT count(*) FROM windows"), 15 + 15 + 1);
        ck_assert_int_eq(count_rows("SELECT count(*) FROM events"), 15 + 15);

        ck_assert_int_eq(azi3_store_sessions_delete_completed(s, B0, &n), 0);
        ck_assert_uint_eq(n, 0); /* strictly older than the cutoff */
        ck_assert_int_eq(azi3_store_sessions_delete_completed(s, B0 + 1, &n), 0);
        ck_assert_uint_eq(n, 1);

        ck_assert_int_eq(azi3_store_session_get(s, old.id, &f), -ENOENT);
        ck_assert_int_eq(azi3_store_session_get(s, recent.id, &f), 0);
        ck_assert_int_eq(azi3_store_session_get(s, open.id, &f), 0);
        ck_assert_int_eq(count_rows("SELECT count(*) FROM windows"), 15 + 1);
        ck_assert_int_eq(count_rows("SELECT count(*) FROM events"), 15);
        ck_assert_int_eq(count_rows("SELECT count(*) FROM windows w LEFT JOIN sessions s ON s.id = w.session_id "
                                    "WHERE s.id IS NULL"),
                         0);
        ck_assert_int_eq(count_rows("SELECT count(*) FROM pending_unsubscriptions"), 1);

        /* Open sessions are never deleted, whatever the cutoff. */
        ck_assert_int_eq(azi3_store_sessions_delete_completed(s, USEC_INFINITY, &n), 0);
        ck_assert_uint_eq(n, 1);
        ck_assert_int_eq(azi3_store_session_get(s, open.id, &f), 0);
        ck_assert_int_eq(count_rows("SELECT count(*) FROM windows"), 1);
}
END_TEST

/* --- two processes ------------------------------------------------------------------------ */

#define N_SHARED 300
#define N_OWN 300
#define N_PROCS 2

static void child(int start_fd, int k) {
        azi3_store *s = NULL;
        azi3_session x;
        window_span first;
        char err[512] = "", c;
        int r;

        /* Wait until every child exists, so they really race (also on the migration). */
        (void) read(start_fd, &c, 1);
        close(start_fd);

        r = azi3_store_open(path, err, sizeof(err), &s);
        if (r < 0) {
                fprintf(stderr, "child %d: open: %s\n", k, err);
                _exit(10);
        }

        /* Both create the same session with its first window: one wins, one finds it. */
        r = azi3_store_begin(s);
        if (r >= 0)
                r = azi3_store_session_create(s, 42, "toilet", "2026-03-29", &P0, A0, &x);
        if (r == 1 && window_first(&x.params, &first) == 0)
                r = azi3_store_window_open(s, x.id, &first, NULL);
        if (r >= 0)
                r = azi3_store_commit(s);
        if (r < 0) {
                fprintf(stderr, "child %d: create: %s\n", k, azi3_store_last_error(s));
                _exit(11);
        }

        /* Shared events, in order, each in its own transaction: each must apply exactly once. */
        for (int i = 1; i <= N_SHARED; i++) {
                r = apply_event(s, x.id, i, A0 + (usec_t) i * MIN_, A0 + (usec_t) i * MIN_);
                if (r < 0) {
                        fprintf(stderr, "child %d: event %d: %d %s\n", k, i, r, azi3_store_last_error(s));
                        _exit(12);
                }
        }
        /* Own events, interleaved in time with the other child's: some apply, some are stale. */
        for (int i = 0; i < N_OWN; i++) {
                usec_t e = A0 + (N_SHARED + 1) * MIN_ + (usec_t) (N_PROCS * i + k) * USEC_PER_SEC;
                r = apply_event(s, x.id, 100000 * (k + 1) + i, e, e);
                if (r < 0 || r == WINDOW_EVENT_DUPLICATE) {
                        fprintf(stderr, "child %d: own event %d: %d %s\n", k, i, r, azi3_store_last_error(s));
                        _exit(13);
                }
        }
        azi3_store_close(s);
        _exit(0);
}

START_TEST(test_two_processes) {
        _cleanup_(azi3_store_closep) azi3_store *s = NULL;
        _cleanup_free_ azi3_window *l = NULL;
        _cleanup_free_ azi3_event *ev = NULL;
        azi3_session x;
        pid_t pids[N_PROCS];
        int p[2];
        size_t n, nev, applied = 0, current = 0;

        ck_assert_int_eq(pipe(p), 0);
        for (int k = 0; k < N_PROCS; k++) {
                pids[k] = fork();
                ck_assert_int_ge(pids[k], 0);
                if (pids[k] == 0) {
                        close(p[1]);
                        child(p[0], k);
                }
        }
        close(p[0]);
        close(p[1]); /* go */
        for (int k = 0; k < N_PROCS; k++) {
                int status;
                ck_assert_int_eq(waitpid(pids[k], &status, 0), pids[k]);
                ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child %d failed: status 0x%x", k, status);
        }

        s = open_ok();
        ck_assert_int_eq(count_rows("SELECT count(*) FROM sessions"), 1);
        ck_assert_int_eq(azi3_store_session_find(s, 42, "toilet", "2026-03-29", &x), 0);
        ck_assert_int_eq(azi3_store_events_list(s, x.id, &ev, &nev), 0);
        ck_assert_uint_eq(nev, N_SHARED + N_PROCS * N_OWN); /* nothing lost, nothing doubled */
        ck_assert_int_eq(azi3_store_windows_list(s, x.id, &l, &n), 0);
        ck_assert_uint_gt(n, N_SHARED + 1);

        /* The shared part is deterministic: window i opened by event i, closed by event i+1. */
        for (int i = 0; i < N_SHARED; i++) {
                ck_assert_uint_eq(l[i].span.since, A0 + (usec_t) i * MIN_);
                ck_assert(!l[i].current);
                ck_assert_int_eq(l[i].reason, WINDOW_CLOSE_ACTIVITY);
                ck_assert_int_eq(l[i].closing_event_id, i + 1);
        }

        /* The rest: one window per applied event plus the first, exactly one current, and each
         * window after the first starts at the time of the event that opened it. */
        for (size_t i = 0; i < nev; i++)
                applied += !ev[i].stale;
        ck_assert_uint_ge(applied, N_SHARED + 1);
        ck_assert_uint_eq(n, applied + 1);
        for (size_t i = 0; i < n; i++) {
                current += l[i].current;
                if (i + 1 < n) {
                        ck_assert(!l[i].current);
                        ck_assert_uint_le(l[i].span.since, l[i + 1].span.since);
                }
        }
        ck_assert_uint_eq(current, 1);
        ck_assert(l[n - 1].current);
        ck_assert_int_eq(count_rows("SELECT count(*) FROM windows w JOIN events e ON e.session_id = w.session_id "
                                    "AND e.source_event_id = w.closing_event_id AND e.outcome = 'applied'"),
                         (int64_t) applied);
        assert_integrity();
}
END_TEST


/* A file written by schema version 1 (the store as released before issue 17), kept here as it
 * was: migration 2 rebuilds two tables and must keep every row, their links and the cascade. */
static const char schema_v1[] =
        "CREATE TABLE sessions (id INTEGER PRIMARY KEY, robot_id INTEGER NOT NULL CHECK (robot_id >= 0),"
        "  rule_id TEXT NOT NULL CHECK (length(rule_id) > 0), local_day TEXT NOT NULL CHECK (length(local_day) = 10),"
        "  start_usec INTEGER NOT NULL, end_usec INTEGER NOT NULL CHECK (end_usec > start_usec),"
        "  window_usec INTEGER NOT NULL CHECK (window_usec > 0), subscription_id INTEGER CHECK (subscription_id > 0),"
        "  state TEXT NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'completed')),"
        "  result TEXT CHECK (result IN ('alarms_raised', 'no_alarms')), created_usec INTEGER NOT NULL,"
        "  completed_usec INTEGER, UNIQUE (robot_id, rule_id, local_day),"
        "  CHECK ((state = 'completed') = (result IS NOT NULL)),"
        "  CHECK ((state = 'completed') = (completed_usec IS NOT NULL)));"
        "CREATE UNIQUE INDEX sessions_subscription ON sessions (robot_id, subscription_id) WHERE subscription_id IS NOT NULL;"
        "CREATE INDEX sessions_open ON sessions (state, end_usec);"
        "CREATE INDEX sessions_day ON sessions (local_day, robot_id);"
        "CREATE TABLE windows (id INTEGER PRIMARY KEY,"
        "  session_id INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE, since_usec INTEGER NOT NULL,"
        "  until_usec INTEGER NOT NULL CHECK (until_usec > since_usec), closed_usec INTEGER,"
        "  reason TEXT CHECK (reason IN ('activity', 'expired', 'ended')),"
        "  closing_event_id INTEGER CHECK (closing_event_id > 0),"
        "  alarm_state TEXT CHECK (alarm_state IN ('owed', 'alarmed')), alarm_reference_id TEXT NOT NULL UNIQUE,"
        "  alarm_posted_usec INTEGER, alarm_event_id INTEGER,"
        "  CHECK ((closed_usec IS NULL) = (reason IS NULL)),"
        "  CHECK ((coalesce(reason, '') = 'expired') = (alarm_state IS NOT NULL)),"
        "  CHECK ((coalesce(alarm_state, '') = 'alarmed') = (alarm_posted_usec IS NOT NULL)),"
        "  CHECK ((coalesce(alarm_state, '') = 'alarmed') = (alarm_event_id IS NOT NULL)));"
        "CREATE UNIQUE INDEX windows_current ON windows (session_id) WHERE closed_usec IS NULL;"
        "CREATE INDEX windows_session ON windows (session_id, since_usec);"
        "CREATE INDEX windows_owed ON windows (since_usec) WHERE alarm_state = 'owed';"
        "CREATE TABLE events (session_id INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,"
        "  source_event_id INTEGER NOT NULL CHECK (source_event_id > 0), created_usec INTEGER NOT NULL,"
        "  applied_usec INTEGER NOT NULL, outcome TEXT NOT NULL CHECK (outcome IN ('applied', 'stale')),"
        "  PRIMARY KEY (session_id, source_event_id)) WITHOUT ROWID;"
        "CREATE TABLE pending_unsubscriptions (robot_id INTEGER NOT NULL,"
        "  subscription_id INTEGER NOT NULL CHECK (subscription_id > 0), attempts INTEGER NOT NULL DEFAULT 0,"
        "  last_error TEXT, next_attempt_usec INTEGER NOT NULL, PRIMARY KEY (robot_id, subscription_id));"
        "INSERT INTO sessions VALUES (1, 42, 'toilet', '2026-03-29', 1774767600000000, 1774821600000000, 7200000000,"
        "  100, 'completed', 'alarms_raised', 1774767600000000, 1774821700000000);"
        "INSERT INTO sessions VALUES (2, 43, 'toilet', '2026-03-29', 1774767600000000, 1774821600000000, 7200000000,"
        "  101, 'open', NULL, 1774767600000000, NULL);"
        "INSERT INTO windows VALUES (1, 1, 1774767600000000, 1774774800000000, 1774774800000000, 'expired', NULL,"
        "  'alarmed', 'azi3-old-1', 1774774801000000, 9100);"
        "INSERT INTO windows VALUES (2, 2, 1774767600000000, 1774774800000000, 1774774800000000, 'expired', NULL,"
        "  'owed', 'azi3-old-2', NULL, NULL);"
        "INSERT INTO windows VALUES (3, 2, 1774774800000000, 1774782000000000, NULL, NULL, NULL, NULL, 'azi3-old-3',"
        "  NULL, NULL);"
        "INSERT INTO events VALUES (1, 9001, 1774767700000000, 1774767700000000, 'applied');"
        "PRAGMA user_version = 1; PRAGMA application_id = 0x617a6933;";

START_TEST(test_migrate_v1_keeps_rows) {
        _cleanup_(azi3_store_closep) azi3_store *s = NULL;
        _cleanup_free_ azi3_window *owed = NULL;
        size_t n = 0, dropped = 0;
        session_result res;
        azi3_window w;
        int v = 0;

        ck_assert_int_eq(raw_exec(schema_v1), SQLITE_OK);
        ck_assert_int_eq(count_rows("PRAGMA user_version"), 1);

        s = open_ok();
        ck_assert_int_eq(azi3_store_schema_version(s, &v), 0);
        ck_assert_int_eq(v, AZI3_STORE_SCHEMA_VERSION);
        ck_assert_int_eq(count_rows("SELECT count(*) FROM sessions"), 2);
        ck_assert_int_eq(count_rows("SELECT count(*) FROM windows"), 3);
        ck_assert_int_eq(count_rows("SELECT count(*) FROM events"), 1);
        ck_assert_int_eq(azi3_store_window_get(s, 1, &w), 0);
        ck_assert_int_eq(w.alarm, WINDOW_ALARM_ALARMED);
        ck_assert_str_eq(w.alarm_reference_id, "azi3-old-1");
        ck_assert_int_eq(azi3_store_alarms_owed(s, 2, &owed, &n), 0);
        ck_assert_uint_eq(n, 1);
        ck_assert_uint_eq(owed[0].alarm_verified_usec, 0);
        /* the new states are accepted by the migrated file */
        ck_assert_int_eq(azi3_store_session_complete_rule_removed(s, 2, A0 + 3 * USEC_PER_HOUR, &dropped, &res), 0);
        ck_assert_uint_eq(dropped, 1);
        ck_assert_int_eq(res, SESSION_RESULT_RULE_REMOVED);
        ck_assert_int_eq(azi3_store_meta_set(s, "k", "v"), 0);
        /* the cascade still works: the rebuilt sessions table is the one windows and events refer to */
        ck_assert_int_eq(azi3_store_sessions_delete_completed(s, USEC_INFINITY - 1, &n), 0);
        ck_assert_uint_eq(n, 2);
        ck_assert_int_eq(count_rows("SELECT count(*) FROM windows"), 0);
        ck_assert_int_eq(count_rows("SELECT count(*) FROM events"), 0);
        ck_assert_int_eq(count_rows("PRAGMA foreign_keys"), 0); /* a fresh connection's default */
        assert_integrity();
}
END_TEST

/* Issue 17: an expired window whose history shows activity is judged again. */
START_TEST(test_rewind) {
        _cleanup_(azi3_store_closep) azi3_store *s = open_ok();
        _cleanup_free_ azi3_window *l = NULL;
        _cleanup_free_ azi3_event *ev = NULL;
        azi3_session x = make_session(s, 42, "toilet", "2026-03-29");
        window_transition t;
        azi3_window cur, opened;
        size_t n = 0;

        /* the first window expires at A+2h (no evidence), the run opens [A+2h, A+4h); an event
         * at A+2h+5m closes that one */
        ck_assert_int_eq(azi3_store_window_current(s, x.id, &cur), 0);
        ck_assert_int_eq(window_expire(&P0, &cur.span, A0 + W0, &t), 1);
        ck_assert_int_eq(azi3_store_apply_transition(s, x.id, cur.id, &t, A0 + W0, 0, NULL, &opened), 1);
        ck_assert_int_eq(azi3_store_event_record(s, x.id, 9002, A0 + W0 + 5 * MIN_, A0 + W0 + 5 * MIN_,
                                                 WINDOW_EVENT_ACTIVITY), 1);
        ck_assert_int_eq(azi3_store_event_record(s, x.id, 8999, A0 - MIN_, A0, WINDOW_EVENT_STALE), 1);
        /* refused for a current window, or another session's */
        ck_assert_int_eq(azi3_store_session_rewind(s, x.id, opened.id), -EINVAL);
        ck_assert_int_eq(azi3_store_session_rewind(s, x.id + 1, cur.id), -EINVAL);
        ck_assert_int_eq(azi3_store_session_rewind(s, x.id, cur.id), 0);
        ck_assert_int_eq(azi3_store_windows_list(s, x.id, &l, &n), 0);
        ck_assert_uint_eq(n, 1);
        ck_assert(l[0].current);
        ck_assert_int_eq(l[0].id, cur.id);
        ck_assert_int_eq(l[0].alarm, WINDOW_ALARM_NONE);
        ck_assert_str_eq(l[0].alarm_reference_id, cur.alarm_reference_id); /* stable per window */
        ck_assert_int_eq(azi3_store_events_list(s, x.id, &ev, &n), 0);
        ck_assert_uint_eq(n, 1); /* events from since on are forgotten, to be applied again */
        ck_assert_int_eq(ev[0].source_event_id, 8999);
        /* a posted alarm is never taken back */
        ck_assert_int_eq(window_expire(&P0, &cur.span, A0 + W0, &t), 1);
        ck_assert_int_eq(azi3_store_apply_transition(s, x.id, cur.id, &t, A0 + W0, 0, NULL, NULL), 1);
        ck_assert_int_eq(azi3_store_alarm_mark_posted(s, cur.id, A0 + W0, 9100), 0);
        ck_assert_int_eq(azi3_store_session_rewind(s, x.id, cur.id), -EINVAL);
        assert_integrity();
}
END_TEST

/* --- races between processes (issue 15: several nodes on one store) ---------------------- */

#define N_RACERS 6

/* Starts N_RACERS children running FN(store, k, out_fd) at once, each on its own connection;
 * what they write to OUT_FD (lines) is returned, malloc'ed. */
static char *race(int (*fn)(azi3_store *s, int k, int out)) {
        pid_t pids[N_RACERS];
        int go[2], out[2];
        char *buf = NULL;
        size_t len = 0;
        FILE *f;

        ck_assert_int_eq(pipe(go), 0);
        ck_assert_int_eq(pipe(out), 0);
        for (int k = 0; k < N_RACERS; k++) {
                pids[k] = fork();
                ck_assert_int_ge(pids[k], 0);
                if (pids[k] == 0) {
                        azi3_store *s = NULL;
                        char err[512] = "", c;
                        int r;

                        close(go[1]);
                        close(out[0]);
                        r = azi3_store_open(path, err, sizeof(err), &s);
                        if (r < 0) {
                                fprintf(stderr, "racer %d: open: %s\n", k, err);
                                _exit(10);
                        }
                        (void) read(go[0], &c, 1); /* all connected: now race */
                        r = fn(s, k, out[1]);
                        if (r < 0)
                                fprintf(stderr, "racer %d: %d %s\n", k, r, azi3_store_last_error(s));
                        azi3_store_close(s);
                        _exit(r < 0 ? 11 : 0);
                }
        }
        close(go[0]);
        close(out[1]);
        close(go[1]); /* go */
        f = fdopen(out[0], "r");
        ck_assert_ptr_nonnull(f);
        {
                FILE *m = open_memstream(&buf, &len);
                int c;
                while ((c = fgetc(f)) != EOF)
                        fputc(c, m);
                fclose(m);
        }
        fclose(f);
        for (int k = 0; k < N_RACERS; k++) {
                int status;
                ck_assert_int_eq(waitpid(pids[k], &status, 0), pids[k]);
                ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "racer %d failed: status 0x%x", k, status);
        }
        return buf;
}

static size_t count_lines(const char *buf, const char *line) {
        size_t n = 0, l = strlen(line);
        for (const char *p = buf; (p = strstr(p, line)); p += l)
                if ((p == buf || p[-1] == '\n') && p[l] == '\n')
                        n++;
        return n;
}

#define RACE_ROUNDS 20

/* monitoring-scheduler on every node: each creates the day's sessions with their first window */
static int race_create(azi3_store *s, int k, int out) {
        for (int i = 0; i < RACE_ROUNDS; i++) {
                azi3_session x;
                window_span first;
                char line[64];
                int r, created;

                r = azi3_store_begin(s);
                if (r < 0)
                        return r;
                created = r = azi3_store_session_create(s, 100 + i, "toilet", "2026-03-29", &P0, A0 + (usec_t) k, &x);
                if (r == 1 && window_first(&x.params, &first) == 0)
                        r = azi3_store_window_open(s, x.id, &first, NULL);
                if (r >= 0)
                        r = azi3_store_commit(s);
                if (r < 0) {
                        (void) azi3_store_rollback(s);
                        return r;
                }
                if (created == 1) {
                        snprintf(line, sizeof(line), "created %d\n", i);
                        (void) write(out, line, strlen(line));
                }
        }
        return 0;
}

START_TEST(test_race_session_create) {
        _cleanup_free_ char *out = race(race_create);
        char line[64];

        for (int i = 0; i < RACE_ROUNDS; i++) {
                snprintf(line, sizeof(line), "created %d", i);
                ck_assert_msg(count_lines(out, line) == 1, "session %d created %zu times:\n%s", i, count_lines(out, line), out);
        }
        ck_assert_int_eq(count_rows("SELECT count(*) FROM sessions"), RACE_ROUNDS);
        ck_assert_int_eq(count_rows("SELECT count(*) FROM windows"), RACE_ROUNDS); /* one first window each */
}
END_TEST

/* sqs-consumer on every node, SQS delivering each message to all: each event is applied by
 * exactly one of them, the others see a duplicate */
static int race_events(azi3_store *s, int k, int out) {
        azi3_session x;
        int r;

        (void) k;
        r = azi3_store_session_find(s, 42, "toilet", "2026-03-29", &x);
        if (r < 0)
                return r;
        for (int i = 1; i <= RACE_ROUNDS; i++) {
                char line[64];

                r = apply_event(s, x.id, 9000 + i, A0 + (usec_t) i * MIN_, A0 + (usec_t) i * MIN_);
                if (r < 0)
                        return r;
                if (r != WINDOW_EVENT_DUPLICATE) {
                        snprintf(line, sizeof(line), "applied %d\n", 9000 + i);
                        (void) write(out, line, strlen(line));
                }
        }
        return 0;
}

START_TEST(test_race_event_apply) {
        _cleanup_(azi3_store_closep) azi3_store *s = open_ok();
        _cleanup_free_ azi3_window *l = NULL;
        _cleanup_free_ char *out = NULL;
        azi3_session x = make_session(s, 42, "toilet", "2026-03-29");
        char line[64];
        size_t n = 0;

        s = azi3_store_close(s);
        out = race(race_events);
        for (int i = 1; i <= RACE_ROUNDS; i++) {
                snprintf(line, sizeof(line), "applied %d", 9000 + i);
                ck_assert_msg(count_lines(out, line) == 1, "event %d applied %zu times:\n%s", 9000 + i,
                              count_lines(out, line), out);
        }
        s = open_ok();
        ck_assert_int_eq(azi3_store_windows_list(s, x.id, &l, &n), 0);
        ck_assert_uint_eq(n, RACE_ROUNDS + 1); /* the first, then one per event */
        for (int i = 0; i < RACE_ROUNDS; i++) {
                ck_assert_int_eq(l[i].reason, WINDOW_CLOSE_ACTIVITY);
                ck_assert_int_eq(l[i].closing_event_id, 9000 + i + 1);
        }
        ck_assert(l[RACE_ROUNDS].current);
        ck_assert_int_eq(count_rows("SELECT count(*) FROM events"), RACE_ROUNDS);
}
END_TEST

/* window-expiration on every node at the same instant: each owed alarm is posted by exactly
 * one, the way session_post_alarms() does it (claim, post, mark posted) */
static int race_alarms(azi3_store *s, int k, int out) {
        _cleanup_free_ azi3_window *owed = NULL;
        char owner[32];
        size_t n = 0;
        int r;

        snprintf(owner, sizeof(owner), "node-%d", k);
        r = azi3_store_alarms_owed(s, 0, &owed, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                char line[64];
                usec_t now = owed[i].span.until + MIN_;

                r = azi3_store_alarm_claim(s, owed[i].id, owner, now, now + 10 * MIN_);
                if (r < 0 && r != -EALREADY)
                        return r;
                if (r <= 0)
                        continue; /* another node posts it, or has */
                /* the post: Megazord would now receive it; an HTTP call takes a while */
                snprintf(line, sizeof(line), "posted %" PRId64 "\n", owed[i].id);
                (void) write(out, line, strlen(line));
                (void) nanosleep(&(struct timespec) { .tv_nsec = 5 * 1000 * 1000 }, NULL);
                r = azi3_store_alarm_mark_posted(s, owed[i].id, now, 9100 + owed[i].id);
                if (r < 0)
                        return r;
        }
        return 0;
}

START_TEST(test_race_alarm_post) {
        _cleanup_(azi3_store_closep) azi3_store *s = open_ok();
        _cleanup_free_ azi3_window *owed = NULL;
        _cleanup_free_ char *out = NULL;
        char line[64];
        size_t n = 0;

        /* RACE_ROUNDS sessions, each with one expired window whose alarm is owed */
        for (int i = 0; i < RACE_ROUNDS; i++) {
                azi3_session x = make_session(s, 200 + i, "toilet", "2026-03-29");
                azi3_window cur;
                window_transition t;

                ck_assert_int_eq(azi3_store_window_current(s, x.id, &cur), 0);
                ck_assert_int_eq(window_expire(&P0, &cur.span, A0 + W0, &t), 1);
                ck_assert_int_eq(azi3_store_apply_transition(s, x.id, cur.id, &t, A0 + W0, 0, NULL, NULL), 1);
        }
        ck_assert_int_eq(azi3_store_alarms_owed(s, 0, &owed, &n), 0);
        ck_assert_uint_eq(n, RACE_ROUNDS);
        s = azi3_store_close(s);

        out = race(race_alarms);
        for (size_t i = 0; i < n; i++) {
                snprintf(line, sizeof(line), "posted %" PRId64, owed[i].id);
                ck_assert_msg(count_lines(out, line) == 1, "alarm of window %" PRId64 " posted %zu times:\n%s",
                              owed[i].id, count_lines(out, line), out);
        }
        ck_assert_int_eq(count_rows("SELECT count(*) FROM windows WHERE alarm_state = 'alarmed' "
                                    "AND alarm_claim_owner IS NULL"), RACE_ROUNDS);
}
END_TEST

START_TEST(test_alarm_claim) {
        _cleanup_(azi3_store_closep) azi3_store *s = open_ok();
        azi3_session x = make_session(s, 42, "toilet", "2026-03-29");
        azi3_window cur;
        window_transition t;
        usec_t now = A0 + W0 + MIN_;

        ck_assert_int_eq(azi3_store_window_current(s, x.id, &cur), 0);
        ck_assert_int_eq(azi3_store_alarm_claim(s, cur.id, "a", now, now + MIN_), -EINVAL); /* owes nothing yet */
        ck_assert_int_eq(window_expire(&P0, &cur.span, A0 + W0, &t), 1);
        ck_assert_int_eq(azi3_store_apply_transition(s, x.id, cur.id, &t, A0 + W0, 0, NULL, NULL), 1);

        ck_assert_int_eq(azi3_store_alarm_claim(s, cur.id, "", now, now + MIN_), -EINVAL);
        ck_assert_int_eq(azi3_store_alarm_claim(s, cur.id, "a", now, now + MIN_), 1);
        ck_assert_int_eq(azi3_store_alarm_claim(s, cur.id, "a", now, now + MIN_), 1);  /* its own again */
        ck_assert_int_eq(azi3_store_alarm_claim(s, cur.id, "b", now, now + MIN_), 0);  /* a's is live */
        ck_assert_msg(strstr(azi3_store_last_error(s), "being posted by a"), "%s", azi3_store_last_error(s));
        /* a failed post gives it up: b may post at once */
        ck_assert_int_eq(azi3_store_alarm_release(s, cur.id, "b"), 0); /* not b's: nothing happens */
        ck_assert_int_eq(azi3_store_alarm_claim(s, cur.id, "b", now, now + MIN_), 0);
        ck_assert_int_eq(azi3_store_alarm_release(s, cur.id, "a"), 0);
        ck_assert_int_eq(azi3_store_alarm_claim(s, cur.id, "b", now, now + MIN_), 1);
        /* b dies holding it: the claim lapses at its until */
        ck_assert_int_eq(azi3_store_alarm_claim(s, cur.id, "c", now + MIN_ - 1, now + 2 * MIN_), 0);
        ck_assert_int_eq(azi3_store_alarm_claim(s, cur.id, "c", now + MIN_, now + 2 * MIN_), 1);
        ck_assert_int_eq(azi3_store_alarm_mark_posted(s, cur.id, now + MIN_, 9100), 0);
        ck_assert_int_eq(azi3_store_alarm_claim(s, cur.id, "d", now + 9 * MIN_, now + 10 * MIN_), -EALREADY);
}
END_TEST

/* window-expiration reads a session's windows in play in one statement, and every session's
 * in one more before it starts. */
START_TEST(test_windows_in_play) {
        _cleanup_(azi3_store_closep) azi3_store *s = open_ok();
        _cleanup_free_ azi3_window *all = NULL;
        azi3_session x = make_session(s, 42, "toilet", "2026-03-29");
        azi3_session y = make_session(s, 43, "toilet", "2026-03-29");
        azi3_session z = make_session(s, 44, "toilet", "2026-03-29");
        azi3_windows_in_play p = {};
        azi3_window y1, y2, y3, z1, cur;
        size_t n;

        /* y: three expired, the middle one posted, the later two closed out of time order */
        y1 = expire_at(s, &y, A0 + W0 + MIN_);
        y2 = expire_at(s, &y, A0 + 2 * W0 + 2 * MIN_);
        y3 = expire_at(s, &y, A0 + 3 * W0 + 3 * MIN_);
        ck_assert_int_eq(azi3_store_alarm_mark_posted(s, y2.id, A0 + 3 * W0, 9100), 0);
        /* z: its one window expired at B: owed, no current window */
        z1 = expire_at(s, &z, B0);

        ck_assert_int_eq(azi3_store_windows_in_play(s, x.id, &p), 0);
        ck_assert(p.has_current);
        ck_assert(p.current.current && p.current.session_id == x.id);
        ck_assert_uint_eq(p.n_owed, 0);
        ck_assert_ptr_null(p.owed);

        ck_assert_int_eq(azi3_store_windows_in_play(s, y.id, &p), 0);
        ck_assert(p.has_current);
        ck_assert_int_eq(azi3_store_window_current(s, y.id, &cur), 0);
        ck_assert_int_eq(p.current.id, cur.id);
        ck_assert_uint_eq(p.n_owed, 2);
        ck_assert_int_eq(p.owed[0].id, y1.id);
        ck_assert_int_eq(p.owed[1].id, y3.id);
        ck_assert_int_eq(p.owed[1].alarm, WINDOW_ALARM_OWED);
        ck_assert_str_eq(p.owed[1].alarm_reference_id, y3.alarm_reference_id);
        p.owed = mfree(p.owed);

        ck_assert_int_eq(azi3_store_windows_in_play(s, z.id, &p), 0);
        ck_assert(!p.has_current);
        ck_assert_uint_eq(p.n_owed, 1);
        ck_assert_int_eq(p.owed[0].id, z1.id);
        p.owed = mfree(p.owed);

        /* by session; a session's owed ones in time order before its current one */
        ck_assert_int_eq(azi3_store_windows_in_play_all(s, &all, &n), 0);
        ck_assert_uint_eq(n, 5);
        ck_assert(all[0].session_id == x.id && all[0].current);
        ck_assert(all[1].session_id == y.id && all[1].id == y1.id);
        ck_assert(all[2].session_id == y.id && all[2].id == y3.id);
        ck_assert(all[3].session_id == y.id && all[3].current && all[3].id == cur.id);
        ck_assert(all[4].session_id == z.id && all[4].id == z1.id);
}
END_TEST

/* An expired window closes confirmed and claimed in one statement (azi3_alarm_hold), as
 * azi3_store_alarm_mark_verified() and azi3_store_alarm_claim() would have left it. */
START_TEST(test_close_with_hold) {
        _cleanup_(azi3_store_closep) azi3_store *s = open_ok();
        azi3_session x = make_session(s, 42, "toilet", "2026-03-29");
        azi3_session y = make_session(s, 43, "toilet", "2026-03-29");
        usec_t now = A0 + W0 + MIN_;
        azi3_alarm_hold hold = { .verified_usec = now, .claim_owner = "a", .claim_until_usec = now + MIN_ };
        window_transition t, activity = {
                .close = true, .reason = WINDOW_CLOSE_ACTIVITY, .alarm = WINDOW_ALARM_NONE,
                .open = true, .next = window_open_at(&P0, A0 + MIN_),
        }, open_only = { .open = true, .next = window_open_at(&P0, A0 + MIN_) };
        azi3_window cur, w;

        ck_assert_int_eq(azi3_store_window_current(s, x.id, &cur), 0);
        /* only an expired window owes an alarm to hold: refused, nothing written */
        ck_assert_int_eq(azi3_store_apply_transition(s, x.id, cur.id, &activity, A0 + MIN_, 0, &hold, NULL), -EINVAL);
        ck_assert_int_eq(azi3_store_apply_transition(s, x.id, 0, &open_only, A0 + MIN_, 0, &hold, NULL), -EINVAL);
        ck_assert_int_eq(azi3_store_window_current(s, x.id, &w), 0);
        ck_assert_int_eq(w.id, cur.id);

        ck_assert_int_eq(window_expire(&P0, &cur.span, now, &t), 1);
        ck_assert_int_eq(azi3_store_apply_transition(s, x.id, cur.id, &t, now, 0, &hold, NULL), 1);
        ck_assert_int_eq(azi3_store_window_get(s, cur.id, &w), 0);
        ck_assert_int_eq(w.alarm, WINDOW_ALARM_OWED);
        ck_assert_uint_eq(w.alarm_verified_usec, now);
        ck_assert_int_eq(azi3_store_alarm_claim(s, cur.id, "b", now, now + MIN_), 0); /* a holds it */
        ck_assert_msg(strstr(azi3_store_last_error(s), "being posted by a"), "%s", azi3_store_last_error(s));
        ck_assert_int_eq(azi3_store_alarm_claim(s, cur.id, "a", now, now + MIN_), 1);
        ck_assert_int_eq(azi3_store_alarm_claim(s, cur.id, "b", now + MIN_, now + 2 * MIN_), 1); /* lapsed */

        /* confirmed only: anyone may claim it */
        hold = (azi3_alarm_hold) { .verified_usec = now };
        ck_assert_int_eq(azi3_store_window_current(s, y.id, &cur), 0);
        ck_assert_int_eq(azi3_store_apply_transition(s, y.id, cur.id, &t, now, 0, &hold, NULL), 1);
        ck_assert_int_eq(azi3_store_window_get(s, cur.id, &w), 0);
        ck_assert_uint_eq(w.alarm_verified_usec, now);
        ck_assert_int_eq(azi3_store_alarm_claim(s, cur.id, "b", now, now + MIN_), 1);

        /* without a hold nothing of it is written: unconfirmed, unclaimed */
        ck_assert_int_eq(azi3_store_window_current(s, y.id, &cur), 0);
        ck_assert_int_eq(window_expire(&P0, &cur.span, now + W0, &t), 1);
        ck_assert_int_eq(azi3_store_apply_transition(s, y.id, cur.id, &t, now + W0, 0, NULL, NULL), 1);
        ck_assert_int_eq(azi3_store_window_get(s, cur.id, &w), 0);
        ck_assert_uint_eq(w.alarm_verified_usec, 0);
        ck_assert_int_eq(azi3_store_alarm_claim(s, cur.id, "c", now + W0, now + W0 + MIN_), 1);
        /* a window of another session is refused, whatever the hold */
        ck_assert_int_eq(azi3_store_window_current(s, x.id, &cur), 0);
        ck_assert_int_eq(window_expire(&P0, &cur.span, now + W0, &t), 1);
        ck_assert_int_eq(azi3_store_apply_transition(s, y.id, cur.id, &t, now + W0, 0, &hold, NULL), -EINVAL);
        ck_assert_msg(strstr(azi3_store_last_error(s), "belongs to session"), "%s", azi3_store_last_error(s));
}
END_TEST

/* --- PostgreSQL only ------------------------------------------------------------------------ */

START_TEST(test_pg_migrate_and_reopen) {
        _cleanup_(azi3_store_closep) azi3_store *s = open_ok();
        azi3_session x, y;
        int v = 0;

        ck_assert(azi3_store_is_pg(s));
        ck_assert_int_eq(azi3_store_schema_version(s, &v), 0);
        ck_assert_int_eq(v, AZI3_STORE_SCHEMA_VERSION);
        ck_assert_int_eq(count_rows("SELECT version FROM azi3.schema_version"), AZI3_STORE_SCHEMA_VERSION);
        x = make_session(s, 42, "toilet-activity", "2026-03-29");
        s = azi3_store_close(s);
        s = open_ok();
        ck_assert_int_eq(azi3_store_session_find(s, 42, "toilet-activity", "2026-03-29", &y), 0);
        ck_assert_int_eq(y.id, x.id);
        ck_assert_int_eq(count_rows("SELECT count(*) FROM azi3.schema_version"), 1);
}
END_TEST

START_TEST(test_pg_refusals) {
        azi3_store *s = NULL;
        char err[512] = "", conn[600];

        s = open_ok();
        s = azi3_store_close(s);
        ck_assert_int_eq(raw_exec("UPDATE schema_version SET version = 99"), SQLITE_OK);
        ck_assert_int_eq(azi3_store_open(path, err, sizeof(err), &s), -EPROTONOSUPPORT);
        ck_assert_msg(strstr(err, "99") && strstr(err, "newer"), "message: %s", err);
        ck_assert_int_eq(count_rows("SELECT version FROM schema_version"), 99); /* untouched */

        /* a schema azi3 that is not ours */
        ck_assert_int_eq(raw_exec("DROP SCHEMA azi3 CASCADE; CREATE SCHEMA azi3; CREATE TABLE azi3.history (x int)"),
                         SQLITE_OK);
        ck_assert_int_eq(azi3_store_open(path, err, sizeof(err), &s), -EBADMSG);
        ck_assert_msg(strstr(err, "no schema version"), "message: %s", err);

        /* a password in the string: refused, and never repeated */
        snprintf(conn, sizeof(conn), "%s password=sekrit", pg);
        ck_assert_int_eq(azi3_store_open(conn, err, sizeof(err), &s), -EPERM);
        ck_assert_msg(strstr(err, "password") && strstr(err, "PGPASSFILE") && !strstr(err, "sekrit"), "message: %s", err);
        ck_assert_int_eq(azi3_store_open("postgresql://u:sekrit@127.0.0.1:1/db", err, sizeof(err), &s), -EPERM);
        ck_assert_msg(!strstr(err, "sekrit"), "message: %s", err);
        ck_assert_int_eq(azi3_store_open("host= port=x =", err, sizeof(err), &s), -EINVAL);

        /* nobody listening */
        ck_assert_int_eq(azi3_store_open("host=127.0.0.1 port=1 dbname=x connect_timeout=2", err, sizeof(err), &s),
                         -ECONNREFUSED);
        ck_assert_msg(strstr(err, "cannot connect to PostgreSQL"), "message: %s", err);
        ck_assert_ptr_null(s);
}
END_TEST

START_TEST(test_store_kind) {
        ck_assert(azi3_store_is_conninfo("postgresql://db.example/azi3"));
        ck_assert(azi3_store_is_conninfo("postgres:///azi3?host=/run/postgresql"));
        ck_assert(azi3_store_is_conninfo("host=db1,db2 dbname=azi3 target_session_attrs=read-write"));
        ck_assert(azi3_store_is_conninfo(" service = azi3"));
        ck_assert(!azi3_store_is_conninfo("/var/lib/schedulerd/azi3.db"));
        ck_assert(!azi3_store_is_conninfo("azi3.db"));
        ck_assert(!azi3_store_is_conninfo("./a=b.db"));
        ck_assert(!azi3_store_is_conninfo(NULL));
        ck_assert_int_eq(azi3_store_conninfo_check("dbname=azi3", NULL, 0), 0);
        ck_assert_int_eq(azi3_store_conninfo_check("dbname=azi3 password=x", NULL, 0), -EPERM);
        ck_assert_int_eq(azi3_store_conninfo_check("dbname=azi3 password=''", NULL, 0), 0);
}
END_TEST


static int64_t select_int(azi3_store *s, const char *sql, int64_t arg) {
        _cleanup_(store_stmt_freep) store_stmt *st = NULL;
        ck_assert_int_eq(store_prepare(s, &st, sql, "i", arg), 0);
        ck_assert_int_eq(store_step(s, st, "test"), 1);
        return store_col_int64(st, 0);
}

/* The SQLite driver keeps each statement text prepared once per connection (issue 16: preparing
 * was 38 % of an alarm run's CPU). Repeated calls reuse it; the same text in use twice at once,
 * a text rebuilt in one buffer, and a text of two statements all still give right answers. */
START_TEST(test_statement_cache) {
        _cleanup_(azi3_store_closep) azi3_store *s = open_ok();
        azi3_session x;
        char buf[64];

        ck_assert_int_eq(azi3_store_session_create(s, 42, "toilet", "2026-03-29", &P0, A0, &x), 1);
        ck_assert_int_eq(azi3_store_session_find(s, 42, "toilet", "2026-03-29", &x), 0);
        unsigned n = store_sqlite_cached_count(s);
        ck_assert_uint_gt(n, 0);
        for (int i = 0; i < 100; i++) {
                ck_assert_int_eq(azi3_store_session_find(s, 42, "toilet", "2026-03-29", &x), 0);
                ck_assert_int_eq(azi3_store_session_find(s, 43 + i, "toilet", "2026-03-29", &x), -ENOENT);
        }
        ck_assert_uint_eq(store_sqlite_cached_count(s), n);

        /* one text twice at once: the second is prepared apart, and each keeps its binding */
        const char *sql = "SELECT ? * 10";
        _cleanup_(store_stmt_freep) store_stmt *a = NULL, *b = NULL;
        ck_assert_int_eq(store_prepare(s, &a, sql, "i", (int64_t) 1), 0);
        ck_assert_int_eq(store_prepare(s, &b, sql, "i", (int64_t) 2), 0);
        ck_assert_int_eq(store_step(s, b, "b"), 1);
        ck_assert_int_eq(store_step(s, a, "a"), 1);
        ck_assert_int_eq(store_col_int64(a, 0), 10);
        ck_assert_int_eq(store_col_int64(b, 0), 20);
        a = store_stmt_free(a);
        b = store_stmt_free(b);
        ck_assert_uint_eq(store_sqlite_cached_count(s), n + 1);
        ck_assert_int_eq(select_int(s, sql, 3), 30); /* reused, bound afresh */
        ck_assert_uint_eq(store_sqlite_cached_count(s), n + 1);

        /* texts built in one buffer are told apart by their content, not their address */
        for (int k = 1; k <= 3; k++) {
                snprintf(buf, sizeof(buf), "SELECT ? + %d", k);
                ck_assert_int_eq(select_int(s, buf, 100), 100 + k);
        }
        snprintf(buf, sizeof(buf), "SELECT ? + %d", 1);
        ck_assert_int_eq(select_int(s, buf, 7), 8);
        ck_assert_uint_eq(store_sqlite_cached_count(s), n + 4);

        /* two statements in one text: the first runs, as before, and nothing is cached for it */
        ck_assert_int_eq(select_int(s, "SELECT ? - 1; SELECT 99", 5), 4);
        ck_assert_int_eq(select_int(s, "SELECT ? - 1; SELECT 99", 6), 5);
        ck_assert_uint_eq(store_sqlite_cached_count(s), n + 4);
}
END_TEST

/* Schema 4 (issue 16): writing a window or session row opens no ephemeral b-tree (SQLite checks
 * `x IN (list)` of more than two values with one, per row), and the CHECKs refuse what they did. */
static int ephemeral_opens(sqlite3 *db, const char *sql) {
        sqlite3_stmt *st = NULL;
        char explain[600];
        int n = 0;

        snprintf(explain, sizeof(explain), "EXPLAIN %s", sql);
        ck_assert_msg(sqlite3_prepare_v2(db, explain, -1, &st, NULL) == SQLITE_OK, "%s: %s", sql, sqlite3_errmsg(db));
        while (sqlite3_step(st) == SQLITE_ROW)
                n += streq((const char *) sqlite3_column_text(st, 1), "OpenEphemeral");
        sqlite3_finalize(st);
        return n;
}

START_TEST(test_rows_written_without_ephemeral_tables) {
        _cleanup_(azi3_store_closep) azi3_store *s = open_ok();
        azi3_session x;
        sqlite3 *db = NULL;

        ck_assert_int_eq(azi3_store_session_create(s, 42, "toilet", "2026-03-29", &P0, A0, &x), 1);
        s = azi3_store_close(s);
        ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
        ck_assert_int_eq(ephemeral_opens(db, "INSERT INTO windows (session_id, since_usec, until_usec, "
                                             "alarm_reference_id) VALUES (1, 1, 2, 'r')"), 0);
        ck_assert_int_eq(ephemeral_opens(db, "UPDATE windows SET closed_usec = 3, reason = 'expired', "
                                             "alarm_state = 'owed' WHERE id = 1 AND closed_usec IS NULL"), 0);
        ck_assert_int_eq(ephemeral_opens(db, "UPDATE sessions SET state = 'completed', result = 'no_alarms', "
                                             "completed_usec = 5 WHERE id = 1"), 0);
        ck_assert_int_eq(count_rows("SELECT count(*) FROM sessions"), 1);
        ck_assert_int_eq(sqlite3_exec(db, "DELETE FROM windows; INSERT INTO windows (session_id, since_usec, until_usec, "
                                      "alarm_reference_id) SELECT id, 1, 2, 'r' FROM sessions", NULL, NULL, NULL),
                         SQLITE_OK);
        ck_assert_int_eq(sqlite3_exec(db, "UPDATE windows SET reason = 'bogus', closed_usec = 3", NULL, NULL, NULL),
                         SQLITE_CONSTRAINT);
        ck_assert_int_eq(sqlite3_exec(db, "UPDATE windows SET closed_usec = 3, reason = 'expired', alarm_state = 'gone'",
                                      NULL, NULL, NULL), SQLITE_CONSTRAINT);
        ck_assert_int_eq(sqlite3_exec(db, "UPDATE sessions SET state = 'completed', result = 'bogus', completed_usec = 5",
                                      NULL, NULL, NULL), SQLITE_CONSTRAINT);
        ck_assert_int_eq(sqlite3_exec(db, "UPDATE windows SET closed_usec = 3, reason = 'expired', alarm_state = 'owed'",
                                      NULL, NULL, NULL), SQLITE_OK);
        sqlite3_close(db);
}
END_TEST

static Suite *store_suite(void) {
        Suite *s = suite_create("azi3_store");
        TCase *tc = tcase_create("store");
        TCase *only = tcase_create(pg ? "postgresql" : "sqlite");

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 120);
        tcase_add_checked_fixture(only, setup, teardown);
        tcase_set_timeout(only, 60);
        if (pg) {
                tcase_add_test(only, test_pg_migrate_and_reopen);
                tcase_add_test(only, test_pg_refusals);
        } else {
                tcase_add_test(only, test_migrate_empty_and_reopen);
                tcase_add_test(only, test_migrate_v1_keeps_rows);
                tcase_add_test(only, test_newer_version_refused);
                tcase_add_test(only, test_foreign_file_refused);
                tcase_add_test(only, test_open_errors);
                tcase_add_test(only, test_store_kind);
                tcase_add_test(only, test_statement_cache);
                tcase_add_test(only, test_rows_written_without_ephemeral_tables);
        }
        tcase_add_test(tc, test_rewind);
        tcase_add_test(tc, test_session_idempotent);
        tcase_add_test(tc, test_subscription);
        tcase_add_test(tc, test_sessions_list);
        tcase_add_test(tc, test_one_current_window);
        tcase_add_test(tc, test_model_through_store);
        tcase_add_test(tc, test_transition_atomic);
        tcase_add_test(tc, test_transactions);
        tcase_add_test(tc, test_batched_commits);
        tcase_add_test(tc, test_busy_maps_to_ebusy);
        tcase_add_test(tc, test_event_dedup);
        tcase_add_test(tc, test_owed_alarms_order);
        tcase_add_test(tc, test_sessions_due);
        tcase_add_test(tc, test_completion);
        tcase_add_test(tc, test_pending_unsubscriptions);
        tcase_add_test(tc, test_retention_cascades);
        tcase_add_test(tc, test_two_processes);
        tcase_add_test(tc, test_alarm_claim);
        tcase_add_test(tc, test_windows_in_play);
        tcase_add_test(tc, test_close_with_hold);
        tcase_add_test(tc, test_race_session_create);
        tcase_add_test(tc, test_race_event_apply);
        tcase_add_test(tc, test_race_alarm_post);
        suite_add_tcase(s, tc);
        suite_add_tcase(s, only);
        return s;
}

int main(void) {
        SRunner *sr;
        int failed;

        pg = getenv("AZI3_TEST_PG");
        if (isempty(pg))
                pg = NULL;
        sr = srunner_create(store_suite());

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
