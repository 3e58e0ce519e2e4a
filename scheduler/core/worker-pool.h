/* SPDX-License-Identifier: MIT */
#pragma once

/* The daemon's side of isolation: worker. Jobs of one registry that share their plugin, user,
 * group, environment, credentials and limits form a group; each group gets a pool of worker
 * processes (worker.h), `workers:` of them (the largest any of its jobs asks for, else
 * scheduler.workers, else the number of CPUs), forked when first needed. A run goes to an idle
 * worker, or behind the current run of a busy one whose runs are short (pipelining, see
 * worker_pools_pipelined()), or waits in the pool's queue (oldest first); it counts as in flight
 * either way, so max_concurrent, singleton and overlap see it as a process run. A run queued
 * in a worker that is stopped before it takes it (its current run's deadline or cancellation,
 * a crash) goes back to the front of the pool's queue: the worker says which runs it never
 * started (worker.h), so none runs twice.
 *
 * Containment: a worker that dies (crash, exit(), SIGKILL at the end of a deadline's grace,
 * a limit) ends its run as its process would have (crashed, failed, timed_out) and is replaced
 * at the next run; one that was asked to stop (deadline, cancellation) answers and exits. A
 * worker is retired (its socket closed: it exits) after scheduler.max_runs_per_worker runs, when
 * its RSS passed scheduler.worker_max_rss, or when its registry is no longer in force. */

#include <systemd/sd-event.h>

#include "basic/macro.h"
#include "core/registry.h"
#include "core/run.h"

typedef struct worker_pools worker_pools;

/* Called when a worker, PID, takes a run (at once or after it waited): its start is R->started
 * from now on. While a herd is handed out the call waits until it is (or up to ENDED_HOLD_MAX),
 * and always comes before R's done callback (R->pid is the worker's only until R ends). */
typedef void (*worker_dispatched_fn)(run *r, pid_t pid, void *userdata);

/* Whether fires wait for a slot (the concurrency limit), which only a run's done callback frees:
 * the pools then hold none back while a herd is handed out (ENDED_HOLD_MAX in worker-pool.c). */
typedef bool (*worker_slots_wanted_fn)(void *userdata);

/* The pools of a daemon, none yet, on E. Returns 0 or -ENOMEM. */
int worker_pools_new(sd_event *e, worker_dispatched_fn dispatched, worker_slots_wanted_fn slots_wanted,
                     void *userdata, worker_pools **ret);

/* Makes the dispatched calls that wait (see worker_dispatched_fn), in order. A run's done
 * callback calls this first, whichever way the run ended. NULL is fine. */
void worker_pools_flush_started(worker_pools *p);

/* Closes every worker's socket, kills and reaps the workers, frees P (runs still in a worker
 * are the caller's: end them first). NULL is fine. */
worker_pools *worker_pools_free(worker_pools *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(worker_pools *, worker_pools_free);

/* Runs R, job number INDEX of REG (R->def is REG's), in a worker of its group: at once on an
 * idle worker (R->pid is then the worker's), or when one is free; not before the wall clock
 * NOT_BEFORE (0: no such bound), which the worker waits for itself, so a run sent ahead of its
 * instant starts there without the daemon. R's done callback comes when it ended, as for a
 * process run. Returns 0, or -errno (no worker could be forked and none is coming: R was not
 * taken). */
int worker_pools_submit(worker_pools *p, const registry *reg, size_t index, run *r, usec_t not_before);

/* Ahead of a run of job INDEX of REG: its pool's workers are forked (all of them), so the run
 * finds one idle, and the daemon's copy-on-write faults of the forks are behind it. Failures
 * are left to worker_pools_submit(). */
void worker_pools_prepare(worker_pools *p, const registry *reg, size_t index);

/* The registry in force is now CURRENT: pools of other registries take no new runs, their
 * idle workers exit now and the others after their run. */
void worker_pools_retire(worker_pools *p, const registry *current);

/* Calls FN for each run a worker runs now (its current one), in all pools. */
void worker_pools_foreach_current(worker_pools *p, void (*fn)(run *r, void *userdata), void *userdata);

/* How many runs wait for a worker, in all pools (0 for NULL). While some do, more answers
 * are coming within a run's time: the history commit can wait for them (history-batch.c). */
size_t worker_pools_waiting(const worker_pools *p);

/* Sends the runs submitted and not sent yet to workers now, not at the end of this turn of the
 * event loop (what else the turn does may take a while: an instant's bookkeeping). No-op for
 * NULL. */
void worker_pools_pump(worker_pools *p);

/* Whether runs given to the pools are still being handed out or answered: one waits for a
 * worker, a worker has one, or an answered one waits for its done callback (false for NULL). */
bool worker_pools_busy(const worker_pools *p);

/* How many runs were sent to a busy worker, queued behind its current run (0 for NULL). A worker
 * takes one only while its last run and its current one are short (under 1 ms): it then starts
 * the next as soon as it has answered, instead of waiting for the daemon to read the answer and
 * send more; one queued behind a run that turns out long waits for it. */
uint64_t worker_pools_pipelined(const worker_pools *p);

/* How many times a worker's replies and output were left unread while it worked through a queue
 * of a herd (0 for NULL): read as they came, they woke the daemon for every run on a core the
 * workers wanted. Reading resumes near the queue's end, after 20 ms at most, or at once when the
 * pool hands out runs. */
uint64_t worker_pools_read_pauses(const worker_pools *p);

/* The worker processes alive and the pools' zygotes (children of the daemon that are no run's
 * main process), up to MAX into V; returns how many there are (may be more than MAX). */
size_t worker_pools_pids(const worker_pools *p, pid_t *v, size_t max);

/* Pure: whether jobs A and B may share a worker: same plugin, identity, environment,
 * credentials and limits. */
bool worker_group_same(const job_def *a, const job_def *b);
