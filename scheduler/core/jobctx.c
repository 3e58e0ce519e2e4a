/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <sys/stat.h>

#include "basic/clock.h"
#include "basic/fs-util.h"
#include "core/job-credentials.h"
#include "core/job-user.h"
#include "core/jobctx.h"
#include "basic/log.h"

static volatile sig_atomic_t run_cancelled = 0;

static jobctx *JOBCTX(sched_job_ctx *c) {
        return (jobctx *) c;
}

static const char *api_job_name(sched_job_ctx *c) {
        return JOBCTX(c)->job->name;
}

static uint64_t api_run_id(sched_job_ctx *c) {
        return JOBCTX(c)->run_id;
}

static int api_param_string(sched_job_ctx *c, const char *key, const char **ret) {
        return params_get_string(&JOBCTX(c)->job->params, key, ret);
}

static int api_param_int(sched_job_ctx *c, const char *key, int64_t *ret) {
        return params_get_int(&JOBCTX(c)->job->params, key, ret);
}

static int api_param_bool(sched_job_ctx *c, const char *key, bool *ret) {
        return params_get_bool(&JOBCTX(c)->job->params, key, ret);
}

static int api_param_duration(sched_job_ctx *c, const char *key, sched_usec_t *ret) {
        return params_get_duration(&JOBCTX(c)->job->params, key, ret);
}

static int api_param_list(sched_job_ctx *c, const char *key, const char *const **ret_items, size_t *ret_n) {
        return params_get_list(&JOBCTX(c)->job->params, key, ret_items, ret_n);
}

/* The logical clock: the instant the run stands for plus real time elapsed since it began, so a
 * run replayed with --at sees the same clock progression a scheduled run would. */
static sched_usec_t api_now(sched_job_ctx *c) {
        jobctx *j = JOBCTX(c);
        if (j->in_init)
                return 0;
        return j->scheduled + (clock_now_monotonic() - j->started_mono);
}

static sched_usec_t api_scheduled(sched_job_ctx *c) {
        return JOBCTX(c)->in_init ? 0 : JOBCTX(c)->scheduled;
}

static unsigned api_attempt(sched_job_ctx *c) {
        return JOBCTX(c)->attempt;
}

static sched_usec_t api_deadline(sched_job_ctx *c) {
        jobctx *j = JOBCTX(c);
        if (j->in_init || j->timeout == USEC_INFINITY)
                return SCHED_USEC_INFINITY;
        return j->scheduled + j->timeout;
}

static bool api_cancelled(sched_job_ctx *c) {
        return run_cancelled != 0;
}

_printf_(3, 0) static void api_logv(sched_job_ctx *c, int level, const char *fmt, va_list ap) {
        jobctx *j = JOBCTX(c);
        char line[4096];
        int n;

        if (level < 0 || level > 7)
                level = SCHED_LOG_INFO;
        n = snprintf(line, sizeof(line), "<%d>", level);
        n += vsnprintf(line + n, sizeof(line) - (size_t) n - 1, fmt, ap);
        if (n > (int) sizeof(line) - 2)
                n = (int) sizeof(line) - 2;
        line[n++] = '\n';
        /* one write per line keeps lines whole when the plugin also writes to stderr */
        if (j->log_fd >= 0)
                (void) !write(j->log_fd, line, (size_t) n);
        else
                fwrite(line, 1, (size_t) n, stderr);
}

static const char *api_state_dir(sched_job_ctx *c) {
        return JOBCTX(c)->state_dir;
}

_printf_(2, 0) static void api_set_messagev(sched_job_ctx *c, const char *fmt, va_list ap) {
        jobctx *j = JOBCTX(c);
        vsnprintf(j->message, sizeof(j->message), fmt, ap);
        /* the message is one line in tables and history */
        for (char *p = j->message; *p; p++)
                if (*p == '\n' || *p == '\r')
                        *p = ' ';
}

static void *api_userdata(sched_job_ctx *c) {
        return JOBCTX(c)->job->userdata;
}

static const sched_job_api jobctx_api = {
        .job_name = api_job_name,
        .run_id = api_run_id,
        .param_string = api_param_string,
        .param_int = api_param_int,
        .param_bool = api_param_bool,
        .param_duration = api_param_duration,
        .param_list = api_param_list,
        .now = api_now,
        .scheduled = api_scheduled,
        .attempt = api_attempt,
        .deadline = api_deadline,
        .cancelled = api_cancelled,
        .logv = api_logv,
        .state_dir = api_state_dir,
        .set_messagev = api_set_messagev,
        .userdata = api_userdata,
        .credential = job_credential_get,
};

void jobctx_setup_run(jobctx *c, const job_def *job, uint64_t run_id, usec_t scheduled, unsigned attempt,
                      usec_t timeout, const char *state_dir, int log_fd) {
        *c = (jobctx) {
                .base.api = &jobctx_api,
                .job = job,
                .run_id = run_id,
                .scheduled = scheduled,
                .started_mono = clock_now_monotonic(),
                .attempt = attempt,
                .timeout = timeout,
                .state_dir = state_dir,
                .log_fd = log_fd,
        };
}

void jobctx_cancel(void) {
        run_cancelled = 1;
}

bool jobctx_cancelled(void) {
        return run_cancelled != 0;
}

char *jobctx_state_dir_path(const registry *r, const job_def *job) {
        char *s;
        if (asprintf(&s, "%s/jobs/%s", r->state_dir, job->name) < 0)
                return NULL;
        return s;
}

/* The common case, a directory made by an earlier run, costs one syscall. */
static int make_state_dir(const char *dir) {
        if (mkdir(dir, 0750) >= 0 || errno == EEXIST)
                return 0;
        return mkdir_p(dir, 0750);
}

char *jobctx_state_dir(const registry *r, const job_def *job) {
        char *s = jobctx_state_dir_path(r, job);
        if (!s)
                return NULL;
        int q = make_state_dir(s);
        if (q < 0)
                log_full(LOG_WARNING, q, job->name, 0, -1, "Cannot create state directory %s: %m", s);
        else
                job_identity_prepare_dir(r, job, s);
        return s;
}

int jobctx_init_jobs(registry *r, bool create_dirs, diag_list *diags) {
        bool bad = false;
        int q;

        for (size_t i = 0; i < r->n_jobs; i++) {
                job_def *j = r->jobs[i];
                bool has_init = j->plugin && j->plugin->desc->init;
                _cleanup_free_ char *dir = jobctx_state_dir_path(r, j);
                if (!dir)
                        return -ENOMEM;
                /* Made here only for init; runs make theirs (jobctx_state_dir()): creating
                 * 100,000 directories took most of a large registry's start-up. */
                q = create_dirs && has_init ? make_state_dir(dir) : 0;
                if (q < 0) {
                        if (diag_add(diags, j->file, j->line, j->column, j->name,
                                     "cannot create state directory %s: %s; check scheduler.state_dir and its permissions",
                                     dir, strerror(-q)) < 0)
                                return -ENOMEM;
                        bad = true;
                        continue;
                }
                if (!has_init) {
                        j->initialized = j->plugin != NULL;
                        continue;
                }

                jobctx c;
                void *userdata = NULL;
                jobctx_setup_run(&c, j, 0, 0, 0, USEC_INFINITY, dir, -1);
                c.in_init = true;
                q = j->plugin->desc->init(&c.base, &userdata);
                if (q < 0) {
                        if (diag_add(diags, j->file, j->line, j->column, j->name, "plugin %s rejected the job: %s",
                                     j->plugin_name, c.message[0] ? c.message : strerror(-q)) < 0)
                                return -ENOMEM;
                        bad = true;
                        continue;
                }
                j->userdata = userdata;
                j->initialized = true;
        }
        return bad ? -EINVAL : 0;
}
