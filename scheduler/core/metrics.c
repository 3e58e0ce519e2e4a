/* SPDX-License-Identifier: MIT */
#include <stdlib.h>

#include "core/metrics.h"

/* upper bounds in seconds; +Inf is implicit. Runs of cron jobs last from milliseconds to hours. */
static const double duration_bounds[METRICS_DURATION_BUCKETS] = {
        0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600, 14400,
};
/* how late a scheduled run started: the daemon aims at a few milliseconds */
static const double delay_bounds[METRICS_DELAY_BUCKETS] = {
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30,
};

static const char *const skip_reason_table[_METRICS_SKIP_MAX] = {
        [METRICS_SKIP_OVERLAP] = "overlap",
        [METRICS_SKIP_MAX_CONCURRENT] = "max_concurrent",
};

const char *metrics_skip_reason_to_string(metrics_skip_reason r) {
        return r >= 0 && r < _METRICS_SKIP_MAX ? skip_reason_table[r] : NULL;
}

job_metrics *job_metrics_new(void) {
        job_metrics *m = calloc(1, sizeof(job_metrics));
        if (m)
                m->last_success = USEC_INFINITY;
        return m;
}

job_metrics *job_metrics_free(job_metrics *m) {
        free(m);
        return NULL;
}

static void observe(metrics_histogram *h, const double *bounds, size_t n, usec_t value) {
        double s = (double) value / (double) USEC_PER_SEC;
        size_t i = 0;
        while (i < n && s > bounds[i])
                i++;
        if (i < n)
                h->bucket[i]++;
        h->count++;
        h->sum += s;
}

void job_metrics_run_ended(job_metrics *m, run_status status, usec_t duration, usec_t delay, usec_t finished) {
        if (status >= 0 && status < _RUN_STATUS_MAX)
                m->runs[status]++;
        if (status == RUN_STATUS_SKIPPED)
                return;
        observe(&m->duration, duration_bounds, METRICS_DURATION_BUCKETS, duration);
        if (delay != USEC_INFINITY)
                observe(&m->fire_delay, delay_bounds, METRICS_DELAY_BUCKETS, delay);
        if (status == RUN_STATUS_SUCCEEDED)
                m->last_success = finished;
}

void job_metrics_fire_skipped(job_metrics *m, metrics_skip_reason reason) {
        if (reason >= 0 && reason < _METRICS_SKIP_MAX)
                m->skipped[reason]++;
}

void job_metrics_fires_missed(job_metrics *m, uint64_t n) {
        m->missed += n;
}

void metrics_write_label_value(FILE *f, const char *s) {
        for (; *s; s++) {
                if (*s == '\\')
                        fputs("\\\\", f);
                else if (*s == '"')
                        fputs("\\\"", f);
                else if (*s == '\n')
                        fputs("\\n", f);
                else
                        fputc(*s, f);
        }
}

static void family(FILE *f, const char *name, const char *type, const char *help) {
        fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void job_label(FILE *f, const char *name, const char *job) {
        fprintf(f, "%s{job=\"", name);
        metrics_write_label_value(f, job);
        fputc('"', f);
}

/* Seconds since the epoch: Prometheus timestamps in gauges are floats of seconds. */
static void seconds(FILE *f, usec_t u) {
        fprintf(f, " %llu.%06llu\n", (unsigned long long) (u / USEC_PER_SEC), (unsigned long long) (u % USEC_PER_SEC));
}

static void histogram(FILE *f, const char *name, const char *job, const metrics_histogram *h, const double *bounds,
                      size_t n) {
        uint64_t cum = 0;
        for (size_t i = 0; i < n; i++) {
                cum += h->bucket[i];
                fprintf(f, "%s_bucket{job=\"", name);
                metrics_write_label_value(f, job);
                fprintf(f, "\",le=\"%g\"} %llu\n", bounds[i], (unsigned long long) cum);
        }
        fprintf(f, "%s_bucket{job=\"", name);
        metrics_write_label_value(f, job);
        fprintf(f, "\",le=\"+Inf\"} %llu\n", (unsigned long long) h->count);
        fprintf(f, "%s_sum{job=\"", name);
        metrics_write_label_value(f, job);
        fprintf(f, "\"} %.6f\n", h->sum);
        fprintf(f, "%s_count{job=\"", name);
        metrics_write_label_value(f, job);
        fprintf(f, "\"} %llu\n", (unsigned long long) h->count);
}

void metrics_write(FILE *f, const char *version, unsigned in_flight, const metrics_job *jobs, size_t n) {
        family(f, "schedulerd_build_info", "gauge", "The schedulerd version running (always 1).");
        fputs("schedulerd_build_info{version=\"", f);
        metrics_write_label_value(f, version);
        fputs("\"} 1\n", f);
        family(f, "schedulerd_runs_in_flight", "gauge", "Runs started and not yet ended.");
        fprintf(f, "schedulerd_runs_in_flight %u\n", in_flight);

        family(f, "schedulerd_runs_total", "counter", "Runs that ended, by job and status, since the daemon started.");
        for (size_t i = 0; i < n; i++)
                for (run_status s = 0; s < _RUN_STATUS_MAX; s++) {
                        uint64_t v = jobs[i].m ? jobs[i].m->runs[s] : 0;
                        if (s == RUN_STATUS_RUNNING || (v == 0 && s != RUN_STATUS_SUCCEEDED && s != RUN_STATUS_FAILED))
                                continue;
                        job_label(f, "schedulerd_runs_total", jobs[i].name);
                        fprintf(f, ",status=\"%s\"} %llu\n", run_status_to_string(s), (unsigned long long) v);
                }

        family(f, "schedulerd_fires_skipped_total", "counter",
               "Fires that did not start a run, by job and reason (overlap, max_concurrent).");
        for (size_t i = 0; i < n; i++)
                for (metrics_skip_reason r = 0; r < _METRICS_SKIP_MAX; r++)
                        if (jobs[i].m && jobs[i].m->skipped[r] > 0) {
                                job_label(f, "schedulerd_fires_skipped_total", jobs[i].name);
                                fprintf(f, ",reason=\"%s\"} %llu\n", metrics_skip_reason_to_string(r),
                                        (unsigned long long) jobs[i].m->skipped[r]);
                        }

        family(f, "schedulerd_fires_missed_total", "counter",
               "Fires that went by without a run: they could not start within their misfire_threshold (the "
               "daemon was late, or they waited for a slot under max_concurrent), or the clock jumped or the "
               "daemon was down.");
        for (size_t i = 0; i < n; i++) {
                job_label(f, "schedulerd_fires_missed_total", jobs[i].name);
                fprintf(f, "} %llu\n", (unsigned long long) (jobs[i].m ? jobs[i].m->missed : 0));
        }

        family(f, "schedulerd_last_success_timestamp_seconds", "gauge",
               "When the job's last succeeded run ended (since the daemon started).");
        for (size_t i = 0; i < n; i++)
                if (jobs[i].m && jobs[i].m->last_success != USEC_INFINITY) {
                        job_label(f, "schedulerd_last_success_timestamp_seconds", jobs[i].name);
                        fputc('}', f);
                        seconds(f, jobs[i].m->last_success);
                }

        family(f, "schedulerd_next_fire_timestamp_seconds", "gauge", "When the job fires next (enabled jobs).");
        for (size_t i = 0; i < n; i++)
                if (jobs[i].next_fire != USEC_INFINITY) {
                        job_label(f, "schedulerd_next_fire_timestamp_seconds", jobs[i].name);
                        fputc('}', f);
                        seconds(f, jobs[i].next_fire);
                }

        family(f, "schedulerd_run_duration_seconds", "histogram", "How long runs took, by job.");
        for (size_t i = 0; i < n; i++)
                if (jobs[i].m && jobs[i].m->duration.count > 0)
                        histogram(f, "schedulerd_run_duration_seconds", jobs[i].name, &jobs[i].m->duration,
                                  duration_bounds, METRICS_DURATION_BUCKETS);

        family(f, "schedulerd_fire_delay_seconds", "histogram",
               "How late scheduled runs started: their start minus the instant they stand for.");
        for (size_t i = 0; i < n; i++)
                if (jobs[i].m && jobs[i].m->fire_delay.count > 0)
                        histogram(f, "schedulerd_fire_delay_seconds", jobs[i].name, &jobs[i].m->fire_delay,
                                  delay_bounds, METRICS_DELAY_BUCKETS);
}
