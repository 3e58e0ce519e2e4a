/* SPDX-License-Identifier: MIT */
/* Closes windows that ran out, posts owed alarms, completes sessions at B (SPEC 8.2). The logic is azi3_window_expiration() in jobs/azi3/service.c. */

#include "azi3/plugin.h"

static sched_job_result run(sched_job_ctx *ctx) {
        return azi3_plugin_run(ctx, AZI3_JOB_WINDOW_EXPIRATION);
}

SCHEDULERD_JOB_DEFINE(
        .name = "window-expiration",
        .description = "Closes windows that ran out, posts owed alarms, completes sessions at B",
        .params = azi3_plugin_params,
        .init = azi3_plugin_init,
        .run = run,
);
