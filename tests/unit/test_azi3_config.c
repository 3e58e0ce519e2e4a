/* SPDX-License-Identifier: MIT */
#include <check.h>
#include <stdlib.h>

#include "azi3/config.h"

typedef struct expect {
        unsigned line, column;
        const char *text; /* must occur in the message */
} expect;

static char *fixture(const char *name) {
        const char *top = getenv("top_srcdir");
        char *p = NULL;
        ck_assert_int_ge(asprintf(&p, "%s/%s", top ?: ".", name), 0);
        return p;
}

/* Loads fixture NAME, which must fail with exactly the N errors of E, in order. */
static void expect_errors(const char *name, const expect *e, size_t n) {
        _cleanup_free_ char *path = fixture(name);
        azi3_config_errors errs = {};
        azi3_config *c = NULL;

        ck_assert_int_eq(azi3_config_load(path, &c, &errs), -EINVAL);
        ck_assert_ptr_null(c);
        for (size_t i = 0; i < errs.n; i++) {
                _cleanup_free_ char *s = azi3_config_error_format(&errs, i);
                fprintf(stderr, "%s\n", s);
        }
        ck_assert_uint_eq(errs.n, n);
        for (size_t i = 0; i < n; i++) {
                ck_assert_uint_eq(errs.items[i].line, e[i].line);
                ck_assert_uint_eq(errs.items[i].column, e[i].column);
                ck_assert_msg(strstr(errs.items[i].message, e[i].text), "error %zu: \"%s\" lacks \"%s\"", i,
                              errs.items[i].message, e[i].text);
        }
        /* the formatted form leads with file:line:column */
        _cleanup_free_ char *first = azi3_config_error_format(&errs, 0);
        _cleanup_free_ char *prefix = NULL;
        ck_assert_int_ge(asprintf(&prefix, "%s:%u:%u: ", path, e[0].line, e[0].column), 0);
        ck_assert_msg(strncmp(first, prefix, strlen(prefix)) == 0, "%s", first);
        azi3_config_errors_clear(&errs);
}

START_TEST(test_valid_full) {
        _cleanup_free_ char *path = fixture("tests/fixtures/azi3/valid.yaml");
        _cleanup_(azi3_config_freep) azi3_config *c = NULL;
        azi3_config_errors errs = {};

        ck_assert_int_eq(azi3_config_load(path, &c, &errs), 0);
        ck_assert_uint_eq(errs.n, 0);
        azi3_config_errors_clear(&errs);

        /* relative store resolves against the file's directory */
        ck_assert_ptr_nonnull(strstr(c->store, "tests/fixtures/azi3/azi3.db"));
        ck_assert_str_eq(c->megazord_base_url, "https://megazord.internal:8443");
        ck_assert_uint_eq(c->megazord_timeout, 2500 * USEC_PER_MSEC);
        ck_assert_str_eq(c->sqs_endpoint, "http://127.0.0.1:9324");
        ck_assert_str_eq(c->sqs_region, "eu-west-1");
        ck_assert_str_eq(c->sqs_queue_url, "http://127.0.0.1:9324/000000000000/q");
        ck_assert_uint_eq(c->sqs_wait_time, 20 * USEC_PER_SEC);
        ck_assert_uint_eq(c->sqs_visibility_timeout, 60 * USEC_PER_SEC);
        ck_assert_uint_eq(c->retention, 36 * USEC_PER_HOUR);
        ck_assert_uint_eq(c->n_rules, 3);

        const azi3_rule *r = &c->rules[0];
        ck_assert_int_eq(r->robot_id, 42);
        ck_assert_str_eq(r->rule_id, "toilet-activity");
        ck_assert_str_eq(r->timezone, "Europe/Amsterdam");
        ck_assert_ptr_nonnull(r->zone);
        ck_assert_uint_eq(r->start_minute, 7 * 60);
        ck_assert_uint_eq(r->end_minute, 22 * 60);
        ck_assert_uint_eq(r->window, 90 * USEC_PER_MINUTE);
        ck_assert_str_eq(r->event, "TOILET_ACTIVITY");
        ck_assert_str_eq(r->alarm_event, "NO_TOILET_ACTIVITY_ALARM");
        ck_assert_int_eq(r->alarm_level, 7);
        ck_assert_uint_eq(r->line, 8);
        ck_assert_uint_eq(r->column, 5);

        /* defaults */
        r = azi3_config_find_rule(c, 42, "night");
        ck_assert_ptr_eq(r, &c->rules[1]);
        ck_assert_uint_eq(r->window, AZI3_DEFAULT_WINDOW);
        ck_assert_str_eq(r->event, AZI3_DEFAULT_EVENT);
        ck_assert_str_eq(r->alarm_event, AZI3_DEFAULT_ALARM_EVENT);
        ck_assert_int_eq(r->alarm_level, AZI3_DEFAULT_ALARM_LEVEL);
        ck_assert_uint_eq(r->end_minute, 6 * 60 + 30);

        /* an unquoted 08:15 is a time, not a sexagesimal number */
        r = azi3_config_find_rule(c, 7, "toilet-activity");
        ck_assert_ptr_nonnull(r);
        ck_assert_uint_eq(r->start_minute, 8 * 60 + 15);
        day_rule d = azi3_rule_day(r);
        ck_assert_ptr_eq(d.zone, r->zone);
        ck_assert_uint_eq(d.end_minute, 8 * 60 + 15);
        ck_assert_ptr_null(azi3_config_find_rule(c, 7, "night"));
}
END_TEST

START_TEST(test_example_config) {
        _cleanup_free_ char *path = fixture("etc/azi3.yaml");
        _cleanup_(azi3_config_freep) azi3_config *c = NULL;
        azi3_config_errors errs = {};

        ck_assert_int_eq(azi3_config_load(path, &c, &errs), 0);
        azi3_config_errors_clear(&errs);
        ck_assert_str_eq(c->store, "/var/lib/schedulerd/azi3.db");
        ck_assert_uint_eq(c->megazord_timeout, AZI3_DEFAULT_MEGAZORD_TIMEOUT);
        ck_assert_uint_eq(c->retention, AZI3_DEFAULT_RETENTION);
        ck_assert_uint_eq(c->n_rules, 1);
        ck_assert_uint_eq(c->rules[0].window, 2 * USEC_PER_HOUR);
}
END_TEST

START_TEST(test_defaults_from_string) {
        static const char text[] = "store: /s.db\n"
                                   "megazord: {base_url: 'http://m'}\n"
                                   "sqs: {endpoint: 'http://q', region: r, queue_url: 'http://q/1/x'}\n"
                                   "rules: []\n";
        _cleanup_(azi3_config_freep) azi3_config *c = NULL;
        azi3_config_errors errs = {};

        ck_assert_int_eq(azi3_config_parse(text, sizeof(text) - 1, "inline", &c, &errs), 0);
        azi3_config_errors_clear(&errs);
        ck_assert_uint_eq(c->megazord_timeout, 5 * USEC_PER_SEC);
        ck_assert_uint_eq(c->retention, 24 * USEC_PER_HOUR);
        ck_assert_uint_eq(c->sqs_wait_time, AZI3_DEFAULT_SQS_WAIT_TIME);
        ck_assert_uint_eq(c->sqs_visibility_timeout, AZI3_DEFAULT_SQS_VISIBILITY_TIMEOUT);
        ck_assert_uint_eq(c->settle, 30 * USEC_PER_SEC);
        ck_assert_uint_eq(c->max_alarm_age, USEC_PER_HOUR);
        ck_assert_uint_eq(c->replay_after, 2 * USEC_PER_MINUTE);
        ck_assert_uint_eq(c->n_rules, 0);
        ck_assert_str_eq(c->store, "/s.db");
}
END_TEST

/* Issue 15: `store:` may be a PostgreSQL connection string, never with a password in it. */
START_TEST(test_store_conninfo) {
        static const char uri[] = "store: postgresql://azi3@db1,db2/azi3?target_session_attrs=read-write\n"
                                  "megazord: {base_url: 'http://m'}\n"
                                  "sqs: {endpoint: 'http://q', region: r, queue_url: 'http://q/1/x'}\n"
                                  "rules: []\n";
        static const char kv[] = "store: host=/run/postgresql dbname=azi3\n"
                                 "megazord: {base_url: 'http://m'}\n"
                                 "sqs: {endpoint: 'http://q', region: r, queue_url: 'http://q/1/x'}\n"
                                 "rules: []\n";
        static const char secret[] = "megazord: {base_url: 'http://m'}\n"
                                     "store: 'host=db dbname=azi3 password=hunter2'\n"
                                     "sqs: {endpoint: 'http://q', region: r, queue_url: 'http://q/1/x'}\n"
                                     "rules: []\n";
        _cleanup_(azi3_config_freep) azi3_config *c = NULL;
        azi3_config_errors errs = {};

        /* not resolved against the file's directory like a relative path */
        ck_assert_int_eq(azi3_config_parse(uri, sizeof(uri) - 1, "dir/inline", &c, &errs), 0);
        azi3_config_errors_clear(&errs);
        ck_assert_str_eq(c->store, "postgresql://azi3@db1,db2/azi3?target_session_attrs=read-write");
        c = azi3_config_free(c);
        ck_assert_int_eq(azi3_config_parse(kv, sizeof(kv) - 1, "dir/inline", &c, &errs), 0);
        azi3_config_errors_clear(&errs);
        ck_assert_str_eq(c->store, "host=/run/postgresql dbname=azi3");
        c = azi3_config_free(c);

        ck_assert_int_eq(azi3_config_parse(secret, sizeof(secret) - 1, "inline", &c, &errs), -EINVAL);
        ck_assert_uint_eq(errs.n, 1);
        ck_assert_uint_eq(errs.items[0].line, 2);
        ck_assert_uint_eq(errs.items[0].column, 8);
        ck_assert_msg(strstr(errs.items[0].message, "holds a password") && strstr(errs.items[0].message, "PGPASSFILE") &&
                              !strstr(errs.items[0].message, "hunter2"),
                      "%s", errs.items[0].message);
        azi3_config_errors_clear(&errs);
}
END_TEST

/* Issue 17's keys: given, and out of their bounds. */
START_TEST(test_evidence_keys) {
        static const char good[] = "store: /s.db\n"
                                   "megazord: {base_url: 'http://m'}\n"
                                   "sqs: {endpoint: 'http://q', region: r, queue_url: 'http://q/1/x'}\n"
                                   "settle: 0s\nmax_alarm_age: 30m\nreplay_after: 5m\n"
                                   "rules: []\n";
        static const char bad[] = "store: /s.db\n"
                                  "megazord: {base_url: 'http://m'}\n"
                                  "sqs: {endpoint: 'http://q', region: r, queue_url: 'http://q/1/x'}\n"
                                  "settle: 11m\nmax_alarm_age: 10s\nreplay_after: 2d\n"
                                  "rules: []\n";
        _cleanup_(azi3_config_freep) azi3_config *c = NULL;
        azi3_config_errors errs = {};

        ck_assert_int_eq(azi3_config_parse(good, sizeof(good) - 1, "inline", &c, &errs), 0);
        azi3_config_errors_clear(&errs);
        ck_assert_uint_eq(c->settle, 0);
        ck_assert_uint_eq(c->max_alarm_age, 30 * USEC_PER_MINUTE);
        ck_assert_uint_eq(c->replay_after, 5 * USEC_PER_MINUTE);
        c = azi3_config_free(c);

        ck_assert_int_eq(azi3_config_parse(bad, sizeof(bad) - 1, "inline", &c, &errs), -EINVAL);
        ck_assert_uint_eq(errs.n, 3);
        ck_assert_msg(strstr(errs.items[0].message, "settle: \"11m\" is not between 0 and 10m"), "%s",
                      errs.items[0].message);
        ck_assert_msg(strstr(errs.items[1].message, "max_alarm_age: \"10s\" is not between 1m and 7d"), "%s",
                      errs.items[1].message);
        ck_assert_msg(strstr(errs.items[2].message, "replay_after: \"2d\" is not between 10s and 1d"), "%s",
                      errs.items[2].message);
        azi3_config_errors_clear(&errs);
}
END_TEST

/* Issue 16: megazord.max_parallel, its default, and each way it can be wrong, with where. */
START_TEST(test_max_parallel) {
        static const char good[] = "store: /s.db\n"
                                   "megazord: {base_url: 'http://m', max_parallel: 4}\n"
                                   "sqs: {endpoint: 'http://q', region: r, queue_url: 'http://q/1/x'}\n"
                                   "rules: []\n";
        static const char dflt[] = "store: /s.db\n"
                                   "megazord: {base_url: 'http://m'}\n"
                                   "sqs: {endpoint: 'http://q', region: r, queue_url: 'http://q/1/x'}\n"
                                   "rules: []\n";
        static const struct {
                const char *value;
                unsigned column;
                const char *text;
        } bad[] = {
                { "0", 48, "megazord.max_parallel: invalid value \"0\"; expected an integer between 1 and 256" },
                { "257", 48, "megazord.max_parallel: invalid value \"257\"; expected an integer between 1 and 256" },
                { "-3", 48, "megazord.max_parallel: invalid value \"-3\"; expected an integer between 1 and 256" },
                { "many", 48, "megazord.max_parallel: invalid value \"many\"; expected an integer between 1 and 256" },
                { "'8'", 48, "megazord.max_parallel: got the quoted string \"8\"; expected an integer between 1 "
                             "and 256, without quotes" },
                { "[4]", 48, "megazord.max_parallel: expected an integer between 1 and 256, got a list" },
        };
        _cleanup_(azi3_config_freep) azi3_config *c = NULL;
        azi3_config_errors errs = {};

        ck_assert_int_eq(azi3_config_parse(good, sizeof(good) - 1, "inline", &c, &errs), 0);
        azi3_config_errors_clear(&errs);
        ck_assert_uint_eq(c->megazord_max_parallel, 4);
        c = azi3_config_free(c);
        ck_assert_int_eq(azi3_config_parse(dflt, sizeof(dflt) - 1, "inline", &c, &errs), 0);
        azi3_config_errors_clear(&errs);
        ck_assert_uint_eq(c->megazord_max_parallel, 16);
        c = azi3_config_free(c);

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_free_ char *text = NULL;

                ck_assert_int_ge(asprintf(&text, "store: /s.db\n"
                                          "megazord: {base_url: 'http://m', max_parallel: %s}\n"
                                          "sqs: {endpoint: 'http://q', region: r, queue_url: 'http://q/1/x'}\n"
                                          "rules: []\n", bad[i].value), 0);
                ck_assert_int_eq(azi3_config_parse(text, strlen(text), "inline", &c, &errs), -EINVAL);
                ck_assert_ptr_null(c);
                ck_assert_uint_eq(errs.n, 1);
                ck_assert_uint_eq(errs.items[0].line, 2);
                ck_assert_uint_eq(errs.items[0].column, bad[i].column);
                ck_assert_msg(strstr(errs.items[0].message, bad[i].text), "%s: \"%s\" lacks \"%s\"", bad[i].value,
                              errs.items[0].message, bad[i].text);
                azi3_config_errors_clear(&errs);
        }
}
END_TEST

START_TEST(test_empty_document) {
        azi3_config *c = NULL;
        azi3_config_errors errs = {};
        ck_assert_int_eq(azi3_config_parse("# nothing\n", 10, "empty.yaml", &c, &errs), -EINVAL);
        ck_assert_uint_eq(errs.n, 1);
        ck_assert_uint_eq(errs.items[0].line, 1);
        ck_assert_ptr_nonnull(strstr(errs.items[0].message, "empty"));
        azi3_config_errors_clear(&errs);
}
END_TEST

START_TEST(test_missing_file) {
        azi3_config *c = NULL;
        azi3_config_errors errs = {};
        ck_assert_int_eq(azi3_config_load("/nonexistent/azi3.yaml", &c, &errs), -ENOENT);
        ck_assert_uint_eq(errs.n, 1);
        _cleanup_free_ char *s = azi3_config_error_format(&errs, 0);
        ck_assert_str_eq(s, "/nonexistent/azi3.yaml: cannot open the configuration: No such file or directory");
        azi3_config_errors_clear(&errs);
}
END_TEST

START_TEST(test_unknown_key) {
        static const expect e[] = {
                { 10, 5, "rules[0]: unknown key \"windw\"; allowed keys: robot_id, rule_id, timezone, start, end, "
                         "window, event, alarm_event, alarm_level" },
        };
        expect_errors("tests/fixtures/azi3/unknown-key.yaml", e, ELEMENTSOF(e));
}
END_TEST

START_TEST(test_bad_time) {
        static const expect e[] = {
                { 8, 13, "rules[0].start: invalid time \"25:00\": hour 25 is out of range" },
                { 9, 11, "rules[0].end: invalid time \"7:5\": expected HH:MM" },
        };
        expect_errors("tests/fixtures/azi3/bad-time.yaml", e, ELEMENTSOF(e));
}
END_TEST

START_TEST(test_unknown_zone) {
        static const expect e[] = {
                { 7, 15, "rules[0].timezone: unknown time zone \"Europe/Amsterdm\"" },
        };
        expect_errors("tests/fixtures/azi3/unknown-zone.yaml", e, ELEMENTSOF(e));
}
END_TEST

START_TEST(test_window_not_positive) {
        static const expect e[] = {
                { 10, 13, "rules[0].window: must be longer than 0" },
                { 16, 14, "rules[1].window: invalid duration \"-2h\"" },
        };
        expect_errors("tests/fixtures/azi3/window-not-positive.yaml", e, ELEMENTSOF(e));
}
END_TEST

START_TEST(test_duplicate_rule) {
        static const expect e[] = {
                { 10, 5, "rules[1]: duplicate rule: robot_id 42 with rule_id \"toilet-activity\" is already defined "
                         "by rules[0] at line 5" },
        };
        expect_errors("tests/fixtures/azi3/duplicate-rule.yaml", e, ELEMENTSOF(e));
}
END_TEST

START_TEST(test_missing_keys) {
        static const expect e[] = {
                { 1, 1, "configuration: missing required key \"store\"" },
                { 1, 11, "megazord: missing required key \"base_url\"" },
                { 4, 5, "rules[0]: missing required key \"rule_id\"" },
                { 4, 5, "rules[0]: missing required key \"end\"" },
        };
        expect_errors("tests/fixtures/azi3/missing-key.yaml", e, ELEMENTSOF(e));
}
END_TEST

START_TEST(test_wrong_types) {
        static const expect e[] = {
                { 1, 8, "store: expected a string, got a list" },
                { 2, 11, "megazord: expected a mapping, got a scalar" },
                { 4, 12, "retention: expected a duration" },
                { 6, 15, "rules[0].robot_id: got the quoted string \"42\"; expected an integer" },
                { 11, 18, "rules[0].alarm_level: invalid value \"high\"; expected an integer between 0 and" },
                { 12, 5, "rules[1]: expected a mapping, got a scalar" },
        };
        expect_errors("tests/fixtures/azi3/wrong-type.yaml", e, ELEMENTSOF(e));
}
END_TEST

START_TEST(test_syntax_error) {
        static const expect e[] = {
                { 3, 4, "invalid YAML: did not find expected ',' or '}'" },
        };
        expect_errors("tests/fixtures/azi3/syntax-error.yaml", e, ELEMENTSOF(e));
}
END_TEST

START_TEST(test_duplicate_key) {
        static const expect e[] = {
                { 4, 1, "configuration: duplicate key \"store\" (first given at line 1)" },
        };
        expect_errors("tests/fixtures/azi3/duplicate-key.yaml", e, ELEMENTSOF(e));
}
END_TEST

START_TEST(test_bad_values_all_reported) {
        static const expect e[] = {
                { 2, 23, "megazord.base_url: invalid URL \"ftp://127.0.0.1:8081\"" },
                { 2, 55, "megazord.timeout: invalid duration \"5x\"" },
                { 3, 109, "sqs.wait_time: \"30s\" is not a whole number of seconds between 0 and 20s" },
                { 3, 134, "sqs.visibility_timeout: \"1500ms\" is not a whole number of seconds" },
                { 4, 16, "retention: invalid duration \"1h30\"" },
                { 6, 15, "rules[0].robot_id: invalid value \"0\"; expected an integer between 1 and" },
                { 7, 21, "rules[0].rule_id: invalid rule id \"toilet activity\"" },
                { 11, 12, "rules[0].event: invalid event name \"toilet_activity\"" },
        };
        expect_errors("tests/fixtures/azi3/bad-values.yaml", e, ELEMENTSOF(e));
}
END_TEST

START_TEST(test_local_time_parser) {
        unsigned m = 12345;
        parse_error e = {};
        ck_assert_int_eq(azi3_parse_local_time("00:00", &m, &e), 0);
        ck_assert_uint_eq(m, 0);
        ck_assert_int_eq(azi3_parse_local_time("23:59", &m, &e), 0);
        ck_assert_uint_eq(m, 23 * 60 + 59);
        static const struct {
                const char *s;
                size_t offset;
        } bad[] = { { "24:00", 0 }, { "12:60", 3 }, { "7:05", 1 }, { "07:5", 4 }, { "07:00:00", 5 },
                    { "0700", 2 },  { "", 0 },      { "a7:00", 0 }, { "07-00", 2 } };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                m = 12345;
                ck_assert_int_eq(azi3_parse_local_time(bad[i].s, &m, &e), -EINVAL);
                ck_assert_msg(e.offset == bad[i].offset, "%s: offset %zu", bad[i].s, e.offset);
                ck_assert_uint_eq(m, 12345);
        }
}
END_TEST

static Suite *config_suite(void) {
        Suite *s = suite_create("azi3_config");
        TCase *tc = tcase_create("valid");
        tcase_add_test(tc, test_valid_full);
        tcase_add_test(tc, test_example_config);
        tcase_add_test(tc, test_defaults_from_string);
        tcase_add_test(tc, test_store_conninfo);
        tcase_add_test(tc, test_evidence_keys);
        tcase_add_test(tc, test_local_time_parser);
        suite_add_tcase(s, tc);

        tc = tcase_create("errors");
        tcase_add_test(tc, test_empty_document);
        tcase_add_test(tc, test_missing_file);
        tcase_add_test(tc, test_unknown_key);
        tcase_add_test(tc, test_bad_time);
        tcase_add_test(tc, test_unknown_zone);
        tcase_add_test(tc, test_window_not_positive);
        tcase_add_test(tc, test_duplicate_rule);
        tcase_add_test(tc, test_missing_keys);
        tcase_add_test(tc, test_wrong_types);
        tcase_add_test(tc, test_syntax_error);
        tcase_add_test(tc, test_duplicate_key);
        tcase_add_test(tc, test_bad_values_all_reported);
        tcase_add_test(tc, test_max_parallel);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(config_suite());
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        tz_cache_clear();
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
