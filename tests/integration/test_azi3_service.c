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

/* A GET on the fake's control API, parsed. */
static json_t *fake_get(const char *path) {
        char url[300];
        _cleanup_free_ char *resp = NULL;
        long status;
        json_t *j;

        snprintf(url, sizeof(url), "%s%s", base, path);
        ck_assert_int_eq(peer_http("GET", url, NULL, &status, &resp), 0);
        ck_assert_int_eq(status, 200);
        j = json_loads(resp, 0, NULL);
        ck_assert_ptr_nonnull(j);
        return j;
}

/* A configuration of N_ROBOTS robots (1001, 1002, ...) with one 07:00-22:00 rule each, plus
 * EXTRA rules (YAML flow mappings, one per line), MAX_PARALLEL calls at once and TIMEOUT. */
static azi3_config *make_config_many(unsigned n_robots, const char *extra, unsigned max_parallel, const char *timeout) {
        _cleanup_free_ char *text = NULL;
        azi3_config *c = NULL;
        azi3_config_errors errors = {};
        size_t size = 0;
        FILE *f;

        snprintf(store_path, sizeof(store_path), "%s/azi3-%d.db", dir, (int) getpid());
        f = open_memstream(&text, &size);
        ck_assert_ptr_nonnull(f);
        fprintf(f, "store: %s\nmegazord: { base_url: %s, timeout: %s, max_parallel: %u }\n"
                "sqs: { endpoint: http://127.0.0.1:1, region: eu-west-1, queue_url: http://127.0.0.1:1/0/q }\n"
                "rules:\n", store_path, base, timeout, max_parallel);
        for (unsigned i = 0; i < n_robots; i++)
                fprintf(f, "  - { robot_id: %u, rule_id: r, timezone: Europe/Amsterdam, start: \"07:00\", end: \"22:00\" }\n",
                        1001 + i);
        fputs(extra ?: "", f);
        ck_assert_int_eq(fclose(f), 0);
        if (azi3_config_parse(text, size, "test.yaml", &c, &errors) < 0) {
                for (size_t i = 0; i < errors.n; i++) {
                        _cleanup_free_ char *line = azi3_config_error_format(&errors, i);
                        fprintf(stderr, "%s\n", line);
                }
                ck_abort_msg("config does not parse");
        }
        azi3_config_errors_clear(&errors);
        return c;
}

/* How many recorded requests of ROUTE there were, and how many distinct referenceIds the alarms
 * among them carried. */
static size_t count_route(const char *route, size_t *ret_distinct_refs) {
        json_auto_t *reqs = fake_get("/_fake/requests");
        json_auto_t *refs = json_object();
        json_t *v;
        size_t i, n = 0;

        json_array_foreach(reqs, i, v) {
                if (!streq(json_string_value(json_object_get(v, "route")), route))
                        continue;
                n++;
                json_auto_t *body = json_loads(json_string_value(json_object_get(v, "body")), 0, NULL);
                const char *ref = json_string_value(json_object_get(body, "referenceId"));
                if (ref)
                        json_object_set_new(refs, ref, json_true());
        }
        if (ret_distinct_refs)
                *ret_distinct_refs = json_object_size(refs);
        return n;
}

/* A window opened by an activity event starts at that event's createdAt. When its alarm stays
 * owed, unconfirmed, the next run reads the history and finds that same event at the
 * window's since: that is the event that opened the window, not activity inside it, so the
 * window is not judged again and the alarm is posted. (Found by the three-node test, where a
 * second node's run read the history after the first had expired the window; on one node it
 * takes a history that could not be read when the window expired.) */
START_TEST(test_owed_alarm_of_window_opened_by_event) {
        _cleanup_(azi3_config_freep) azi3_config *c = make_config();
        _cleanup_(azi3_service_freep) azi3_service *s = NULL;
        char msg[AZI3_MESSAGE_MAX];
        usec_t e = A_2026 + 30 * USEC_PER_MINUTE;

        control("/_fake/incomings", "[{\"id\": 9001, \"robotId\": 42, \"eventName\": \"TOILET_ACTIVITY\", "
                "\"providerName\": \"x\", \"createdAt\": \"2026-06-10T05:30:00.000Z\"}]");
        ck_assert_int_eq(azi3_service_new(c, quiet_log, NULL, msg, sizeof(msg), &s), 0);
        ck_assert_int_eq(azi3_monitoring_scheduler(s, A_2026 + USEC_PER_HOUR, msg, sizeof(msg)), AZI3_RESULT_OK);
        ck_assert_str_eq(msg, "1 session created (1 event replayed), 1 session open");
        /* the history cannot be read: the window closes as expired, its alarm owed unconfirmed */
        control("/_fake/fault", "{\"route\": \"replay\", \"status\": 503}");
        ck_assert_int_eq(azi3_window_expiration(s, e + 2 * USEC_PER_HOUR + AZI3_DEFAULT_SETTLE, msg, sizeof(msg)),
                         AZI3_RESULT_RETRY);
        ck_assert_msg(strstr(msg, "1 window expired") && strstr(msg, "1 alarm still owed"), "%s", msg);
        ck_assert_uint_eq(count_route("alarm", NULL), 0);
        ck_assert_int_eq(azi3_window_expiration(s, e + 2 * USEC_PER_HOUR + 2 * AZI3_DEFAULT_SETTLE, msg, sizeof(msg)),
                         AZI3_RESULT_OK);
        ck_assert_str_eq(msg, "1 session open, 1 alarm posted");
        ck_assert_uint_eq(count_route("alarm", NULL), 1);
}
END_TEST

/* The first window [A, A+2h) of every session runs out; one window-expiration after the settle
 * judges them all (history read) and posts every alarm, no more than max_parallel at once. */
START_TEST(test_alarms_in_parallel_bounded) {
        _cleanup_(azi3_config_freep) azi3_config *c = make_config_many(12, NULL, 4, "5s");
        _cleanup_(azi3_service_freep) azi3_service *s = NULL;
        char msg[AZI3_MESSAGE_MAX];
        size_t refs = 0;

        ck_assert_int_eq(azi3_service_new(c, quiet_log, NULL, msg, sizeof(msg), &s), 0);
        ck_assert_int_eq(azi3_monitoring_scheduler(s, A_2026, msg, sizeof(msg)), AZI3_RESULT_OK);
        ck_assert_str_eq(msg, "12 sessions created (0 events replayed), 12 sessions open");
        /* every alarm takes a while to answer, so the calls pile up at the fake if they may */
        control("/_fake/fault", "{\"route\": \"alarm\", \"count\": -1, \"delay\": 0.2}");
        /* and the fake reads each alarm's window from the store as it arrives */
        char body[600];
        snprintf(body, sizeof(body), "{\"path\": \"%s\"}", store_path);
        control("/_fake/claims-store", body);
        ck_assert_int_eq(azi3_window_expiration(s, A_2026 + 2 * USEC_PER_HOUR + AZI3_DEFAULT_SETTLE, msg, sizeof(msg)),
                         AZI3_RESULT_OK);
        ck_assert_str_eq(msg, "12 sessions open, 12 windows expired, 12 alarms posted");
        ck_assert_uint_eq(count_route("alarm", &refs), 12);
        ck_assert_uint_eq(refs, 12);

        /* The run's writes share commits (issue 16), yet every post found its window expired
         * and its claim committed, as another node reading the store would. */
        json_auto_t *checks = fake_get("/_fake/claim-checks");
        size_t i;
        json_t *v;
        ck_assert_uint_eq(json_array_size(checks), 12);
        json_array_foreach(checks, i, v) {
                const char *owner = json_string_value(json_object_get(v, "claimOwner"));
                const char *state = json_string_value(json_object_get(v, "alarmState"));
                ck_assert_msg(owner && *owner && state && streq(state, "owed"),
                              "alarm %s was posted before its claim was committed: claim %s, alarm %s (%s)",
                              json_string_value(json_object_get(v, "referenceId")), owner ? owner : "none",
                              state ? state : "none", json_string_value(json_object_get(v, "error")) ?: "");
        }

        json_auto_t *conc = fake_get("/_fake/concurrency");
        json_int_t max = json_integer_value(json_object_get(conc, "max"));
        ck_assert_msg(max <= 4, "the fake saw %lld requests at once, max_parallel is 4", (long long) max);
        ck_assert_msg(max >= 2, "the fake never saw two requests at once: the calls were not concurrent");
        ck_assert_int_eq(json_integer_value(json_object_get(conc, "max_per_robot")), 1);

        /* a second run owes nothing and posts nothing */
        ck_assert_int_eq(azi3_window_expiration(s, A_2026 + 2 * USEC_PER_HOUR + 2 * AZI3_DEFAULT_SETTLE, msg,
                                                sizeof(msg)), AZI3_RESULT_OK);
        ck_assert_str_eq(msg, "12 sessions open");
        ck_assert_uint_eq(count_route("alarm", NULL), 12);
}
END_TEST

/* Robot 42 has two rules: "short" (07:00-09:00, its one full window ends at B) and "long". At
 * 09:00 + settle one run reads both histories, posts both alarms, completes "short" and deletes
 * its subscription; every call for robot 42 goes out alone and in order, while the other
 * robots' calls overlap. */
START_TEST(test_robot_calls_in_order) {
        _cleanup_(azi3_config_freep) azi3_config *c = make_config_many(8,
                "  - { robot_id: 42, rule_id: short, timezone: Europe/Amsterdam, start: \"07:00\", end: \"09:00\" }\n"
                "  - { robot_id: 42, rule_id: long, timezone: Europe/Amsterdam, start: \"07:00\", end: \"22:00\" }\n",
                4, "5s");
        _cleanup_(azi3_service_freep) azi3_service *s = NULL;
        char msg[AZI3_MESSAGE_MAX], seq[256] = "";
        size_t i, used = 0;
        json_t *v;

        ck_assert_int_eq(azi3_service_new(c, quiet_log, NULL, msg, sizeof(msg), &s), 0);
        ck_assert_int_eq(azi3_monitoring_scheduler(s, A_2026, msg, sizeof(msg)), AZI3_RESULT_OK);
        ck_assert_str_eq(msg, "10 sessions created (0 events replayed), 10 sessions open");
        control("/_fake/reset", NULL);
        /* slow answers, so a second call for robot 42 would overlap the first if it were let out */
        control("/_fake/fault", "{\"route\": \"any\", \"count\": -1, \"delay\": 0.1}");
        ck_assert_int_eq(azi3_window_expiration(s, A_2026 + 2 * USEC_PER_HOUR + AZI3_DEFAULT_SETTLE, msg, sizeof(msg)),
                         AZI3_RESULT_OK);
        ck_assert_str_eq(msg, "9 sessions open, 10 windows expired, 10 alarms posted, 1 session completed");

        json_auto_t *conc = fake_get("/_fake/concurrency");
        ck_assert_int_eq(json_integer_value(json_object_get(conc, "max_per_robot")), 1);
        ck_assert_int_ge(json_integer_value(json_object_get(conc, "max")), 2);

        /* robot 42's calls in the order they reached Megazord: each session's history before its
         * alarm, the short session's deletion after its alarm */
        json_auto_t *reqs = fake_get("/_fake/requests");
        json_array_foreach(reqs, i, v) {
                if (!strstr(json_string_value(json_object_get(v, "path")), "/robots/42/"))
                        continue;
                used += (size_t) snprintf(seq + used, sizeof(seq) - used, "%s%s", used ? "," : "",
                                          json_string_value(json_object_get(v, "route")));
        }
        ck_assert_str_eq(seq, "replay,replay,alarm,alarm,unsubscribe");
}
END_TEST

/* One alarm gets a 503, another no answer within the timeout: both stay owed, the others are
 * posted; the next run posts the two, once each. */
START_TEST(test_failed_alarm_stays_owed_others_posted) {
        _cleanup_(azi3_config_freep) azi3_config *c = make_config_many(6, NULL, 4, "1s");
        _cleanup_(azi3_service_freep) azi3_service *s = NULL;
        char msg[AZI3_MESSAGE_MAX];
        size_t refs = 0;

        ck_assert_int_eq(azi3_service_new(c, quiet_log, NULL, msg, sizeof(msg), &s), 0);
        ck_assert_int_eq(azi3_monitoring_scheduler(s, A_2026, msg, sizeof(msg)), AZI3_RESULT_OK);
        control("/_fake/reset", NULL);
        control("/_fake/fault", "{\"route\": \"alarm\", \"status\": 503}");
        control("/_fake/fault", "{\"route\": \"alarm\", \"delay\": 2.5, \"status\": 500}");
        ck_assert_int_eq(azi3_window_expiration(s, A_2026 + 2 * USEC_PER_HOUR + AZI3_DEFAULT_SETTLE, msg, sizeof(msg)),
                         AZI3_RESULT_RETRY);
        ck_assert_msg(strstr(msg, "6 sessions open, 6 windows expired, 4 alarms posted, 2 alarms still owed"), "%s", msg);
        ck_assert_msg(strstr(msg, "(and 1 more errors, see the log)"), "%s", msg);
        ck_assert_uint_eq(count_route("alarm", &refs), 6);
        ck_assert_uint_eq(refs, 6);

        ck_assert_int_eq(azi3_window_expiration(s, A_2026 + 2 * USEC_PER_HOUR + 2 * AZI3_DEFAULT_SETTLE, msg,
                                                sizeof(msg)), AZI3_RESULT_OK);
        ck_assert_str_eq(msg, "6 sessions open, 2 alarms posted");
        ck_assert_uint_eq(count_route("alarm", &refs), 8);
        ck_assert_uint_eq(refs, 6);
        /* and none is owed any more */
        ck_assert_int_eq(azi3_window_expiration(s, A_2026 + 2 * USEC_PER_HOUR + 3 * AZI3_DEFAULT_SETTLE, msg,
                                                sizeof(msg)), AZI3_RESULT_OK);
        ck_assert_str_eq(msg, "6 sessions open");
        ck_assert_uint_eq(count_route("alarm", NULL), 8);
}
END_TEST

/* A store write that fails while a session owes an alarm costs that session its step, not the
 * run: the others' alarms are posted, its own stay owed and go out once the store takes writes
 * (the judgement once freed the owed list it had read twice on this path: the run aborted). */
START_TEST(test_a_store_failure_fails_one_session_not_the_run) {
        /* the alarms held at t1 are still worth posting at t2 */
        _cleanup_(azi3_config_freep) azi3_config *c = make_config_many(2, "max_alarm_age: 24h\n", 4, "5s");
        _cleanup_(azi3_service_freep) azi3_service *s = NULL;
        char msg[AZI3_MESSAGE_MAX];
        usec_t t1 = A_2026 + 2 * USEC_PER_HOUR + AZI3_DEFAULT_SETTLE, t2 = t1 + 2 * USEC_PER_HOUR + AZI3_DEFAULT_SETTLE;
        size_t refs = 0;
        sqlite3 *db = NULL;

        ck_assert_int_eq(azi3_service_new(c, quiet_log, NULL, msg, sizeof(msg), &s), 0);
        ck_assert_int_eq(azi3_monitoring_scheduler(s, A_2026, msg, sizeof(msg)), AZI3_RESULT_OK);
        control("/_fake/reset", NULL);
        /* the history cannot be read: both first windows close, their alarms held, owed */
        control("/_fake/fault", "{\"route\": \"replay\", \"status\": 503, \"count\": 2}");
        ck_assert_int_eq(azi3_window_expiration(s, t1, msg, sizeof(msg)), AZI3_RESULT_RETRY);
        ck_assert_msg(strstr(msg, "2 windows expired") && strstr(msg, "2 alarms still owed"), "%s", msg);
        ck_assert_uint_eq(count_route("alarm", NULL), 0);

        /* robot 1001's next window cannot be opened: its whole step is undone */
        ck_assert_int_eq(sqlite3_open(store_path, &db), SQLITE_OK);
        ck_assert_int_eq(sqlite3_exec(db, "CREATE TRIGGER no_open BEFORE INSERT ON windows "
                                          "WHEN NEW.session_id = (SELECT id FROM sessions WHERE robot_id = 1001) "
                                          "BEGIN SELECT RAISE(ABORT, 'the disk is full, say'); END",
                                      NULL, NULL, NULL), SQLITE_OK);
        ck_assert_int_eq(azi3_window_expiration(s, t2, msg, sizeof(msg)), AZI3_RESULT_FAIL);
        ck_assert_msg(strstr(msg, "2 sessions open, 1 window expired, 2 alarms posted"), "%s", msg);
        ck_assert_msg(strstr(msg, "robot 1001") && strstr(msg, "expiration step failed") &&
                      strstr(msg, "the disk is full, say"), "%s", msg);
        ck_assert_uint_eq(count_route("alarm", &refs), 2);

        ck_assert_int_eq(sqlite3_exec(db, "DROP TRIGGER no_open", NULL, NULL, NULL), SQLITE_OK);
        sqlite3_close(db);
        ck_assert_int_eq(azi3_window_expiration(s, t2 + USEC_PER_MINUTE, msg, sizeof(msg)), AZI3_RESULT_OK);
        ck_assert_msg(strstr(msg, "1 window expired, 2 alarms posted"), "%s", msg);
        ck_assert_uint_eq(count_route("alarm", &refs), 4);
        ck_assert_uint_eq(refs, 4);
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
        tcase_add_test(tc, test_alarms_in_parallel_bounded);
        tcase_add_test(tc, test_robot_calls_in_order);
        tcase_add_test(tc, test_failed_alarm_stays_owed_others_posted);
        tcase_add_test(tc, test_owed_alarm_of_window_opened_by_event);
        tcase_add_test(tc, test_a_store_failure_fails_one_session_not_the_run);
        suite_add_tcase(s, tc);

        SRunner *sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        peer_stop(&fake);
        return failed == 0 ? 0 : 1;
}
