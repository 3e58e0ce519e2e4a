/* SPDX-License-Identifier: MIT */
/* Test plugin: a well-formed job with a param table; succeeds. */
#include <schedulerd/job.h>

#include "test-flags.h"

static const sched_job_param ok_params[] = {
        { "greeting", SCHED_PARAM_STRING, "hi", "what to print" },
        { "count", SCHED_PARAM_INT, "1", "how many times" },
        { "pause", SCHED_PARAM_DURATION, "0", "sleep between greetings" },
        { "loud", SCHED_PARAM_BOOL, "false", "upper case" },
        { "tags", SCHED_PARAM_LIST, "a,b", "labels" },
        {}
};

static sched_job_result ok_run(sched_job_ctx *ctx) {
        sched_job_set_message(ctx, "ok");
        return SCHED_JOB_OK;
}

SCHEDULERD_JOB_DEFINE(
        .name = "ok",
        .description = "always succeeds",
        .params = ok_params,
        .run = ok_run,
        .flags = TEST_PLUGIN_FLAGS,
);
