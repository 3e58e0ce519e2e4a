/* SPDX-License-Identifier: MIT */
/* Test plugin: writes `lines` numbered lines (default 10000) to stdout and stderr. */
#include <inttypes.h>
#include <stdio.h>

#include <schedulerd/job.h>

static const sched_job_param noisy_params[] = {
        { "lines", SCHED_PARAM_INT, "10000", "how many lines" },
        {}
};

static sched_job_result noisy_run(sched_job_ctx *ctx) {
        int64_t n = 0;
        (void) sched_job_param_int(ctx, "lines", &n);
        for (int64_t i = 1; i <= n; i++)
                fprintf(i % 2 ? stdout : stderr, "noise line %" PRId64 " of %" PRId64 "\n", i, n);
        sched_job_log(ctx, SCHED_LOG_WARNING, "done making noise");
        return SCHED_JOB_OK;
}

SCHEDULERD_JOB_DEFINE(.name = "noisy", .description = "lots of output", .params = noisy_params, .run = noisy_run);
