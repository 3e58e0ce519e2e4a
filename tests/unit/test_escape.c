/* SPDX-License-Identifier: MIT */
#include <check.h>
#include <string.h>

#include "basic/escape.h"
#include "basic/macro.h"

static void check_escape(const char *in, const char *keep, const char *want) {
        _cleanup_free_ char *got = escape_controls(in, strlen(in), keep);
        ck_assert_ptr_nonnull(got);
        ck_assert_msg(streq(got, want), "escape(\"%s\"): got \"%s\", want \"%s\"", in, got, want);
}

/* What a job printed reached terminals raw: a title change (OSC 0), a screen clear (CSI 2J),
 * a hyperlink (OSC 8) and the 8-bit CSI (U+009B). Each becomes visible text. */
START_TEST(test_terminal_commands) {
        check_escape("\x1b]0;pwned\x07", "", "\\x1B]0;pwned\\x07");
        check_escape("\x1b[2J\x1b[H", "", "\\x1B[2J\\x1B[H");
        check_escape("\x1b]8;;http://x\x1b\\a\x1b]8;;\x1b\\", "", "\\x1B]8;;http://x\\x1B\\a\\x1B]8;;\\x1B\\");
        check_escape("a\xc2\x9b" "2Jb", "", "a\\u009B2Jb");
        check_escape("ok\rforged", "", "ok\\x0Dforged");
        check_escape("del\x7f", "", "del\\x7F");
}
END_TEST

START_TEST(test_keep_and_text) {
        check_escape("line 1\nline 2\tx\r\n", "\n\t", "line 1\nline 2\tx\\x0D\n");
        check_escape("one\ntwo", "", "one\\x0Atwo");
        /* text is text: UTF-8, including U+00A0 right after the C1 range */
        check_escape("Grüße \xc2\xa0 \xe2\x82\xac \xf0\x9f\x98\x80", "", "Grüße \xc2\xa0 \xe2\x82\xac \xf0\x9f\x98\x80");
        /* bytes that are not UTF-8 (a lone 0x9B is CSI to an 8-bit terminal) */
        check_escape("a\x9b" "b\xff", "", "a\\x9Bb\\xFF");
        check_escape("", "", "");
}
END_TEST

START_TEST(test_buffer_cut_at_whole_escape) {
        char buf[8];
        ck_assert_uint_eq(escape_controls_buf("ab\x1b" "cd", 5, "", buf, sizeof(buf)), 7);
        ck_assert_str_eq(buf, "ab\\x1Bc");
        ck_assert_uint_eq(escape_controls_buf("abcde\x1b", 6, "", buf, sizeof(buf)), 5);
        ck_assert_str_eq(buf, "abcde");
}
END_TEST

static Suite *escape_suite(void) {
        Suite *s = suite_create("escape");
        TCase *tc = tcase_create("escape");
        tcase_add_test(tc, test_terminal_commands);
        tcase_add_test(tc, test_keep_and_text);
        tcase_add_test(tc, test_buffer_cut_at_whole_escape);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(escape_suite());
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? 0 : 1;
}
