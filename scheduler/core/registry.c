/* SPDX-License-Identifier: MIT */
/* The registry: the scheduler section and its defaults, the command line's overrides, the main
 * file and its drop-ins read in order; the public API of registry.h. Reading YAML is in
 * registry-yaml.c, values in registry-value.c, jobs in registry-job.c. */
#include <glob.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "basic/listen-address.h"
#include "core/job-user.h"
#include "core/registry-internal.h"
#include "store/history.h"

#ifndef LOCALSTATEDIR
#define LOCALSTATEDIR "/var"
#endif
#ifndef RUNSTATEDIR
#define RUNSTATEDIR "/run"
#endif
#ifndef PLUGINDIR
#define PLUGINDIR "/usr/lib/schedulerd/jobs"
#endif

#define MAX_CONCURRENT_MAX 10000U
#define HISTORY_MAX_RUNS_MAX 100000000U

static const char *const top_keys[] = { "scheduler", "jobs" };
static const char *const dropin_keys[] = { "jobs" };
enum { TOP_SCHEDULER, TOP_JOBS };

static const char *const scheduler_keys[] = {
        "state_dir", "plugin_dir", "control_socket", "admin_group", "timezone",
        "max_concurrent", "shutdown_grace", "history", "include", "metrics_listen", "default_user",
        "misfire_threshold", "workers", "max_runs_per_worker", "worker_max_rss", "store", "cluster",
};
enum { S_STATE_DIR, S_PLUGIN_DIR, S_CONTROL_SOCKET, S_ADMIN_GROUP, S_TIMEZONE,
       S_MAX_CONCURRENT, S_SHUTDOWN_GRACE, S_HISTORY, S_INCLUDE, S_METRICS_LISTEN, S_DEFAULT_USER,
       S_MISFIRE_THRESHOLD, S_WORKERS, S_MAX_RUNS_PER_WORKER, S_WORKER_MAX_RSS, S_STORE, S_CLUSTER };

static const char *const cluster_keys[] = { "node", "lease", "max_clock_skew" };
enum { C_NODE, C_LEASE, C_MAX_CLOCK_SKEW };

static const char *const history_keys[] = { "retention", "max_runs_per_job", "prune_interval" };
enum { H_RETENTION, H_MAX_RUNS, H_PRUNE_INTERVAL };

/* Searched newest first: jobs next to each other tend to share their strings. */
const char *loader_intern(loader *l, const char *s) {
        registry *r = l->reg;
        for (size_t i = r->n_interned; i > 0; i--)
                if (streq(r->interned[i - 1], s))
                        return r->interned[i - 1];
        char **t = realloc(r->interned, (r->n_interned + 1) * sizeof(char *));
        if (!t)
                return NULL;
        r->interned = t;
        if (!(t[r->n_interned] = strdup(s)))
                return NULL;
        return t[r->n_interned++];
}

/* ---- paths ----------------------------------------------------------------------------- */

static char *path_join(const char *dir, const char *p) {
        char *s;
        if (p[0] == '/' || isempty(dir))
                return strdup(p);
        if (streq(dir, "."))
                return strdup(p);
        if (asprintf(&s, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", p) < 0)
                return NULL;
        return s;
}

static char *dir_of(const char *path) {
        const char *slash = strrchr(path, '/');
        if (!slash)
                return strdup(".");
        if (slash == path)
                return strdup("/");
        return strndup(path, (size_t) (slash - path));
}

/* Sets *FIELD to the string value of N, resolved against DIR when relative. */
static void parse_path(loader *l, source *s, yaml_node_t *n, const char *what, const char *expected, const char *dir,
                       char **field) {
        const char *v = expect_string(l, s, n, NULL, what, expected);
        if (!v)
                return;
        char *p = path_join(dir, v);
        if (!p)
                return loader_oom(l);
        free(*field);
        *field = p;
}

/* ---- the scheduler section --------------------------------------------------------------- */

static void parse_listen(loader *l, source *s, yaml_node_t *n, const char *what, char **ret) {
        struct sockaddr_storage ss;
        socklen_t len;
        const char *err;
        const char *v = expect_string(l, s, n, NULL, what, "ADDRESS:PORT, e.g. 127.0.0.1:9163");
        if (!v)
                return;
        if (listen_address_parse(v, &ss, &len, &err) < 0) {
                report_at(l, s, n, NULL, "%s: \"%s\": %s; expected ADDRESS:PORT, e.g. 127.0.0.1:9163 or [::1]:9163",
                          what, v, err);
                return;
        }
        char *c = strdup(v);
        if (!c)
                return loader_oom(l);
        free(*ret);
        *ret = c;
}

static void parse_history(loader *l, source *s, yaml_node_t *map) {
        yaml_node_t *keys[KEYS_MAX], *v[KEYS_MAX];

        mapping_collect(l, s, map, history_keys, ELEMENTSOF(history_keys), "scheduler.history: ", NULL, NULL, keys, v);
        if (v[H_RETENTION])
                (void) parse_duration(l, s, v[H_RETENTION], NULL, "scheduler.history.retention", 1,
                                      &l->reg->history_retention);
        if (v[H_MAX_RUNS])
                parse_uint(l, s, v[H_MAX_RUNS], NULL, "scheduler.history.max_runs_per_job", 1, HISTORY_MAX_RUNS_MAX,
                           &l->reg->history_max_runs_per_job);
        if (v[H_PRUNE_INTERVAL])
                (void) parse_duration(l, s, v[H_PRUNE_INTERVAL], NULL, "scheduler.history.prune_interval", USEC_PER_SEC,
                                      &l->reg->history_prune_interval);
}

/* scheduler.cluster: used when scheduler.store is PostgreSQL (core/cluster.h). */
static void parse_cluster(loader *l, source *s, yaml_node_t *map) {
        yaml_node_t *keys[KEYS_MAX], *v[KEYS_MAX];
        registry *reg = l->reg;

        mapping_collect(l, s, map, cluster_keys, ELEMENTSOF(cluster_keys), "scheduler.cluster: ", NULL, NULL, keys, v);
        if (v[C_NODE]) {
                const char *n = expect_string(l, s, v[C_NODE], NULL, "scheduler.cluster.node",
                                              "a node name like host-a");
                if (n && (isempty(n) || strlen(n) > 64 || n[strspn(n, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                                   "0123456789._-")] != 0))
                        report_at(l, s, v[C_NODE], NULL, "scheduler.cluster.node: \"%s\" is not a node name; expected "
                                  "1-64 characters of letters, digits, '.', '_' and '-'", n);
                else if (n) {
                        free(reg->cluster_node);
                        if (!(reg->cluster_node = strdup(n)))
                                return loader_oom(l);
                }
        }
        if (v[C_LEASE])
                (void) parse_duration(l, s, v[C_LEASE], NULL, "scheduler.cluster.lease", USEC_PER_SEC,
                                      &reg->cluster_lease);
        if (v[C_MAX_CLOCK_SKEW])
                (void) parse_duration(l, s, v[C_MAX_CLOCK_SKEW], NULL, "scheduler.cluster.max_clock_skew", 0,
                                      &reg->cluster_max_clock_skew);
        if (reg->cluster_max_clock_skew >= reg->cluster_lease)
                report_at(l, s, map, NULL, "scheduler.cluster: max_clock_skew must be shorter than the lease");
}

/* "sqlite" or a libpq connection string or URI, checked here (a typo is a registry error with
 * its line, not a failed start); NULL stays the default, the SQLite file. */
static void parse_store(loader *l, source *s, yaml_node_t *n) {
        char why[512];
        const char *v = expect_string(l, s, n, NULL, "scheduler.store",
                                      "sqlite, or a libpq connection string such as \"host=db1 dbname=schedulerd\"");
        if (!v)
                return;
        int q = history_store_check(v, why, sizeof(why));
        if (q == -ENOMEM)
                return loader_oom(l);
        if (q < 0) {
                report_at(l, s, n, NULL, "%s", why);
                return;
        }
        free(l->reg->store);
        if (!(l->reg->store = strdup(v)))
                loader_oom(l);
}

/* Checked here, once: jobs that fall back to it do not repeat an unknown user. */
static void parse_default_user(loader *l, source *s, yaml_node_t *n) {
        const char *u = expect_string(l, s, n, NULL, "scheduler.default_user", "a user name or uid");
        _cleanup_free_ char *error = NULL;
        job_identity id = {};
        if (!u)
                return;
        int q = job_identity_resolve(u, NULL, &id, &error);
        job_identity_done(&id);
        if (q == -ENOMEM)
                return loader_oom(l);
        if (q < 0)
                report_at(l, s, n, NULL, "scheduler.default_user: %s", error ?: strerror(-q));
        else if (!(l->reg->default_user = strdup(u)))
                loader_oom(l);
}

static void parse_scheduler(loader *l, source *s, yaml_node_t *map) {
        yaml_node_t *keys[KEYS_MAX], *v[KEYS_MAX];
        registry *reg = l->reg;

        mapping_collect(l, s, map, scheduler_keys, ELEMENTSOF(scheduler_keys), "scheduler: ", NULL, NULL, keys, v);

        if (v[S_STATE_DIR])
                parse_path(l, s, v[S_STATE_DIR], "scheduler.state_dir", "a directory", l->base_dir_abs,
                           &reg->state_dir);
        if (v[S_PLUGIN_DIR])
                parse_path(l, s, v[S_PLUGIN_DIR], "scheduler.plugin_dir", "a directory", l->base_dir_abs,
                           &reg->plugin_dir);
        if (v[S_CONTROL_SOCKET]) {
                parse_path(l, s, v[S_CONTROL_SOCKET], "scheduler.control_socket", "a socket path", l->base_dir_abs,
                           &reg->control_socket);
                size_t max = sizeof(((struct sockaddr_un *) NULL)->sun_path) - 1;
                if (strlen(reg->control_socket) > max)
                        report_at(l, s, v[S_CONTROL_SOCKET], NULL, "scheduler.control_socket: %s is %zu bytes long; "
                                  "expected at most %zu (the limit of a Unix socket address)", reg->control_socket,
                                  strlen(reg->control_socket), max);
        }
        if (v[S_ADMIN_GROUP]) {
                const char *g = expect_string(l, s, v[S_ADMIN_GROUP], NULL, "scheduler.admin_group", "a group name");
                if (g) {
                        free(reg->admin_group);
                        if (!(reg->admin_group = strdup(g)))
                                return loader_oom(l);
                }
        }
        if (v[S_TIMEZONE]) {
                const char *z = expect_string(l, s, v[S_TIMEZONE], NULL, "scheduler.timezone",
                                              "an IANA zone name like Europe/Amsterdam");
                if (z) {
                        free(reg->timezone);
                        if (!(reg->timezone = strdup(z)))
                                return loader_oom(l);
                        reg->zone = NULL;
                        (void) load_zone(l, s, v[S_TIMEZONE], NULL, z, &reg->zone);
                }
        }
        if (v[S_MAX_CONCURRENT])
                parse_uint(l, s, v[S_MAX_CONCURRENT], NULL, "scheduler.max_concurrent", 1, MAX_CONCURRENT_MAX,
                           &reg->max_concurrent);
        if (v[S_MISFIRE_THRESHOLD])
                (void) parse_misfire_threshold(l, s, v[S_MISFIRE_THRESHOLD], NULL, "scheduler.misfire_threshold",
                                               &reg->misfire_threshold);
        if (v[S_SHUTDOWN_GRACE])
                (void) parse_duration(l, s, v[S_SHUTDOWN_GRACE], NULL, "scheduler.shutdown_grace", 0,
                                      &reg->shutdown_grace);
        if (v[S_WORKERS])
                parse_uint(l, s, v[S_WORKERS], NULL, "scheduler.workers", 1, WORKERS_MAX, &reg->workers);
        if (v[S_MAX_RUNS_PER_WORKER])
                parse_uint(l, s, v[S_MAX_RUNS_PER_WORKER], NULL, "scheduler.max_runs_per_worker", 1, UINT_MAX,
                           &reg->max_runs_per_worker);
        if (v[S_WORKER_MAX_RSS])
                parse_size(l, s, v[S_WORKER_MAX_RSS], NULL, "scheduler.worker_max_rss", &reg->worker_max_rss);
        if (v[S_HISTORY] && !node_is_null(v[S_HISTORY]) &&
            expect_container(l, s, v[S_HISTORY], YAML_MAPPING_NODE, NULL, "scheduler.history",
                             "a mapping with retention, max_runs_per_job, prune_interval"))
                parse_history(l, s, v[S_HISTORY]);
        if (v[S_METRICS_LISTEN] && !node_is_null(v[S_METRICS_LISTEN]))
                parse_listen(l, s, v[S_METRICS_LISTEN], "scheduler.metrics_listen", &reg->metrics_listen);
        if (v[S_DEFAULT_USER])
                parse_default_user(l, s, v[S_DEFAULT_USER]);
        if (v[S_CLUSTER] && !node_is_null(v[S_CLUSTER]) &&
            expect_container(l, s, v[S_CLUSTER], YAML_MAPPING_NODE, NULL, "scheduler.cluster",
                             "a mapping with node, lease, max_clock_skew"))
                parse_cluster(l, s, v[S_CLUSTER]);
        if (v[S_STORE])
                parse_store(l, s, v[S_STORE]);
        if (v[S_INCLUDE])
                parse_path(l, s, v[S_INCLUDE], "scheduler.include", "a glob pattern like jobs.d/*.yaml", l->base_dir,
                           &reg->include);
}

/* ---- files and includes ------------------------------------------------------------------ */

static int apply_overrides(registry *reg, const registry_overrides *o);

void load_scheduler(loader *l, source *s, yaml_node_t *sched) {
        registry *reg = l->reg;
        tz *z = NULL;
        int r;

        l->scheduler_done = true;
        r = tz_load(reg->timezone, &z);
        if (r < 0)
                loader_report(l, l->path, 0, 0, NULL, "cannot load the default time zone %s: %s; expected tzdata "
                       "in %s", reg->timezone, strerror(-r), getenv("TZDIR") ?: "/usr/share/zoneinfo");
        reg->zone = z;
        if (sched && !node_is_null(sched) &&
            expect_container(l, s, sched, YAML_MAPPING_NODE, NULL, "scheduler", "a mapping of scheduler settings"))
                parse_scheduler(l, s, sched);
        r = apply_overrides(reg, l->overrides);
        if (r < 0)
                l->error = l->error ?: r;
}

/* Sets *RET_SCHEDULER (main file only) and *RET_JOBS to the sections' nodes, or NULL. */
static void parse_file(loader *l, source *s, bool main_file, yaml_node_t **ret_scheduler, yaml_node_t **ret_jobs) {
        yaml_node_t *root = yaml_document_get_root_node(&s->doc);
        yaml_node_t *keys[KEYS_MAX], *v[KEYS_MAX];

        *ret_scheduler = NULL;
        *ret_jobs = NULL;
        if (!root || node_is_null(root))
                return; /* an empty file: nothing to add */
        if (root->type != YAML_MAPPING_NODE) {
                report_type(l, s, root, NULL, main_file ? "registry" : "drop-in file",
                            main_file ? "a mapping with the keys scheduler and jobs" : "a mapping with the key jobs");
                return;
        }
        if (main_file) {
                mapping_collect(l, s, root, top_keys, ELEMENTSOF(top_keys), "", NULL, NULL, keys, v);
                *ret_scheduler = v[TOP_SCHEDULER];
                *ret_jobs = v[TOP_JOBS];
        } else {
                mapping_collect(l, s, root, dropin_keys, ELEMENTSOF(dropin_keys), "", " (a drop-in file holds only jobs)",
                                NULL, keys, v);
                *ret_jobs = v[0];
        }
}

static void load_includes(loader *l, const char *main_file) {
        struct stat main_st = {}, st;
        glob_t g;
        int r;

        if (stat(main_file, &main_st) < 0)
                main_st = (struct stat) {};

        r = dropins_glob(l->reg->include, &g);
        if (r == -ENOMEM)
                return loader_oom(l);
        if (r < 0)
                return;

        for (size_t i = 0; i < g.gl_pathc; i++) {
                const char *file = g.gl_pathv[i];
                source s;
                yaml_node_t *sched, *jobs;

                size_t n_diags = l->diags->n;

                /* A pattern like *.yaml next to the main file matches the main file too. */
                if (stat(file, &st) >= 0 && st.st_dev == main_st.st_dev && st.st_ino == main_st.st_ino)
                        continue;
                r = source_load(l, &s, file, false);
                if (r >= 0 && s.have_doc) {
                        parse_file(l, &s, false, &sched, &jobs);
                        if (jobs && !jobs_checked(&s, jobs))
                                parse_jobs(l, &s, jobs);
                } else if (r < 0 && r != -EINVAL)
                        loader_report_unreadable(l, file, r);
                source_done(&s);
                sort_diags(l->diags, n_diags);
        }
        globfree(&g);
}

/* The first directory of $VAR (systemd sets a colon-separated list) or FALLBACK, then SUFFIX. */
static char *systemd_dir(const char *var, const char *fallback, const char *suffix) {
        const char *e = getenv(var);
        char *s;
        size_t n = e && e[0] == '/' ? strcspn(e, ":") : 0;
        if (asprintf(&s, "%.*s%s", n > 0 ? (int) n : (int) strlen(fallback), n > 0 ? e : fallback, suffix) < 0)
                return NULL;
        return s;
}

static int registry_new_defaults(const char *path, registry **ret) {
        _cleanup_(registry_freep) registry *r = calloc(1, sizeof(registry));
        if (!r)
                return -ENOMEM;
        *r = (registry) {
                .max_concurrent = REGISTRY_DEFAULT_MAX_CONCURRENT,
                .misfire_threshold = MISFIRE_AUTO,
                .shutdown_grace = REGISTRY_DEFAULT_SHUTDOWN_GRACE,
                .history_retention = REGISTRY_DEFAULT_HISTORY_RETENTION,
                .history_max_runs_per_job = REGISTRY_DEFAULT_HISTORY_MAX_RUNS,
                .history_prune_interval = REGISTRY_DEFAULT_HISTORY_PRUNE_INTERVAL,
                .max_runs_per_worker = REGISTRY_DEFAULT_MAX_RUNS_PER_WORKER,
                .worker_max_rss = REGISTRY_DEFAULT_WORKER_MAX_RSS,
                .cluster_lease = 10 * USEC_PER_SEC,
                .cluster_max_clock_skew = 2 * USEC_PER_SEC,
        };
        r->path = strdup(path);
        /* under systemd, the unit's StateDirectory= and RuntimeDirectory= are the defaults */
        r->state_dir = systemd_dir("STATE_DIRECTORY", LOCALSTATEDIR "/lib/schedulerd", "");
        r->plugin_dir = strdup(PLUGINDIR);
        r->control_socket = systemd_dir("RUNTIME_DIRECTORY", RUNSTATEDIR "/schedulerd", "/control.sock");
        r->admin_group = strdup("schedulerd");
        r->timezone = strdup("UTC");
        if (!r->path || !r->state_dir || !r->plugin_dir || !r->control_socket || !r->admin_group || !r->timezone)
                return -ENOMEM;
        *ret = TAKE_PTR(r);
        return 0;
}

/* Replaces *FIELD with VALUE made absolute against the current directory. */
static int override_path(const char *value, char **field) {
        _cleanup_free_ char *cwd = NULL;
        char *p;

        if (!value)
                return 0;
        if (value[0] != '/') {
                cwd = getcwd(NULL, 0);
                if (!cwd)
                        return negative_errno();
        }
        p = path_join(cwd, value);
        if (!p)
                return -ENOMEM;
        free(*field);
        *field = p;
        return 0;
}

static int apply_overrides(registry *reg, const registry_overrides *o) {
        int r;

        if (!o)
                return 0;
        r = override_path(o->state_dir, &reg->state_dir);
        if (r >= 0)
                r = override_path(o->plugin_dir, &reg->plugin_dir);
        if (r >= 0)
                r = override_path(o->control_socket, &reg->control_socket);
        return r;
}

int registry_load(const char *path, registry_flags flags, registry **ret, diag_list *diags) {
        return registry_load_with(path, flags, NULL, ret, diags);
}

int registry_load_with(const char *path, registry_flags flags, const registry_overrides *overrides, registry **ret,
                       diag_list *diags) {
        _cleanup_(registry_freep) registry *reg = NULL;
        loader l = { .flags = flags, .diags = diags, .path = path, .overrides = overrides };
        size_t n_diags = diags->n;
        source s;
        yaml_node_t *sched = NULL, *jobs = NULL;
        int r;

        r = registry_new_defaults(path, &reg);
        if (r < 0)
                return r;
        l.reg = reg;
        l.base_dir = dir_of(path);
        if (!l.base_dir)
                return -ENOMEM;
        l.base_dir_abs = realpath(l.base_dir, NULL);
        if (!l.base_dir_abs && !(l.base_dir_abs = strdup(l.base_dir))) {
                free(l.base_dir);
                return -ENOMEM;
        }

        r = source_load(&l, &s, path, true);
        if (r < 0 && r != -EINVAL) {
                loader_report_unreadable(&l, path, r);
                source_done(&s);
                goto finish;
        }
        if (s.have_doc) {
                parse_file(&l, &s, true, &sched, &jobs);
                /* The scheduler section first, wherever it is in the file: jobs need its
                 * plugin_dir and timezone. (Done already if the jobs were checked while the
                 * file was read.) */
                if (!l.scheduler_done)
                        load_scheduler(&l, &s, sched);
                if (jobs && !jobs_checked(&s, jobs))
                        parse_jobs(&l, &s, jobs);
                sort_diags(diags, n_diags);
                if (reg->include)
                        load_includes(&l, path);
                check_chains(&l);
        }
        source_done(&s);
        r = 0;

finish:
        for (size_t i = 0; i < l.n_plugins; i++) {
                plugin_unref(l.plugins[i].plugin);
                free(l.plugins[i].path);
                free(l.plugins[i].error);
        }
        free(l.plugins);
        for (size_t i = 0; i < l.names_cap; i++)
                free(l.names[i].name);
        free(l.names);
        free(l.base_dir);
        free(l.base_dir_abs);

        if (l.error < 0)
                return l.error;
        if (r < 0)
                return r;
        if (diags->n > n_diags)
                return -EINVAL;
        *ret = TAKE_PTR(reg);
        return 0;
}

registry *registry_free(registry *r) {
        if (!r)
                return NULL;
        for (size_t i = 0; i < r->n_jobs; i++)
                job_def_free(r->jobs[i]);
        free(r->jobs);
        free(r->path);
        free(r->state_dir);
        free(r->plugin_dir);
        free(r->control_socket);
        free(r->admin_group);
        free(r->timezone);
        free(r->default_user);
        free(r->include);
        free(r->metrics_listen);
        free(r->cluster_node);
        free(r->store);
        for (size_t i = 0; i < r->n_interned; i++)
                free(r->interned[i]);
        free(r->interned);
        free(r);
        return NULL;
}

job_def *registry_find(const registry *r, const char *name) {
        if (!r || !name)
                return NULL;
        for (size_t i = 0; i < r->n_jobs; i++)
                if (r->jobs[i]->name && streq(r->jobs[i]->name, name))
                        return r->jobs[i];
        return NULL;
}
