/* SPDX-License-Identifier: MIT */
/* Bench and test plugin: the first thing run() does is read the real clock, then it appends
 * one line "JOB SCHEDULED_USEC STARTED_USEC RUN_ID\n" to the file named by the `out` param.
 *
 * It measures the clock, so the logical-clock rule for jobs does not apply to it: its figure
 * is when the job's own code starts, which is what a user of a scheduler sees. One write(2)
 * with O_APPEND per run, under PIPE_BUF bytes, so concurrent runs never interleave lines.
 *
 * In a worker (isolation: worker) the file stays open from one run to the next, as a job that
 * runs many times in one process keeps what it opened (croner's jobs beside it keep their
 * figures in memory): the open(2) and close(2) of every run were a third of a worker's time per
 * run, and delayed the runs behind it. A fresh process per run opens it each time. */
#include <string.h>
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
        static int fd = -1;
        static char open_path[4096];
        if (fd < 0 || strcmp(path, open_path) != 0) {
                if (fd >= 0)
                        close(fd);
                fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
                if (fd < 0) {
                        sched_job_log(ctx, SCHED_LOG_ERR, "%s: %m", path);
                        return SCHED_JOB_FAIL;
                }
                snprintf(open_path, sizeof open_path, "%s", path);
        }
        ssize_t w = write(fd, line, (size_t) n);
        if (w != n) {
                close(fd); /* opened again by the next run */
                fd = -1;
                return SCHED_JOB_FAIL;
        }
        return SCHED_JOB_OK;
}

SCHEDULERD_JOB_DEFINE(
        .name = "stamp",
        .description = "records when its code starts (real clock) against its scheduled instant",
        .params = stamp_params,
        .run = stamp_run,
        /* nothing but its stack between runs: the bench runs it in both isolation modes */
        .flags = SCHED_JOB_FLAG_WORKER_SAFE,
);
