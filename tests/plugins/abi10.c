/* SPDX-License-Identifier: MIT */
/* Test plugin: built as against job ABI 1.0, whose descriptor ended before `flags`: it must
 * still load, with no flags (isolation: process). */
#include <schedulerd/job.h>

typedef struct descriptor_1_0 {
        uint32_t abi_version;
        uint32_t struct_size;
        const char *name;
        const char *description;
        const sched_job_param *params;
        int (*init)(sched_job_ctx *ctx, void **ret_userdata);
        sched_job_result (*run)(sched_job_ctx *ctx);
        void (*fini)(void *userdata);
} descriptor_1_0;

static sched_job_result abi10_run(sched_job_ctx *ctx) {
        return SCHED_JOB_OK;
}

__attribute__((visibility("default"))) const descriptor_1_0 schedulerd_job = {
        .abi_version = 1,
        .struct_size = sizeof(descriptor_1_0),
        .name = "abi10",
        .run = abi10_run,
};
