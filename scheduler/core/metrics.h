/* SPDX-License-Identifier: MIT */
#pragma once

/* What the daemon counts for Prometheus, per job, in memory (since the daemon started), and its
 * rendering in the text exposition format (version 0.0.4). Pure: no I/O, no clock; the manager
 * feeds it (core/manager-metrics.c) and the HTTP endpoint and `schedctl metrics` print it. */

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "basic/macro.h"
#include "basic/run-status.h"

/* The most bytes a rendering may take: a scrape of a huge registry fails with -E2BIG instead of
 * holding the event loop and memory without bound. */
#define METRICS_TEXT_MAX (64U * 1024U * 1024U)

#define METRICS_DURATION_BUCKETS 13
#define METRICS_DELAY_BUCKETS 12

/* Why a fire did not start (the "reason" label of schedulerd_fires_skipped_total). */
typedef enum metrics_skip_reason {
        METRICS_SKIP_OVERLAP,        /* "overlap": a run of the job was still in flight */
        METRICS_SKIP_MAX_CONCURRENT, /* "max_concurrent": the daemon's limit of runs in flight */
        _METRICS_SKIP_MAX,
} metrics_skip_reason;

typedef struct metrics_histogram {
        uint64_t bucket[METRICS_DURATION_BUCKETS]; /* per bucket, not cumulative; the largest bucket count used */
        uint64_t count;
        double sum; /* seconds */
} metrics_histogram;

typedef struct job_metrics {
        uint64_t runs[_RUN_STATUS_MAX];
        uint64_t skipped[_METRICS_SKIP_MAX];
        uint64_t missed;
        usec_t last_success; /* wall clock of the end of the last succeeded run, USEC_INFINITY: none */
        metrics_histogram duration, fire_delay;
} job_metrics;

/* A zeroed job_metrics (no success yet), or NULL on OOM. */
job_metrics *job_metrics_new(void);
/* NULL-tolerant; returns NULL. */
job_metrics *job_metrics_free(job_metrics *m);

/* A run of the job ended with STATUS after DURATION, at FINISHED (wall clock). DELAY is its start
 * minus the instant it stood for, USEC_INFINITY when it has none to count (not a scheduled fire). */
void job_metrics_run_ended(job_metrics *m, run_status status, usec_t duration, usec_t delay, usec_t finished);
/* A fire of the job was skipped for REASON. */
void job_metrics_fire_skipped(job_metrics *m, metrics_skip_reason reason);
/* N fires of the job went by without a run (the clock jumped, the daemon stalled or was down). */
void job_metrics_fires_missed(job_metrics *m, uint64_t n);

/* "overlap", "max_concurrent". */
const char *metrics_skip_reason_to_string(metrics_skip_reason r) _pure_;

/* One job as the rendering sees it. */
typedef struct metrics_job {
        const char *name;
        const job_metrics *m; /* NULL: nothing counted yet */
        usec_t next_fire;     /* wall clock; USEC_INFINITY: none (disabled, or no next fire) */
} metrics_job;

/* Writes the exposition to F: build info (VERSION), runs in flight, and the families of each of
 * the N JOBS in order (every job gets zero succeeded/failed counters, so rates and alerts work
 * from its first run). Label values are escaped as the format requires. */
void metrics_write(FILE *f, const char *version, unsigned in_flight, const metrics_job *jobs, size_t n);

/* Appends "\\" for '\\', "\\\"" for '"' and "\\n" for a newline: a label value for the format. */
void metrics_write_label_value(FILE *f, const char *s);
