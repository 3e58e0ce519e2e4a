/* SPDX-License-Identifier: MIT */
/* Test plugin: a witness inside every run. It appends one JSON line to `file` when the run
 * starts and one when it ends (job, run id, scheduled instant, attempt, its own logical clock,
 * pid, plugin version), so tests can compare what really ran with history.db. Then it works
 * for `duration`, ignoring SIGTERM if `ignore_term`, and returns `result` (ok, fail, retry).
 * Built twice: witness.so (version 1) and witness2.so (WITNESS_VERSION 2), for reload tests. */
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <schedulerd/job.h>

#ifndef WITNESS_VERSION
#define WITNESS_VERSION 1
#endif

static const sched_job_param witness_params[] = {
        { "file", SCHED_PARAM_STRING, NULL, "absolute path of the file the lines are appended to" },
        { "duration", SCHED_PARAM_DURATION, "0", "how long to work" },
        { "result", SCHED_PARAM_STRING, "ok", "ok, fail or retry" },
        { "ignore_term", SCHED_PARAM_BOOL, "false", "ignore SIGTERM (and keep working)" },
        {}
};

static void witness(sched_job_ctx *ctx, const char *event) {
        const char *path = NULL;
        char line[512];
        if (sched_job_param_string(ctx, "file", &path) < 0)
                return;
        int n = snprintf(line, sizeof(line),
                         "{\"event\": \"%s\", \"job\": \"%s\", \"run_id\": %" PRIu64 ", \"scheduled\": %" PRIu64
                         ", \"attempt\": %u, \"now\": %" PRIu64 ", \"pid\": %d, \"version\": %d}\n",
                         event, sched_job_name(ctx), sched_job_run_id(ctx), sched_job_scheduled(ctx),
                         sched_job_attempt(ctx), sched_job_now(ctx), (int) getpid(), WITNESS_VERSION);
        int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0)
                return;
        /* one write per line with O_APPEND: lines of concurrent runs do not interleave */
        (void) !write(fd, line, (size_t) n);
        close(fd);
}

static sched_job_result witness_run(sched_job_ctx *ctx) {
        sched_usec_t d = 0, start = sched_job_now(ctx);
        const char *result = "ok";
        bool ignore_term = false;

        (void) sched_job_param_duration(ctx, "duration", &d);
        (void) sched_job_param_string(ctx, "result", &result);
        (void) sched_job_param_bool(ctx, "ignore_term", &ignore_term);
        if (ignore_term)
                signal(SIGTERM, SIG_IGN);
        witness(ctx, "start");
        while (sched_job_now(ctx) - start < d) {
                if (!ignore_term && sched_job_cancelled(ctx)) {
                        witness(ctx, "cancelled");
                        return SCHED_JOB_FAIL;
                }
                struct timespec ts = { .tv_nsec = 10 * 1000 * 1000 };
                nanosleep(&ts, NULL);
        }
        witness(ctx, "end");
        sched_job_set_message(ctx, "witness version %d: %s", WITNESS_VERSION, result);
        if (strcmp(result, "retry") == 0)
                return SCHED_JOB_RETRY;
        if (strcmp(result, "fail") == 0)
                return SCHED_JOB_FAIL;
        return SCHED_JOB_OK;
}

SCHEDULERD_JOB_DEFINE(.name = "witness", .description = "records every run from inside it", .params = witness_params,
                      .run = witness_run);
