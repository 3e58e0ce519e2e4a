/* SPDX-License-Identifier: MIT */
/* Starts each rule's monitoring day at A: subscribes, replays, opens the first window (SPEC 8.2). The logic is azi3_monitoring_scheduler() in jobs/azi3/service.c. */

#include "azi3/plugin.h"

static sched_job_result run(sched_job_ctx *ctx) {
        return azi3_plugin_run(ctx, AZI3_JOB_MONITORING_SCHEDULER);
}

SCHEDULERD_JOB_DEFINE(
        .name = "monitoring-scheduler",
        .description = "Starts each rule's monitoring day at A: subscribes, replays, opens the first window",
        .params = azi3_plugin_params,
        .init = azi3_plugin_init,
        .run = run,
);
