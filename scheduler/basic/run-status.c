/* SPDX-License-Identifier: MIT */
#include "basic/run-status.h"

static const char *const run_trigger_table[_RUN_TRIGGER_MAX] = {
        [RUN_TRIGGER_SCHEDULE] = "schedule",
        [RUN_TRIGGER_MANUAL] = "manual",
        [RUN_TRIGGER_STARTUP] = "startup",
        [RUN_TRIGGER_RETRY] = "retry",
        [RUN_TRIGGER_CATCH_UP] = "catch_up",
};

static const char *const run_status_table[_RUN_STATUS_MAX] = {
        [RUN_STATUS_RUNNING] = "running",
        [RUN_STATUS_SUCCEEDED] = "succeeded",
        [RUN_STATUS_FAILED] = "failed",
        [RUN_STATUS_TIMED_OUT] = "timed_out",
        [RUN_STATUS_CRASHED] = "crashed",
        [RUN_STATUS_SKIPPED] = "skipped",
        [RUN_STATUS_CANCELLED] = "cancelled",
        [RUN_STATUS_INTERRUPTED] = "interrupted",
        [RUN_STATUS_MISSED] = "missed",
};

static int table_lookup(const char *const *table, int n, const char *s) {
        if (!s)
                return -EINVAL;
        for (int i = 0; i < n; i++)
                if (table[i] && streq(table[i], s))
                        return i;
        return -EINVAL;
}

const char *run_trigger_to_string(run_trigger t) {
        if (t < 0 || t >= _RUN_TRIGGER_MAX)
                return NULL;
        return run_trigger_table[t];
}

run_trigger run_trigger_from_string(const char *s) {
        return (run_trigger) table_lookup(run_trigger_table, _RUN_TRIGGER_MAX, s);
}

const char *run_status_to_string(run_status s) {
        if (s < 0 || s >= _RUN_STATUS_MAX)
                return NULL;
        return run_status_table[s];
}

run_status run_status_from_string(const char *s) {
        return (run_status) table_lookup(run_status_table, _RUN_STATUS_MAX, s);
}

bool run_status_is_final(run_status s) {
        return s > RUN_STATUS_RUNNING && s < _RUN_STATUS_MAX;
}

bool run_status_is_failure(run_status s) {
        switch (s) {
        case RUN_STATUS_FAILED:
        case RUN_STATUS_TIMED_OUT:
        case RUN_STATUS_CRASHED:
        case RUN_STATUS_INTERRUPTED:
                return true;
        default:
                return false;
        }
}
