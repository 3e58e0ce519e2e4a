/* SPDX-License-Identifier: MIT */
/* `schedctl backfill JOB --from T1 --to T2`: every instant of the job's cron schedule in the
 * range runs, oldest first, one at a time, each standing for its instant. Each is claimed in
 * history like any fire (the claim is committed before its run forks), so an instant that ran
 * before, or runs twice because of a restart, does not run again. The cursor is persisted
 * after each claim: a daemon killed mid-way resumes where it was. Backfill steps wait while
 * the job is disabled, paused, running, or the concurrency limit is reached. Its runs have the
 * trigger catch_up (they stand for past fires of the schedule). */
#include <inttypes.h>

#include "basic/clock.h"
#include "basic/log.h"
#include "basic/timefmt.h"
#include "core/manager-internal.h"

/* instants claimed per step: a long range of already claimed instants must not hold the loop */
#define STEP_BUDGET 256

/* The first instant of J's cron schedule at or after AT, or USEC_INFINITY. */
static usec_t instant_at_or_after(const job_def *d, usec_t at) {
        int64_t next;
        if (at == 0)
                return USEC_INFINITY;
        /* schedule_next() is strictly after its argument, in whole seconds */
        int64_t from = (int64_t) ((at + USEC_PER_SEC - 1) / USEC_PER_SEC) - 1;
        if (schedule_next(&d->schedule, d->zone, from, &next) < 0)
                return USEC_INFINITY;
        return (usec_t) next * USEC_PER_SEC;
}

static void backfill_persist(manager *m, job_rt *j) {
        history_backfill b = { .from_usec = j->backfill_from, .to_usec = j->backfill_to, .next_usec = j->backfill_next };
        int q = history_set_backfill(m->hist, j->def->name, j->backfilling ? &b : NULL);
        if (q < 0)
                manager_history_failed(m, q, "recording a backfill's progress");
}

static bool can_step(manager *m, job_rt *j) {
        return j->backfilling && !m->shutting_down && j->n_running == 0 && !j->queued && job_rt_enabled(j) &&
               !job_rt_paused(j, j->backfill_next) && m->n_running < m->reg->reg->max_concurrent;
}

/* Runs J's next instant(s): returns true when the budget ran out with more to do. */
static bool step(manager *m, job_rt *j) {
        for (unsigned n = 0; n < STEP_BUDGET; n++) {
                if (!can_step(m, j))
                        return false;
                usec_t t = instant_at_or_after(j->def, j->backfill_next);
                if (t == USEC_INFINITY || t > j->backfill_to) {
                        j->backfilling = false;
                        m->n_backfills--;
                        manager_history_batch(m);
                        backfill_persist(m, j);
                        manager_flush_history(m);
                        log_full(LOG_INFO, 0, j->def->name, 0, -1, "Backfill done");
                        return false;
                }
                /* claimed and committed before the fork: killed at any point, the daemon never
                 * runs this instant a second time */
                m->deferring = true;
                int64_t id = manager_fire(m, j, RUN_TRIGGER_CATCH_UP, t);
                m->deferring = false;
                j->backfill_next = t + 1;
                manager_history_batch(m);
                backfill_persist(m, j);
                manager_flush_history(m);
                manager_start_deferred(m);
                if (id > 0)
                        return false; /* the next one when this run has ended */
                if (id < 0) {
                        log_full(LOG_WARNING, (int) id, j->def->name, 0, -1, "Backfill: the instant %" PRIu64
                                 " could not start (%m); going on with the next", t);
                        return false;
                }
                /* 0: claimed before (ran, or skipped), or held: on to the next */
        }
        return true;
}

static int on_step(sd_event_source *s, void *userdata) {
        manager *m = userdata;
        bool more = false;
        for (size_t i = 0; i < m->n_jobs; i++)
                if (m->jobs[i]->backfilling && step(m, m->jobs[i]))
                        more = true;
        if (more)
                backfill_kick(m);
        manager_arm_timers(m);
        return 0;
}

void backfill_kick(manager *m) {
        if (m->n_backfills == 0)
                return;
        if (!m->backfill_source &&
            sd_event_add_defer(m->event, &m->backfill_source, on_step, m) >= 0)
                (void) sd_event_source_set_priority(m->backfill_source, SD_EVENT_PRIORITY_NORMAL + 1);
        if (m->backfill_source)
                (void) sd_event_source_set_enabled(m->backfill_source, SD_EVENT_ONESHOT);
}

void backfill_done(manager *m) {
        m->backfill_source = sd_event_source_disable_unref(m->backfill_source);
}

static int apply_pause(const char *job, usec_t until, void *userdata) {
        job_rt *j = manager_find_job(userdata, job);
        if (j)
                j->paused_until = until;
        return 0;
}

static int apply_backfill(const char *job, const history_backfill *b, void *userdata) {
        manager *m = userdata;
        job_rt *j = manager_find_job(m, job);
        if (!j || j->def->schedule.kind != SCHEDULE_CRON)
                return 0; /* kept for when the job comes back as a cron job */
        if (!j->backfilling)
                m->n_backfills++;
        j->backfilling = true;
        j->backfill_from = b->from_usec;
        j->backfill_to = b->to_usec;
        j->backfill_next = b->next_usec;
        return 0;
}

void backfill_load(manager *m) {
        size_t before = m->n_backfills;
        m->n_backfills = 0; /* the jobs in force are new: counted again from history */
        int q = history_foreach_pause(m->hist, apply_pause, m);
        if (q >= 0)
                q = history_foreach_backfill(m->hist, apply_backfill, m);
        if (q < 0)
                manager_history_failed(m, q, "reading pauses and backfills");
        if (m->n_backfills > before)
                log_info("%zu backfill%s in progress resume%s.", m->n_backfills, m->n_backfills == 1 ? "" : "s",
                         m->n_backfills == 1 ? "s" : "");
        backfill_kick(m);
}

int manager_backfill(manager *m, const char *name, usec_t from, usec_t to, bool dry_run, usec_t **ret_instants,
                     size_t *ret_n, size_t *ret_claimed, const char **ret_error) {
        _cleanup_free_ usec_t *v = NULL;
        job_rt *j = manager_find_job(m, name);
        size_t n = 0, cap = 0, claimed = 0;

        *ret_error = NULL;
        if (!j)
                return -ENOENT;
        if (j->def->schedule.kind != SCHEDULE_CRON) {
                *ret_error = "backfill needs a cron schedule: an @every job has no instants of its own to stand for";
                return -EINVAL;
        }
        if (from > to) {
                *ret_error = "--from is after --to; expected a range oldest first";
                return -EINVAL;
        }
        if (!dry_run && j->backfilling) {
                *ret_error = "a backfill of this job is in progress (schedctl status shows it); wait for it to end";
                return -EBUSY;
        }
        if (!dry_run && !job_rt_enabled(j)) {
                *ret_error = "the job is disabled; schedctl enable it first";
                return -EPERM;
        }
        for (usec_t t = instant_at_or_after(j->def, from); t != USEC_INFINITY && t <= to;
             t = instant_at_or_after(j->def, t + 1)) {
                if (n == BACKFILL_MAX) {
                        *ret_error = "the range holds more than 100000 instants; expected a shorter range";
                        return -E2BIG;
                }
                if (n == cap) {
                        cap = cap ? cap * 2 : 64;
                        usec_t *x = realloc(v, cap * sizeof(usec_t));
                        if (!x)
                                return -ENOMEM;
                        v = x;
                }
                v[n++] = t;
                int q = history_fire_claimed(m->hist, name, t);
                if (q < 0)
                        return q;
                claimed += q;
        }
        if (n == 0) {
                *ret_error = "the schedule has no instant in this range";
                return -EINVAL;
        }
        if (!dry_run) {
                j->backfilling = true;
                m->n_backfills++;
                j->backfill_from = from;
                j->backfill_to = to;
                j->backfill_next = from;
                manager_history_batch(m);
                backfill_persist(m, j);
                manager_flush_history(m);
                log_full(LOG_INFO, 0, name, 0, -1, "Backfill of %zu instant%s (%zu ran before) started", n,
                         n == 1 ? "" : "s", claimed);
                backfill_kick(m);
        }
        if (ret_instants)
                *ret_instants = TAKE_PTR(v);
        *ret_n = n;
        *ret_claimed = claimed;
        return 0;
}
