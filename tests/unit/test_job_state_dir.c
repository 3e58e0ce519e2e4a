/* SPDX-License-Identifier: MIT */
/* jobctx_make_state_dir(): a job's state directory is made for the job's user alone, by
 * descriptor, and a link or another user's directory at its path is refused, not followed. */
#include <check.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/jobctx.h"

static char root[256];
static char parent[300];

static void setup(void) {
        snprintf(root, sizeof(root), "/tmp/test_job_state_dir.XXXXXX");
        ck_assert_ptr_nonnull(mkdtemp(root));
        snprintf(parent, sizeof(parent), "%s/jobs", root);
}

static void teardown(void) {
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
        ck_assert_int_eq(system(cmd), 0);
}

/* The owner a job with a user of its own would have: another user when the test can chown. */
static uid_t job_uid(void) {
        return geteuid() == 0 ? 65534 : geteuid();
}

static gid_t job_gid(void) {
        return geteuid() == 0 ? 65534 : getegid();
}

static char *path_of(const char *name) {
        static char p[400];
        snprintf(p, sizeof(p), "%s/%s", parent, name);
        return p;
}

START_TEST(test_made_for_the_job_alone) {
        char *err = NULL;
        struct stat st;
        mode_t old = umask(0);
        ck_assert_int_eq(jobctx_make_state_dir(path_of("a"), job_uid(), job_gid(), 0700, &err), 0);
        umask(old);
        ck_assert_ptr_null(err);
        ck_assert_int_eq(lstat(path_of("a"), &st), 0);
        ck_assert(S_ISDIR(st.st_mode));
        ck_assert_uint_eq(st.st_uid, job_uid());
        ck_assert_uint_eq(st.st_gid, job_gid());
        ck_assert_uint_eq(st.st_mode & 07777, 0700);
        /* the parent: the daemon's, writable by it alone, traversable */
        ck_assert_int_eq(lstat(parent, &st), 0);
        ck_assert_uint_eq(st.st_uid, geteuid());
        ck_assert_uint_eq(st.st_mode & 07777, 0711);
        /* again: the directory there is the job's, fine */
        ck_assert_int_eq(jobctx_make_state_dir(path_of("a"), job_uid(), job_gid(), 0700, &err), 0);
        /* a group of its own: 0750 */
        ck_assert_int_eq(jobctx_make_state_dir(path_of("b"), job_uid(), job_gid(), 0750, &err), 0);
        ck_assert_int_eq(lstat(path_of("b"), &st), 0);
        ck_assert_uint_eq(st.st_mode & 07777, 0750);
}
END_TEST

START_TEST(test_link_refused_not_followed) {
        char target[300], *err = NULL;
        struct stat st;
        snprintf(target, sizeof(target), "%s/elsewhere", root);
        ck_assert_int_eq(mkdir(target, 0755), 0);
        ck_assert_int_eq(mkdir(parent, 0711), 0);
        ck_assert_int_eq(symlink(target, path_of("a")), 0);
        ck_assert_int_lt(jobctx_make_state_dir(path_of("a"), job_uid(), job_gid(), 0700, &err), 0);
        ck_assert_ptr_nonnull(err);
        ck_assert_msg(strstr(err, path_of("a")) && strstr(err, "symbolic link") && strstr(err, "remove it"), "%s", err);
        /* the link's target is untouched */
        ck_assert_int_eq(stat(target, &st), 0);
        ck_assert_uint_eq(st.st_uid, geteuid());
        ck_assert_uint_eq(st.st_mode & 07777, 0755);
        ck_assert_int_eq(lstat(path_of("a"), &st), 0);
        ck_assert(S_ISLNK(st.st_mode));
        free(err);
}
END_TEST

START_TEST(test_other_owner_refused) {
        char *err = NULL;
        char want[64];
        ck_assert_int_eq(jobctx_make_state_dir(path_of("a"), geteuid(), getegid(), 0700, &err), 0);
        /* now the job's runs have another uid: the directory there is not theirs */
        uid_t other = geteuid() + 1;
        ck_assert_int_eq(jobctx_make_state_dir(path_of("a"), other, getegid(), 0700, &err), -EPERM);
        ck_assert_ptr_nonnull(err);
        snprintf(want, sizeof(want), "owned by uid %u", (unsigned) geteuid());
        ck_assert_msg(strstr(err, path_of("a")) && strstr(err, want) && strstr(err, "chown -R"), "%s", err);
        free(err);
}
END_TEST

START_TEST(test_write_access_taken_off) {
        char *err = NULL;
        struct stat st;
        ck_assert_int_eq(jobctx_make_state_dir(path_of("a"), geteuid(), getegid(), 0700, &err), 0);
        ck_assert_int_eq(chmod(path_of("a"), 0777), 0);
        ck_assert_int_eq(jobctx_make_state_dir(path_of("a"), geteuid(), getegid(), 0700, &err), 0);
        ck_assert_int_eq(stat(path_of("a"), &st), 0);
        ck_assert_uint_eq(st.st_mode & 07777, 0755);
}
END_TEST

START_TEST(test_writable_parent_refused) {
        char *err = NULL;
        struct stat st;
        ck_assert_int_eq(mkdir(parent, 0700), 0);
        ck_assert_int_eq(chmod(parent, 01777), 0);
        ck_assert_int_eq(jobctx_make_state_dir(path_of("a"), geteuid(), getegid(), 0700, &err), -EPERM);
        ck_assert_msg(strstr(err, parent) && strstr(err, "mode 1777") && strstr(err, "chmod go-w"), "%s", err);
        ck_assert_int_eq(lstat(path_of("a"), &st), -1); /* nothing made under it */
        free(err);
        err = NULL;
        /* a link for the parent is refused too */
        ck_assert_int_eq(rmdir(parent), 0);
        ck_assert_int_eq(symlink("/tmp", parent), 0);
        ck_assert_int_lt(jobctx_make_state_dir(path_of("a"), geteuid(), getegid(), 0700, &err), 0);
        ck_assert_msg(err && strstr(err, "symbolic link"), "%s", err ? err : "(none)");
        free(err);
}
END_TEST

int main(void) {
        Suite *s = suite_create("job_state_dir");
        TCase *tc = tcase_create("core");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_made_for_the_job_alone);
        tcase_add_test(tc, test_link_refused_not_followed);
        tcase_add_test(tc, test_other_owner_refused);
        tcase_add_test(tc, test_write_access_taken_off);
        tcase_add_test(tc, test_writable_parent_refused);
        suite_add_tcase(s, tc);
        SRunner *sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
