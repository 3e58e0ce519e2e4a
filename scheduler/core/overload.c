/* SPDX-License-Identifier: MIT */
/* Overload, accounted: scheduled fires held back by max_concurrent wait in the fire queue
 * (core/fire-queue.h) for a slot, oldest instant first; a fire that cannot start in time
 * (core/misfire.h), because it waited too long or the daemon itself was late, is recorded as
 * missed, one row per job for the instants found missed together. */
#include <inttypes.h>

#include "basic/clock.h"
#include "basic/duration.h"
#include "basic/log.h"
#include "basic/timefmt.h"
#include "core/manager-internal.h"

#define WHY_LATE "the daemon reached them too late (stalled, overloaded or suspended)"
#define WHY_WAITED "they waited for a slot under max_concurrent past their misfire_threshold"
#define WHY_STOPPED "the daemon stopped while they waited for a slot under max_concurrent"
#define WHY_UNREACHED "the daemon stopped before it reached them (it was behind)"

usec_t overload_threshold(const manager *m, const job_rt *j) {
        return j->def->misfire_threshold != MISFIRE_INHERIT ? j->def->misfire_threshold : m->reg->reg->misfire_threshold;
}

/* --- missed fires: gathered during a handler, recorded at its end ----------------------- */

void overload_missed(manager *m, job_rt *j, run_trigger trigger, const misfire_range *r, const char *why) {
        if (r->count == 0)
                return;
        if (j->missed.count == 0) {
                if (m->n_missed_jobs == m->missed_jobs_cap) {
                        size_t cap = MAX(m->missed_jobs_cap * 2, (size_t) 16);
                        job_rt **v = reallocarray(m->missed_jobs, cap, sizeof(job_rt *));
                        if (!v) {
                                log_full(LOG_ERR, -ENOMEM, j->def->name, 0, -1, "%" PRIu64 " fires missed from %"
                                         PRIu64 " to %" PRIu64 " cannot be recorded: %m", r->count, r->first, r->last);
                                return;
                        }
                        m->missed_jobs = v;
                        m->missed_jobs_cap = cap;
                }
                m->missed_jobs[m->n_missed_jobs++] = j;
                j->missed = *r;
                j->missed_trigger = trigger;
                j->missed_why = why;
        } else {
                j->missed.first = MIN(j->missed.first, r->first);
                j->missed.last = MAX(j->missed.last, r->last);
                j->missed.count += r->count;
        }
        manager_metrics_missed_count(j, r->count);
}

static void record(manager *m, job_rt *j) {
        misfire_range r = j->missed;
        char a[TIMEFMT_MAX], b[TIMEFMT_MAX], msg[512], thr[DURATION_MAX];
        usec_t t = overload_threshold(m, j);

        j->missed = (misfire_range) {};
        snprintf(msg, sizeof(msg), "%" PRIu64 " fire%s from %s to %s could not start in time (misfire_threshold %s): %s",
                 r.count, r.count == 1 ? "" : "s", timefmt_rfc3339(r.first, NULL, false, a, sizeof(a)),
                 timefmt_rfc3339(r.last, NULL, false, b, sizeof(b)),
                 t == MISFIRE_AUTO ? "auto, until the next fire" : duration_format(t, thr, sizeof(thr)), j->missed_why);
        log_full(LOG_WARNING, 0, j->def->name, 0, -1, "Missed: %s", msg);
        manager_history_batch(m);
        int q = history_record_missed(m->hist, j->def->name, j->missed_trigger, r.first, r.last, r.count,
                                      MAX(clock_now_realtime(), r.last), msg, NULL);
        if (q == -EEXIST)
                log_full(LOG_INFO, 0, j->def->name, 0, -1, "The first missed fire, at %" PRIu64 ", was recorded before",
                         r.first);
        else if (q < 0)
                manager_history_failed(m, q, "recording missed fires");
        manager_status_changed(m);
}

void overload_missed_flush(manager *m) {
        for (size_t i = 0; i < m->n_missed_jobs; i++)
                record(m, m->missed_jobs[i]);
        m->n_missed_jobs = 0;
}

void overload_job_gone(manager *m, job_rt *j) {
        if (j->missed.count > 0)
                overload_missed_flush(m);
}

/* --- a late daemon ---------------------------------------------------------------------- */

static int cron_next(const void *userdata, usec_t after, usec_t *ret) {
        const job_def *d = userdata;
        int64_t next;
        int r = schedule_next(&d->schedule, d->zone, (int64_t) (after / USEC_PER_SEC), &next);
        if (r < 0)
                return r;
        *ret = (usec_t) next * USEC_PER_SEC;
        return 0;
}

int overload_late_cron(manager *m, job_rt *j, usec_t scheduled, usec_t now, usec_t *ret_next) {
        misfire_range r;
        usec_t next;

        int q = misfire_scan(cron_next, j->def, scheduled, overload_threshold(m, j), j->def->random_delay, now, &r, &next);
        if (q < 0) {
                log_full(LOG_ERR, q, j->def->name, 0, -1, "Cannot compute the fires after %" PRIu64 ": %m", scheduled);
                *ret_next = scheduled;
                return 0;
        }
        if (r.count > 0 && j->def->catch_up && q == 0) {
                /* catch_up: one run stands for the latest of them (as after downtime), the
                 * others are recorded missed */
                usec_t latest = r.last;
                r.count--;
                r.last = r.before_last;
                overload_missed(m, j, RUN_TRIGGER_SCHEDULE, &r, WHY_LATE);
                log_full(LOG_NOTICE, 0, j->def->name, 0, -1, "Catching up on fires the daemon reached too late");
                (void) manager_fire(m, j, RUN_TRIGGER_CATCH_UP, latest);
                manager_history_batch(m);
                (void) history_set_last_scheduled(m->hist, j->def->name, latest);
        } else if (r.count > 0) {
                overload_missed(m, j, RUN_TRIGGER_SCHEDULE, &r, WHY_LATE);
                manager_history_batch(m);
                (void) history_set_last_scheduled(m->hist, j->def->name, r.last);
        }
        *ret_next = next;
        return q;
}

usec_t overload_late_every(manager *m, job_rt *j, usec_t due_boot, usec_t now_boot) {
        misfire_range r;
        usec_t next;

        misfire_scan_every(j->def->schedule.interval, due_boot, overload_threshold(m, j), j->def->random_delay, now_boot,
                           &r, &next);
        if (r.count > 0) {
                /* recorded on the wall clock, as every instant in history */
                r.first = manager_boot_to_real(r.first);
                r.last = manager_boot_to_real(r.last);
                overload_missed(m, j, RUN_TRIGGER_SCHEDULE, &r, WHY_LATE);
        }
        return next;
}

/* --- the queue ------------------------------------------------------------------------- */

static bool slot_free(const manager *m) {
        return m->n_running < m->reg->reg->max_concurrent;
}

int overload_enqueue(manager *m, job_rt *j, run_trigger trigger, usec_t scheduled) {
        usec_t next = USEC_INFINITY;
        int64_t n;

        if (j->every)
                next = scheduled + j->def->schedule.interval;
        else if (schedule_next(&j->def->schedule, j->def->zone, (int64_t) (scheduled / USEC_PER_SEC), &n) >= 0)
                next = (usec_t) n * USEC_PER_SEC;
        usec_t deadline = misfire_deadline(scheduled, next, overload_threshold(m, j), j->def->random_delay);
        int q = fire_queue_push(&m->fire_queue, j->def->name, trigger, scheduled, deadline);
        if (q < 0) {
                log_full(LOG_ERR, q, j->def->name, 0, -1, "Cannot hold the fire at %" PRIu64 " for a slot: %m", scheduled);
                return q;
        }
        log_full(LOG_INFO, 0, j->def->name, 0, -1, "Fire at %" PRIu64 " waits for a slot (max_concurrent=%u runs in flight, %zu waiting)",
                 scheduled, m->reg->reg->max_concurrent, fire_queue_size(&m->fire_queue));
        return 0;
}

bool manager_slots_wanted(void *userdata) {
        return overload_waiting(userdata);
}

bool overload_waiting(const manager *m) {
        return fire_queue_size(&m->fire_queue) > 0;
}

/* The fire F (taken out of the queue) did not start in time, or cannot start at all. */
static void missed_waiting(manager *m, queued_fire *f, const char *why) {
        job_rt *j = manager_find_job(m, f->job);
        misfire_range r = { .first = f->scheduled, .last = f->scheduled, .count = 1 };

        if (j) {
                overload_missed(m, j, f->trigger, &r, why);
                return;
        }
        /* its job went in a reload while it waited: recorded under its name all the same */
        manager_history_batch(m);
        int q = history_record_missed(m->hist, f->job, f->trigger, f->scheduled, f->scheduled, 1,
                                      MAX(clock_now_realtime(), f->scheduled),
                                      "the job was removed from the registry while its fire waited for a slot", NULL);
        if (q < 0 && q != -EEXIST)
                manager_history_failed(m, q, "recording a missed fire");
}

static void expire(manager *m, usec_t now) {
        queued_fire *f;
        while ((f = fire_queue_first_deadline(&m->fire_queue)) && f->deadline < now) {
                fire_queue_take(&m->fire_queue, f);
                missed_waiting(m, f, WHY_WAITED);
                queued_fire_free(f);
        }
}

void overload_drain(manager *m) {
        usec_t now = clock_now_realtime();
        queued_fire *f;

        if (!overload_waiting(m) || m->shutting_down)
                return;
        expire(m, now);
        while (slot_free(m) && (f = fire_queue_oldest(&m->fire_queue))) {
                fire_queue_take(&m->fire_queue, f);
                job_rt *j = manager_find_job(m, f->job);
                if (!j)
                        missed_waiting(m, f, NULL);
                else
                        (void) manager_fire_waited(m, j, f->trigger, f->scheduled);
                queued_fire_free(f);
        }
        overload_missed_flush(m);
}

static int on_queue_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        manager *m = userdata;
        expire(m, clock_now_realtime());
        overload_missed_flush(m);
        overload_arm(m);
        return 0;
}

static int on_drain(sd_event_source *s, void *userdata) {
        manager *m = userdata;
        m->deferring = true;
        overload_drain(m);
        m->deferring = false;
        manager_start_deferred(m);
        return 0;
}

void overload_drain_soon(manager *m) {
        if (overload_waiting(m) && !m->shutting_down)
                (void) sd_event_source_set_enabled(m->drain_source, SD_EVENT_ONESHOT);
}

int overload_setup(manager *m) {
        int q = sd_event_add_time(m->event, &m->queue_timer, CLOCK_REALTIME, USEC_INFINITY, 1, on_queue_timer, m);
        if (q < 0)
                return q;
        q = sd_event_add_defer(m->event, &m->drain_source, on_drain, m);
        if (q < 0)
                return q;
        return sd_event_source_set_enabled(m->drain_source, SD_EVENT_OFF);
}

void overload_arm(manager *m) {
        queued_fire *f = fire_queue_first_deadline(&m->fire_queue);
        if (slot_free(m) && !m->shutting_down && !m->deferring && f)
                overload_drain(m);
        f = fire_queue_first_deadline(&m->fire_queue);
        manager_timer_at(m->queue_timer, !f || f->deadline == USEC_INFINITY || m->shutting_down
                                                 ? USEC_INFINITY
                                                 : clock_realtime_to_kernel(f->deadline + 1));
}

/* At shutdown, the instants of J already due that no dispatch reached (the daemon was behind):
 * recorded missed, as a late daemon would have, not left out. */
static void unreached(manager *m, job_rt *j, usec_t now_real, usec_t now_boot) {
        misfire_range r = {};
        usec_t next;

        if (!job_rt_enabled(j) || !timer_entry_queued(&j->fire.entry))
                return;
        if (j->every) {
                usec_t due = j->fire.entry.when - j->fire_delay;
                if (due < now_boot)
                        misfire_scan_every(j->def->schedule.interval, due, 1, 0, now_boot, &r, &next);
                r.first = manager_boot_to_real(r.first);
                r.last = manager_boot_to_real(r.last);
        } else if (j->next_fire < now_real)
                (void) misfire_scan(cron_next, j->def, j->next_fire, 1, 0, now_real, &r, &next);
        if (r.count > 0 && !job_rt_paused(j, r.first))
                overload_missed(m, j, RUN_TRIGGER_SCHEDULE, &r, WHY_UNREACHED);
}

void overload_shutdown(manager *m) {
        usec_t now_real = clock_now_realtime(), now_boot = clock_now_boottime();
        queued_fire *f;

        while ((f = fire_queue_oldest(&m->fire_queue))) {
                fire_queue_take(&m->fire_queue, f);
                missed_waiting(m, f, WHY_STOPPED);
                queued_fire_free(f);
        }
        for (size_t i = 0; i < m->n_jobs; i++)
                unreached(m, m->jobs[i], now_real, now_boot);
        overload_missed_flush(m);
}

void overload_done(manager *m) {
        fire_queue_done(&m->fire_queue);
        free(m->missed_jobs);
        m->missed_jobs = NULL;
        m->n_missed_jobs = m->missed_jobs_cap = 0;
        m->queue_timer = sd_event_source_disable_unref(m->queue_timer);
        m->drain_source = sd_event_source_disable_unref(m->drain_source);
}
