/* SPDX-License-Identifier: MIT */
#include <check.h>

#include "basic/line-budget.h"

static unsigned take_n(line_budget *b, unsigned n, usec_t now) {
        unsigned passed = 0;
        for (unsigned i = 0; i < n; i++)
                passed += line_budget_take(b, now);
        return passed;
}

START_TEST(test_burst_then_rate) {
        line_budget b;
        line_budget_init(&b, 100, 10, 1000000);
        /* a flood at one instant: the burst passes, the rest is dropped */
        ck_assert_uint_eq(take_n(&b, 1000, 5 * USEC_PER_SEC), 100);
        ck_assert_uint_eq(b.dropped, 900);
        /* a second later: ten more */
        ck_assert_uint_eq(take_n(&b, 1000, 6 * USEC_PER_SEC), 10);
        /* a fraction of a token is kept, not lost: 10 x 50 ms = 5 lines */
        unsigned passed = 0;
        for (unsigned i = 1; i <= 10; i++)
                passed += take_n(&b, 100, 6 * USEC_PER_SEC + i * 50 * USEC_PER_MSEC);
        ck_assert_uint_eq(passed, 5);
        /* idle for long: the bucket refills to the burst, no further */
        ck_assert_uint_eq(take_n(&b, 1000, 3600 * USEC_PER_SEC), 100);
        ck_assert(!line_budget_capped(&b));
}
END_TEST

START_TEST(test_cap) {
        line_budget b;
        line_budget_init(&b, 50, 1000, 120);
        ck_assert_uint_eq(take_n(&b, 50, 0), 50);
        ck_assert_uint_eq(take_n(&b, 50, USEC_PER_SEC), 50);
        ck_assert(!line_budget_capped(&b));
        ck_assert_uint_eq(take_n(&b, 50, 2 * USEC_PER_SEC), 20);
        ck_assert(line_budget_capped(&b));
        ck_assert_uint_eq(take_n(&b, 50, 100 * USEC_PER_SEC), 0);
        ck_assert_uint_eq(b.passed, 120);
        ck_assert_uint_eq(b.dropped, 80);
}
END_TEST

START_TEST(test_slow_source_never_dropped) {
        line_budget b;
        line_budget_init(&b, 10, 100, 100000);
        /* 50 lines a second against 100 allowed: all pass, for a long time */
        for (unsigned i = 0; i < 5000; i++)
                ck_assert(line_budget_take(&b, (usec_t) i * 20 * USEC_PER_MSEC));
        ck_assert_uint_eq(b.dropped, 0);
}
END_TEST

int main(void) {
        Suite *s = suite_create("line_budget");
        TCase *tc = tcase_create("budget");
        tcase_add_test(tc, test_burst_then_rate);
        tcase_add_test(tc, test_cap);
        tcase_add_test(tc, test_slow_source_never_dropped);
        suite_add_tcase(s, tc);
        SRunner *sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
