/* SPDX-License-Identifier: MIT */
/* Issue 18 items 2-4: jitter, environment files, the write check of plugins, overlap and the
 * registry keys user/group/default_user/environment/environment_file/credentials/overlap/
 * random_delay. */
#include <check.h>
#include <pwd.h>

#include "basic/jitter.h"
#include "core/job-credentials.h"
#include "core/job-env.h"
#include "core/job-user.h"
#include "core/registry.h"
#include "store/history.h"
#include <sqlite3.h>

START_TEST(test_jitter_pure_and_bounded) {
        usec_t max = 30 * USEC_PER_MINUTE;
        ck_assert_uint_eq(jitter_delay("backup", 1700000000ULL * USEC_PER_SEC, 0), 0);
        for (usec_t t = 0; t < 1000; t++) {
                usec_t i = (1700000000ULL + t * 60) * USEC_PER_SEC;
                usec_t d = jitter_delay("backup", i, max);
                ck_assert_uint_lt(d, max);
                /* the same (job, instant) always gets the same delay: what every node computes */
                ck_assert_uint_eq(d, jitter_delay("backup", i, max));
        }
        ck_assert_uint_eq(jitter_delay("x", 5, 1), 0);
}
END_TEST

START_TEST(test_jitter_spread) {
        /* 10,000 instants into 10 buckets of a 10s range: each near 1,000 */
        unsigned buckets[10] = {}, differ = 0;
        for (usec_t t = 0; t < 10000; t++) {
                usec_t i = (1700000000ULL + t) * USEC_PER_SEC;
                usec_t d = jitter_delay("report", i, 10 * USEC_PER_SEC);
                buckets[d / USEC_PER_SEC]++;
                differ += d != jitter_delay("report2", i, 10 * USEC_PER_SEC);
        }
        for (int b = 0; b < 10; b++)
                ck_assert_msg(buckets[b] > 850 && buckets[b] < 1150, "bucket %d has %u", b, buckets[b]);
        ck_assert_uint_gt(differ, 9900); /* another job: other delays */
}
END_TEST

static const struct {
        const char *line;
        int r;
        const char *assignment;
        unsigned column;
} env_lines[] = {
        { "", 0, NULL, 0 },
        { "   # comment", 0, NULL, 0 },
        { "A=1\n", 1, "A=1", 0 },
        { "export PGHOST = db.local  ", 1, "PGHOST=db.local", 0 },
        { "MSG=\"hello world\"", 1, "MSG=hello world", 0 },
        { "Q='a=b'", 1, "Q=a=b", 0 },
        { "EMPTY=", 1, "EMPTY=", 0 },
        { "  novalue", -EINVAL, NULL, 3 },
        { "1BAD=x", -EINVAL, NULL, 1 },
        { "OPEN=\"abc", -EINVAL, NULL, 6 },
};

START_TEST(test_env_file_lines) {
        char *a = NULL;
        unsigned col = 0;
        const char *why = NULL;
        int r = env_file_parse_line(env_lines[_i].line, &a, &col, &why);
        ck_assert_msg(r == env_lines[_i].r, "%s: %d", env_lines[_i].line, r);
        if (r > 0)
                ck_assert_str_eq(a, env_lines[_i].assignment);
        if (r < 0) {
                ck_assert_uint_eq(col, env_lines[_i].column);
                ck_assert_ptr_nonnull(why);
        }
        free(a);
}
END_TEST

START_TEST(test_env_list_last_wins) {
        char **v = NULL;
        size_t n = 0;
        ck_assert_int_eq(env_list_put(&v, &n, strdup("A=1")), 0);
        ck_assert_int_eq(env_list_put(&v, &n, strdup("AB=2")), 0);
        ck_assert_int_eq(env_list_put(&v, &n, strdup("A=3")), 0);
        ck_assert_uint_eq(n, 2);
        ck_assert_str_eq(v[0], "A=3");
        ck_assert_str_eq(v[1], "AB=2");
        ck_assert_ptr_null(v[2]);
        for (size_t i = 0; i < n; i++)
                free(v[i]);
        free(v);
        ck_assert(env_name_is_valid("_X1"));
        ck_assert(!env_name_is_valid("X-1"));
        ck_assert(!env_name_is_valid(""));
}
END_TEST

START_TEST(test_may_write) {
        gid_t groups[] = { 100, 200 };
        struct stat st = { .st_uid = 0, .st_gid = 0, .st_mode = S_IFREG | 0755 };
        ck_assert(!job_identity_may_write(&st, 1000, 1000, groups, 2));
        ck_assert(job_identity_may_write(&st, 0, 0, NULL, 0));
        st.st_mode = S_IFREG | 0757;
        ck_assert(job_identity_may_write(&st, 1000, 1000, groups, 2)); /* world-writable */
        st.st_mode = S_IFREG | 0775;
        ck_assert(!job_identity_may_write(&st, 1000, 1000, groups, 2));
        st.st_gid = 200; /* a supplementary group of the user */
        ck_assert(job_identity_may_write(&st, 1000, 1000, groups, 2));
        st.st_gid = 1000; /* the primary group */
        ck_assert(job_identity_may_write(&st, 1000, 1000, groups, 2));
        st = (struct stat) { .st_uid = 1000, .st_gid = 0, .st_mode = S_IFREG | 0555 };
        ck_assert(!job_identity_may_write(&st, 1000, 1000, groups, 2)); /* owner without w */
        st.st_mode = S_IFREG | 0755;
        ck_assert(job_identity_may_write(&st, 1000, 1000, groups, 2)); /* owner: may chmod anyway */
}
END_TEST

START_TEST(test_overlap_names) {
        ck_assert_int_eq(job_overlap_from_string("queue"), JOB_OVERLAP_QUEUE);
        ck_assert_int_eq(job_overlap_from_string("Queue"), _JOB_OVERLAP_INVALID);
        ck_assert_str_eq(job_overlap_to_string(JOB_OVERLAP_REPLACE), "replace");
        ck_assert(job_credential_name_is_valid("db-password"));
        ck_assert(!job_credential_name_is_valid("../etc/shadow"));
        ck_assert(!job_credential_name_is_valid(".."));
}
END_TEST

static char dir[] = "/tmp/test-features-b-XXXXXX";

static char *write_in(const char *name, const char *text) {
        char *p;
        ck_assert_int_ge(asprintf(&p, "%s/%s", dir, name), 0);
        FILE *f = fopen(p, "we");
        ck_assert_ptr_nonnull(f);
        fputs(text, f);
        fclose(f);
        return p;
}

static char *diags(const diag_list *d) {
        char *all = strdup("");
        for (size_t i = 0; i < d->n; i++) {
                char *s = diag_format(&d->items[i]), *n;
                ck_assert_int_ge(asprintf(&n, "%s%s\n", all, s), 0);
                free(s);
                free(all);
                all = n;
        }
        return all;
}

START_TEST(test_registry_keys) {
        ck_assert_ptr_nonnull(getpwnam("nobody"));
        char *env = write_in("job.env", "# database\nPGHOST=db.local\nexport MODE=\"a b\"\n");
        char *path = write_in("r.yaml",
                              "scheduler:\n"
                              "  default_user: nobody\n"
                              "jobs:\n"
                              "  - name: a\n"
                              "    plugin: x.so\n"
                              "    schedule: \"@hourly\"\n"
                              "    overlap: queue\n"
                              "    random_delay: 90s\n"
                              "    environment_file: job.env\n"
                              "    environment: {MODE: override, EXTRA: \"1\"}\n"
                              "    credentials: [db-password]\n"
                              "  - name: b\n"
                              "    plugin: x.so\n"
                              "    schedule: \"@hourly\"\n"
                              "    singleton: false\n"
                              "    user: root\n"
                              "    group: daemon\n");
        registry *r = NULL;
        diag_list d = {};
        int k = registry_load(path, REGISTRY_IGNORE_PLUGINS, &r, &d);
        char *all = diags(&d);
        ck_assert_msg(k == 0, "%s", all);
        job_def *a = r->jobs[0], *b = r->jobs[1];
        ck_assert_int_eq(a->overlap, JOB_OVERLAP_QUEUE);
        ck_assert(a->singleton);
        ck_assert_uint_eq(a->random_delay, 90 * USEC_PER_SEC);
        ck_assert_str_eq(a->identity.user, "nobody"); /* scheduler.default_user */
        ck_assert_uint_eq(a->identity.uid, getpwnam("nobody")->pw_uid);
        ck_assert_uint_eq(a->n_environment, 3);
        ck_assert_str_eq(a->environment[0], "PGHOST=db.local");
        ck_assert_str_eq(a->environment[1], "MODE=override"); /* environment: wins over the file */
        ck_assert_str_eq(a->environment[2], "EXTRA=1");
        ck_assert_uint_eq(a->n_credentials, 1);
        ck_assert_str_eq(a->credentials[0], "db-password");
        ck_assert_int_eq(b->overlap, JOB_OVERLAP_ALLOW);
        ck_assert(!b->singleton);
        ck_assert_uint_eq(b->identity.uid, 0);
        ck_assert_str_eq(b->identity.group, "daemon");
        registry_free(r);
        diag_list_clear(&d);
        free(all);
        unlink(env);
        unlink(path);
        free(env);
        free(path);
}
END_TEST

START_TEST(test_registry_errors) {
        char *env = write_in("bad.env", "GOOD=1\nthis is not an assignment\n");
        char *path = write_in("bad.yaml",
                              "jobs:\n"
                              "  - name: a\n"
                              "    plugin: x.so\n"
                              "    schedule: \"@hourly\"\n"
                              "    user: no-such-user-here\n"
                              "  - name: b\n"
                              "    plugin: x.so\n"
                              "    schedule: \"@hourly\"\n"
                              "    overlap: sometimes\n"
                              "    environment_file: bad.env\n"
                              "  - name: c\n"
                              "    plugin: x.so\n"
                              "    schedule: \"@hourly\"\n"
                              "    singleton: true\n"
                              "    overlap: allow\n"
                              "    group: daemon\n"
                              "    credentials: [../x]\n"
                              "  - name: d\n"
                              "    plugin: x.so\n"
                              "    schedule: \"@hourly\"\n"
                              "    user: nobody\n"
                              "    group: no-such-group-here\n");
        registry *r = NULL;
        diag_list d = {};
        ck_assert_int_eq(registry_load(path, REGISTRY_IGNORE_PLUGINS, &r, &d), -EINVAL);
        char *all = diags(&d);
        _cleanup_free_ char *want_user = NULL, *want_env = NULL;
        ck_assert_int_ge(asprintf(&want_user, "%s:5:11: job a: user: no user \"no-such-user-here\"", path), 0);
        ck_assert_int_ge(asprintf(&want_env, "%s/bad.env:2:1: job b: found no '='", dir), 0);
        ck_assert_msg(strstr(all, want_user), "%s", all);
        ck_assert_msg(strstr(all, want_env), "%s", all);
        ck_assert_msg(strstr(all, ":9:14: job b: overlap: found \"sometimes\", expected skip, allow, queue or replace"),
                      "%s", all);
        ck_assert_msg(strstr(all, ":15:14: job c: overlap: allow contradicts singleton: true"), "%s", all);
        ck_assert_msg(strstr(all, ":16:12: job c: group \"daemon\" without a user"), "%s", all);
        ck_assert_msg(strstr(all, ":17:19: job c: credentials: \"../x\" is not a credential name"), "%s", all);
        ck_assert_msg(strstr(all, ":22:12: job d: group: no group \"no-such-group-here\""), "%s", all);
        diag_list_clear(&d);
        free(all);
        unlink(env);
        unlink(path);
        free(env);
        free(path);
}
END_TEST

static int count_pause(const char *job, usec_t until, void *userdata) {
        usec_t *u = userdata;
        ck_assert_str_eq(job, "p");
        *u = until;
        return 0;
}

static int count_backfill(const char *job, const history_backfill *b, void *userdata) {
        history_backfill *o = userdata;
        ck_assert_str_eq(job, "bf");
        *o = *b;
        return 0;
}

/* A database of schema 2 (before pauses and backfills) is migrated forward on open. */
START_TEST(test_history_pause_backfill_and_migration) {
        _cleanup_free_ char *path = NULL;
        history *h = NULL;
        sqlite3 *db;
        usec_t until = 0;
        history_backfill b = {};

        ck_assert_int_ge(asprintf(&path, "%s/history.db", dir), 0);
        ck_assert_int_eq(history_open(path, NULL, 0, &h), 0);
        history_close(h);
        ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
        /* what schemas 3 and 4 added to a schema 2 file (4's runs columns are copied over as they are) */
        ck_assert_int_eq(sqlite3_exec(db, "DROP TABLE pauses; DROP TABLE backfills; "
                                      "ALTER TABLE jobs DROP COLUMN missed_total; PRAGMA user_version = 2", NULL, NULL,
                                      NULL), SQLITE_OK);
        sqlite3_close(db);

        ck_assert_int_eq(history_open(path, NULL, 0, &h), 0);
        ck_assert_int_eq(history_set_pause(h, "p", true, USEC_INFINITY), 0);
        ck_assert_int_eq(history_foreach_pause(h, count_pause, &until), 0);
        ck_assert_uint_eq(until, USEC_INFINITY);
        ck_assert_int_eq(history_set_pause(h, "p", true, 42), 0);
        ck_assert_int_eq(history_foreach_pause(h, count_pause, &until), 0);
        ck_assert_uint_eq(until, 42);
        ck_assert_int_eq(history_set_pause(h, "p", false, 0), 0);
        until = 7;
        ck_assert_int_eq(history_foreach_pause(h, count_pause, &until), 0);
        ck_assert_uint_eq(until, 7); /* resumed: no row */

        history_backfill in = { .from_usec = 10, .to_usec = 30, .next_usec = 20 };
        ck_assert_int_eq(history_set_backfill(h, "bf", &in), 0);
        ck_assert_int_eq(history_foreach_backfill(h, count_backfill, &b), 0);
        ck_assert_uint_eq(b.next_usec, 20);
        ck_assert_int_eq(history_set_backfill(h, "bf", NULL), 0);

        ck_assert_int_eq(history_fire_claimed(h, "bf", 20 * USEC_PER_SEC), 0);
        ck_assert_int_eq(history_claim_fire(h, "bf", RUN_TRIGGER_CATCH_UP, 20 * USEC_PER_SEC, 30 * USEC_PER_SEC, 0, NULL),
                         0);
        ck_assert_int_eq(history_fire_claimed(h, "bf", 20 * USEC_PER_SEC), 1);
        /* a manual run at the same instant is not a claim of the fire */
        ck_assert_int_eq(history_claim_fire(h, "bf", RUN_TRIGGER_MANUAL, 21 * USEC_PER_SEC, 30 * USEC_PER_SEC, 0, NULL),
                         0);
        ck_assert_int_eq(history_fire_claimed(h, "bf", 21 * USEC_PER_SEC), 0);
        history_close(h);
        unlink(path);
        char *wal, *shm;
        ck_assert_int_ge(asprintf(&wal, "%s-wal", path), 0);
        ck_assert_int_ge(asprintf(&shm, "%s-shm", path), 0);
        unlink(wal);
        unlink(shm);
        free(wal);
        free(shm);
}
END_TEST

int main(void) {
        if (!mkdtemp(dir))
                return EXIT_FAILURE;
        Suite *s = suite_create("features_b");
        TCase *tc = tcase_create("core");
        tcase_add_test(tc, test_jitter_pure_and_bounded);
        tcase_add_test(tc, test_jitter_spread);
        tcase_add_loop_test(tc, test_env_file_lines, 0, ELEMENTSOF(env_lines));
        tcase_add_test(tc, test_env_list_last_wins);
        tcase_add_test(tc, test_may_write);
        tcase_add_test(tc, test_overlap_names);
        tcase_add_test(tc, test_registry_keys);
        tcase_add_test(tc, test_registry_errors);
        tcase_add_test(tc, test_history_pause_backfill_and_migration);
        suite_add_tcase(s, tc);
        SRunner *sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        rmdir(dir);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
