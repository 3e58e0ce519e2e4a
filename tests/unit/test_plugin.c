/* SPDX-License-Identifier: MIT */
#include <check.h>

#include "core/plugin.h"

static char *test_plugin(const char *name) {
        const char *dir = getenv("TEST_PLUGIN_DIR");
        char *p;
        ck_assert_msg(dir, "TEST_PLUGIN_DIR is not set (run through make check)");
        ck_assert_int_ge(asprintf(&p, "%s/%s", dir, name), 0);
        return p;
}

START_TEST(test_good) {
        _cleanup_free_ char *path = test_plugin("ok.so"), *err = NULL;
        plugin *p = NULL;
        ck_assert_int_eq(plugin_load(path, &p, &err), 0);
        ck_assert_ptr_null(err);
        ck_assert_str_eq(p->desc->name, "ok");
        ck_assert_ptr_nonnull(p->desc->run);
        ck_assert_str_eq(p->desc->params[0].key, "greeting");
        ck_assert_ptr_eq(plugin_ref(p), p);
        ck_assert_uint_eq(p->n_ref, 2);
        ck_assert_ptr_null(plugin_unref(p));
        ck_assert_uint_eq(p->n_ref, 1);
        ck_assert_ptr_null(plugin_unref(p));
        ck_assert_ptr_null(plugin_unref(NULL));
}
END_TEST

static void expect_reject(const char *file, int code, const char *needle) {
        _cleanup_free_ char *path = test_plugin(file), *err = NULL;
        plugin *p = (plugin *) 0x1;
        ck_assert_int_eq(plugin_load(path, &p, &err), code);
        ck_assert_ptr_eq(p, (plugin *) 0x1); /* untouched on failure */
        ck_assert_ptr_nonnull(err);
        ck_assert_msg(strstr(err, needle), "message \"%s\" lacks \"%s\"", err, needle);
        ck_assert_msg(strstr(err, path), "message \"%s\" does not name the file", err);
}

START_TEST(test_bad_abi) {
        expect_reject("badabi.so", -EPROTO, "ABI version 42, expected 1");
}
END_TEST

START_TEST(test_no_run) {
        expect_reject("norun.so", -EINVAL, "no run callback");
}
END_TEST

START_TEST(test_missing_file) {
        expect_reject("does-not-exist.so", -ENOENT, "No such file");
}
END_TEST

START_TEST(test_not_a_plugin) {
        /* a shared object without the descriptor symbol: libc will do */
        _cleanup_free_ char *err = NULL;
        plugin *p = NULL;
        int r = plugin_load("/lib/x86_64-linux-gnu/libm.so.6", &p, &err);
        if (access("/lib/x86_64-linux-gnu/libm.so.6", F_OK) < 0)
                return;
        ck_assert_int_eq(r, -ENOEXEC);
        ck_assert_ptr_nonnull(strstr(err, "no \"schedulerd_job\" symbol"));
}
END_TEST

START_TEST(test_not_elf) {
        char path[] = "/tmp/test-plugin-XXXXXX";
        int fd = mkstemp(path);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(write(fd, "garbage", 7), 7);
        close(fd);
        _cleanup_free_ char *err = NULL;
        plugin *p = NULL;
        ck_assert_int_eq(plugin_load(path, &p, &err), -ELIBBAD);
        ck_assert_ptr_nonnull(strstr(err, "cannot be loaded"));
        unlink(path);
}
END_TEST

START_TEST(test_resolve) {
        _cleanup_free_ char *a = plugin_resolve_path("/usr/lib/schedulerd/jobs", "hello.so");
        _cleanup_free_ char *b = plugin_resolve_path("/usr/lib/schedulerd/jobs", "/opt/x.so");
        ck_assert_str_eq(a, "/usr/lib/schedulerd/jobs/hello.so");
        ck_assert_str_eq(b, "/opt/x.so");
}
END_TEST

int main(void) {
        Suite *s = suite_create("plugin");
        TCase *tc = tcase_create("load");
        tcase_add_test(tc, test_good);
        tcase_add_test(tc, test_bad_abi);
        tcase_add_test(tc, test_no_run);
        tcase_add_test(tc, test_missing_file);
        tcase_add_test(tc, test_not_a_plugin);
        tcase_add_test(tc, test_not_elf);
        tcase_add_test(tc, test_resolve);
        suite_add_tcase(s, tc);
        SRunner *sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
