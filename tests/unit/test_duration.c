/* SPDX-License-Identifier: MIT */
#include <check.h>

#include "basic/duration.h"

static const struct {
        const char *s;
        usec_t v;
} good[] = {
        { "250ms", 250 * USEC_PER_MSEC },
        { "30s", 30 * USEC_PER_SEC },
        { "5m", 5 * USEC_PER_MINUTE },
        { "2h", 2 * USEC_PER_HOUR },
        { "1d", USEC_PER_DAY },
        { "1w", 7 * USEC_PER_DAY },
        { "1h30m", 90 * USEC_PER_MINUTE },
        { "1h 30m", 90 * USEC_PER_MINUTE },
        { "1m30s500ms", 90 * USEC_PER_SEC + 500 * USEC_PER_MSEC },
        { "10us", 10 },
        { "0", 0 },
        { "0s", 0 },
        { " 5s ", 5 * USEC_PER_SEC },
};

START_TEST(test_good) {
        usec_t u = 12345;
        parse_error e = {};
        ck_assert_msg(duration_parse(good[_i].s, &u, &e) == 0, "%s: %s", good[_i].s, e.message);
        ck_assert_uint_eq(u, good[_i].v);
}
END_TEST

static const struct {
        const char *s;
        size_t offset;
        const char *needle;
} bad[] = {
        { "", 0, "empty" },
        { "5", 1, "missing unit" },
        { "5x", 1, "unknown unit \"x\"" },
        { "1h30", 4, "missing unit" },
        { "-5s", 0, "expected a number" },
        { "s", 0, "expected a number" },
        { "5 s", 1, "missing unit" },
        { "1h5mins", 3, "unknown unit \"mins\"" },
        { "99999999999999999999s", 0, "too large" },
        { "999999999999d", 0, "too large" },
};

START_TEST(test_bad) {
        usec_t u = 777;
        parse_error e = {};
        ck_assert_int_eq(duration_parse(bad[_i].s, &u, &e), -EINVAL);
        ck_assert_uint_eq(u, 777); /* untouched on failure */
        ck_assert_msg(strstr(e.message, bad[_i].needle), "\"%s\": message \"%s\" lacks \"%s\"", bad[_i].s,
                      e.message, bad[_i].needle);
        ck_assert_uint_eq(e.offset, bad[_i].offset);
}
END_TEST

START_TEST(test_format_roundtrip) {
        static const usec_t v[] = { 0, 1, 999, USEC_PER_SEC, 90 * USEC_PER_MINUTE, USEC_PER_DAY + 1,
                                    3 * USEC_PER_DAY + 4 * USEC_PER_HOUR + 5 * USEC_PER_MINUTE + 6 * USEC_PER_SEC + 7 };
        char buf[DURATION_MAX];
        for (size_t i = 0; i < ELEMENTSOF(v); i++) {
                usec_t back;
                duration_format(v[i], buf, sizeof(buf));
                ck_assert_msg(duration_parse(buf, &back, NULL) == 0, "%s", buf);
                ck_assert_uint_eq(back, v[i]);
        }
        ck_assert_str_eq(duration_format(90 * USEC_PER_MINUTE, buf, sizeof(buf)), "1h30m");
        ck_assert_str_eq(duration_format(250 * USEC_PER_MSEC, buf, sizeof(buf)), "250ms");
        ck_assert_str_eq(duration_format(USEC_INFINITY, buf, sizeof(buf)), "infinity");
}
END_TEST

int main(void) {
        Suite *s = suite_create("duration");
        TCase *tc = tcase_create("parse");
        tcase_add_loop_test(tc, test_good, 0, ELEMENTSOF(good));
        tcase_add_loop_test(tc, test_bad, 0, ELEMENTSOF(bad));
        tcase_add_test(tc, test_format_roundtrip);
        suite_add_tcase(s, tc);
        SRunner *sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
