/* SPDX-License-Identifier: MIT */
#pragma once

/* One run of a job: a child process forked from the daemon with the plugin already loaded, in
 * its own process group, its stdout/stderr captured line by line into the log (tagged with
 * job, run id and attempt) and the last HISTORY_OUTPUT_MAX bytes kept for history; a deadline
 * enforced with SIGTERM to the group and SIGKILL 5 s later. */

#include <signal.h>
#include <systemd/sd-event.h>

#include "history.h"
#include "macro.h"
#include "registry.h"
#include "run-status.h"

#define RUN_KILL_GRACE (5 * USEC_PER_SEC)

/* Exit codes a run child uses for the plugin's results. 75 is EX_TEMPFAIL. */
#define RUN_EXIT_OK 0
#define RUN_EXIT_FAIL 1
#define RUN_EXIT_RETRY 75

typedef struct run run;
typedef void (*run_done_fn)(run *r, void *userdata);

struct run {
        const job_def *def;
        int64_t id;
        int64_t first_id; /* the attempt-0 run this retries, or id */
        run_trigger trigger;
        unsigned attempt;
        usec_t scheduled;     /* logical instant */
        usec_t started;       /* wall clock */
        usec_t started_mono;
        pid_t pid;
        char *dir;        /* the job's state directory: the child's working directory */
        int out_w, msg_w; /* the child's ends of the pipes, until it is forked */

        sd_event_source *child_source, *output_source, *timeout_source, *kill_source;
        int output_fd, message_fd;

        /* ring of the last output bytes */
        char tail[HISTORY_OUTPUT_MAX];
        size_t tail_len, tail_pos;
        /* the current unfinished line */
        char line[1024];
        size_t line_len;

        bool timed_out, cancelled;

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

/* run_start() in three steps, so a batch of due runs can be forked back to back: every page the
 * daemon writes between two forks is a copy-on-write fault while the children share it, so
 * nothing but fork() should happen between them. run_prepare() allocates the run and its pipes;
 * run_launch() only forks; run_watch() closes the child's ends and adds the event sources. On
 * failure of launch or watch the caller frees the run with run_free(). */
int run_prepare(const job_def *def, const char *job_state_dir, int64_t id, int64_t first_id, run_trigger trigger,
                unsigned attempt, usec_t scheduled, usec_t started, run_done_fn done, void *userdata, run **ret);
int run_launch(run *r);
int run_watch(sd_event *e, run *r);

/* Asks the run to stop: SIGTERM to its process group now, SIGKILL after RUN_KILL_GRACE. Its
 * status becomes cancelled (shutdown) unless it had already timed out. */
void run_cancel(run *r);

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
