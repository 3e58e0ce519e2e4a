/* SPDX-License-Identifier: MIT */
#include <check.h>
#include <string.h>

#include "basic/log-fields.h"

static size_t parse(const char *s, const char **f, char *buf, size_t size) {
        return log_fields_parse(s, strlen(s), buf, size, f, 8);
}

START_TEST(test_block_parsed) {
        char buf[512];
        const char *f[8];
        ck_assert_uint_eq(parse("window closed [ROBOT_ID=42 SESSION_ID=7 WINDOW_SINCE=2026-12-04T08:00:00Z]", f, buf,
                                sizeof(buf)),
                          3);
        ck_assert_str_eq(f[0], "ROBOT_ID=42");
        ck_assert_str_eq(f[1], "SESSION_ID=7");
        ck_assert_str_eq(f[2], "WINDOW_SINCE=2026-12-04T08:00:00Z");
        ck_assert_uint_eq(parse("[A=1]", f, buf, sizeof(buf)), 1);
}
END_TEST

START_TEST(test_text_is_not_a_block) {
        char buf[512];
        const char *f[8];
        static const char *const plain[] = {
                "no block",
                "trailing text [A=1] after",
                "glued[A=1]",
                "[]",
                "lower [robot=1]",
                "empty value [A=]",
                "no equals [A]",
                "double space [A=1  B=2]",
                "leading space [ A=1]",
                "reserved [JOB=x]",
                "reserved [MESSAGE=x]",
                "reserved [SYSLOG_IDENTIFIER=x]",
                "trusted [_PID=1]",
                "mixed [A=1 _UID=0]",
                "space in value [A=1 2]",
        };
        for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++)
                ck_assert_msg(parse(plain[i], f, buf, sizeof(buf)) == 0, "parsed: %s", plain[i]);
}
END_TEST

START_TEST(test_bounds) {
        char buf[512], line[1024];
        const char *f[8];
        /* nine pairs: more than asked for */
        ck_assert_uint_eq(log_fields_parse("x [A=1 B=2 C=3 D=4 E=5 F=6 G=7 H=8 I=9]", 39, buf, sizeof(buf), f, 8), 0);
        /* a buffer too small */
        ck_assert_uint_eq(parse("x [ROBOT_ID=42]", f, buf, 8), 0);
        /* a value over the limit */
        memset(line, 0, sizeof(line));
        strcpy(line, "x [A=");
        memset(line + 5, 'v', LOG_FIELDS_VALUE_MAX + 1);
        strcat(line, "]");
        ck_assert_uint_eq(parse(line, f, buf, sizeof(buf)), 0);
}
END_TEST

int main(void) {
        Suite *s = suite_create("log_fields");
        TCase *tc = tcase_create("parse");
        tcase_add_test(tc, test_block_parsed);
        tcase_add_test(tc, test_text_is_not_a_block);
        tcase_add_test(tc, test_bounds);
        suite_add_tcase(s, tc);
        SRunner *sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? 0 : 1;
}
