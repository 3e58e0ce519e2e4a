/* SPDX-License-Identifier: MIT */
/* Test plugin: holds a slot. Appends "start JOB SCHEDULED NOW" to `file` as its first act, works
 * for `duration`, then appends "end JOB SCHEDULED NOW" (NOW: CLOCK_REALTIME in microseconds, read
 * inside the run: when the job's code really started and ended, not what the daemon recorded).
 * One write each with O_APPEND, so concurrent runs never interleave. */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include <schedulerd/job.h>

static const sched_job_param hold_params[] = {
        { "file", SCHED_PARAM_STRING, NULL, "the file to append to" },
        { "duration", SCHED_PARAM_DURATION, "0s", "how long to hold the slot" },
        {}
};

static uint64_t wall_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

static int note(const char *path, const char *what, sched_job_ctx *ctx) {
        char line[512];
        int n = snprintf(line, sizeof(line), "%s %s %" PRIu64 " %" PRIu64 "\n", what, sched_job_name(ctx),
                         (uint64_t) sched_job_scheduled(ctx), wall_usec());
        int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0)
                return -1;
        int r = write(fd, line, (size_t) n) == n ? 0 : -1;
        close(fd);
        return r;
}

static sched_job_result hold_run(sched_job_ctx *ctx) {
        const char *path = NULL;
        sched_usec_t d = 0;

        if (sched_job_param_string(ctx, "file", &path) < 0 || !path || note(path, "start", ctx) < 0) {
                sched_job_set_message(ctx, "cannot append to %s", path ?: "(no file)");
                return SCHED_JOB_FAIL;
        }
        (void) sched_job_param_duration(ctx, "duration", &d);
        uint64_t until = wall_usec() + d;
        while (wall_usec() < until && !sched_job_cancelled(ctx)) {
                struct timespec ts = { .tv_nsec = 10 * 1000 * 1000 };
                nanosleep(&ts, NULL);
        }
        (void) note(path, "end", ctx);
        return SCHED_JOB_OK;
}

SCHEDULERD_JOB_DEFINE(.name = "hold", .description = "holds a slot for a while, noting its start and end",
                      .params = hold_params, .run = hold_run);
