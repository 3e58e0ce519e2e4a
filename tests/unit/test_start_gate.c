/* SPDX-License-Identifier: MIT */
#include <check.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>

#include "core/start-gate.h"
#include "../plugins/shared-probe.h"

#define SLOTS 64

/* A child waiting at SLOT; it writes {rc, id} to the returned pipe when start_gate_wait()
 * returns. */
typedef struct waiter {
        pid_t pid;
        int fd;
} waiter;

static volatile sig_atomic_t got_term;

static void on_term(int sig) {
        got_term = 1;
        start_gate_interrupt();
}

static bool term_seen(void) {
        return got_term != 0;
}

static waiter spawn_waiter(start_gate *g, unsigned slot) {
        sigset_t term, old;
        int p[2];
        ck_assert_int_eq(pipe(p), 0);
        /* blocked until the child's handler is in place, so an early SIGTERM is not fatal */
        sigemptyset(&term);
        sigaddset(&term, SIGTERM);
        ck_assert_int_eq(sigprocmask(SIG_BLOCK, &term, &old), 0);
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                struct sigaction sa = { .sa_handler = on_term }; /* no SA_RESTART: the wait sees EINTR */
                int64_t out[2] = { 0, 0 };
                close(p[0]);
                (void) sigaction(SIGTERM, &sa, NULL);
                (void) sigprocmask(SIG_SETMASK, &old, NULL);
                out[0] = start_gate_wait(g, slot, term_seen, &out[1]);
                (void) !write(p[1], out, sizeof(out));
                _exit(0);
        }
        ck_assert_int_eq(sigprocmask(SIG_SETMASK, &old, NULL), 0);
        close(p[1]);
        return (waiter) { .pid = pid, .fd = p[0] };
}

/* The waiter's {rc, id}, or false when it has said nothing within MS milliseconds. */
static bool waiter_result(waiter *w, int ms, int64_t out[2]) {
        struct pollfd pfd = { .fd = w->fd, .events = POLLIN };
        if (poll(&pfd, 1, ms) <= 0)
                return false;
        ck_assert_int_eq(read(w->fd, out, 2 * sizeof(int64_t)), 2 * sizeof(int64_t));
        return true;
}

static void waiter_done(waiter *w) {
        int st;
        ck_assert_int_eq(waitpid(w->pid, &st, 0), w->pid);
        ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        close(w->fd);
}

START_TEST(test_take_and_put) {
        start_gate *g = NULL;
        unsigned seen[SLOTS], s;
        ck_assert_int_eq(start_gate_new(SLOTS, &g), 0);
        for (unsigned i = 0; i < SLOTS; i++) {
                ck_assert_int_eq(start_gate_take(g, &seen[i]), 0);
                ck_assert_uint_lt(seen[i], SLOTS);
                for (unsigned k = 0; k < i; k++)
                        ck_assert_uint_ne(seen[i], seen[k]);
        }
        ck_assert_int_eq(start_gate_take(g, &s), -EBUSY);
        start_gate_put(g, seen[7]);
        start_gate_put(g, seen[7]); /* twice is harmless */
        ck_assert_int_eq(start_gate_take(g, &s), 0);
        ck_assert_uint_eq(s, seen[7]);
        ck_assert_int_eq(start_gate_take(g, &s), -EBUSY);
        start_gate_free(g);
        ck_assert_ptr_null(start_gate_free(NULL));
}
END_TEST

START_TEST(test_opened_waits_for_release) {
        start_gate *g = NULL;
        unsigned a, b;
        int64_t out[2];

        ck_assert_int_eq(start_gate_new(SLOTS, &g), 0);
        ck_assert_int_eq(start_gate_take(g, &a), 0);
        /* another slot on the same futex bit, so waking it wakes A's waiter too */
        do
                ck_assert_int_eq(start_gate_take(g, &b), 0);
        while (b % 32 != a % 32);
        waiter wa = spawn_waiter(g, a), wb = spawn_waiter(g, b);

        start_gate_open(g, a, 42);
        start_gate_abandon(g, b);
        start_gate_wake(g);
        ck_assert(waiter_result(&wb, 10000, out));
        ck_assert_int_eq(out[0], -ECANCELED);
        /* A was woken with B and must still be waiting: opened is not released */
        ck_assert(!waiter_result(&wa, 300, out));

        start_gate_release(g);
        ck_assert(waiter_result(&wa, 10000, out));
        ck_assert_int_eq(out[0], 0);
        ck_assert_int_eq(out[1], 42);
        waiter_done(&wa);
        waiter_done(&wb);
        start_gate_free(g);
}
END_TEST

START_TEST(test_one_release_for_many) {
        start_gate *g = NULL;
        waiter w[SLOTS];
        unsigned slot[SLOTS];
        int64_t out[2];

        ck_assert_int_eq(start_gate_new(SLOTS, &g), 0);
        for (unsigned i = 0; i < SLOTS; i++) {
                ck_assert_int_eq(start_gate_take(g, &slot[i]), 0);
                w[i] = spawn_waiter(g, slot[i]);
        }
        for (unsigned i = 0; i < SLOTS; i++)
                start_gate_open(g, slot[i], 1000 + i);
        start_gate_release(g);
        for (unsigned i = 0; i < SLOTS; i++) {
                ck_assert(waiter_result(&w[i], 10000, out));
                ck_assert_int_eq(out[0], 0);
                ck_assert_int_eq(out[1], 1000 + i);
                waiter_done(&w[i]);
        }
        start_gate_free(g);
}
END_TEST

START_TEST(test_signal_cancels_wait) {
        start_gate *g = NULL;
        unsigned a;
        int64_t out[2];

        ck_assert_int_eq(start_gate_new(SLOTS, &g), 0);
        ck_assert_int_eq(start_gate_take(g, &a), 0);
        waiter wa = spawn_waiter(g, a);
        ck_assert(!waiter_result(&wa, 100, out));
        ck_assert_int_eq(kill(wa.pid, SIGTERM), 0);
        ck_assert(waiter_result(&wa, 10000, out));
        ck_assert_int_eq(out[0], -EINTR);
        waiter_done(&wa);
        start_gate_free(g);
}
END_TEST

/* A child forked from the process that owns the gate, as every run is, holds the gate only
 * read-only and cannot make it writable in any way: a job must not release (or turn away)
 * another job's waiting process. */
START_TEST(test_child_cannot_write_gate) {
        start_gate *g = NULL;
        unsigned a;
        int64_t out[2];
        shared_probe sp;
        int p[2], st;

        ck_assert_int_eq(start_gate_new(SLOTS, &g), 0);
        ck_assert_int_eq(start_gate_take(g, &a), 0);
        waiter wa = spawn_waiter(g, a);
        ck_assert_int_eq(pipe(p), 0);
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                close(p[0]);
                if (shared_probe_run(&sp) < 0)
                        _exit(1);
                (void) !write(p[1], &sp, sizeof(sp));
                _exit(0);
        }
        close(p[1]);
        ck_assert_int_eq(read(p[0], &sp, sizeof(sp)), sizeof(sp));
        close(p[0]);
        ck_assert_int_eq(waitpid(pid, &st, 0), pid);
        ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        ck_assert_msg(sp.n_shared >= 1, "the child holds no view of the gate at all: %s", sp.names);
        ck_assert_msg(sp.n_writable == 0, "a child can write the gate: %s (shared: %s)", sp.first, sp.names);

        /* the waiter still waits, and the owner still releases it */
        ck_assert(!waiter_result(&wa, 100, out));
        start_gate_open(g, a, 7);
        start_gate_release(g);
        ck_assert(waiter_result(&wa, 10000, out));
        ck_assert_int_eq(out[0], 0);
        ck_assert_int_eq(out[1], 7);
        waiter_done(&wa);
        start_gate_free(g);
}
END_TEST

/* A SIGTERM at any point of a child's wait ends the wait, never slept through: sent as soon as
 * each waiter is forked, it lands before, during or after the futex call. */
START_TEST(test_signal_anywhere_cancels_wait) {
        start_gate *g = NULL;
        int64_t out[2];

        ck_assert_int_eq(start_gate_new(SLOTS, &g), 0);
        for (unsigned i = 0; i < 200; i++) {
                unsigned a;
                ck_assert_int_eq(start_gate_take(g, &a), 0);
                waiter wa = spawn_waiter(g, a);
                if (i % 2)
                        (void) waiter_result(&wa, (int) (i % 3), out); /* a little later, sometimes */
                ck_assert_int_eq(kill(wa.pid, SIGTERM), 0);
                ck_assert_msg(waiter_result(&wa, 10000, out), "waiter %u slept through SIGTERM", i);
                ck_assert_int_eq(out[0], -EINTR);
                waiter_done(&wa);
                start_gate_put(g, a);
        }
        start_gate_free(g);
}
END_TEST

static Suite *gate_suite(void) {
        Suite *s = suite_create("start_gate");
        TCase *tc = tcase_create("core");
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_take_and_put);
        tcase_add_test(tc, test_opened_waits_for_release);
        tcase_add_test(tc, test_one_release_for_many);
        tcase_add_test(tc, test_signal_cancels_wait);
        tcase_add_test(tc, test_signal_anywhere_cancels_wait);
        tcase_add_test(tc, test_child_cannot_write_gate);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(gate_suite());
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
