/* SPDX-License-Identifier: MIT */
/* Test plugin: a permanent failure (never retried). */
#include <schedulerd/job.h>

static sched_job_result fail_run(sched_job_ctx *ctx) {
        sched_job_set_message(ctx, "failed on purpose");
        return SCHED_JOB_FAIL;
}

SCHEDULERD_JOB_DEFINE(.name = "fail", .description = "always fails", .run = fail_run);
