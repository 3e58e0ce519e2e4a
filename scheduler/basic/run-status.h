/* SPDX-License-Identifier: MIT */
#pragma once

/* The vocabulary of a run: what started it (trigger) and how it ended (status). The
 * string forms are the ones stored in history.db, shown by schedctl and sent over the
 * control protocol, so they never change once released. */

#include <stdbool.h>

#include "basic/macro.h"

typedef enum run_trigger {
        RUN_TRIGGER_SCHEDULE,   /* a cron or @every fire */
        RUN_TRIGGER_MANUAL,     /* schedctl run */
        RUN_TRIGGER_STARTUP,    /* run_on_startup */
        RUN_TRIGGER_RETRY,      /* the n-th retry of an earlier attempt */
        RUN_TRIGGER_CATCH_UP,   /* a fire missed while the daemon was down */
        _RUN_TRIGGER_MAX,
        _RUN_TRIGGER_INVALID = -EINVAL,
} run_trigger;

typedef enum run_status {
        RUN_STATUS_RUNNING,
        RUN_STATUS_SUCCEEDED,
        RUN_STATUS_FAILED,
        RUN_STATUS_TIMED_OUT,
        RUN_STATUS_CRASHED,     /* killed by a signal the daemon did not send */
        RUN_STATUS_SKIPPED,     /* singleton overlap or concurrency limit: never started */
        RUN_STATUS_CANCELLED,   /* stopped by the daemon's shutdown */
        RUN_STATUS_INTERRUPTED, /* the daemon died during the run; found at the next start */
        RUN_STATUS_MISSED,      /* could not start in time (misfire_threshold): never started */
        _RUN_STATUS_MAX,
        _RUN_STATUS_INVALID = -EINVAL,
} run_status;

/* "schedule", "manual", "startup", "retry", "catch_up"; NULL for out-of-range values. */
const char *run_trigger_to_string(run_trigger t) _pure_;
/* The inverse, exact and case-sensitive; _RUN_TRIGGER_INVALID for NULL or unknown names. */
run_trigger run_trigger_from_string(const char *s) _pure_;

/* "running", "succeeded", "failed", "timed_out", "crashed", "skipped", "cancelled",
 * "interrupted", "missed"; NULL for out-of-range values. */
const char *run_status_to_string(run_status s) _pure_;
/* The inverse, exact and case-sensitive; _RUN_STATUS_INVALID for NULL or unknown names. */
run_status run_status_from_string(const char *s) _pure_;

/* True for every status except RUNNING: the run has an outcome. */
bool run_status_is_final(run_status s) _pure_;

/* True for the outcomes counted as failures of the job (failed, timed_out, crashed,
 * interrupted). Skipped, missed and cancelled runs are not the job's fault. */
bool run_status_is_failure(run_status s) _pure_;
