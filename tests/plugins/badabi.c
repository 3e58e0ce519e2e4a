/* SPDX-License-Identifier: MIT */
/* Test plugin: claims an ABI version this daemon does not know. */
#include <schedulerd/job.h>

static sched_job_result badabi_run(sched_job_ctx *ctx) {
        return SCHED_JOB_OK;
}

__attribute__((visibility("default"))) const sched_job_descriptor schedulerd_job = {
        .abi_version = SCHEDULERD_JOB_ABI_VERSION + 41,
        .struct_size = sizeof(sched_job_descriptor),
        .name = "badabi",
        .run = badabi_run,
};
