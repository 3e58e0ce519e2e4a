/* SPDX-License-Identifier: MIT */
#pragma once

/* A cgroup (v2) per run, under the cgroup delegated to the daemon (systemd: Delegate=yes; without
 * systemd: the daemon started alone in a cgroup it may write, see schedulerd(8)). Layout, with D
 * the daemon's cgroup:
 *
 *     D/supervisor         the daemon and its launchers (D itself holds no process, so that
 *                          controllers can be enabled in D's subtree: the no-internal-process rule)
 *     D/runs/<job>.<id>    one per run: its main process and everything it starts
 *     D/runs/<job>.warm-<pid>  the same for a run started from a warm process (run_prepare_warm()):
 *                          made and entered when that process is, ahead of the fire, as moving a
 *                          process costs ~0.5-0.9 ms that a herd of fires must not wait for
 *
 * At the end of a run (and at a timeout's or shutdown's SIGKILL) the run's cgroup is killed as one
 * (cgroup.kill), so setsid() and double forks escape nothing, and removed. Where there is no such
 * cgroup the daemon's subreaper sweep (orphans.c) does the same job process by process. */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "basic/macro.h"
#include "core/registry.h"

#define CGROUP_SUPERVISOR "supervisor"
#define CGROUP_RUNS "runs"
/* "<job>.<id>": a job name is at most 64 characters of [a-z0-9-] (registry.h) */
#define CGROUP_RUN_NAME_MAX 96

/* Pure: the cgroup v2 path ("/a/b") in the text of /proc/self/cgroup (its "0::" line).
 * -ENOENT when there is none (a cgroup v1 only host), -ENOMEM. */
int cgroup_parse_self(const char *text, char **ret_path);

/* Pure: where the cgroup2 file system is mounted, from the text of /proc/self/mountinfo (the
 * first cgroup2 mount of the hierarchy's root: /sys/fs/cgroup, or /sys/fs/cgroup/unified on a
 * hybrid host). -ENOENT when none, -ENOMEM. */
int cgroup_parse_mountinfo(const char *text, char **ret_mount);

/* Pure: the name of the cgroup of run ID of JOB ("<job>.<id>") into BUF; for a warm run, whose
 * process is made before its fire has a run id, of WARM_PID (> 0) instead: "<job>.warm-<pid>".
 * -ENAMETOOLONG if SIZE is too small. */
int cgroup_run_name(const char *job, int64_t id, pid_t warm_pid, char *buf, size_t size);

/* At start, before anything forks: finds the daemon's cgroup, checks it is delegated (not the
 * root cgroup, writable, holding no process but the daemon's, or the daemon started in its
 * D/supervisor), moves the daemon into D/supervisor, enables the controllers D has in its
 * subtree and in D/runs, and kills and removes run cgroups a daemon that did not stop cleanly
 * left. Returns 1 when runs get cgroups, 0 when not (the reason is logged once, at info: the
 * subreaper sweep contains runs then), or -errno on an unexpected failure (also logged; runs go
 * without cgroups). */
int cgroup_setup(void);

/* Whether runs get cgroups (cgroup_setup() returned 1). */
bool cgroup_enabled(void);

/* NULL when limits.tasks is a run cgroup's pids.max; otherwise why not, for an operator. */
const char *cgroup_tasks_unavailable(void);

/* Logs a warning for each job of REG that sets limits.tasks when it cannot be pids.max, saying
 * why and what the run gets instead (RLIMIT_NPROC for a job user other than root, nothing for
 * root). Called at each load of the registry. */
void cgroup_warn_tasks_limits(const registry *reg);

typedef struct run_cgroup run_cgroup;

/* The cgroup of run ID of JOB (of the warm process WARM_PID when > 0, see cgroup_run_name()),
 * created empty under D/runs with pids.max TASKS (0: none); *RET stays NULL (and 0 is returned)
 * when runs get no cgroups. A stale cgroup of the same name is killed and replaced. -errno on
 * failure (logged by the caller). */
int run_cgroup_new(const char *job, int64_t id, pid_t warm_pid, uint64_t tasks, run_cgroup **ret);

/* In the run's child, first thing: moves the calling process into C (with the descriptor
 * run_cgroup_new() opened, so it works whatever the child's credentials become). 0 or -errno. */
int run_cgroup_enter(const run_cgroup *c);

/* From the daemon: moves PID (a warm run's child, which starts nothing before its gate opens)
 * into C. 0 or -errno. */
int run_cgroup_attach(const run_cgroup *c, pid_t pid);

/* SIGKILL to every process in C, at once (cgroup.kill; on kernels before 5.14 every pid of
 * cgroup.procs, frozen first where cgroup.freeze exists, until it is empty). NULL is fine. */
void run_cgroup_kill(run_cgroup *c);

/* Kills what is left in C, waits (at most a second) for it to be empty and removes it; a
 * cgroup that is not empty by then is left (warned about) for the next start to remove. Logs,
 * as JOB's run ID, how many processes the run had left behind. Frees C; NULL is fine. */
run_cgroup *run_cgroup_end(run_cgroup *c, const char *job, int64_t id, int attempt);
