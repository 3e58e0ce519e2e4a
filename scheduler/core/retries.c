/* SPDX-License-Identifier: MIT */
/* Pending retries: one per run that asked for one (a new fire or a manual run never replaces
 * another run's retry), named by job so they outlive reloads, kept in history so they outlive
 * restarts, and resumed at start-up. */
#include <inttypes.h>

#include "basic/clock.h"
#include "basic/duration.h"
#include "basic/log.h"
#include "core/manager-internal.h"

static void count(manager *m, const char *job, int delta) {
        job_rt *j = manager_find_job(m, job);
        if (j && (delta > 0 || j->n_retrying > 0))
                j->n_retrying += (unsigned) delta;
}

int manager_retry_add(manager *m, const char *job, int64_t first_id, unsigned attempt, usec_t scheduled,
                      usec_t due_boot) {
        retry_wait *rw = calloc(1, sizeof(retry_wait));
        if (!rw)
                return -ENOMEM;
        rw->job = strdup(job);
        if (!rw->job) {
                free(rw);
                return -ENOMEM;
        }
        rw->w = (wake) { .entry = TIMER_ENTRY_INIT, .kind = WAKE_RETRY };
        rw->first_id = first_id;
        rw->attempt = attempt;
        rw->scheduled = scheduled;
        if (timer_heap_put(&m->boot_heap, &rw->w.entry, due_boot) < 0) {
                free(rw->job);
                free(rw);
                return -ENOMEM;
        }
        rw->next = m->retries;
        if (m->retries)
                m->retries->prev = rw;
        m->retries = rw;
        count(m, job, +1);
        if (first_id > 0) {
                history_retry h = {
                        .first_run_id = first_id,
                        .job = job,
                        .attempt = attempt,
                        .scheduled_usec = scheduled,
                        .due_usec = manager_boot_to_real(due_boot),
                };
                manager_history_batch(m);
                int q = history_put_retry(m->hist, &h);
                if (q < 0)
                        manager_history_failed(m, q, "recording a pending retry");
        }
        return 0;
}

void manager_retries_wake(manager *m, const char *job) {
        usec_t now = clock_now_boottime();
        bool woke = false;
        for (retry_wait *rw = m->retries; rw; rw = rw->next)
                if (rw->waiting_room && streq(rw->job, job)) {
                        rw->waiting_room = false;
                        woke = timer_heap_put(&m->boot_heap, &rw->w.entry, now) >= 0 || woke;
                }
        if (woke)
                manager_arm_timers(m);
}

void manager_retry_drop(manager *m, retry_wait *rw, bool forget) {
        if (!rw)
                return;
        timer_heap_remove(&m->boot_heap, &rw->w.entry);
        if (rw->prev)
                rw->prev->next = rw->next;
        else
                m->retries = rw->next;
        if (rw->next)
                rw->next->prev = rw->prev;
        count(m, rw->job, -1);
        if (forget && rw->first_id > 0) {
                manager_history_batch(m);
                int q = history_remove_retry(m->hist, rw->first_id);
                if (q < 0)
                        manager_history_failed(m, q, "forgetting a pending retry");
        }
        free(rw->job);
        free(rw);
}

void manager_retries_recount(manager *m) {
        for (size_t i = 0; i < m->n_jobs; i++)
                m->jobs[i]->n_retrying = 0;
        for (retry_wait *rw = m->retries; rw; rw = rw->next)
                count(m, rw->job, +1);
}

void manager_retries_free(manager *m) {
        while (m->retries) {
                retry_wait *rw = m->retries;
                m->retries = rw->next;
                free(rw->job);
                free(rw);
        }
}

typedef struct resume_ctx {
        manager *m;
        int64_t *gone; /* chains of jobs no longer in the registry, forgotten after the scan */
        size_t n_gone;
} resume_ctx;

static int resume_one(const history_retry *h, void *userdata) {
        resume_ctx *c = userdata;
        manager *m = c->m;
        usec_t now = clock_now_realtime(), left = h->due_usec > now ? h->due_usec - now : 0;
        char b[DURATION_MAX];

        if (!manager_find_job(m, h->job)) {
                log_full(LOG_WARNING, 0, h->job, (uint64_t) h->first_run_id, (int) h->attempt,
                         "Pending retry %u of run %" PRId64 " abandoned: the job is no longer in the registry", h->attempt,
                         h->first_run_id);
                int64_t *g = realloc(c->gone, (c->n_gone + 1) * sizeof(int64_t));
                if (!g)
                        return -ENOMEM;
                c->gone = g;
                c->gone[c->n_gone++] = h->first_run_id;
                return 0;
        }
        log_full(LOG_NOTICE, 0, h->job, (uint64_t) h->first_run_id, (int) h->attempt,
                 "Resuming retry %u of run %" PRId64 " pending before the restart, in %s", h->attempt, h->first_run_id,
                 duration_format(left, b, sizeof(b)));
        return manager_retry_add(m, h->job, h->first_run_id, h->attempt, h->scheduled_usec, clock_now_boottime() + left);
}

static int adopt_one(const history_retry *h, void *userdata) {
        manager *m = userdata;
        usec_t now = clock_now_realtime(), left = h->due_usec > now ? h->due_usec - now : 0;
        char b[DURATION_MAX];

        if (!manager_find_job(m, h->job))
                return 0; /* another node's job: its row stays for a node that defines it */
        for (retry_wait *rw = m->retries; rw; rw = rw->next)
                if (rw->first_id == h->first_run_id && rw->attempt == h->attempt)
                        return 0; /* waiting here already */
        log_full(LOG_NOTICE, 0, h->job, (uint64_t) h->first_run_id, (int) h->attempt,
                 "Adopting retry %u of run %" PRId64 ", pending when its node was lost, in %s", h->attempt,
                 h->first_run_id, duration_format(left, b, sizeof(b)));
        return manager_retry_add(m, h->job, h->first_run_id, h->attempt, h->scheduled_usec, clock_now_boottime() + left);
}

int manager_retries_adopt(manager *m) {
        int q = history_foreach_retry(m->hist, adopt_one, m);
        if (q < 0)
                log_warning_errno(q, "Cannot read the pending retries of lost nodes (%s); they wait for a node's restart.",
                                  history_last_error(m->hist));
        else
                manager_arm_timers(m);
        return q;
}

int manager_retries_resume(manager *m) {
        resume_ctx c = { .m = m };
        int q = history_foreach_retry(m->hist, resume_one, &c);
        for (size_t i = 0; i < c.n_gone; i++) {
                manager_history_batch(m);
                (void) history_remove_retry(m->hist, c.gone[i]);
        }
        free(c.gone);
        if (q < 0)
                log_warning_errno(q, "Cannot read the pending retries from history (%s); they are not resumed.",
                                  history_last_error(m->hist));
        return q;
}
