/* SPDX-License-Identifier: MIT */
/* Test plugin: appends one JSON line per run to `file` (what the run stands for and who it runs
 * as: job, scheduled instant, run id, uid/gid/groups, HOME, no_new_privs, an environment
 * variable, a credential, and whether each of `probe` could be opened for writing), then works
 * for `duration` polling for cancellation. Tests judge from inside the runs with it. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include <schedulerd/job.h>

static const sched_job_param record_params[] = {
        { "file", SCHED_PARAM_STRING, NULL, "where to append" },
        { "duration", SCHED_PARAM_DURATION, "0s", "how long to work after recording" },
        { "probe", SCHED_PARAM_LIST, "", "paths to try opening for writing" },
        { "env", SCHED_PARAM_STRING, "", "an environment variable to record" },
        { "credential", SCHED_PARAM_STRING, "", "a credential to record" },
        {}
};

static int put(char *buf, size_t size, size_t *n, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int put(char *buf, size_t size, size_t *n, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        int w = vsnprintf(buf + *n, size - *n, fmt, ap);
        va_end(ap);
        if (w < 0 || (size_t) w >= size - *n)
                return -1;
        *n += (size_t) w;
        return 0;
}

static sched_job_result record_run(sched_job_ctx *ctx) {
        const char *file = NULL, *env = "", *cred = "", *data = NULL;
        const char *const *probes = NULL;
        size_t n_probes = 0, n = 0, size = 0;
        sched_usec_t d = 0, start = sched_job_now(ctx);
        char line[8192];
        gid_t groups[64];
        int ng = getgroups(64, groups);

        (void) sched_job_param_string(ctx, "file", &file);
        (void) sched_job_param_duration(ctx, "duration", &d);
        (void) sched_job_param_list(ctx, "probe", &probes, &n_probes);
        (void) sched_job_param_string(ctx, "env", &env);
        (void) sched_job_param_string(ctx, "credential", &cred);

        put(line, sizeof(line), &n,
            "{\"job\":\"%s\",\"scheduled\":%" PRIu64 ",\"run_id\":%" PRIu64 ",\"uid\":%u,\"euid\":%u,\"gid\":%u,"
            "\"nnp\":%d,\"home\":\"%s\",\"groups\":[",
            sched_job_name(ctx), sched_job_scheduled(ctx), sched_job_run_id(ctx), (unsigned) getuid(),
            (unsigned) geteuid(), (unsigned) getgid(), prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0),
            getenv("HOME") ?: "");
        for (int i = 0; i < ng; i++)
                put(line, sizeof(line), &n, "%s%u", i ? "," : "", (unsigned) groups[i]);
        put(line, sizeof(line), &n, "],\"probes\":{");
        for (size_t i = 0; i < n_probes; i++) {
                if (!probes[i][0])
                        continue;
                int fd = open(probes[i], O_WRONLY | O_APPEND | O_CLOEXEC);
                int e = fd < 0 ? errno : 0;
                if (fd >= 0)
                        close(fd);
                put(line, sizeof(line), &n, "%s\"%s\":\"%s\"", n_probes && line[n - 1] != '{' ? "," : "", probes[i],
                    e ? strerrorname_np(e) : "ok");
        }
        put(line, sizeof(line), &n, "}");
        /* its own state directory is the one place it may write */
        char own[4096];
        snprintf(own, sizeof(own), "%s/own-probe", sched_job_state_dir(ctx));
        int ofd = open(own, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        put(line, sizeof(line), &n, ",\"own_dir\":\"%s\"", ofd < 0 ? strerrorname_np(errno) : "ok");
        if (ofd >= 0)
                close(ofd);
        if (env[0])
                put(line, sizeof(line), &n, ",\"env\":\"%s\"", getenv(env) ?: "");
        if (cred[0]) {
                int q = sched_job_credential(ctx, cred, &data, &size);
                put(line, sizeof(line), &n, ",\"credential\":\"%s\"", q < 0 ? "(none)" : data);
        }
        put(line, sizeof(line), &n, "}\n");

        /* one write with O_APPEND: lines of concurrent runs never interleave */
        int fd = open(file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0666);
        if (fd < 0 || write(fd, line, n) != (ssize_t) n) {
                sched_job_set_message(ctx, "cannot append to %s: %s", file, strerror(errno));
                return SCHED_JOB_FAIL;
        }
        close(fd);
        while (sched_job_now(ctx) - start < d) {
                if (sched_job_cancelled(ctx)) {
                        sched_job_set_message(ctx, "stopped when asked");
                        return SCHED_JOB_FAIL;
                }
                struct timespec ts = { .tv_nsec = 10 * 1000 * 1000 };
                nanosleep(&ts, NULL);
        }
        sched_job_set_message(ctx, "recorded");
        return SCHED_JOB_OK;
}

SCHEDULERD_JOB_DEFINE(.name = "record_b", .description = "records each run", .params = record_params,
                      .run = record_run);
