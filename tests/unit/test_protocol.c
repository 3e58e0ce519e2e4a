/* SPDX-License-Identifier: MIT */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "basic/macro.h"
#include "control/protocol.h"

START_TEST(test_ids_index_the_table) {
        for (size_t i = 0; i < _CONTROL_COMMAND_MAX; i++) {
                ck_assert_int_eq(control_commands[i].id, (int) i);
                ck_assert_ptr_nonnull(control_commands[i].name);
                ck_assert_ptr_nonnull(control_commands[i].fields);
                ck_assert_str_eq(control_command_name((control_command_id) i), control_commands[i].name);
        }
}
END_TEST

START_TEST(test_names_unique) {
        for (size_t i = 0; i < _CONTROL_COMMAND_MAX; i++)
                for (size_t k = i + 1; k < _CONTROL_COMMAND_MAX; k++)
                        ck_assert_str_ne(control_commands[i].name, control_commands[k].name);
}
END_TEST

START_TEST(test_find_each) {
        for (size_t i = 0; i < _CONTROL_COMMAND_MAX; i++) {
                /* a copy, so the lookup compares names, not pointers */
                char name[32];
                snprintf(name, sizeof(name), "%s", control_commands[i].name);
                ck_assert_ptr_eq(control_command_find(name), &control_commands[i]);
        }
}
END_TEST

START_TEST(test_unknown_rejected) {
        static const char *const bad[] = { "", "lis", "lists", "LIST", "Status", " run", "run ", "shutdown" };
        ck_assert_ptr_null(control_command_find(NULL));
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                ck_assert_msg(!control_command_find(bad[i]), "\"%s\" was accepted", bad[i]);
}
END_TEST

/* Exactly the commands that change the scheduler need admin rights (server.h, schedctl(1)). */
START_TEST(test_admin) {
        ck_assert(!control_commands[CONTROL_LIST].admin);
        ck_assert(!control_commands[CONTROL_STATUS].admin);
        ck_assert(!control_commands[CONTROL_HISTORY].admin);
        ck_assert(control_commands[CONTROL_RUN].admin);
        ck_assert(control_commands[CONTROL_ENABLE].admin);
        ck_assert(control_commands[CONTROL_DISABLE].admin);
        ck_assert(control_commands[CONTROL_RELOAD].admin);
}
END_TEST

START_TEST(test_fields) {
        for (size_t i = 0; i < _CONTROL_COMMAND_MAX; i++) {
                const control_command *c = &control_commands[i];
                ck_assert(!control_command_takes(c, FIELD_COMMAND));
                for (const char *const *f = c->fields; *f; f++) {
                        ck_assert(control_command_takes(c, *f));
                        for (const char *const *g = f + 1; *g; g++)
                                ck_assert_str_ne(*f, *g);
                }
        }
        ck_assert(control_command_takes(&control_commands[CONTROL_RUN], FIELD_AT));
        ck_assert(control_command_takes(&control_commands[CONTROL_RUN], FIELD_WAIT));
        ck_assert(control_command_takes(&control_commands[CONTROL_HISTORY], FIELD_SINCE));
        ck_assert(!control_command_takes(&control_commands[CONTROL_LIST], FIELD_JOB));
        ck_assert(!control_command_takes(&control_commands[CONTROL_STATUS], FIELD_WAIT));
}
END_TEST

/* The "expected ..." list of the unknown-command error names every command, in table order. */
START_TEST(test_expected_list) {
        char buf[256] = "";
        for (size_t i = 0; i < _CONTROL_COMMAND_MAX; i++) {
                const char *sep = i == 0 ? "" : i + 1 == _CONTROL_COMMAND_MAX ? " or " : ", ";
                strncat(buf, sep, sizeof(buf) - strlen(buf) - 1);
                strncat(buf, control_commands[i].name, sizeof(buf) - strlen(buf) - 1);
        }
        ck_assert_str_eq(buf, CONTROL_COMMANDS_EXPECTED);
}
END_TEST

static Suite *protocol_suite(void) {
        Suite *s = suite_create("protocol");
        TCase *tc = tcase_create("table");
        tcase_add_test(tc, test_ids_index_the_table);
        tcase_add_test(tc, test_names_unique);
        tcase_add_test(tc, test_find_each);
        tcase_add_test(tc, test_unknown_rejected);
        tcase_add_test(tc, test_admin);
        tcase_add_test(tc, test_fields);
        tcase_add_test(tc, test_expected_list);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(protocol_suite());
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? 0 : 1;
}
