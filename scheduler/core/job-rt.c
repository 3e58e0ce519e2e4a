/* SPDX-License-Identifier: MIT */
/* One job's runtime state (job_rt): lookup by name, its next fire on the due-instant heaps,
 * its state directory. */
#include "basic/clock.h"
#include "basic/jitter.h"
#include "basic/log.h"
#include "core/jobctx.h"
#include "core/manager-internal.h"

/* --- jobs -------------------------------------------------------------------------- */

bool job_rt_enabled(const job_rt *j) {
        return j->enabled_override >= 0 ? j->enabled_override > 0 : j->def->enabled;
}

bool job_rt_paused(const job_rt *j, usec_t scheduled) {
        return j->paused_until > 0 && scheduled < j->paused_until;
}

static int job_rt_key_cmp(const void *key, const void *b) {
        return strcmp(key, (*(job_rt *const *) b)->def->name);
}

job_rt *job_rt_find(job_rt **by_name, size_t n, const char *name) {
        job_rt **x = n > 0 ? bsearch(name, by_name, n, sizeof(job_rt *), job_rt_key_cmp) : NULL;
        return x ? *x : NULL;
}

job_rt *manager_find_job(manager *m, const char *name) {
        return job_rt_find(m->by_name, m->n_jobs, name);
}

job_rt *job_rt_new(manager *m, job_def *def) {
        job_rt *j = calloc(1, sizeof(job_rt));
        if (!j)
                return NULL;
        j->m = m;
        j->def = def;
        j->every = def->schedule.kind == SCHEDULE_EVERY;
        j->fire = (wake) { .entry = TIMER_ENTRY_INIT, .job = j, .kind = WAKE_FIRE };
        j->next_fire = USEC_INFINITY;
        j->enabled_override = -1;
        return j;
}

job_rt *job_rt_free(job_rt *j) {
        if (!j)
                return NULL;
        manager_warm_abandon(j);
        overload_job_gone(j->m, j);
        free(j->dir);
        free(j->runs);
        job_metrics_free(j->metrics);
        timer_heap_remove(j->every ? &j->m->boot_heap : &j->m->real_heap, &j->fire.entry);
        free(j);
        return NULL;
}

/* Wall-clock instant of a boottime instant. */
usec_t manager_boot_to_real(usec_t boot) {
        usec_t now_b = clock_now_boottime(), now_r = clock_now_realtime();
        return boot >= now_b ? now_r + (boot - now_b) : now_r - MIN(now_r, now_b - boot);
}

/* Queues the job's next cron fire strictly after AFTER (wall clock). */
void job_rt_schedule_cron(job_rt *j, usec_t after) {
        int64_t next;
        int r = schedule_next(&j->def->schedule, j->def->zone, (int64_t) (after / USEC_PER_SEC), &next);
        if (r < 0) {
                timer_heap_remove(&j->m->real_heap, &j->fire.entry);
                j->next_fire = USEC_INFINITY;
                if (r != -ERANGE)
                        log_full(LOG_ERR, r, j->def->name, 0, -1, "Cannot compute the next fire of \"%s\": %m",
                                 j->def->schedule_expr);
                return;
        }
        j->next_fire = (usec_t) next * USEC_PER_SEC;
        j->fire_delay = jitter_delay(j->def->name, j->next_fire, j->def->random_delay);
        if (timer_heap_put(&j->m->real_heap, &j->fire.entry, j->next_fire + j->fire_delay) < 0)
                log_full(LOG_ERR, -ENOMEM, j->def->name, 0, -1, "Cannot queue the next fire: %m");
}

void job_rt_schedule_every(job_rt *j, usec_t due_boot) {
        j->next_fire = manager_boot_to_real(due_boot);
        j->fire_delay = jitter_delay(j->def->name, j->next_fire, j->def->random_delay);
        if (timer_heap_put(&j->m->boot_heap, &j->fire.entry, due_boot + j->fire_delay) < 0)
                log_full(LOG_ERR, -ENOMEM, j->def->name, 0, -1, "Cannot queue the next fire: %m");
}

/* The nearest grid instant, not the next: DUE_BOOT is already on the grid but for the
 * microseconds the conversion between the two clocks adds (rounding up would skip a fire). */
usec_t job_rt_every_aligned(const job_rt *j, usec_t due_boot) {
        usec_t iv = j->def->schedule.interval, real = manager_boot_to_real(due_boot);
        usec_t grid = (real + iv / 2) / iv * iv;
        return grid >= real ? due_boot + (grid - real) : due_boot - MIN(due_boot, real - grid);
}

void job_rt_schedule_first(job_rt *j) {
        usec_t iv = j->def->schedule.interval, now_b = clock_now_boottime(), now_r = clock_now_realtime();
        if (j->every && j->m->clustered) /* the first grid instant after now */
                job_rt_schedule_every(j, now_b + ((now_r / iv + 1) * iv - now_r));
        else if (j->every)
                job_rt_schedule_every(j, clock_now_boottime() + j->def->schedule.interval);
        else
                job_rt_schedule_cron(j, clock_now_realtime());
}

/* --- its runs: their directory, and the job of a run ------------------------------ */

/* The job's state directory, made on its first run and remembered (a mkdir per run was a fifth
 * of the daemon's time under 167 fires a second). NULL on OOM. */
const char *job_rt_dir(manager *m, job_rt *j) {
        if (!j->dir)
                j->dir = jobctx_state_dir(m->reg->reg, j->def);
        return j->dir;
}

job_rt *job_rt_of_run(manager *m, const run *r) {
        /* a run of the registry in force is found by its index: a fire's run is looked up four
         * times or so, and by name that was a tenth of the daemon's time at 10,000 jobs. Its def
         * stays alive while it does (the run holds its registry), so the same def is the same
         * job; after a reload the job of the same name is the one. */
        if (r->job_index < m->n_jobs && m->jobs[r->job_index]->def == r->def)
                return m->jobs[r->job_index];
        return manager_find_job(m, r->def->name);
}
