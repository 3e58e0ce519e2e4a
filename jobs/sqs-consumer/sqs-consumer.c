/* SPDX-License-Identifier: MIT */
/* Applies activity events from the SQS queue to the open windows (SPEC 8.2). The logic is azi3_sqs_consumer() in jobs/azi3/service.c. */

#include "azi3/plugin.h"

static sched_job_result run(sched_job_ctx *ctx) {
        return azi3_plugin_run(ctx, AZI3_JOB_SQS_CONSUMER);
}

SCHEDULERD_JOB_DEFINE(
        .name = "sqs-consumer",
        .description = "Applies activity events from the SQS queue to the open windows",
        .params = azi3_plugin_params,
        .init = azi3_plugin_init,
        .run = run,
);
