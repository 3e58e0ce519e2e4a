/* SPDX-License-Identifier: MIT */
/* Bugs libFuzzer found (tests/fuzz), each pinned down where it was fixed. The reproducers are
 * also in tests/fuzz/corpus and replayed by tests/fuzz/replay_*. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include "basic/duration.h"
#include "basic/schedule.h"
#include "basic/timefmt.h"
#include "basic/tz.h"

/* duration.c: the guard meant to keep USEC_INFINITY unreachable wrapped around when one term
 * was UINT64_MAX microseconds, so "18446744073709551615us" parsed as "no timeout", which
 * duration_format() writes as "infinity" and nothing parses back. */
START_TEST(test_duration_infinity_unreachable) {
        usec_t u = 0;
        parse_error e = {};

        ck_assert_int_lt(duration_parse("18446744073709551615us", &u, &e), 0);
        ck_assert_str_ne(e.message, "");
        ck_assert_int_lt(duration_parse("18446744073709551614us 1us", &u, NULL), 0);
        ck_assert_int_eq(duration_parse("18446744073709551614us", &u, NULL), 0);
        ck_assert_uint_eq(u, USEC_INFINITY - 1);
}
END_TEST

/* schedule.c: a fixed-time expression whose time falls in a DST gap fires at the end of the
 * gap; computing the next fire from the last second before the gap skipped that fire, because
 * the search then starts exactly at the transition. */
START_TEST(test_schedule_gap_fire_from_transition) {
        schedule s;
        tz *z;
        int64_t next;

        ck_assert_int_eq(tz_load("Europe/Amsterdam", &z), 0);
        ck_assert_int_eq(schedule_parse("30 2 * * *", &s, NULL), 0);
        /* 2026-03-29: clocks jump from 02:00 CET (01:00Z, 1774746000) to 03:00 CEST */
        for (int64_t after = 1774746000 - 3600; after < 1774746000; after += 599) {
                ck_assert_int_eq(schedule_next(&s, z, after, &next), 0);
                ck_assert_int_eq(next, 1774746000);
        }
        ck_assert_int_eq(schedule_next(&s, z, 1774746000 - 1, &next), 0);
        ck_assert_int_eq(next, 1774746000);
        /* from the gap fire itself, the next is 02:30 CEST the day after (00:30Z) */
        ck_assert_int_eq(schedule_next(&s, z, 1774746000, &next), 0);
        ck_assert_int_eq(next, 1774830600);
        /* periodic expressions do not fire in the gap */
        ck_assert_int_eq(schedule_parse("*/30 2 * * *", &s, NULL), 0);
        ck_assert_int_eq(schedule_next(&s, z, 1774746000 - 1, &next), 0);
        ck_assert_int_eq(next, 1774830600 - 1800);
}
END_TEST

/* timefmt.c: a local year-9999 time with an offset west of UTC is an instant in year 10000,
 * which timefmt_rfc3339() writes with five year digits that timefmt_parse() rejects. */
START_TEST(test_timefmt_year_10000_rejected) {
        usec_t t;
        parse_error e = {};

        ck_assert_int_eq(timefmt_parse("9999-12-31T23:59:59.999999-14:00", NULL, &t, &e), -EINVAL);
        ck_assert_str_ne(e.message, "");
        ck_assert_int_eq(timefmt_parse("9999-12-31T23:59:59Z", NULL, &t, NULL), 0);
        ck_assert_uint_eq(t, UINT64_C(253402300799) * USEC_PER_SEC);
}
END_TEST

static Suite *suite(void) {
        Suite *s = suite_create("fuzz_regressions");
        TCase *tc = tcase_create("core");
        tcase_add_test(tc, test_duration_infinity_unreachable);
        tcase_add_test(tc, test_schedule_gap_fire_from_transition);
        tcase_add_test(tc, test_timefmt_year_10000_rejected);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(suite());
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        tz_cache_clear();
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
