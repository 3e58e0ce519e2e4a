/* SPDX-License-Identifier: MIT */
#pragma once

/* Inside the store layer only: what a history backend implements. history.c checks the handle
 * and dispatches every history.h call through the handle's ops table; each backend's handle
 * begins with `history base`. Arguments reach a backend after history.c's NULL check of H;
 * everything else (ranges, job names) is the backend's to check, with the helpers below. */

#include <stdarg.h>

#include "store/history.h"

typedef struct history_ops {
        history_backend backend;
        history *(*close)(history *h);
        int (*set_size_limit)(history *h, uint64_t max_bytes);
        int (*begin)(history *h);
        int (*commit)(history *h);
        int (*rollback)(history *h);
        int (*checkpoint)(history *h);
        int (*wal_pages)(history *h);
        int (*claim_fire)(history *h, const char *job, run_trigger trigger, usec_t scheduled, usec_t started,
                          pid_t pid, int64_t *ret_run_id);
        int (*claim_retry)(history *h, int64_t first_run_id, unsigned attempt, usec_t started, pid_t pid,
                           int64_t *ret_run_id);
        int (*record_skipped)(history *h, const char *job, run_trigger trigger, usec_t scheduled, usec_t now,
                              const char *message, int64_t *ret_run_id);
        int (*skip_claimed)(history *h, int64_t run_id, usec_t now, const char *message);
        /* NULL where the backend cannot record missed fires yet: history_record_missed() then
         * returns -EOPNOTSUPP and the caller counts them in the metric only */
        int (*record_missed)(history *h, const char *job, run_trigger trigger, usec_t first, usec_t last,
                             uint64_t count, usec_t now, const char *message, int64_t *ret_run_id);
        int (*set_pid)(history *h, int64_t run_id, pid_t pid);
        int (*set_start)(history *h, int64_t run_id, pid_t pid, usec_t started);
        int (*finish_run)(history *h, int64_t run_id, const history_result *r);
        int (*mark_interrupted)(history *h, unsigned *ret_count);
        int (*prune)(history *h, usec_t now, usec_t max_age, unsigned max_runs_per_job, unsigned *ret_deleted);
        int (*get_job_state)(history *h, const char *job, history_job_state *ret);
        int (*foreach_job_state)(history *h, history_job_state_fn fn, void *userdata);
        int (*set_enabled_override)(history *h, const char *job, int override);
        int (*set_last_scheduled)(history *h, const char *job, usec_t scheduled);
        int (*list_runs)(history *h, const char *job, usec_t since, run_status status, unsigned limit,
                         history_run **ret_runs, size_t *ret_n);
        int (*get_job_stats)(history *h, const char *job, usec_t since, history_job_stats *ret);
        int (*put_retry)(history *h, const history_retry *r);
        int (*remove_retry)(history *h, int64_t first_run_id);
        int (*foreach_retry)(history *h, history_retry_fn fn, void *userdata);
        int (*set_first_loaded)(history *h, const char *job, usec_t when);
        int (*get_size)(history *h, uint64_t *ret_runs, uint64_t *ret_bytes);
        int (*set_pause)(history *h, const char *job, bool paused, usec_t until);
        int (*foreach_pause)(history *h, history_pause_fn fn, void *userdata);
        int (*set_backfill)(history *h, const char *job, const history_backfill *b);
        int (*foreach_backfill)(history *h, history_backfill_fn fn, void *userdata);
        int (*fire_claimed)(history *h, const char *job, usec_t scheduled);
} history_ops;

struct history {
        const history_ops *ops;
        char *where;                    /* the file, or the server as "PostgreSQL host:port/db" */
        char error[HISTORY_ERROR_MAX];  /* "WHERE: what failed: why", "" if nothing failed */
};

/* Fills the base of a new handle: OPS, and WHERE copied. -ENOMEM. */
int history_base_init(history *h, const history_ops *ops, const char *where);
/* Frees what history_base_init() allocated (not H itself). */
void history_base_done(history *h);

/* Sets H's error to "WHERE: " and the formatted text. */
void history_set_error(history *h, const char *fmt, ...) _printf_(2, 3);
void history_set_errorv(history *h, const char *fmt, va_list ap) _printf_(2, 0);

/* -ERANGE (with the error set) when U is above INT64_MAX, unless it is USEC_INFINITY and
 * ALLOW_INFINITY. WHAT names the value in the message. */
int history_check_usec(history *h, usec_t u, bool allow_infinity, const char *what);
/* -EINVAL (with the error set) for a NULL or empty job name. */
int history_check_job(history *h, const char *job);
/* -EINVAL (with the error set) for RETRY or an out-of-range trigger: a first attempt's trigger. */
int history_check_first_trigger(history *h, run_trigger t);

/* 'fire' for triggers that stand for a fire of the schedule, NULL for manual: THE CLAIM KEY. */
const char *history_claim_class_of(run_trigger t);

/* The byte length of S (N bytes) cut to at most MAX without ending inside a UTF-8 sequence. */
size_t history_utf8_head_length(const char *s, size_t n, size_t max);
/* Where the last MAX bytes of S (N bytes) start, not inside a UTF-8 sequence. */
size_t history_utf8_tail_offset(const char *s, size_t n, size_t max);

/* The backends' open functions, called by history_open_store(). */
int history_sqlite_open(const char *path, char *error, size_t error_size, history **ret);
int history_pg_check(const char *conninfo, char *error, size_t error_size);
int history_pg_open(const char *conninfo, char *error, size_t error_size, history **ret);
