/* SPDX-License-Identifier: MIT */
/* The metrics file of a job (core/job-metrics.h): the daemon reads bytes a plugin wrote, so
 * the parser must accept exactly what the writer produces and reject everything else within
 * its bounds. The writer side (sched_job_metric_set in jobctx.c) is tested through a real
 * context at the end. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/job-metrics.h"
#include "core/jobctx.h"

static int parse(const char *text, job_metric **v, size_t *n, char *err) {
        return job_metrics_parse(text, strlen(text), v, n, err, 256);
}

START_TEST(test_names_and_labels) {
        ck_assert(job_metric_name_valid("azi3_sessions_open"));
        ck_assert(job_metric_name_valid(":a:b_1"));
        ck_assert(!job_metric_name_valid("1abc"));
        ck_assert(!job_metric_name_valid("a-b"));
        ck_assert(!job_metric_name_valid(""));
        ck_assert(!job_metric_name_valid(NULL));
        ck_assert(job_metric_labels_valid("", 0));
        ck_assert(job_metric_labels_valid("a=\"b\"", 5));
        ck_assert(job_metric_labels_valid("a=\"b\\\"c\\n\\\\\",x_1=\"\"", strlen("a=\"b\\\"c\\n\\\\\",x_1=\"\"")));
        ck_assert(!job_metric_labels_valid("a=b", 3));
        ck_assert(!job_metric_labels_valid("a=\"b\",", 6));
        ck_assert(!job_metric_labels_valid("a=\"b", 4));
        ck_assert(!job_metric_labels_valid("a=\"\\x\"", 6));
        ck_assert(!job_metric_labels_valid("1a=\"b\"", 6));
        ck_assert(!job_metric_labels_valid("a=\"b\nc\"", 7));
        /* UTF-8 text, no control characters: what would drive a terminal or break a scrape */
#define LV(lit) job_metric_labels_valid(lit, sizeof(lit) - 1)
        ck_assert(LV("city=\"K\xc3\xb6ln\",sym=\"\xe2\x82\xac\",emoji=\"\xf0\x9f\x98\x80\""));
        ck_assert(!LV("a=\"\x1b]0;x\x07\x1b[2J\""));   /* ESC, BEL */
        ck_assert(!LV("a=\"b\tc\""));                  /* tab */
        ck_assert(!LV("a=\"b\x7f\""));                  /* DEL */
        ck_assert(!LV("a=\"\xc2\x9b" "2J\""));            /* C1 CSI, as UTF-8 */
        ck_assert(!LV("a=\"\xff\""));                   /* not UTF-8 */
        ck_assert(!LV("a=\"\xc3\""));                   /* cut short */
        ck_assert(!LV("a=\"\xc0\xaf\""));               /* overlong */
        ck_assert(!LV("a=\"\xed\xa0\x80\""));           /* surrogate */
        ck_assert(!LV("a=\"\xf4\x90\x80\x80\""));       /* past U+10FFFF */
#undef LV
}
END_TEST

START_TEST(test_parse_good) {
        job_metric *v = NULL;
        size_t n = 0;
        char err[256] = "";

        ck_assert_int_eq(parse("azi3_alarms{state=\"owed\"} 2\nazi3_sessions_open 5\nx{a=\"1\",b=\"2\"} -1.5e3\n"
                               "y NaN\nz +Inf\n", &v, &n, err), 0);
        ck_assert_uint_eq(n, 5);
        ck_assert_str_eq(v[0].name, "azi3_alarms");
        ck_assert_str_eq(v[0].labels, "state=\"owed\"");
        ck_assert(v[0].value == 2);
        ck_assert_str_eq(v[1].labels, "");
        ck_assert(v[1].value == 5);
        ck_assert(v[2].value == -1500);
        ck_assert(isnan(v[3].value));
        ck_assert(isinf(v[4].value));
        free(v);
        ck_assert_int_eq(parse("", &v, &n, err), 0);
        ck_assert_uint_eq(n, 0);
        ck_assert_ptr_null(v);
}
END_TEST

START_TEST(test_parse_bad) {
        static const char *const bad[] = {
                "a 1",                  /* no newline */
                "a\n",                  /* no value */
                "a  1\n",               /* two spaces */
                "a 1 2\n",              /* a timestamp: not produced by the writer */
                "a{b=\"c\" 1\n",        /* unclosed */
                "a{b=c} 1\n",           /* unquoted */
                "a{} 1\n",              /* empty braces: the writer omits them */
                "# TYPE a gauge\n",     /* comments are not produced */
                "1a 1\n",
                "a inf\n",
                "a 0x10\n",
                "a 1\na 2\n",           /* the same series twice */
                "a{b=\"1\"} 1\na{b=\"1\"} 2\n",
                "\n",
        };
        job_metric *v = NULL;
        size_t n = 0;
        char err[256];

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                err[0] = '\0';
                ck_assert_msg(parse(bad[i], &v, &n, err) == -EBADMSG, "accepted: %s", bad[i]);
                ck_assert_msg(strstr(err, "line ") != NULL, "%s: %s", bad[i], err);
        }
        /* a NUL byte inside a line */
        ck_assert_int_eq(job_metrics_parse("a 1\0\n", 5, &v, &n, err, sizeof(err)), -EBADMSG);
}
END_TEST

START_TEST(test_parse_bounds) {
        size_t size = JOB_METRICS_FILE_MAX + 1, n = 0, used = 0;
        char *big = malloc(size + 1), err[256];
        job_metric *v = NULL;

        ck_assert_ptr_nonnull(big);
        memset(big, 'a', size);
        big[size] = '\0';
        ck_assert_int_eq(job_metrics_parse(big, size, &v, &n, err, sizeof(err)), -EFBIG);
        for (unsigned i = 0; i <= JOB_METRICS_SERIES_MAX; i++)
                used += (size_t) sprintf(big + used, "m%u 1\n", i);
        ck_assert_int_eq(job_metrics_parse(big, used, &v, &n, err, sizeof(err)), -E2BIG);
        free(big);
}
END_TEST

/* The writer through a real context: what sched_job_metric_set writes, the reader takes back. */
START_TEST(test_writer_roundtrip) {
        char dir[] = "/tmp/test-job-metrics-XXXXXX", path[128], err[256] = "";
        job_def def = { .name = (char *) "azi3" };
        job_metric *v = NULL;
        size_t n = 0;
        jobctx c;

        ck_assert_ptr_nonnull(mkdtemp(dir));
        jobctx_setup_run(&c, &def, 1, 0, 0, 0, dir, -1);
        ck_assert_int_eq(sched_job_metric_set(&c.base, "azi3_alarms", "state=\"owed\"", 2), 0);
        ck_assert_int_eq(sched_job_metric_set(&c.base, "azi3_sessions_open", NULL, 3), 0);
        ck_assert_int_eq(sched_job_metric_set(&c.base, "azi3_alarms", "state=\"owed\"", 4), 0); /* replaces */
        ck_assert_int_eq(sched_job_metric_set(&c.base, "bad-name", NULL, 1), -EINVAL);
        ck_assert_int_eq(sched_job_metric_set(&c.base, "x", "a=b", 1), -EINVAL);
        snprintf(path, sizeof(path), "%s/metrics.prom", dir);
        ck_assert_int_eq(job_metrics_read(path, &v, &n, err, sizeof(err)), 0);
        ck_assert_uint_eq(n, 2);
        ck_assert_str_eq(v[0].name, "azi3_alarms");
        ck_assert(v[0].value == 4);
        ck_assert_str_eq(v[1].name, "azi3_sessions_open");
        free(v);
        /* the bound on series */
        for (unsigned i = 2; i < JOB_METRICS_SERIES_MAX; i++) {
                char name[32];
                snprintf(name, sizeof(name), "m%u", i);
                ck_assert_int_eq(sched_job_metric_set(&c.base, name, NULL, i), 0);
        }
        ck_assert_int_eq(sched_job_metric_set(&c.base, "one_too_many", NULL, 1), -E2BIG);
        ck_assert_int_eq(job_metrics_read(path, &v, &n, err, sizeof(err)), 0);
        ck_assert_uint_eq(n, JOB_METRICS_SERIES_MAX);
        free(v);
        /* a symlink is refused */
        char link[160];
        snprintf(link, sizeof(link), "%s/link.prom", dir);
        ck_assert_int_eq(symlink(path, link), 0);
        ck_assert_int_eq(job_metrics_read(link, &v, &n, err, sizeof(err)), -ELOOP);
        unlink(link);
        unlink(path);
        rmdir(dir);
}
END_TEST

int main(void) {
        Suite *s = suite_create("job_metrics");
        TCase *tc = tcase_create("core");
        SRunner *sr;
        int failed;

        tcase_add_test(tc, test_names_and_labels);
        tcase_add_test(tc, test_parse_good);
        tcase_add_test(tc, test_parse_bad);
        tcase_add_test(tc, test_parse_bounds);
        tcase_add_test(tc, test_writer_roundtrip);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
