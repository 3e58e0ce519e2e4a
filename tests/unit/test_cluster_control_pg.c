/* SPDX-License-Identifier: MIT */
/* store/cluster-control-pg.c against a real private PostgreSQL (tests/pg/pg-server.sh): the
 * control generations and their notifications, run requests taken once, the cluster-wide
 * singleton slot and the catch-up high-water mark, with several connections racing. Skipped
 * (77) when PostgreSQL is not installed. */
#include <check.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store/cluster-control-pg.h"

static char pg_dir[256];
static char conninfo[1024];

static int sh(const char *cmd, char *out, size_t n) {
        FILE *f = popen(cmd, "r");
        if (!f)
                return -1;
        size_t k = out ? fread(out, 1, n - 1, f) : 0;
        if (out) {
                out[k] = 0;
                while (k > 0 && (out[k - 1] == '\n' || out[k - 1] == ' '))
                        out[--k] = 0;
        }
        return pclose(f);
}

static const char *script(void) {
        static char p[512];
        snprintf(p, sizeof p, "%s/tests/pg/pg-server.sh", getenv("top_srcdir") ?: ".");
        return p;
}

static PGconn *conn(void) {
        PGconn *c = PQconnectdb(conninfo);
        ck_assert_msg(PQstatus(c) == CONNECTION_OK, "connect: %s", PQerrorMessage(c));
        PQclear(PQexec(c, "SET client_min_messages = warning"));
        return c;
}

static void psql(PGconn *c, const char *sql) {
        PGresult *r = PQexec(c, sql);
        ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK, "%s: %s", sql,
                      PQerrorMessage(c));
        PQclear(r);
}

/* A fresh schema per test: the runs table as far as the singleton slot reads it, and ours. */
static void setup(void) {
        PGconn *c = conn();
        psql(c, "DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public;");
        psql(c, "CREATE TABLE runs (id bigserial PRIMARY KEY, job text NOT NULL, status text NOT NULL)");
        psql(c, cluster_control_pg_schema);
        psql(c, cluster_control_pg_schema); /* idempotent: N nodes may run it */
        PQfinish(c);
}

static int collect(const char *job, int override, uint64_t generation, void *userdata) {
        char *buf = userdata;
        size_t l = strlen(buf);
        snprintf(buf + l, 256 - l, "%s=%d@%" PRIu64 ";", job, override, generation);
        return 0;
}

START_TEST(test_enable_generations_and_notify) {
        PGconn *a = conn(), *b = conn();
        uint64_t g1, g2, g3, top;
        unsigned n = 0;
        char seen[256] = "";

        ck_assert_int_eq(cluster_ctl_listen(b), 0);
        ck_assert_int_eq(cluster_ctl_set_enabled(a, "alpha", 0, &g1), 0);
        ck_assert_int_eq(cluster_ctl_set_enabled(a, "beta", 1, &g2), 0);
        ck_assert_int_eq(cluster_ctl_set_enabled(a, "alpha", -1, &g3), 0);
        ck_assert_uint_lt(g1, g2);
        ck_assert_uint_lt(g2, g3);
        ck_assert_int_eq(cluster_ctl_set_enabled(a, "alpha", 2, NULL), -EINVAL);

        /* the hint arrives on the other connection without a query of its own */
        for (int i = 0; i < 200 && n < 3; i++) {
                unsigned k = 0;
                ck_assert_int_eq(cluster_ctl_drain_notifies(b, &k), 0);
                n += k;
                if (n < 3)
                        usleep(10000);
        }
        ck_assert_uint_eq(n, 3);

        /* the truth: everything after a generation, the latest value per job */
        ck_assert_int_eq(cluster_ctl_read_control(b, 0, collect, seen, &top), 0);
        ck_assert_uint_eq(top, g3);
        char want[256];
        snprintf(want, sizeof want, "beta=1@%" PRIu64 ";alpha=-1@%" PRIu64 ";", g2, g3);
        ck_assert_str_eq(seen, want);
        seen[0] = 0;
        ck_assert_int_eq(cluster_ctl_read_control(b, g3, collect, seen, &top), 0);
        ck_assert_str_eq(seen, "");
        ck_assert_uint_eq(top, g3);
        PQfinish(a);
        PQfinish(b);
}
END_TEST

/* A writer holding the generation row: a second writer waits for it, so the generation it
 * gets commits after the first (nobody reading "> G" can skip a row committed later). */
START_TEST(test_generations_commit_in_order) {
        PGconn *a = conn(), *b = conn();
        uint64_t g;
        char seen[256] = "";

        psql(a, "BEGIN");
        psql(a, "UPDATE cluster_generation SET generation = generation + 1");
        /* b's change cannot take a generation while a holds the row: it would block; take the
         * lock with NOWAIT to show that it is held */
        PGresult *r = PQexec(b, "SELECT generation FROM cluster_generation FOR UPDATE NOWAIT");
        ck_assert_int_eq(PQresultStatus(r), PGRES_FATAL_ERROR);
        PQclear(r);
        psql(a, "ROLLBACK");
        ck_assert_int_eq(cluster_ctl_set_enabled(b, "gamma", 1, &g), 0);
        ck_assert_int_eq(cluster_ctl_read_control(a, g - 1, collect, seen, NULL), 0);
        ck_assert_str_eq(seen, "gamma=1@1;");
        PQfinish(a);
        PQfinish(b);
}
END_TEST

START_TEST(test_run_request_taken_once) {
        PGconn *a = conn(), *b = conn();
        const char *mine[] = { "alpha", "beta" }, *other[] = { "zeta" };
        int64_t id, tid;
        char *job = NULL, *node = NULL;
        usec_t at;

        ck_assert_int_eq(cluster_ctl_request_run(a, "beta", 1234, "node-a", &id), 0);
        ck_assert_int_eq(cluster_ctl_request_get(a, id, &node, NULL), 0);
        ck_assert_ptr_null(node);
        /* a node without the job never takes it */
        ck_assert_int_eq(cluster_ctl_take_request(b, other, 1, "node-b", &tid, &job, &at), 0);
        ck_assert_int_eq(cluster_ctl_take_request(b, mine, 2, "node-b", &tid, &job, &at), 1);
        ck_assert_int_eq(tid, id);
        ck_assert_str_eq(job, "beta");
        ck_assert_uint_eq(at, 1234);
        free(job);
        job = NULL;
        ck_assert_int_eq(cluster_ctl_take_request(a, mine, 2, "node-a", &tid, &job, &at), 0);
        ck_assert_ptr_null(job);
        ck_assert_int_eq(cluster_ctl_request_done(b, id, 77), 0);
        int64_t run_id = 0;
        ck_assert_int_eq(cluster_ctl_request_get(a, id, &node, &run_id), 1);
        ck_assert_str_eq(node, "node-b");
        ck_assert_int_eq(run_id, 77);
        free(node);
        ck_assert_int_eq(cluster_ctl_request_get(a, id + 100, NULL, NULL), -ENOENT);
        PQfinish(a);
        PQfinish(b);
}
END_TEST

/* N processes, each with its connection, race for each of the requests: every request is
 * taken exactly once. */
START_TEST(test_run_requests_racing) {
        enum { PROCS = 6, REQUESTS = 60 };
        PGconn *a = conn();
        const char *mine[] = { "alpha" };
        for (int i = 0; i < REQUESTS; i++)
                ck_assert_int_eq(cluster_ctl_request_run(a, "alpha", (usec_t) i, "asker", NULL), 0);
        pid_t pids[PROCS];
        for (int p = 0; p < PROCS; p++) {
                pids[p] = fork();
                ck_assert_int_ge(pids[p], 0);
                if (pids[p] == 0) {
                        PGconn *c = PQconnectdb(conninfo);
                        char node[16];
                        int64_t id;
                        char *job;
                        usec_t at;
                        int q;
                        snprintf(node, sizeof node, "n%d", p);
                        while ((q = cluster_ctl_take_request(c, mine, 1, node, &id, &job, &at)) == 1) {
                                (void) cluster_ctl_request_done(c, id, id + 1000);
                                free(job);
                        }
                        PQfinish(c);
                        _exit(q == 0 ? 0 : 1);
                }
        }
        for (int p = 0; p < PROCS; p++) {
                int st;
                ck_assert_int_eq(waitpid(pids[p], &st, 0), pids[p]);
                ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        }
        PGresult *r = PQexec(a, "SELECT count(*), count(DISTINCT id), count(taken_by), count(DISTINCT taken_by) "
                                "FROM cluster_run_requests WHERE run_id = id + 1000");
        ck_assert_str_eq(PQgetvalue(r, 0, 0), "60");
        ck_assert_str_eq(PQgetvalue(r, 0, 2), "60");
        PQclear(r);
        PQfinish(a);
}
END_TEST

START_TEST(test_singleton_slot) {
        PGconn *a = conn(), *b = conn();
        char *node = NULL;
        usec_t sched = 0;
        int64_t run = -1;

        ck_assert_int_eq(cluster_ctl_singleton_acquire(a, "solo", "node-a", 100, 0, NULL, NULL, NULL), 1);
        /* pending (not bound to a run yet): held */
        ck_assert_int_eq(cluster_ctl_singleton_acquire(b, "solo", "node-b", 100, 0, &node, &sched, &run), 0);
        ck_assert_str_eq(node, "node-a");
        ck_assert_uint_eq(sched, 100);
        ck_assert_int_eq(run, 0);
        free(node);
        /* bound to a run whose row is not committed yet: held */
        ck_assert_int_eq(cluster_ctl_singleton_bind(a, "solo", "node-a", 5), 0);
        ck_assert_int_eq(cluster_ctl_singleton_acquire(b, "solo", "node-b", 100, 0, NULL, NULL, &run), 0);
        ck_assert_int_eq(run, 5);
        psql(a, "INSERT INTO runs (id, job, status) VALUES (5, 'solo', 'running')");
        ck_assert_int_eq(cluster_ctl_singleton_bind(a, "solo", "node-a", 5), 0);
        ck_assert_int_eq(cluster_ctl_singleton_bind(b, "solo", "node-b", 5), -ESTALE);
        ck_assert_int_eq(cluster_ctl_singleton_acquire(b, "solo", "node-b", 200, 0, NULL, NULL, &run), 0);
        ck_assert_int_eq(run, 5);
        /* its run ended without a release (the node died, a survivor marked it interrupted) */
        psql(a, "UPDATE runs SET status = 'interrupted' WHERE id = 5");
        ck_assert_int_eq(cluster_ctl_singleton_acquire(b, "solo", "node-b", 200, 0, NULL, NULL, NULL), 1);
        ck_assert_int_eq(cluster_ctl_singleton_acquire(a, "solo", "node-a", 200, 0, &node, NULL, NULL), 0);
        ck_assert_str_eq(node, "node-b");
        free(node);
        /* a release by a node that does not hold it changes nothing */
        ck_assert_int_eq(cluster_ctl_singleton_release(a, "solo", "node-a"), 0);
        ck_assert_int_eq(cluster_ctl_singleton_acquire(a, "solo", "node-a", 300, 0, NULL, NULL, NULL), 0);
        ck_assert_int_eq(cluster_ctl_singleton_release(b, "solo", "node-b"), 0);
        ck_assert_int_eq(cluster_ctl_singleton_acquire(a, "solo", "node-a", 300, 0, NULL, NULL, NULL), 1);
        /* taken and never bound for longer than the pending limit: free again */
        psql(a, "UPDATE cluster_singleton SET taken_at = now() - interval '1 hour'");
        ck_assert_int_eq(cluster_ctl_singleton_acquire(b, "solo", "node-b", 400, 0, NULL, NULL, NULL), 1);
        ck_assert_int_eq(cluster_ctl_singleton_release(b, "solo", "node-b"), 0);
        /* taken for a claimed fire: bound at once, so held while its run is, pending limit or not */
        psql(a, "INSERT INTO runs (id, job, status) VALUES (6, 'solo', 'running')");
        ck_assert_int_eq(cluster_ctl_singleton_acquire(a, "solo", "node-a", 500, 6, NULL, NULL, NULL), 1);
        psql(a, "UPDATE cluster_singleton SET taken_at = now() - interval '1 hour'");
        ck_assert_int_eq(cluster_ctl_singleton_acquire(b, "solo", "node-b", 600, 7, &node, &sched, &run), 0);
        ck_assert_str_eq(node, "node-a");
        ck_assert_uint_eq(sched, 500);
        ck_assert_int_eq(run, 6);
        free(node);
        psql(a, "UPDATE runs SET status = 'succeeded' WHERE id = 6");
        ck_assert_int_eq(cluster_ctl_singleton_acquire(b, "solo", "node-b", 600, 7, NULL, NULL, &run), 1);
        ck_assert_int_eq(cluster_ctl_singleton_acquire(a, "solo", "node-a", 700, 8, NULL, NULL, &run), 0);
        ck_assert_int_eq(run, 7);
        PQfinish(a);
        PQfinish(b);
}
END_TEST

/* N processes race for one stale slot, many times: exactly one wins each round. */
START_TEST(test_singleton_racing) {
        enum { PROCS = 6, ROUNDS = 40 };
        PGconn *a = conn();
        psql(a, "INSERT INTO runs (id, job, status) VALUES (1, 'solo', 'succeeded')");
        psql(a, "CREATE TABLE wins (round int, node text)");
        pid_t pids[PROCS];
        for (int p = 0; p < PROCS; p++) {
                pids[p] = fork();
                ck_assert_int_ge(pids[p], 0);
                if (pids[p] == 0) {
                        PGconn *c = PQconnectdb(conninfo);
                        char node[16];
                        snprintf(node, sizeof node, "n%d", p);
                        /* one attempt per round, as soon as the round's stale slot is seen */
                        for (int tried = -1; tried < ROUNDS - 1;) {
                                PGresult *r = PQexec(c, "SELECT scheduled_usec FROM cluster_singleton");
                                int v = PQntuples(r) == 1 ? atoi(PQgetvalue(r, 0, 0)) : -1;
                                PQclear(r);
                                if (v >= 1000 && v - 1000 > tried)
                                        tried = v - 1000; /* won by another before this one looked */
                                if (v < 0 || v >= 1000 || v <= tried) {
                                        usleep(2000);
                                        continue;
                                }
                                tried = v;
                                int q = cluster_ctl_singleton_acquire(c, "solo", node, (usec_t) v + 1000, 0, NULL, NULL, NULL);
                                if (q < 0)
                                        _exit(2);
                                if (q == 1) {
                                        char sql[128];
                                        snprintf(sql, sizeof sql, "INSERT INTO wins VALUES (%d, '%s')", v, node);
                                        PQclear(PQexec(c, sql));
                                }
                        }
                        PQfinish(c);
                        _exit(0);
                }
        }
        for (int round = 0; round < ROUNDS; round++) {
                char sql[256];
                snprintf(sql, sizeof sql, "INSERT INTO cluster_singleton (job, node, scheduled_usec, run_id) "
                                          "VALUES ('solo', 'x', %d, 1) ON CONFLICT (job) DO UPDATE SET "
                                          "node = 'x', scheduled_usec = %d, run_id = 1",
                         round, round);
                psql(a, sql);
                /* every process tried this round once its slot moved on; wait for them */
                for (int tries = 0;; tries++) {
                        PGresult *r = PQexec(a, "SELECT count(*) FROM wins");
                        int wins = atoi(PQgetvalue(r, 0, 0));
                        PQclear(r);
                        if (wins > round)
                                break;
                        ck_assert_int_lt(tries, 5000);
                        usleep(2000);
                }
                usleep(20000); /* the losers' attempts of this round */
        }
        for (int p = 0; p < PROCS; p++) {
                int st;
                ck_assert_int_eq(waitpid(pids[p], &st, 0), pids[p]);
                ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        }
        PGresult *r = PQexec(a, "SELECT count(*), count(DISTINCT round) FROM wins");
        /* each stale slot the main process put was won exactly once (a slow process may record
         * the round it last read, not the one whose slot it won: the rounds are not compared) */
        ck_assert_int_eq(atoi(PQgetvalue(r, 0, 0)), ROUNDS);
        PQclear(r);
        PQfinish(a);
}
END_TEST

START_TEST(test_catch_up_compare_and_set) {
        PGconn *a = conn(), *b = conn();
        usec_t v;

        ck_assert_int_eq(cluster_ctl_catch_up_get(a, "late", &v), 0);
        ck_assert_uint_eq(v, USEC_INFINITY);
        /* both saw no mark and computed the same missed fire: one runs it */
        ck_assert_int_eq(cluster_ctl_catch_up_advance(a, "late", USEC_INFINITY, 100), 1);
        ck_assert_int_eq(cluster_ctl_catch_up_advance(b, "late", USEC_INFINITY, 100), 0);
        ck_assert_int_eq(cluster_ctl_catch_up_get(b, "late", &v), 0);
        ck_assert_uint_eq(v, 100);
        ck_assert_int_eq(cluster_ctl_catch_up_advance(b, "late", 100, 200), 1);
        ck_assert_int_eq(cluster_ctl_catch_up_advance(a, "late", 100, 200), 0);
        ck_assert_int_eq(cluster_ctl_catch_up_advance(a, "late", 100, 300), 0);
        ck_assert_int_eq(cluster_ctl_catch_up_get(a, "late", &v), 0);
        ck_assert_uint_eq(v, 200);
        PQfinish(a);
        PQfinish(b);
}
END_TEST

START_TEST(test_connection_lost) {
        PGconn *a = conn();
        PGresult *r = PQexec(a, "SELECT pg_terminate_backend(pg_backend_pid())");
        PQclear(r);
        ck_assert_int_eq(cluster_ctl_set_enabled(a, "alpha", 1, NULL), -ECONNRESET);
        PQfinish(a);
}
END_TEST

int main(void) {
        char cmd[1024];
        int failed;

        snprintf(cmd, sizeof cmd, "%s available", script());
        if (sh(cmd, NULL, 0) != 0) {
                fprintf(stderr, "SKIP: PostgreSQL is not installed (contrib/dev.sh deps)\n");
                return 77;
        }
        snprintf(pg_dir, sizeof pg_dir, "%s/test-cluster-control-pg.XXXXXX", getenv("TMPDIR") ?: "/tmp");
        if (!mkdtemp(pg_dir))
                return 99;
        snprintf(cmd, sizeof cmd, "%s start %s", script(), pg_dir);
        if (sh(cmd, conninfo, sizeof conninfo) != 0 || !conninfo[0]) {
                fprintf(stderr, "cannot start a private PostgreSQL in %s\n", pg_dir);
                return 99;
        }

        Suite *s = suite_create("cluster-control-pg");
        TCase *tc = tcase_create("core");
        tcase_add_checked_fixture(tc, setup, NULL);
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_enable_generations_and_notify);
        tcase_add_test(tc, test_generations_commit_in_order);
        tcase_add_test(tc, test_run_request_taken_once);
        tcase_add_test(tc, test_run_requests_racing);
        tcase_add_test(tc, test_singleton_slot);
        tcase_add_test(tc, test_singleton_racing);
        tcase_add_test(tc, test_catch_up_compare_and_set);
        tcase_add_test(tc, test_connection_lost);
        suite_add_tcase(s, tc);
        SRunner *sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);

        snprintf(cmd, sizeof cmd, "%s stop %s >/dev/null; rm -rf %s", script(), pg_dir, pg_dir);
        (void) sh(cmd, NULL, 0);
        return failed == 0 ? 0 : 1;
}
