/* SPDX-License-Identifier: MIT */
#pragma once

/* Daemon and tool logging. To the journal with structured fields (JOB=, RUN_ID=, ATTEMPT=)
 * when stderr is connected to it ($JOURNAL_STREAM), else readable lines on stderr. */

#include <stddef.h>
#include <stdint.h>
#include <syslog.h>

#include "basic/macro.h"

/* Decides where logs go; call once at start-up. IDENT is the SYSLOG_IDENTIFIER. */
void log_open(const char *ident);

/* Batching, for an event loop that logs a few lines per event (the daemon: two per run). From
 * here on, lines for stderr (not the journal, whose entries are datagrams of their own) wait in a
 * buffer until log_flush(), which the loop calls once it has nothing more urgent to do; WAKE
 * (USERDATA) is called when the first line enters the empty buffer, so it can schedule that.
 * Lines at LOG_WARNING and above, a full buffer, fork() (in the parent, before it) and exit()
 * flush at once; a forked child logs unbuffered. Without this each line is its own write(2). */
void log_batch_start(void (*wake)(void *userdata), void *userdata);

/* Flushes, and ends batching: lines are written as they come again. */
void log_batch_stop(void);

/* Writes the lines waiting for stderr. */
void log_flush(void);

/* Lines below LEVEL are dropped (default LOG_INFO; $SCHEDULERD_LOG_LEVEL=debug lowers it). */
void log_set_max_level(int level);

/* Logs one message. ERROR is a negative (or positive) errno made available to %m, or 0.
 * JOB may be NULL; RUN_ID 0 and ATTEMPT < 0 are left out. Returns -abs(ERROR), or 0 when
 * ERROR is 0, so error paths can `return log_error_errno(r, ...)`. */
int log_full(int level, int error, const char *job, uint64_t run_id, int attempt, const char *fmt, ...)
        _printf_(6, 7);

/* Like log_full() (no errno), adding FIELDS ("KEY=value" strings, at most LOG_FIELDS_MAX) to
 * the journal entry; on stderr they are not shown (the caller keeps them in the message). */
#define LOG_FIELDS_MAX 8
int log_full_fields(int level, const char *job, uint64_t run_id, int attempt, const char *const *fields,
                    size_t n_fields, const char *fmt, ...) _printf_(7, 8);

#define log_debug(...) log_full(LOG_DEBUG, 0, NULL, 0, -1, __VA_ARGS__)
#define log_info(...) log_full(LOG_INFO, 0, NULL, 0, -1, __VA_ARGS__)
#define log_notice(...) log_full(LOG_NOTICE, 0, NULL, 0, -1, __VA_ARGS__)
#define log_warning(...) log_full(LOG_WARNING, 0, NULL, 0, -1, __VA_ARGS__)
#define log_error(...) log_full(LOG_ERR, 0, NULL, 0, -1, __VA_ARGS__)
#define log_error_errno(r, ...) log_full(LOG_ERR, (r), NULL, 0, -1, __VA_ARGS__)
#define log_warning_errno(r, ...) log_full(LOG_WARNING, (r), NULL, 0, -1, __VA_ARGS__)

