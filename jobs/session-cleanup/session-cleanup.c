/* SPDX-License-Identifier: MIT */
/* Deletes old sessions, completes stale ones, retries failed unsubscriptions (SPEC 8.2). The logic is azi3_session_cleanup() in jobs/azi3/service.c. */

#include "azi3/plugin.h"

static sched_job_result run(sched_job_ctx *ctx) {
        return azi3_plugin_run(ctx, AZI3_JOB_SESSION_CLEANUP);
}

SCHEDULERD_JOB_DEFINE(
        .name = "session-cleanup",
        .description = "Deletes old sessions, completes stale ones, retries failed unsubscriptions",
        .params = azi3_plugin_params,
        .init = azi3_plugin_init,
        .run = run,
);
