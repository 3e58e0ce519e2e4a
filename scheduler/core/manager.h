/* SPDX-License-Identifier: MIT */
#pragma once

/* The daemon's core: the event loop, the registry in force, the due-instant heaps, the policies
 * (enabled, singleton, max_concurrent, retry, run_on_startup, catch_up), history, reload and
 * shutdown. */

#include <systemd/sd-event.h>

#include "store/history.h"
#include "basic/macro.h"
#include "core/fire-queue.h"
#include "core/misfire.h"
#include "core/registry.h"
#include "core/run.h"
#include "core/timer-heap.h"

typedef struct manager manager;
typedef struct job_rt job_rt;

/* Command-line overrides of the registry's scheduler settings. NULL: keep the registry's. */
typedef struct manager_options {
        const char *config;
        const char *state_dir;
        const char *plugin_dir;
        const char *control_socket;
} manager_options;

/* A due instant in one of the heaps, and what it is for. */
typedef enum wake_kind {
        WAKE_FIRE,
        WAKE_RETRY,
} wake_kind;

typedef struct wake {
        timer_entry entry; /* first: heap entries are cast back to wakes */
        job_rt *job;       /* WAKE_FIRE: the job; NULL for a retry_wait */
        wake_kind kind;
} wake;

/* A pending retry: one per run that asked for one, so a new fire or a manual run never replaces
 * another run's retry. Owned by the manager, not by a job_rt (which a reload replaces): it
 * names its job, and is kept in history (store/history.h) until claimed or given up. */
typedef struct retry_wait {
        wake w; /* first, kind WAKE_RETRY, on the boottime heap */
        char *job;
        int64_t first_id; /* the chain's attempt 0, or 0 when history was failing */
        unsigned attempt;
        usec_t scheduled;
        bool waiting_room; /* due, but its job's slot was held: woken when one of its runs ends */
        struct retry_wait *next, *prev;
} retry_wait;

/* The daemon's view of one job of the registry in force. */
struct job_rt {
        manager *m;
        job_def *def;
        bool every;           /* @every: fire wake is on the boottime heap */
        wake fire;            /* next fire: realtime (cron) or boottime (@every) */
        usec_t next_fire;     /* wall-clock instant of the next fire, USEC_INFINITY if none */
        unsigned n_running;   /* runs in flight of the job of this name, whatever reloads came between */
        unsigned n_retrying;  /* pending retries (m->retries) of the job of this name */
        /* its runs of m->runs (by name, rebuilt at a reload): a singleton's check at each fire
         * looks at these, not at every run in flight (10,000 queued runs made each fire cost
         * 10,000 name comparisons). runs_unindexed: one could not be added (no memory). */
        run **runs;
        size_t n_runs, runs_allocated;
        bool runs_unindexed;
        int enabled_override; /* -1 none, 0, 1: from history */
        usec_t folded_fire;   /* a fire that the start-up or catch-up run just started stands for */
        bool first_loaded;    /* history knows when the job was first loaded (catch-up starts there) */
        size_t index;         /* in the registry's jobs (and the launcher's) */
        char *dir;            /* its state directory, once a run has made sure it exists */
        run *warm;            /* forked ahead for the fire at warm->scheduled, or NULL */
        struct job_metrics *metrics; /* counted since the daemon started (core/metrics.h), or NULL */
        usec_t warm_tried;    /* the cron instant warming last considered */
        usec_t fire_delay;    /* random_delay of the queued fire: its wake is this much after it */
        usec_t paused_until;  /* 0: not paused; fires before it do not run (USEC_INFINITY: until resumed) */
        /* overlap queue/replace: the one fire waiting for the run in flight to end */
        bool queued;
        run_trigger queued_trigger;
        usec_t queued_scheduled;
        /* schedctl backfill in progress (persisted in history as it goes) */
        bool backfilling;
        usec_t backfill_from, backfill_to, backfill_next;
        /* fires found missed in the handler running now, recorded as one row at its end
         * (overload.c); missed.count 0: none */
        misfire_range missed;
        run_trigger missed_trigger;
        const char *missed_why;
};

/* Reference-counted registry snapshot: runs keep the definition they started with alive
 * across a reload. */
typedef struct registry_ref {
        registry *reg;
        unsigned n_ref;
} registry_ref;

typedef void (*manager_run_waiter_fn)(manager *m, const run *r, void *userdata);

struct manager {
        sd_event *event;
        manager_options opts;
        registry_ref *reg;
        job_rt **jobs; /* parallel to reg->reg->jobs */
        job_rt **by_name; /* the same, sorted by name for O(log n) lookups */
        /* the plugin files the last successful reload loaded anew (another file at the path) */
        char **reload_plugins_changed;
        size_t n_reload_plugins_changed;
        size_t n_jobs;
        history *hist;
        char *history_path;
        bool history_failing; /* log a failing database once per burst, not per write */
        usec_t history_failed_at; /* CLOCK_MONOTONIC of the last failure */
        uint64_t history_commits; /* batches committed: schedulerd_history_commits_total */
        bool batch_open;
        usec_t batch_opened_at; /* CLOCK_MONOTONIC */
        usec_t checkpointed_at; /* CLOCK_MONOTONIC of the last WAL checkpoint */
        bool claims_uncommitted; /* the open batch claims fires: committed before they run */
        /* this node in a cluster (a PostgreSQL store; core/cluster.h), else NULL */
        struct cluster *cluster;
        /* the store is PostgreSQL, shared by a cluster: @every instants on the wall clock's grid
         * (multiples of the interval since the epoch, the same on every node), and every history
         * write commits alone (see manager_history_batch()) */
        bool clustered;

        timer_heap real_heap, boot_heap;
        sd_event_source *real_timer, *boot_timer, *post_source, *log_source, *commit_timer, *status_timer, *prune_timer, *grace_timer;
        sd_event_source *sigterm_source, *sigint_source, *sighup_source, *clock_source;
        int clock_fd;
        sd_event_source *clock_test_source; /* the test hook of clock.h */
        int clock_test_fd;

        run *runs;
        unsigned n_running;
        retry_wait *retries; /* pending retries, each on the boot heap */
        /* Warm runs (forked ahead of their fire, waiting for it; see run_prepare_warm()): cron
         * fires due within WARM_LEAD (warm.c) get their process early, at most warm_max at a time. */
        run *warm_runs;
        unsigned n_warm, warm_max;
        sd_event_source *warm_timer;
        /* launchers (launcher.h), the one of the registry in force first; older ones are kept
         * until their pending forks are answered and they have exited */
        struct launcher_slot *launchers;
        bool launcher_off; /* none could be started, or it died: until the next reload */
        start_gate *gate;
        /* the worker processes of jobs with isolation: worker (worker-pool.h) */
        struct worker_pools *workers;
        run **opened; /* warm runs opened in this dispatch, released together */
        size_t n_opened, opened_cap;
        /* the cron fires of one dispatch, rescheduled after the release */
        job_rt **due;
        usec_t *due_at;
        size_t n_due;
        usec_t release_at; /* when they are decided before their instant: that instant */
        /* their runs, claimed and committed, waiting for it (only the release starts them: the
         * other dispatches in between start their own deferred runs, never these) */
        run **held;
        size_t n_held;
        usec_t lead_began;  /* monotonic: when deciding the fires of release_at began */
        unsigned lead_cold; /* the weight of the forks among them (COLD_FIRE_WEIGHT each) */
        bool lead_more;     /* more of its fires are left to decide, in the next dispatch */
        usec_t released;   /* wall clock: the last release of an instant's cron fires (fire.c) */
        usec_t prepare_usec; /* how long deciding an instant's fires took lately (fire.c) */
        usec_t decide_fire_usec; /* and per fire, for the lead of an instant with more fires */
        int checkpoint_wal_pages; /* CHECKPOINT_WAL_PAGES, or the tests' SCHEDULERD_TEST_CHECKPOINT_WAL_PAGES */
        usec_t lead_for;         /* the instant whose fires lead_count counted */
        size_t lead_count;
        job_rt **warm_scratch;
        size_t warm_scratch_cap;
        /* runs prepared during one timer dispatch, started back to back at its end (for cron
         * fires decided ahead: at their instant, never before), FIRE_BUDGET of them at most */
        run **deferred;
        size_t n_deferred;
        bool deferring;
        /* fires held back by max_concurrent, waiting for a slot (overload.c) */
        fire_queue fire_queue;
        sd_event_source *queue_timer; /* at the earliest deadline of a waiting fire */
        sd_event_source *drain_source; /* starts the fires the slots freed in a turn let in */
        job_rt **missed_jobs;         /* jobs with missed fires not recorded yet */
        size_t n_missed_jobs, missed_jobs_cap;
        bool shutting_down;
        int stop_error; /* < 0: the daemon stops because of it (manager_stop_on_error()) */
        bool subreaper; /* what runs leave behind comes to the daemon (orphans.c) */
        sd_event_source *orphan_timer; /* a sweep again, for children it could not tell */

        /* steps the backfills in progress (backfill.c) */
        sd_event_source *backfill_source;
        size_t n_backfills; /* jobs with a backfill in progress: 0 spares run ends a scan */

        /* cluster mode (PostgreSQL store): enable/disable, run requests and policies across the
         * nodes (core/cluster-control.h); NULL with SQLite */
        struct cluster_control *cluster_control;

        /* the control server, if any (control.c) */
        void *control;
        /* called when a run finishes, for `schedctl run --wait`; it commits the history batch
         * when someone waits for that run */
        manager_run_waiter_fn run_waiter;
        void *run_waiter_data;
        /* called after a reload took a new registry (same userdata): the control socket applies
         * its admin_group */
        void (*reloaded)(manager *m, void *userdata);
};

/* Reads the registry (plugins loaded and initialized), opens history, marks runs left over
 * from a previous life as interrupted, and arms every timer. Errors are logged with their
 * file:line:column; returns -errno. */
int manager_new(const manager_options *o, manager **ret);

/* Runs until SIGTERM/SIGINT and a graceful shutdown. Returns 0 or -errno. */
int manager_run(manager *m);

/* Stops the daemon as SIGTERM does (runs asked to end, the grace period kept), after which
 * manager_run() returns ERROR (a negative errno) instead of 0. */
void manager_stop_on_error(manager *m, int error);

manager *manager_free(manager *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(manager *, manager_free);

/* Re-reads the registry parse-then-swap. On failure the running registry stays and every
 * problem is appended to DIAGS (may be NULL: then logged). */
int manager_reload(manager *m, diag_list *diags);

/* Starts a manual run of JOB standing for logical instant AT (USEC_INFINITY: now). Returns 0
 * and the history run id, -ENOENT (no such job), -EBUSY (singleton and running, or the
 * concurrency limit), -ESHUTDOWN, or -errno from fork. */
int manager_run_now(manager *m, const char *job, usec_t at, int64_t *ret_run_id);

/* Persists an enable/disable override (1/0, or -1 to drop it). */
int manager_set_enabled(manager *m, const char *job, int enabled);

job_rt *manager_find_job(manager *m, const char *name);

/* Commits the open history batch now, so what a control reply announces is visible to anyone
 * reading history.db next. */
void manager_flush_history(manager *m);

/* The Prometheus text exposition of the daemon's metrics (core/metrics.h), rendered from memory:
 * *RET (malloc'ed, *RET_LEN bytes). -ENOMEM, or -E2BIG past METRICS_TEXT_MAX. */
int manager_metrics_text(manager *m, char **ret, size_t *ret_len);

/* The effective enabled state (override or registry). */
bool job_rt_enabled(const job_rt *j);

/* Whether J's fire at SCHEDULED is held back by `schedctl pause`. */
bool job_rt_paused(const job_rt *j, usec_t scheduled);

/* `schedctl pause JOB [--until UNTIL]` (USEC_INFINITY: until resumed) and `resume` (PAUSE
 * false), persisted in history. -ENOENT (no such job), or the history error. */
int manager_set_paused(manager *m, const char *job, bool pause, usec_t until);

/* `schedctl backfill`: the instants of JOB's cron schedule in [FROM, TO] (at most
 * BACKFILL_MAX), *RET_N of them, of which *RET_CLAIMED ran (or were skipped) before and will not
 * run again. Unless DRY_RUN, the rest run one after the other, oldest first, each standing
 * for its instant, and the backfill is persisted so a restart resumes it. *RET_INSTANTS
 * (malloc'ed, may be NULL) lists them all. -ENOENT (no such job), -EINVAL (an @every job, an
 * empty or reversed range: *RET_ERROR says so), -E2BIG (more than BACKFILL_MAX instants),
 * -EBUSY (a backfill of JOB is in progress), -EPERM (disabled), or a history error. */
#define BACKFILL_MAX 100000
int manager_backfill(manager *m, const char *job, usec_t from, usec_t to, bool dry_run, usec_t **ret_instants,
                     size_t *ret_n, size_t *ret_claimed, const char **ret_error);
