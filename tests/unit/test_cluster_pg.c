/* SPDX-License-Identifier: MIT */
/* store/cluster-pg.c against a real private PostgreSQL (tests/pg/pg-server.sh): incarnations and
 * their fencing tokens, leases judged by the database's clock, take-over declaring each node
 * once, and the fence refusing a lost node's late completion. Skipped (77) when PostgreSQL is
 * not installed. */
#include <check.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/cluster.h"

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
        return c;
}

static void sql(PGconn *c, const char *s) {
        PGresult *r = PQexec(c, s);
        ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK, "%s: %s", s,
                      PQerrorMessage(c));
        PQclear(r);
}

static long long scalar(PGconn *c, const char *s) {
        PGresult *r = PQexec(c, s);
        ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1, "%s: %s", s, PQerrorMessage(c));
        long long v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        PQclear(r);
        return v;
}

/* A fresh schema per test: the runs table as far as the fence reads it, and ours. */
static void setup(void) {
        PGconn *c = conn();
        sql(c, "DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public;");
        sql(c, "CREATE TABLE runs (id bigserial PRIMARY KEY, job text NOT NULL, attempt integer NOT NULL DEFAULT 0, "
               "retry_of bigint, scheduled_usec bigint, status text NOT NULL, message text, pid integer, "
               "started_usec bigint)");
        sql(c, cluster_pg_schema);
        sql(c, cluster_pg_schema); /* idempotent: N nodes may run it */
        PQfinish(c);
}

static void add_run(PGconn *c, const char *job, uint64_t fence) {
        char s[256];
        snprintf(s, sizeof s, "INSERT INTO runs (job, scheduled_usec, status, fence) VALUES ('%s', 1000, 'running', %" PRIu64 ")",
                 job, fence);
        sql(c, s);
}

START_TEST(test_incarnations_and_renew) {
        PGconn *c = conn();
        cluster_identity a1, a2, b1;
        usec_t t;

        ck_assert_int_eq(cluster_pg_register(c, "a", 10 * USEC_PER_SEC, "d1", &a1), 0);
        ck_assert_int_eq(cluster_pg_register(c, "b", 10 * USEC_PER_SEC, NULL, &b1), 0);
        ck_assert_int_eq(cluster_pg_register(c, "a", 10 * USEC_PER_SEC, "d1", &a2), 0);
        ck_assert_uint_eq(a1.incarnation, 1);
        ck_assert_uint_eq(a2.incarnation, 2);
        ck_assert_uint_eq(b1.incarnation, 1);
        ck_assert_uint_gt(a2.fence, b1.fence);
        ck_assert_uint_gt(b1.fence, a1.fence);
        ck_assert_int_eq(cluster_pg_renew(c, a2.fence, 10 * USEC_PER_SEC, -1500, "d2"), 0);
        /* a bound session's claims carry the node and its token */
        ck_assert_int_eq(cluster_pg_bind_session(c, "a#2", a2.fence), 0);
        sql(c, "INSERT INTO runs (job, status) VALUES ('bound', 'running')");
        ck_assert_int_eq(scalar(c, "SELECT fence FROM runs WHERE job = 'bound' AND node = 'a#2'"), (long long) a2.fence);
        ck_assert_int_eq(cluster_pg_now(c, &t), 0);
        ck_assert_uint_gt(t, 1700000000ULL * USEC_PER_SEC);

        cluster_node_row *rows = NULL;
        size_t n = 0;
        ck_assert_int_eq(cluster_pg_list_nodes(c, &rows, &n), 0);
        ck_assert_uint_eq(n, 3);
        ck_assert_str_eq(rows[1].name, "a");
        ck_assert_uint_eq(rows[1].incarnation, 2);
        ck_assert_int_eq(rows[1].clock_offset_usec, -1500);
        ck_assert_str_eq(rows[1].registry_digest, "d2");
        ck_assert(!rows[1].lease_expired);
        ck_assert_uint_gt(rows[1].lease_expires_usec, t);
        cluster_node_rows_free(rows, n);

        /* a clean leave: no longer renewable */
        ck_assert_int_eq(cluster_pg_leave(c, b1.fence), 0);
        ck_assert_int_eq(cluster_pg_renew(c, b1.fence, 10 * USEC_PER_SEC, 0, NULL), -ESTALE);
        PQfinish(c);
}
END_TEST

START_TEST(test_take_over_and_fence) {
        PGconn *a = conn(), *b = conn(), *c = conn();
        cluster_identity ia, ib, ic;
        cluster_lost_run *lost = NULL;
        size_t n = 99;

        /* a's lease is 1 us: over as soon as it is granted */
        ck_assert_int_eq(cluster_pg_register(a, "a", 1, NULL, &ia), 0);
        ck_assert_int_eq(cluster_pg_register(b, "b", 10 * USEC_PER_SEC, NULL, &ib), 0);
        ck_assert_int_eq(cluster_pg_register(c, "c", 10 * USEC_PER_SEC, NULL, &ic), 0);
        add_run(a, "one", ia.fence);
        add_run(a, "two", ia.fence);
        add_run(b, "three", ib.fence);
        sql(a, "UPDATE runs SET status = 'succeeded' WHERE job = 'two'"); /* finished while alive */
        usleep(2000);

        size_t n_nodes = 0;
        ck_assert_int_eq(cluster_pg_take_over(b, ib.fence, &lost, &n, &n_nodes), 0);
        ck_assert_uint_eq(n, 1);
        ck_assert_uint_eq(n_nodes, 1); /* a (its lease was 1 us) */
        ck_assert_str_eq(lost[0].job, "one");
        ck_assert_uint_eq(lost[0].attempt, 0);
        ck_assert_int_eq(lost[0].first_id, lost[0].id);
        ck_assert_str_eq(lost[0].node, "a#1");
        cluster_lost_runs_free(lost, n);

        /* the second survivor finds nothing left to take */
        lost = NULL;
        ck_assert_int_eq(cluster_pg_take_over(c, ic.fence, &lost, &n, &n_nodes), 0);
        ck_assert_uint_eq(n, 0);
        ck_assert_uint_eq(n_nodes, 0);
        ck_assert_ptr_null(lost);

        ck_assert_int_eq(scalar(c, "SELECT count(*) FROM runs WHERE status = 'interrupted' "
                                   "AND message = 'node lost: a#1' AND job = 'one'"), 1);
        /* a comes back: its lease is gone, its late completion matches nothing */
        ck_assert_int_eq(cluster_pg_renew(a, ia.fence, 10 * USEC_PER_SEC, 0, NULL), -ESTALE);
        PGresult *r = PQexec(a, "UPDATE runs SET status = 'succeeded' WHERE job = 'one' AND status = 'running'");
        ck_assert_int_eq(PQresultStatus(r), PGRES_COMMAND_OK);
        ck_assert_str_eq(PQcmdTuples(r), "0");
        PQclear(r);
        /* nor can it claim anything more */
        r = PQexec(a, "INSERT INTO runs (job, status, fence) SELECT 'four', 'running', fence FROM cluster_nodes WHERE name = 'a'");
        ck_assert_int_eq(PQresultStatus(r), PGRES_FATAL_ERROR);
        ck_assert_ptr_nonnull(strstr(PQerrorMessage(a), "claim refused"));
        PQclear(r);
        /* a live node's runs finish as usual */
        r = PQexec(b, "UPDATE runs SET status = 'succeeded' WHERE job = 'three'");
        ck_assert_str_eq(PQcmdTuples(r), "1");
        PQclear(r);
        PQfinish(a);
        PQfinish(b);
        PQfinish(c);
}
END_TEST

START_TEST(test_close_previous_incarnation) {
        PGconn *c = conn();
        cluster_identity i1, i2, other;
        cluster_lost_run *lost = NULL;
        size_t n = 0;

        ck_assert_int_eq(cluster_pg_register(c, "a", 10 * USEC_PER_SEC, NULL, &i1), 0);
        ck_assert_int_eq(cluster_pg_register(c, "b", 10 * USEC_PER_SEC, NULL, &other), 0);
        add_run(c, "one", i1.fence);
        add_run(c, "two", other.fence);
        sql(c, "INSERT INTO runs (job, status, retry_of, attempt, fence, pid, started_usec) "
               "VALUES ('one', 'running', 1, 1, 1, 4242, 7000000)");
        ck_assert_int_eq(cluster_pg_register(c, "a", 10 * USEC_PER_SEC, NULL, &i2), 0);
        ck_assert_int_eq(cluster_pg_close_previous(c, "a", i2.fence, &lost, &n), 0);
        ck_assert_uint_eq(n, 2);
        bool seen_pid = false;
        for (size_t i = 0; i < n; i++) {
                ck_assert_str_eq(lost[i].job, "one");
                ck_assert_str_eq(lost[i].node, "a#1");
                ck_assert_int_eq(lost[i].first_id, 1);
                /* the process to end if it outlived its daemon (cluster.c) */
                if (lost[i].attempt == 1) {
                        ck_assert_int_eq(lost[i].pid, 4242);
                        ck_assert_uint_eq(lost[i].started_usec, 7000000);
                        seen_pid = true;
                }
        }
        ck_assert(seen_pid);
        cluster_lost_runs_free(lost, n);
        /* a#1 replaced while still renewing: two daemons share the name */
        ck_assert_int_eq(cluster_pg_renew(c, i1.fence, 10 * USEC_PER_SEC, 0, NULL), -EADDRINUSE);
        ck_assert_int_eq(cluster_pg_renew(c, i2.fence, 10 * USEC_PER_SEC, 0, NULL), 0);
        ck_assert_int_eq(scalar(c, "SELECT count(*) FROM runs WHERE status = 'running'"), 1); /* b's */
        ck_assert_int_eq(scalar(c, "SELECT count(*) FROM runs WHERE message LIKE 'node restarted: a#1'"), 2);
        PQfinish(c);
}
END_TEST

/* The trigger itself: a node declared lost whose run is still 'running' (the take-over has not
 * reached it) cannot finish it; an interruption goes through. */
START_TEST(test_fence_refuses_lost_incarnation) {
        PGconn *c = conn();
        cluster_identity a;
        PGresult *r;

        ck_assert_int_eq(cluster_pg_register(c, "a", 10 * USEC_PER_SEC, NULL, &a), 0);
        add_run(c, "one", a.fence);
        add_run(c, "two", a.fence);
        sql(c, "UPDATE cluster_nodes SET state = 'lost'");
        r = PQexec(c, "UPDATE runs SET status = 'succeeded' WHERE job = 'one' AND status = 'running'");
        ck_assert_str_eq(PQcmdTuples(r), "0");
        PQclear(r);
        r = PQexec(c, "UPDATE runs SET status = 'interrupted' WHERE job = 'two' AND status = 'running'");
        ck_assert_str_eq(PQcmdTuples(r), "1");
        PQclear(r);
        PQfinish(c);
}
END_TEST

static Suite *suite(void) {
        Suite *s = suite_create("cluster_pg");
        TCase *tc = tcase_create("core");
        tcase_add_checked_fixture(tc, setup, NULL);
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_incarnations_and_renew);
        tcase_add_test(tc, test_take_over_and_fence);
        tcase_add_test(tc, test_close_previous_incarnation);
        tcase_add_test(tc, test_fence_refuses_lost_incarnation);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        char cmd[1024];
        snprintf(cmd, sizeof cmd, "'%s' available", script());
        if (sh(cmd, NULL, 0) != 0) {
                fprintf(stderr, "PostgreSQL is not installed: skipped\n");
                return 77;
        }
        snprintf(pg_dir, sizeof pg_dir, "/tmp/schedulerd-test-cluster-pg-XXXXXX");
        if (!mkdtemp(pg_dir))
                return 99;
        snprintf(cmd, sizeof cmd, "'%s' start '%s'", script(), pg_dir);
        if (sh(cmd, conninfo, sizeof conninfo) != 0 || !conninfo[0]) {
                fprintf(stderr, "cannot start PostgreSQL in %s\n", pg_dir);
                return 99;
        }
        SRunner *sr = srunner_create(suite());
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        snprintf(cmd, sizeof cmd, "'%s' stop '%s' >/dev/null 2>&1; rm -rf '%s'", script(), pg_dir, pg_dir);
        (void) sh(cmd, NULL, 0);
        return failed ? 1 : 0;
}
