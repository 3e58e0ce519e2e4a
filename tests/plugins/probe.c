/* SPDX-License-Identifier: MIT */
/* Test plugin: reports what this run could write that it should not. Its message is
 * "shared N writable K [first]; names" (see shared-probe.h); it fails when K > 0. */
#include <schedulerd/job.h>

#include "shared-probe.h"

static sched_job_result probe_run(sched_job_ctx *ctx) {
        shared_probe p;
        if (shared_probe_run(&p) < 0) {
                sched_job_set_message(ctx, "cannot read /proc/self/maps");
                return SCHED_JOB_FAIL;
        }
        sched_job_set_message(ctx, "shared %u writable %u [%s]; %s", p.n_shared, p.n_writable, p.first, p.names);
        return p.n_writable == 0 ? SCHED_JOB_OK : SCHED_JOB_FAIL;
}

SCHEDULERD_JOB_DEFINE(.name = "probe", .description = "reports the shared memory a run could write", .run = probe_run);
