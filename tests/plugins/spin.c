/* SPDX-License-Identifier: MIT */
/* Test plugin: burns CPU until cancelled (for limits.cpu). */
#include <schedulerd/job.h>

static sched_job_result spin_run(sched_job_ctx *ctx) {
        volatile unsigned long n = 0;
        while (!sched_job_cancelled(ctx))
                n++;
        sched_job_set_message(ctx, "cancelled after %lu spins", (unsigned long) n);
        return SCHED_JOB_FAIL;
}

SCHEDULERD_JOB_DEFINE(.name = "spin", .description = "burns CPU", .run = spin_run);
