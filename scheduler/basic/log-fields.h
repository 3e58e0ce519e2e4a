/* SPDX-License-Identifier: MIT */
#pragma once

/* Journal fields a job gives its log lines: a sched_job_log() line may end with a block
 *
 *     ... window closed [ROBOT_ID=42 SESSION_ID=7 WINDOW_ID=3]
 *
 * whose KEY=value pairs become fields of the journal entry (the text stays in MESSAGE, so the
 * plain log shows them too). Keys are [A-Z][A-Z0-9_]* up to 64 bytes and may not be the
 * daemon's own (MESSAGE, PRIORITY, JOB, RUN_ID, ATTEMPT, SYSLOG_*, CODE_*, or anything
 * starting with '_', which journald keeps for trusted fields); values are 1-256 bytes without
 * spaces or brackets. A block with any pair that breaks these rules is plain text. */

#include <stddef.h>

#define LOG_FIELDS_KEY_MAX 64
#define LOG_FIELDS_VALUE_MAX 256

/* Parses the block at the end of the line S (N bytes). Writes each field as a NUL-terminated
 * "KEY=value" into BUF (SIZE bytes) and points RET_FIELDS[i] at it, at most MAX of them.
 * Returns how many fields were found: 0 when S has no valid block or BUF is too small. */
size_t log_fields_parse(const char *s, size_t n, char *buf, size_t size, const char **ret_fields, size_t max);
