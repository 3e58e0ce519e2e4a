/* SPDX-License-Identifier: MIT */
/* Test plugin: publishes two gauges through sched_job_metric_set() (param "value" for the first),
 * one with labels, and one the daemon must leave out (a schedulerd_ name); succeeds. */
#include <schedulerd/job.h>

static const sched_job_param gauge_params[] = {
        { "value", SCHED_PARAM_INT, "42", "the value of test_level" },
        {}
};

static sched_job_result gauge_run(sched_job_ctx *ctx) {
        int64_t v = 0;
        if (sched_job_param_int(ctx, "value", &v) < 0 ||
            sched_job_metric_set(ctx, "test_level", "kind=\"a\"", (double) v) < 0 ||
            sched_job_metric_set(ctx, "test_plain", NULL, 1.5) < 0 ||
            sched_job_metric_set(ctx, "schedulerd_runs_in_flight", NULL, 99) < 0)
                return SCHED_JOB_FAIL;
        return SCHED_JOB_OK;
}

SCHEDULERD_JOB_DEFINE(
        .name = "gauge",
        .description = "publishes test gauges",
        .params = gauge_params,
        .run = gauge_run,
);
