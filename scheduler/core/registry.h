/* SPDX-License-Identifier: MIT */
#pragma once

/* The job registry (SPEC section 3): parsing and validating the YAML file and its drop-in
 * includes into an immutable snapshot. A reload parses a new snapshot and swaps it in only if
 * it is valid, so a registry object is never modified after registry_load() returns. */

#include <stdbool.h>
#include <sys/types.h>

#include "basic/diag.h"
#include "basic/macro.h"
#include "core/misfire.h"
#include "core/params.h"
#include "core/plugin.h"
#include "basic/schedule.h"
#include "basic/tz.h"

/* Defaults for keys the registry leaves out. */
#define REGISTRY_DEFAULT_MAX_CONCURRENT 16U
#define REGISTRY_DEFAULT_SHUTDOWN_GRACE (30ULL * USEC_PER_SEC)
#define REGISTRY_DEFAULT_HISTORY_RETENTION (30ULL * USEC_PER_DAY)
#define REGISTRY_DEFAULT_HISTORY_MAX_RUNS 10000U
#define REGISTRY_DEFAULT_HISTORY_PRUNE_INTERVAL USEC_PER_HOUR
#define REGISTRY_DEFAULT_BACKOFF (1ULL * USEC_PER_SEC)
#define REGISTRY_DEFAULT_MAX_BACKOFF (1ULL * USEC_PER_HOUR)
/* Worker processes (isolation: worker): runs before a worker is replaced, and the RSS past
 * which it is replaced after its run. The pool size defaults to the number of CPUs. */
#define REGISTRY_DEFAULT_MAX_RUNS_PER_WORKER 10000U
#define REGISTRY_DEFAULT_WORKER_MAX_RSS (256ULL * 1024 * 1024)

/* Bounds on what a registry file may make its readers walk. Every walk of the nodes recurses,
 * so nesting is capped, counted as the readers see it: an alias is as deep as its anchor.
 * Aliases are expanded by every reader (a job's params are copied per job), so the nodes they
 * stand for are counted per file: "billion laughs" nests aliases of aliases to make a few
 * hundred bytes stand for billions of nodes. */
#define REGISTRY_DEPTH_MAX 64
#define REGISTRY_ALIAS_NODES_MAX 1000000

/* Job defaults: enabled true, singleton true, run_on_startup false, catch_up false, timeout
 * none (USEC_INFINITY), retry attempts 0 (no retries), backoff 1s, max_backoff 1h — or the
 * backoff itself when only a longer backoff is given. A job without `timezone` uses
 * scheduler.timezone (default UTC). */
typedef struct retry_policy {
        unsigned attempts;  /* retries after the first run; 0 = none */
        usec_t backoff;     /* delay before the first retry */
        usec_t max_backoff; /* cap of backoff * 2^(n-1) */
} retry_policy;

/* Per-run resource limits, applied with setrlimit() in the run's process; 0 = not limited. */
typedef struct job_limits {
        uint64_t address_space; /* bytes (RLIMIT_AS) */
        usec_t cpu;             /* CPU time, whole seconds (RLIMIT_CPU: SIGXCPU, then SIGKILL) */
        uint64_t open_files;    /* RLIMIT_NOFILE, 16-1048576 */
        uint64_t tasks;         /* processes and threads of a run, 1-4194304: pids.max of its cgroup
                                 * (core/cgroup.h), else RLIMIT_NPROC of a non-root job user */
} job_limits;

/* A job named by on_failure or on_success, and where (registry-chain.c). */
typedef struct chain_ref {
        char *name;
        unsigned line, column;
} chain_ref;

typedef struct job_chain {
        chain_ref *items;
        size_t n;
} job_chain;
/* What a fire does while a run of the same job is still in flight (`overlap:`). */
typedef enum job_overlap {
        JOB_OVERLAP_SKIP,    /* recorded as skipped (singleton: true) */
        JOB_OVERLAP_ALLOW,   /* runs alongside (singleton: false) */
        JOB_OVERLAP_QUEUE,   /* waits for the run to end; at most one fire waits */
        JOB_OVERLAP_REPLACE, /* the run in flight is cancelled, then the fire runs */
        _JOB_OVERLAP_MAX,
        _JOB_OVERLAP_INVALID = -EINVAL,
} job_overlap;

const char *job_overlap_to_string(job_overlap o);
job_overlap job_overlap_from_string(const char *s);

/* Where a job's runs run (`isolation:`): a fresh process each, or one after the other in a
 * long-lived worker process of a pool (core/worker-pool.h). */
typedef enum job_isolation {
        JOB_ISOLATION_PROCESS,
        JOB_ISOLATION_WORKER,
        _JOB_ISOLATION_MAX,
        _JOB_ISOLATION_INVALID = -EINVAL,
} job_isolation;

const char *job_isolation_to_string(job_isolation i);
job_isolation job_isolation_from_string(const char *s);

/* Whom a job's runs run as (`user:`, `group:`, else scheduler.default_user), resolved when
 * the registry is read: the child takes GROUPS, GID and UID in that order. USER NULL: the
 * daemon's own identity. */
typedef struct job_identity {
        char *user;
        char *group;      /* NULL: the user's primary group */
        uid_t uid;
        gid_t gid;
        gid_t *groups;    /* supplementary groups of USER (with GID) */
        size_t n_groups;
        char *home;       /* HOME of the run */
        char *shell;
} job_identity;

typedef struct job_def {
        char *name;
        char *description;   /* may be NULL */
        const char *plugin_name; /* as written in the registry (in registry.interned) */
        const char *plugin_path; /* resolved against scheduler.plugin_dir (in registry.interned) */
        plugin *plugin;      /* NULL unless loaded with REGISTRY_LOAD_PLUGINS */
        char *schedule_expr; /* as written */
        schedule schedule;
        const char *timezone; /* zone name (job's own, else scheduler.timezone; in registry.interned) */
        const tz *zone;
        bool enabled;        /* from the registry; schedctl overrides live in history */
        bool singleton;
        bool run_on_startup;
        bool catch_up;
        usec_t timeout;      /* USEC_INFINITY: no timeout */
        retry_policy retry;
        job_limits limits;
        params params;
        /* jobs started (as manual runs) when a run of this one ends for good: failed, timed out,
         * crashed (after its last retry), or succeeded; each named job exists */
        job_chain on_failure, on_success;
        job_overlap overlap;  /* singleton mirrors it: overlap != JOB_OVERLAP_ALLOW */
        usec_t random_delay;  /* 0: none; fires wait jitter_delay(name, instant, this) */
        /* how late a fire may start before it is recorded missed: MISFIRE_INHERIT takes
         * scheduler.misfire_threshold, MISFIRE_AUTO until the job's next instant */
        usec_t misfire_threshold;
        /* `isolation:`, else the plugin's default: worker when it is SCHED_JOB_FLAG_WORKER_SAFE
         * (known only with REGISTRY_LOAD_PLUGINS), process otherwise */
        job_isolation isolation;
        unsigned workers;     /* `workers:` of its worker pool; 0: scheduler.workers */
        job_identity identity;
        char **environment;   /* "KEY=VALUE" from environment_file, then environment: */
        size_t n_environment;
        char **credentials;   /* names under $CREDENTIALS_DIRECTORY the run may read */
        size_t n_credentials;
        const char *file;    /* where the job was defined (in registry.interned) */
        unsigned line, column; /* of the job's first key */
        void *userdata;      /* what the plugin's init returned (set by job_init_all) */
        bool initialized;    /* init ran and succeeded; fini is due */
} job_def;

typedef struct registry {
        char *path;            /* the main file */
        char *state_dir;       /* default LOCALSTATEDIR/lib/schedulerd */
        char *plugin_dir;      /* default PLUGINDIR */
        char *control_socket;  /* default RUNSTATEDIR/schedulerd/control.sock */
        char *admin_group;     /* default "schedulerd" */
        char *timezone;        /* default "UTC" */
        char *default_user;    /* default NULL: jobs without user: run as the daemon */
        const tz *zone;
        unsigned max_concurrent;   /* default 16 */
        usec_t misfire_threshold;  /* default MISFIRE_AUTO; jobs without their own take it */
        usec_t shutdown_grace;     /* default 30s */
        usec_t history_retention;  /* default 30d */
        usec_t history_prune_interval; /* default 1h; also pruned at start-up and on reload */
        unsigned history_max_runs_per_job; /* default 10000 */
        unsigned workers;          /* worker processes per pool; 0 (the default): the number of CPUs */
        unsigned max_runs_per_worker; /* default 10000 */
        uint64_t worker_max_rss;   /* bytes; default 256 MiB */
        char *metrics_listen;  /* "ADDRESS:PORT" of the Prometheus endpoint, NULL: none (the default) */
        /* scheduler.cluster (with a PostgreSQL store; core/cluster.h) */
        char *cluster_node;    /* default NULL: the machine-id */
        usec_t cluster_lease;  /* default 10s, at least 1s */
        usec_t cluster_max_clock_skew; /* default 2s, shorter than the lease */
        char *store;           /* scheduler.store: NULL (default) or "sqlite": state_dir/history.db;
                                * else a libpq connection string or URI (checked, no password) */
        char *include;         /* glob pattern (resolved against the file's directory) or NULL */
        job_def **jobs;        /* in file order, main file first, then includes sorted by name */
        size_t n_jobs;
        /* one copy of each string many jobs share (file, time zone, plugin): 100,000 jobs
         * name a handful */
        char **interned;
        size_t n_interned;
} registry;

typedef enum registry_flags {
        REGISTRY_LOAD_PLUGINS = 1 << 0, /* dlopen every plugin, check ABI, apply param tables */
        REGISTRY_IGNORE_PLUGINS = 1 << 1, /* don't even check plugin files exist (schedctl next) */
} registry_flags;

/* Parses the registry at PATH and its includes.
 *
 * The main file holds `scheduler:` and `jobs:`; `scheduler.include` is a glob of drop-in files
 * that hold only `jobs:`, read in byte order of their names after the main file's jobs (no
 * match, or a missing directory, includes nothing). Relative state_dir, plugin_dir and
 * control_socket are resolved against the absolute directory of PATH; a relative include
 * pattern against the directory of PATH as given (so messages name drop-ins the way PATH was
 * written). A relative `plugin:` resolves against plugin_dir. An empty file is an empty
 * registry. Accepted values: booleans true/false/yes/no/on/off (any case); job names
 * [a-z0-9][a-z0-9-]*, at most 64 characters, unique across all files; max_concurrent 1-10000;
 * retry.attempts 0-100; history.max_runs_per_job 1-100000000; timeout and history.retention
 * greater than zero; retry.max_backoff >= retry.backoff.
 *
 * Without REGISTRY_LOAD_PLUGINS only the existence of each plugin file is checked; with it,
 * each plugin is loaded (ABI, callbacks) and the job's params are checked against the
 * plugin's param table, whose defaults are then added. Plugin init is not called here.
 * Every problem found is appended to DIAGS
 * (file:line:column, job, what was found, what was expected); parsing continues after an
 * error so all problems are reported at once. Returns 0 and a registry when DIAGS got no
 * errors, -EINVAL when the registry is invalid (DIAGS says why), -ENOENT if PATH does not
 * exist (other -errno when it cannot be read; DIAGS says so too), -ENOMEM. Plugins are loaded once per path and shared by the jobs using them. */
int registry_load(const char *path, registry_flags flags, registry **ret, diag_list *diags);

/* Settings given on the command line that win over the registry file's (NULL: no override).
 * Relative paths are taken relative to the current directory and made absolute. Jobs'
 * plugins resolve against the overriding plugin_dir. */
typedef struct registry_overrides {
        const char *state_dir;
        const char *plugin_dir;
        const char *control_socket;
} registry_overrides;

/* registry_load() with OVERRIDES (may be NULL) applied after the scheduler section is read. */
int registry_load_with(const char *path, registry_flags flags, const registry_overrides *overrides, registry **ret,
                       diag_list *diags);

/* Frees the registry: calls each initialized job's fini, drops the plugin references.
 * NULL-tolerant; returns NULL. */
registry *registry_free(registry *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(registry *, registry_free);

/* The job named NAME, or NULL. */
job_def *registry_find(const registry *r, const char *name);
