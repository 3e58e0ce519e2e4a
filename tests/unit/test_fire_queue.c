/* SPDX-License-Identifier: MIT */
/* The pure parts of overload handling: the fire queue (oldest instant first, earliest deadline
 * first) and the misfire rules (deadlines, and which instants a late daemon missed). */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "basic/diag.h"
#include "core/fire-queue.h"
#include "core/misfire.h"
#include "core/registry.h"

#define S USEC_PER_SEC

START_TEST(test_queue_order) {
        fire_queue q = FIRE_QUEUE_INIT;
        queued_fire *f;

        ck_assert_ptr_null(fire_queue_oldest(&q));
        ck_assert_ptr_null(fire_queue_first_deadline(&q));
        /* pushed out of order; deadlines in another order than the instants */
        ck_assert_int_eq(fire_queue_push(&q, "c", RUN_TRIGGER_SCHEDULE, 30 * S, 31 * S), 0);
        ck_assert_int_eq(fire_queue_push(&q, "a", RUN_TRIGGER_SCHEDULE, 10 * S, 100 * S), 0);
        ck_assert_int_eq(fire_queue_push(&q, "b", RUN_TRIGGER_SCHEDULE, 20 * S, USEC_INFINITY), 0);
        ck_assert_int_eq(fire_queue_push(&q, "a2", RUN_TRIGGER_SCHEDULE, 10 * S, 11 * S), 0);
        ck_assert_uint_eq(fire_queue_size(&q), 4);

        f = fire_queue_first_deadline(&q);
        ck_assert_str_eq(f->job, "a2");
        /* taken by deadline: gone from the instant order too */
        fire_queue_take(&q, f);
        queued_fire_free(f);
        ck_assert_str_eq(fire_queue_first_deadline(&q)->job, "c");

        /* the oldest instant first; equal instants in the order pushed */
        const char *want[] = { "a", "b", "c" };
        for (size_t i = 0; i < 3; i++) {
                f = fire_queue_oldest(&q);
                ck_assert_str_eq(f->job, want[i]);
                fire_queue_take(&q, f);
                queued_fire_free(f);
        }
        ck_assert_uint_eq(fire_queue_size(&q), 0);
        ck_assert_ptr_null(fire_queue_first_deadline(&q));
        fire_queue_done(&q);
}
END_TEST

START_TEST(test_queue_ties_and_done) {
        fire_queue q = FIRE_QUEUE_INIT;
        char name[16];

        for (int i = 0; i < 1000; i++) {
                snprintf(name, sizeof(name), "j%d", i);
                ck_assert_int_eq(fire_queue_push(&q, name, RUN_TRIGGER_SCHEDULE, (usec_t) (i % 10) * S, 60 * S), 0);
        }
        /* ten instants, a hundred fires each: by instant, then as pushed */
        for (int i = 0; i < 1000; i++) {
                queued_fire *f = fire_queue_oldest(&q);
                int want = (i / 100) + (i % 100) * 10;
                snprintf(name, sizeof(name), "j%d", want);
                ck_assert_str_eq(f->job, name);
                ck_assert_uint_eq(f->scheduled, (usec_t) (i / 100) * S);
                if (i == 500)
                        break;
                fire_queue_take(&q, f);
                queued_fire_free(f);
        }
        /* what is left is freed with the queue */
        fire_queue_done(&q);
        ck_assert_uint_eq(fire_queue_size(&q), 0);
        ck_assert_ptr_null(queued_fire_free(NULL));
}
END_TEST

START_TEST(test_deadline) {
        /* auto: until the next instant (plus random_delay) */
        ck_assert_uint_eq(misfire_deadline(60 * S, 120 * S, MISFIRE_AUTO, 0), 120 * S);
        ck_assert_uint_eq(misfire_deadline(60 * S, 120 * S, MISFIRE_AUTO, 5 * S), 125 * S);
        ck_assert_uint_eq(misfire_deadline(60 * S, USEC_INFINITY, MISFIRE_AUTO, 0), USEC_INFINITY);
        /* a duration: from the instant, whatever the next */
        ck_assert_uint_eq(misfire_deadline(60 * S, 120 * S, 10 * S, 0), 70 * S);
        ck_assert_uint_eq(misfire_deadline(60 * S, USEC_INFINITY, 10 * S, 2 * S), 72 * S);
        ck_assert_uint_eq(misfire_deadline(USEC_INFINITY - 1, USEC_INFINITY, 10 * S, 0), USEC_INFINITY);
}
END_TEST

/* every 10 s from 0, ending at 100 s */
static int every10(const void *userdata, usec_t after, usec_t *ret) {
        usec_t n = (after / (10 * S) + 1) * 10 * S;
        if (n > 100 * S)
                return -ERANGE;
        *ret = n;
        return 0;
}

static int failing(const void *userdata, usec_t after, usec_t *ret) {
        return -EINVAL;
}

START_TEST(test_scan) {
        misfire_range r;
        usec_t next;

        /* on time, or late within the threshold: nothing missed, the fire itself goes */
        ck_assert_int_eq(misfire_scan(every10, NULL, 20 * S, MISFIRE_AUTO, 0, 25 * S, &r, &next), 0);
        ck_assert_uint_eq(r.count, 0);
        ck_assert_uint_eq(next, 20 * S);
        ck_assert_int_eq(misfire_scan(every10, NULL, 20 * S, MISFIRE_AUTO, 0, 30 * S, &r, &next), 0);
        ck_assert_uint_eq(r.count, 0);
        ck_assert_uint_eq(next, 20 * S);
        /* 35 s late at 20 s: 20, 30, 40 are missed (each's next is due), 50 still in time */
        ck_assert_int_eq(misfire_scan(every10, NULL, 20 * S, MISFIRE_AUTO, 0, 55 * S, &r, &next), 0);
        ck_assert_uint_eq(r.count, 3);
        ck_assert_uint_eq(r.first, 20 * S);
        ck_assert_uint_eq(r.last, 40 * S);
        ck_assert_uint_eq(r.before_last, 30 * S);
        ck_assert_uint_eq(next, 50 * S);
        /* random_delay widens the deadline */
        ck_assert_int_eq(misfire_scan(every10, NULL, 20 * S, MISFIRE_AUTO, 6 * S, 55 * S, &r, &next), 0);
        ck_assert_uint_eq(r.count, 2);
        ck_assert_uint_eq(next, 40 * S);
        /* a 3 s threshold: 50 is missed too, 60 comes later */
        ck_assert_int_eq(misfire_scan(every10, NULL, 20 * S, 3 * S, 0, 55 * S, &r, &next), 0);
        ck_assert_uint_eq(r.count, 4);
        ck_assert_uint_eq(r.last, 50 * S);
        ck_assert_uint_eq(next, 60 * S);
        /* a 30 s threshold: only 20 is missed; 30 and after may still run */
        ck_assert_int_eq(misfire_scan(every10, NULL, 20 * S, 30 * S, 0, 55 * S, &r, &next), 0);
        ck_assert_uint_eq(r.count, 1);
        ck_assert_uint_eq(next, 30 * S);
        /* past the schedule's end: the last instant has no next, so auto never misses it */
        ck_assert_int_eq(misfire_scan(every10, NULL, 90 * S, MISFIRE_AUTO, 0, 500 * S, &r, &next), 0);
        ck_assert_uint_eq(r.count, 1);
        ck_assert_uint_eq(next, 100 * S);
        ck_assert_int_eq(misfire_scan(every10, NULL, 90 * S, 1 * S, 0, 500 * S, &r, &next), 0);
        ck_assert_uint_eq(r.count, 2);
        ck_assert_uint_eq(next, USEC_INFINITY);
        /* the schedule's errors come back */
        ck_assert_int_eq(misfire_scan(failing, NULL, 90 * S, 1 * S, 0, 500 * S, &r, &next), -EINVAL);
}
END_TEST

static int every1(const void *userdata, usec_t after, usec_t *ret) {
        *ret = (after / S + 1) * S;
        return 0;
}

START_TEST(test_scan_bounded) {
        misfire_range r;
        usec_t next, now = (MISFIRE_SCAN_MAX + 5000) * S;

        /* a long stall is scanned in bounded steps, and the steps add up to every instant */
        ck_assert_int_eq(misfire_scan(every1, NULL, 0, MISFIRE_AUTO, 0, now, &r, &next), 1);
        ck_assert_uint_eq(r.count, MISFIRE_SCAN_MAX);
        ck_assert_uint_eq(r.first, 0);
        ck_assert_uint_eq(next, (usec_t) MISFIRE_SCAN_MAX * S);
        uint64_t total = r.count;
        ck_assert_int_eq(misfire_scan(every1, NULL, next, MISFIRE_AUTO, 0, now, &r, &next), 0);
        total += r.count;
        ck_assert_uint_eq(r.first, (usec_t) MISFIRE_SCAN_MAX * S);
        /* the instant at now - 1 s is the last one still in time (its next is not past) */
        ck_assert_uint_eq(next, now - S);
        ck_assert_uint_eq(total, MISFIRE_SCAN_MAX + 5000 - 1);
}
END_TEST

START_TEST(test_scan_every) {
        misfire_range r;
        usec_t next;

        /* on time */
        misfire_scan_every(10 * S, 20 * S, MISFIRE_AUTO, 0, 20 * S, &r, &next);
        ck_assert_uint_eq(r.count, 0);
        ck_assert_uint_eq(next, 20 * S);
        /* exactly at the deadline: still in time */
        misfire_scan_every(10 * S, 20 * S, MISFIRE_AUTO, 0, 30 * S, &r, &next);
        ck_assert_uint_eq(r.count, 0);
        misfire_scan_every(10 * S, 20 * S, MISFIRE_AUTO, 0, 30 * S + 1, &r, &next);
        ck_assert_uint_eq(r.count, 1);
        ck_assert_uint_eq(next, 30 * S);
        /* the same answers as the generic scan */
        for (usec_t now = 20 * S; now < 80 * S; now += S / 4)
                for (usec_t thr = 0; thr <= 30 * S; thr += 7 * S) {
                        misfire_range a, b;
                        usec_t na, nb;
                        misfire_scan_every(10 * S, 20 * S, thr, 2 * S, now, &a, &na);
                        ck_assert_int_eq(misfire_scan(every10, NULL, 20 * S, thr, 2 * S, now, &b, &nb), 0);
                        ck_assert_uint_eq(a.count, b.count);
                        ck_assert_uint_eq(na, nb);
                        if (a.count > 0) {
                                ck_assert_uint_eq(a.first, b.first);
                                ck_assert_uint_eq(a.last, b.last);
                        }
                        if (a.count > 1)
                                ck_assert_uint_eq(a.before_last, b.before_last);
                }
        /* a week's suspend of a per-second job: counted, not walked */
        misfire_scan_every(S, 0, MISFIRE_AUTO, 0, 7 * 86400 * S, &r, &next);
        ck_assert_uint_eq(r.count, 7 * 86400 - 1);
        ck_assert_uint_eq(next, 7 * 86400 * S - S);
}
END_TEST

static registry *load(const char *text, diag_list *d, int *ret) {
        char path[] = "/tmp/test-misfire-XXXXXX";
        int fd = mkstemp(path);
        registry *r = NULL;
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t) strlen(text));
        close(fd);
        *ret = registry_load(path, REGISTRY_IGNORE_PLUGINS, &r, d);
        unlink(path);
        return r;
}

START_TEST(test_registry_key) {
        diag_list d = {};
        int k;
        registry *r = load("scheduler:\n"
                           "  misfire_threshold: 60s\n"
                           "jobs:\n"
                           "  - { name: a, plugin: x.so, schedule: \"@hourly\" }\n"
                           "  - { name: b, plugin: x.so, schedule: \"@hourly\", misfire_threshold: auto }\n"
                           "  - { name: c, plugin: x.so, schedule: \"@hourly\", misfire_threshold: 5m }\n",
                           &d, &k);
        ck_assert_int_eq(k, 0);
        ck_assert_uint_eq(r->misfire_threshold, 60 * S);
        ck_assert_uint_eq(r->jobs[0]->misfire_threshold, MISFIRE_INHERIT);
        ck_assert_uint_eq(r->jobs[1]->misfire_threshold, MISFIRE_AUTO);
        ck_assert_uint_eq(r->jobs[2]->misfire_threshold, 300 * S);
        registry_free(r);
        diag_list_clear(&d);

        /* the default is auto */
        r = load("jobs:\n  - { name: a, plugin: x.so, schedule: \"@hourly\" }\n", &d, &k);
        ck_assert_int_eq(k, 0);
        ck_assert_uint_eq(r->misfire_threshold, MISFIRE_AUTO);
        registry_free(r);
        diag_list_clear(&d);

        /* zero, a word, a list: each reported with what is expected */
        r = load("scheduler:\n"
                 "  misfire_threshold: 0\n"
                 "jobs:\n"
                 "  - { name: a, plugin: x.so, schedule: \"@hourly\", misfire_threshold: soon }\n"
                 "  - { name: b, plugin: x.so, schedule: \"@hourly\", misfire_threshold: [1s] }\n",
                 &d, &k);
        ck_assert_int_lt(k, 0);
        ck_assert_ptr_null(r);
        ck_assert_uint_eq(d.n, 3);
        ck_assert_ptr_nonnull(strstr(d.items[0].message, "scheduler.misfire_threshold"));
        ck_assert_ptr_nonnull(strstr(d.items[0].message, "greater than zero"));
        ck_assert_ptr_nonnull(strstr(d.items[1].message, "misfire_threshold \"soon\""));
        ck_assert_ptr_nonnull(strstr(d.items[2].message, "auto or a duration"));
        diag_list_clear(&d);
}
END_TEST

int main(void) {
        Suite *s = suite_create("fire_queue");
        TCase *tc = tcase_create("core");
        SRunner *sr;
        int failed;

        tcase_add_test(tc, test_queue_order);
        tcase_add_test(tc, test_queue_ties_and_done);
        tcase_add_test(tc, test_deadline);
        tcase_add_test(tc, test_scan);
        tcase_add_test(tc, test_scan_bounded);
        tcase_add_test(tc, test_scan_every);
        tcase_add_test(tc, test_registry_key);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
