/* SPDX-License-Identifier: MIT */
/* Test plugin: dies of SIGSEGV. */
#include <signal.h>
#include <stdio.h>

#include <schedulerd/job.h>

static sched_job_result crash_run(sched_job_ctx *ctx) {
        printf("about to crash\n");
        fflush(stdout);
        raise(SIGSEGV);
        return SCHED_JOB_OK;
}

SCHEDULERD_JOB_DEFINE(.name = "crash", .description = "segfaults", .run = crash_run);
