/* SPDX-License-Identifier: MIT */
#pragma once

/* What the files of the manager share and nothing else sees (control/ and schedulerd.c use
 * manager.h). The manager is split by concern:
 *   manager.c        the loop and its lifecycle: new/run/free, signals, shutdown, status, pruning
 *   fire.c           a fire: the timers' dispatches, policies, claim, start, release of warm runs
 *   run-end.c        a run that ended: its history row, its retry, whoever waits on it
 *   retries.c        pending retries: one per run chain, kept in history, resumed at start-up
 *   warm.c           warm runs (forked ahead of their fire) and the launchers that fork them
 *   clock-change.c   the wall clock set, and catch-up of fires missed meanwhile or while down
 *   reload.c         the registry in force: its references, loading, the swap on reload
 *   job-rt.c         one job's runtime state: lookup, its next fire on a heap, its directory
 *   history-batch.c  history writes batched into one transaction, failing soft */

#include "core/manager.h"
#include "core/metrics.h"
#include "core/worker-pool.h"

/* Cron fires decided in one dispatch at most. */
#define FIRE_BUDGET 2048
/* Cron fires of one instant decided ahead of it at most, over several dispatches of
 * FIRE_BUDGET each (the size of m->due and m->held): a herd of 10,000 is decided and claimed
 * whole before its instant, not a dispatch of it at a time after. */
#define DUE_MAX 65536
/* Warm runs at a time at most (and the size of m->opened). */
#define WARM_MAX 1024

/* --- history-batch.c --- */

/* Says once per burst of failures that the database failed doing WHAT (R: -errno). */
void manager_history_failed(manager *m, int r, const char *what);
/* Makes sure history writes go into the open batch transaction; commits one held too long. */
void manager_history_batch(manager *m);
/* The post source's handler: commits the open batch (S NULL: unconditionally; else not just
 * before a fire, and it may take a checkpoint after). Returns 0. */
int manager_on_history_post(sd_event_source *s, void *userdata);
/* The open batch was left open for a busy worker pool (manager_on_history_post()): its commit
 * is looked at again now. */
int manager_on_commit_timer(sd_event_source *s, uint64_t usec, void *userdata);
/* Commits the open batch now, because a run is about to start: the claim of its fire (and the
 * job's last fire handled) must be durable before it runs, or a daemon killed in between would
 * run it again after a restart, or have no record of it (write-ahead). */
void manager_history_write_ahead(manager *m);

/* --- job-rt.c --- */

/* A job_rt for DEF, with nothing queued; NULL on OOM. */
job_rt *job_rt_new(manager *m, job_def *def);
/* Abandons its warm run and takes its wakes off the heaps. Accepts NULL; returns NULL. */
job_rt *job_rt_free(job_rt *j);
/* The job NAME in BY_NAME (sorted by name, N entries), or NULL. */
job_rt *job_rt_find(job_rt **by_name, size_t n, const char *name);
/* The job of the registry in force that R runs, or NULL (gone in a reload). */
job_rt *job_rt_of_run(manager *m, const run *r);
/* The job's state directory, made on its first call and remembered. NULL on OOM. */
const char *job_rt_dir(manager *m, job_rt *j);
/* Wall-clock instant of a boottime instant. */
usec_t manager_boot_to_real(usec_t boot);

/* A previous daemon's run whose process (PID, started at STARTED_USEC, so a reused pid is
 * told apart) is still there: killed with its process group and waited for (up to 5 s).
 * Returns whether it was there. Blocks: only before the loop fires anything. */
bool manager_kill_leftover_run(const char *job, int64_t id, unsigned attempt, pid_t pid, usec_t started_usec);
/* Queues the job's next cron fire strictly after AFTER (wall clock); none if there is none. */
void job_rt_schedule_cron(job_rt *j, usec_t after);
/* Queues the @every job's next fire at DUE_BOOT (boottime). */
void job_rt_schedule_every(job_rt *j, usec_t due_boot);
/* Queues the job's first fire after now. */
void job_rt_schedule_first(job_rt *j);
/* In a cluster: the boottime instant nearest DUE_BOOT whose wall-clock time is a multiple of the
 * interval of J's @every (the same instants on every node). */
usec_t job_rt_every_aligned(const job_rt *j, usec_t due_boot);

/* --- fire.c --- */

/* Push/unlink R on the doubly linked run list HEAD. */
void manager_list_add(run **head, run *r);
void manager_list_remove(run **head, run *r);
/* Adds/removes R to/from the runs in flight (m->runs) and its job's (job_rt.runs). */
void manager_runs_add(manager *m, run *r);
void manager_runs_remove(manager *m, run *r);
/* Indexes R under J (a reload's job of R's name); on no memory J falls back to scanning m->runs. */
void manager_job_runs_add(job_rt *j, run *r);
/* Forgets R among the warm runs opened in this dispatch: it ended before the release. */
void manager_opened_forget(manager *m, run *r);
/* R (of J, may be NULL) could not start (-errno Q): recorded as failed and freed. */
void manager_run_not_started(manager *m, job_rt *j, run *r, int q);
/* A fire of J (any trigger but retry) standing for SCHEDULED: policies, claim, start. Returns
 * the run id (> 0), 0 when nothing was started (disabled, skipped, already claimed), or -errno. */
int64_t manager_fire(manager *m, job_rt *j, run_trigger trigger, usec_t scheduled);
/* manager_fire() for a fire that waited in the fire queue for a slot (overload.c): it does not
 * queue again nor take a warm run (those are for the instants now due). */
int64_t manager_fire_waited(manager *m, job_rt *j, run_trigger trigger, usec_t scheduled);
/* A fire due this soon after a start-up or catch-up run at start-up is that run: one run, not
 * three. */
#define START_FOLD (1 * USEC_PER_SEC)
/* Whether J's next cron fire is due within START_FOLD of NOW. */
bool manager_fire_due_soon(const job_rt *j, usec_t now);
/* Sets the one-shot timer S for WHEN (its own clock), or turns it off for USEC_INFINITY. */
void manager_timer_at(sd_event_source *s, usec_t when);
/* Wall-clock instant of the next due cron fire, USEC_INFINITY if none. */
usec_t manager_next_due_real(const manager *m);
/* Sets the cron, @every and warm-up timers from the heaps (all off when shutting down). */
void manager_arm_timers(manager *m);
/* Releases and requeues the cron fires decided (and recorded) for m->release_at, now. */
void manager_finish_fires(manager *m);
/* For a reload, a clock change or a stop, which cannot wait for the release timer: releases
 * the fires decided ahead of their instant (if any) once the rest of their lead has passed, at
 * most PREPARE_LEAD_MAX, so no run starts before its instant. WHY names the caller in the log. */
void manager_release_fires_now(manager *m, const char *why);
/* Forks the runs prepared while m->deferring, back to back, their claims committed first. */
void manager_start_deferred(manager *m);
/* The handlers of the cron (realtime) and @every/retry (boottime) timers. */
int manager_on_real_timer(sd_event_source *s, uint64_t usec, void *userdata);
/* How long before the next due cron instant the real timer wakes to decide its fires. */
usec_t manager_prepare_lead(manager *m);
int manager_on_boot_timer(sd_event_source *s, uint64_t usec, void *userdata);

/* A run that waited for a worker has one (worker_dispatched_fn): its pid goes to history. */
void manager_worker_dispatched(run *r, pid_t pid, void *userdata);

/* --- run-end.c --- */

/* The run_done_fn of every run: records the end, schedules a retry, frees R. */
void manager_run_done(run *r, void *userdata);

/* --- retries.c --- */

/* Queues retry ATTEMPT of chain FIRST_ID (0: no history row) of JOB at DUE_BOOT (boottime) and
 * records it in history. -ENOMEM. */
int manager_retry_add(manager *m, const char *job, int64_t first_id, unsigned attempt, usec_t scheduled,
                      usec_t due_boot);
/* Unqueues and frees RW (accepts NULL); FORGET: also takes it out of history (claimed or given
 * up), else it is resumed at the next start. */
void manager_retry_drop(manager *m, retry_wait *rw, bool forget);
/* A run of JOB ended here: its retries that wait for room are due now, ahead of the job's next
 * fire, which would otherwise take the slot again every time (a retry that polls at a fixed
 * period can stay in phase with an every-second job's runs for ever). */
void manager_retries_wake(manager *m, const char *job);
/* Sets each job's n_retrying from m->retries (after a reload). */
void manager_retries_recount(manager *m);
/* Frees every pending retry, leaving them in history. */
void manager_retries_free(manager *m);
/* At start-up: queues the retries pending in history; those of jobs no longer in the registry
 * are logged and forgotten. -errno from history (then none are resumed). */
int manager_retries_resume(manager *m);
/* Cluster take-over: the pending retries in history of jobs this node defines that it does not
 * hold already (a lost node's, kept in the store) wait here too; whichever node claims a retry
 * first runs it (its claim key), the others find it claimed. 0 or -errno (logged). */
int manager_retries_adopt(manager *m);

/* --- warm.c --- */

/* Abandons J's warm run, if any. */
void manager_warm_abandon(job_rt *j);
/* Abandons every warm run (their instants moved, or the daemon stops). */
void manager_warm_abandon_all(manager *m);
/* A warm run's child exited without being started: logged unless abandoned, and freed. */
void manager_warm_done(manager *m, run *r);
/* Sets the warm-up timer for the earliest cron fire not considered yet, when there is room. */
void manager_arm_warm(manager *m);
/* The warm-up timer's handler: asks the launcher for the processes of fires due soon. */
int manager_on_warm_timer(sd_event_source *s, uint64_t usec, void *userdata);
/* After a reload: older launchers exit once their forks are answered. */
void manager_launchers_retire(manager *m);
/* Unlinks and frees the launcher slot LS. Accepts NULL; returns NULL. */
struct launcher_slot *manager_launcher_slot_free(manager *m, struct launcher_slot *ls);

/* The launcher slot after LS in m->launchers (NULL at the end), and its process. */
const struct launcher_slot *manager_launcher_next(const struct launcher_slot *ls);
pid_t manager_launcher_pid(const struct launcher_slot *ls);

/* --- orphans.c --- */

/* Makes the daemon a child subreaper (what a run leaves behind comes to it, not to PID 1).
 * -errno, logged: then nothing escaping a run's process group is ended. */
int manager_setup_subreaper(manager *m);
/* Kills and reaps the processes left behind by runs whose main process ended, R's (whose main
 * process EXITED is not reaped yet) among them; R may be NULL. R's cgroup, if it has one, is
 * killed and removed first (core/cgroup.h); the sweep of the daemon's children then reaps what
 * that killed and ends, as their subreaper, what runs without a cgroup left. Waits a second at
 * most for the killed. A child it cannot tell from a launcher's fork still on its way is looked
 * at again a second later. */
void manager_end_orphans(manager *m, run *r, pid_t exited);

/* --- clock-change.c --- */

/* One coalesced catch-up run of J for the fires missed since the last one handled (or since it
 * was first loaded), if wanted. Returns whether fires were missed. */
bool manager_catch_up(manager *m, job_rt *j, usec_t now);
/* Watches for the wall clock being set (and the test clock hook, when in effect). -errno. */
int manager_setup_clock_watch(manager *m);
int manager_setup_test_clock_watch(manager *m);

/* --- reload.c --- */

/* A reference on R (taking it over), NULL on OOM; ref and unref; unref frees at zero and
 * accepts NULL. */
registry_ref *registry_ref_new(registry *r);
registry_ref *registry_ref_ref(registry_ref *x);
registry_ref *registry_ref_unref(registry_ref *x);
/* The registry R started with. */
registry_ref *registry_ref_of_run(const run *r);
/* Loads the configured registry, plugins initialized; problems go to DIAGS. -errno. */
int manager_load_registry(manager *m, registry **ret, diag_list *diags);
/* Logs each diagnostic of D. */
void manager_log_diags(const diag_list *d);
/* Makes R the registry in force (taking it over on success); runtime state of jobs that keep
 * their name carries over. -ENOMEM. */
int manager_swap_registry(manager *m, registry *r);

/* --- chain.c --- */

/* R of J (NULL: gone in a reload) ended: starts its on_failure or on_success jobs when this was
 * its last attempt. */
void manager_chain_run_ended(manager *m, job_rt *j, const run *r);

/* --- manager-metrics.c --- */

/* R of J (NULL: gone in a reload) ended: its status, duration, start delay, success time. */
void manager_metrics_run_ended(manager *m, job_rt *j, const run *r);
/* A fire of J was skipped for REASON. */
void manager_metrics_skipped(job_rt *j, metrics_skip_reason reason);
/* The cron instants of J in (AFTER, UPTO] went by without a run. */
void manager_metrics_missed(job_rt *j, usec_t after, usec_t upto);
/* N fires of J were recorded missed. */
void manager_metrics_missed_count(job_rt *j, uint64_t n);
/* --- overload.c --- */

/* J's misfire_threshold in force: its own, else scheduler.misfire_threshold (MISFIRE_AUTO or a
 * duration). */
usec_t overload_threshold(const manager *m, const job_rt *j);
/* Notes the fires R of J (by TRIGGER) as missed, because WHY (a static string): counted now,
 * recorded (one row per job) by overload_missed_flush(). */
void overload_missed(manager *m, job_rt *j, run_trigger trigger, const misfire_range *r, const char *why);
/* Records the missed fires noted since the last call. Each handler that notes some calls it
 * before it returns. */
void overload_missed_flush(manager *m);
/* J is about to be freed: what it has noted is recorded first. */
void overload_job_gone(manager *m, job_rt *j);
/* The cron fire of J at SCHEDULED, dispatched at NOW: the instants from SCHEDULED on that are
 * past their deadline are noted missed; *RET_NEXT gets the first still in time (USEC_INFINITY:
 * none). Returns 1 when the scan stopped early (*RET_NEXT is then missed too, not noted yet:
 * the caller queues it and the next dispatch goes on), else 0. */
int overload_late_cron(manager *m, job_rt *j, usec_t scheduled, usec_t now, usec_t *ret_next);
/* The same for the @every fire of J due at DUE_BOOT, at NOW_BOOT (boottime); returns the first
 * due instant still in time. */
usec_t overload_late_every(manager *m, job_rt *j, usec_t due_boot, usec_t now_boot);
/* Holds J's fire at SCHEDULED (by TRIGGER) for a slot, until its deadline. -ENOMEM. */
int overload_enqueue(manager *m, job_rt *j, run_trigger trigger, usec_t scheduled);
/* Whether fires wait for a slot: a new fire queues behind them. */
bool overload_waiting(const manager *m);
/* overload_waiting() as the worker pools ask it (worker_slots_wanted_fn). */
bool manager_slots_wanted(void *userdata);
/* Starts waiting fires, oldest instant first, while there is room; records those past their
 * deadline as missed. */
void overload_drain(manager *m);
/* Drains at the end of this turn of the event loop: the slots freed by the runs ended in it
 * start their waiting fires together, their claims in one write-ahead commit (one each was a
 * commit per run: a third of the daemon's time with 10,000 fires waiting). */
void overload_drain_soon(manager *m);
/* Drains if there is room, and sets the queue timer for the earliest deadline of a waiting fire. */
void overload_arm(manager *m);
/* Creates the queue timer and the drain's source. -errno. */
int overload_setup(manager *m);
/* Shutdown: every waiting fire, and every instant due that no dispatch reached, is recorded
 * missed. */
void overload_shutdown(manager *m);
/* Frees the queue, the timer and the scratch. */
void overload_done(manager *m);

/* --- overlap.c --- */

/* Whether J's fire (TRIGGER at SCHEDULED) is taken care of by its overlap policy while a run
 * of J is in flight: queued (queue), or queued after cancelling the run (replace); or, with a
 * fire already queued, recorded as skipped. False: the fire goes on (nothing in flight, skip,
 * allow, or a manual run). */
bool overlap_hold(manager *m, job_rt *j, run_trigger trigger, usec_t scheduled);
/* A run of J ended: the fire queued behind it starts if none is left in flight. */
void overlap_run_ended(manager *m, job_rt *j);
/* A reload: what J's predecessor O had queued carries over. */
void overlap_carry(job_rt *j, const job_rt *o);

/* --- backfill.c --- */

/* Reads the pauses and backfills of the jobs in force from history (start-up, reload) and
 * starts stepping the backfills. */
void backfill_load(manager *m);
/* Asks for a step of every backfill in progress (a run ended, a job resumed). */
void backfill_kick(manager *m);
/* Frees the step source. */
void backfill_done(manager *m);

/* --- manager.c --- */

/* Prunes history to the limits in force now, and again after their prune_interval. */
void manager_prune_now(manager *m);
/* Schedules a refresh of sd_notify STATUS=, at most every STATUS_INTERVAL. */
void manager_status_changed(manager *m);
