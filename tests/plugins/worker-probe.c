/* SPDX-License-Identifier: MIT */
/* Test plugin for isolation: worker, declared worker-safe: each run prints and logs its run id
 * and pid (so tests see which worker ran it and that output and log lines are per run), then
 * does what `mode` says: ok, crash (SIGSEGV), orphan-crash (first forks a process that leaves the
 * worker's process group and lives on for `duration`, holding whatever descriptors the worker
 * gave it, then SIGSEGV), exit (exit(3) in the middle of the run), hang
 * (ignores SIGTERM, never returns), sleep (`duration`, polling for cancellation) or leak
 * (`megabytes` allocated, touched and never freed), or cause (its message says what started it:
 * "cause JOB STATUS", or "no cause"). `padding` bytes of filler come first, on a line of their
 * own, for tests of output that fills its pipe. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <schedulerd/job.h>

static const sched_job_param probe_params[] = {
        { "mode", SCHED_PARAM_STRING, "ok", "ok, crash, orphan-crash, exit, hang, sleep, leak or cause" },
        { "duration", SCHED_PARAM_DURATION, "30s", "how long sleep sleeps" },
        { "megabytes", SCHED_PARAM_INT, "64", "how much leak leaks" },
        { "padding", SCHED_PARAM_INT, "0", "bytes of filler printed first" },
        {}
};

static sched_job_result probe_run(sched_job_ctx *ctx) {
        const char *mode = "ok";
        (void) sched_job_param_string(ctx, "mode", &mode);
        int64_t padding = 0;
        (void) sched_job_param_int(ctx, "padding", &padding);
        for (int64_t i = 0; i < padding; i++)
                putchar('.');
        if (padding > 0)
                putchar('\n');
        printf("output of run %llu in pid %d\n", (unsigned long long) sched_job_run_id(ctx), (int) getpid());
        fflush(stdout);
        sched_job_log(ctx, SCHED_LOG_NOTICE, "logged by run %llu", (unsigned long long) sched_job_run_id(ctx));

        if (strcmp(mode, "crash") == 0)
                raise(SIGSEGV);
        else if (strcmp(mode, "orphan-crash") == 0) {
                sched_usec_t d = 0;
                (void) sched_job_param_duration(ctx, "duration", &d);
                int p[2];
                if (pipe(p) < 0)
                        return SCHED_JOB_FAIL;
                pid_t child = fork();
                if (child < 0)
                        return SCHED_JOB_FAIL;
                if (child == 0) {
                        (void) setsid(); /* out of the worker's group: its kill does not reach here */
                        close(p[0]);
                        close(p[1]); /* in its own group now */
                        struct timespec ts = { .tv_sec = (time_t) (d / 1000000), .tv_nsec = (long) (d % 1000000) * 1000 };
                        nanosleep(&ts, NULL);
                        _exit(0);
                }
                close(p[1]);
                char c;
                (void) !read(p[0], &c, 1);
                close(p[0]);
                raise(SIGSEGV);
        }
        else if (strcmp(mode, "exit") == 0)
                exit(3);
        else if (strcmp(mode, "hang") == 0) {
                signal(SIGTERM, SIG_IGN);
                for (;;)
                        pause();
        } else if (strcmp(mode, "sleep") == 0) {
                sched_usec_t d = 0, start = sched_job_now(ctx);
                (void) sched_job_param_duration(ctx, "duration", &d);
                while (sched_job_now(ctx) - start < d) {
                        if (sched_job_cancelled(ctx)) {
                                sched_job_set_message(ctx, "cancelled in pid %d", (int) getpid());
                                return SCHED_JOB_FAIL;
                        }
                        struct timespec ts = { .tv_nsec = 10 * 1000 * 1000 };
                        nanosleep(&ts, NULL);
                }
        } else if (strcmp(mode, "cause") == 0) {
                const sched_job_cause_info *c;

                if (sched_job_cause(ctx, &c) >= 0)
                        sched_job_set_message(ctx, "cause %s %s", c->job, c->status);
                else
                        sched_job_set_message(ctx, "no cause");
                return SCHED_JOB_OK;
        } else if (strcmp(mode, "leak") == 0) {
                int64_t mb = 0;
                (void) sched_job_param_int(ctx, "megabytes", &mb);
                for (int64_t i = 0; i < mb; i++) {
                        char *p = malloc(1 << 20);
                        if (!p)
                                return SCHED_JOB_FAIL;
                        memset(p, 0xa5, 1 << 20);
                }
        }
        sched_job_set_message(ctx, "pid %d", (int) getpid());
        return SCHED_JOB_OK;
}

SCHEDULERD_JOB_DEFINE(
        .name = "worker-probe",
        .description = "shows which worker ran it; crashes, hangs, sleeps or leaks on request",
        .params = probe_params,
        .run = probe_run,
        .flags = SCHED_JOB_FLAG_WORKER_SAFE,
);
