/* SPDX-License-Identifier: MIT */
/* Log batching (log_batch_start()): lines wait for log_flush(), urgent ones and fork() do not. */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "basic/log.h"

static unsigned wakes;

static void on_wake(void *userdata) {
        (*(unsigned *) userdata)++;
}

/* stderr goes to a fresh temporary file; returns its descriptor for reading back */
static int capture_stderr(void) {
        char path[] = "/tmp/test-log-batch-XXXXXX";
        int fd = mkstemp(path);
        ck_assert_int_ge(fd, 0);
        unlink(path);
        ck_assert_int_ge(dup2(fd, STDERR_FILENO), 0);
        unsetenv("JOURNAL_STREAM");
        log_open("schedulerd");
        return fd;
}

static char *written(int fd) {
        static char buf[65536];
        ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
        ck_assert_int_ge(n, 0);
        buf[n] = '\0';
        return buf;
}

START_TEST(test_lines_wait_for_flush) {
        int fd = capture_stderr();
        wakes = 0;
        log_batch_start(on_wake, &wakes);
        log_info("one");
        log_info("two");
        ck_assert_str_eq(written(fd), "");
        ck_assert_uint_eq(wakes, 1); /* once, when the first line entered the empty buffer */
        log_flush();
        ck_assert_str_eq(written(fd), "schedulerd: <info> one\nschedulerd: <info> two\n");
        log_info("three");
        ck_assert_uint_eq(wakes, 2);
        log_batch_stop();
        ck_assert_str_eq(written(fd), "schedulerd: <info> one\nschedulerd: <info> two\nschedulerd: <info> three\n");
        log_info("four"); /* stopped: at once */
        ck_assert_ptr_nonnull(strstr(written(fd), "<info> four\n"));
}
END_TEST

START_TEST(test_warning_writes_at_once_in_order) {
        int fd = capture_stderr();
        log_batch_start(on_wake, &wakes);
        log_info("before");
        log_warning("trouble");
        ck_assert_str_eq(written(fd), "schedulerd: <info> before\nschedulerd: <warning> trouble\n");
        log_batch_stop();
}
END_TEST

START_TEST(test_full_buffer_is_written) {
        int fd = capture_stderr();
        char big[3000];
        memset(big, 'x', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        log_batch_start(on_wake, &wakes);
        for (int i = 0; i < 15; i++)
                log_info("%d %s", i, big);
        /* more than the buffer holds: the first lines are out without a flush */
        ck_assert_ptr_nonnull(strstr(written(fd), "<info> 0 xxx"));
        log_flush();
        ck_assert_ptr_nonnull(strstr(written(fd), "<info> 14 xxx"));
        log_batch_stop();
}
END_TEST

START_TEST(test_fork_neither_repeats_nor_loses) {
        int fd = capture_stderr();
        log_batch_start(on_wake, &wakes);
        log_info("parent's");
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                log_info("child's"); /* nobody flushes in the child: written at once */
                _exit(0);
        }
        int st;
        ck_assert_int_eq(waitpid(pid, &st, 0), pid);
        ck_assert_str_eq(written(fd), "schedulerd: <info> parent's\nschedulerd: <info> child's\n");
        log_batch_stop();
}
END_TEST

START_TEST(test_exit_flushes) {
        int fd = capture_stderr();
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                log_batch_start(on_wake, &wakes);
                log_info("last words");
                exit(0);
        }
        int st;
        ck_assert_int_eq(waitpid(pid, &st, 0), pid);
        ck_assert_str_eq(written(fd), "schedulerd: <info> last words\n");
}
END_TEST

int main(void) {
        Suite *s = suite_create("log_batch");
        TCase *tc = tcase_create("core");
        tcase_add_test(tc, test_lines_wait_for_flush);
        tcase_add_test(tc, test_warning_writes_at_once_in_order);
        tcase_add_test(tc, test_full_buffer_is_written);
        tcase_add_test(tc, test_fork_neither_repeats_nor_loses);
        tcase_add_test(tc, test_exit_flushes);
        suite_add_tcase(s, tc);
        SRunner *sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
