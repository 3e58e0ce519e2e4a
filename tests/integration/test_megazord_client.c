/* SPDX-License-Identifier: MIT */
/* The Megazord client (jobs/azi3/megazord.c) against the fake of tests/fakes/megazord.py. */
#include <check.h>
#include <inttypes.h>
#include <limits.h>
#include <jansson.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "azi3/megazord.h"
#include "azi3/megazord-multi.h"
#include "peer.h"
#include "azi3/uuid.h"

static peer fake;
static char base[256];

static void reset_fake(void) {
        char url[300];
        long status;
        snprintf(url, sizeof(url), "%s/_fake/reset", base);
        ck_assert_int_eq(peer_http("POST", url, NULL, &status, NULL), 0);
        ck_assert_int_eq(status, 204);
}

static void control(const char *path, const char *body) {
        char url[300];
        _cleanup_free_ char *resp = NULL;
        long status;
        snprintf(url, sizeof(url), "%s%s", base, path);
        ck_assert_int_eq(peer_http("POST", url, body, &status, &resp), 0);
        ck_assert_msg(status == 204, "control %s: HTTP %ld %s", path, status, resp ? resp : "");
}

/* The requests the fake recorded (a new reference). */
static json_t *recorded(void) {
        char url[300];
        _cleanup_free_ char *resp = NULL;
        long status;
        json_t *j;
        snprintf(url, sizeof(url), "%s/_fake/requests", base);
        ck_assert_int_eq(peer_http("GET", url, NULL, &status, &resp), 0);
        ck_assert_int_eq(status, 200);
        j = json_loads(resp, 0, NULL);
        ck_assert(json_is_array(j));
        return j;
}

static const char *header(const json_t *req, const char *name) {
        const char *k;
        json_t *v;
        json_object_foreach(json_object_get(req, "headers"), k, v)
                if (strcasecmp(k, name) == 0)
                        return json_string_value(v);
        return NULL;
}

static megazord *client(usec_t timeout) {
        megazord *m = NULL;
        ck_assert_int_eq(megazord_new(base, timeout, &m), 0);
        return m;
}

/* 2026-03-29T20:00:00Z */
#define UNTIL_2026 (UINT64_C(1774814400) * USEC_PER_SEC)

START_TEST(test_subscribe) {
        _cleanup_(megazord_freep) megazord *m = client(5 * USEC_PER_SEC);
        azi3_call call;
        int64_t id = -1;

        ck_assert_int_eq(megazord_subscribe(m, 42, "TOILET_ACTIVITY", UNTIL_2026, &call, &id), 0);
        ck_assert_int_ge(id, 0);
        ck_assert_int_eq(call.status, 201);
        ck_assert_str_eq(call.message, "");
        ck_assert(azi3_uuid_is_v4(call.call_ref));

        json_auto_t *reqs = recorded();
        ck_assert_int_eq(json_array_size(reqs), 1);
        json_t *r = json_array_get(reqs, 0);
        ck_assert_str_eq(json_string_value(json_object_get(r, "method")), "POST");
        ck_assert_str_eq(json_string_value(json_object_get(r, "path")), "/internal/v1/events/robots/42/subscriptions");
        ck_assert_str_eq(header(r, "Call-Ref"), call.call_ref);
        ck_assert_pstr_eq(header(r, "Expect"), NULL);
        json_auto_t *body = json_loads(json_string_value(json_object_get(r, "body")), 0, NULL);
        ck_assert_str_eq(json_string_value(json_object_get(body, "until")), "2026-03-29T20:00:00.000Z");
        ck_assert_str_eq(json_string_value(json_array_get(json_object_get(body, "eventNames"), 0)), "TOILET_ACTIVITY");
}
END_TEST

START_TEST(test_unsubscribe_and_404) {
        _cleanup_(megazord_freep) megazord *m = client(5 * USEC_PER_SEC);
        azi3_call call;
        char first_ref[AZI3_UUID_STRING_MAX];
        int64_t id;

        ck_assert_int_eq(megazord_subscribe(m, 42, "TOILET_ACTIVITY", UNTIL_2026, &call, &id), 0);
        ck_assert_int_eq(megazord_unsubscribe(m, 42, id, &call), 0);
        ck_assert_int_eq(call.status, 204);
        memcpy(first_ref, call.call_ref, sizeof(first_ref));
        /* Already gone counts as done, and says so. */
        ck_assert_int_eq(megazord_unsubscribe(m, 42, id, &call), 1);
        ck_assert_int_eq(call.status, 404);
        ck_assert_str_ne(first_ref, call.call_ref);

        json_auto_t *reqs = recorded();
        ck_assert_int_eq(json_array_size(reqs), 3);
        for (size_t i = 0; i < 3; i++)
                ck_assert(azi3_uuid_is_v4(header(json_array_get(reqs, i), "Call-Ref")));
        json_t *del = json_array_get(reqs, 1);
        ck_assert_str_eq(json_string_value(json_object_get(del, "method")), "DELETE");
        char path[128];
        snprintf(path, sizeof(path), "/internal/v1/events/robots/42/subscriptions/%lld", (long long) id);
        ck_assert_str_eq(json_string_value(json_object_get(del, "path")), path);
}
END_TEST

START_TEST(test_replay) {
        _cleanup_(megazord_freep) megazord *m = client(5 * USEC_PER_SEC);
        azi3_incoming *v = NULL;
        size_t n = 0;
        azi3_call call;

        control("/_fake/incomings",
                "[{\"id\":9001,\"robotId\":42,\"eventName\":\"TOILET_ACTIVITY\",\"providerName\":\"sensara-adaptor\","
                "\"createdAt\":\"2026-03-29T07:41:12.250Z\"},"
                "{\"id\":9000,\"robotId\":42,\"eventName\":\"TOILET_ACTIVITY\",\"providerName\":\"sensara-adaptor\","
                "\"createdAt\":\"2026-03-29T04:00:00.000Z\"},"
                "{\"id\":9002,\"robotId\":43,\"eventName\":\"TOILET_ACTIVITY\",\"providerName\":\"x\","
                "\"createdAt\":\"2026-03-29T08:00:00.000Z\"},"
                "{\"id\":9003,\"robotId\":42,\"eventName\":\"OTHER EVENT\",\"providerName\":\"x\","
                "\"createdAt\":\"2026-03-29T08:00:00.000Z\"}]");

        /* created_since 2026-03-29T05:00:00.9Z: whole seconds are sent */
        usec_t since = UINT64_C(1774760400) * USEC_PER_SEC + 900000;
        ck_assert_int_eq(megazord_replay(m, 42, "TOILET_ACTIVITY", since, &call, &v, &n), 0);
        ck_assert_uint_eq(n, 1);
        ck_assert_int_eq(v[0].id, 9001);
        ck_assert_int_eq(v[0].robot_id, 42);
        ck_assert_str_eq(v[0].event_name, "TOILET_ACTIVITY");
        ck_assert_str_eq(v[0].provider_name, "sensara-adaptor");
        ck_assert_uint_eq(v[0].created_at, UINT64_C(1774770072) * USEC_PER_SEC + 250000);
        v = azi3_incomings_free(v, n);

        /* The event name is escaped in the query. */
        ck_assert_int_eq(megazord_replay(m, 42, "OTHER EVENT", 0, &call, &v, &n), 0);
        ck_assert_uint_eq(n, 1);
        ck_assert_int_eq(v[0].id, 9003);
        v = azi3_incomings_free(v, n);

        /* Nothing to replay. */
        ck_assert_int_eq(megazord_replay(m, 7, "TOILET_ACTIVITY", 0, &call, &v, &n), 0);
        ck_assert_uint_eq(n, 0);
        ck_assert_ptr_null(v);

        json_auto_t *reqs = recorded();
        json_t *q = json_object_get(json_array_get(reqs, 0), "query");
        ck_assert_str_eq(json_string_value(json_object_get(q, "event_name")), "TOILET_ACTIVITY");
        ck_assert_str_eq(json_string_value(json_object_get(q, "created_since")), "1774760400");
        q = json_object_get(json_array_get(reqs, 1), "query");
        ck_assert_str_eq(json_string_value(json_object_get(q, "event_name")), "OTHER EVENT");
}
END_TEST

START_TEST(test_post_alarm) {
        _cleanup_(megazord_freep) megazord *m = client(5 * USEC_PER_SEC);
        azi3_call call;
        int64_t id = -1;

        ck_assert_int_eq(megazord_post_alarm(m, 42, "NO_TOILET_ACTIVITY_ALARM", 10, "window-42-7", &call, &id), 0);
        ck_assert_int_ge(id, 0);
        ck_assert_int_eq(call.status, 201);

        json_auto_t *reqs = recorded();
        json_t *r = json_array_get(reqs, 0);
        ck_assert_str_eq(json_string_value(json_object_get(r, "path")), "/internal/v1/events/robots/42/incomings");
        ck_assert_str_eq(header(r, "Call-Ref"), call.call_ref);
        ck_assert_str_eq(header(r, "Content-Type"), "application/json");
        json_auto_t *body = json_loads(json_string_value(json_object_get(r, "body")), 0, NULL);
        ck_assert_str_eq(json_string_value(json_object_get(body, "providerName")), "azi-3-status-jobs");
        ck_assert_str_eq(json_string_value(json_object_get(body, "eventName")), "NO_TOILET_ACTIVITY_ALARM");
        ck_assert_int_eq(json_integer_value(json_object_get(body, "level")), 10);
        ck_assert_str_eq(json_string_value(json_object_get(body, "referenceId")), "window-42-7");
}
END_TEST

/* --- the driver's commit hook (issue 16: window-expiration commits its batched store writes
 * there, so a call whose claim could not be committed never leaves, and many answers' writes
 * share one commit) --- */

typedef struct hook_state {
        unsigned rounds, fail_from;  /* the hook fails from its FAIL_FROM-th call on */
        int outcome[48];             /* per robot: 1 not completed, else DONE's reply->r */
        bool chained;
        int64_t slow_robot;          /* its answer is delayed: ... */
        unsigned rounds_while_slow;  /* ... commits after the next robot's answer, before its */
} hook_state;

static int hook_before_send(megazord_multi *mm, void *userdata) {
        hook_state *h = userdata;
        (void) mm;
        if (h->slow_robot && h->outcome[h->slow_robot] == 1 && h->outcome[h->slow_robot + 1] != 1)
                h->rounds_while_slow++;
        return ++h->rounds >= h->fail_from ? -EIO : 0;
}

static void hook_done(megazord_multi *mm, megazord_reply *reply, void *userdata) {
        hook_state *h = userdata;
        h->outcome[reply->robot_id] = reply->r;
        /* robot 1's answer queues a call for robot 4, after the commit that let robot 1's go */
        if (reply->robot_id == 1 && !h->chained) {
                h->chained = true;
                ck_assert_int_eq(megazord_multi_post_alarm(mm, 4, "NO_TOILET_ACTIVITY_ALARM", 10, "ref-4", hook_done, h),
                                 0);
        }
}

static void hook_reset(hook_state *h, unsigned fail_from) {
        *h = (hook_state) { .fail_from = fail_from };
        for (size_t i = 0; i < ELEMENTSOF(h->outcome); i++)
                h->outcome[i] = 1;
}

static size_t count_recorded(const char *route) {
        json_auto_t *reqs = recorded();
        size_t i, n = 0;
        json_t *v;
        json_array_foreach(reqs, i, v) {
                const char *method = json_string_value(json_object_get(v, "method"));
                if (streq(route, "replay") ? streq(method, "GET") : streq(method, "POST"))
                        n++;
        }
        return n;
}

START_TEST(test_multi_before_send) {
        _cleanup_(megazord_freep) megazord *m = client(5 * USEC_PER_SEC);
        _cleanup_(megazord_multi_freep) megazord_multi *mm = NULL;
        hook_state h;

        /* Robots 1-3 queued before the first commit; robot 4 by robot 1's answer. Every commit
         * after the first fails: robot 4's post, decided on lost writes, completes unsent with
         * the error; robots 1-3 were covered by the first commit and all go, though only two fit
         * at once (max_parallel 2). */
        hook_reset(&h, 2);
        ck_assert_int_eq(megazord_multi_new(m, 2, &mm), 0);
        megazord_multi_set_before_send(mm, hook_before_send, &h);
        for (int64_t robot = 1; robot <= 3; robot++) {
                char ref[16];
                snprintf(ref, sizeof(ref), "ref-%" PRId64, robot);
                ck_assert_int_eq(megazord_multi_post_alarm(mm, robot, "NO_TOILET_ACTIVITY_ALARM", 10, ref, hook_done, &h), 0);
        }
        ck_assert_int_eq(megazord_multi_run(mm), 0);
        ck_assert_int_ge(h.rounds, 2);
        for (int64_t robot = 1; robot <= 3; robot++)
                ck_assert_msg(h.outcome[robot] == 0, "robot %d: %d", (int) robot, h.outcome[robot]);
        ck_assert_int_eq(h.outcome[4], -EIO);
        ck_assert_uint_eq(count_recorded("alarm"), 3);
        json_auto_t *reqs = recorded();
        for (size_t i = 0; i < json_array_size(reqs); i++) {
                const char *path = json_string_value(json_object_get(json_array_get(reqs, i), "path"));
                ck_assert_msg(!streq(path, "/internal/v1/events/robots/4/incomings"), "sent: %s", path);
        }

        /* A replay only reads: it waits for no commit, and a failed one does not stop it. Every
         * commit fails here: the replays all go, the post queued with them does not. */
        reset_fake();
        hook_reset(&h, 1);
        h.chained = true;
        for (int64_t robot = 1; robot <= 6; robot++)
                ck_assert_int_eq(megazord_multi_replay(mm, robot, "TOILET_ACTIVITY", UNTIL_2026, hook_done, &h), 0);
        ck_assert_int_eq(megazord_multi_post_alarm(mm, 7, "NO_TOILET_ACTIVITY_ALARM", 10, "ref-7", hook_done, &h), 0);
        ck_assert_int_eq(megazord_multi_run(mm), 0);
        for (int64_t robot = 1; robot <= 6; robot++)
                ck_assert_msg(h.outcome[robot] == 0, "replay of robot %d: %d", (int) robot, h.outcome[robot]);
        ck_assert_int_eq(h.outcome[7], -EIO);
        ck_assert_uint_eq(count_recorded("replay"), 6);
        ck_assert_uint_eq(count_recorded("alarm"), 0);

        /* One commit covers every call queued before it: 40 posts, 4 at a time, with every
         * commit after the first failing, all go. */
        reset_fake();
        hook_reset(&h, 2);
        h.chained = true;
        mm = megazord_multi_free(mm);
        ck_assert_int_eq(megazord_multi_new(m, 4, &mm), 0);
        megazord_multi_set_before_send(mm, hook_before_send, &h);
        for (int64_t robot = 1; robot <= 40; robot++)
                ck_assert_int_eq(megazord_multi_post_alarm(mm, robot, "NO_TOILET_ACTIVITY_ALARM", 10, "ref", hook_done, &h), 0);
        ck_assert_int_eq(megazord_multi_run(mm), 0);
        for (int64_t robot = 1; robot <= 40; robot++)
                ck_assert_msg(h.outcome[robot] == 0, "robot %d: %d", (int) robot, h.outcome[robot]);
        ck_assert_uint_eq(count_recorded("alarm"), 40);

        /* Writes are not held while the run waits on Megazord: robot 2's answer comes at once,
         * robot 1's after 300 ms; the commit of what robot 2's answer wrote comes meanwhile, not
         * after robot 1's answer. */
        reset_fake();
        hook_reset(&h, UINT_MAX);
        h.chained = true;
        h.slow_robot = 1;
        control("/_fake/fault", "{\"route\": \"replay\", \"count\": 1, \"delay\": 0.3}");
        ck_assert_int_eq(megazord_multi_replay(mm, 1, "TOILET_ACTIVITY", UNTIL_2026, hook_done, &h), 0);
        ck_assert_int_eq(megazord_multi_replay(mm, 2, "TOILET_ACTIVITY", UNTIL_2026, hook_done, &h), 0);
        ck_assert_int_eq(megazord_multi_run(mm), 0);
        ck_assert_int_eq(h.outcome[1], 0);
        ck_assert_int_eq(h.outcome[2], 0);
        ck_assert_msg(h.rounds_while_slow >= 1, "no commit while the run waited 300 ms on robot 1 (%u commits)",
                      h.rounds);

        /* a cleared hook is not called */
        unsigned rounds = h.rounds;
        megazord_multi_set_before_send(mm, NULL, NULL);
        ck_assert_int_eq(megazord_multi_post_alarm(mm, 5, "NO_TOILET_ACTIVITY_ALARM", 10, "ref", hook_done, &h), 0);
        ck_assert_int_eq(megazord_multi_run(mm), 0);
        ck_assert_int_eq(h.outcome[5], 0);
        ck_assert_uint_eq(h.rounds, rounds);
}
END_TEST

START_TEST(test_5xx_is_transient) {
        _cleanup_(megazord_freep) megazord *m = client(5 * USEC_PER_SEC);
        azi3_call call;
        int64_t id;

        control("/_fake/fault", "{\"route\":\"subscribe\",\"status\":500,\"count\":1}");
        ck_assert_int_eq(megazord_subscribe(m, 42, "TOILET_ACTIVITY", UNTIL_2026, &call, &id), AZI3_TRANSIENT);
        ck_assert_int_eq(call.status, 500);
        ck_assert(azi3_uuid_is_v4(call.call_ref));
        ck_assert_ptr_nonnull(strstr(call.message, "HTTP 500"));
        ck_assert_ptr_nonnull(strstr(call.message, call.call_ref));
        /* The fault was for one call only. */
        ck_assert_int_eq(megazord_subscribe(m, 42, "TOILET_ACTIVITY", UNTIL_2026, &call, &id), 0);

        control("/_fake/fault", "{\"route\":\"unsubscribe\",\"status\":503}");
        ck_assert_int_eq(megazord_unsubscribe(m, 42, id, &call), AZI3_TRANSIENT);
}
END_TEST

START_TEST(test_4xx_is_permanent_with_body) {
        _cleanup_(megazord_freep) megazord *m = client(5 * USEC_PER_SEC);
        azi3_call call;
        int64_t id;

        control("/_fake/fault", "{\"route\":\"alarm\",\"status\":400,\"body\":\"{\\\"message\\\":\\\"level out of range\\\"}\"}");
        ck_assert_int_eq(megazord_post_alarm(m, 42, "NO_TOILET_ACTIVITY_ALARM", 10, "ref", &call, &id), AZI3_PERMANENT);
        ck_assert_int_eq(call.status, 400);
        ck_assert_msg(strstr(call.message, "level out of range"), "message lacks the body: %s", call.message);

        /* 404 is only "already gone" for unsubscribe. */
        control("/_fake/fault", "{\"route\":\"replay\",\"status\":404}");
        azi3_incoming *v;
        size_t n;
        ck_assert_int_eq(megazord_replay(m, 42, "TOILET_ACTIVITY", 0, &call, &v, &n), AZI3_PERMANENT);
        ck_assert_int_eq(call.status, 404);

        /* The fake rejects a bad request by itself (an event name it cannot accept is not
         * possible from the client, so use a 409 injected on unsubscribe). */
        control("/_fake/fault", "{\"route\":\"unsubscribe\",\"status\":409}");
        ck_assert_int_eq(megazord_unsubscribe(m, 42, 1, &call), AZI3_PERMANENT);
}
END_TEST

START_TEST(test_timeout_is_transient) {
        _cleanup_(megazord_freep) megazord *m = client(300 * USEC_PER_MSEC);
        azi3_call call;
        int64_t id;

        control("/_fake/fault", "{\"route\":\"subscribe\",\"delay\":3}");
        ck_assert_int_eq(megazord_subscribe(m, 42, "TOILET_ACTIVITY", UNTIL_2026, &call, &id), AZI3_TRANSIENT);
        ck_assert_int_eq(call.status, 0);
        ck_assert_msg(strstr(call.message, "imed out"), "message does not say timeout: %s", call.message);
}
END_TEST

START_TEST(test_garbage_is_permanent) {
        _cleanup_(megazord_freep) megazord *m = client(5 * USEC_PER_SEC);
        azi3_call call;
        azi3_incoming *v;
        size_t n;
        int64_t id;

        control("/_fake/fault", "{\"route\":\"replay\",\"garbage\":true}");
        ck_assert_int_eq(megazord_replay(m, 42, "TOILET_ACTIVITY", 0, &call, &v, &n), AZI3_PERMANENT);
        ck_assert_int_eq(call.status, 200);
        ck_assert_ptr_nonnull(strstr(call.message, "malformed"));
        ck_assert_ptr_nonnull(strstr(call.message, "[truncated"));

        control("/_fake/fault", "{\"route\":\"subscribe\",\"garbage\":true}");
        ck_assert_int_eq(megazord_subscribe(m, 42, "TOILET_ACTIVITY", UNTIL_2026, &call, &id), AZI3_PERMANENT);
        control("/_fake/fault", "{\"route\":\"alarm\",\"garbage\":true}");
        ck_assert_int_eq(megazord_post_alarm(m, 42, "A", 1, "r", &call, &id), AZI3_PERMANENT);
}
END_TEST

START_TEST(test_connection_refused_is_transient) {
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof(a);
        char url[64];
        azi3_call call;
        int64_t id;
        int fd;

        /* A port that was just free and has no listener. */
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(bind(fd, (struct sockaddr *) &a, sizeof(a)), 0);
        ck_assert_int_eq(getsockname(fd, (struct sockaddr *) &a, &len), 0);
        close(fd);
        snprintf(url, sizeof(url), "http://127.0.0.1:%u/", ntohs(a.sin_port));

        _cleanup_(megazord_freep) megazord *m = NULL;
        ck_assert_int_eq(megazord_new(url, 2 * USEC_PER_SEC, &m), 0);
        ck_assert_int_eq(megazord_subscribe(m, 42, "TOILET_ACTIVITY", UNTIL_2026, &call, &id), AZI3_TRANSIENT);
        ck_assert_int_eq(call.status, 0);
        ck_assert(azi3_uuid_is_v4(call.call_ref));
}
END_TEST

START_TEST(test_bad_arguments) {
        megazord *m = NULL;
        ck_assert_int_eq(megazord_new("ftp://x", USEC_PER_SEC, &m), -EINVAL);
        ck_assert_int_eq(megazord_new("http://x", 0, &m), -EINVAL);
        ck_assert_ptr_null(m);
        ck_assert_ptr_null(megazord_free(NULL));
}
END_TEST

int main(void) {
        char script[512];
        int failed;

        if (!peer_program_works("python3", "--version")) {
                fprintf(stderr, "python3 is not installed: skipping the Megazord client tests\n");
                return 77;
        }
        snprintf(script, sizeof(script), "%s/megazord.py", peer_fakes_dir());
        char *argv[] = { "python3", script, NULL };
        int r = peer_start(argv, &fake);
        if (r < 0) {
                fprintf(stderr, "cannot start the fake Megazord %s: %s\n", script, strerror(-r));
                return 1;
        }
        snprintf(base, sizeof(base), "%s", json_string_value(json_object_get(fake.ready, "base_url")));

        Suite *s = suite_create("megazord_client");
        TCase *tc = tcase_create("against_fake");
        tcase_add_checked_fixture(tc, reset_fake, NULL);
        tcase_set_timeout(tc, 30);
        tcase_add_test(tc, test_subscribe);
        tcase_add_test(tc, test_unsubscribe_and_404);
        tcase_add_test(tc, test_replay);
        tcase_add_test(tc, test_multi_before_send);
        tcase_add_test(tc, test_post_alarm);
        tcase_add_test(tc, test_5xx_is_transient);
        tcase_add_test(tc, test_4xx_is_permanent_with_body);
        tcase_add_test(tc, test_timeout_is_transient);
        tcase_add_test(tc, test_garbage_is_permanent);
        tcase_add_test(tc, test_connection_refused_is_transient);
        tcase_add_test(tc, test_bad_arguments);
        suite_add_tcase(s, tc);

        SRunner *sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        peer_stop(&fake);
        return failed == 0 ? 0 : 1;
}
