/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "basic/clock.h"
#include "basic/escape.h"
#include "basic/fs-util.h"
#include "core/job-metrics.h"
#include "core/job-credentials.h"
#include "core/job-user.h"
#include "core/jobctx.h"
#include "basic/log.h"

static volatile sig_atomic_t run_cancelled = 0;

/* Made when the daemon starts, so that every run (forked from it or from a launcher it forked)
 * has the same one and the daemon can tell sched_job_log() lines from output. */
static char log_tag[17] = "0000000000000000";

__attribute__((constructor)) static void log_tag_init(void) {
        uint64_t v = 0;
        if (getrandom(&v, sizeof(v), GRND_NONBLOCK) != (ssize_t) sizeof(v))
                v = (uint64_t) getpid() * 0x9E3779B97F4A7C15ULL ^ (uint64_t) clock_now_monotonic();
        snprintf(log_tag, sizeof(log_tag), "%016llx", (unsigned long long) v);
}

const char *jobctx_log_tag(void) {
        return log_tag;
}

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

        char text[1024];

        if (level < 0 || level > 7)
                level = SCHED_LOG_INFO;
        (void) vsnprintf(text, sizeof(text), fmt, ap);
        /* one line per call: a newline in the text must not start a line of its own */
        n = snprintf(line, sizeof(line), "<%d/%s>", level, log_tag);
        n += (int) escape_controls_buf(text, strlen(text), "\t", line + n, sizeof(line) - (size_t) n - 1);
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

/* the cause set for the next forks: copies, since the run that ended is freed before they run */
static struct {
        bool set;
        char job[65], status[16], message[JOBCTX_MESSAGE_MAX];
        sched_job_cause_info info;
} pending_cause;

void jobctx_set_cause(const sched_job_cause_info *cause) {
        if (!cause) {
                pending_cause.set = false;
                return;
        }
        snprintf(pending_cause.job, sizeof(pending_cause.job), "%s", cause->job);
        snprintf(pending_cause.status, sizeof(pending_cause.status), "%s", cause->status);
        snprintf(pending_cause.message, sizeof(pending_cause.message), "%s", cause->message ?: "");
        pending_cause.info = *cause;
        pending_cause.info.job = pending_cause.job;
        pending_cause.info.status = pending_cause.status;
        pending_cause.info.message = pending_cause.message;
        pending_cause.set = true;
}

static int api_cause(sched_job_ctx *c, const sched_job_cause_info **ret) {
        if (!JOBCTX(c)->cause)
                return -ENOENT;
        *ret = JOBCTX(c)->cause;
        return 0;
}

static void *api_userdata(sched_job_ctx *c) {
        return JOBCTX(c)->job->userdata;
}

/* A run's gauges: one run per process, so they live here, not in the context. */
static job_metric *run_metrics;
static size_t n_run_metrics;

static int metrics_write(const char *dir) {
        _cleanup_free_ char *path = NULL, *tmp = NULL, *buf = NULL;
        size_t used = 0;
        int fd, r = 0;

        if (asprintf(&path, "%s/" JOB_METRICS_FILE, dir) < 0 || asprintf(&tmp, "%s/." JOB_METRICS_FILE ".tmp", dir) < 0)
                return -ENOMEM;
        buf = malloc(JOB_METRICS_FILE_MAX);
        if (!buf)
                return -ENOMEM;
        for (size_t i = 0; i < n_run_metrics; i++) {
                int n = job_metric_format(&run_metrics[i], buf + used, JOB_METRICS_FILE_MAX - used);
                if (n < 0)
                        return -E2BIG;
                used += (size_t) n;
        }
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0)
                return -errno;
        for (size_t off = 0; off < used && r >= 0;) {
                ssize_t k = write(fd, buf + off, used - off);
                if (k < 0 && errno != EINTR)
                        r = -errno;
                else if (k > 0)
                        off += (size_t) k;
        }
        if (close(fd) < 0 && r >= 0)
                r = -errno;
        if (r >= 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0)
                (void) unlink(tmp);
        return r;
}

static int api_metric_set(sched_job_ctx *c, const char *name, const char *labels, double value) {
        jobctx *j = JOBCTX(c);
        size_t i, used = 0;
        job_metric m = { .value = value };

        if (j->in_init || !j->state_dir)
                return -EOPNOTSUPP;
        labels = labels ?: "";
        if (!job_metric_name_valid(name) || !job_metric_labels_valid(labels, strlen(labels)))
                return -EINVAL;
        for (i = 0; i < n_run_metrics; i++)
                if (streq(run_metrics[i].name, name) && streq(run_metrics[i].labels, labels))
                        break;
        if (i == n_run_metrics) {
                char line[JOB_METRICS_NAME_MAX + JOB_METRICS_LABELS_MAX + 64];
                job_metric *v;

                if (n_run_metrics >= JOB_METRICS_SERIES_MAX)
                        return -E2BIG;
                snprintf(m.name, sizeof(m.name), "%s", name);
                snprintf(m.labels, sizeof(m.labels), "%s", labels);
                /* the file must stay within the bound the daemon's reader enforces */
                for (size_t k = 0; k < n_run_metrics; k++)
                        used += (size_t) MAX(job_metric_format(&run_metrics[k], line, sizeof(line)), 0);
                if (used + (size_t) MAX(job_metric_format(&m, line, sizeof(line)), 0) > JOB_METRICS_FILE_MAX)
                        return -E2BIG;
                v = reallocarray(run_metrics, n_run_metrics + 1, sizeof(*v));
                if (!v)
                        return -ENOMEM;
                run_metrics = v;
                run_metrics[n_run_metrics++] = m;
        } else
                run_metrics[i].value = value;
        return metrics_write(j->state_dir);
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
        .metric_set = api_metric_set,
        .cause = api_cause,
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
                .cause = pending_cause.set ? &pending_cause.info : NULL,
        };
}

const sched_job_cause_info *jobctx_pending_cause(void) {
        return pending_cause.set ? &pending_cause.info : NULL;
}

void jobctx_run_reset(void) {
        run_cancelled = 0;
        free(run_metrics);
        run_metrics = NULL;
        n_run_metrics = 0;
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

_printf_(2, 3) static int refuse(char **ret_error, const char *fmt, ...) {
        va_list ap;
        char *e = NULL;
        va_start(ap, fmt);
        int n = vasprintf(&e, fmt, ap);
        va_end(ap);
        if (n < 0)
                return -ENOMEM;
        free(*ret_error);
        *ret_error = e;
        return 0;
}

/* The parent of the jobs' directories ($state_dir/jobs), opened: made by the daemon and writable
 * by it alone, or a job (or anyone) that could write it could swap another job's directory for a
 * link. 0711: a job's user reaches its own directory through it without listing the others. */
static int open_jobs_parent(const char *parent, int *ret_fd, char **ret_error) {
        _cleanup_close_ int fd = open(parent, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        struct stat st;
        int q;

        if (fd < 0 && errno == ENOENT) {
                q = mkdir_p(parent, 0711);
                if (q < 0)
                        return refuse(ret_error, "cannot create %s: %s; check scheduler.state_dir and its permissions",
                                      parent, strerror(-q)) ?: q;
                fd = open(parent, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        }
        if (fd < 0) {
                q = -errno;
                return refuse(ret_error, "cannot open %s: %s%s", parent, strerror(-q),
                              q == -ELOOP || q == -ENOTDIR ? "; it must be a directory, not a symbolic link or a file: "
                                                             "move it away and the daemon makes it" : "") ?: q;
        }
        if (fstat(fd, &st) < 0)
                return -errno;
        if (st.st_uid != geteuid() || (st.st_mode & (S_IWGRP | S_IWOTH)))
                return refuse(ret_error,
                              "refusing the job state directories under %s: it is owned by uid %u with mode %04o, but "
                              "must be owned by the daemon's user (uid %u) and writable by it alone, or a job could "
                              "replace another job's directory with a link; chown %u %s && chmod go-w %s",
                              parent, (unsigned) st.st_uid, (unsigned) (st.st_mode & 07777), (unsigned) geteuid(),
                              (unsigned) geteuid(), parent, parent) ?: -EPERM;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

int jobctx_make_state_dir(const char *dir, uid_t uid, gid_t gid, mode_t mode, char **ret_error) {
        _cleanup_free_ char *parent = strdup(dir);
        _cleanup_close_ int pfd = -EBADF, fd = -EBADF;
        struct stat st;
        bool made = false;
        char *slash;
        int q;

        if (!parent)
                return -ENOMEM;
        slash = strrchr(parent, '/');
        if (!slash || slash == parent || !slash[1])
                return refuse(ret_error, "%s is not a job's state directory path", dir) ?: -EINVAL;
        *slash = '\0';
        const char *name = slash + 1;

        q = open_jobs_parent(parent, &pfd, ret_error);
        if (q < 0)
                return q;
        /* every step by descriptor from here: nothing is resolved by path twice */
        if (mkdirat(pfd, name, mode) >= 0)
                made = true;
        else if (errno != EEXIST) {
                q = -errno;
                return refuse(ret_error, "cannot create %s: %s; check scheduler.state_dir and its permissions", dir,
                              strerror(-q)) ?: q;
        }
        fd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
                q = -errno;
                /* O_DIRECTORY turns a link's ELOOP into ENOTDIR: look at what is there */
                if ((q == -ELOOP || q == -ENOTDIR) && fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) >= 0)
                        return refuse(ret_error,
                                      S_ISLNK(st.st_mode)
                                              ? "refusing %s: it is a symbolic link, and the job would write where it "
                                                "points; remove it (the daemon makes the directory at the next run)"
                                              : "refusing %s: it is not a directory; move it away (the daemon makes "
                                                "the directory at the next run)",
                                      dir) ?: q;
                return refuse(ret_error, "cannot open %s: %s", dir, strerror(-q)) ?: q;
        }
        if (fstat(fd, &st) < 0)
                return -errno;
        if (made) {
                /* the mode first, while the directory is still ours: once given away, changing it
                 * would need CAP_FOWNER, which the systemd unit does not keep */
                if (fchmod(fd, mode) < 0) /* the umask took bits off */
                        return -errno;
                if ((st.st_uid != uid || st.st_gid != gid) && fchown(fd, uid, gid) < 0) {
                        q = -errno;
                        return refuse(ret_error, "cannot give %s to uid %u gid %u: %s", dir, (unsigned) uid,
                                      (unsigned) gid, strerror(-q)) ?: q;
                }
                return 0;
        }
        if (st.st_uid != uid)
                return refuse(ret_error,
                              "refusing %s: it is owned by uid %u, but the job's runs have uid %u, and its owner "
                              "could change what the job reads; if it is the job's, chown -R %u:%u %s, otherwise "
                              "move it away (the daemon makes a new one at the next run)",
                              dir, (unsigned) st.st_uid, (unsigned) uid, (unsigned) uid, (unsigned) gid, dir) ?: -EPERM;
        /* writable by the job's user alone, whatever it (or an older daemon, 0750) made it */
        if ((st.st_mode & (S_IWGRP | S_IWOTH)) && fchmod(fd, st.st_mode & 07777 & ~(mode_t) (S_IWGRP | S_IWOTH)) < 0)
                return -errno;
        return 0;
}

/* The user and group of a job's runs, who own its state directory (`user:`/`group:`, else the
 * daemon's own), and that directory's mode. */
static void job_dir_owner(const job_def *job, uid_t *ret_uid, gid_t *ret_gid, mode_t *ret_mode) {
        *ret_uid = job->identity.user ? job->identity.uid : geteuid();
        *ret_gid = job->identity.user ? job->identity.gid : getegid();
        *ret_mode = 0700;
}

static int make_state_dir(const job_def *job, const char *dir, char **ret_error) {
        uid_t uid;
        gid_t gid;
        mode_t mode;
        job_dir_owner(job, &uid, &gid, &mode);
        return jobctx_make_state_dir(dir, uid, gid, mode, ret_error);
}

char *jobctx_state_dir(const registry *r, const job_def *job) {
        char *s = jobctx_state_dir_path(r, job);
        if (!s)
                return NULL;
        _cleanup_free_ char *err = NULL;
        int q = make_state_dir(job, s, &err);
        if (q < 0) {
                errno = -q;
                log_full(LOG_ERR, q, job->name, 0, -1, "State directory: %s", err ? err : strerror(-q));
        } else
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
                _cleanup_free_ char *err = NULL;
                q = create_dirs && has_init ? make_state_dir(j, dir, &err) : 0;
                if (q < 0) {
                        if (diag_add(diags, j->file, j->line, j->column, j->name, "state directory: %s",
                                     err ? err : strerror(-q)) < 0)
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
