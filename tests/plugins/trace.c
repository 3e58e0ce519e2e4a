/* SPDX-License-Identifier: MIT */
/* Test plugin: appends one line per execution to the file `file` (O_APPEND, one write each, so
 * concurrent runs never interleave): job, scheduled instant, attempt, the wall clock when the
 * run began (its own clock: the logical clock of the context cannot tell how late a run started),
 * and its pid. Tests compare the file with history.db: what ran, against what was recorded. */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include <schedulerd/job.h>

#include "test-flags.h"

static const sched_job_param trace_params[] = {
        { "file", SCHED_PARAM_STRING, NULL, "the file to append to" },
        {}
};

static sched_job_result trace_run(sched_job_ctx *ctx) {
        struct timespec ts;
        const char *path = NULL;
        char line[512];

        clock_gettime(CLOCK_REALTIME, &ts);
        if (sched_job_param_string(ctx, "file", &path) < 0 || !path)
                return SCHED_JOB_FAIL;
        int n = snprintf(line, sizeof(line), "%s %" PRIu64 " %u %" PRIu64 " %d\n", sched_job_name(ctx),
                         (uint64_t) sched_job_scheduled(ctx), sched_job_attempt(ctx),
                         (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000, (int) getpid());
        int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0 || write(fd, line, (size_t) n) != n) {
                sched_job_set_message(ctx, "cannot append to %s", path);
                return SCHED_JOB_FAIL;
        }
        close(fd);
        return SCHED_JOB_OK;
}

SCHEDULERD_JOB_DEFINE(.name = "trace", .description = "records each execution in a file", .params = trace_params,
                      .run = trace_run, .flags = TEST_PLUGIN_FLAGS);
