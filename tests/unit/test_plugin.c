/* SPDX-License-Identifier: MIT */
#include <check.h>
#include <fcntl.h>
#include <sys/stat.h>

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

/* Job ABI 1.1 added the descriptor's flags: a 1.0 plugin (shorter descriptor) loads with none,
 * a worker-safe one has its flag. */
START_TEST(test_abi_minor_flags) {
        _cleanup_free_ char *old = test_plugin("abi10.so"), *safe = test_plugin("worker-probe.so"), *plain = test_plugin("ok.so");
        plugin *p = NULL;
        ck_assert_int_eq(plugin_load(old, &p, NULL), 0);
        ck_assert_str_eq(p->desc->name, "abi10");
        ck_assert_uint_eq(p->flags, 0);
        ck_assert_ptr_null(plugin_unref(p));
        ck_assert_int_eq(plugin_load(safe, &p, NULL), 0);
        ck_assert_uint_eq(p->flags, SCHED_JOB_FLAG_WORKER_SAFE);
        ck_assert_ptr_null(plugin_unref(p));
        ck_assert_int_eq(plugin_load(plain, &p, NULL), 0);
        ck_assert_uint_eq(p->flags, 0);
        ck_assert_ptr_null(plugin_unref(p));
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

/* A private directory (mkdtemp: 0700, owned by us) for plugins the test writes; /tmp itself
 * holds no plugin: others may add files there. */
static char *private_dir(void) {
        char *d = strdup("/tmp/test-plugin-XXXXXX");
        ck_assert_ptr_nonnull(d);
        ck_assert_ptr_nonnull(mkdtemp(d));
        return d;
}

static char *copy_plugin(const char *dir, const char *name, mode_t mode) {
        _cleanup_free_ char *src = test_plugin("ok.so");
        char *dst, buf[65536];
        ck_assert_int_ge(asprintf(&dst, "%s/%s", dir, name), 0);
        int in = open(src, O_RDONLY | O_CLOEXEC), out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        ck_assert_int_ge(in, 0);
        ck_assert_int_ge(out, 0);
        ssize_t n;
        while ((n = read(in, buf, sizeof(buf))) > 0)
                ck_assert_int_eq(write(out, buf, (size_t) n), n);
        close(in);
        close(out);
        ck_assert_int_eq(chmod(dst, mode), 0);
        return dst;
}

START_TEST(test_not_elf) {
        _cleanup_free_ char *dir = private_dir(), *path = NULL, *err = NULL;
        ck_assert_int_ge(asprintf(&path, "%s/garbage.so", dir), 0);
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(write(fd, "garbage", 7), 7);
        close(fd);
        plugin *p = NULL;
        ck_assert_int_eq(plugin_load(path, &p, &err), -ELIBBAD);
        ck_assert_ptr_nonnull(strstr(err, "cannot be loaded"));
        unlink(path);
        rmdir(dir);
}
END_TEST

static void expect_refused(const char *path, const char *needle) {
        _cleanup_free_ char *err = NULL;
        plugin *p = NULL;
        ck_assert_int_eq(plugin_load(path, &p, &err), -EPERM);
        ck_assert_ptr_null(p);
        ck_assert_msg(strstr(err, needle), "message \"%s\" lacks \"%s\"", err, needle);
        ck_assert_msg(strstr(err, path), "message \"%s\" does not name the plugin", err);
}

/* The trust rules (basic/trust.h) on the file and the directory holding it. */
START_TEST(test_untrusted_refused) {
        _cleanup_free_ char *dir = private_dir(), *ok = copy_plugin(dir, "ok.so", 0755);
        _cleanup_free_ char *writable = copy_plugin(dir, "w.so", 0666), *group = copy_plugin(dir, "g.so", 0775);
        _cleanup_free_ char *foreign = copy_plugin(dir, "nobody.so", 0755), *link = NULL;
        plugin *p = NULL;
        char *err = NULL;

        ck_assert_int_eq(plugin_load(ok, &p, &err), 0);
        plugin_unref(p);

        expect_refused(writable, "writable by others (mode 0666)");
        expect_refused(group, "writable by its group (mode 0775)");
        if (geteuid() == 0) { /* only root can give a file away */
                ck_assert_int_eq(chown(foreign, 65534, (gid_t) -1), 0);
                expect_refused(foreign, "is owned by uid 65534");
        }
        ck_assert_int_ge(asprintf(&link, "%s/link.so", dir), 0);
        ck_assert_int_eq(symlink(ok, link), 0);
        expect_refused(link, "is a symbolic link");

        /* a plugin_dir others may add files to: sticky or not */
        ck_assert_int_eq(chmod(dir, 01777), 0);
        expect_refused(ok, "writable by others (mode 1777)");
        ck_assert_int_eq(chmod(dir, 0770), 0);
        expect_refused(ok, "writable by its group (mode 0770)");
        ck_assert_int_eq(chmod(dir, 0700), 0);

        unlink(link);
        unlink(ok);
        unlink(writable);
        unlink(group);
        unlink(foreign);
        rmdir(dir);
}
END_TEST

/* A directory above plugin_dir: sticky and owned by root (like /tmp) is fine, plain
 * world-writable is not. */
START_TEST(test_untrusted_parent_refused) {
        _cleanup_free_ char *top = private_dir(), *sub = NULL, *ok = NULL;
        plugin *p = NULL;
        char *err = NULL;

        ck_assert_int_ge(asprintf(&sub, "%s/plugins", top), 0);
        ck_assert_int_eq(mkdir(sub, 0755), 0);
        ok = copy_plugin(sub, "ok.so", 0755);
        ck_assert_int_eq(chmod(top, 01777), 0);
        ck_assert_int_eq(plugin_load(ok, &p, &err), 0);
        plugin_unref(p);
        ck_assert_int_eq(chmod(top, 0777), 0);
        expect_refused(ok, top);
        expect_refused(ok, "writable by others (mode 0777)");
        ck_assert_int_eq(chmod(top, 0700), 0);
        unlink(ok);
        rmdir(sub);
        rmdir(top);
}
END_TEST

START_TEST(test_resolve) {
        _cleanup_free_ char *a = NULL, *b = NULL, *c = NULL;
        ck_assert_int_eq(plugin_resolve_path("/usr/lib/schedulerd/jobs", "hello.so", &a, NULL), 0);
        ck_assert_str_eq(a, "/usr/lib/schedulerd/jobs/hello.so");
        /* an absolute path directly in plugin_dir is the same file */
        ck_assert_int_eq(plugin_resolve_path("/usr/lib/schedulerd/jobs/", "/usr/lib/schedulerd/jobs/x.so", &b, NULL), 0);
        ck_assert_str_eq(b, "/usr/lib/schedulerd/jobs/x.so");
        ck_assert_int_eq(plugin_resolve_path("/usr/lib/schedulerd/jobs", "x.so", &c, NULL), 0);
}
END_TEST

/* Plugins come from plugin_dir only: no other directory, no way out of it. */
START_TEST(test_resolve_outside_refused) {
        static const char *const bad[] = { "/opt/x.so", "../../../tmp/x/evil.so", "sub/x.so", "..", ".", "",
                                           "/usr/lib/schedulerd/jobs/../x.so", "/usr/lib/schedulerd/x.so" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                char *p = NULL, *err = NULL;
                ck_assert_int_eq(plugin_resolve_path("/usr/lib/schedulerd/jobs", bad[i], &p, &err), -EINVAL);
                ck_assert_ptr_null(p);
                ck_assert_ptr_nonnull(strstr(err, "plugin_dir (/usr/lib/schedulerd/jobs)"));
                free(err);
        }
}
END_TEST

int main(void) {
        Suite *s = suite_create("plugin");
        TCase *tc = tcase_create("load");
        tcase_add_test(tc, test_good);
        tcase_add_test(tc, test_bad_abi);
        tcase_add_test(tc, test_abi_minor_flags);
        tcase_add_test(tc, test_no_run);
        tcase_add_test(tc, test_missing_file);
        tcase_add_test(tc, test_not_a_plugin);
        tcase_add_test(tc, test_not_elf);
        tcase_add_test(tc, test_untrusted_refused);
        tcase_add_test(tc, test_untrusted_parent_refused);
        tcase_add_test(tc, test_resolve);
        tcase_add_test(tc, test_resolve_outside_refused);
        suite_add_tcase(s, tc);
        SRunner *sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
