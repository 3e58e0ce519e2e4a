/* SPDX-License-Identifier: MIT */
/* The manager's side of metrics.h: the counters fed from runs and fires, and the exposition
 * rendered from memory for the HTTP endpoint and `schedctl metrics`. */
#include <inttypes.h>
#include <stdlib.h>

#include "basic/clock.h"
#include "basic/log.h"
#include "core/manager-internal.h"

/* counting missed instants costs a schedule evaluation each: past this many, the count stops
 * (a clock set a year ahead must not hold the loop for a per-second job) */
#define MISSED_COUNT_MAX 100000

static job_metrics *job_rt_metrics(job_rt *j) {
        if (!j->metrics)
                j->metrics = job_metrics_new();
        return j->metrics;
}

void manager_metrics_run_ended(manager *m, job_rt *j, const run *r) {
        job_metrics *jm = j ? job_rt_metrics(j) : NULL;
        if (!jm)
                return;
        /* the delay of a fire the scheduler chose; a manual --at or a catch-up stands for an
         * instant long past on purpose */
        usec_t delay = r->trigger == RUN_TRIGGER_SCHEDULE && r->started >= r->scheduled ? r->started - r->scheduled
                       : r->trigger == RUN_TRIGGER_SCHEDULE                            ? 0
                                                                                        : USEC_INFINITY;
        job_metrics_run_ended(jm, r->status, r->duration, delay, r->finished);
}

void manager_metrics_skipped(job_rt *j, metrics_skip_reason reason) {
        job_metrics *jm = job_rt_metrics(j);
        if (jm)
                job_metrics_fire_skipped(jm, reason);
}

void manager_metrics_missed(job_rt *j, usec_t after, usec_t upto) {
        int64_t t = (int64_t) (after / USEC_PER_SEC), next;
        uint64_t n = 0;

        if (j->every || upto <= after)
                return;
        while (n < MISSED_COUNT_MAX && schedule_next(&j->def->schedule, j->def->zone, t, &next) >= 0 &&
               (usec_t) next * USEC_PER_SEC <= upto) {
                n++;
                t = next;
        }
        job_metrics *jm = n > 0 ? job_rt_metrics(j) : NULL;
        if (jm)
                job_metrics_fires_missed(jm, n);
}

/* Where a job's own metrics, written by its plugin at the end of a run as <state dir>/metrics.prom,
 * join the exposition with a job label. The parser (core/job-metrics.h) comes with the azi-3
 * metrics work; until it is merged this adds nothing. */
static void append_job_metrics_file(FILE *f, const char *job, const char *dir) {
        (void) f;
        (void) job;
        (void) dir;
}

int manager_metrics_text(manager *m, char **ret, size_t *ret_len) {
        _cleanup_free_ metrics_job *jobs = calloc(MAX(m->n_jobs, 1U), sizeof(metrics_job));
        char *text = NULL;
        size_t len = 0;

        if (!jobs)
                return -ENOMEM;
        for (size_t i = 0; i < m->n_jobs; i++) {
                job_rt *j = m->jobs[i];
                jobs[i] = (metrics_job) {
                        .name = j->def->name,
                        .m = j->metrics,
                        .next_fire = job_rt_enabled(j) ? j->next_fire : USEC_INFINITY,
                };
        }
        FILE *f = open_memstream(&text, &len);
        if (!f)
                return -ENOMEM;
        metrics_write(f, PACKAGE_VERSION, m->n_running, jobs, m->n_jobs);
        for (size_t i = 0; i < m->n_jobs; i++)
                if (m->jobs[i]->dir)
                        append_job_metrics_file(f, m->jobs[i]->def->name, m->jobs[i]->dir);
        if (fclose(f) != 0) {
                free(text);
                return -ENOMEM;
        }
        if (len > METRICS_TEXT_MAX) {
                free(text);
                return -E2BIG;
        }
        *ret = text;
        *ret_len = len;
        return 0;
}
