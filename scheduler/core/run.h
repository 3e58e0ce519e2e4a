/* SPDX-License-Identifier: MIT */
#pragma once

/* One run of a job: a child process forked from the daemon with the plugin already loaded, in
 * its own process group, its stdout/stderr captured line by line into the log (tagged with
 * job, run id and attempt; a flood is rate-limited and capped) and the last HISTORY_OUTPUT_MAX
 * bytes kept for history; a deadline enforced with SIGTERM to the group and SIGKILL 5 s later. */

#include <signal.h>
#include <sys/resource.h>
#include <systemd/sd-event.h>

#include "store/history.h"
#include "basic/byte-window.h"
#include "basic/line-budget.h"
#include "basic/macro.h"
#include "core/registry.h"
#include "basic/run-status.h"
#include "core/start-gate.h"

#define RUN_KILL_GRACE (5 * USEC_PER_SEC)

/* Exit codes a run child uses for the plugin's results. 75 is EX_TEMPFAIL. */
#define RUN_EXIT_OK 0
#define RUN_EXIT_FAIL 1
#define RUN_EXIT_RETRY 75

typedef struct run run;
typedef void (*run_done_fn)(run *r, void *userdata);

/* What a run keeps of its output, allocated at its first byte: most runs write none, and inline
 * these 5 KiB made every run 6.8 KiB (10,000 queued worker runs: 68 MiB, and the page faults
 * and zeroing of each run's allocation in every herd; issue 16). */
typedef struct run_output {
        /* ring of the last output bytes */
        char tail[HISTORY_OUTPUT_MAX];
        size_t tail_len, tail_pos;
        /* the current unfinished line */
        char line[1024];
        size_t line_len;
} run_output;

struct run {
        const job_def *def;
        size_t job_index; /* def's place in its registry, if the owner set it (SIZE_MAX: not set) */
        int64_t id;
        int64_t first_id; /* the attempt-0 run this retries, or id */
        run_trigger trigger;
        unsigned attempt;
        usec_t scheduled;     /* logical instant */
        usec_t started;       /* wall clock */
        usec_t started_mono;
        pid_t pid;
        pid_t exited_pid; /* in the done callback: the main process, not reaped until it returns */
        char *dir;        /* the job's state directory: the child's working directory */
        int out_w, msg_w; /* the child's ends of the pipes, until it is forked */
        /* A warm run is forked ahead of its fire and waits at its SLOT of the start gate for
         * run_go() */
        bool warm, abandoned;
        start_gate *gate;
        int slot;
        /* forked by a launcher: the pid is on its way (launching) from this launcher */
        bool launching;
        void *launcher;
        /* runs in a worker process (core/worker-pool.h): pid is the worker's while it runs there,
         * 0 while it waits for one; cancel_queued ends it then (called by run_cancel/run_kill) */
        bool in_worker;
        /* "Started" was logged: a run sent ahead to a worker that ended before its instant is
         * dispatched again, to another one, and says so instead */
        bool start_logged;
        /* its start (started, pid) is not in history yet: written at the batch's commit, or
         * with its result if it ends first (manager_worker_dispatched()) */
        bool start_owed;
        pid_t start_owed_pid; /* the worker's: pid is cleared when the run ends */
        void (*cancel_queued)(run *r);
        void *queue_owner;
        sd_event *event;
        /* its cgroup (core/cgroup.h), or NULL: none was delegated to the daemon */
        struct run_cgroup *cgroup;

        sd_event_source *child_source, *output_source, *timeout_source, *kill_source;
        /* re-enables output_source when the byte window that paused it ends */
        sd_event_source *output_resume_source;
        int output_fd, message_fd;
        byte_window output_window;
        bool output_pipe_tried, output_pipe_grown; /* its pipe was grown (OUTPUT_PIPE_CHATTY) */

        run_output *output; /* NULL until it writes */
        /* lines of output that may still go to the log (a flood is cut, and said so once) */
        line_budget log_budget;

        bool timed_out, cancelled, killed;
        bool signalled; /* a signal went to its process group (for a worker's run: the worker's) */
        char cancel_reason[256]; /* why it was cancelled, if not for shutdown ("" otherwise) */

        /* outcome, valid in the done callback */
        run_status status;
        int exit_code, signal;
        bool wants_retry;
        usec_t finished, duration;
        char message[1024];

        run_done_fn done;
        void *userdata;
        void *owner_data; /* for the manager: its job and list links */
        run *next, *prev;
};

/* Forks the run child for DEF and starts supervising it on E. The child runs the plugin's run
 * callback with a context for (ID, SCHEDULED, ATTEMPT) and exits; DONE is called once with the
 * outcome filled in, after which the caller frees the run with run_free(). JOB_STATE_DIR is the
 * job's directory (the child's working directory). Returns 0 and the run, or -errno (fork,
 * pipe or event source failure; nothing is left running). */
int run_start(sd_event *e, const job_def *def, const char *job_state_dir, int64_t id, int64_t first_id,
              run_trigger trigger, unsigned attempt, usec_t scheduled, usec_t started, run_done_fn done,
              void *userdata, run **ret);

/* A run without a process or pipes yet (what run_prepare() starts from; a worker's run stays
 * so: its worker's output is read by the pool and handed over with run_consume_output()). */
int run_new(const job_def *def, const char *job_state_dir, int64_t id, int64_t first_id, run_trigger trigger,
            unsigned attempt, usec_t scheduled, usec_t started, run_done_fn done, void *userdata, run **ret);

/* A worker's run was handed to the worker WORKER (its process group leader) at STARTED (the
 * wall clock read just before the request went: the job's code cannot start earlier): that is
 * its start (r->started), the deadline is armed from now on E, and signals for the run go to
 * that group. Returns 0 or -errno (the
 * deadline could not be armed). */
int run_dispatched(sd_event *e, run *r, pid_t worker, usec_t started);

/* Output of the run: appended to its tail, complete lines logged (tagged with its job and id). */
void run_consume_output(run *r, const char *buf, size_t n);

/* The run's process (or its worker's run) ended as siginfo's CODE/STATUS say: what is left of
 * its output and message is read, the outcome classified, the done callback called. */
void run_ended(run *r, int code, int status);
/* run_ended() without the done callback, which the caller makes later (r->done): the outcome,
 * finish time and duration are taken now, its deadline and watches are disarmed, R->pid is 0. */
void run_finish(run *r, int code, int status);

/* In a run child or worker: the job's `limits:` applied with setrlimit() (a failure is
 * reported on stderr), so a leaking or runaway job stops at its own bound, not the machine's. */
void run_child_apply_limits(const job_limits *l);

/* In a run child or worker, as the job's user: enters DIR, the job's state directory, without
 * following a link and only if it belongs to that user. Returns 0 (also when it is missing:
 * only warned about, the job may not need it) or -ELOOP/-EPERM when the run must not start
 * (said on stderr). */
int run_child_enter_state_dir(const char *dir);

/* run_start() in three steps, so a batch of due runs can be forked back to back: every page the
 * daemon writes between two forks is a copy-on-write fault while the children share it, so
 * nothing but fork() should happen between them. run_prepare() allocates the run and its pipes;
 * run_launch() only forks; run_watch() closes the child's ends and adds the event sources. On
 * failure of launch or watch the caller frees the run with run_free(). */
int run_prepare(const job_def *def, const char *job_state_dir, int64_t id, int64_t first_id, run_trigger trigger,
                unsigned attempt, usec_t scheduled, usec_t started, run_done_fn done, void *userdata, run **ret);
int run_launch(run *r);
int run_watch(sd_event *e, run *r);

/* run_watch() in two halves, for a child forked elsewhere (launcher.h): run_watch_io() closes
 * the child's pipe ends and watches the output; run_watch_child() adopts PID, which must be a
 * child of this process, and delivers a deadline or shutdown signal that came before it. */
int run_watch_io(sd_event *e, run *r);
int run_watch_child(run *r, pid_t pid);

/* The run child's body: sets itself up, runs the plugin's run callback for DEF and exits with
 * the result (RUN_EXIT_*). A GATE and SLOT >= 0 make it a warm child that first waits there for
 * its run id. PARENT is the daemon's pid: a child whose parent is already gone exits. Never
 * returns. */
_Noreturn void run_child(const job_def *def, const char *dir, int64_t id, usec_t scheduled, unsigned attempt,
                         int out_fd, int msg_fd, start_gate *gate, int slot, pid_t parent);

/* A warm run: run_prepare() for the cron fire at SCHEDULED with a slot of GATE, whose child
 * (forked by a launcher, see launcher.h) sets itself up (process group, signals, descriptors,
 * working directory, limits) and then waits at the gate until run_go() gives it its run id, or
 * exits silently when run_abandon() turns it away. Moving the fork ahead of the instant is what
 * lets a fire start on time when many are due at once: the fork costs ~1 ms on a small VM, the
 * release one futex wake for all of them. -EBUSY when the gate has no free slot. */
int run_prepare_warm(const job_def *def, const char *job_state_dir, usec_t scheduled, start_gate *gate,
                     run_done_fn done, void *userdata, run **ret);

/* Opens the gate for a watched warm run as run ID (FIRST_ID for its retries) with TRIGGER. The
 * child starts at the next start_gate_release(); then run_released() records when. */
void run_go(run *r, int64_t id, int64_t first_id, run_trigger trigger);

/* After the gate's wake: the run started at STARTED (wall clock); arms its deadline. */
int run_released(run *r, usec_t started);

/* Turns a warm run's child away (it exits at the next start_gate_wake() without running the
 * plugin). Its done callback still comes, with r->warm and r->abandoned set. NULL is fine. */
void run_abandon(run *r);

/* The RLIMIT_NOFILE a run starts with (unless its job sets limits.open_files): the daemon
 * raises its own soft limit for the descriptors of many concurrent runs, but a job should see
 * the limit the daemon was started with (select() breaks above 1024). */
void run_set_default_nofile(const struct rlimit *l);

/* Asks the run to stop: SIGTERM to its process group now. SIGKILL is the caller's, with
 * run_kill() when its own grace is over (shutdown_grace), unless the run had already timed out:
 * then its deadline's escalation (SIGKILL RUN_KILL_GRACE after the SIGTERM) stays. Its status
 * becomes cancelled (shutdown) unless it had already timed out. */
void run_cancel(run *r);

/* run_cancel() for REASON, which becomes the run's recorded message (the plugin's own message,
 * if any, is appended in parentheses). */
void run_cancel_because(run *r, const char *reason);

/* SIGKILL to the run's process group (end of shutdown grace). */
void run_kill(run *r);

/* The output tail, oldest byte first, copied into BUF (HISTORY_OUTPUT_MAX bytes). Returns the
 * number of bytes. */
size_t run_output_tail(const run *r, char *buf);

run *run_free(run *r);

/* Pure: how a child's end maps to a run status. CODE/STATUS are siginfo's si_code/si_status.
 * Sets *ret_exit_code (-1 when killed), *ret_signal (0 when exited) and *ret_retryable (the
 * retry policy applies: the plugin asked for a retry, the run timed out or crashed, or it
 * exited with a code the contract does not define). */
run_status run_classify(int code, int status, bool timed_out, bool cancelled, int *ret_exit_code, int *ret_signal,
                        bool *ret_retryable);
