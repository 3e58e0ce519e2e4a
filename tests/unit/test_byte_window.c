/* SPDX-License-Identifier: MIT */
#include <check.h>

#include "basic/byte-window.h"

/* Reads of SIZE bytes at NOW while the window gives room; returns the bytes read. */
static size_t read_while_room(byte_window *w, usec_t now, size_t size, unsigned reads) {
        size_t total = 0;
        for (unsigned i = 0; i < reads; i++) {
                size_t n = byte_window_room(w, now, size);
                if (n == 0)
                        break;
                byte_window_used(w, n);
                total += n;
        }
        return total;
}

/* Without a minimum charge, reads are counted by their bytes alone: a thousand 400-byte reads
 * in one window all pass (a limit of 8 reads per window, as the daemon had, passed 3,200 bytes). */
START_TEST(test_many_small_reads_pass) {
        byte_window w;
        byte_window_init(&w, 50 * USEC_PER_MSEC, 512 * 1024, 1);
        ck_assert_uint_eq(read_while_room(&w, USEC_PER_SEC, 400, 1000), 400000);
        ck_assert_uint_gt(byte_window_room(&w, USEC_PER_SEC + USEC_PER_MSEC, 400), 0);
}
END_TEST

/* A bulk writer gets the budget per window and then waits for the window's end. */
START_TEST(test_bulk_waits_for_the_window) {
        byte_window w;
        usec_t t = 7 * USEC_PER_SEC;
        byte_window_init(&w, 50 * USEC_PER_MSEC, 512 * 1024, 4096);
        ck_assert_uint_eq(read_while_room(&w, t, 65536, 100), 512 * 1024);
        ck_assert_uint_eq(byte_window_room(&w, t + 49 * USEC_PER_MSEC, 65536), 0);
        ck_assert_uint_eq(byte_window_resume(&w), t + 50 * USEC_PER_MSEC);
        /* the last read of a window is cut to what is left */
        byte_window_init(&w, 50 * USEC_PER_MSEC, 100000, 4096);
        ck_assert_uint_eq(read_while_room(&w, t, 65536, 100), 100000);
        /* the next window: the budget again */
        ck_assert_uint_eq(read_while_room(&w, t + 50 * USEC_PER_MSEC, 65536, 100), 100000);
        /* over a second of reading: 20 windows' budget, no more */
        size_t total = 0;
        byte_window_init(&w, 50 * USEC_PER_MSEC, 100000, 4096);
        for (usec_t now = t; now < t + USEC_PER_SEC; now += USEC_PER_MSEC)
                total += read_while_room(&w, now, 65536, 100);
        ck_assert_uint_eq(total, 20 * 100000);
}
END_TEST

/* A source writing a few bytes at a time wakes the reader per write: each read costs the
 * minimum charge, so it gets BUDGET / MIN_CHARGE reads per window and the loop goes idle. */
START_TEST(test_small_reads_bounded_in_number) {
        byte_window w;
        unsigned reads = 0;
        byte_window_init(&w, 50 * USEC_PER_MSEC, 512 * 1024, 4096);
        while (reads < 10000 && byte_window_room(&w, USEC_PER_SEC, 40) > 0) {
                byte_window_used(&w, 40);
                reads++;
        }
        ck_assert_uint_eq(reads, 128);
        /* a read of more than the minimum is charged what it read */
        byte_window_init(&w, 50 * USEC_PER_MSEC, 512 * 1024, 4096);
        ck_assert_uint_eq(read_while_room(&w, USEC_PER_SEC, 65536, 100), 512 * 1024);
}
END_TEST

/* A window starts at the first read after the last one ended, not on a grid: an idle source
 * gets its full budget at once. */
START_TEST(test_window_starts_with_a_read) {
        byte_window w;
        byte_window_init(&w, 50 * USEC_PER_MSEC, 1000, 1);
        ck_assert_uint_eq(read_while_room(&w, 1000, 600, 10), 1000);
        ck_assert_uint_eq(byte_window_room(&w, 1000 + 50 * USEC_PER_MSEC - 1, 600), 0);
        ck_assert_uint_eq(read_while_room(&w, 3 * USEC_PER_SEC + 17, 600, 10), 1000);
        ck_assert_uint_eq(byte_window_resume(&w), 3 * USEC_PER_SEC + 17 + 50 * USEC_PER_MSEC);
}
END_TEST

int main(void) {
        Suite *s = suite_create("byte_window");
        TCase *tc = tcase_create("core");
        tcase_add_test(tc, test_many_small_reads_pass);
        tcase_add_test(tc, test_bulk_waits_for_the_window);
        tcase_add_test(tc, test_window_starts_with_a_read);
        tcase_add_test(tc, test_small_reads_bounded_in_number);
        suite_add_tcase(s, tc);
        SRunner *sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? 1 : 0;
}
