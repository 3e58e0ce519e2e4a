/* SPDX-License-Identifier: MIT */
#pragma once

/* The host side of <schedulerd/job.h>: the context a plugin's init and run callbacks get, and
 * the calls of init/fini for a job. */

#include <signal.h>

#include <schedulerd/job.h>

#include "basic/macro.h"
#include "core/registry.h"

#define JOBCTX_MESSAGE_MAX 1024

typedef struct jobctx {
        sched_job_ctx base; /* must be first: plugins see only this */
        const job_def *job;
        uint64_t run_id;
        usec_t scheduled;     /* the logical instant the run stands for */
        usec_t started_mono;  /* CLOCK_MONOTONIC when the run started */
        unsigned attempt;
        usec_t timeout;       /* USEC_INFINITY: none */
        const char *state_dir;
        int log_fd;           /* where sched_job_log lines go (the run's captured stderr) */
        bool in_init;
        const sched_job_cause_info *cause; /* NULL: not started by on_failure / on_success */
        char message[JOBCTX_MESSAGE_MAX];
} jobctx;

/* Fills C for a run of JOB. STATE_DIR is the job's own directory. Logging goes to LOG_FD as
 * "<level/TAG>text" lines, TAG being jobctx_log_tag(), so that the daemon keeps each line's
 * level and takes it from sched_job_log() only, never from output that looks the same. The
 * text is one line, its control characters escaped. */
void jobctx_setup_run(jobctx *c, const job_def *job, uint64_t run_id, usec_t scheduled, unsigned attempt,
                      usec_t timeout, const char *state_dir, int log_fd);

/* 16 hex digits, random per daemon, the same in every process it forks. */
const char *jobctx_log_tag(void);
/* The cause of the runs forked next by this process (they inherit it: a chained run is forked
 * right away, never ahead by a launcher), until jobctx_set_cause(NULL). JOB, STATUS and MESSAGE
 * are copied (truncated to fit). */
void jobctx_set_cause(const sched_job_cause_info *cause);

/* The cause jobctx_set_cause() set (the copy runs forked now inherit), or NULL. */
const sched_job_cause_info *jobctx_pending_cause(void);

/* In a worker, between two runs: not cancelled, no gauges of the previous run. */
void jobctx_run_reset(void);

/* Marks runs in this process as cancelled: the SIGTERM handler of a run child calls this. */
void jobctx_cancel(void);

/* Whether jobctx_cancel() was called in this process. */
bool jobctx_cancelled(void);

/* Calls each plugin's init (if any) with the job's params, after creating $state_dir/jobs/<job>
 * for it when CREATE_DIRS is true (the daemon; `schedctl check` passes false to change
 * nothing). Jobs without init get their directory at their first run, from jobctx_state_dir().
 * Failures are appended to DIAGS, with the plugin's message, and make the call return -EINVAL;
 * successfully initialized jobs get fini in registry_free(). */
int jobctx_init_jobs(registry *r, bool create_dirs, diag_list *diags);

/* $state_dir/jobs/<job>, malloc'ed, or NULL on OOM; for a run about to start, so it makes (or
 * checks) the directory with jobctx_make_state_dir() for the user the job's runs have. A
 * directory that cannot be made or is refused is logged and the path still returned: the run
 * then says it cannot enter it, and refuses to run in a link or another user's directory. */
char *jobctx_state_dir(const registry *r, const job_def *job);

/* Makes DIR, a job's state directory ($state_dir/jobs/<job>), owned by UID:GID with MODE, or
 * checks the one there: never by path after its parent is opened (mkdirat, then fchown/fchmod
 * on a descriptor opened O_NOFOLLOW). The parent is made 0711 when missing and must be owned by
 * the daemon's user and writable by it alone. Refuses a DIR that is a symbolic link or not a
 * directory, or owned by another uid than UID; takes group and other write access off one that
 * has it. Returns 0, or -errno with a malloc'ed sentence in *RET_ERROR (when one could be made)
 * naming the path, the owner or mode found and what to do. */
int jobctx_make_state_dir(const char *dir, uid_t uid, gid_t gid, mode_t mode, char **ret_error);

/* The same path, without touching the file system. */
char *jobctx_state_dir_path(const registry *r, const job_def *job);
