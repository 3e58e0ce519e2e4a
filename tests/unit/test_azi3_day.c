/* SPDX-License-Identifier: MIT */
#include <check.h>
#include <stdlib.h>

#include "azi3/day.h"

/* Instants as "YYYY-MM-DDTHH:MM:SSZ" so failures are readable, computed independently of the
 * code under test (days from civil, after Howard Hinnant's well-known formula). */
static usec_t utc(int y, int mo, int d, int h, int mi) {
        y -= mo <= 2;
        long era = (y >= 0 ? y : y - 399) / 400;
        long yoe = y - era * 400;
        long doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
        long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        long days = era * 146097 + doe - 719468;
        return (usec_t) (((days * 24 + h) * 60 + mi) * 60) * USEC_PER_SEC;
}

static const tz *zone(const char *name) {
        tz *z = NULL;
        int r = tz_load(name, &z);
        ck_assert_msg(r == 0, "tz_load(%s) = %d", name, r);
        return z;
}

static day_rule rule(const char *z, unsigned sh, unsigned sm, unsigned eh, unsigned em) {
        return (day_rule) { zone(z), sh * 60 + sm, eh * 60 + em };
}

static void assert_bounds(day_rule r, day_date d, usec_t a, usec_t b) {
        usec_t ra = 0, rb = 0;
        ck_assert_int_eq(day_bounds(&r, d, &ra, &rb), 0);
        ck_assert_uint_eq(ra, a);
        ck_assert_uint_eq(rb, b);
}

START_TEST(test_plain_day) {
        /* 2026-06-01 is CEST (+2) */
        assert_bounds(rule("Europe/Amsterdam", 7, 0, 22, 0), (day_date) { 2026, 6, 1 }, utc(2026, 6, 1, 5, 0),
                      utc(2026, 6, 1, 20, 0));
        /* winter, CET (+1) */
        assert_bounds(rule("Europe/Amsterdam", 7, 0, 22, 0), (day_date) { 2026, 1, 15 }, utc(2026, 1, 15, 6, 0),
                      utc(2026, 1, 15, 21, 0));
        assert_bounds(rule("UTC", 0, 0, 23, 59), (day_date) { 2024, 2, 29 }, utc(2024, 2, 29, 0, 0),
                      utc(2024, 2, 29, 23, 59));
}
END_TEST

START_TEST(test_end_not_after_start_is_next_day) {
        /* overnight across a month end */
        assert_bounds(rule("Europe/Amsterdam", 22, 0, 6, 0), (day_date) { 2026, 1, 31 }, utc(2026, 1, 31, 21, 0),
                      utc(2026, 2, 1, 5, 0));
        /* end == start: one whole local day */
        assert_bounds(rule("UTC", 7, 0, 7, 0), (day_date) { 2026, 12, 31 }, utc(2026, 12, 31, 7, 0),
                      utc(2027, 1, 1, 7, 0));
}
END_TEST

/* Europe/Amsterdam 2026-03-29: 02:00 CET jumps to 03:00 CEST at 01:00Z; 02:00..02:59 do not exist. */
START_TEST(test_spring_forward_start_in_gap) {
        assert_bounds(rule("Europe/Amsterdam", 2, 30, 22, 0), (day_date) { 2026, 3, 29 }, utc(2026, 3, 29, 1, 0),
                      utc(2026, 3, 29, 20, 0));
}
END_TEST

START_TEST(test_spring_forward_end_in_gap) {
        /* overnight session ending in the gap; the day is an hour shorter */
        assert_bounds(rule("Europe/Amsterdam", 22, 0, 2, 15), (day_date) { 2026, 3, 28 }, utc(2026, 3, 28, 21, 0),
                      utc(2026, 3, 29, 1, 0));
}
END_TEST

START_TEST(test_spring_forward_whole_day_is_23h) {
        usec_t a, b;
        day_rule r = rule("Europe/Amsterdam", 0, 0, 0, 0);
        ck_assert_int_eq(day_bounds(&r, (day_date) { 2026, 3, 29 }, &a, &b), 0);
        ck_assert_uint_eq(b - a, 23 * USEC_PER_HOUR);
}
END_TEST

START_TEST(test_spring_forward_both_in_gap) {
        /* start 02:10 and end 02:50 both map to 03:00 CEST: an empty session */
        usec_t a, b;
        day_rule r = rule("Europe/Amsterdam", 2, 10, 2, 50);
        ck_assert_int_eq(day_bounds(&r, (day_date) { 2026, 3, 29 }, &a, &b), 0);
        ck_assert_uint_eq(a, utc(2026, 3, 29, 1, 0));
        ck_assert_uint_eq(b, a);

        /* and such a day is never the current one: day_find moves on to the 30th */
        day_date d;
        ck_assert_int_eq(day_find(&r, utc(2026, 3, 29, 0, 30), &d, &a, &b), 0);
        ck_assert_int_eq(d.day, 30);
        ck_assert_uint_eq(a, utc(2026, 3, 30, 0, 10));
}
END_TEST

/* Europe/Amsterdam 2026-10-25: 03:00 CEST falls back to 02:00 CET at 01:00Z; 02:00..02:59 occur
 * twice (00:00Z-00:59Z as CEST, 01:00Z-01:59Z as CET). */
START_TEST(test_fall_back_start_repeated) {
        assert_bounds(rule("Europe/Amsterdam", 2, 30, 22, 0), (day_date) { 2026, 10, 25 }, utc(2026, 10, 25, 0, 30),
                      utc(2026, 10, 25, 21, 0));
}
END_TEST

START_TEST(test_fall_back_end_repeated) {
        assert_bounds(rule("Europe/Amsterdam", 22, 0, 2, 30), (day_date) { 2026, 10, 24 }, utc(2026, 10, 24, 20, 0),
                      utc(2026, 10, 25, 0, 30));
}
END_TEST

START_TEST(test_fall_back_whole_day_is_25h) {
        usec_t a, b;
        day_rule r = rule("Europe/Amsterdam", 7, 0, 7, 0);
        ck_assert_int_eq(day_bounds(&r, (day_date) { 2026, 10, 24 }, &a, &b), 0);
        ck_assert_uint_eq(b - a, 25 * USEC_PER_HOUR);
}
END_TEST

START_TEST(test_find_inside_and_between) {
        day_rule r = rule("Europe/Amsterdam", 7, 0, 22, 0);
        day_date d;
        usec_t a, b;

        ck_assert_int_eq(day_find(&r, utc(2026, 6, 1, 5, 0), &d, &a, &b), 1);
        ck_assert(d.year == 2026 && d.month == 6 && d.day == 1);
        ck_assert_uint_eq(a, utc(2026, 6, 1, 5, 0));

        /* exactly B belongs to no session: the next one is tomorrow */
        ck_assert_int_eq(day_find(&r, utc(2026, 6, 1, 20, 0), &d, &a, NULL), 0);
        ck_assert_int_eq(d.day, 2);
        ck_assert_uint_eq(a, utc(2026, 6, 2, 5, 0));

        /* early morning: today's session is still to come */
        ck_assert_int_eq(day_find(&r, utc(2026, 6, 1, 3, 0), &d, NULL, NULL), 0);
        ck_assert_int_eq(d.day, 1);
}
END_TEST

START_TEST(test_find_overnight_belongs_to_yesterday) {
        day_rule r = rule("Europe/Amsterdam", 22, 0, 6, 0);
        day_date d;
        usec_t a, b;
        /* 2026-03-01 02:00 CET: the session of February 28th */
        ck_assert_int_eq(day_find(&r, utc(2026, 3, 1, 1, 0), &d, &a, &b), 1);
        ck_assert(d.year == 2026 && d.month == 2 && d.day == 28);
        ck_assert_uint_eq(a, utc(2026, 2, 28, 21, 0));
        ck_assert_uint_eq(b, utc(2026, 3, 1, 5, 0));
}
END_TEST

static bool inside_any(const day_rule *r, day_date from, int n, usec_t t) {
        for (int i = 0; i < n; i++) {
                usec_t a, b;
                ck_assert_int_eq(day_bounds(r, day_date_add(from, i), &a, &b), 0);
                if (a <= t && t < b)
                        return true;
        }
        return false;
}

START_TEST(test_find_agrees_with_bounds_every_quarter_hour) {
        /* Walk quarter hours around both DST days: an instant inside some session is found in
         * that session; any other instant points at the next session to begin, and lies in
         * none of the sessions around it. */
        static const unsigned times[][2] = { { 7 * 60, 22 * 60 }, { 22 * 60, 6 * 60 }, { 2 * 60 + 30, 2 * 60 + 30 },
                                             { 2 * 60 + 30, 3 * 60 }, { 1 * 60 + 59, 2 * 60 + 1 } };
        const usec_t ranges[][2] = { { utc(2026, 3, 26, 0, 0), utc(2026, 4, 1, 0, 0) },
                                     { utc(2026, 10, 22, 0, 0), utc(2026, 10, 28, 0, 0) } };
        unsigned n_in = 0, n_out = 0;

        for (size_t k = 0; k < ELEMENTSOF(times); k++) {
                day_rule r = { zone("Europe/Amsterdam"), times[k][0], times[k][1] };
                for (size_t g = 0; g < ELEMENTSOF(ranges); g++)
                        for (usec_t t = ranges[g][0]; t < ranges[g][1]; t += 15 * USEC_PER_MINUTE) {
                                day_date d;
                                usec_t a, b, pa, pb;
                                int found = day_find(&r, t, &d, &a, &b);
                                ck_assert_int_ge(found, 0);
                                ck_assert_int_eq(day_bounds(&r, d, &pa, &pb), 0);
                                ck_assert_uint_eq(a, pa);
                                ck_assert_uint_eq(b, pb);
                                if (found) {
                                        if (!(a <= t && t < b))
                                                ck_abort_msg("rule %zu: %llu not inside its session", k,
                                                             (unsigned long long) t);
                                        n_in++;
                                } else {
                                        if (!(a > t && a < b) || inside_any(&r, day_date_add(d, -3), 6, t))
                                                ck_abort_msg("rule %zu: %llu misplaced", k, (unsigned long long) t);
                                        n_out++;
                                }
                        }
        }
        ck_assert_uint_gt(n_in, 1000);
        ck_assert_uint_gt(n_out, 1000);
}
END_TEST

START_TEST(test_invalid_input) {
        usec_t a = 1, b = 2;
        day_rule r = rule("UTC", 7, 0, 22, 0);
        day_rule bad = { r.zone, 24 * 60, 0 };
        ck_assert_int_eq(day_bounds(&r, (day_date) { 2026, 2, 29 }, &a, &b), -EINVAL);
        ck_assert_int_eq(day_bounds(&r, (day_date) { 2026, 13, 1 }, &a, &b), -EINVAL);
        ck_assert_int_eq(day_bounds(&bad, (day_date) { 2026, 1, 1 }, &a, &b), -EINVAL);
        ck_assert_int_eq(day_bounds(&r, (day_date) { 1960, 1, 1 }, &a, &b), -ERANGE);
        ck_assert_uint_eq(a, 1);
        ck_assert_uint_eq(b, 2);
}
END_TEST

START_TEST(test_date_format_parse_add) {
        char buf[DAY_DATE_STRING_MAX];
        day_date d;
        ck_assert_str_eq(day_date_format((day_date) { 2026, 3, 9 }, buf), "2026-03-09");
        ck_assert_int_eq(day_date_parse("2024-02-29", &d), 0);
        ck_assert(d.year == 2024 && d.month == 2 && d.day == 29);
        ck_assert_int_eq(day_date_parse("2023-02-29", &d), -EINVAL);
        ck_assert_int_eq(day_date_parse("2023-2-28", &d), -EINVAL);
        ck_assert_int_eq(day_date_parse("2023-02-28x", &d), -EINVAL);
        ck_assert_int_eq(day_date_parse("", &d), -EINVAL);
        d = day_date_add((day_date) { 2026, 12, 31 }, 1);
        ck_assert(d.year == 2027 && d.month == 1 && d.day == 1);
        d = day_date_add((day_date) { 2024, 3, 1 }, -1);
        ck_assert(d.year == 2024 && d.month == 2 && d.day == 29);
}
END_TEST

static Suite *day_suite(void) {
        Suite *s = suite_create("azi3_day");
        TCase *tc = tcase_create("bounds");
        tcase_add_test(tc, test_plain_day);
        tcase_add_test(tc, test_end_not_after_start_is_next_day);
        tcase_add_test(tc, test_invalid_input);
        tcase_add_test(tc, test_date_format_parse_add);
        suite_add_tcase(s, tc);

        tc = tcase_create("dst");
        tcase_add_test(tc, test_spring_forward_start_in_gap);
        tcase_add_test(tc, test_spring_forward_end_in_gap);
        tcase_add_test(tc, test_spring_forward_whole_day_is_23h);
        tcase_add_test(tc, test_spring_forward_both_in_gap);
        tcase_add_test(tc, test_fall_back_start_repeated);
        tcase_add_test(tc, test_fall_back_end_repeated);
        tcase_add_test(tc, test_fall_back_whole_day_is_25h);
        suite_add_tcase(s, tc);

        tc = tcase_create("find");
        tcase_add_test(tc, test_find_inside_and_between);
        tcase_add_test(tc, test_find_overnight_belongs_to_yesterday);
        tcase_add_test(tc, test_find_agrees_with_bounds_every_quarter_hour);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(day_suite());
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        tz_cache_clear();
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
