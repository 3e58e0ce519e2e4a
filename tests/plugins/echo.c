/* SPDX-License-Identifier: MIT */
/* Test plugin: writes `text` to stdout, to sched_job_log() and as its message, as they are. */
#include <stdio.h>

#include <schedulerd/job.h>

static const sched_job_param echo_params[] = {
        { "text", SCHED_PARAM_STRING, "", "what to write" },
        {}
};

static sched_job_result echo_run(sched_job_ctx *ctx) {
        const char *t = "";
        (void) sched_job_param_string(ctx, "text", &t);
        printf("%s\n", t);
        fflush(stdout);
        sched_job_log(ctx, SCHED_LOG_NOTICE, "logged: %s", t);
        sched_job_set_message(ctx, "%s", t);
        return SCHED_JOB_OK;
}

SCHEDULERD_JOB_DEFINE(.name = "echo", .description = "writes its text", .params = echo_params, .run = echo_run);
