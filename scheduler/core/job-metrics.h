/* SPDX-License-Identifier: MIT */
#pragma once

/* A job's metrics file, <job state dir>/metrics.prom: the gauges a run set with
 * sched_job_metric_set(), in Prometheus text format, sample lines only:
 *
 *     azi3_alarms{state="owed"} 2
 *     azi3_sessions_open 5
 *
 * The run writes it (jobctx.c); the daemon reads it back to export it with its own metrics.
 * The file is written by plugin code, so the reader treats it as untrusted bytes: bounded in
 * size and series, every line validated, anything else rejected with where and why. */

#include <stdbool.h>
#include <stddef.h>

#define JOB_METRICS_FILE "metrics.prom"
#define JOB_METRICS_SERIES_MAX 256u
#define JOB_METRICS_FILE_MAX (64u * 1024u)
#define JOB_METRICS_NAME_MAX 128u   /* bytes of a metric name */
#define JOB_METRICS_LABELS_MAX 512u /* bytes between the braces */

typedef struct job_metric {
        char name[JOB_METRICS_NAME_MAX + 1];
        char labels[JOB_METRICS_LABELS_MAX + 1]; /* "" or `k="v",...` without the braces */
        double value;
} job_metric;

/* True if NAME is a Prometheus metric name: [a-zA-Z_:][a-zA-Z0-9_:]*, at most
 * JOB_METRICS_NAME_MAX bytes. */
bool job_metric_name_valid(const char *name);

/* True if LABELS (LEN bytes, need not be NUL-terminated) is "" or a comma-separated list of
 * name="value" pairs: label names [a-zA-Z_][a-zA-Z0-9_]*, values of UTF-8 text without control
 * characters (C0, DEL, C1: they would reach terminals and scrapers) with \\, \" and \n as the
 * only escapes; at most JOB_METRICS_LABELS_MAX bytes. */
bool job_metric_labels_valid(const char *labels, size_t len);

/* Formats one sample line (with its newline) into BUF. Returns its length, or -ENOBUFS. */
int job_metric_format(const job_metric *m, char *buf, size_t size);

/* Parses the file's bytes TEXT (SIZE bytes). Returns 0 and a malloc'ed array (NULL when
 * *RET_N is 0), or -EFBIG (larger than JOB_METRICS_FILE_MAX), -E2BIG (more than
 * JOB_METRICS_SERIES_MAX lines), -EBADMSG (a line that is not a valid sample, or a series
 * given twice) with ERR (ERRLEN bytes) saying which line and why, or -ENOMEM. */
int job_metrics_parse(const char *text, size_t size, job_metric **ret, size_t *ret_n, char *err, size_t errlen);

/* Reads and parses the file at PATH: refuses a symlink or anything but a regular file
 * (-EBADMSG), reads at most JOB_METRICS_FILE_MAX + 1 bytes. -ENOENT when there is none. */
int job_metrics_read(const char *path, job_metric **ret, size_t *ret_n, char *err, size_t errlen);
