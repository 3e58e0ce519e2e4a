/* SPDX-License-Identifier: MIT */
#pragma once

/* The run history: one row per run and one row per job of persistent state (enable override,
 * last scheduled fire, counters), with the fire claims. Two backends behind this one interface
 * (scheduler.store): $state_dir/history.db, SQLite in WAL mode, the default for one machine; or
 * a PostgreSQL database reached through libpq, which several daemons can share (the cluster).
 * Both keep the same contract below; where they differ it says so.
 *
 * TIME  Every instant is usec_t, microseconds since the epoch (UTC), stored as INTEGER.
 *       USEC_INFINITY in or out means "none" (not finished, never scheduled, ...). Values
 *       above INT64_MAX other than USEC_INFINITY are rejected with -ERANGE.
 *
 * THE CLAIM KEY (no double fire)
 *       runs has UNIQUE (job, scheduled_usec, attempt, claim_class). claim_class is 'fire' for
 *       the triggers that stand for a fire of the job's schedule (schedule, catch_up,
 *       startup) and for retries of such a run, and NULL for manual runs and their retries.
 *       SQLite and PostgreSQL treat NULLs as distinct in a UNIQUE index, so:
 *         - a scheduled instant is claimed at most once per attempt, whichever of schedule,
 *           catch_up or startup gets there first, across crashes, restarts and clocks set
 *           back: the second claim gets -EEXIST and must not run;
 *         - a skipped fire claims its instant too, so a restart does not run what was
 *           deliberately skipped;
 *         - manual runs never collide with each other or with fires, even at the same
 *           instant (each `schedctl run` is its own request).
 *       A retry row copies job, scheduled_usec and claim_class from the first attempt it
 *       retries (retry_of), so attempt n of one fire is also claimed once.
 *       Pruning deletes old claims; an instant older than the retention could be claimed
 *       again only by a clock set back further than the retention.
 *
 * ERRORS Functions return 0 (or a documented positive value) or a negative errno: -ENOSPC
 *       (disk or size limit full), -EROFS (read-only file), -EACCES, -EBUSY (locked longer
 *       than the busy timeout), -EEXIST (claim key taken), -EBADMSG (not a database, corrupt),
 *       -ENOMEM, -EIO. history_last_error() has SQLite's text for the log.
 *       PostgreSQL adds -ENOTCONN: the server cannot be reached or the connection was lost
 *       (nothing of the failed call, nor of an open batch, was written; the next call
 *       reconnects, see history_open_store()), and -EROFS for a read-only server (a standby).
 *       Its history_last_error() has the server's message and SQLSTATE.
 *
 * THREADS AND PROCESSES  A handle is used by one thread at a time and never across fork().
 *       Several processes may open the same file; writers wait up to HISTORY_BUSY_TIMEOUT_MS. */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "basic/macro.h"
#include "basic/run-status.h"

#define HISTORY_SCHEMA_VERSION 5
#define HISTORY_BUSY_TIMEOUT_MS 5000
#define HISTORY_OUTPUT_MAX 4096         /* bytes of output tail kept per run */
#define HISTORY_MESSAGE_MAX 1024        /* bytes of result message kept per run */
#define HISTORY_ERROR_MAX 512

typedef struct history history;

/* Which backend a handle uses. */
typedef enum history_backend {
        HISTORY_BACKEND_SQLITE,
        HISTORY_BACKEND_POSTGRESQL,
} history_backend;

/* What a finished run produced, for history_finish_run(). */
typedef struct history_result {
        run_status status;              /* final, not RUNNING or SKIPPED */
        int exit_code;                  /* exit status, or -1 if the process did not exit */
        int signal;                     /* terminating signal, or 0 */
        usec_t finished_usec;
        usec_t duration_usec;           /* monotonic run time; USEC_INFINITY: finished - started */
        const char *message;            /* may be NULL; longer than HISTORY_MESSAGE_MAX is cut */
        const char *output;             /* may be NULL; only the last HISTORY_OUTPUT_MAX bytes */
        size_t output_size;             /* bytes at output (may hold NULs and partial UTF-8) */
        /* The run's start and pid, when they were not recorded with history_set_start() yet: the
         * result writes them too (one statement, not two, for a run that started and ended within
         * one batch). 0: leave what the row has. */
        usec_t started_usec;
        pid_t pid;
} history_result;

/* One row of runs, as returned by history_list_runs(). Strings are owned by the array. */
typedef struct history_run {
        int64_t id;
        char *job;
        run_trigger trigger;
        unsigned attempt;
        int64_t retry_of;               /* id of the first attempt for retries, else 0 */
        usec_t scheduled_usec;
        usec_t started_usec;
        usec_t finished_usec;           /* USEC_INFINITY while running or when interrupted */
        run_status status;
        int exit_code;                  /* -1 if none */
        int signal;                     /* 0 if none */
        usec_t duration_usec;           /* USEC_INFINITY if unknown */
        char *message;                  /* NULL if none */
        char *output;                   /* NULL if none; NUL-terminated, output_size bytes */
        size_t output_size;
        pid_t pid;                      /* 0 if none */
        uint64_t missed_count;          /* missed: the instants the row stands for; else 0 */
        usec_t missed_last_usec;        /* missed: the last of them (the first is scheduled_usec);
                                         * else USEC_INFINITY */
} history_run;

/* The persistent per-job row. Counters are lifetime totals, not affected by pruning. */
typedef struct history_job_state {
        int enabled_override;           /* -1 none (registry decides), 0 disabled, 1 enabled */
        usec_t last_scheduled_usec;     /* last fire handled, for catch-up; USEC_INFINITY: none */
        uint64_t runs_total;            /* finished runs of any final status except skipped */
        uint64_t failures_total;        /* of which run_status_is_failure() */
        uint64_t skipped_total;
        int64_t last_run_id;            /* 0 if none */
        run_status last_status;         /* _RUN_STATUS_INVALID if none */
        usec_t last_finished_usec;      /* USEC_INFINITY if none */
        usec_t last_duration_usec;      /* USEC_INFINITY if none */
        usec_t first_loaded_usec;       /* when the daemon first had the job; USEC_INFINITY: unknown */
        uint64_t missed_total;          /* fire instants recorded missed (a missed row counts its count) */
} history_job_state;

/* Figures over the runs still retained (since a given instant), for schedctl status. */
typedef struct history_job_stats {
        uint64_t runs;                  /* finished runs (not skipped or missed) started at or after since */
        uint64_t failures;
        uint64_t skipped;
        uint64_t missed;                /* instants of the missed rows (their counts summed) */
        usec_t average_duration_usec;   /* USEC_INFINITY if no run has a duration */
        int64_t last_run_id;            /* newest row of any status, 0 if none */
        run_status last_status;         /* _RUN_STATUS_INVALID if none */
        usec_t last_started_usec;       /* USEC_INFINITY if none */
        usec_t last_finished_usec;      /* USEC_INFINITY if none or still running */
} history_job_stats;

/* Opens (creating if missing) the database at PATH: WAL, synchronous=NORMAL, busy timeout,
 * foreign keys; creates the schema in an empty file and migrates an older one forward one
 * version at a time. Fails with -EPROTO when the file's schema is newer than
 * HISTORY_SCHEMA_VERSION, -EBADMSG when it is not a schedulerd history database, or the
 * mapped SQLite error. On failure, if ERROR is not NULL, writes a one-line explanation
 * naming PATH (at most ERROR_SIZE bytes, NUL-terminated); ERROR is untouched on success.
 * The handle is for one thread at a time (SQLite's connection mutex is off). */
int history_open(const char *path, char *error, size_t error_size, history **ret);

/* Opens the store scheduler.store names: STORE NULL, "" or "sqlite" is the SQLite file
 * STATE_DIR/history.db (history_open()); anything else is a libpq connection string
 * ("host=db1,db2 dbname=sched target_session_attrs=read-write") or URI
 * ("postgresql://db1,db2/sched?target_session_attrs=read-write"), with libpq's environment
 * (PGHOST, PGPASSFILE, PGSERVICE, ...) filling what it leaves out. A password in it is refused
 * (-EINVAL): the password comes from ~/.pgpass, PGPASSFILE or a service file, as libpq reads
 * them. The schema is created or migrated under an advisory lock (N daemons starting at once
 * migrate once). -EPROTO for a schema newer than this build, -ENOTCONN if the server cannot be
 * reached now; ERROR as history_open().
 *
 * A PostgreSQL handle reconnects by itself: a call on a lost connection fails with -ENOTCONN,
 * and the calls after it try to connect again, at most once per backoff interval (1 s doubling
 * to HISTORY_PG_RECONNECT_MAX_MS; in between they fail at once with -ENOTCONN). A connection
 * attempt blocks the caller for at most connect_timeout per host, a statement on a live
 * connection is bounded by the server's statement_timeout, and TCP keepalives notice a dead
 * peer (store/pg-connect.h: PG_CONNECT_TIMEOUT_S unless the string sets it,
 * PG_STATEMENT_TIMEOUT_MS). */
#define HISTORY_PG_RECONNECT_MAX_MS 30000
int history_open_store(const char *store, const char *state_dir, char *error, size_t error_size, history **ret);

/* Checks a scheduler.store value without connecting: 0 if STORE is "sqlite" or a libpq string
 * or URI without a password; else -EINVAL with a one-line reason (what to write instead) in
 * ERROR (ERROR_SIZE bytes). -ENOMEM. */
int history_store_check(const char *store, char *error, size_t error_size);

/* H's backend. */
history_backend history_get_backend(history *h);

/* Where H keeps the history, for messages: the file's path, or "PostgreSQL HOST:PORT/DB"
 * (no password: none is ever in it). "" for NULL. */
const char *history_where(history *h);

/* Finalizes cached statements, rolls back an open batch and closes. Accepts NULL; returns NULL. */
history *history_close(history *h);
DEFINE_TRIVIAL_CLEANUP_FUNC(history *, history_close);

/* The backend's message (with what was being done) for the last failed call on H; "" if none. */
const char *history_last_error(history *h);

/* Caps the database file at about MAX_BYTES (rounded down to whole pages; 0 removes the
 * cap). Writes that would grow beyond it fail with -ENOSPC. Per handle, not persistent.
 * PostgreSQL: -EOPNOTSUPP (the server's administrator sizes the database). */
int history_set_size_limit(history *h, uint64_t max_bytes);

/* Batching: everything between begin and commit is one transaction (taken with the write
 * lock, so it cannot fail with -EBUSY half-way). A failed call inside a batch undoes only
 * its own changes; the batch stays open. history_commit() makes the batch durable; if it
 * fails the whole batch is rolled back and lost. history_rollback() discards it.
 * history_begin() fails with -EALREADY when a batch is open; commit and rollback with
 * -ENOTCONN when none is. */
int history_begin(history *h);
int history_commit(history *h);
int history_rollback(history *h);

/* Commits only append to the write-ahead log, without fsync (a crash of the process loses
 * nothing committed; a power cut may lose the last commits): copying it into the database, with
 * its fsyncs, is this call's, which the owner of a long-lived handle makes from time to time,
 * when nothing is waiting on it. -EBUSY inside a batch; -errno as the other calls. */
int history_checkpoint(history *h);
/* (PostgreSQL: 0, nothing to do: the server checkpoints by itself.) */

/* How many pages the write-ahead log held after the last commit, not yet checkpointed (0 where
 * there is no such log: PostgreSQL), or -errno. */
int history_wal_pages(history *h);

/* Records that JOB's first attempt for the fire at SCHEDULED started at STARTED, as a
 * 'running' row (PID 0 if not known yet: see history_set_pid()). TRIGGER is any trigger
 * but RETRY (see history_claim_retry()). Returns -EEXIST, writing nothing, if this fire
 * was claimed before (see THE CLAIM KEY); then the caller must not run it. Sets
 * *ret_run_id (may be NULL) on success. */
int history_claim_fire(history *h, const char *job, run_trigger trigger, usec_t scheduled,
                       usec_t started, pid_t pid, int64_t *ret_run_id);

/* Records the start of retry ATTEMPT (>= 1) of the run FIRST_RUN_ID (the attempt-0 row),
 * with that row's job, scheduled time and claim class. -ENOENT if FIRST_RUN_ID does not
 * exist, -EINVAL if it is itself a retry, -EEXIST if this attempt was claimed before. */
int history_claim_retry(history *h, int64_t first_run_id, unsigned attempt, usec_t started,
                        pid_t pid, int64_t *ret_run_id);

/* Records a fire that was not run (singleton overlap, concurrency limit) as a finished
 * 'skipped' row with MESSAGE saying why (NULL allowed), and counts it in the job's
 * skipped_total. It claims the fire like history_claim_fire() and fails the same way with
 * -EEXIST. TRIGGER is any trigger but RETRY: a retry that cannot start should wait. */
int history_record_skipped(history *h, const char *job, run_trigger trigger, usec_t scheduled,
                           usec_t now, const char *message, int64_t *ret_run_id);

/* Records that the fire claimed as RUN_ID (by history_claim_fire(), still 'running') is not
 * run after all, because of a policy judged after its claim (the cluster-wide singleton: only
 * the node holding the claim may take the slot, so a node dying in between loses no fire). The
 * row becomes 'skipped', finished at NOW, with MESSAGE (NULL allowed), and counts in the job's
 * skipped_total like history_record_skipped(). -ENOENT if no such run, -ESTALE if it is not
 * running. */
int history_skip_claimed(history *h, int64_t run_id, usec_t now, const char *message);

/* Records COUNT (>= 1) fires of JOB due from FIRST to LAST (wall clock, FIRST <= LAST) that
 * could not start in time as one finished 'missed' row recorded at NOW, with MESSAGE saying
 * why (NULL allowed), and adds COUNT to the job's missed_total. The row claims FIRST like
 * history_claim_fire() (the instants after it are not claimed one by one) and fails the same
 * way with -EEXIST. TRIGGER is any trigger but RETRY. -EINVAL for COUNT 0 or LAST < FIRST. */
int history_record_missed(history *h, const char *job, run_trigger trigger, usec_t first, usec_t last,
                          uint64_t count, usec_t now, const char *message, int64_t *ret_run_id);

/* Sets the pid of a running run. -ENOENT if no such run, -ESTALE if it already finished. */
int history_set_pid(history *h, int64_t run_id, pid_t pid);

/* Moves a running run's start to STARTED and records PID (0: leave it): for a run claimed
 * before it was released (warm runs start at the gate's wake, after their claim). Same errors
 * as history_set_pid(). */
int history_set_start(history *h, int64_t run_id, pid_t pid, usec_t started);

/* Finishes a running run with R and updates the job's counters and last_* fields, in one
 * transaction. -ENOENT if no such run, -ESTALE if it already finished (nothing changes),
 * -EINVAL if R's status is RUNNING, SKIPPED, MISSED or invalid.
 * PostgreSQL: a result that cannot be written because the server is unreachable (-ENOTCONN),
 * or that was written in a batch lost with the connection, is kept by the handle (at most
 * HISTORY_PG_PENDING_MAX, the oldest dropped first) and written on reconnection, before any
 * other statement; if the process ends first it is lost, and the run stays 'running' until
 * history_mark_interrupted(). */
#define HISTORY_PG_PENDING_MAX 10000
int history_finish_run(history *h, int64_t run_id, const history_result *r);

/* At start-up: every 'running' row (the daemon died during it) becomes 'interrupted' (its
 * finished time stays unknown) and counts as a failure of its job. Sets *ret_count (may be
 * NULL) to the number of rows changed. */
int history_mark_interrupted(history *h, unsigned *ret_count);

/* Deletes finished runs that started before NOW - MAX_AGE (MAX_AGE USEC_INFINITY or 0: no
 * age limit), then all but the newest MAX_RUNS_PER_JOB finished runs of each job (0: no
 * count limit). Running rows are never deleted. Job rows and counters stay. Sets
 * *ret_deleted (may be NULL). */
int history_prune(history *h, usec_t now, usec_t max_age, unsigned max_runs_per_job,
                  unsigned *ret_deleted);

/* Reads JOB's persistent row into *ret. Returns 1 if the job has a row, 0 if not (then
 * *ret holds the defaults: no override, nothing scheduled, zero counters). */
int history_get_job_state(history *h, const char *job, history_job_state *ret);

/* Calls FN for every job that has a row, in no particular order, with the state
 * history_get_job_state() would read for it: one query where the daemon's start-up would
 * otherwise make one per job. A negative return of FN stops the scan and is returned. */
typedef int (*history_job_state_fn)(const char *job, const history_job_state *state, void *userdata);
int history_foreach_job_state(history *h, history_job_state_fn fn, void *userdata);

/* Persists `schedctl enable/disable`: 1 or 0 overrides the registry's `enabled`, -1
 * removes the override. -EINVAL for other values. */
int history_set_enabled_override(history *h, const char *job, int override);

/* Persists the last fire instant handled for JOB (catch-up starts after it). Stored as
 * given, also when smaller than before (the claim key still prevents double fires). */
int history_set_last_scheduled(history *h, const char *job, usec_t scheduled);

/* Returns runs newest first (by insertion order, which a clock set back cannot disturb),
 * filtered by JOB (NULL: all), started at or after SINCE (0: all) and STATUS
 * (_RUN_STATUS_INVALID: all), at most LIMIT rows (0: no limit). *ret_runs is NULL when
 * none match; free it with history_runs_free(). */
int history_list_runs(history *h, const char *job, usec_t since, run_status status,
                      unsigned limit, history_run **ret_runs, size_t *ret_n);

/* Frees an array from history_list_runs(). Accepts NULL; returns NULL. */
history_run *history_runs_free(history_run *runs, size_t n);

/* Figures over JOB's retained runs started at or after SINCE (0: all). A job without runs
 * gets zeros and _RUN_STATUS_INVALID, not an error. */
int history_get_job_stats(history *h, const char *job, usec_t since, history_job_stats *ret);

/* A pending retry: attempt ATTEMPT of the run FIRST_RUN_ID (its attempt 0), due at DUE_USEC
 * (wall clock). One per retry chain; kept across restarts until claimed or given up. */
typedef struct history_retry {
        int64_t first_run_id;
        const char *job;
        unsigned attempt;
        usec_t scheduled_usec;          /* of the fire the chain stands for */
        usec_t due_usec;
} history_retry;

/* Stores R, replacing the chain's previous pending retry. -EINVAL for a bad R. */
int history_put_retry(history *h, const history_retry *r);

/* Forgets the pending retry of chain FIRST_RUN_ID (claimed, or given up). 0 also if none. */
int history_remove_retry(history *h, int64_t first_run_id);

/* Calls FN for every pending retry, earliest due first; R's strings live for the call only.
 * A negative return of FN stops the scan and is returned. */
typedef int (*history_retry_fn)(const history_retry *r, void *userdata);
int history_foreach_retry(history *h, history_retry_fn fn, void *userdata);

/* Records WHEN as the instant JOB was first loaded, unless one is recorded already. */
int history_set_first_loaded(history *h, const char *job, usec_t when);

/* The number of run rows and the database file's size in bytes (each pointer may be NULL).
 * PostgreSQL: the bytes of the history's tables and their indexes. */
int history_get_size(history *h, uint64_t *ret_runs, uint64_t *ret_bytes);
/* ---- pauses and backfills ---- */

/* Persists `schedctl pause` (PAUSED, fires before UNTIL do not run; USEC_INFINITY: until
 * resumed) or `schedctl resume` (!PAUSED: the row goes). */
int history_set_pause(history *h, const char *job, bool paused, usec_t until);

/* Calls FN for every paused job with its end (USEC_INFINITY: until resumed). A negative return
 * of FN stops the scan and is returned. */
typedef int (*history_pause_fn)(const char *job, usec_t until, void *userdata);
int history_foreach_pause(history *h, history_pause_fn fn, void *userdata);

/* A backfill in progress: the instants of [from, to] at or after next are still to go. */
typedef struct history_backfill {
        usec_t from_usec, to_usec, next_usec;
} history_backfill;

/* Persists JOB's backfill B (one per job; replaces an earlier one), or removes it (B NULL). */
int history_set_backfill(history *h, const char *job, const history_backfill *b);

/* Calls FN for every backfill in progress, as history_foreach_pause() does. */
typedef int (*history_backfill_fn)(const char *job, const history_backfill *b, void *userdata);
int history_foreach_backfill(history *h, history_backfill_fn fn, void *userdata);

/* 1 if JOB's fire at SCHEDULED was claimed (run or skipped, by any fire trigger), else 0. */
int history_fire_claimed(history *h, const char *job, usec_t scheduled);
