/* SPDX-License-Identifier: MIT */
/* Test plugin: reports what this run could write that it should not. Its message is
 * "shared N writable K [first]; names" (see shared-probe.h); it fails when K > 0. First it
 * creates "probe.ran" in its working directory (its state directory), so a test sees where a run
 * wrote. */
#include <fcntl.h>

#include <schedulerd/job.h>

#include "shared-probe.h"

static sched_job_result probe_run(sched_job_ctx *ctx) {
        shared_probe p;
        int fd = open("probe.ran", O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        if (fd >= 0)
                close(fd);
        if (shared_probe_run(&p) < 0) {
                sched_job_set_message(ctx, "cannot read /proc/self/maps");
                return SCHED_JOB_FAIL;
        }
        sched_job_set_message(ctx, "shared %u writable %u [%s]; %s", p.n_shared, p.n_writable, p.first, p.names);
        return p.n_writable == 0 ? SCHED_JOB_OK : SCHED_JOB_FAIL;
}

SCHEDULERD_JOB_DEFINE(.name = "probe", .description = "reports the shared memory a run could write", .run = probe_run);
