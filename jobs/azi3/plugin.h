/* SPDX-License-Identifier: MIT */
#pragma once

/* What the four azi-3 job plugins share: their one param (`config`, the path of azi3.yaml)
 * and the run shell that turns a context into an azi3_job_run() call with the logical clock.
 * Included by each plugin's single .c file; everything here is static. */

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <schedulerd/job.h>

#include "azi3/service.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif

static const sched_job_param azi3_plugin_params[] = {
        { "config", SCHED_PARAM_STRING, SYSCONFDIR "/schedulerd/azi3.yaml",
          "path of the azi-3 configuration (rules, store, Megazord, SQS); re-read on every run" },
        {}
};

static void azi3_plugin_log(void *userdata, int level, const char *fmt, va_list ap) {
        sched_job_ctx *ctx = userdata;

        ctx->api->logv(ctx, level, fmt, ap);
}

/* The file is not read here: it is re-read on every run, and a daemon must not reject the job
 * because azi3.yaml is being edited while the registry loads. */
static int azi3_plugin_init(sched_job_ctx *ctx, void **ret_userdata) {
        const char *path;

        if (sched_job_param_string(ctx, "config", &path) < 0 || path[0] == '\0') {
                sched_job_set_message(ctx, "params.config must name the azi-3 configuration file (e.g. %s)",
                                      SYSCONFDIR "/schedulerd/azi3.yaml");
                return -EINVAL;
        }
        *ret_userdata = NULL;
        return 0;
}

static void azi3_plugin_metric(void *userdata, const char *name, const char *labels, double value) {
        (void) sched_job_metric_set(userdata, name, labels, value);
}

/* Names the daemon process this run belongs to: runs are forked with the daemon as their parent
 * (the launcher forks them with CLONE_PARENT), so the boot, the parent's pid and the parent's
 * start time (field 22 of /proc/<pid>/stat) change exactly when the daemon restarts. */
static void azi3_plugin_instance(char *buf, size_t len) {
        char boot[64] = "", path[64], stat[1024];
        unsigned long long start = 0;
        const char *p;
        pid_t parent = getppid();
        size_t n;
        FILE *f;

        f = fopen("/proc/sys/kernel/random/boot_id", "re");
        if (f) {
                if (!fgets(boot, sizeof(boot), f))
                        boot[0] = '\0';
                boot[strcspn(boot, "\n")] = '\0';
                fclose(f);
        }
        snprintf(path, sizeof(path), "/proc/%d/stat", (int) parent);
        f = fopen(path, "re");
        if (f) {
                n = fread(stat, 1, sizeof(stat) - 1, f);
                stat[n] = '\0';
                fclose(f);
                /* after the command name, which may hold spaces and parentheses */
                p = strrchr(stat, ')');
                if (p && sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
                                &start) != 1)
                        start = 0;
        }
        snprintf(buf, len, "%s/%d/%llu", boot, (int) parent, start);
}

static sched_job_result azi3_plugin_run(sched_job_ctx *ctx, azi3_job job) {
        char msg[AZI3_MESSAGE_MAX] = "", instance[128];
        const char *path = NULL;
        azi3_result r;

        if (sched_job_param_string(ctx, "config", &path) < 0) {
                sched_job_set_message(ctx, "params.config is missing (expected the path of azi3.yaml)");
                return SCHED_JOB_FAIL;
        }
        azi3_plugin_instance(instance, sizeof(instance));
        r = azi3_job_run(job, path, sched_job_now(ctx),
                         &(azi3_hooks) { .log = azi3_plugin_log, .metric = azi3_plugin_metric, .instance = instance,
                                         .userdata = ctx },
                         msg, sizeof(msg));
        sched_job_set_message(ctx, "%s", msg);
        switch (r) {
        case AZI3_RESULT_OK:
                return SCHED_JOB_OK;
        case AZI3_RESULT_RETRY:
                return SCHED_JOB_RETRY;
        default:
                return SCHED_JOB_FAIL;
        }
}
