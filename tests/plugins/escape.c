/* SPDX-License-Identifier: MIT */
/* Test plugin: starts a process that escapes its run as a daemon would (a double fork and
 * setsid(), SIGTERM ignored), writes its pid to "escaped.pid" in the job's state directory, then
 * returns at once (`wait: false`) or works until cancelled (`wait: true`, for timeouts). It
 * first copies the run's /proc/self/cgroup to "cgroup.txt" there (which cgroup the run is in). */
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <schedulerd/job.h>

static const sched_job_param escape_params[] = {
        { "wait", SCHED_PARAM_BOOL, "false", "work until cancelled after starting it" },
        {}
};

static sched_job_result escape_run(sched_job_ctx *ctx) {
        bool wait = false;
        int p[2];
        (void) sched_job_param_bool(ctx, "wait", &wait);
        FILE *in = fopen("/proc/self/cgroup", "re"), *out = fopen("cgroup.txt", "we");
        for (int c; in && out && (c = fgetc(in)) != EOF;)
                fputc(c, out);
        if (in)
                fclose(in);
        if (out)
                fclose(out);
        if (pipe(p) < 0)
                return SCHED_JOB_FAIL;
        pid_t a = fork();
        if (a == 0) {
                if (fork() == 0) {
                        setsid();
                        signal(SIGTERM, SIG_IGN);
                        FILE *f = fopen("escaped.pid", "we");
                        if (f) {
                                fprintf(f, "%d\n", (int) getpid());
                                fclose(f);
                        }
                        close(p[1]); /* the pid is written */
                        for (;;)
                                pause();
                }
                _exit(0);
        }
        close(p[1]);
        (void) waitpid(a, NULL, 0);
        char c;
        (void) !read(p[0], &c, 1); /* EOF once the escaped process wrote its pid */
        printf("started an escaping process\n");
        fflush(stdout);
        while (wait && !sched_job_cancelled(ctx)) {
                struct timespec ts = { .tv_nsec = 10 * 1000 * 1000 };
                nanosleep(&ts, NULL);
        }
        return SCHED_JOB_OK;
}

SCHEDULERD_JOB_DEFINE(.name = "escape", .description = "leaves a process behind", .params = escape_params,
                      .run = escape_run);
