/* SPDX-License-Identifier: MIT */
/* Test plugin: works for `duration` (default 2s), polling for cancellation, and prints the
 * instants its context reports so tests can check the logical clock. */
#include <inttypes.h>
#include <stdio.h>
#include <time.h>

#include <schedulerd/job.h>

static const sched_job_param slow_params[] = {
        { "duration", SCHED_PARAM_DURATION, "2s", "how long to work" },
        {}
};

static sched_job_result slow_run(sched_job_ctx *ctx) {
        sched_usec_t d = 0, start = sched_job_now(ctx);
        (void) sched_job_param_duration(ctx, "duration", &d);
        printf("scheduled=%" PRIu64 " now=%" PRIu64 " attempt=%u\n", sched_job_scheduled(ctx), start,
               sched_job_attempt(ctx));
        fflush(stdout);
        while (sched_job_now(ctx) - start < d) {
                if (sched_job_cancelled(ctx)) {
                        sched_job_set_message(ctx, "cancelled after %" PRIu64 "ms", (sched_job_now(ctx) - start) / 1000);
                        return SCHED_JOB_FAIL;
                }
                struct timespec ts = { .tv_nsec = 10 * 1000 * 1000 };
                nanosleep(&ts, NULL);
        }
        sched_job_set_message(ctx, "worked %" PRIu64 "ms", d / 1000);
        return SCHED_JOB_OK;
}

SCHEDULERD_JOB_DEFINE(.name = "slow", .description = "takes a while", .params = slow_params, .run = slow_run);
