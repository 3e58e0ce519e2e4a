/* SPDX-License-Identifier: MIT */
/* The azi-3 service layer (jobs/azi3/service.c) without the daemon, against the fake Megazord:
 * what the end-to-end tests cannot reach from outside, chiefly a store that fails after the
 * subscription was made. */
#include <check.h>
#include <jansson.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "azi3/service.h"
#include "peer.h"

static peer fake;
static char base[256];
static char dir[] = "/tmp/test-azi3-service-XXXXXX";

/* 2026-06-10 07:00 CEST and 22:00 CEST */
#define A_2026 (UINT64_C(1781067600) * USEC_PER_SEC)
#define B_2026 (A_2026 + 15 * USEC_PER_HOUR)

_printf_(3, 0) static void quiet_log(void *userdata, int level, const char *fmt, va_list ap) {
        (void) userdata;
        fprintf(stderr, "<%d> ", level);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
}

static void control(const char *path, const char *body) {
        char url[300];
        _cleanup_free_ char *resp = NULL;
        long status;

        snprintf(url, sizeof(url), "%s%s", base, path);
        ck_assert_int_eq(peer_http("POST", url, body, &status, &resp), 0);
        ck_assert_msg(status == 204, "control %s: HTTP %ld %s", path, status, resp ? resp : "");
}

/* The routes of the recorded requests, comma-separated. */
static char *routes(void) {
        char url[300], *out;
        _cleanup_free_ char *resp = NULL;
        json_t *j, *v;
        size_t i, len = 0;
        long status;

        snprintf(url, sizeof(url), "%s/_fake/requests", base);
        ck_assert_int_eq(peer_http("GET", url, NULL, &status, &resp), 0);
        j = json_loads(resp, 0, NULL);
        ck_assert(json_is_array(j));
        out = calloc(1, 1024);
        json_array_foreach(j, i, v)
                len += (size_t) snprintf(out + len, 1024 - len, "%s%s", i ? "," : "",
                                         json_string_value(json_object_get(v, "route")));
        json_decref(j);
        return out;
}

static char store_path[512];

static azi3_config *make_config(void) {
        char text[1024];
        azi3_config *c = NULL;
        azi3_config_errors errors = {};

        snprintf(store_path, sizeof(store_path), "%s/azi3-%d.db", dir, (int) getpid());
        snprintf(text, sizeof(text),
                 "store: %s\nmegazord: { base_url: %s, timeout: 2s }\n"
                 "sqs: { endpoint: http://127.0.0.1:1, region: eu-west-1, queue_url: http://127.0.0.1:1/0/q }\n"
                 "rules:\n  - { robot_id: 42, rule_id: r, timezone: Europe/Amsterdam, start: \"07:00\", end: \"22:00\" }\n",
                 store_path, base);
        ck_assert_int_eq(azi3_config_parse(text, strlen(text), "test.yaml", &c, &errors), 0);
        azi3_config_errors_clear(&errors);
        return c;
}

static void setup(void) {
        char url[300];
        long status;

        snprintf(url, sizeof(url), "%s/_fake/reset", base);
        ck_assert_int_eq(peer_http("POST", url, NULL, &status, NULL), 0);
        snprintf(store_path, sizeof(store_path), "%s/azi3-%d.db", dir, (int) getpid());
        (void) unlink(store_path);
}

START_TEST(test_create_once_with_replay) {
        _cleanup_(azi3_config_freep) azi3_config *c = make_config();
        _cleanup_(azi3_service_freep) azi3_service *s = NULL;
        _cleanup_free_ char *r = NULL;
        char msg[AZI3_MESSAGE_MAX], seed[256];

        snprintf(seed, sizeof(seed), "[{\"id\": 9001, \"robotId\": 42, \"eventName\": \"TOILET_ACTIVITY\", "
                 "\"providerName\": \"x\", \"createdAt\": \"2026-06-10T05:30:00.000Z\"}]");
        control("/_fake/incomings", seed);
        ck_assert_int_eq(azi3_service_new(c, quiet_log, NULL, msg, sizeof(msg), &s), 0);
        ck_assert_int_eq(azi3_monitoring_scheduler(s, A_2026 + USEC_PER_HOUR, msg, sizeof(msg)), AZI3_RESULT_OK);
        ck_assert_str_eq(msg, "1 session created (1 event replayed), 1 session open");
        ck_assert_int_eq(azi3_monitoring_scheduler(s, A_2026 + 2 * USEC_PER_HOUR, msg, sizeof(msg)), AZI3_RESULT_OK);
        ck_assert_str_eq(msg, "1 session open");
        /* before A and after B: nothing to start */
        ck_assert_int_eq(azi3_monitoring_scheduler(s, A_2026 - 1, msg, sizeof(msg)), AZI3_RESULT_OK);
        ck_assert_str_eq(msg, "0 sessions open");
        r = routes();
        ck_assert_str_eq(r, "subscribe,replay");
}
END_TEST

START_TEST(test_store_failure_after_subscribe_undoes_it) {
        _cleanup_(azi3_config_freep) azi3_config *c = make_config();
        _cleanup_(azi3_service_freep) azi3_service *s = NULL;
        _cleanup_free_ char *r = NULL;
        char msg[AZI3_MESSAGE_MAX];
        sqlite3 *db = NULL;

        ck_assert_int_eq(azi3_service_new(c, quiet_log, NULL, msg, sizeof(msg), &s), 0);
        /* another process holds the write lock past the busy timeout */
        ck_assert_int_eq(sqlite3_open(store_path, &db), SQLITE_OK);
        ck_assert_int_eq(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
        ck_assert_int_eq(azi3_monitoring_scheduler(s, A_2026, msg, sizeof(msg)), AZI3_RESULT_RETRY);
        ck_assert_msg(strstr(msg, "subscription undone") != NULL, "%s", msg);
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        sqlite3_close(db);
        r = routes();
        ck_assert_str_eq(r, "subscribe,replay,unsubscribe");
        /* and the next run starts the day */
        ck_assert_int_eq(azi3_monitoring_scheduler(s, A_2026 + 60 * USEC_PER_SEC, msg, sizeof(msg)), AZI3_RESULT_OK);
        ck_assert_str_eq(msg, "1 session created (0 events replayed), 1 session open");
}
END_TEST

START_TEST(test_alarm_retried_once_posted) {
        _cleanup_(azi3_config_freep) azi3_config *c = make_config();
        _cleanup_(azi3_service_freep) azi3_service *s = NULL;
        _cleanup_free_ char *r = NULL;
        char msg[AZI3_MESSAGE_MAX];

        ck_assert_int_eq(azi3_service_new(c, quiet_log, NULL, msg, sizeof(msg), &s), 0);
        ck_assert_int_eq(azi3_monitoring_scheduler(s, A_2026, msg, sizeof(msg)), AZI3_RESULT_OK);
        control("/_fake/fault", "{\"route\": \"alarm\", \"status\": 503}");
        /* still settling at A+2h: a late delivery may close it as activity (issue 17) */
        ck_assert_int_eq(azi3_window_expiration(s, A_2026 + 2 * USEC_PER_HOUR, msg, sizeof(msg)), AZI3_RESULT_OK);
        ck_assert_str_eq(msg, "1 session open");
        /* judged after the settle, on Megazord's history (the replay), then the post fails */
        ck_assert_int_eq(azi3_window_expiration(s, A_2026 + 2 * USEC_PER_HOUR + AZI3_DEFAULT_SETTLE, msg, sizeof(msg)),
                         AZI3_RESULT_RETRY);
        ck_assert_msg(strstr(msg, "1 alarm still owed") != NULL, "%s", msg);
        ck_assert_int_eq(azi3_window_expiration(s, A_2026 + 2 * USEC_PER_HOUR + 90 * USEC_PER_SEC, msg, sizeof(msg)),
                         AZI3_RESULT_OK);
        ck_assert_str_eq(msg, "1 session open, 1 alarm posted");
        /* the next window ran out hours before this run at B: too late to post (issue 17) */
        ck_assert_int_eq(azi3_window_expiration(s, B_2026, msg, sizeof(msg)), AZI3_RESULT_OK);
        ck_assert_str_eq(msg, "0 sessions open, 1 window expired, 1 alarm too late (not posted), 1 session completed");
        r = routes();
        ck_assert_str_eq(r, "subscribe,replay,replay,alarm,alarm,replay,unsubscribe");
}
END_TEST

START_TEST(test_bad_config_is_fail) {
        char path[600], msg[AZI3_MESSAGE_MAX];
        FILE *f;

        snprintf(path, sizeof(path), "%s/bad.yaml", dir);
        f = fopen(path, "w");
        ck_assert_ptr_nonnull(f);
        fputs("store: x.db\nfrobnicate: 1\n", f);
        fclose(f);
        ck_assert_int_eq(azi3_job_run(AZI3_JOB_WINDOW_EXPIRATION, path, A_2026, NULL, msg, sizeof(msg)),
                         AZI3_RESULT_FAIL);
        ck_assert_msg(strstr(msg, "bad.yaml:2:1") != NULL, "%s", msg);
}
END_TEST

int main(void) {
        char script[512];
        int failed, r;

        if (!peer_program_works("python3", "--version")) {
                fprintf(stderr, "python3 is not installed: skipping the azi3 service tests\n");
                return 77;
        }
        if (!mkdtemp(dir)) {
                perror("mkdtemp");
                return 1;
        }
        snprintf(script, sizeof(script), "%s/megazord.py", peer_fakes_dir());
        char *argv[] = { "python3", script, NULL };
        r = peer_start(argv, &fake);
        if (r < 0) {
                fprintf(stderr, "cannot start the fake Megazord %s: %s\n", script, strerror(-r));
                return 1;
        }
        snprintf(base, sizeof(base), "%s", json_string_value(json_object_get(fake.ready, "base_url")));

        Suite *s = suite_create("azi3_service");
        TCase *tc = tcase_create("against_fake");
        tcase_add_checked_fixture(tc, setup, NULL);
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_create_once_with_replay);
        tcase_add_test(tc, test_store_failure_after_subscribe_undoes_it);
        tcase_add_test(tc, test_alarm_retried_once_posted);
        tcase_add_test(tc, test_bad_config_is_fail);
        suite_add_tcase(s, tc);

        SRunner *sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        peer_stop(&fake);
        return failed == 0 ? 0 : 1;
}
