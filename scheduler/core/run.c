/* SPDX-License-Identifier: MIT */
#include <assert.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "basic/clock.h"
#include "basic/duration.h"
#include "basic/shared-maps.h"
#include "core/cgroup.h"
#include "core/job-credentials.h"
#include "core/job-user.h"
#include "core/jobctx.h"
#include "basic/log-fields.h"
#include "basic/log.h"
#include "core/run.h"

#define CHILD_MESSAGE_FD 3
/* above the descriptors the child arranges, so moving one never overwrites another */
#define CHILD_FD_SCRATCH 10
/* Output read per dispatch at most: a run printing without pause must not hold the loop (its
 * deadline, other fires, the control socket and the watchdog come between two reads). */
#define OUTPUT_READ_MAX (64 * 1024)
/* and OUTPUT_RATE_BYTES per OUTPUT_RATE_INTERVAL (~10 MB/s): above that the full pipe slows the
 * job down, not the daemon, and the loop still goes idle (the history commit waits for that).
 * Counted in bytes, not dispatches: a job writing a line at a time wakes the loop once per
 * line, and the former limit of 8 dispatches per interval held such a job to ~2,000 lines/s
 * (the azi-3 run posting 10,000 alarms, a line each, spent half its time blocked on its pipe). */
#define OUTPUT_RATE_INTERVAL (50 * USEC_PER_MSEC)
#define OUTPUT_RATE_BYTES (512 * 1024)
/* A read costs this much of the window at least: a job writing a few bytes at a time wakes the
 * loop at most 128 times per window (2,560/s), and what it writes meanwhile is read in one go. */
#define OUTPUT_READ_MIN_CHARGE 4096
/* The pipe of a run that used up a window grows to this (best effort): what it writes while the
 * window waits to end fits, and the job is slowed only past the rate itself. */
#define OUTPUT_PIPE_CHATTY (1024 * 1024)
/* Pipes grown at once, at most: pipe capacity counts against the user's pipe pages, and past
 * fs.pipe-user-pages-soft (16 MiB) a user's new pipes, the workers' and runs' included, get
 * two pages each (root is exempt; the daemon need not run as root). */
#define OUTPUT_PIPES_GROWN_MAX 12
/* What is read after the run's main process ended (its group killed first), beyond what its
 * pipe holds (OUTPUT_PIPE_CHATTY if grown): all the pipe held, the end of the output included
 * (its last lines say most), but bounded, since an escaped process could keep it full for ever. */
#define OUTPUT_DRAIN_MAX (256 * 1024)

static unsigned pipes_grown;
/* Lines of one run's output that go to the log: a burst, then a rate (journald drops above
 * 10,000 a 30 s by default anyway), and a cap for the whole run. The output tail in history
 * is kept regardless. */
#define LOG_LINES_BURST 10000
#define LOG_LINES_PER_SEC 1000
#define LOG_LINES_MAX 100000

static struct rlimit default_nofile = { RLIM_INFINITY, RLIM_INFINITY };
static bool default_nofile_set;

void run_set_default_nofile(const struct rlimit *l) {
        default_nofile = *l;
        default_nofile_set = true;
}

/* The job's `limits:`, so a leaking or runaway job stops at its own bound, not the machine's.
 * limits.tasks is the pids.max of the run's cgroup where the pids controller is the daemon's;
 * otherwise RLIMIT_NPROC (per user, and not binding root: the daemon warned at load,
 * cgroup_warn_tasks_limits()). */
void run_child_apply_limits(const job_limits *l) {
        struct rlimit r;
        if (l->tasks > 0 && cgroup_tasks_unavailable()) {
                r = (struct rlimit) { .rlim_cur = l->tasks, .rlim_max = l->tasks };
                if (setrlimit(RLIMIT_NPROC, &r) < 0)
                        fprintf(stderr, "<4/%s>cannot apply limits.tasks as RLIMIT_NPROC: %m\n", jobctx_log_tag());
        }
        if (l->address_space > 0) {
                r = (struct rlimit) { .rlim_cur = l->address_space, .rlim_max = l->address_space };
                if (setrlimit(RLIMIT_AS, &r) < 0)
                        fprintf(stderr, "<4/%s>cannot apply limits.address_space: %m\n", jobctx_log_tag());
        }
        if (l->cpu > 0) {
                rlim_t secs = (rlim_t) (l->cpu / USEC_PER_SEC);
                /* SIGXCPU at the limit, SIGKILL a second later if it is ignored */
                r = (struct rlimit) { .rlim_cur = secs, .rlim_max = secs + 1 };
                if (setrlimit(RLIMIT_CPU, &r) < 0)
                        fprintf(stderr, "<4/%s>cannot apply limits.cpu: %m\n", jobctx_log_tag());
        }
        if (l->open_files > 0) {
                r = (struct rlimit) { .rlim_cur = l->open_files, .rlim_max = l->open_files };
                if (setrlimit(RLIMIT_NOFILE, &r) < 0)
                        fprintf(stderr, "<4/%s>cannot apply limits.open_files: %m\n", jobctx_log_tag());
        } else if (default_nofile_set)
                (void) setrlimit(RLIMIT_NOFILE, &default_nofile);
}

/* The run's working directory is its job's state directory, entered without following a link
 * and only if it belongs to the user the run has: the daemon made it so (jobctx_make_state_dir())
 * or refused it and said why, and a job must not write through a link or into another user's
 * directory. A missing one is only warned about: the job may not need it. */
int run_child_enter_state_dir(const char *dir) {
        /* the identity is entered once per process (a run child, or a worker for its life) */
        static uid_t euid = (uid_t) -1;
        struct stat st, here;

        if (euid == (uid_t) -1)
                euid = geteuid();
        /* three system calls, not five (open, fchdir, fstat, close, geteuid): a worker enters a
         * state directory before every run */
        int k = fstatat(AT_FDCWD, dir, &st, AT_SYMLINK_NOFOLLOW);
        if (k < 0 && errno != ENOTDIR) {
                fprintf(stderr, "<4/%s>cannot enter state directory %s: %m\n", jobctx_log_tag(), dir);
                /* not the directory a worker's previous run left it in (another job's) */
                (void) !chdir("/");
                return 0;
        }
        if (k < 0 || !S_ISDIR(st.st_mode)) {
                fprintf(stderr, "<3/%s>state directory %s is a symbolic link or not a directory; not running the job "
                                "(the daemon's log says what to do)\n",
                        jobctx_log_tag(), dir);
                return -ELOOP;
        }
        if (st.st_uid != euid) {
                fprintf(stderr, "<3/%s>state directory %s is owned by uid %u, not by the run's uid %u; not running the "
                                "job (the daemon's log says what to do)\n",
                        jobctx_log_tag(), dir, (unsigned) st.st_uid, (unsigned) euid);
                return -EPERM;
        }
        if (chdir(dir) < 0 || stat(".", &here) < 0) {
                fprintf(stderr, "<4/%s>cannot enter state directory %s: %m\n", jobctx_log_tag(), dir);
                (void) !chdir("/");
                return 0;
        }
        /* chdir() follows a link the path may have become since the check: it must have landed
         * in the very directory checked */
        if (here.st_dev != st.st_dev || here.st_ino != st.st_ino) {
                fprintf(stderr, "<3/%s>state directory %s was replaced while the run entered it; not running the job "
                                "(the daemon's log says what to do)\n",
                        jobctx_log_tag(), dir);
                return -ELOOP;
        }
        return 0;
}

static void child_on_sigterm(int sig) {
        jobctx_cancel();
        start_gate_interrupt(); /* out of a wait at the gate, if in one */
}

/* The child: never returns. Async-signal-safety is not a concern here: the daemon is
 * single-threaded, so the child starts with consistent libc state. */
void run_child(const job_def *def, const char *dir, int64_t id, usec_t scheduled, unsigned attempt, int out_fd,
               int msg_fd, start_gate *gate, int slot, pid_t parent) {
        sigset_t all;
        struct sigaction sa = { .sa_handler = SIG_DFL };
        jobctx c;

        /* own process group, so the deadline can signal everything the job started */
        (void) setpgid(0, 0);
        /* and a subreaper: what the job starts stays below this process while it lives, even
         * after setsid() and a double fork; then it goes to the daemon, which ends it (orphans.c) */
        (void) prctl(PR_SET_CHILD_SUBREAPER, 1);
        /* if the daemon dies with SIGKILL, orphaned runs should not live on unnoticed */
        (void) prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
                _exit(RUN_EXIT_FAIL); /* it died before that: nobody would ever release or reap this */

        for (int s = 1; s < _NSIG; s++)
                if (s != SIGKILL && s != SIGSTOP)
                        (void) sigaction(s, &sa, NULL);
        sa.sa_handler = child_on_sigterm;
        (void) sigaction(SIGTERM, &sa, NULL);
        sigemptyset(&all);
        (void) sigprocmask(SIG_SETMASK, &all, NULL);

        int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (null >= 0 && null != STDIN_FILENO) {
                (void) dup2(null, STDIN_FILENO);
                close(null);
        }
        msg_fd = fcntl(msg_fd, F_DUPFD, CHILD_FD_SCRATCH);
        if (msg_fd < 0 || dup2(out_fd, STDOUT_FILENO) < 0 || dup2(out_fd, STDERR_FILENO) < 0 ||
            dup2(msg_fd, CHILD_MESSAGE_FD) < 0)
                _exit(RUN_EXIT_FAIL);
        /* nothing of the daemon's (sockets, database, event loop) stays open in a job */
        (void) close_range(CHILD_MESSAGE_FD + 1, ~0U, 0);
        /* nor any shared memory of the daemon's it could write (history.db's WAL index); the start
         * gate is read-only here already (start-gate.h) */
        int dropped = shared_maps_drop_writable();
        if (dropped < 0) {
                errno = -dropped;
                fprintf(stderr, "<3/%s>cannot drop the daemon's shared memory before running the job (reading "
                                "/proc/self/maps: %m); not running it. Is /proc mounted?\n",
                        jobctx_log_tag());
                _exit(RUN_EXIT_FAIL);
        }
        /* systemd's channel to the daemon is not the job's: a job must not report READY=1 or
         * pet the watchdog for it */
        (void) unsetenv("NOTIFY_SOCKET");
        (void) unsetenv("WATCHDOG_PID");
        (void) unsetenv("WATCHDOG_USEC");

        setvbuf(stdout, NULL, _IOLBF, 0);
        run_child_apply_limits(&def->limits);
        /* secrets are read while the child still has the daemon's privileges, then dropped */
        job_credentials_load(def);
        int qi = job_identity_enter(def);
        if (qi < 0) {
                fprintf(stderr, "<3/%s>cannot run as user %s: %s; the run did not start\n", jobctx_log_tag(),
                        def->identity.user ?: "(daemon)", strerror(-qi));
                _exit(RUN_EXIT_FAIL);
        }
        /* as the job's user: its directory must be its own (checked, never followed) */
        if (run_child_enter_state_dir(dir) < 0)
                _exit(RUN_EXIT_FAIL);
        if (gate && slot >= 0) {
                int q = start_gate_wait(gate, (unsigned) slot, jobctx_cancelled, &id);
                if (q == -EINTR) {
                        /* a SIGTERM while waiting ends it as that signal would have: never as
                         * a success of a plugin that did not run */
                        (void) signal(SIGTERM, SIG_DFL);
                        (void) raise(SIGTERM);
                }
                if (q < 0)
                        _exit(RUN_EXIT_FAIL);
        }
        jobctx_setup_run(&c, def, (uint64_t) id, scheduled, attempt, def->timeout, dir, STDERR_FILENO);
        sched_job_result res = def->plugin->desc->run(&c.base);

        fflush(stdout);
        fflush(stderr);
        if (c.message[0])
                (void) !write(CHILD_MESSAGE_FD, c.message, strnlen(c.message, sizeof(c.message)));
        switch (res) {
        case SCHED_JOB_OK:
                _exit(RUN_EXIT_OK);
        case SCHED_JOB_RETRY:
                _exit(RUN_EXIT_RETRY);
        default:
                _exit(RUN_EXIT_FAIL);
        }
}

static void tail_append(run_output *o, const char *p, size_t n) {
        for (size_t i = 0; i < n; i++) {
                o->tail[o->tail_pos] = p[i];
                o->tail_pos = (o->tail_pos + 1) % sizeof(o->tail);
        }
        o->tail_len = MIN(o->tail_len + n, sizeof(o->tail));
}

size_t run_output_tail(const run *r, char *buf) {
        const run_output *o = r->output;
        if (!o)
                return 0;
        size_t start = (o->tail_pos + sizeof(o->tail) - o->tail_len) % sizeof(o->tail);
        for (size_t i = 0; i < o->tail_len; i++)
                buf[i] = o->tail[(start + i) % sizeof(o->tail)];
        return o->tail_len;
}

/* Logs one complete output line. The level comes from the "<N/TAG>" prefix sched_job_log()
 * writes (jobctx.h); anything else the job wrote, "<0>" included, is output, logged at info. */
static void log_line(run *r, const char *s, size_t n) {
        const char *tag = jobctx_log_tag();
        size_t tl = strlen(tag);
        int level = LOG_INFO;
        const char *start = s;
        if (n >= tl + 4 && s[0] == '<' && s[1] >= '0' && s[1] <= '7' && s[2] == '/' && memcmp(s + 3, tag, tl) == 0 &&
            s[3 + tl] == '>') {
                level = s[1] - '0';
                s += tl + 4;
                n -= tl + 4;
        }
        /* only a sched_job_log() line may carry journal fields: job output is text */
        char fbuf[LOG_FIELDS_MAX * (LOG_FIELDS_KEY_MAX + LOG_FIELDS_VALUE_MAX + 2)];
        const char *fields[LOG_FIELDS_MAX];
        size_t nf = s != start ? log_fields_parse(s, n, fbuf, sizeof(fbuf), fields, LOG_FIELDS_MAX) : 0;
        log_full_fields(level, r->def->name, (uint64_t) r->id, (int) r->attempt, fields, nf, "%.*s", (int) n, s);
}

/* One complete line of output, to the log while its budget lasts. */
static void output_line(run *r, const char *s, size_t n) {
        if (line_budget_take(&r->log_budget, clock_now_monotonic())) {
                log_line(r, s, n);
                return;
        }
        if (r->log_budget.dropped == 1)
                log_full(LOG_WARNING, 0, r->def->name, (uint64_t) r->id, (int) r->attempt,
                         "Output %s %u lines%s; further lines of this run are not logged (the last %zu bytes are "
                         "kept in its history: schedctl history --output).",
                         line_budget_capped(&r->log_budget) ? "reached" : "is faster than",
                         line_budget_capped(&r->log_budget) ? LOG_LINES_MAX : LOG_LINES_PER_SEC,
                         line_budget_capped(&r->log_budget) ? "" : "/s", (size_t) HISTORY_OUTPUT_MAX);
}

void run_consume_output(run *r, const char *buf, size_t n) {
        if (n == 0)
                return;
        if (!r->output && !(r->output = calloc(1, sizeof(run_output)))) {
                /* nothing is kept, but the output is still logged, as it came */
                output_line(r, buf, n);
                return;
        }
        run_output *o = r->output;
        tail_append(o, buf, n);
        for (size_t i = 0; i < n; i++) {
                if (buf[i] == '\n' || o->line_len == sizeof(o->line)) {
                        output_line(r, o->line, o->line_len);
                        o->line_len = 0;
                        if (buf[i] == '\n')
                                continue;
                }
                o->line[o->line_len++] = buf[i];
        }
}

/* Reads what is available, MAX bytes at most, adding the count to *DONE; returns false at EOF
 * or error. */
static bool read_output(run *r, size_t max, size_t *done) {
        char buf[16384];
        if (r->output_fd < 0)
                return false; /* a worker's run: its worker's output is read by the pool */
        for (size_t start = *done; *done - start < max;) {
                ssize_t n = read(r->output_fd, buf, MIN(sizeof(buf), max - (*done - start)));
                if (n > 0) {
                        run_consume_output(r, buf, (size_t) n);
                        *done += (size_t) n;
                        continue;
                }
                if (n < 0 && errno == EINTR)
                        continue;
                return n < 0 && errno == EAGAIN;
        }
        return true;
}

static int on_output_resume(sd_event_source *s, uint64_t usec, void *userdata) {
        run *r = userdata;
        (void) sd_event_source_set_enabled(r->output_source, SD_EVENT_ON);
        return 0;
}

/* The run's grown pipe, if it has one, no longer counts toward OUTPUT_PIPES_GROWN_MAX. */
static void output_pipe_release(run *r) {
        if (r->output_pipe_grown) {
                r->output_pipe_grown = false;
                pipes_grown--;
        }
}

/* The window's bytes are read: the pipe waits until the window ends (its writer blocks, not the
 * daemon). Without a timer it is left on: unread output must never stall the run for good. */
static void output_pause(run *r) {
        usec_t resume = byte_window_resume(&r->output_window);
        int q;

        /* once, and only for runs that need it (see OUTPUT_PIPES_GROWN_MAX) */
        if (!r->output_pipe_tried && pipes_grown < OUTPUT_PIPES_GROWN_MAX) {
                r->output_pipe_tried = true;
                if (fcntl(r->output_fd, F_SETPIPE_SZ, OUTPUT_PIPE_CHATTY) >= 0) {
                        r->output_pipe_grown = true;
                        pipes_grown++;
                }
        }
        if (r->output_resume_source) {
                q = sd_event_source_set_time(r->output_resume_source, resume);
                if (q >= 0)
                        q = sd_event_source_set_enabled(r->output_resume_source, SD_EVENT_ONESHOT);
        } else
                q = sd_event_add_time(r->event, &r->output_resume_source, CLOCK_MONOTONIC, resume, USEC_PER_MSEC,
                                      on_output_resume, r);
        if (q >= 0)
                (void) sd_event_source_set_enabled(r->output_source, SD_EVENT_OFF);
        else
                /* no timer to resume it: read on, unlimited, rather than spin or stall */
                byte_window_init(&r->output_window, OUTPUT_RATE_INTERVAL, SIZE_MAX, 0);
}

static int on_output(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        run *r = userdata;
        usec_t now = clock_now_monotonic();
        size_t room = byte_window_room(&r->output_window, now, OUTPUT_READ_MAX), done = 0;

        if (room > 0) {
                bool open = read_output(r, room, &done);
                byte_window_used(&r->output_window, done);
                if (!open) {
                        sd_event_source_set_enabled(s, SD_EVENT_OFF);
                        return 0;
                }
                if (byte_window_room(&r->output_window, now, 1) > 0)
                        return 0;
        }
        output_pause(r);
        return 0;
}

static void signal_group(run *r, int sig) {
        if (r->pid > 0) {
                (void) kill(-r->pid, sig);
                r->signalled = true;
        }
        else if (r->in_worker && r->cancel_queued)
                r->cancel_queued(r); /* still waiting for a worker: it never starts */
        /* a SIGKILL ends the run's cgroup too: what left the group (setsid) is still in there */
        if (sig == SIGKILL)
                run_cgroup_kill(r->cgroup);
}

static int on_kill(sd_event_source *s, uint64_t usec, void *userdata) {
        run *r = userdata;
        log_full(LOG_WARNING, 0, r->def->name, (uint64_t) r->id, (int) r->attempt,
                 "still running %s after SIGTERM; sending SIGKILL", "5s");
        signal_group(r, SIGKILL);
        return 0;
}

static void arm_kill(run *r) {
        int enabled = SD_EVENT_OFF;
        if (!r->event)
                return;
        if (!r->kill_source) {
                (void) sd_event_add_time_relative(r->event, &r->kill_source, CLOCK_MONOTONIC, RUN_KILL_GRACE, 1, on_kill,
                                                  r);
                return;
        }
        /* spent while the pid was on its way (a launcher's late fork): the grace starts now */
        if (sd_event_source_get_enabled(r->kill_source, &enabled) >= 0 && enabled == SD_EVENT_OFF) {
                (void) sd_event_source_set_time_relative(r->kill_source, RUN_KILL_GRACE);
                (void) sd_event_source_set_enabled(r->kill_source, SD_EVENT_ONESHOT);
        }
}

static int on_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        run *r = userdata;
        char d[DURATION_MAX];
        log_full(LOG_WARNING, 0, r->def->name, (uint64_t) r->id, (int) r->attempt,
                 "timed out after %s; sending SIGTERM to its process group", duration_format(r->def->timeout, d, sizeof(d)));
        r->timed_out = true;
        signal_group(r, SIGTERM);
        arm_kill(r);
        return 0;
}

run_status run_classify(int code, int status, bool timed_out, bool cancelled, int *ret_exit_code, int *ret_signal,
                        bool *ret_retryable) {
        bool exited = code == CLD_EXITED;
        run_status st;
        bool retryable;

        if (timed_out) {
                st = RUN_STATUS_TIMED_OUT;
                retryable = true;
        } else if (cancelled) {
                st = RUN_STATUS_CANCELLED;
                retryable = false;
        } else if (!exited) {
                st = RUN_STATUS_CRASHED;
                retryable = true;
        } else if (status == RUN_EXIT_OK) {
                st = RUN_STATUS_SUCCEEDED;
                retryable = false;
        } else {
                st = RUN_STATUS_FAILED;
                /* SCHED_JOB_FAIL is permanent; any other code is a transient request or a
                 * plugin that called exit() itself */
                retryable = status != RUN_EXIT_FAIL;
        }
        *ret_exit_code = exited ? status : -1;
        *ret_signal = exited ? 0 : status;
        *ret_retryable = retryable;
        return st;
}

static int on_child_exit(sd_event_source *s, const siginfo_t *si, void *userdata) {
        run *r = userdata;

        /* the child is gone: first end anything it left behind in its group, so no grandchild
         * outlives the run or keeps writing, then collect what is left in the pipe (bounded:
         * something outside the group may still hold it open) */
        signal_group(r, SIGKILL);
        run_ended(r, si->si_code, si->si_status);
        return 0;
}

void run_ended(run *r, int code, int status) {
        run_finish(r, code, status);
        r->done(r, r->userdata);
}

void run_finish(run *r, int code, int status) {
        char msg[sizeof(r->message)];
        ssize_t n = -1;

        size_t drained = 0;
        (void) read_output(r, OUTPUT_DRAIN_MAX + (r->output_pipe_grown ? OUTPUT_PIPE_CHATTY : 0), &drained);
        output_pipe_release(r);
        if (r->output && r->output->line_len > 0) {
                output_line(r, r->output->line, r->output->line_len);
                r->output->line_len = 0;
        }
        if (r->log_budget.dropped > 0)
                log_full(LOG_NOTICE, 0, r->def->name, (uint64_t) r->id, (int) r->attempt,
                         "%" PRIu64 " of %" PRIu64 " lines of output were not logged.", r->log_budget.dropped,
                         r->log_budget.dropped + r->log_budget.passed);

        if (r->message_fd >= 0)
                n = read(r->message_fd, msg, sizeof(msg) - 1);
        if (n > 0) {
                msg[n] = '\0';
                snprintf(r->message, sizeof(r->message), "%s", msg);
        }

        r->status = run_classify(code, status, r->timed_out, r->cancelled, &r->exit_code, &r->signal,
                                 &r->wants_retry);
        r->finished = clock_now_realtime();
        usec_t mono = clock_now_monotonic();
        /* (a run sent ahead of its instant may end, refused, before it) */
        r->duration = mono > r->started_mono ? mono - r->started_mono : 0;

        if (r->status == RUN_STATUS_CANCELLED && r->cancel_reason[0]) {
                char own[sizeof(r->message)];
                snprintf(own, sizeof(own), "%s", r->message);
                snprintf(r->message, sizeof(r->message), own[0] ? "%s (%s)" : "%s%s", r->cancel_reason, own);
        }
        if (!r->message[0]) {
                if (r->status == RUN_STATUS_TIMED_OUT) {
                        char d[DURATION_MAX];
                        snprintf(r->message, sizeof(r->message), "timed out after %s",
                                 duration_format(r->def->timeout, d, sizeof(d)));
                } else if (r->status == RUN_STATUS_CRASHED)
                        snprintf(r->message, sizeof(r->message), "killed by signal %s (%d)", sigabbrev_np(r->signal) ?: "?",
                                 r->signal);
                else if (r->status == RUN_STATUS_CANCELLED)
                        snprintf(r->message, sizeof(r->message), "cancelled by daemon shutdown");
                else if (r->status == RUN_STATUS_FAILED && r->exit_code == RUN_EXIT_RETRY)
                        snprintf(r->message, sizeof(r->message), "asked to be retried");
                else if (r->status == RUN_STATUS_FAILED && r->exit_code != RUN_EXIT_FAIL)
                        snprintf(r->message, sizeof(r->message), "exited with status %d", r->exit_code);
        }

        r->child_source = sd_event_source_disable_unref(r->child_source);
        r->timeout_source = sd_event_source_disable_unref(r->timeout_source);
        r->kill_source = sd_event_source_disable_unref(r->kill_source);
        r->output_source = sd_event_source_disable_unref(r->output_source);
        r->output_resume_source = sd_event_source_disable_unref(r->output_resume_source);
        r->exited_pid = r->in_worker ? 0 : r->pid; /* a worker lives on */
        r->pid = 0;
}

/* The run's own cgroup, where the daemon has one to divide (named for WARM_PID, a warm run's
 * process, when > 0); without it the run still goes (the subreaper sweep ends what it leaves
 * behind), and the operator is told. */
static void run_make_cgroup(run *r, pid_t warm_pid) {
        int q = run_cgroup_new(r->def->name, r->id, warm_pid, r->def->limits.tasks, &r->cgroup);
        if (q < 0)
                log_full(LOG_WARNING, -q, r->def->name, (uint64_t) r->id, (int) r->attempt,
                         "Cannot create the run's cgroup (%m); it runs in the daemon's%s.",
                         r->def->limits.tasks > 0 ? ", without limits.tasks" : "");
}

int run_new(const job_def *def, const char *job_state_dir, int64_t id, int64_t first_id, run_trigger trigger,
            unsigned attempt, usec_t scheduled, usec_t started, run_done_fn done, void *userdata, run **ret) {
        run *r = malloc(sizeof(run)); /* every member is set just below */
        if (!r)
                return -ENOMEM;
        *r = (run) {
                .def = def,
                .job_index = SIZE_MAX,
                .id = id,
                .first_id = first_id,
                .trigger = trigger,
                .attempt = attempt,
                .scheduled = scheduled,
                .started = started,
                .started_mono = clock_now_monotonic(),
                .output_fd = -EBADF,
                .message_fd = -EBADF,
                .out_w = -EBADF,
                .msg_w = -EBADF,
                .slot = -1,
                .done = done,
                .userdata = userdata,
        };
        line_budget_init(&r->log_budget, LOG_LINES_BURST, LOG_LINES_PER_SEC, LOG_LINES_MAX);
        r->dir = strdup(job_state_dir);
        if (!r->dir) {
                run_free(r);
                return -ENOMEM;
        }
        *ret = r;
        return 0;
}

int run_prepare(const job_def *def, const char *job_state_dir, int64_t id, int64_t first_id, run_trigger trigger,
                unsigned attempt, usec_t scheduled, usec_t started, run_done_fn done, void *userdata, run **ret) {
        run *r;
        int q = run_new(def, job_state_dir, id, first_id, trigger, attempt, scheduled, started, done, userdata, &r);
        if (q < 0)
                return q;
        int out[2], msg[2];
        if (pipe2(out, O_CLOEXEC) < 0) {
                q = -errno;
                run_free(r);
                return q;
        }
        r->output_fd = out[0];
        r->out_w = out[1];
        if (pipe2(msg, O_CLOEXEC) < 0) {
                q = -errno;
                run_free(r);
                return q;
        }
        r->message_fd = msg[0];
        r->msg_w = msg[1];
        if (id > 0)
                run_make_cgroup(r, 0);
        *ret = r;
        return 0;
}

int run_prepare_warm(const job_def *def, const char *job_state_dir, usec_t scheduled, start_gate *gate,
                     run_done_fn done, void *userdata, run **ret) {
        unsigned slot;
        run *r;
        int q = start_gate_take(gate, &slot);
        if (q < 0)
                return q;
        q = run_prepare(def, job_state_dir, 0, 0, RUN_TRIGGER_SCHEDULE, 0, scheduled, 0, done, userdata, &r);
        if (q < 0) {
                start_gate_put(gate, slot);
                return q;
        }
        r->gate = gate;
        r->slot = (int) slot;
        r->warm = true;
        *ret = r;
        return 0;
}

int run_launch(run *r) {
        pid_t self = getpid();
        pid_t pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                /* into the run's cgroup before anything else: whatever it starts is in there */
                if (r->cgroup) {
                        int q = run_cgroup_enter(r->cgroup);
                        if (q < 0)
                                dprintf(r->out_w, "<4/%s>cannot enter the run's cgroup (%s); it runs in the daemon's, "
                                                  "without limits.tasks as pids.max\n",
                                        jobctx_log_tag(), strerror(-q));
                }
                run_child(r->def, r->dir, r->id, r->scheduled, r->attempt, r->out_w, r->msg_w, NULL, -1, self);
        }
        r->pid = pid;
        return 0;
}

/* R's deadline: its timeout from FROM (monotonic). */
static int add_timeout_from(sd_event *e, run *r, usec_t from) {
        if (r->def->timeout == USEC_INFINITY)
                return 0;
        return sd_event_add_time(e, &r->timeout_source, CLOCK_MONOTONIC, from + r->def->timeout, 1, on_timeout, r);
}

static int add_timeout(sd_event *e, run *r) {
        return add_timeout_from(e, r, clock_now_monotonic());
}

void run_go(run *r, int64_t id, int64_t first_id, run_trigger trigger) {
        assert(r->warm && r->slot >= 0);
        r->warm = false;
        r->id = id;
        r->first_id = first_id;
        r->trigger = trigger;
        start_gate_open(r->gate, (unsigned) r->slot, id);
}

int run_released(run *r, usec_t started) {
        r->started = started;
        r->started_mono = clock_now_monotonic();
        return add_timeout(r->event, r);
}

void run_abandon(run *r) {
        if (!r || !r->warm || r->abandoned)
                return;
        r->abandoned = true;
        start_gate_abandon(r->gate, (unsigned) r->slot);
}

int run_watch_io(sd_event *e, run *r) {
        int q;
        r->event = e;
        close(r->out_w);
        close(r->msg_w);
        r->out_w = r->msg_w = -EBADF;
        (void) fcntl(r->output_fd, F_SETFL, O_NONBLOCK);
        (void) fcntl(r->message_fd, F_SETFL, O_NONBLOCK);
        byte_window_init(&r->output_window, OUTPUT_RATE_INTERVAL, OUTPUT_RATE_BYTES, OUTPUT_READ_MIN_CHARGE);
        q = sd_event_add_io(e, &r->output_source, r->output_fd, EPOLLIN, on_output, r);
        if (q >= 0 && !r->warm)
                q = add_timeout(e, r);
        return q;
}

int run_dispatched(sd_event *e, run *r, pid_t worker, usec_t started) {
        usec_t now = clock_now_realtime();
        r->event = e;
        r->pid = worker;
        /* it started then, not when it was claimed and queued: started_usec, the duration and the
         * deadline all count from there (for a run sent ahead of its instant, a little ahead) */
        r->started = started;
        r->started_mono = clock_now_monotonic() + (started > now ? started - now : 0);
        return add_timeout_from(e, r, r->started_mono);
}

int run_watch_child(run *r, pid_t pid) {
        int q;
        r->pid = pid;
        (void) setpgid(pid, pid);
        /* a launcher's child: into its cgroup now, ahead of its fire, while it has started nothing
         * (warm, at the gate); one whose pid came after its gate opened goes in late, but what
         * it starts from then on is in there, and its end kills them all */
        if (r->gate && !r->cgroup && cgroup_enabled()) {
                run_make_cgroup(r, pid);
                q = r->cgroup ? run_cgroup_attach(r->cgroup, pid) : 0;
                if (q < 0) {
                        log_full(LOG_WARNING, -q, r->def->name, (uint64_t) r->id, (int) r->attempt,
                                 "Cannot move the run's process %d into its cgroup (%m); it runs in the daemon's%s.",
                                 (int) pid, r->def->limits.tasks > 0 ? ", without limits.tasks" : "");
                        r->cgroup = run_cgroup_end(r->cgroup, r->def->name, r->id, (int) r->attempt);
                }
        }
        q = sd_event_add_child(r->event, &r->child_source, pid, WEXITED, on_child_exit, r);
        if (q < 0) {
                (void) kill(-pid, SIGKILL);
                (void) waitpid(pid, NULL, 0);
                r->pid = 0;
                return q;
        }
        /* a deadline or a shutdown that came while the pid was on its way */
        if (r->killed)
                signal_group(r, SIGKILL);
        else if (r->timed_out || r->cancelled) {
                signal_group(r, SIGTERM);
                if (r->timed_out)
                        arm_kill(r);
        }
        return 0;
}

int run_watch(sd_event *e, run *r) {
        int q = run_watch_io(e, r);
        if (q >= 0)
                return run_watch_child(r, r->pid);
        (void) kill(-r->pid, SIGKILL);
        (void) waitpid(r->pid, NULL, 0);
        r->pid = 0;
        return q;
}

int run_start(sd_event *e, const job_def *def, const char *job_state_dir, int64_t id, int64_t first_id,
              run_trigger trigger, unsigned attempt, usec_t scheduled, usec_t started, run_done_fn done,
              void *userdata, run **ret) {
        run *r;
        int q = run_prepare(def, job_state_dir, id, first_id, trigger, attempt, scheduled, started, done, userdata, &r);
        if (q < 0)
                return q;
        q = run_launch(r);
        if (q >= 0)
                q = run_watch(e, r);
        if (q < 0) {
                run_free(r);
                return q;
        }
        *ret = r;
        return 0;
}

void run_cancel(run *r) {
        /* a run that timed out keeps its own escalation (armed by on_timeout()); otherwise the
         * caller's grace decides when run_kill() comes, not RUN_KILL_GRACE */
        if (!r->timed_out)
                r->cancelled = true;
        signal_group(r, SIGTERM);
}

void run_cancel_because(run *r, const char *reason) {
        if (!r->timed_out)
                snprintf(r->cancel_reason, sizeof(r->cancel_reason), "%s", reason);
        run_cancel(r);
}

void run_kill(run *r) {
        r->killed = true;
        signal_group(r, SIGKILL);
}

run *run_free(run *r) {
        if (!r)
                return NULL;
        sd_event_source_disable_unref(r->child_source);
        sd_event_source_disable_unref(r->timeout_source);
        sd_event_source_disable_unref(r->kill_source);
        sd_event_source_disable_unref(r->output_source);
        sd_event_source_disable_unref(r->output_resume_source);
        output_pipe_release(r);
        if (r->output_fd >= 0)
                close(r->output_fd);
        if (r->message_fd >= 0)
                close(r->message_fd);
        if (r->out_w >= 0)
                close(r->out_w);
        if (r->msg_w >= 0)
                close(r->msg_w);
        if (r->slot >= 0)
                start_gate_put(r->gate, (unsigned) r->slot);
        run_cgroup_end(r->cgroup, r->def->name, r->id, (int) r->attempt);
        free(r->output);
        free(r->dir);
        free(r);
        return NULL;
}
