/* SPDX-License-Identifier: MIT */
/* Test plugin: works for `duration` (default 2s), polling for cancellation, and prints the
 * instants its context reports so tests can check the logical clock. With `retry_once`, the
 * job's first run ever (marked in its state dir) asks for a retry. */
#include <inttypes.h>
#include <fcntl.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include <schedulerd/job.h>

static const sched_job_param slow_params[] = {
        { "duration", SCHED_PARAM_DURATION, "2s", "how long to work" },
        { "retry_once", SCHED_PARAM_BOOL, "false", "the first run ever returns retry" },
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
        bool retry_once = false;
        (void) sched_job_param_bool(ctx, "retry_once", &retry_once);
        if (retry_once) {
                char mark[4096];
                snprintf(mark, sizeof(mark), "%s/retried", sched_job_state_dir(ctx));
                int fd = open(mark, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
                if (fd >= 0) {
                        close(fd);
                        sched_job_set_message(ctx, "worked %" PRIu64 "ms, first run: retry", d / 1000);
                        return SCHED_JOB_RETRY;
                }
        }
        sched_job_set_message(ctx, "worked %" PRIu64 "ms", d / 1000);
        return SCHED_JOB_OK;
}

SCHEDULERD_JOB_DEFINE(.name = "slow", .description = "takes a while", .params = slow_params, .run = slow_run);
