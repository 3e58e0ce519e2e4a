/* SPDX-License-Identifier: MIT */
/* Test plugin: writes `line` and a newline to stdout without pause, with one write each, and
 * never stops on its own (it does not look at cancellation): only SIGKILL ends it. */
#include <string.h>
#include <unistd.h>

#include <schedulerd/job.h>

static const sched_job_param flood_params[] = {
        { "line", SCHED_PARAM_STRING, "x", "what each line says" },
        {}
};

static sched_job_result flood_run(sched_job_ctx *ctx) {
        const char *s = "x";
        char buf[256];
        (void) sched_job_param_string(ctx, "line", &s);
        size_t n = strlen(s);
        if (n > sizeof(buf) - 1)
                n = sizeof(buf) - 1;
        memcpy(buf, s, n);
        buf[n++] = '\n';
        for (;;)
                (void) !write(STDOUT_FILENO, buf, n);
        return SCHED_JOB_OK;
}

SCHEDULERD_JOB_DEFINE(.name = "flood", .description = "prints without pause", .params = flood_params,
                      .run = flood_run);
