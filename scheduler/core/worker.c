/* SPDX-License-Identifier: MIT */
/* The worker process's side of isolation: worker (worker.h); the daemon's side is
 * worker-pool.c. */
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include "basic/clock.h"
#include "basic/shared-maps.h"
#include "core/job-credentials.h"
#include "core/job-user.h"
#include "core/run.h"
#include "core/worker.h"

static volatile sig_atomic_t terminating;

static void worker_on_sigterm(int sig) {
        terminating = 1;
        jobctx_cancel();
}

/* The handler, again before every run: a plugin may have changed it in a run before. */
static void install_sigterm(void) {
        struct sigaction sa = { .sa_handler = worker_on_sigterm };
        (void) sigaction(SIGTERM, &sa, NULL);
}

/* Setup as for a run child (run_child()), once for the worker's life. Exits on failure: what
 * is wrong was said on stderr, which the daemon logs with the run it had sent. */
static void worker_setup(const job_def *proto, int sock, int out, pid_t parent) {
        struct sigaction sa = { .sa_handler = SIG_DFL };
        sigset_t none;

        /* its own process group: a deadline signals the worker and whatever its run started */
        (void) setpgid(0, 0);
        (void) prctl(PR_SET_CHILD_SUBREAPER, 1);
        (void) prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
                _exit(RUN_EXIT_FAIL);
        for (int s = 1; s < _NSIG; s++)
                if (s != SIGKILL && s != SIGSTOP)
                        (void) sigaction(s, &sa, NULL);
        install_sigterm();
        sigemptyset(&none);
        (void) sigprocmask(SIG_SETMASK, &none, NULL);

        int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (null >= 0 && null != STDIN_FILENO) {
                (void) dup2(null, STDIN_FILENO);
                close(null);
        }
        /* out and sock are above the daemon's standard descriptors: moving them overwrites neither */
        if (dup2(out, STDOUT_FILENO) < 0 || dup2(out, STDERR_FILENO) < 0 ||
            (sock != WORKER_SOCKET_FD && dup2(sock, WORKER_SOCKET_FD) < 0))
                _exit(RUN_EXIT_FAIL);
        /* not inherited by what a job execs: the daemon's end of the socket must see end of file
         * when the worker dies (the daemon does not rely on it, see on_worker_exit()) */
        (void) fcntl(WORKER_SOCKET_FD, F_SETFD, FD_CLOEXEC);
        (void) close_range(WORKER_SOCKET_FD + 1, ~0U, 0);
        int dropped = shared_maps_drop_writable();
        if (dropped < 0) {
                errno = -dropped;
                fprintf(stderr, "<3/%s>cannot drop the daemon's shared memory before running jobs (reading "
                                "/proc/self/maps: %m); the worker does not start. Is /proc mounted?\n",
                        jobctx_log_tag());
                _exit(RUN_EXIT_FAIL);
        }
        (void) unsetenv("NOTIFY_SOCKET");
        (void) unsetenv("WATCHDOG_PID");
        (void) unsetenv("WATCHDOG_USEC");
        setvbuf(stdout, NULL, _IOLBF, 0);
        (void) prctl(PR_SET_NAME, "sched-worker");
        /* a run sent ahead starts at its instant: woken then, not up to 50 us later */
        (void) prctl(PR_SET_TIMERSLACK, 1UL);

        /* limits.cpu counts per run (run_cpu_limit()); the others bound the worker */
        job_limits l = proto->limits;
        l.cpu = 0;
        run_child_apply_limits(&l);
        job_credentials_load(proto);
        int q = job_identity_enter(proto);
        if (q < 0) {
                fprintf(stderr, "<3/%s>cannot run as user %s: %s; the worker does not start\n", jobctx_log_tag(),
                        proto->identity.user ?: "(daemon)", strerror(-q));
                _exit(RUN_EXIT_FAIL);
        }
        /* the daemon's heap it will never use: fewer pages to hold */
        (void) malloc_trim(0);
}

/* limits.cpu per run: RLIMIT_CPU counts the process's whole life, so its soft limit is moved
 * to what the worker used so far plus the job's limit (SIGXCPU kills the worker there). */
static void run_cpu_limit(const job_def *def) {
        struct rlimit r;
        struct rusage u;
        if (def->limits.cpu == 0 || getrusage(RUSAGE_SELF, &u) < 0 || getrlimit(RLIMIT_CPU, &r) < 0)
                return;
        rlim_t used = (rlim_t) (u.ru_utime.tv_sec + u.ru_stime.tv_sec);
        rlim_t want = used + (rlim_t) (def->limits.cpu / USEC_PER_SEC);
        r.rlim_cur = r.rlim_max == RLIM_INFINITY ? want : MIN(want, r.rlim_max);
        if (setrlimit(RLIMIT_CPU, &r) < 0)
                fprintf(stderr, "<4/%s>cannot apply limits.cpu: %m\n", jobctx_log_tag());
}

static void set_cause(const worker_request *req, size_t n) {
        static sched_job_cause_info info;
        if (!req->has_cause || n < sizeof(*req)) {
                jobctx_set_cause(NULL);
                return;
        }
        info = (sched_job_cause_info) {
                .job = req->cause_job,
                .run_id = (uint64_t) req->cause_run_id,
                .status = req->cause_status,
                .message = req->cause_message,
                .scheduled = req->cause_scheduled,
                .finished = req->cause_finished,
        };
        jobctx_set_cause(&info); /* copies */
}

static int run_one(const registry *reg, const worker_request *req, size_t n, char *message, size_t message_size) {
        const job_def *def = reg->jobs[req->job];
        _cleanup_free_ char *dir = jobctx_state_dir_path(reg, def);
        jobctx c;

        message[0] = '\0';
        if (!dir || run_child_enter_state_dir(dir) < 0)
                return RUN_EXIT_FAIL;
        set_cause(req, n);
        run_cpu_limit(def);
        jobctx_run_reset();
        if (terminating)
                jobctx_cancel(); /* a SIGTERM between two runs still cancels this one */
        install_sigterm();
        jobctx_setup_run(&c, def, (uint64_t) req->id, req->scheduled, req->attempt, def->timeout, dir, STDERR_FILENO);
        sched_job_result res = def->plugin->desc->run(&c.base);
        fflush(stdout);
        fflush(stderr);
        snprintf(message, message_size, "%s", c.message);
        return res == SCHED_JOB_OK ? RUN_EXIT_OK : res == SCHED_JOB_RETRY ? RUN_EXIT_RETRY : RUN_EXIT_FAIL;
}

/* Whether the address space is past 3/4 of LIMIT (0: none). */
static bool near_address_space_limit(uint64_t limit) {
        unsigned long pages = 0;
        if (limit == 0)
                return false;
        FILE *f = fopen("/proc/self/statm", "re");
        if (!f)
                return false;
        if (fscanf(f, "%lu", &pages) != 1)
                pages = 0;
        fclose(f);
        return (uint64_t) pages * (uint64_t) sysconf(_SC_PAGESIZE) > limit / 4 * 3;
}

static void send_reply(worker_reply *rep) {
        size_t len = offsetof(worker_reply, message) + strnlen(rep->message, sizeof(rep->message) - 1) + 1;
        rep->answered = clock_now_realtime();
        while (send(WORKER_SOCKET_FD, rep, len, MSG_NOSIGNAL) < 0)
                if (errno != EINTR)
                        _exit(EXIT_FAILURE);
}

/* Requests read ahead: the daemon queues several behind the current run (worker-pool.c), and
 * one recvmmsg() takes them all, not one recv() each. */
#define INBOX_MAX 65
static struct {
        worker_request req[INBOX_MAX];
        struct mmsghdr msg[INBOX_MAX];
        struct iovec iov[INBOX_MAX];
        unsigned head, n;
} inbox;

/* The next request into *REQ: its size, 0 at end of file, -1 with errno (EINTR: a signal came
 * while none was there). Blocks until one comes unless DONTWAIT (then -1 with EAGAIN). */
static ssize_t next_request(worker_request *req, bool dontwait) {
        if (inbox.n == 0) {
                for (unsigned i = 0; i < INBOX_MAX; i++) {
                        inbox.iov[i] = (struct iovec) { &inbox.req[i], sizeof(inbox.req[i]) };
                        inbox.msg[i] = (struct mmsghdr) { .msg_hdr = { .msg_iov = &inbox.iov[i], .msg_iovlen = 1 } };
                }
                int k = recvmmsg(WORKER_SOCKET_FD, inbox.msg, INBOX_MAX, dontwait ? MSG_DONTWAIT : MSG_WAITFORONE, NULL);
                if (k <= 0)
                        return k;
                inbox.head = 0;
                inbox.n = (unsigned) k;
        }
        size_t n = inbox.msg[inbox.head].msg_len;
        memcpy(req, &inbox.req[inbox.head], MIN(n, sizeof(*req)));
        inbox.head++;
        inbox.n--;
        return (ssize_t) n;
}

/* Asked to stop: every request already sent (read ahead, or still in the socket) is answered
 * as never started, in order, then the worker exits with CODE. */
_Noreturn static void refuse_queued_and_exit(int code) {
        worker_request req;
        ssize_t n;
        while ((n = next_request(&req, true)) > 0 || (n < 0 && errno == EINTR))
                if (n >= (ssize_t) WORKER_REQUEST_SHORT) {
                        worker_reply rep = { .seq = req.seq, .id = req.id, .exit_code = RUN_EXIT_FAIL,
                                             .flags = WORKER_REPLY_NOT_RUN };
                        send_reply(&rep);
                }
        _exit(code);
}

static void write_marker(const uint8_t *marker) {
        while (write(STDOUT_FILENO, marker, WORKER_MARKER_SIZE) < 0)
                if (errno != EINTR)
                        _exit(EXIT_FAILURE); /* the daemon's end is gone: nothing to answer to */
}

void worker_main(const registry *reg, const job_def *proto, int sock, int out, pid_t parent, const uint8_t *marker) {
        uint8_t m[WORKER_MARKER_SIZE];

        memcpy(m, marker, sizeof(m));
        worker_setup(proto, sock, out, parent);

        for (;;) {
                worker_request req;
                worker_reply rep = {};
                struct rusage u = {};

                ssize_t n = next_request(&req, false);
                if (!terminating) {
                        if (n < 0 && errno == EINTR)
                                continue;
                        if (n <= 0)
                                _exit(n == 0 ? EXIT_SUCCESS : EXIT_FAILURE);
                        if ((size_t) n < WORKER_REQUEST_SHORT || req.job >= reg->n_jobs)
                                _exit(EXIT_FAILURE); /* not our protocol: the daemon replaces this worker */
                        /* sent ahead of its instant (fire.c): it starts there, without the daemon */
                        if (req.not_before > 0)
                                while (!terminating &&
                                       clock_sleep_until_realtime(req.not_before, WORKER_AHEAD_MAX) == -EINTR)
                                        ;
                }
                if (terminating) {
                        /* the SIGTERM (a cancellation, shutdown) came before this run started,
                         * or while it waited for its instant: it is not run, nor those behind it */
                        if (n >= (ssize_t) WORKER_REQUEST_SHORT) {
                                rep = (worker_reply) { .seq = req.seq, .id = req.id, .exit_code = RUN_EXIT_FAIL,
                                                       .flags = WORKER_REPLY_NOT_RUN };
                                send_reply(&rep);
                        }
                        refuse_queued_and_exit(EXIT_SUCCESS);
                }
                rep.seq = req.seq;
                rep.id = req.id;
                usec_t began = clock_now_monotonic();
                rep.exit_code = run_one(reg, &req, (size_t) n, rep.message, sizeof(rep.message));
                rep.took = clock_now_monotonic() - began;
                (void) getrusage(RUSAGE_SELF, &u);
                rep.max_rss_kib = (uint32_t) MIN(u.ru_maxrss, (long) UINT32_MAX);
                if (near_address_space_limit(proto->limits.address_space))
                        rep.flags |= WORKER_REPLY_NEAR_LIMIT;
                /* the run's output ends here, before its reply (worker.h) */
                write_marker(m);
                send_reply(&rep);
                /* asked to stop (deadline, shutdown): answered, and replaced */
                if (terminating)
                        refuse_queued_and_exit(rep.exit_code);
        }
}
