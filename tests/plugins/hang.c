/* SPDX-License-Identifier: MIT */
/* Test plugin: ignores SIGTERM and never returns; starts a grandchild that does the same and
 * records its pid in the job's state directory as "grandchild.pid", so tests can check the
 * whole process group is killed. */
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include <schedulerd/job.h>

static sched_job_result hang_run(sched_job_ctx *ctx) {
        signal(SIGTERM, SIG_IGN);
        pid_t pid = fork();
        if (pid == 0) {
                for (;;)
                        pause();
        }
        FILE *f = fopen("grandchild.pid", "we");
        if (f) {
                fprintf(f, "%d\n", (int) pid);
                fclose(f);
        }
        printf("hanging; grandchild %d\n", (int) pid);
        fflush(stdout);
        for (;;)
                pause();
        return SCHED_JOB_OK;
}

SCHEDULERD_JOB_DEFINE(.name = "hang", .description = "hangs ignoring SIGTERM", .run = hang_run);
