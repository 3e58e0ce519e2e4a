/* SPDX-License-Identifier: MIT */
#ifndef SCHEDULERD_JOB_H
#define SCHEDULERD_JOB_H

/*
 * schedulerd job plugin contract.
 *
 * A job is a shared object (built with `pkg-config --cflags schedulerd-job`, linked with
 * `-shared -fPIC`) that exports exactly one symbol, SCHEDULERD_JOB_SYMBOL ("schedulerd_job"),
 * of type `const sched_job_descriptor`. Use SCHEDULERD_JOB_DEFINE() to declare it:
 *
 *     #include <schedulerd/job.h>
 *
 *     static sched_job_result hello_run(sched_job_ctx *ctx) {
 *             const char *who = "world";
 *             (void) sched_job_param_string(ctx, "who", &who);
 *             sched_job_log(ctx, SCHED_LOG_INFO, "hello, %s", who);
 *             sched_job_set_message(ctx, "greeted %s", who);
 *             return SCHED_JOB_OK;
 *     }
 *
 *     static const sched_job_param hello_params[] = {
 *             { "who", SCHED_PARAM_STRING, "world", "whom to greet" },
 *             {}
 *     };
 *
 *     SCHEDULERD_JOB_DEFINE(
 *             .name = "hello",
 *             .description = "Greets somebody",
 *             .params = hello_params,
 *             .run = hello_run,
 *     );
 *
 * LIFECYCLE
 *   load     The daemon dlopen()s the object (RTLD_NOW | RTLD_LOCAL) when it reads the registry,
 *            checks abi_version (the major version must equal SCHEDULERD_JOB_ABI_VERSION) and
 *            that `run` is set, and rejects the plugin with a message otherwise (unloading it).
 *            One object may back several jobs; it is loaded once per path.
 *   init     Optional. Called once per job that uses the plugin, in the daemon, after the
 *            registry was parsed: validate the job's params, prepare per-job data. Must be quick
 *            and must not block on the network. Return 0 (optionally setting *ret_userdata,
 *            which run() reads with sched_job_userdata()) or a negative errno after
 *            sched_job_set_message() explained why: the job is then rejected, with that message.
 *            `schedctl check` calls init too. Accessors available: name, params, log,
 *            set_message, state_dir. The clock accessors return 0 here.
 *   run      Required. Called once per run, in a fresh child process forked for that run (so it
 *            may leak, crash or exit without harming the daemon; its stdout/stderr are captured).
 *            A plugin that sets SCHED_JOB_FLAG_WORKER_SAFE may instead be run many times, one
 *            run after the other, in a long-lived worker process (the job's `isolation: worker`,
 *            see below); everything else this header promises holds the same way.
 *            With `user:` in the registry the child runs as that user (its groups, gid, uid, HOME,
 *            PR_SET_NO_NEW_PRIVS), with the job's `environment:`; init and fini run in the daemon.
 *            Return SCHED_JOB_OK, SCHED_JOB_RETRY (transient failure: retried per the job's retry
 *            policy) or SCHED_JOB_FAIL (permanent: never retried). Long runs should poll
 *            sched_job_cancelled() and return early; at the deadline the process group gets
 *            SIGTERM, and SIGKILL 5 s later.
 *   fini     Optional. Called in the daemon when the job is dropped (reload, shutdown), with the
 *            userdata init returned. Never called in run children.
 *
 * ISOLATION
 *   A job runs as `isolation: process` (a fresh process per run, the default) or `isolation:
 *   worker` (schedulerd.yaml(5)): a pool of long-lived worker processes per plugin, user and
 *   limits, each with the plugin loaded, taking one run at a time. A plugin declares that it may
 *   run there by setting `.flags = SCHED_JOB_FLAG_WORKER_SAFE`; that makes `worker` its jobs'
 *   default. Worker-safe means: run() frees what it allocates (or leaks little: a worker is
 *   replaced after scheduler.max_runs_per_worker runs or when its RSS passes
 *   scheduler.worker_max_rss), leaves no global state that changes the next run, restores the
 *   signal dispositions and the working directory it changed, and leaves no processes running
 *   when it returns. In a worker, per run: stdout and stderr go to that run's own output
 *   (logged and kept as its output tail), the working directory is the job's state dir, the
 *   context accessors, logical clock, deadline and cancellation are the run's. A worker that
 *   crashes, calls exit(), passes its run's deadline (SIGTERM, then SIGKILL, to the worker) or
 *   a limit is killed and replaced, and its run recorded crashed / timed_out like a process
 *   run. `limits.cpu` counts per run; `limits.address_space` bounds the worker.
 *
 * OWNERSHIP
 *   Every string and array an accessor returns is owned by the host and valid until the
 *   callback returns; copy what you keep. The descriptor and param table are owned by the
 *   plugin and must be static.
 *
 * TIME
 *   All times are microseconds since the Unix epoch, UTC (sched_usec_t). A run sees a logical
 *   clock: sched_job_now() is the instant the run stands for (its scheduled fire time, or the
 *   --at time of a manual run) plus the monotonic time elapsed since the run started. Never call
 *   time() or clock_gettime(CLOCK_REALTIME) in a job: use the context, so the job is replayable.
 *
 * PARAMS
 *   The registry's `params:` mapping. If the descriptor has a param table, the daemon rejects
 *   unknown keys and values of the wrong type before init, and applies the table's defaults;
 *   without a table, any keys pass through. Values are scalars or lists of scalars.
 */

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Major ABI version. Bumped on any incompatible change of this header. */
#define SCHEDULERD_JOB_ABI_VERSION 1
/* Minor ABI version: compatible additions. 1 added the descriptor's `flags`: a plugin built
 * against 1.0 (a shorter descriptor, see struct_size) loads as before, with no flags. */
#define SCHEDULERD_JOB_ABI_MINOR 1
#define SCHEDULERD_JOB_SYMBOL "schedulerd_job"

typedef uint64_t sched_usec_t;
#define SCHED_USEC_INFINITY ((sched_usec_t) UINT64_MAX)

typedef struct sched_job_ctx sched_job_ctx;

typedef enum sched_job_result {
        SCHED_JOB_OK = 0,
        SCHED_JOB_RETRY = 1,
        SCHED_JOB_FAIL = 2,
} sched_job_result;

/* syslog priorities */
typedef enum sched_log_level {
        SCHED_LOG_ERR = 3,
        SCHED_LOG_WARNING = 4,
        SCHED_LOG_NOTICE = 5,
        SCHED_LOG_INFO = 6,
        SCHED_LOG_DEBUG = 7,
} sched_log_level;

typedef enum sched_param_type {
        SCHED_PARAM_STRING = 1,
        SCHED_PARAM_INT,      /* decimal, 64-bit signed */
        SCHED_PARAM_BOOL,     /* true/false/yes/no/on/off/1/0 */
        SCHED_PARAM_DURATION, /* "250ms", "1h30m", ... */
        SCHED_PARAM_LIST,     /* a YAML sequence of scalars */
} sched_param_type;

/* One entry of a plugin's option table; the table ends with an entry whose key is NULL. */
typedef struct sched_job_param {
        const char *key;
        sched_param_type type;
        const char *default_value; /* NULL: no default; the param is then required */
        const char *description;
} sched_job_param;

/* The run whose end started this one through the registry's on_failure or on_success. */
typedef struct sched_job_cause_info {
        const char *job;         /* the job whose run ended */
        uint64_t run_id;         /* its run id in history */
        const char *status;      /* how it ended: "succeeded", "failed", "timed_out" or "crashed" */
        const char *message;     /* its one-line message ("" if none) */
        sched_usec_t scheduled;  /* the instant it stood for */
        sched_usec_t finished;   /* when it ended (wall clock) */
} sched_job_cause_info;

/* The host's functions, reached only through the context (a plugin never links against the
 * daemon). Use the inline wrappers below rather than calling these directly. */
typedef struct sched_job_api {
        const char *(*job_name)(sched_job_ctx *ctx);
        uint64_t (*run_id)(sched_job_ctx *ctx);
        int (*param_string)(sched_job_ctx *ctx, const char *key, const char **ret);
        int (*param_int)(sched_job_ctx *ctx, const char *key, int64_t *ret);
        int (*param_bool)(sched_job_ctx *ctx, const char *key, bool *ret);
        int (*param_duration)(sched_job_ctx *ctx, const char *key, sched_usec_t *ret);
        int (*param_list)(sched_job_ctx *ctx, const char *key, const char *const **ret_items, size_t *ret_n);
        sched_usec_t (*now)(sched_job_ctx *ctx);
        sched_usec_t (*scheduled)(sched_job_ctx *ctx);
        unsigned (*attempt)(sched_job_ctx *ctx);
        sched_usec_t (*deadline)(sched_job_ctx *ctx);
        bool (*cancelled)(sched_job_ctx *ctx);
        void (*logv)(sched_job_ctx *ctx, int level, const char *fmt, va_list ap);
        const char *(*state_dir)(sched_job_ctx *ctx);
        void (*set_messagev)(sched_job_ctx *ctx, const char *fmt, va_list ap);
        void *(*userdata)(sched_job_ctx *ctx);
        /* Appended after ABI 1 was first released: old plugins never read it, so it needs no
         * bump; plugins that call it need a daemon that has it (every daemon since). */
        int (*metric_set)(sched_job_ctx *ctx, const char *name, const char *labels, double value);
        int (*cause)(sched_job_ctx *ctx, const struct sched_job_cause_info **ret);
        int (*credential)(sched_job_ctx *ctx, const char *name, const char **ret_data, size_t *ret_size);
} sched_job_api;

/* The head of every context; the rest is private to the host. */
struct sched_job_ctx {
        const sched_job_api *api;
};

typedef struct sched_job_descriptor {
        uint32_t abi_version;    /* SCHEDULERD_JOB_ABI_VERSION at build time */
        uint32_t struct_size;    /* sizeof(sched_job_descriptor) at build time */
        const char *name;        /* the plugin's name, e.g. "hello" */
        const char *description; /* one line */
        const sched_job_param *params; /* option table or NULL (free-form params) */
        int (*init)(sched_job_ctx *ctx, void **ret_userdata);
        sched_job_result (*run)(sched_job_ctx *ctx);
        void (*fini)(void *userdata);
        /* ABI 1.1: SCHED_JOB_FLAG_* bits (0 when the plugin predates them). */
        uint32_t flags;
} sched_job_descriptor;

/* The plugin may run many times in one process: its jobs default to `isolation: worker`
 * (see ISOLATION above). */
#define SCHED_JOB_FLAG_WORKER_SAFE (UINT32_C(1) << 0)

#define SCHEDULERD_JOB_DEFINE(...)                                                      \
        __attribute__((visibility("default"))) const sched_job_descriptor schedulerd_job = { \
                .abi_version = SCHEDULERD_JOB_ABI_VERSION,                             \
                .struct_size = sizeof(sched_job_descriptor),                           \
                __VA_ARGS__                                                            \
        }

/* The job's name in the registry (not the plugin's). */
static inline const char *sched_job_name(sched_job_ctx *ctx) {
        return ctx->api->job_name(ctx);
}

/* The run's id in history (0 in init and in `schedctl check`). */
static inline uint64_t sched_job_run_id(sched_job_ctx *ctx) {
        return ctx->api->run_id(ctx);
}

/* Typed params. Each returns 0 and sets *ret, -ENOENT when the key is absent and has no
 * default, or -EINVAL when the value does not have the requested type. */
static inline int sched_job_param_string(sched_job_ctx *ctx, const char *key, const char **ret) {
        return ctx->api->param_string(ctx, key, ret);
}
static inline int sched_job_param_int(sched_job_ctx *ctx, const char *key, int64_t *ret) {
        return ctx->api->param_int(ctx, key, ret);
}
static inline int sched_job_param_bool(sched_job_ctx *ctx, const char *key, bool *ret) {
        return ctx->api->param_bool(ctx, key, ret);
}
static inline int sched_job_param_duration(sched_job_ctx *ctx, const char *key, sched_usec_t *ret) {
        return ctx->api->param_duration(ctx, key, ret);
}
static inline int sched_job_param_list(sched_job_ctx *ctx, const char *key, const char *const **ret_items,
                                       size_t *ret_n) {
        return ctx->api->param_list(ctx, key, ret_items, ret_n);
}

/* The logical clock (see TIME above). */
static inline sched_usec_t sched_job_now(sched_job_ctx *ctx) {
        return ctx->api->now(ctx);
}

/* The instant this run stands for: its scheduled fire time, or the --at time of a manual run. */
static inline sched_usec_t sched_job_scheduled(sched_job_ctx *ctx) {
        return ctx->api->scheduled(ctx);
}

/* 0 for the first attempt of a fire, n for its n-th retry. */
static inline unsigned sched_job_attempt(sched_job_ctx *ctx) {
        return ctx->api->attempt(ctx);
}

/* The logical-clock instant at which the run will be sent SIGTERM, or SCHED_USEC_INFINITY. */
static inline sched_usec_t sched_job_deadline(sched_job_ctx *ctx) {
        return ctx->api->deadline(ctx);
}

/* True once the daemon asked the run to stop (shutdown or deadline). */
static inline bool sched_job_cancelled(sched_job_ctx *ctx) {
        return ctx->api->cancelled(ctx);
}

/* Logs a line tagged with the job name and run id. No trailing newline needed. */
__attribute__((format(printf, 3, 4))) static inline void sched_job_log(sched_job_ctx *ctx, int level,
                                                                       const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        ctx->api->logv(ctx, level, fmt, ap);
        va_end(ap);
}

/* A directory private to this job ($state_dir/jobs/<job>), created before init/run. */
static inline const char *sched_job_state_dir(sched_job_ctx *ctx) {
        return ctx->api->state_dir(ctx);
}

/* Sets the run's one-line result message, shown by schedctl and kept in history (the last
 * call wins; at most 1 KiB is kept). In init, the reason a job is rejected. */
__attribute__((format(printf, 2, 3))) static inline void sched_job_set_message(sched_job_ctx *ctx,
                                                                               const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        ctx->api->set_messagev(ctx, fmt, ap);
        va_end(ap);
}

/* Sets the gauge NAME{LABELS} to VALUE for the daemon's metrics. NAME must match
 * [a-zA-Z_:][a-zA-Z0-9_:]*; LABELS is NULL/"" or `key="value",...` without braces (values
 * escape \\, \" and newline as \n). The run's gauges are kept in its process and written, on
 * every call, atomically to <state dir>/metrics.prom in Prometheus text format, which the
 * daemon exports with its own metrics (labelled with the job); a run's file replaces the
 * previous run's. At most 256 series and 64 KiB per run. Returns 0, -EINVAL for a bad name or
 * labels, -E2BIG when a limit is reached, -EOPNOTSUPP in init, or the error writing the file
 * (the value is kept and written with the next call). */
static inline int sched_job_metric_set(sched_job_ctx *ctx, const char *name, const char *labels, double value) {
        return ctx->api->metric_set(ctx, name, labels, value);
}

/* The run that started this one through on_failure / on_success: 0 and *ret (valid until the
 * callback returns), or -ENOENT when this run was started otherwise (schedule, schedctl run). */
static inline int sched_job_cause(sched_job_ctx *ctx, const sched_job_cause_info **ret) {
        return ctx->api->cause(ctx, ret);
}

/* What init stored in *ret_userdata, or NULL. */
static inline void *sched_job_userdata(sched_job_ctx *ctx) {
        return ctx->api->userdata(ctx);
}

/* A secret of the run: credential NAME, one the job lists under `credentials:` in the registry,
 * read from the daemon's $CREDENTIALS_DIRECTORY (systemd's LoadCredential=) before the run gave
 * up the daemon's privileges. Returns 0 with its bytes (NUL-terminated after *ret_size, which
 * may be NULL) or -ENOENT (not listed, not readable, or in init). Secrets never pass through
 * params, the log or history: don't log them. */
static inline int sched_job_credential(sched_job_ctx *ctx, const char *name, const char **ret_data,
                                       size_t *ret_size) {
        return ctx->api->credential(ctx, name, ret_data, ret_size);
}

#ifdef __cplusplus
}
#endif

#endif
