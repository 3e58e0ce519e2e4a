/* SPDX-License-Identifier: MIT */
/* Bench and test plugin: the first thing run() does is read the real clock, then it appends
 * one line "JOB SCHEDULED_USEC STARTED_USEC RUN_ID\n" to the file named by the `out` param.
 *
 * It measures the clock, so the logical-clock rule for jobs does not apply to it: its figure
 * is when the job's own code starts, which is what a user of a scheduler sees. One write(2)
 * with O_APPEND per run, under PIPE_BUF bytes, so concurrent runs never interleave lines. */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include <schedulerd/job.h>

static const sched_job_param stamp_params[] = {
        { "out", SCHED_PARAM_STRING, NULL, "file the line is appended to" },
        {}
};

static sched_job_result stamp_run(sched_job_ctx *ctx) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t started = (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;

        const char *path;
        if (sched_job_param_string(ctx, "out", &path) < 0)
                return SCHED_JOB_FAIL;
        char line[512];
        int n = snprintf(line, sizeof line, "%s %" PRIu64 " %" PRIu64 " %" PRIu64 "\n", sched_job_name(ctx),
                         (uint64_t) sched_job_scheduled(ctx), started, sched_job_run_id(ctx));
        if (n < 0 || (size_t) n >= sizeof line)
                return SCHED_JOB_FAIL;
        int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0) {
                sched_job_log(ctx, SCHED_LOG_ERR, "%s: %m", path);
                return SCHED_JOB_FAIL;
        }
        ssize_t w = write(fd, line, (size_t) n);
        close(fd);
        return w == n ? SCHED_JOB_OK : SCHED_JOB_FAIL;
}

SCHEDULERD_JOB_DEFINE(
        .name = "stamp",
        .description = "records when its code starts (real clock) against its scheduled instant",
        .params = stamp_params,
        .run = stamp_run,
        /* nothing but its stack between runs: the bench runs it in both isolation modes */
        .flags = SCHED_JOB_FLAG_WORKER_SAFE,
);
