/* SPDX-License-Identifier: MIT */
/* The one history interface: chooses a backend by scheduler.store and dispatches every call to
 * the handle's ops table; the checks and helpers both backends share. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/history-backend.h"

int history_base_init(history *h, const history_ops *ops, const char *where) {
        h->ops = ops;
        h->where = strdup(where);
        return h->where ? 0 : -ENOMEM;
}

void history_base_done(history *h) {
        free(h->where);
        h->where = NULL;
}

void history_set_errorv(history *h, const char *fmt, va_list ap) {
        int n = snprintf(h->error, sizeof h->error, "%s: ", h->where ?: "history");

        if (n < 0 || (size_t) n >= sizeof h->error)
                return;
        (void) vsnprintf(h->error + n, sizeof h->error - n, fmt, ap);
}

void history_set_error(history *h, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        history_set_errorv(h, fmt, ap);
        va_end(ap);
}

int history_check_usec(history *h, usec_t u, bool allow_infinity, const char *what) {
        if (u == USEC_INFINITY && allow_infinity)
                return 0;
        if (u > (usec_t) INT64_MAX) {
                history_set_error(h, "%s %" PRIu64 " is out of range (expected below 2^63 us)", what, u);
                return -ERANGE;
        }
        return 0;
}

int history_check_job(history *h, const char *job) {
        if (isempty(job)) {
                history_set_error(h, "empty job name (expected the job's registry name)");
                return -EINVAL;
        }
        return 0;
}

int history_check_first_trigger(history *h, run_trigger t) {
        if (t < 0 || t >= _RUN_TRIGGER_MAX || t == RUN_TRIGGER_RETRY) {
                history_set_error(h, "trigger %d is not valid here (expected schedule, manual, startup "
                                  "or catch_up)", (int) t);
                return -EINVAL;
        }
        return 0;
}

const char *history_claim_class_of(run_trigger t) {
        return t == RUN_TRIGGER_MANUAL ? NULL : "fire";
}

size_t history_utf8_head_length(const char *s, size_t n, size_t max) {
        if (n <= max)
                return n;
        /* don't end inside a multi-byte sequence */
        while (max > 0 && ((unsigned char) s[max] & 0xc0) == 0x80)
                max--;
        return max;
}

size_t history_utf8_tail_offset(const char *s, size_t n, size_t max) {
        if (n <= max)
                return 0;
        size_t off = n - max;
        /* don't start inside a multi-byte sequence (at most 3 continuation bytes) */
        for (unsigned i = 0; i < 3 && off < n && ((unsigned char) s[off] & 0xc0) == 0x80; i++)
                off++;
        return off;
}

/* ---- opening ---------------------------------------------------------------------------- */

int history_open(const char *path, char *error, size_t error_size, history **ret) {
        return history_sqlite_open(path, error, error_size, ret);
}

int history_open_store(const char *store, const char *state_dir, char *error, size_t error_size, history **ret) {
        if (!ret)
                return -EINVAL;
        if (isempty(store) || streq(store, "sqlite")) {
                _cleanup_free_ char *path = NULL;
                if (isempty(state_dir))
                        return -EINVAL;
                if (asprintf(&path, "%s/history.db", state_dir) < 0)
                        return -ENOMEM;
                return history_sqlite_open(path, error, error_size, ret);
        }
        return history_pg_open(store, error, error_size, ret);
}

int history_store_check(const char *store, char *error, size_t error_size) {
        if (isempty(store) || streq(store, "sqlite"))
                return 0;
        return history_pg_check(store, error, error_size);
}

history_backend history_get_backend(history *h) {
        return h ? h->ops->backend : HISTORY_BACKEND_SQLITE;
}

const char *history_where(history *h) {
        return h && h->where ? h->where : "";
}

const char *history_last_error(history *h) {
        return h ? h->error : "";
}

history_run *history_runs_free(history_run *runs, size_t n) {
        if (!runs)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                free(runs[i].job);
                free(runs[i].message);
                free(runs[i].output);
        }
        free(runs);
        return NULL;
}

/* ---- dispatch --------------------------------------------------------------------------- */

history *history_close(history *h) {
        if (!h)
                return NULL;
        return h->ops->close(h);
}

#define DISPATCH(name, ...)                      \
        do {                                     \
                if (!h)                          \
                        return -EINVAL;          \
                return h->ops->name(__VA_ARGS__); \
        } while (0)

int history_set_size_limit(history *h, uint64_t max_bytes) { DISPATCH(set_size_limit, h, max_bytes); }
int history_begin(history *h) { DISPATCH(begin, h); }
int history_wal_pages(history *h) { DISPATCH(wal_pages, h); }
int history_commit(history *h) { DISPATCH(commit, h); }
int history_rollback(history *h) { DISPATCH(rollback, h); }
int history_checkpoint(history *h) { DISPATCH(checkpoint, h); }

int history_claim_fire(history *h, const char *job, run_trigger trigger, usec_t scheduled, usec_t started, pid_t pid,
                       int64_t *ret_run_id) {
        DISPATCH(claim_fire, h, job, trigger, scheduled, started, pid, ret_run_id);
}

int history_claim_retry(history *h, int64_t first_run_id, unsigned attempt, usec_t started, pid_t pid,
                        int64_t *ret_run_id) {
        DISPATCH(claim_retry, h, first_run_id, attempt, started, pid, ret_run_id);
}

int history_record_skipped(history *h, const char *job, run_trigger trigger, usec_t scheduled, usec_t now,
                           const char *message, int64_t *ret_run_id) {
        DISPATCH(record_skipped, h, job, trigger, scheduled, now, message, ret_run_id);
}

int history_skip_claimed(history *h, int64_t run_id, usec_t now, const char *message) {
        DISPATCH(skip_claimed, h, run_id, now, message);
}

int history_record_missed(history *h, const char *job, run_trigger trigger, usec_t first, usec_t last, uint64_t count,
                          usec_t now, const char *message, int64_t *ret_run_id) {
        if (h && !h->ops->record_missed)
                return -EOPNOTSUPP;
        DISPATCH(record_missed, h, job, trigger, first, last, count, now, message, ret_run_id);
}

int history_set_pid(history *h, int64_t run_id, pid_t pid) { DISPATCH(set_pid, h, run_id, pid); }
int history_set_start(history *h, int64_t run_id, pid_t pid, usec_t started) {
        DISPATCH(set_start, h, run_id, pid, started);
}
int history_finish_run(history *h, int64_t run_id, const history_result *r) { DISPATCH(finish_run, h, run_id, r); }
int history_mark_interrupted(history *h, unsigned *ret_count) { DISPATCH(mark_interrupted, h, ret_count); }

int history_prune(history *h, usec_t now, usec_t max_age, unsigned max_runs_per_job, unsigned *ret_deleted) {
        DISPATCH(prune, h, now, max_age, max_runs_per_job, ret_deleted);
}

int history_get_job_state(history *h, const char *job, history_job_state *ret) {
        DISPATCH(get_job_state, h, job, ret);
}
int history_foreach_job_state(history *h, history_job_state_fn fn, void *userdata) {
        DISPATCH(foreach_job_state, h, fn, userdata);
}
int history_set_enabled_override(history *h, const char *job, int override) {
        DISPATCH(set_enabled_override, h, job, override);
}
int history_set_last_scheduled(history *h, const char *job, usec_t scheduled) {
        DISPATCH(set_last_scheduled, h, job, scheduled);
}

int history_list_runs(history *h, const char *job, usec_t since, run_status status, unsigned limit,
                      history_run **ret_runs, size_t *ret_n) {
        DISPATCH(list_runs, h, job, since, status, limit, ret_runs, ret_n);
}

int history_get_job_stats(history *h, const char *job, usec_t since, history_job_stats *ret) {
        DISPATCH(get_job_stats, h, job, since, ret);
}

int history_put_retry(history *h, const history_retry *r) { DISPATCH(put_retry, h, r); }
int history_remove_retry(history *h, int64_t first_run_id) { DISPATCH(remove_retry, h, first_run_id); }
int history_foreach_retry(history *h, history_retry_fn fn, void *userdata) { DISPATCH(foreach_retry, h, fn, userdata); }
int history_set_first_loaded(history *h, const char *job, usec_t when) { DISPATCH(set_first_loaded, h, job, when); }
int history_get_size(history *h, uint64_t *ret_runs, uint64_t *ret_bytes) {
        DISPATCH(get_size, h, ret_runs, ret_bytes);
}
int history_set_pause(history *h, const char *job, bool paused, usec_t until) {
        DISPATCH(set_pause, h, job, paused, until);
}
int history_foreach_pause(history *h, history_pause_fn fn, void *userdata) { DISPATCH(foreach_pause, h, fn, userdata); }
int history_set_backfill(history *h, const char *job, const history_backfill *b) {
        DISPATCH(set_backfill, h, job, b);
}
int history_foreach_backfill(history *h, history_backfill_fn fn, void *userdata) {
        DISPATCH(foreach_backfill, h, fn, userdata);
}
int history_fire_claimed(history *h, const char *job, usec_t scheduled) { DISPATCH(fire_claimed, h, job, scheduled); }
