/* SPDX-License-Identifier: MIT */
/* Test plugin: allocates and touches `megabytes` (default 64) without freeing, then succeeds:
 * the leak dies with the run's process. */
#include <stdlib.h>
#include <string.h>

#include <schedulerd/job.h>

static const sched_job_param leak_params[] = {
        { "megabytes", SCHED_PARAM_INT, "64", "how much to leak" },
        {}
};

static sched_job_result leak_run(sched_job_ctx *ctx) {
        int64_t mb = 0;
        (void) sched_job_param_int(ctx, "megabytes", &mb);
        for (int64_t i = 0; i < mb; i++) {
                char *p = malloc(1 << 20);
                if (!p) {
                        sched_job_set_message(ctx, "allocation failed after %lld MiB", (long long) i);
                        return SCHED_JOB_FAIL;
                }
                memset(p, 0xa5, 1 << 20);
        }
        sched_job_set_message(ctx, "leaked %lld MiB", (long long) mb);
        return SCHED_JOB_OK;
}

SCHEDULERD_JOB_DEFINE(.name = "leak", .description = "leaks memory", .params = leak_params, .run = leak_run);
