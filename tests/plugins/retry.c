/* SPDX-License-Identifier: MIT */
/* Test plugin: asks for a retry until attempt `ok_at_attempt` (default 2), then succeeds. */
#include <schedulerd/job.h>

static const sched_job_param retry_params[] = {
        { "ok_at_attempt", SCHED_PARAM_INT, "2", "attempt number that succeeds; -1 never" },
        {}
};

static sched_job_result retry_run(sched_job_ctx *ctx) {
        int64_t ok_at = 2;
        (void) sched_job_param_int(ctx, "ok_at_attempt", &ok_at);
        if (ok_at >= 0 && sched_job_attempt(ctx) >= (unsigned) ok_at) {
                sched_job_set_message(ctx, "succeeded at attempt %u", sched_job_attempt(ctx));
                return SCHED_JOB_OK;
        }
        sched_job_set_message(ctx, "transient failure at attempt %u", sched_job_attempt(ctx));
        return SCHED_JOB_RETRY;
}

SCHEDULERD_JOB_DEFINE(.name = "retry", .description = "retry, then succeed", .params = retry_params, .run = retry_run);
