/* SPDX-License-Identifier: MIT */
/* The timer heap's count of entries due by an instant (the lead of a herd is sized by it). */
#include <check.h>
#include <stdlib.h>

#include "core/timer-heap.h"

START_TEST(test_count_until) {
        timer_heap h = {};
        timer_entry e[200];

        ck_assert_uint_eq(timer_heap_count_until(&h, 1000, 100), 0);
        /* 150 due at 10, the rest later, put in an order that scatters them through the heap */
        for (size_t i = 0; i < 200; i++) {
                e[i] = TIMER_ENTRY_INIT;
                ck_assert_int_eq(timer_heap_put(&h, &e[i], (i * 7) % 4 == 0 ? 30 + i : 10), 0);
        }
        size_t at10 = 0;
        for (size_t i = 0; i < 200; i++)
                at10 += (i * 7) % 4 != 0;
        ck_assert_uint_eq(timer_heap_count_until(&h, 10, 1000), at10);
        ck_assert_uint_eq(timer_heap_count_until(&h, 9, 1000), 0);
        ck_assert_uint_eq(timer_heap_count_until(&h, 10, 20), 20); /* bounded */
        ck_assert_uint_eq(timer_heap_count_until(&h, 1000, 1000), 200);
        ck_assert_uint_eq(timer_heap_count_until(&h, 10, 0), 0);
        /* moved later, it no longer counts */
        timer_heap_put(&h, &e[1], 500);
        ck_assert_uint_eq(timer_heap_count_until(&h, 10, 1000), at10 - 1);
        timer_heap_done(&h);
}
END_TEST

int main(void) {
        Suite *s = suite_create("timer_heap");
        TCase *tc = tcase_create("core");
        tcase_add_test(tc, test_count_until);
        suite_add_tcase(s, tc);
        SRunner *sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
