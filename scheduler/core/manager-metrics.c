/* SPDX-License-Identifier: MIT */
/* The manager's side of metrics.h: the counters fed from runs and fires, and the exposition
 * rendered from memory for the HTTP endpoint and `schedctl metrics`. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basic/clock.h"
#include "basic/log.h"
#include "core/cluster.h"
#include "core/job-metrics.h"
#include "core/jobctx.h"
#include "core/worker-pool.h"
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

void manager_metrics_missed_count(job_rt *j, uint64_t n) {
        job_metrics *jm = job_rt_metrics(j);
        if (jm)
                job_metrics_fires_missed(jm, n);
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

/* --- the jobs' own gauges ------------------------------------------------------------
 * A run writes what its plugin set with sched_job_metric_set() to <state dir>/metrics.prom
 * (core/job-metrics.h); the exposition carries them with a job label. The files are plugin
 * output: read with the bounded parser, and a series that would clash with ours (a schedulerd_
 * name, or a job label of its own) is left out rather than break the whole scrape. */

typedef struct plugin_sample {
        const char *job;
        job_metric m;
} plugin_sample;

static int plugin_sample_cmp(const void *a, const void *b) {
        const plugin_sample *x = a, *y = b;
        int c = strcmp(x->m.name, y->m.name);
        if (c == 0)
                c = strcmp(x->job, y->job);
        return c != 0 ? c : strcmp(x->m.labels, y->m.labels);
}

static bool labels_name_job(const char *labels) {
        /* label names start the string or follow a comma outside a quoted value */
        bool quoted = false, start = true;
        for (const char *p = labels; *p; p++) {
                if (start && strncmp(p, "job=", 4) == 0)
                        return true;
                start = false;
                if (*p == '\\' && quoted && p[1])
                        p++;
                else if (*p == '"')
                        quoted = !quoted;
                else if (*p == ',' && !quoted)
                        start = true;
        }
        return false;
}

static void write_label_value(FILE *f, const char *v) {
        for (; *v; v++)
                if (*v == '\\' || *v == '"')
                        fprintf(f, "\\%c", *v);
                else if (*v == '\n')
                        fputs("\\n", f);
                else
                        fputc(*v, f);
}

static void write_value(FILE *f, double v) {
        if (isnan(v))
                fputs("NaN", f);
        else if (isinf(v))
                fputs(v > 0 ? "+Inf" : "-Inf", f);
        else
                fprintf(f, "%.17g", v);
}

static void append_job_metrics(manager *m, FILE *f) {
        _cleanup_free_ plugin_sample *all = NULL;
        size_t n_all = 0;

        for (size_t i = 0; i < m->n_jobs; i++) {
                job_rt *j = m->jobs[i];
                _cleanup_free_ char *dir = jobctx_state_dir_path(m->reg->reg, j->def), *path = NULL;
                _cleanup_free_ job_metric *ms = NULL;
                size_t n = 0;
                char err[256] = "";
                if (!dir || asprintf(&path, "%s/%s", dir, JOB_METRICS_FILE) < 0)
                        return;
                int q = job_metrics_read(path, &ms, &n, err, sizeof(err));
                if (q == -ENOENT || q == -ENOTDIR)
                        continue;
                if (q < 0) {
                        log_full(LOG_WARNING, q, j->def->name, 0, -1, "Metrics file %s left out of the exposition: %s",
                                 path, err[0] ? err : strerror(-q));
                        continue;
                }
                plugin_sample *a = n > 0 ? reallocarray(all, n_all + n, sizeof(plugin_sample)) : all;
                if (!a)
                        return;
                all = a;
                for (size_t k = 0; k < n; k++) {
                        if (strncmp(ms[k].name, "schedulerd_", 11) == 0 || labels_name_job(ms[k].labels))
                                continue;
                        all[n_all++] = (plugin_sample) { .job = j->def->name, .m = ms[k] };
                }
        }
        if (n_all == 0)
                return;
        /* the exposition format wants each family in one group, under one TYPE line */
        qsort(all, n_all, sizeof(plugin_sample), plugin_sample_cmp);
        for (size_t i = 0; i < n_all; i++) {
                const plugin_sample *x = &all[i];
                if (i == 0 || !streq(all[i - 1].m.name, x->m.name))
                        fprintf(f, "# HELP %s Set by a job's plugin (sched_job_metric_set()).\n# TYPE %s gauge\n",
                                x->m.name, x->m.name);
                fprintf(f, "%s{job=\"", x->m.name);
                write_label_value(f, x->job);
                fprintf(f, "\"%s%s} ", x->m.labels[0] ? "," : "", x->m.labels);
                write_value(f, x->m.value);
                fputc('\n', f);
        }
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
        append_job_metrics(m, f);
        /* how well writes are batched: commits against runs_total */
        fputs("# HELP schedulerd_history_commits_total History transactions committed (each holds a batch of "
              "claims and results).\n# TYPE schedulerd_history_commits_total counter\n", f);
        fprintf(f, "schedulerd_history_commits_total %" PRIu64 "\n", m->history_commits);
        fputs("# HELP schedulerd_worker_runs_pipelined_total Runs sent to a busy worker behind its current run "
              "(isolation: worker).\n# TYPE schedulerd_worker_runs_pipelined_total counter\n", f);
        fprintf(f, "schedulerd_worker_runs_pipelined_total %" PRIu64 "\n", worker_pools_pipelined(m->workers));
        fputs("# HELP schedulerd_worker_read_pauses_total Times a worker's answers were left unread while it worked "
              "through a herd's queue (isolation: worker).\n# TYPE schedulerd_worker_read_pauses_total counter\n", f);
        fprintf(f, "schedulerd_worker_read_pauses_total %" PRIu64 "\n", worker_pools_read_pauses(m->workers));
        cluster_metrics_write(m->cluster, f);
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
