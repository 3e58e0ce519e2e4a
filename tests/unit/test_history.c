/* SPDX-License-Identifier: MIT */
#include <check.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "store/history-pg.h"
#include "store/history.h"

/* Every backend-neutral case runs on SQLite, and on PostgreSQL too when SCHEDULERD_TEST_PG holds
 * a libpq connection string (tests/pg/with-pg.sh starts a private server and sets it): each case
 * then gets an empty database (the public schema dropped and made again). */
static const char *pg_conninfo;
static bool on_pg;

#define T0 ((usec_t) 1774000000 * USEC_PER_SEC)   /* an instant in 2026 */

static char test_dir[256];
static char test_path[300];

static PGconn *pg_admin(void) {
        PGconn *c = PQconnectdb(pg_conninfo);
        ck_assert_msg(PQstatus(c) == CONNECTION_OK, "connecting to %s: %s", pg_conninfo, PQerrorMessage(c));
        return c;
}

static void pg_exec(const char *sql) {
        PGconn *c = pg_admin();
        PGresult *res = PQexec(c, sql);
        ck_assert_msg(PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK,
                      "%s: %s", sql, PQresultErrorMessage(res));
        PQclear(res);
        PQfinish(c);
}

static void setup(void);
static void setup_pg(void) {
        setup();
        on_pg = true;
        pg_exec("SET client_min_messages = warning; DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public");
}

static void setup(void) {
        snprintf(test_dir, sizeof test_dir, "%s/test-history.XXXXXX", getenv("TMPDIR") ?: "/tmp");
        ck_assert_ptr_nonnull(mkdtemp(test_dir));
        snprintf(test_path, sizeof test_path, "%s/history.db", test_dir);
}

static void teardown(void) {
        static const char *const suffixes[] = { "", "-wal", "-shm", "-journal" };
        char p[320];

        (void) chmod(test_dir, 0700);
        for (size_t i = 0; i < ELEMENTSOF(suffixes); i++) {
                snprintf(p, sizeof p, "%s%s", test_path, suffixes[i]);
                (void) unlink(p);
        }
        (void) rmdir(test_dir);
}

/* Opens the case's store: the file, or the PostgreSQL database. */
static int open_store(char *err, size_t size, history **ret) {
        if (on_pg)
                return history_open_store(pg_conninfo, NULL, err, size, ret);
        return history_open(test_path, err, size, ret);
}

static history *open_ok(void) {
        char err[HISTORY_ERROR_MAX] = "";
        history *h = NULL;
        int r = open_store(err, sizeof err, &h);
        ck_assert_msg(r == 0, "history_open: %s (%s)", strerror(-r), err);
        ck_assert_ptr_nonnull(h);
        return h;
}

/* Reads an integer with a raw connection, to check what history.c wrote. */
static int64_t raw_int(const char *sql) {
        if (on_pg) {
                PGconn *c = pg_admin();
                PGresult *res = PQexec(c, sql);
                ck_assert_msg(PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1, "%s: %s", sql,
                              PQresultErrorMessage(res));
                int64_t v = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
                PQclear(res);
                PQfinish(c);
                return v;
        }
        sqlite3 *db = NULL;
        sqlite3_stmt *s = NULL;
        int64_t v;

        ck_assert_int_eq(sqlite3_open_v2(test_path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
        ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
        ck_assert_int_eq(sqlite3_step(s), SQLITE_ROW);
        v = sqlite3_column_int64(s, 0);
        sqlite3_finalize(s);
        sqlite3_close(db);
        return v;
}

static void raw_exec(const char *sql) {
        if (on_pg)
                return pg_exec(sql);
        sqlite3 *db = NULL;
        ck_assert_int_eq(sqlite3_open_v2(test_path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                                         NULL), SQLITE_OK);
        ck_assert_int_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
        sqlite3_close(db);
}

static int64_t claim(history *h, const char *job, run_trigger t, usec_t scheduled) {
        int64_t id = -1;
        int r = history_claim_fire(h, job, t, scheduled, scheduled + 10, 1234, &id);
        ck_assert_msg(r == 0, "claim %s at %" PRIu64 ": %s (%s)", job, scheduled, strerror(-r),
                      history_last_error(h));
        ck_assert_int_gt(id, 0);
        return id;
}

static void finish(history *h, int64_t id, run_status st, usec_t finished, usec_t duration) {
        history_result res = {
                .status = st,
                .exit_code = st == RUN_STATUS_SUCCEEDED ? 0 : 1,
                .finished_usec = finished,
                .duration_usec = duration,
        };
        int r = history_finish_run(h, id, &res);
        ck_assert_msg(r == 0, "finish %" PRId64 ": %s (%s)", id, strerror(-r), history_last_error(h));
}

START_TEST(test_run_status_strings) {
        for (int i = 0; i < _RUN_STATUS_MAX; i++) {
                const char *s = run_status_to_string(i);
                ck_assert_ptr_nonnull(s);
                ck_assert_int_eq(run_status_from_string(s), i);
        }
        for (int i = 0; i < _RUN_TRIGGER_MAX; i++) {
                const char *s = run_trigger_to_string(i);
                ck_assert_ptr_nonnull(s);
                ck_assert_int_eq(run_trigger_from_string(s), i);
        }
        ck_assert_str_eq(run_status_to_string(RUN_STATUS_TIMED_OUT), "timed_out");
        ck_assert_str_eq(run_trigger_to_string(RUN_TRIGGER_CATCH_UP), "catch_up");
        ck_assert_int_eq(run_status_from_string("Running"), _RUN_STATUS_INVALID);
        ck_assert_int_eq(run_status_from_string(NULL), _RUN_STATUS_INVALID);
        ck_assert_int_eq(run_trigger_from_string("cron"), _RUN_TRIGGER_INVALID);
        ck_assert_ptr_null(run_status_to_string(_RUN_STATUS_MAX));
        ck_assert_ptr_null(run_trigger_to_string(_RUN_TRIGGER_INVALID));
        ck_assert(run_status_is_failure(RUN_STATUS_CRASHED));
        ck_assert(run_status_is_failure(RUN_STATUS_INTERRUPTED));
        ck_assert(!run_status_is_failure(RUN_STATUS_CANCELLED));
        ck_assert(!run_status_is_failure(RUN_STATUS_SKIPPED));
        ck_assert(!run_status_is_final(RUN_STATUS_RUNNING));
        ck_assert(run_status_is_final(RUN_STATUS_SKIPPED));
}
END_TEST

START_TEST(test_open_creates_schema) {
        /* an existing empty file, as `touch history.db` leaves it */
        int fd = open(test_path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
        ck_assert_int_ge(fd, 0);
        close(fd);

        history *h = open_ok();
        int64_t id = claim(h, "a", RUN_TRIGGER_SCHEDULE, T0);
        history_close(h);

        ck_assert_int_eq(raw_int("PRAGMA user_version"), HISTORY_SCHEMA_VERSION);
        ck_assert_int_eq(raw_int("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' "
                                 "AND name IN ('runs', 'jobs')"), 2);
        ck_assert_int_eq(raw_int("SELECT id FROM runs WHERE job = 'a'"), id);

        /* re-open: no migration, data kept, WAL mode persistent */
        h = open_ok();
        history_run *runs = NULL;
        size_t n = 0;
        ck_assert_int_eq(history_list_runs(h, NULL, 0, _RUN_STATUS_INVALID, 0, &runs, &n), 0);
        ck_assert_uint_eq(n, 1);
        ck_assert_str_eq(runs[0].job, "a");
        ck_assert_int_eq(runs[0].status, RUN_STATUS_RUNNING);
        ck_assert_int_eq(runs[0].trigger, RUN_TRIGGER_SCHEDULE);
        ck_assert_uint_eq(runs[0].scheduled_usec, T0);
        ck_assert_uint_eq(runs[0].started_usec, T0 + 10);
        ck_assert_uint_eq(runs[0].finished_usec, USEC_INFINITY);
        ck_assert_int_eq(runs[0].pid, 1234);
        history_runs_free(runs, n);
        ck_assert_str_eq(history_last_error(h), "");
        history_close(h);
        ck_assert_int_eq(raw_int("PRAGMA user_version"), HISTORY_SCHEMA_VERSION);
}
END_TEST

START_TEST(test_open_newer_version_refused) {
        history_close(open_ok());
        raw_exec("PRAGMA user_version = 7");

        char err[HISTORY_ERROR_MAX] = "";
        history *h = NULL;
        ck_assert_int_eq(history_open(test_path, err, sizeof err, &h), -EPROTO);
        ck_assert_ptr_null(h);
        char known[16];
        snprintf(known, sizeof known, "(%d)", HISTORY_SCHEMA_VERSION);
        ck_assert_msg(strstr(err, "version 7") && strstr(err, known) && strstr(err, test_path),
                      "message must name both versions and the file: %s", err);
}
END_TEST

START_TEST(test_open_foreign_files_refused) {
        char err[HISTORY_ERROR_MAX] = "";
        history *h = NULL;

        /* some other application's database */
        raw_exec("CREATE TABLE t (x)");
        ck_assert_int_eq(history_open(test_path, err, sizeof err, &h), -EBADMSG);
        ck_assert_ptr_nonnull(strstr(err, "not a schedulerd history database"));
        ck_assert_int_eq(unlink(test_path), 0);

        /* not a database at all */
        FILE *f = fopen(test_path, "we");
        ck_assert_ptr_nonnull(f);
        for (int i = 0; i < 200; i++)
                fputs("this is certainly not an SQLite file\n", f);
        fclose(f);
        ck_assert_int_eq(history_open(test_path, err, sizeof err, &h), -EBADMSG);
        ck_assert_ptr_null(h);

        /* a directory that does not exist */
        snprintf(test_path, sizeof test_path, "%s/missing/history.db", test_dir);
        ck_assert_int_lt(history_open(test_path, err, sizeof err, &h), 0);
        ck_assert_ptr_null(h);
}
END_TEST

START_TEST(test_claim_once) {
        history *h = open_ok();
        int64_t id;

        claim(h, "a", RUN_TRIGGER_SCHEDULE, T0);
        /* the same fire, whichever trigger tries it again */
        ck_assert_int_eq(history_claim_fire(h, "a", RUN_TRIGGER_SCHEDULE, T0, T0 + 99, 0, &id), -EEXIST);
        ck_assert_int_eq(history_claim_fire(h, "a", RUN_TRIGGER_CATCH_UP, T0, T0 + 99, 0, &id), -EEXIST);
        ck_assert_int_eq(history_claim_fire(h, "a", RUN_TRIGGER_STARTUP, T0, T0 + 99, 0, &id), -EEXIST);
        ck_assert_int_eq(history_record_skipped(h, "a", RUN_TRIGGER_SCHEDULE, T0, T0 + 99, "x", &id), -EEXIST);
        ck_assert_ptr_nonnull(strstr(history_last_error(h), "already claimed"));
        /* other instants and other jobs are free; manual runs never collide */
        claim(h, "a", RUN_TRIGGER_SCHEDULE, T0 + 1);
        claim(h, "b", RUN_TRIGGER_SCHEDULE, T0);
        int64_t m1 = claim(h, "a", RUN_TRIGGER_MANUAL, T0);
        int64_t m2 = claim(h, "a", RUN_TRIGGER_MANUAL, T0);
        ck_assert_int_ne(m1, m2);
        /* a skipped fire is claimed too */
        ck_assert_int_eq(history_record_skipped(h, "a", RUN_TRIGGER_SCHEDULE, T0 + 2, T0 + 2,
                                                "singleton: run 1 still in flight", &id), 0);
        ck_assert_int_eq(history_claim_fire(h, "a", RUN_TRIGGER_SCHEDULE, T0 + 2, T0 + 3, 0, &id), -EEXIST);
        /* bad arguments */
        ck_assert_int_eq(history_claim_fire(h, "a", RUN_TRIGGER_RETRY, T0 + 5, T0 + 5, 0, &id), -EINVAL);
        ck_assert_int_eq(history_claim_fire(h, "", RUN_TRIGGER_SCHEDULE, T0 + 5, T0 + 5, 0, &id), -EINVAL);
        ck_assert_int_eq(history_claim_fire(h, "a", RUN_TRIGGER_SCHEDULE, USEC_INFINITY - 1, T0, 0, &id), -ERANGE);
        history_close(h);

        /* after a restart (or a clock set back), the claim still holds */
        h = open_ok();
        ck_assert_int_eq(history_claim_fire(h, "a", RUN_TRIGGER_SCHEDULE, T0, T0 + 5, 0, &id), -EEXIST);
        ck_assert_int_eq(history_claim_fire(h, "b", RUN_TRIGGER_CATCH_UP, T0, T0 + 5, 0, &id), -EEXIST);
        claim(h, "b", RUN_TRIGGER_CATCH_UP, T0 - USEC_PER_MINUTE);
        history_close(h);
        ck_assert_int_eq(raw_int("SELECT COUNT(*) FROM runs"), 7);
}
END_TEST

/* A claimed fire a later policy does not run (the cluster-wide singleton): its row becomes
 * skipped, counted once, and stays its instant's claim. */
START_TEST(test_skip_claimed) {
        history *h = open_ok();
        history_job_state st;
        history_run *runs = NULL;
        size_t n = 0;
        int64_t id = claim(h, "a", RUN_TRIGGER_SCHEDULE, T0), other = claim(h, "a", RUN_TRIGGER_SCHEDULE, T0 + 1);

        ck_assert_int_eq(history_skip_claimed(h, id, T0 + 20, "run 9 on node b still running (singleton, cluster-wide)"),
                         0);
        ck_assert_int_eq(history_get_job_state(h, "a", &st), 1);
        ck_assert_uint_eq(st.skipped_total, 1);
        ck_assert_uint_eq(st.runs_total, 0);
        ck_assert_int_eq(history_list_runs(h, "a", 0, RUN_STATUS_SKIPPED, 0, &runs, &n), 0);
        ck_assert_uint_eq(n, 1);
        ck_assert_int_eq(runs[0].id, id);
        ck_assert_uint_eq(runs[0].scheduled_usec, T0);
        ck_assert_uint_eq(runs[0].finished_usec, T0 + 20);
        ck_assert_str_eq(runs[0].message, "run 9 on node b still running (singleton, cluster-wide)");
        history_runs_free(runs, n);
        /* still the instant's claim; not twice, not a finished run, not a missing one */
        ck_assert_int_eq(history_claim_fire(h, "a", RUN_TRIGGER_SCHEDULE, T0, T0 + 30, 0, NULL), -EEXIST);
        ck_assert_int_eq(history_skip_claimed(h, id, T0 + 21, NULL), -ESTALE);
        finish(h, other, RUN_STATUS_SUCCEEDED, T0 + 40, 5);
        ck_assert_int_eq(history_skip_claimed(h, other, T0 + 41, NULL), -ESTALE);
        ck_assert_int_eq(history_skip_claimed(h, 424242, T0 + 41, NULL), -ENOENT);
        ck_assert_int_eq(history_get_job_state(h, "a", &st), 1);
        ck_assert_uint_eq(st.skipped_total, 1);
        ck_assert_uint_eq(st.runs_total, 1);
        history_close(h);
}
END_TEST

START_TEST(test_claim_retry) {
        history *h = open_ok();
        int64_t first = claim(h, "a", RUN_TRIGGER_SCHEDULE, T0), r1, r2, id;

        finish(h, first, RUN_STATUS_TIMED_OUT, T0 + USEC_PER_SEC, USEC_INFINITY);
        ck_assert_int_eq(history_claim_retry(h, first, 1, T0 + 2 * USEC_PER_SEC, 0, &r1), 0);
        ck_assert_int_eq(history_claim_retry(h, first, 1, T0 + 3 * USEC_PER_SEC, 0, &id), -EEXIST);
        ck_assert_int_eq(history_claim_retry(h, first, 2, T0 + 3 * USEC_PER_SEC, 0, &r2), 0);
        ck_assert_int_eq(history_claim_retry(h, r1, 2, T0, 0, &id), -EINVAL);
        ck_assert_int_eq(history_claim_retry(h, first, 0, T0, 0, &id), -EINVAL);
        ck_assert_int_eq(history_claim_retry(h, 999999, 1, T0, 0, &id), -ENOENT);

        /* manual runs are never deduplicated, nor are their retries */
        int64_t m = claim(h, "a", RUN_TRIGGER_MANUAL, T0);
        ck_assert_int_eq(history_claim_retry(h, m, 1, T0 + 1, 0, &id), 0);
        ck_assert_int_eq(history_claim_retry(h, m, 1, T0 + 1, 0, &id), 0);

        history_run *runs = NULL;
        size_t n = 0;
        ck_assert_int_eq(history_list_runs(h, "a", 0, _RUN_STATUS_INVALID, 0, &runs, &n), 0);
        ck_assert_uint_eq(n, 6);
        /* newest first: m's retries, m, r2, r1, first */
        ck_assert_int_eq(runs[3].id, r2);
        ck_assert_int_eq(runs[3].trigger, RUN_TRIGGER_RETRY);
        ck_assert_uint_eq(runs[3].attempt, 2);
        ck_assert_int_eq(runs[3].retry_of, first);
        ck_assert_uint_eq(runs[3].scheduled_usec, T0);
        ck_assert_int_eq(runs[4].id, r1);
        ck_assert_int_eq(runs[5].id, first);
        ck_assert_int_eq(runs[5].retry_of, 0);
        history_runs_free(runs, n);
        history_close(h);
}
END_TEST

START_TEST(test_finish_updates_counters) {
        history *h = open_ok();
        history_job_state st;

        ck_assert_int_eq(history_get_job_state(h, "a", &st), 0);
        ck_assert_int_eq(st.enabled_override, -1);
        ck_assert_uint_eq(st.runs_total, 0);
        ck_assert_int_eq(st.last_status, _RUN_STATUS_INVALID);

        int64_t a1 = claim(h, "a", RUN_TRIGGER_SCHEDULE, T0);
        int64_t a2 = claim(h, "a", RUN_TRIGGER_SCHEDULE, T0 + USEC_PER_MINUTE);
        int64_t a3 = claim(h, "a", RUN_TRIGGER_MANUAL, T0 + USEC_PER_MINUTE);
        ck_assert_int_eq(history_set_pid(h, a1, 4321), 0);
        finish(h, a1, RUN_STATUS_SUCCEEDED, T0 + 5 * USEC_PER_SEC, 3 * USEC_PER_SEC);
        finish(h, a3, RUN_STATUS_CANCELLED, T0 + USEC_PER_MINUTE + 20, USEC_INFINITY);

        /* a long message and output: the message's head and the output's tail are kept */
        char msg[3000], out[10000];
        memset(msg, 'm', sizeof msg - 1);
        msg[sizeof msg - 1] = '\0';
        for (size_t i = 0; i < sizeof out; i++)
                out[i] = (char) ('a' + i % 26);
        out[sizeof out - HISTORY_OUTPUT_MAX] = (char) 0xa9; /* a continuation byte at the cut */
        history_result res = {
                .status = RUN_STATUS_CRASHED,
                .exit_code = -1,
                .signal = 11,
                .finished_usec = T0 + USEC_PER_MINUTE + 7 * USEC_PER_SEC,
                .duration_usec = USEC_INFINITY,
                .message = msg,
                .output = out,
                .output_size = sizeof out,
        };
        ck_assert_int_eq(history_finish_run(h, a2, &res), 0);
        ck_assert_int_eq(history_finish_run(h, a2, &res), -ESTALE);
        ck_assert_int_eq(history_finish_run(h, 424242, &res), -ENOENT);
        ck_assert_int_eq(history_set_pid(h, a2, 99), -ESTALE);
        res.status = RUN_STATUS_RUNNING;
        ck_assert_int_eq(history_finish_run(h, a1, &res), -EINVAL);
        res.status = RUN_STATUS_SKIPPED;
        ck_assert_int_eq(history_finish_run(h, a1, &res), -EINVAL);

        ck_assert_int_eq(history_get_job_state(h, "a", &st), 1);
        ck_assert_uint_eq(st.runs_total, 3);
        ck_assert_uint_eq(st.failures_total, 1);
        ck_assert_uint_eq(st.skipped_total, 0);
        ck_assert_int_eq(st.last_run_id, a2);
        ck_assert_int_eq(st.last_status, RUN_STATUS_CRASHED);
        ck_assert_uint_eq(st.last_finished_usec, T0 + USEC_PER_MINUTE + 7 * USEC_PER_SEC);
        ck_assert_uint_eq(st.last_duration_usec, 7 * USEC_PER_SEC - 10);

        int64_t id;
        ck_assert_int_eq(history_record_skipped(h, "a", RUN_TRIGGER_SCHEDULE, T0 + 2 * USEC_PER_MINUTE,
                                                T0 + 2 * USEC_PER_MINUTE, "overlap", &id), 0);
        ck_assert_int_eq(history_get_job_state(h, "a", &st), 1);
        ck_assert_uint_eq(st.skipped_total, 1);
        ck_assert_uint_eq(st.runs_total, 3);

        history_run *runs = NULL;
        size_t n = 0;
        ck_assert_int_eq(history_list_runs(h, "a", 0, RUN_STATUS_CRASHED, 0, &runs, &n), 0);
        ck_assert_uint_eq(n, 1);
        ck_assert_int_eq(runs[0].signal, 11);
        ck_assert_int_eq(runs[0].exit_code, -1);
        ck_assert_uint_eq(runs[0].duration_usec, 7 * USEC_PER_SEC - 10);
        ck_assert_uint_eq(strlen(runs[0].message), HISTORY_MESSAGE_MAX);
        ck_assert_uint_eq(runs[0].output_size, HISTORY_OUTPUT_MAX - 1);
        ck_assert_int_eq(memcmp(runs[0].output, out + sizeof out - runs[0].output_size,
                                runs[0].output_size), 0);
        history_runs_free(runs, n);

        ck_assert_int_eq(history_list_runs(h, "a", 0, RUN_STATUS_SUCCEEDED, 0, &runs, &n), 0);
        ck_assert_uint_eq(n, 1);
        ck_assert_int_eq(runs[0].pid, 4321);
        ck_assert_int_eq(runs[0].exit_code, 0);
        ck_assert_uint_eq(runs[0].duration_usec, 3 * USEC_PER_SEC);
        ck_assert_ptr_null(runs[0].output);
        history_runs_free(runs, n);

        history_job_stats stats;
        ck_assert_int_eq(history_get_job_stats(h, "a", 0, &stats), 0);
        ck_assert_uint_eq(stats.runs, 3);
        ck_assert_uint_eq(stats.failures, 1);
        ck_assert_uint_eq(stats.skipped, 1);
        ck_assert_uint_eq(stats.average_duration_usec,
                          (3 * USEC_PER_SEC + (7 * USEC_PER_SEC - 10) + 10) / 3);
        ck_assert_int_eq(stats.last_run_id, id);
        ck_assert_int_eq(stats.last_status, RUN_STATUS_SKIPPED);
        ck_assert_int_eq(history_get_job_stats(h, "nope", 0, &stats), 0);
        ck_assert_uint_eq(stats.runs, 0);
        ck_assert_uint_eq(stats.average_duration_usec, USEC_INFINITY);
        ck_assert_int_eq(stats.last_status, _RUN_STATUS_INVALID);
        history_close(h);
}
END_TEST

/* A run whose start was not recorded yet (a worker's run that started and ended within one
 * batch) gets its start and pid with its result: the duration counts from that start, and a
 * result without them leaves what the row has. */
START_TEST(test_finish_with_start) {
        history *h = open_ok();
        history_run *runs = NULL;
        size_t n = 0;

        int64_t a = claim(h, "w", RUN_TRIGGER_SCHEDULE, T0);  /* started T0+10 at the claim, pid 1234 */
        int64_t b = claim(h, "w", RUN_TRIGGER_SCHEDULE, T0 + USEC_PER_MINUTE);
        history_result res = {
                .status = RUN_STATUS_SUCCEEDED, .exit_code = 0, .finished_usec = T0 + 900,
                .duration_usec = USEC_INFINITY, .started_usec = T0 + 500, .pid = 777,
        };
        ck_assert_int_eq(history_finish_run(h, a, &res), 0);
        res = (history_result) { .status = RUN_STATUS_SUCCEEDED, .exit_code = 0,
                                 .finished_usec = T0 + USEC_PER_MINUTE + 70, .duration_usec = USEC_INFINITY };
        ck_assert_int_eq(history_finish_run(h, b, &res), 0);
        /* a start that is no time is refused, and nothing is written */
        int64_t c = claim(h, "w", RUN_TRIGGER_SCHEDULE, T0 + 2 * USEC_PER_MINUTE);
        res.started_usec = USEC_INFINITY;
        ck_assert_int_eq(history_finish_run(h, c, &res), -ERANGE);

        ck_assert_int_eq(history_list_runs(h, "w", 0, RUN_STATUS_SUCCEEDED, 0, &runs, &n), 0);
        ck_assert_uint_eq(n, 2);
        for (size_t i = 0; i < n; i++) {
                if (runs[i].id == a) {
                        ck_assert_uint_eq(runs[i].started_usec, T0 + 500);
                        ck_assert_int_eq(runs[i].pid, 777);
                        ck_assert_uint_eq(runs[i].duration_usec, 400);
                } else {
                        ck_assert_int_eq(runs[i].id, b);
                        ck_assert_uint_eq(runs[i].started_usec, T0 + USEC_PER_MINUTE + 10);
                        ck_assert_int_eq(runs[i].pid, 1234);
                        ck_assert_uint_eq(runs[i].duration_usec, 60);
                }
        }
        history_runs_free(runs, n);
        history_close(h);
}
END_TEST

START_TEST(test_mark_interrupted) {
        history *h = open_ok();
        unsigned count = 99;

        int64_t a = claim(h, "a", RUN_TRIGGER_SCHEDULE, T0);
        int64_t b = claim(h, "b", RUN_TRIGGER_STARTUP, T0);
        int64_t c = claim(h, "b", RUN_TRIGGER_SCHEDULE, T0 + 1);
        finish(h, c, RUN_STATUS_SUCCEEDED, T0 + 100, 50);
        history_close(h);

        /* the daemon "died"; the next start finds a and b in flight */
        h = open_ok();
        ck_assert_int_eq(history_mark_interrupted(h, &count), 0);
        ck_assert_uint_eq(count, 2);
        ck_assert_int_eq(history_mark_interrupted(h, &count), 0);
        ck_assert_uint_eq(count, 0);

        history_run *runs = NULL;
        size_t n = 0;
        ck_assert_int_eq(history_list_runs(h, NULL, 0, RUN_STATUS_INTERRUPTED, 0, &runs, &n), 0);
        ck_assert_uint_eq(n, 2);
        ck_assert_int_eq(runs[0].id, b);
        ck_assert_int_eq(runs[1].id, a);
        ck_assert_uint_eq(runs[1].finished_usec, USEC_INFINITY);
        ck_assert_ptr_nonnull(runs[1].message);
        history_runs_free(runs, n);
        ck_assert_int_eq(history_finish_run(h, a, &(history_result) { .status = RUN_STATUS_FAILED,
                                                                       .finished_usec = T0 }), -ESTALE);

        history_job_state st;
        ck_assert_int_eq(history_get_job_state(h, "a", &st), 1);
        ck_assert_uint_eq(st.runs_total, 1);
        ck_assert_uint_eq(st.failures_total, 1);
        ck_assert_int_eq(st.last_status, RUN_STATUS_INTERRUPTED);
        /* b's newest row is c, which succeeded after b was started */
        ck_assert_int_eq(history_get_job_state(h, "b", &st), 1);
        ck_assert_uint_eq(st.runs_total, 2);
        ck_assert_uint_eq(st.failures_total, 1);
        ck_assert_int_eq(st.last_run_id, c);
        ck_assert_int_eq(st.last_status, RUN_STATUS_SUCCEEDED);
        history_close(h);
}
END_TEST

START_TEST(test_prune) {
        history *h = open_ok();
        unsigned deleted = 99;

        /* job a: 10 runs an hour apart; job b: 3 runs; plus one of a still running, old */
        for (unsigned i = 0; i < 10; i++) {
                int64_t id = claim(h, "a", RUN_TRIGGER_SCHEDULE, T0 + i * USEC_PER_HOUR);
                finish(h, id, RUN_STATUS_SUCCEEDED, T0 + i * USEC_PER_HOUR + 100, 90);
        }
        for (unsigned i = 0; i < 3; i++) {
                int64_t id = claim(h, "b", RUN_TRIGGER_SCHEDULE, T0 + i * USEC_PER_HOUR);
                finish(h, id, RUN_STATUS_FAILED, T0 + i * USEC_PER_HOUR + 100, 90);
        }
        int64_t running = claim(h, "a", RUN_TRIGGER_MANUAL, T0 - USEC_PER_DAY);

        usec_t now = T0 + 10 * USEC_PER_HOUR;
        /* by age: keep what started within the last 8.5 hours (a: fires 2..9, b: fire 2) */
        ck_assert_int_eq(history_prune(h, now, 8 * USEC_PER_HOUR + 30 * USEC_PER_MINUTE, 0, &deleted), 0);
        ck_assert_uint_eq(deleted, 2 + 2);
        /* by count: a keeps its newest 5 finished runs */
        ck_assert_int_eq(history_prune(h, now, 0, 5, &deleted), 0);
        ck_assert_uint_eq(deleted, 3);
        ck_assert_int_eq(history_prune(h, now, USEC_INFINITY, 5, &deleted), 0);
        ck_assert_uint_eq(deleted, 0);

        history_run *runs = NULL;
        size_t n = 0;
        ck_assert_int_eq(history_list_runs(h, "a", 0, _RUN_STATUS_INVALID, 0, &runs, &n), 0);
        ck_assert_uint_eq(n, 6);
        ck_assert_int_eq(runs[0].id, running);
        for (size_t i = 1; i < n; i++)
                ck_assert_uint_eq(runs[i].scheduled_usec, T0 + (10 - i) * USEC_PER_HOUR);
        history_runs_free(runs, n);
        ck_assert_int_eq(history_list_runs(h, "b", 0, _RUN_STATUS_INVALID, 0, &runs, &n), 0);
        ck_assert_uint_eq(n, 1);
        ck_assert_uint_eq(runs[0].scheduled_usec, T0 + 2 * USEC_PER_HOUR);
        history_runs_free(runs, n);
        ck_assert_int_eq(history_prune(h, now + USEC_PER_DAY, USEC_PER_HOUR, 0, &deleted), 0);
        ck_assert_uint_eq(deleted, 1 + 5);
        ck_assert_int_eq(history_list_runs(h, "b", 0, _RUN_STATUS_INVALID, 0, &runs, &n), 0);
        ck_assert_uint_eq(n, 0);
        ck_assert_ptr_null(runs);
        ck_assert_int_eq(history_list_runs(h, "a", 0, _RUN_STATUS_INVALID, 0, &runs, &n), 0);
        ck_assert_uint_eq(n, 1);
        ck_assert_int_eq(runs[0].id, running);
        history_runs_free(runs, n);

        /* lifetime counters survive pruning */
        history_job_state st;
        ck_assert_int_eq(history_get_job_state(h, "b", &st), 1);
        ck_assert_uint_eq(st.runs_total, 3);
        ck_assert_uint_eq(st.failures_total, 3);
        history_close(h);
}
END_TEST

START_TEST(test_list_filters) {
        history *h = open_ok();
        static const char *const jobs[] = { "a", "b", "c" };

        for (unsigned i = 0; i < 30; i++) {
                int64_t id = claim(h, jobs[i % 3], RUN_TRIGGER_SCHEDULE, T0 + i * USEC_PER_MINUTE);
                if (i % 5 != 4)
                        finish(h, id, i % 2 ? RUN_STATUS_FAILED : RUN_STATUS_SUCCEEDED,
                               T0 + i * USEC_PER_MINUTE + 1000, USEC_INFINITY);
        }

        history_run *runs = NULL;
        size_t n = 0;
        ck_assert_int_eq(history_list_runs(h, NULL, 0, _RUN_STATUS_INVALID, 0, &runs, &n), 0);
        ck_assert_uint_eq(n, 30);
        for (size_t i = 1; i < n; i++)
                ck_assert_int_gt(runs[i - 1].id, runs[i].id);
        history_runs_free(runs, n);

        ck_assert_int_eq(history_list_runs(h, "b", 0, _RUN_STATUS_INVALID, 4, &runs, &n), 0);
        ck_assert_uint_eq(n, 4);
        for (size_t i = 0; i < n; i++) {
                ck_assert_str_eq(runs[i].job, "b");
                ck_assert_uint_eq(runs[i].scheduled_usec, T0 + (28 - 3 * i) * USEC_PER_MINUTE);
        }
        history_runs_free(runs, n);

        /* since: started at or after fire 20 (started = scheduled + 10) */
        ck_assert_int_eq(history_list_runs(h, NULL, T0 + 20 * USEC_PER_MINUTE + 10,
                                           RUN_STATUS_RUNNING, 0, &runs, &n), 0);
        ck_assert_uint_eq(n, 2); /* fires 24 and 29 */
        ck_assert_uint_eq(runs[0].scheduled_usec, T0 + 29 * USEC_PER_MINUTE);
        ck_assert_uint_eq(runs[1].scheduled_usec, T0 + 24 * USEC_PER_MINUTE);
        history_runs_free(runs, n);

        ck_assert_int_eq(history_list_runs(h, "c", 0, RUN_STATUS_FAILED, 0, &runs, &n), 0);
        for (size_t i = 0; i < n; i++) {
                ck_assert_str_eq(runs[i].job, "c");
                ck_assert_int_eq(runs[i].status, RUN_STATUS_FAILED);
        }
        ck_assert_uint_eq(n, 4); /* c is i = 2,5,...,29; failed: odd and not i%5==4 */
        history_runs_free(runs, n);
        history_close(h);
}
END_TEST

START_TEST(test_job_state_persists) {
        history *h = open_ok();
        history_job_state st;

        ck_assert_int_eq(history_set_enabled_override(h, "a", 0), 0);
        ck_assert_int_eq(history_set_enabled_override(h, "b", 1), 0);
        ck_assert_int_eq(history_set_enabled_override(h, "b", 2), -EINVAL);
        ck_assert_int_eq(history_set_last_scheduled(h, "a", T0 + 5), 0);
        history_close(h);

        h = open_ok();
        ck_assert_int_eq(history_get_job_state(h, "a", &st), 1);
        ck_assert_int_eq(st.enabled_override, 0);
        ck_assert_uint_eq(st.last_scheduled_usec, T0 + 5);
        ck_assert_int_eq(history_get_job_state(h, "b", &st), 1);
        ck_assert_int_eq(st.enabled_override, 1);
        ck_assert_uint_eq(st.last_scheduled_usec, USEC_INFINITY);
        ck_assert_int_eq(history_set_enabled_override(h, "a", -1), 0);
        ck_assert_int_eq(history_set_last_scheduled(h, "a", T0 - 5), 0);
        ck_assert_int_eq(history_get_job_state(h, "a", &st), 1);
        ck_assert_int_eq(st.enabled_override, -1);
        ck_assert_uint_eq(st.last_scheduled_usec, T0 - 5);
        history_close(h);
}
END_TEST

struct seen {
        unsigned n, a, b;
        int a_override, b_override;
        usec_t a_last;
};

static int note_job_state(const char *job, const history_job_state *st, void *userdata) {
        struct seen *x = userdata;
        x->n++;
        if (streq(job, "a")) {
                x->a++;
                x->a_override = st->enabled_override;
                x->a_last = st->last_scheduled_usec;
        } else if (streq(job, "b")) {
                x->b++;
                x->b_override = st->enabled_override;
        }
        return x->n == 100 ? -ECANCELED : 0;
}

START_TEST(test_foreach_job_state) {
        history *h = open_ok();
        struct seen x = {};

        ck_assert_int_eq(history_foreach_job_state(h, note_job_state, &x), 0);
        ck_assert_uint_eq(x.n, 0);
        ck_assert_int_eq(history_set_enabled_override(h, "a", 0), 0);
        ck_assert_int_eq(history_set_last_scheduled(h, "a", T0 + 5), 0);
        ck_assert_int_eq(history_set_enabled_override(h, "b", 1), 0);
        ck_assert_int_eq(history_foreach_job_state(h, note_job_state, &x), 0);
        ck_assert_uint_eq(x.n, 2);
        ck_assert_uint_eq(x.a, 1);
        ck_assert_uint_eq(x.b, 1);
        ck_assert_int_eq(x.a_override, 0);
        ck_assert_uint_eq(x.a_last, T0 + 5);
        ck_assert_int_eq(x.b_override, 1);

        /* the callback's error stops the scan */
        for (unsigned i = 0; i < 200; i++) {
                char job[16];
                snprintf(job, sizeof(job), "j%u", i);
                ck_assert_int_eq(history_set_enabled_override(h, job, 1), 0);
        }
        x = (struct seen) {};
        ck_assert_int_eq(history_foreach_job_state(h, note_job_state, &x), -ECANCELED);
        ck_assert_uint_eq(x.n, 100);
        ck_assert_int_eq(history_foreach_job_state(NULL, note_job_state, &x), -EINVAL);
        history_close(h);
}
END_TEST

START_TEST(test_batch) {
        history *h = open_ok();
        int64_t id;

        ck_assert_int_eq(history_commit(h), -ENOTCONN);
        ck_assert_int_eq(history_begin(h), 0);
        ck_assert_int_eq(history_begin(h), -EALREADY);
        int64_t a = claim(h, "a", RUN_TRIGGER_SCHEDULE, T0);
        /* a failed claim inside a batch leaves the batch usable */
        ck_assert_int_eq(history_claim_fire(h, "a", RUN_TRIGGER_SCHEDULE, T0, T0, 0, &id), -EEXIST);
        finish(h, a, RUN_STATUS_SUCCEEDED, T0 + 10, 5);
        ck_assert_int_eq(history_finish_run(h, a, &(history_result) { .status = RUN_STATUS_FAILED,
                                                                       .finished_usec = T0 }), -ESTALE);
        ck_assert_int_eq(history_commit(h), 0);

        ck_assert_int_eq(history_begin(h), 0);
        claim(h, "a", RUN_TRIGGER_SCHEDULE, T0 + 1);
        ck_assert_int_eq(history_rollback(h), 0);
        ck_assert_int_eq(history_rollback(h), -ENOTCONN);

        history_job_state st;
        ck_assert_int_eq(history_get_job_state(h, "a", &st), 1);
        ck_assert_uint_eq(st.runs_total, 1);
        history_close(h);
        ck_assert_int_eq(raw_int("SELECT COUNT(*) FROM runs"), 1);

        /* closing with an open batch discards it */
        h = open_ok();
        ck_assert_int_eq(history_begin(h), 0);
        claim(h, "a", RUN_TRIGGER_SCHEDULE, T0 + 2);
        history_close(h);
        ck_assert_int_eq(raw_int("SELECT COUNT(*) FROM runs"), 1);
}
END_TEST

/* Runs FN in a child process, as nobody when we are root (root ignores file modes). */
static int run_unprivileged(int (*fn)(void)) {
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                if (geteuid() == 0 && (setgid(65534) < 0 || setuid(65534) < 0))
                        _exit(100);
                _exit(fn());
        }
        int status;
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert_msg(WIFEXITED(status), "child died with status 0x%x", status);
        return WEXITSTATUS(status);
}

static int readonly_child(void) {
        char err[HISTORY_ERROR_MAX] = "";
        history *h = NULL;
        int64_t id;
        int r = history_open(test_path, err, sizeof err, &h);
        if (r == -EROFS || r == -EACCES)
                return 0;               /* refused at open, with an error code: fine */
        if (r < 0)
                return 1;
        r = history_claim_fire(h, "a", RUN_TRIGGER_SCHEDULE, T0 + 1, T0 + 1, 0, &id);
        bool ok = r == -EROFS && strstr(history_last_error(h), "readonly");
        /* reading still works */
        history_run *runs = NULL;
        size_t n = 0;
        ok = ok && history_list_runs(h, NULL, 0, _RUN_STATUS_INVALID, 0, &runs, &n) == 0 && n == 1;
        history_runs_free(runs, n);
        history_close(h);
        return ok ? 0 : 2;
}

START_TEST(test_readonly) {
        history *h = open_ok();
        claim(h, "a", RUN_TRIGGER_SCHEDULE, T0);
        history_close(h);

        /* the directory writable (so SQLite can create its -shm), the database not */
        ck_assert_int_eq(chmod(test_path, 0444), 0);
        ck_assert_int_eq(chmod(test_dir, 0777), 0);
        ck_assert_int_eq(run_unprivileged(readonly_child), 0);

        /* nothing writable at all: refused at open */
        char p[320];
        snprintf(p, sizeof p, "%s-shm", test_path);
        (void) unlink(p);
        snprintf(p, sizeof p, "%s-wal", test_path);
        (void) unlink(p);
        ck_assert_int_eq(chmod(test_dir, 0755), 0);
        ck_assert_int_eq(run_unprivileged(readonly_child), 0);
}
END_TEST

START_TEST(test_disk_full) {
        history *h = open_ok();
        char out[HISTORY_OUTPUT_MAX];
        int r = 0;
        unsigned written = 0;

        memset(out, 'x', sizeof out);
        ck_assert_int_eq(history_set_size_limit(h, 128 * 1024), 0);
        for (unsigned i = 0; i < 1000 && r == 0; i++) {
                int64_t id;
                r = history_claim_fire(h, "a", RUN_TRIGGER_SCHEDULE, T0 + i, T0 + i, 0, &id);
                if (r == 0)
                        r = history_finish_run(h, id, &(history_result) {
                                .status = RUN_STATUS_SUCCEEDED, .finished_usec = T0 + i + 5,
                                .duration_usec = 5, .output = out, .output_size = sizeof out });
                if (r == 0)
                        written++;
        }
        ck_assert_msg(r == -ENOSPC, "expected -ENOSPC, got %d (%s)", r, history_last_error(h));
        ck_assert_ptr_nonnull(strstr(history_last_error(h), "full"));
        ck_assert_uint_gt(written, 0);

        /* a batch that hits the limit is reported, and the handle stays usable */
        ck_assert_int_eq(history_begin(h), 0);
        int64_t id;
        r = 0;
        for (unsigned i = 0; i < 1000 && r == 0; i++) {
                r = history_claim_fire(h, "b", RUN_TRIGGER_SCHEDULE, T0 + i, T0 + i, 0, &id);
                if (r == 0)
                        r = history_finish_run(h, id, &(history_result) {
                                .status = RUN_STATUS_SUCCEEDED, .finished_usec = T0 + i + 5,
                                .output = out, .output_size = sizeof out });
        }
        ck_assert_int_eq(r, -ENOSPC);
        r = history_commit(h);
        ck_assert_msg(r == 0 || r == -ENOSPC, "commit: %d", r);

        /* reads still work, and lifting the cap lets writes through again */
        history_job_state st;
        ck_assert_int_eq(history_get_job_state(h, "a", &st), 1);
        ck_assert_uint_eq(st.runs_total, written);
        ck_assert_int_eq(history_set_size_limit(h, 0), 0);
        claim(h, "c", RUN_TRIGGER_SCHEDULE, T0);
        history_close(h);
}
END_TEST

#define CONCURRENT_N 300

static int concurrent_child(unsigned k, int fd) {
        char err[HISTORY_ERROR_MAX], job[32];
        history *h = NULL;
        unsigned shared_won = 0;

        snprintf(job, sizeof job, "own-%u", k);
        if (open_store(err, sizeof err, &h) < 0)
                return 1;
        for (unsigned i = 0; i < CONCURRENT_N; i++) {
                int64_t id;
                int r = history_claim_fire(h, job, RUN_TRIGGER_SCHEDULE, T0 + i, T0 + i, 0, &id);
                if (r < 0)
                        return 2;
                r = history_finish_run(h, id, &(history_result) { .status = RUN_STATUS_SUCCEEDED,
                                                                  .finished_usec = T0 + i + 1 });
                if (r < 0)
                        return 3;
                /* both processes race for the same fires of one job */
                r = history_claim_fire(h, "shared", RUN_TRIGGER_SCHEDULE, T0 + i, T0 + i, 0, &id);
                if (r == 0)
                        shared_won++;
                else if (r != -EEXIST)
                        return 4;
        }
        history_close(h);
        return write(fd, &shared_won, sizeof shared_won) == sizeof shared_won ? 0 : 5;
}

START_TEST(test_two_processes) {
        int fds[2];
        pid_t pids[2];

        history_close(open_ok());
        ck_assert_int_eq(pipe(fds), 0);
        for (unsigned k = 0; k < 2; k++) {
                pids[k] = fork();
                ck_assert_int_ge(pids[k], 0);
                if (pids[k] == 0)
                        _exit(concurrent_child(k, fds[1]));
        }
        close(fds[1]);
        for (unsigned k = 0; k < 2; k++) {
                int status;
                ck_assert_int_eq(waitpid(pids[k], &status, 0), pids[k]);
                ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                              "child %u failed with status 0x%x", k, status);
        }
        unsigned won[2] = { 0, 0 };
        ck_assert_int_eq(read(fds[0], &won[0], sizeof won[0]), sizeof won[0]);
        ck_assert_int_eq(read(fds[0], &won[1], sizeof won[1]), sizeof won[1]);
        close(fds[0]);
        ck_assert_uint_eq(won[0] + won[1], CONCURRENT_N);

        history *h = open_ok();
        history_job_state st;
        for (unsigned k = 0; k < 2; k++) {
                char job[32];
                snprintf(job, sizeof job, "own-%u", k);
                ck_assert_int_eq(history_get_job_state(h, job, &st), 1);
                ck_assert_uint_eq(st.runs_total, CONCURRENT_N);
        }
        history_close(h);
        ck_assert_int_eq(raw_int("SELECT COUNT(*) FROM runs WHERE job = 'shared'"), CONCURRENT_N);
        ck_assert_int_eq(raw_int("SELECT COUNT(*) FROM runs"), 3 * CONCURRENT_N);
}
END_TEST

static double now_seconds(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* Claims and finishes N runs, committing every BATCH of them (0: no batching); rows/s. */
static double measure(history *h, const char *job, unsigned n, unsigned batch) {
        double start = now_seconds();
        for (unsigned i = 0; i < n; i++) {
                if (batch > 0 && i % batch == 0)
                        ck_assert_int_eq(history_begin(h), 0);
                int64_t id = claim(h, job, RUN_TRIGGER_SCHEDULE, T0 + i * USEC_PER_SEC);
                finish(h, id, RUN_STATUS_SUCCEEDED, T0 + i * USEC_PER_SEC + 500, 400);
                if (batch > 0 && (i % batch == batch - 1 || i == n - 1))
                        ck_assert_int_eq(history_commit(h), 0);
        }
        double elapsed = now_seconds() - start;
        return elapsed > 0 ? n / elapsed : 0;
}

/* Prints throughput for the record; asserts only correctness, never speed. */
START_TEST(test_throughput) {
        history *h = open_ok();
        unsigned n = 2000;
        double single = measure(h, "single", n, 0);
        double batched = measure(h, "batched", n, 100);

        printf("history throughput (claim+finish, %s): "
               "%.0f runs/s one transaction each, %.0f runs/s in batches of 100\n",
               on_pg ? "PostgreSQL over a Unix socket" : "SQLite WAL, synchronous=NORMAL", single, batched);
        history_job_state st;
        ck_assert_int_eq(history_get_job_state(h, "single", &st), 1);
        ck_assert_uint_eq(st.runs_total, n);
        ck_assert_int_eq(history_get_job_state(h, "batched", &st), 1);
        ck_assert_uint_eq(st.runs_total, n);
        history_close(h);
}
END_TEST

START_TEST(test_record_missed) {
        history *h = open_ok();
        history_job_state st;
        history_job_stats stats;
        history_run *runs = NULL;
        size_t n = 0;
        int64_t id = 0;

        /* three instants a minute apart as one row: the first claimed, the count kept */
        ck_assert_int_eq(history_record_missed(h, "a", RUN_TRIGGER_SCHEDULE, T0, T0 + 2 * USEC_PER_MINUTE, 3,
                                               T0 + 3 * USEC_PER_MINUTE, "too late", &id), 0);
        ck_assert_int_gt(id, 0);
        ck_assert_int_eq(history_claim_fire(h, "a", RUN_TRIGGER_SCHEDULE, T0, T0, 0, NULL), -EEXIST);
        ck_assert_int_eq(history_fire_claimed(h, "a", T0), 1);
        ck_assert_int_eq(history_record_missed(h, "a", RUN_TRIGGER_SCHEDULE, T0, T0, 1, T0, NULL, NULL), -EEXIST);
        ck_assert_int_eq(history_record_missed(h, "a", RUN_TRIGGER_SCHEDULE, T0 + 1, T0 + 1, 2, T0 + 5, NULL, NULL), 0);
        /* nonsense is refused, and writes nothing */
        ck_assert_int_eq(history_record_missed(h, "a", RUN_TRIGGER_SCHEDULE, T0 + 9, T0 + 9, 0, T0, NULL, NULL), -EINVAL);
        ck_assert_int_eq(history_record_missed(h, "a", RUN_TRIGGER_SCHEDULE, T0 + 9, T0 + 8, 1, T0, NULL, NULL), -EINVAL);
        ck_assert_int_eq(history_record_missed(h, "a", RUN_TRIGGER_RETRY, T0 + 9, T0 + 9, 1, T0, NULL, NULL), -EINVAL);

        ck_assert_int_eq(history_get_job_state(h, "a", &st), 1);
        ck_assert_uint_eq(st.missed_total, 5);
        ck_assert_uint_eq(st.runs_total, 0);
        ck_assert_uint_eq(st.skipped_total, 0);
        ck_assert_int_eq(history_get_job_stats(h, "a", 0, &stats), 0);
        ck_assert_uint_eq(stats.missed, 5);
        ck_assert_uint_eq(stats.runs, 0);
        ck_assert_uint_eq(stats.average_duration_usec, USEC_INFINITY);

        ck_assert_int_eq(history_list_runs(h, "a", 0, RUN_STATUS_MISSED, 0, &runs, &n), 0);
        ck_assert_uint_eq(n, 2);
        ck_assert_int_eq(runs[1].id, id);
        ck_assert_int_eq(runs[1].status, RUN_STATUS_MISSED);
        ck_assert_uint_eq(runs[1].scheduled_usec, T0);
        ck_assert_uint_eq(runs[1].missed_last_usec, T0 + 2 * USEC_PER_MINUTE);
        ck_assert_uint_eq(runs[1].missed_count, 3);
        ck_assert_uint_eq(runs[1].started_usec, T0 + 3 * USEC_PER_MINUTE);
        ck_assert_uint_eq(runs[1].finished_usec, T0 + 3 * USEC_PER_MINUTE);
        ck_assert_str_eq(runs[1].message, "too late");
        history_runs_free(runs, n);

        /* a missed row is final: it cannot be finished, and no status but missed carries a count */
        history_result res = { .status = RUN_STATUS_MISSED, .finished_usec = T0, .duration_usec = 0 };
        ck_assert_int_eq(history_finish_run(h, id, &res), -EINVAL);
        int64_t run = claim(h, "a", RUN_TRIGGER_SCHEDULE, T0 + USEC_PER_HOUR);
        ck_assert_int_eq(history_list_runs(h, "a", 0, RUN_STATUS_RUNNING, 0, &runs, &n), 0);
        ck_assert_uint_eq(n, 1);
        ck_assert_int_eq(runs[0].id, run);
        ck_assert_uint_eq(runs[0].missed_count, 0);
        ck_assert_uint_eq(runs[0].missed_last_usec, USEC_INFINITY);
        history_runs_free(runs, n);
        history_close(h);
        ck_assert_int_eq(raw_int("SELECT COUNT(*) FROM runs WHERE status != 'missed' AND missed_count IS NOT NULL"), 0);
}
END_TEST

/* Schema 5 (issue 16): writing a runs row opens no ephemeral b-tree. SQLite checks `x IN (list)`
 * of more than two values with one, per row; spelled as comparisons the CHECKs cost a third of
 * what they did, and still refuse what they refused. */
static int ephemeral_opens(sqlite3 *db, const char *sql) {
        sqlite3_stmt *s = NULL;
        int n = 0;
        char explain[512];
        snprintf(explain, sizeof explain, "EXPLAIN %s", sql);
        ck_assert_int_eq(sqlite3_prepare_v2(db, explain, -1, &s, NULL), SQLITE_OK);
        while (sqlite3_step(s) == SQLITE_ROW)
                n += streq((const char *) sqlite3_column_text(s, 1), "OpenEphemeral");
        sqlite3_finalize(s);
        return n;
}

START_TEST(test_runs_written_without_ephemeral_tables) {
        if (on_pg)
                return;
        history_close(open_ok());
        sqlite3 *db = NULL;
        ck_assert_int_eq(sqlite3_open_v2(test_path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
        ck_assert_int_eq(ephemeral_opens(db, "INSERT INTO runs (job, trigger, attempt, claim_class, scheduled_usec,"
                                             " started_usec, status) VALUES ('a', 'schedule', 0, 'fire', 1, 2, 'running')"),
                         0);
        ck_assert_int_eq(ephemeral_opens(db, "UPDATE runs SET status = 'succeeded', finished_usec = 3"
                                             " WHERE id = 1 AND status = 'running'"),
                         0);
        ck_assert_int_eq(sqlite3_exec(db, "INSERT INTO runs (job, trigger, attempt, scheduled_usec, started_usec, status)"
                                          " VALUES ('a', 'schedule', 0, 1, 2, 'bogus')", NULL, NULL, NULL),
                         SQLITE_CONSTRAINT);
        ck_assert_int_eq(sqlite3_exec(db, "INSERT INTO runs (job, trigger, attempt, scheduled_usec, started_usec, status)"
                                          " VALUES ('a', 'cron', 0, 1, 2, 'running')", NULL, NULL, NULL),
                         SQLITE_CONSTRAINT);
        ck_assert_int_eq(sqlite3_exec(db, "INSERT INTO runs (job, trigger, attempt, scheduled_usec, started_usec, status)"
                                          " VALUES ('a', 'catch_up', 0, 1, 2, 'missed')", NULL, NULL, NULL),
                         SQLITE_CONSTRAINT); /* missed needs its count: the other CHECKs still hold */
        ck_assert_int_eq(sqlite3_exec(db, "INSERT INTO runs (job, trigger, attempt, scheduled_usec, started_usec, status)"
                                          " VALUES ('a', 'catch_up', 0, 1, 2, 'interrupted')", NULL, NULL, NULL),
                         SQLITE_OK);
        sqlite3_close(db);
}
END_TEST

/* A file as schedulerd 3 wrote it (schema 3, released): migrated on (to 4, then 5) with its rows and links. */
START_TEST(test_migrate_3_to_4) {
        raw_exec("PRAGMA application_id = 1396918340;"
                 "CREATE TABLE runs (id INTEGER PRIMARY KEY, job TEXT NOT NULL,"
                 " trigger TEXT NOT NULL CHECK (trigger IN ('schedule', 'manual', 'startup', 'retry', 'catch_up')),"
                 " attempt INTEGER NOT NULL CHECK ((trigger = 'retry') = (attempt > 0)),"
                 " claim_class TEXT CHECK (claim_class IS NULL OR claim_class = 'fire'),"
                 " retry_of INTEGER REFERENCES runs (id) ON DELETE SET NULL,"
                 " scheduled_usec INTEGER NOT NULL, started_usec INTEGER NOT NULL, finished_usec INTEGER,"
                 " status TEXT NOT NULL CHECK (status IN ('running', 'succeeded', 'failed',"
                 " 'timed_out', 'crashed', 'skipped', 'cancelled', 'interrupted')),"
                 " exit_code INTEGER, signal INTEGER, duration_usec INTEGER, message TEXT, output TEXT, pid INTEGER);"
                 "CREATE UNIQUE INDEX runs_claim ON runs (job, scheduled_usec, attempt, claim_class);"
                 "CREATE INDEX runs_retry_of ON runs (retry_of) WHERE retry_of IS NOT NULL;"
                 "CREATE TABLE jobs (name TEXT PRIMARY KEY NOT NULL,"
                 " enabled_override INTEGER CHECK (enabled_override IN (0, 1)), last_scheduled_usec INTEGER,"
                 " runs_total INTEGER NOT NULL DEFAULT 0, failures_total INTEGER NOT NULL DEFAULT 0,"
                 " skipped_total INTEGER NOT NULL DEFAULT 0, last_run_id INTEGER, last_status TEXT,"
                 " last_finished_usec INTEGER, last_duration_usec INTEGER, first_loaded_usec INTEGER);"
                 "CREATE TABLE retries (first_id INTEGER PRIMARY KEY NOT NULL, job TEXT NOT NULL,"
                 " attempt INTEGER NOT NULL CHECK (attempt > 0), scheduled_usec INTEGER NOT NULL,"
                 " due_usec INTEGER NOT NULL);"
                 "CREATE TABLE pauses (job TEXT PRIMARY KEY NOT NULL, until_usec INTEGER);"
                 "CREATE TABLE backfills (job TEXT PRIMARY KEY NOT NULL, from_usec INTEGER NOT NULL,"
                 " to_usec INTEGER NOT NULL, next_usec INTEGER NOT NULL);"
                 "INSERT INTO runs VALUES (1, 'a', 'schedule', 0, 'fire', NULL, 100, 101, 102, 'failed',"
                 " 1, NULL, 1, 'boom', 'out', 7);"
                 "INSERT INTO runs VALUES (2, 'a', 'retry', 1, 'fire', 1, 100, 110, NULL, 'running',"
                 " NULL, NULL, NULL, NULL, NULL, 8);"
                 "INSERT INTO jobs (name, runs_total, failures_total, skipped_total) VALUES ('a', 1, 1, 4);"
                 "PRAGMA user_version = 3;");

        history *h = open_ok();
        history_run *runs = NULL;
        size_t n = 0;
        history_job_state st;
        ck_assert_int_eq(history_list_runs(h, "a", 0, _RUN_STATUS_INVALID, 0, &runs, &n), 0);
        ck_assert_uint_eq(n, 2);
        ck_assert_int_eq(runs[0].id, 2);
        ck_assert_int_eq(runs[0].retry_of, 1);
        ck_assert_int_eq(runs[0].pid, 8);
        ck_assert_int_eq(runs[1].status, RUN_STATUS_FAILED);
        ck_assert_str_eq(runs[1].message, "boom");
        ck_assert_str_eq(runs[1].output, "out");
        ck_assert_uint_eq(runs[1].missed_count, 0);
        history_runs_free(runs, n);
        ck_assert_int_eq(history_get_job_state(h, "a", &st), 1);
        ck_assert_uint_eq(st.skipped_total, 4);
        ck_assert_uint_eq(st.missed_total, 0);
        /* the claim key survived the copy, and the new status is accepted */
        ck_assert_int_eq(history_claim_fire(h, "a", RUN_TRIGGER_SCHEDULE, 100, 100, 0, NULL), -EEXIST);
        ck_assert_int_eq(history_record_missed(h, "a", RUN_TRIGGER_SCHEDULE, 200, 300, 2, 300, NULL, NULL), 0);
        /* the retry link still follows its first attempt */
        ck_assert_int_eq(history_prune(h, 1000, 1, 0, NULL), 0);
        history_close(h);
        ck_assert_int_eq(raw_int("PRAGMA user_version"), HISTORY_SCHEMA_VERSION);
        ck_assert_int_eq(raw_int("SELECT COUNT(*) FROM sqlite_master WHERE name LIKE 'runs_v%'"), 0);
        ck_assert_int_eq(raw_int("SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name LIKE 'runs_%'"), 2);
        ck_assert_int_eq(raw_int("SELECT IFNULL(retry_of, -1) FROM runs WHERE id = 2"), -1);
        ck_assert_int_eq(raw_int("SELECT COUNT(*) FROM pragma_foreign_key_check"), 0);
}
END_TEST

START_TEST(test_wal_pages_counted_until_checkpoint) {
        history *h = open_ok();
        int before = history_wal_pages(h); /* the schema, written at open */
        ck_assert_int_ge(before, 0);
        for (int i = 0; i < 5; i++) {
                ck_assert_int_eq(history_begin(h), 0);
                finish(h, claim(h, "a", RUN_TRIGGER_SCHEDULE, T0 + i), RUN_STATUS_SUCCEEDED, T0 + i + 10, 0);
                ck_assert_int_eq(history_commit(h), 0);
        }
        int pages = history_wal_pages(h);
        ck_assert_int_ge(pages, before + 5); /* a page per commit at least: it grows until checkpointed */
        ck_assert_int_eq(history_checkpoint(h), 0);
        ck_assert_int_eq(history_wal_pages(h), 0);
        /* the log starts over after the checkpoint: one commit is a few pages, not all of them again */
        ck_assert_int_eq(history_begin(h), 0);
        claim(h, "a", RUN_TRIGGER_SCHEDULE, T0 + 100);
        ck_assert_int_eq(history_commit(h), 0);
        ck_assert_int_gt(history_wal_pages(h), 0);
        ck_assert_int_lt(history_wal_pages(h), pages);
        history_close(h);
}
END_TEST

/* ---- PostgreSQL only ------------------------------------------------------------------------ */

START_TEST(test_pg_open_creates_schema) {
        history *h = open_ok();
        ck_assert_int_eq(history_get_backend(h), HISTORY_BACKEND_POSTGRESQL);
        ck_assert_ptr_nonnull(strstr(history_where(h), "PostgreSQL "));
        ck_assert_ptr_nonnull(history_pg_conn(h));
        ck_assert_uint_eq(history_pg_connections(h), 1);
        int64_t id = claim(h, "a", RUN_TRIGGER_SCHEDULE, T0);
        ck_assert_int_eq(history_checkpoint(h), 0);
        ck_assert_int_eq(history_wal_pages(h), 0); /* no WAL of ours to watch */
        ck_assert_int_eq(history_set_size_limit(h, 1 << 20), -EOPNOTSUPP);
        uint64_t rows = 0, bytes = 0;
        ck_assert_int_eq(history_get_size(h, &rows, &bytes), 0);
        ck_assert_uint_eq(rows, 1);
        ck_assert_uint_gt(bytes, 0);
        history_close(h);

        ck_assert_int_eq(raw_int("SELECT max(version) FROM schedulerd_schema"), (int64_t) history_pg_schema_steps);
        ck_assert_int_eq(raw_int("SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename IN "
                                 "('runs', 'jobs', 'retries', 'pauses', 'backfills')"), 5);
        ck_assert_int_eq(raw_int("SELECT id FROM runs WHERE job = 'a'"), id);

        /* re-open: no migration, data kept */
        h = open_ok();
        history_run *runs = NULL;
        size_t n = 0;
        ck_assert_int_eq(history_list_runs(h, NULL, 0, _RUN_STATUS_INVALID, 0, &runs, &n), 0);
        ck_assert_uint_eq(n, 1);
        ck_assert_str_eq(runs[0].job, "a");
        ck_assert_int_eq(runs[0].status, RUN_STATUS_RUNNING);
        ck_assert_uint_eq(runs[0].scheduled_usec, T0);
        ck_assert_uint_eq(runs[0].finished_usec, USEC_INFINITY);
        ck_assert_int_eq(runs[0].pid, 1234);
        history_runs_free(runs, n);
        ck_assert_str_eq(history_last_error(h), "");
        history_close(h);
        ck_assert_int_eq(raw_int("SELECT count(*) FROM schedulerd_schema"), (int64_t) history_pg_schema_steps);
}
END_TEST

START_TEST(test_pg_newer_version_refused) {
        char err[HISTORY_ERROR_MAX] = "";
        history *h = NULL;

        history_close(open_ok());
        raw_exec("INSERT INTO schedulerd_schema (version, description) VALUES (99, 'from the future')");
        ck_assert_int_eq(open_store(err, sizeof err, &h), -EPROTO);
        ck_assert_ptr_null(h);
        ck_assert_msg(strstr(err, "version 99") && strstr(err, "PostgreSQL"), "must name the version and server: %s",
                      err);
}
END_TEST

/* A database as the schedulerd before missed fires left it (schema step 3, with rows): step 4
 * changes the status check in place, keeps the rows and their counters, and takes missed rows. */
START_TEST(test_pg_migrate_3_to_4) {
        char sql[96];

        ck_assert_uint_ge(history_pg_schema_steps, 4);
        raw_exec("CREATE TABLE schedulerd_schema (version integer PRIMARY KEY, description text NOT NULL,"
                 " applied_at timestamptz NOT NULL DEFAULT now())");
        for (size_t i = 0; i < 3; i++) {
                _cleanup_free_ char *step = NULL;
                ck_assert_int_ge(asprintf(&step, "SET client_min_messages = warning; %s", history_pg_schema[i].sql), 0);
                raw_exec(step);
                snprintf(sql, sizeof sql, "INSERT INTO schedulerd_schema VALUES (%zu, 'test')", i + 1);
                raw_exec(sql);
        }
        raw_exec("INSERT INTO runs (job, trigger, attempt, claim_class, scheduled_usec, started_usec, finished_usec,"
                 " status) VALUES ('a', 'schedule', 0, 'fire', 100, 101, 102, 'skipped');"
                 "INSERT INTO jobs (name, skipped_total) VALUES ('a', 4)");

        history *h = open_ok();
        history_job_state st;
        history_run *runs = NULL;
        size_t n = 0;
        ck_assert_int_eq(history_get_job_state(h, "a", &st), 1);
        ck_assert_uint_eq(st.skipped_total, 4);
        ck_assert_uint_eq(st.missed_total, 0);
        ck_assert_int_eq(history_claim_fire(h, "a", RUN_TRIGGER_SCHEDULE, 100, 100, 0, NULL), -EEXIST);
        ck_assert_int_eq(history_record_missed(h, "a", RUN_TRIGGER_SCHEDULE, 200, 300, 2, 300, NULL, NULL), 0);
        ck_assert_int_eq(history_list_runs(h, "a", 0, _RUN_STATUS_INVALID, 0, &runs, &n), 0);
        ck_assert_uint_eq(n, 2);
        ck_assert_int_eq(runs[0].status, RUN_STATUS_MISSED);
        ck_assert_int_eq(runs[1].status, RUN_STATUS_SKIPPED);
        ck_assert_uint_eq(runs[1].missed_count, 0);
        ck_assert_uint_eq(runs[1].missed_last_usec, USEC_INFINITY);
        history_runs_free(runs, n);
        history_close(h);
        ck_assert_int_eq(raw_int("SELECT max(version) FROM schedulerd_schema"), (int64_t) history_pg_schema_steps);
        /* the checks hold on the server, not only in schedulerd */
        PGconn *c = pg_admin();
        PGresult *res = PQexec(c, "UPDATE runs SET missed_count = 1 WHERE status = 'skipped'");
        ck_assert_int_eq(PQresultStatus(res), PGRES_FATAL_ERROR);
        PQclear(res);
        res = PQexec(c, "UPDATE runs SET missed_count = 0 WHERE status = 'missed'");
        ck_assert_int_eq(PQresultStatus(res), PGRES_FATAL_ERROR);
        PQclear(res);
        PQfinish(c);
}
END_TEST

START_TEST(test_pg_foreign_database_refused) {
        char err[HISTORY_ERROR_MAX] = "";
        history *h = NULL;

        raw_exec("CREATE TABLE runs (x integer)");
        ck_assert_int_eq(open_store(err, sizeof err, &h), -EBADMSG);
        ck_assert_ptr_null(h);
        ck_assert_ptr_nonnull(strstr(err, "not a schedulerd history database"));
}
END_TEST

START_TEST(test_pg_store_strings) {
        char err[HISTORY_ERROR_MAX] = "";
        history *h = NULL;

        ck_assert_int_eq(history_store_check(NULL, err, sizeof err), 0);
        ck_assert_int_eq(history_store_check("sqlite", err, sizeof err), 0);
        ck_assert_int_eq(history_store_check("host=db1,db2 dbname=s target_session_attrs=read-write", err, sizeof err), 0);
        ck_assert_int_eq(history_store_check("postgresql://db1,db2/s?target_session_attrs=read-write", err, sizeof err), 0);
        /* a password never sits in the registry */
        ck_assert_int_eq(history_store_check("host=db1 password=secret", err, sizeof err), -EINVAL);
        ck_assert_msg(strstr(err, "password") && strstr(err, ".pgpass") && !strstr(err, "secret"), "%s", err);
        ck_assert_int_eq(history_store_check("postgresql://u:secret@db1/s", err, sizeof err), -EINVAL);
        ck_assert_ptr_nonnull(strstr(err, "PGPASSFILE"));
        ck_assert_int_eq(history_open_store("host=db1 password=secret", NULL, err, sizeof err, &h), -EINVAL);
        ck_assert_ptr_null(h);
        /* not a connection string at all */
        ck_assert_int_eq(history_store_check("sqlite3", err, sizeof err), -EINVAL);
        ck_assert_ptr_nonnull(strstr(err, "not a libpq connection string"));
        ck_assert_int_eq(history_store_check("host=db1 colour=blue", err, sizeof err), -EINVAL);
        ck_assert_ptr_nonnull(strstr(err, "colour"));
        /* a server that is not there: -ENOTCONN, saying so */
        snprintf(err, sizeof err, "x");
        ck_assert_int_eq(history_open_store("host=/nonexistent-schedulerd-test port=1 dbname=x", NULL, err,
                                            sizeof err, &h), -ENOTCONN);
        ck_assert_ptr_null(h);
        ck_assert_msg(strstr(err, "cannot connect") && strstr(err, "/nonexistent-schedulerd-test"), "%s", err);
}
END_TEST

static void pg_kill_sessions(void) {
        raw_exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'schedulerd'");
}

START_TEST(test_pg_reconnect) {
        history *h = open_ok();
        int64_t id;

        claim(h, "a", RUN_TRIGGER_SCHEDULE, T0);
        /* the connection is lost between two calls: the next call says so, the one after reconnects */
        pg_kill_sessions();
        int r = history_claim_fire(h, "a", RUN_TRIGGER_SCHEDULE, T0 + 1, T0 + 1, 0, &id);
        ck_assert_msg(r == -ENOTCONN, "expected -ENOTCONN, got %d (%s)", r, history_last_error(h));
        ck_assert_ptr_null(history_pg_conn(h));
        claim(h, "a", RUN_TRIGGER_SCHEDULE, T0 + 1);
        ck_assert_uint_eq(history_pg_connections(h), 2);
        /* the claim key held across the reconnection */
        ck_assert_int_eq(history_claim_fire(h, "a", RUN_TRIGGER_SCHEDULE, T0, T0, 0, &id), -EEXIST);

        /* lost inside a batch: the batch is gone, commit says so, the next batch works */
        ck_assert_int_eq(history_begin(h), 0);
        claim(h, "a", RUN_TRIGGER_SCHEDULE, T0 + 2);
        pg_kill_sessions();
        ck_assert_int_eq(history_claim_fire(h, "a", RUN_TRIGGER_SCHEDULE, T0 + 3, T0 + 3, 0, &id), -ENOTCONN);
        ck_assert_int_eq(history_commit(h), -ENOTCONN);
        ck_assert_int_eq(history_begin(h), 0);
        claim(h, "a", RUN_TRIGGER_SCHEDULE, T0 + 4);
        ck_assert_int_eq(history_commit(h), 0);
        history_close(h);
        ck_assert_int_eq(raw_int("SELECT count(*) FROM runs WHERE scheduled_usec IN (1774000000000002, 1774000000000003)"),
                         0);
        ck_assert_int_eq(raw_int("SELECT count(*) FROM runs"), 3);
}
END_TEST

/* A result that meets a lost connection, alone or in a batch, is written on reconnection. */
START_TEST(test_pg_result_kept_over_outage) {
        history *h = open_ok();
        int64_t a = claim(h, "a", RUN_TRIGGER_SCHEDULE, T0), b = claim(h, "a", RUN_TRIGGER_SCHEDULE, T0 + 1);
        history_result res = { .status = RUN_STATUS_SUCCEEDED, .exit_code = 0, .finished_usec = T0 + 100,
                               .duration_usec = USEC_INFINITY, .message = "done" };

        pg_kill_sessions();
        ck_assert_int_eq(history_finish_run(h, a, &res), -ENOTCONN);
        ck_assert_uint_eq(history_pg_pending_results(h, NULL), 1);

        /* in a batch that the connection takes with it */
        ck_assert_int_eq(history_begin(h), 0); /* reconnects: a is written first */
        ck_assert_uint_eq(history_pg_pending_results(h, NULL), 0);
        finish(h, b, RUN_STATUS_FAILED, T0 + 200, 7);
        pg_kill_sessions();
        ck_assert_int_eq(history_commit(h), -ENOTCONN);
        ck_assert_uint_eq(history_pg_pending_results(h, NULL), 1);

        history_job_state st;
        ck_assert_int_eq(history_get_job_state(h, "a", &st), 1); /* reconnects: b is written first */
        ck_assert_uint_eq(st.runs_total, 2);
        ck_assert_uint_eq(st.failures_total, 1);
        ck_assert_uint_eq(history_pg_pending_results(h, NULL), 0);
        history_close(h);
        ck_assert_int_eq(raw_int("SELECT count(*) FROM runs WHERE status = 'running'"), 0);
        ck_assert_int_eq(raw_int("SELECT duration_usec FROM runs WHERE status = 'failed'"), 7);
}
END_TEST

/* A COMMIT the server refuses with the connection kept (here a deferred check; in life a
 * serialization failure or a timeout) must not lose the batch's results: they are written
 * before the next batch, not only on a reconnection that may never come. */
START_TEST(test_pg_result_kept_over_failed_commit) {
        history *h = open_ok();
        int64_t a = claim(h, "a", RUN_TRIGGER_SCHEDULE, T0);

        raw_exec("CREATE FUNCTION t_refuse() RETURNS trigger LANGUAGE plpgsql AS "
                 "$$BEGIN RAISE EXCEPTION 'refused at commit by the test'; END$$");
        raw_exec("CREATE CONSTRAINT TRIGGER t_refuse AFTER UPDATE ON runs DEFERRABLE INITIALLY DEFERRED "
                 "FOR EACH ROW EXECUTE FUNCTION t_refuse()");
        ck_assert_int_eq(history_begin(h), 0);
        finish(h, a, RUN_STATUS_SUCCEEDED, T0 + 100, 5);
        int r = history_commit(h);
        ck_assert_msg(r < 0 && r != -ENOTCONN, "commit: %d (%s)", r, history_last_error(h));
        ck_assert_ptr_nonnull(strstr(history_last_error(h), "refused at commit"));
        ck_assert_ptr_nonnull(history_pg_conn(h)); /* the connection stayed */
        ck_assert_uint_eq(history_pg_pending_results(h, NULL), 1);
        ck_assert_int_eq(raw_int("SELECT count(*) FROM runs WHERE status = 'running'"), 1);

        raw_exec("DROP TRIGGER t_refuse ON runs");
        ck_assert_int_eq(history_begin(h), 0); /* the kept result goes first */
        ck_assert_uint_eq(history_pg_pending_results(h, NULL), 0);
        ck_assert_int_eq(history_commit(h), 0);
        ck_assert_uint_eq(history_pg_connections(h), 1);
        history_close(h);
        ck_assert_int_eq(raw_int("SELECT count(*) FROM runs WHERE status = 'succeeded'"), 1);
        ck_assert_int_eq(raw_int("SELECT runs_total FROM jobs WHERE name = 'a'"), 1);
}
END_TEST

/* libpq's multi-host: the first host is down, the second takes the session. */
START_TEST(test_pg_multi_host) {
        PQconninfoOption *opts = PQconninfoParse(pg_conninfo, NULL);
        const char *host = NULL, *port = NULL;
        char conninfo[1024], err[HISTORY_ERROR_MAX] = "";
        history *h = NULL;

        ck_assert_ptr_nonnull(opts);
        for (PQconninfoOption *o = opts; o->keyword; o++) {
                if (streq(o->keyword, "host"))
                        host = o->val;
                else if (streq(o->keyword, "port"))
                        port = o->val;
        }
        ck_assert_ptr_nonnull(host);
        ck_assert_ptr_nonnull(port);
        snprintf(conninfo, sizeof conninfo,
                 "host=/nonexistent-schedulerd-test,%s port=%s,%s dbname=postgres user=postgres "
                 "target_session_attrs=read-write", host, port, port);
        PQconninfoFree(opts);

        int r = history_open_store(conninfo, NULL, err, sizeof err, &h);
        ck_assert_msg(r == 0, "%s: %s", conninfo, err);
        claim(h, "a", RUN_TRIGGER_SCHEDULE, T0);
        pg_kill_sessions();
        int64_t id;
        ck_assert_int_eq(history_claim_fire(h, "a", RUN_TRIGGER_SCHEDULE, T0 + 1, T0 + 1, 0, &id), -ENOTCONN);
        claim(h, "a", RUN_TRIGGER_SCHEDULE, T0 + 1);
        history_close(h);
        ck_assert_int_eq(raw_int("SELECT count(*) FROM runs"), 2);
}
END_TEST

/* N daemons starting on an empty database at once: every one opens, the schema is made once. */
START_TEST(test_pg_concurrent_migration) {
        enum { N = 6 };
        pid_t pids[N];

        for (unsigned k = 0; k < N; k++) {
                pids[k] = fork();
                ck_assert_int_ge(pids[k], 0);
                if (pids[k] == 0) {
                        char err[HISTORY_ERROR_MAX];
                        history *h = NULL;
                        int64_t id;
                        if (open_store(err, sizeof err, &h) < 0) {
                                fprintf(stderr, "child %u: %s\n", k, err);
                                _exit(1);
                        }
                        int r = history_claim_fire(h, "a", RUN_TRIGGER_SCHEDULE, T0, T0, 0, &id);
                        history_close(h);
                        _exit(r == 0 ? 10 : r == -EEXIST ? 11 : 2);
                }
        }
        unsigned won = 0;
        for (unsigned k = 0; k < N; k++) {
                int status;
                ck_assert_int_eq(waitpid(pids[k], &status, 0), pids[k]);
                ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) >= 10, "child %u: status 0x%x", k, status);
                won += WEXITSTATUS(status) == 10;
        }
        ck_assert_uint_eq(won, 1);
        ck_assert_int_eq(raw_int("SELECT count(*) FROM schedulerd_schema"), (int64_t) history_pg_schema_steps);
        ck_assert_int_eq(raw_int("SELECT count(*) FROM runs"), 1);
}
END_TEST

/* Output is bytes (NULs, a cut UTF-8 sequence); a message with bad UTF-8 is kept, repaired. */
START_TEST(test_pg_output_bytes) {
        history *h = open_ok();
        static const char out[] = "ok\0bin\xe2\x82";
        int64_t id = claim(h, "a", RUN_TRIGGER_SCHEDULE, T0);
        int r = history_finish_run(h, id, &(history_result) {
                .status = RUN_STATUS_FAILED, .exit_code = 3, .finished_usec = T0 + 50,
                .duration_usec = USEC_INFINITY, .message = "bad \xff byte", .output = out, .output_size = sizeof out - 1 });
        ck_assert_msg(r == 0, "%s", history_last_error(h));

        history_run *runs = NULL;
        size_t n = 0;
        ck_assert_int_eq(history_list_runs(h, "a", 0, _RUN_STATUS_INVALID, 0, &runs, &n), 0);
        ck_assert_uint_eq(n, 1);
        ck_assert_uint_eq(runs[0].output_size, sizeof out - 1);
        ck_assert(memcmp(runs[0].output, out, sizeof out - 1) == 0);
        ck_assert_str_eq(runs[0].message, "bad ? byte");
        ck_assert_uint_eq(runs[0].duration_usec, 40); /* finished - started */
        ck_assert_int_eq(runs[0].exit_code, 3);
        history_runs_free(runs, n);
        history_close(h);
}
END_TEST

static Suite *history_suite(void) {
        Suite *s = suite_create("history");
        TCase *tc = tcase_create("core");

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_run_status_strings);
        tcase_add_test(tc, test_open_creates_schema);
        tcase_add_test(tc, test_open_newer_version_refused);
        tcase_add_test(tc, test_open_foreign_files_refused);
        tcase_add_test(tc, test_claim_once);
        tcase_add_test(tc, test_skip_claimed);
        tcase_add_test(tc, test_claim_retry);
        tcase_add_test(tc, test_finish_updates_counters);
        tcase_add_test(tc, test_finish_with_start);
        tcase_add_test(tc, test_mark_interrupted);
        tcase_add_test(tc, test_prune);
        tcase_add_test(tc, test_list_filters);
        tcase_add_test(tc, test_job_state_persists);
        tcase_add_test(tc, test_foreach_job_state);
        tcase_add_test(tc, test_batch);
        tcase_add_test(tc, test_readonly);
        tcase_add_test(tc, test_disk_full);
        tcase_add_test(tc, test_two_processes);
        tcase_add_test(tc, test_throughput);
        tcase_add_test(tc, test_record_missed);
        tcase_add_test(tc, test_migrate_3_to_4);
        tcase_add_test(tc, test_runs_written_without_ephemeral_tables);
        tcase_add_test(tc, test_wal_pages_counted_until_checkpoint);
        suite_add_tcase(s, tc);

        if (pg_conninfo) {
                /* the same cases on PostgreSQL, and its own */
                tc = tcase_create("postgresql");
                tcase_add_checked_fixture(tc, setup_pg, teardown);
                tcase_set_timeout(tc, 120);
                tcase_add_test(tc, test_pg_open_creates_schema);
                tcase_add_test(tc, test_pg_newer_version_refused);
                tcase_add_test(tc, test_pg_foreign_database_refused);
                tcase_add_test(tc, test_pg_migrate_3_to_4);
                tcase_add_test(tc, test_pg_store_strings);
                tcase_add_test(tc, test_pg_reconnect);
                tcase_add_test(tc, test_pg_result_kept_over_outage);
                tcase_add_test(tc, test_pg_result_kept_over_failed_commit);
                tcase_add_test(tc, test_pg_multi_host);
                tcase_add_test(tc, test_pg_concurrent_migration);
                tcase_add_test(tc, test_pg_output_bytes);
                tcase_add_test(tc, test_claim_once);
                tcase_add_test(tc, test_claim_retry);
                tcase_add_test(tc, test_finish_updates_counters);
                tcase_add_test(tc, test_finish_with_start);
                tcase_add_test(tc, test_mark_interrupted);
                tcase_add_test(tc, test_prune);
                tcase_add_test(tc, test_list_filters);
                tcase_add_test(tc, test_job_state_persists);
                tcase_add_test(tc, test_foreach_job_state);
                tcase_add_test(tc, test_batch);
                tcase_add_test(tc, test_two_processes);
                tcase_add_test(tc, test_throughput);
                tcase_add_test(tc, test_record_missed);
                suite_add_tcase(s, tc);
        }
        return s;
}

int main(void) {
        pg_conninfo = getenv("SCHEDULERD_TEST_PG");
        if (isempty(pg_conninfo))
                pg_conninfo = NULL;
        SRunner *sr = srunner_create(history_suite());
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
