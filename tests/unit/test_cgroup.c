/* SPDX-License-Identifier: MIT */
/* The pure parts of core/cgroup.c: where the daemon's cgroup is, and where cgroup2 is mounted. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>

#include "basic/macro.h"
#include "core/cgroup.h"

START_TEST(test_self_unified) {
        _cleanup_free_ char *p = NULL;
        ck_assert_int_eq(cgroup_parse_self("0::/system.slice/schedulerd.service\n", &p), 0);
        ck_assert_str_eq(p, "/system.slice/schedulerd.service");
}
END_TEST

START_TEST(test_self_hybrid) {
        /* v1 lines first, and one whose path holds "0::" must not be taken */
        static const char text[] = "9:name=systemd:/0::/x\n"
                                   "4:memory:/process_api/6849\n"
                                   "1:cpu:/\n"
                                   "0::/schedulerd-test-1\n";
        _cleanup_free_ char *p = NULL;
        ck_assert_int_eq(cgroup_parse_self(text, &p), 0);
        ck_assert_str_eq(p, "/schedulerd-test-1");
}
END_TEST

START_TEST(test_self_none) {
        char *p = NULL;
        ck_assert_int_eq(cgroup_parse_self("4:memory:/a\n1:cpu:/\n", &p), -ENOENT);
        ck_assert_int_eq(cgroup_parse_self("", &p), -ENOENT);
        ck_assert_int_eq(cgroup_parse_self("0::", &p), -ENOENT);
        ck_assert_ptr_null(p);
}
END_TEST

START_TEST(test_mountinfo_hybrid) {
        static const char text[] =
                "30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
                "38 30 0:35 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"
                "40 30 0:37 / /sys/fs/cgroup/unified rw,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate\n";
        _cleanup_free_ char *m = NULL;
        ck_assert_int_eq(cgroup_parse_mountinfo(text, &m), 0);
        ck_assert_str_eq(m, "/sys/fs/cgroup/unified");
}
END_TEST

START_TEST(test_mountinfo_unified_and_bind) {
        /* a bind mount of a subtree (root not "/") comes first: the hierarchy's root is wanted;
         * an escaped space in the mount point is unescaped */
        static const char text[] =
                "25 1 0:22 /sub /mnt/sub rw - cgroup2 cgroup2 rw\n"
                "26 1 0:22 / /sys/fs/my\\040cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate\n";
        _cleanup_free_ char *m = NULL;
        ck_assert_int_eq(cgroup_parse_mountinfo(text, &m), 0);
        ck_assert_str_eq(m, "/sys/fs/my cgroup");
}
END_TEST

START_TEST(test_mountinfo_none) {
        char *m = NULL;
        ck_assert_int_eq(cgroup_parse_mountinfo("31 30 0:28 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n", &m),
                         -ENOENT);
        /* "cgroup2" as a source or option is not the file system type */
        ck_assert_int_eq(cgroup_parse_mountinfo("31 30 0:28 / /x rw - tmpfs cgroup2 rw\n", &m), -ENOENT);
        ck_assert_ptr_null(m);
}
END_TEST

START_TEST(test_run_name) {
        char buf[CGROUP_RUN_NAME_MAX];
        ck_assert_int_eq(cgroup_run_name("backup", 42, 0, buf, sizeof(buf)), 0);
        ck_assert_str_eq(buf, "backup.42");
        ck_assert_int_eq(cgroup_run_name("backup", 42, 0, buf, 9), -ENAMETOOLONG);
        ck_assert_int_eq(cgroup_run_name("backup", 0, 4321, buf, sizeof(buf)), 0);
        ck_assert_str_eq(buf, "backup.warm-4321");
}
END_TEST

int main(void) {
        Suite *s = suite_create("cgroup");
        TCase *tc = tcase_create("parse");
        tcase_add_test(tc, test_self_unified);
        tcase_add_test(tc, test_self_hybrid);
        tcase_add_test(tc, test_self_none);
        tcase_add_test(tc, test_mountinfo_hybrid);
        tcase_add_test(tc, test_mountinfo_unified_and_bind);
        tcase_add_test(tc, test_mountinfo_none);
        tcase_add_test(tc, test_run_name);
        suite_add_tcase(s, tc);
        SRunner *sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
