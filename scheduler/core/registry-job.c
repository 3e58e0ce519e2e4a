/* SPDX-License-Identifier: MIT */
/* One job of the registry: its keys checked and turned into a job_def with the defaults of
 * registry.h, its plugin found (and loaded), its name unique across all files. */
#include <sys/stat.h>

#include "basic/duration.h"
#include "core/registry-internal.h"

#define JOB_NAME_MAX 64U
#define RETRY_ATTEMPTS_MAX 100U

static const char *const job_keys[] = {
        "name", "description", "plugin", "schedule", "timezone", "enabled", "singleton",
        "timeout", "retry", "run_on_startup", "catch_up", "params", "limits",
        "command", "shell", "working_directory", "on_failure", "on_success",
        "user", "group", "environment", "environment_file", "credentials", "overlap", "random_delay",
        "misfire_threshold", "isolation", "workers",
};
enum { J_NAME, J_DESCRIPTION, J_PLUGIN, J_SCHEDULE, J_TIMEZONE, J_ENABLED, J_SINGLETON,
       J_TIMEOUT, J_RETRY, J_RUN_ON_STARTUP, J_CATCH_UP, J_PARAMS, J_LIMITS,
       J_COMMAND, J_SHELL, J_WORKING_DIRECTORY, J_ON_FAILURE, J_ON_SUCCESS,
       J_USER, J_GROUP, J_ENVIRONMENT, J_ENVIRONMENT_FILE, J_CREDENTIALS, J_OVERLAP, J_RANDOM_DELAY,
       J_MISFIRE_THRESHOLD, J_ISOLATION, J_WORKERS };

static const char *const limits_keys[] = { "address_space", "cpu", "open_files", "tasks" };
enum { L_ADDRESS_SPACE, L_CPU, L_OPEN_FILES, L_TASKS };

static const char *const retry_keys[] = { "attempts", "backoff", "max_backoff" };
enum { R_ATTEMPTS, R_BACKOFF, R_MAX_BACKOFF };

static size_t name_hash(const char *s) {
        size_t h = 14695981039346656037ULL;
        for (; *s; s++)
                h = (h ^ (unsigned char) *s) * 1099511628211ULL;
        return h;
}

/* The slot of the job already named like J, or NULL after remembering J's name and position.
 * On -ENOMEM sets *ret_err. */
static const struct name_slot *names_claim(loader *l, const job_def *j, int *ret_err) {
        if ((l->n_names + 1) * 2 > l->names_cap) {
                size_t cap = l->names_cap ? l->names_cap * 2 : 256;
                struct name_slot *t = calloc(cap, sizeof(struct name_slot));
                if (!t) {
                        *ret_err = -ENOMEM;
                        return NULL;
                }
                for (size_t i = 0; i < l->names_cap; i++) {
                        if (!l->names[i].name)
                                continue;
                        size_t k = name_hash(l->names[i].name) & (cap - 1);
                        while (t[k].name)
                                k = (k + 1) & (cap - 1);
                        t[k] = l->names[i];
                }
                free(l->names);
                l->names = t;
                l->names_cap = cap;
        }
        size_t k = name_hash(j->name) & (l->names_cap - 1);
        for (; l->names[k].name; k = (k + 1) & (l->names_cap - 1))
                if (streq(l->names[k].name, j->name))
                        return &l->names[k];
        char *n = strdup(j->name);
        if (!n) {
                *ret_err = -ENOMEM;
                return NULL;
        }
        l->names[k] = (struct name_slot) { .name = n, .file = j->file, .line = j->line, .column = j->column };
        l->n_names++;
        return NULL;
}

/* ---- plugins --------------------------------------------------------------------------- */

static plugin_slot *plugin_slot_get(loader *l, const char *path) {
        struct stat st;

        for (size_t i = 0; i < l->n_plugins; i++)
                if (streq(l->plugins[i].path, path))
                        return &l->plugins[i];

        plugin_slot *n = realloc(l->plugins, (l->n_plugins + 1) * sizeof(plugin_slot));
        if (!n)
                return NULL;
        l->plugins = n;
        plugin_slot *slot = &n[l->n_plugins];
        *slot = (plugin_slot) { .path = strdup(path) };
        if (!slot->path)
                return NULL;
        l->n_plugins++;
        if (stat(path, &st) < 0)
                slot->stat_errno = errno;
        else
                slot->regular = S_ISREG(st.st_mode);
        return slot;
}

static void plugin_slot_load(loader *l, plugin_slot *slot) {
        if (slot->load_tried)
                return;
        slot->load_tried = true;
        int r = plugin_load(slot->path, &slot->plugin, &slot->error);
        if (r == -ENOMEM)
                loader_oom(l);
        else if (r < 0 && !slot->error && asprintf(&slot->error, "plugin %s: cannot be loaded: %s", slot->path,
                                                   strerror(-r)) < 0)
                slot->error = NULL;
}

static void check_plugin(loader *l, source *s, job_def *j, yaml_node_t *n, const char *job) {
        _cleanup_free_ char *path = NULL, *why = NULL;
        int r = plugin_resolve_path(l->reg->plugin_dir, j->plugin_name, &path, &why);
        if (r == -EINVAL)
                return report_at(l, s, n, job, "%s", why);
        if (r < 0 || !(j->plugin_path = loader_intern(l, path)))
                return loader_oom(l);
        if (l->flags & REGISTRY_IGNORE_PLUGINS)
                return;

        /* one stat() per file, not per job: registries of 100,000 jobs share a few plugins */
        plugin_slot *slot = plugin_slot_get(l, j->plugin_path);
        if (!slot)
                return loader_oom(l);
        if (slot->stat_errno != 0) {
                if (slot->stat_errno == ENOENT)
                        report_at(l, s, n, job, "plugin \"%s\" not found: no file %s; expected a job shared "
                                  "object there (plugin_dir is %s)", j->plugin_name, j->plugin_path,
                                  l->reg->plugin_dir);
                else
                        report_at(l, s, n, job, "plugin \"%s\": cannot access %s: %s", j->plugin_name,
                                  j->plugin_path, strerror(slot->stat_errno));
                return;
        }
        if (!slot->regular) {
                report_at(l, s, n, job, "plugin \"%s\": %s is not a regular file; expected a job shared object",
                          j->plugin_name, j->plugin_path);
                return;
        }
        if (!(l->flags & REGISTRY_LOAD_PLUGINS))
                return;

        plugin_slot_load(l, slot);
        if (!slot->plugin) {
                if (slot->error)
                        report_at(l, s, n, job, "%s", slot->error);
                return;
        }
        j->plugin = plugin_ref(slot->plugin);
}

/* ---- jobs ------------------------------------------------------------------------------ */

job_def *job_def_free(job_def *j) {
        if (!j)
                return NULL;
        if (j->initialized && j->plugin && j->plugin->desc->fini)
                j->plugin->desc->fini(j->userdata);
        plugin_unref(j->plugin);
        free(j->name);
        free(j->description);
        free(j->schedule_expr);
        params_done(&j->params);
        job_chain_done(&j->on_failure);
        job_chain_done(&j->on_success);
        job_def_free_identity(j);
        free(j);
        return NULL;
}

/* Checks NAME against [a-z0-9][a-z0-9-]{0,63}; reports at the offending character. */
static bool check_name(loader *l, source *s, yaml_node_t *n, const char *name) {
        size_t i;

        if (isempty(name)) {
                report_at(l, s, n, NULL, "name: found an empty value, expected a job name matching "
                          "[a-z0-9][a-z0-9-]* (at most %u characters)", JOB_NAME_MAX);
                return false;
        }
        for (i = 0; name[i]; i++) {
                char c = name[i];
                bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (c == '-' && i > 0);
                if (!ok) {
                        loader_report(l, s->file, n->start_mark.line + 1, scalar_column_at(s, n, i), name,
                               "name \"%s\": character '%c' at position %zu is not allowed; expected a name matching "
                               "[a-z0-9][a-z0-9-]* (at most %u characters)",
                               name, c, i + 1, JOB_NAME_MAX);
                        return false;
                }
        }
        if (i > JOB_NAME_MAX) {
                loader_report(l, s->file, n->start_mark.line + 1, scalar_column_at(s, n, JOB_NAME_MAX), name,
                       "name \"%s\" is %zu characters long; expected at most %u", name, i, JOB_NAME_MAX);
                return false;
        }
        return true;
}

static void parse_params(loader *l, source *s, job_def *j, yaml_node_t *map, const char *job) {
        for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
                yaml_node_t *k = node_get(s, p->key), *v = node_get(s, p->value);
                int r;

                if (!k || !v)
                        continue;
                if (k->type != YAML_SCALAR_NODE) {
                        report_type(l, s, k, job, "params", "a key name");
                        continue;
                }
                const char *key = node_scalar(k);
                const param *prev = params_find(&j->params, key);
                if (prev) {
                        report_at(l, s, k, job, "params: duplicate key \"%s\" (first given at line %u); expected "
                                  "each key once", key, prev->line);
                        continue;
                }

                unsigned line = (unsigned) v->start_mark.line + 1, col = (unsigned) v->start_mark.column + 1;
                if (v->type == YAML_SCALAR_NODE) {
                        r = params_add_scalar(&j->params, key, node_scalar(v), line, col);
                        if (r < 0)
                                loader_oom(l);
                        continue;
                }
                if (v->type == YAML_MAPPING_NODE) {
                        report_at(l, s, v, job, "params: %s: found a mapping, expected a scalar or a list of "
                                  "scalars", key);
                        continue;
                }

                size_t n = (size_t) (v->data.sequence.items.top - v->data.sequence.items.start), i = 0;
                char **items = calloc(n + 1, sizeof(char *));
                bool ok = true;
                if (!items)
                        return loader_oom(l);
                for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++) {
                        yaml_node_t *e = node_get(s, *it);
                        if (!e)
                                continue;
                        if (e->type != YAML_SCALAR_NODE) {
                                report_at(l, s, e, job, "params: %s: list item %zu is a %s; expected a scalar",
                                          key, i + 1, e->type == YAML_MAPPING_NODE ? "mapping" : "sequence");
                                ok = false;
                                break;
                        }
                        items[i] = strdup(node_scalar(e));
                        if (!items[i]) {
                                loader_oom(l);
                                ok = false;
                                break;
                        }
                        i++;
                }
                if (ok && params_add_list(&j->params, key, items, i, line, col) >= 0)
                        continue;
                if (ok)
                        loader_oom(l);
                for (size_t x = 0; x < i; x++)
                        free(items[x]);
                free(items);
        }
}


static void parse_limits(loader *l, source *s, job_def *j, yaml_node_t *map, const char *job) {
        yaml_node_t *keys[KEYS_MAX], *v[KEYS_MAX];
        unsigned files = 0, tasks = 0;

        mapping_collect(l, s, map, limits_keys, ELEMENTSOF(limits_keys), "limits: ", NULL, job, keys, v);
        if (v[L_ADDRESS_SPACE])
                parse_size(l, s, v[L_ADDRESS_SPACE], job, "limits.address_space", &j->limits.address_space);
        if (v[L_CPU] && parse_duration(l, s, v[L_CPU], job, "limits.cpu", USEC_PER_SEC, &j->limits.cpu))
                j->limits.cpu = (j->limits.cpu + USEC_PER_SEC - 1) / USEC_PER_SEC * USEC_PER_SEC;
        if (v[L_OPEN_FILES]) {
                parse_uint(l, s, v[L_OPEN_FILES], job, "limits.open_files", 16, 1048576, &files);
                j->limits.open_files = files;
        }
        if (v[L_TASKS]) {
                /* the run's main process counts: 1 is a run that may not fork; the top is the
                 * kernel's PID_MAX_LIMIT */
                parse_uint(l, s, v[L_TASKS], job, "limits.tasks", 1, 4194304, &tasks);
                j->limits.tasks = tasks;
        }
}

static void parse_retry(loader *l, source *s, job_def *j, yaml_node_t *map, const char *job) {
        yaml_node_t *keys[KEYS_MAX], *v[KEYS_MAX];
        bool have_backoff = false, have_max = false;

        mapping_collect(l, s, map, retry_keys, ELEMENTSOF(retry_keys), "retry: ", NULL, job, keys, v);
        if (v[R_ATTEMPTS])
                parse_uint(l, s, v[R_ATTEMPTS], job, "retry.attempts", 0, RETRY_ATTEMPTS_MAX, &j->retry.attempts);
        if (v[R_BACKOFF])
                have_backoff = parse_duration(l, s, v[R_BACKOFF], job, "retry.backoff", 0, &j->retry.backoff);
        if (v[R_MAX_BACKOFF])
                have_max = parse_duration(l, s, v[R_MAX_BACKOFF], job, "retry.max_backoff", 0, &j->retry.max_backoff);

        if (have_max && j->retry.max_backoff < j->retry.backoff) {
                char a[DURATION_MAX], b[DURATION_MAX];
                report_at(l, s, v[R_MAX_BACKOFF], job, "retry.max_backoff %s is less than retry.backoff %s; expected "
                          "max_backoff >= backoff", duration_format(j->retry.max_backoff, a, sizeof(a)),
                          duration_format(j->retry.backoff, b, sizeof(b)));
        } else if (have_backoff && !v[R_MAX_BACKOFF])
                /* Only the cap's default gives way: a long backoff with no cap is not an error. */
                j->retry.max_backoff = MAX(j->retry.max_backoff, j->retry.backoff);
}

static void add_job(loader *l, job_def *j) {
        if (l->reg->n_jobs == l->jobs_cap) {
                size_t cap = l->jobs_cap ? l->jobs_cap * 2 : 64;
                job_def **n = realloc(l->reg->jobs, cap * sizeof(job_def *));
                if (!n) {
                        job_def_free(j);
                        return loader_oom(l);
                }
                l->reg->jobs = n;
                l->jobs_cap = cap;
        }
        l->reg->jobs[l->reg->n_jobs++] = j;
}

/* A job with its defaults, defined at NODE of S; NULL on OOM. */
static job_def *job_new(loader *l, source *s, const yaml_node_t *node) {
        _cleanup_(job_def_freep) job_def *j = calloc(1, sizeof(job_def));
        if (!j)
                return NULL;
        *j = (job_def) {
                .enabled = true,
                .singleton = true,
                .timeout = USEC_INFINITY,
                .misfire_threshold = MISFIRE_INHERIT,
                .retry = { .attempts = 0, .backoff = REGISTRY_DEFAULT_BACKOFF, .max_backoff = REGISTRY_DEFAULT_MAX_BACKOFF },
                .line = (unsigned) node->start_mark.line + 1,
                .column = (unsigned) node->start_mark.column + 1,
        };
        j->file = loader_intern(l, s->file);
        if (!j->file)
                return NULL;
        return TAKE_PTR(j);
}

/* What messages call the job of mapping NODE: its name, or until that is known its position
 * in the list ("#3", written to LABEL). */
static const char *job_label(source *s, yaml_node_t *node, size_t index, char label[static 32]) {
        for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top; p++) {
                yaml_node_t *k = node_get(s, p->key), *nv = node_get(s, p->value);
                if (k && nv && k->type == YAML_SCALAR_NODE && streq(node_scalar(k), "name") &&
                    nv->type == YAML_SCALAR_NODE && !isempty(node_scalar(nv)))
                        return node_scalar(nv);
        }
        snprintf(label, 32, "#%zu", index + 1);
        return label;
}

static void check_required(loader *l, source *s, yaml_node_t *node, yaml_node_t **v, const char *job) {
        static const struct {
                int key;
                const char *expected;
        } required[] = {
                { J_NAME, "a job name matching [a-z0-9][a-z0-9-]*" },
                { J_PLUGIN, "the job's shared object, e.g. hello.so (or command: to run a program)" },
                { J_SCHEDULE, "a cron expression, a macro like @hourly or \"@every <duration>\"" },
        };
        for (size_t i = 0; i < ELEMENTSOF(required); i++)
                if (!v[required[i].key] && !(required[i].key == J_PLUGIN && v[J_COMMAND]))
                        report_at(l, s, node, job, "missing required key \"%s\"; expected %s",
                                  job_keys[required[i].key], required[i].expected);
}

/* name and description. Returns 0 or -ENOMEM. */
static int parse_identity(loader *l, source *s, job_def *j, yaml_node_t **v, const char *job) {
        if (v[J_NAME]) {
                const char *name = expect_scalar(l, s, v[J_NAME], job, "name", "a job name");
                if (name && check_name(l, s, v[J_NAME], name)) {
                        int err = 0;
                        j->name = strdup(name);
                        if (!j->name)
                                return -ENOMEM;
                        const struct name_slot *o = names_claim(l, j, &err);
                        if (err < 0)
                                return err;
                        if (o)
                                report_at(l, s, v[J_NAME], job, "duplicate job name \"%s\" (first defined at "
                                          "%s:%u:%u); expected unique names", name, o->file, o->line, o->column);
                }
        }

        if (v[J_DESCRIPTION] && !node_is_null(v[J_DESCRIPTION])) {
                const char *d = expect_scalar(l, s, v[J_DESCRIPTION], job, "description", "a one-line text");
                if (d && !(j->description = strdup(d)))
                        return -ENOMEM;
        }
        return 0;
}

/* When it runs: timezone (else scheduler.timezone) and schedule. Returns 0 or -ENOMEM. */
static int parse_when(loader *l, source *s, job_def *j, yaml_node_t **v, const char *job) {
        if (v[J_TIMEZONE]) {
                const char *z = expect_string(l, s, v[J_TIMEZONE], job, "timezone",
                                              "an IANA zone name like Europe/Amsterdam");
                if (z) {
                        if (!(j->timezone = loader_intern(l, z)))
                                return -ENOMEM;
                        (void) load_zone(l, s, v[J_TIMEZONE], job, z, &j->zone);
                }
        } else {
                if (!(j->timezone = loader_intern(l, l->reg->timezone)))
                        return -ENOMEM;
                j->zone = l->reg->zone;
        }

        if (v[J_SCHEDULE]) {
                const char *e = expect_string(l, s, v[J_SCHEDULE], job, "schedule",
                                              "a cron expression, a macro like @hourly or \"@every <duration>\"");
                if (e) {
                        parse_error pe = {};
                        if (!(j->schedule_expr = strdup(e)))
                                return -ENOMEM;
                        if (schedule_parse(e, &j->schedule, &pe) < 0)
                                loader_report(l, s->file, v[J_SCHEDULE]->start_mark.line + 1,
                                              scalar_column_at(s, v[J_SCHEDULE], pe.offset), job,
                                              "schedule \"%s\": %s", e, pe.message);
                }
        }
        return 0;
}

static const char *const overlap_table[_JOB_OVERLAP_MAX] = {
        [JOB_OVERLAP_SKIP] = "skip",
        [JOB_OVERLAP_ALLOW] = "allow",
        [JOB_OVERLAP_QUEUE] = "queue",
        [JOB_OVERLAP_REPLACE] = "replace",
};

const char *job_overlap_to_string(job_overlap o) {
        return o >= 0 && o < _JOB_OVERLAP_MAX ? overlap_table[o] : NULL;
}

job_overlap job_overlap_from_string(const char *s) {
        for (int i = 0; s && i < _JOB_OVERLAP_MAX; i++)
                if (streq(overlap_table[i], s))
                        return (job_overlap) i;
        return _JOB_OVERLAP_INVALID;
}

static const char *const isolation_table[_JOB_ISOLATION_MAX] = {
        [JOB_ISOLATION_PROCESS] = "process",
        [JOB_ISOLATION_WORKER] = "worker",
};

const char *job_isolation_to_string(job_isolation i) {
        return i >= 0 && i < _JOB_ISOLATION_MAX ? isolation_table[i] : NULL;
}

job_isolation job_isolation_from_string(const char *s) {
        for (int i = 0; s && i < _JOB_ISOLATION_MAX; i++)
                if (streq(isolation_table[i], s))
                        return (job_isolation) i;
        return _JOB_ISOLATION_INVALID;
}

/* isolation: as written, else the plugin's default (after parse_plugin() loaded it); workers:. */
static void parse_isolation(loader *l, source *s, job_def *j, yaml_node_t *isolation, yaml_node_t *workers,
                            const char *job) {
        j->isolation = j->plugin && (j->plugin->flags & SCHED_JOB_FLAG_WORKER_SAFE) ? JOB_ISOLATION_WORKER
                                                                                     : JOB_ISOLATION_PROCESS;
        if (isolation) {
                const char *o = expect_scalar(l, s, isolation, job, "isolation", "process or worker");
                job_isolation v = job_isolation_from_string(o);
                if (o && v < 0)
                        report_at(l, s, isolation, job, "isolation: found \"%s\", expected process (a fresh process per "
                                  "run) or worker (runs one after the other in long-lived worker processes)", o);
                else if (o)
                        j->isolation = v;
        }
        if (workers)
                parse_uint(l, s, workers, job, "workers", 1, WORKERS_MAX, &j->workers);
}

/* overlap:, and singleton: as its older spelling (true = skip, false = allow). */
static void parse_overlap(loader *l, source *s, job_def *j, yaml_node_t *overlap, yaml_node_t *singleton,
                          const char *job) {
        bool single = true;
        if (singleton) {
                parse_bool(l, s, singleton, job, "singleton", &single);
                j->overlap = single ? JOB_OVERLAP_SKIP : JOB_OVERLAP_ALLOW;
        }
        if (overlap) {
                const char *o = expect_scalar(l, s, overlap, job, "overlap", "skip, allow, queue or replace");
                job_overlap v = job_overlap_from_string(o);
                if (o && v < 0)
                        report_at(l, s, overlap, job, "overlap: found \"%s\", expected skip, allow, queue or replace", o);
                else if (o && singleton && (v == JOB_OVERLAP_ALLOW) == single)
                        report_at(l, s, overlap, job, "overlap: %s contradicts singleton: %s (line %u); expected one "
                                  "of the two (singleton: true is overlap: skip, false is allow)", o,
                                  single ? "true" : "false", (unsigned) singleton->start_mark.line + 1);
                else if (o)
                        j->overlap = v;
        }
        /* what the rest of the daemon asks: may two runs of the job overlap? */
        j->singleton = j->overlap != JOB_OVERLAP_ALLOW;
}

/* How runs go: the flags, the timeout, and the retry, limits and params sections. */
static void parse_policy(loader *l, source *s, job_def *j, yaml_node_t **v, const char *job) {
        if (v[J_ENABLED])
                parse_bool(l, s, v[J_ENABLED], job, "enabled", &j->enabled);
        parse_overlap(l, s, j, v[J_OVERLAP], v[J_SINGLETON], job);
        if (v[J_RANDOM_DELAY])
                (void) parse_duration(l, s, v[J_RANDOM_DELAY], job, "random_delay", 0, &j->random_delay);
        if (v[J_MISFIRE_THRESHOLD])
                (void) parse_misfire_threshold(l, s, v[J_MISFIRE_THRESHOLD], job, "misfire_threshold",
                                               &j->misfire_threshold);
        if (v[J_RUN_ON_STARTUP])
                parse_bool(l, s, v[J_RUN_ON_STARTUP], job, "run_on_startup", &j->run_on_startup);
        if (v[J_CATCH_UP])
                parse_bool(l, s, v[J_CATCH_UP], job, "catch_up", &j->catch_up);
        if (v[J_TIMEOUT])
                (void) parse_duration(l, s, v[J_TIMEOUT], job, "timeout", 1, &j->timeout);
        if (v[J_RETRY] && !node_is_null(v[J_RETRY]) &&
            expect_container(l, s, v[J_RETRY], YAML_MAPPING_NODE, job, "retry",
                             "a mapping with attempts, backoff, max_backoff"))
                parse_retry(l, s, j, v[J_RETRY], job);
        if (v[J_LIMITS] && !node_is_null(v[J_LIMITS]) &&
            expect_container(l, s, v[J_LIMITS], YAML_MAPPING_NODE, job, "limits",
                             "a mapping of address_space, cpu, open_files, tasks"))
                parse_limits(l, s, j, v[J_LIMITS], job);
        if (v[J_PARAMS] && !node_is_null(v[J_PARAMS]) &&
            expect_container(l, s, v[J_PARAMS], YAML_MAPPING_NODE, job, "params", "a mapping of the plugin's params"))
                parse_params(l, s, j, v[J_PARAMS], job);
}

/* The plugin, and its param table applied to the params (at the params key, else at the job).
 * Returns 0 or -ENOMEM. */
static int parse_plugin(loader *l, source *s, job_def *j, yaml_node_t *node, yaml_node_t **keys, yaml_node_t **v,
                        const char *job) {
        if (v[J_PLUGIN]) {
                const char *p = expect_string(l, s, v[J_PLUGIN], job, "plugin",
                                              "the job's shared object, e.g. hello.so");
                if (p) {
                        if (!(j->plugin_name = loader_intern(l, p)))
                                return -ENOMEM;
                        check_plugin(l, s, j, v[J_PLUGIN], job);
                }
        } else if (v[J_COMMAND]) {
                if (!(j->plugin_name = loader_intern(l, EXEC_PLUGIN)))
                        return -ENOMEM;
                check_plugin(l, s, j, v[J_COMMAND], job);
        }

        if (j->plugin && j->plugin->desc->params) {
                yaml_node_t *at = keys[J_PARAMS] ?: node;
                int r = params_apply_table(&j->params, j->plugin->desc->params, s->file,
                                           (unsigned) at->start_mark.line + 1, (unsigned) at->start_mark.column + 1,
                                           job, l->diags, &j->plugin->defaults);
                if (r == -ENOMEM)
                        loader_oom(l);
        }
        return 0;
}

void parse_job(loader *l, source *s, yaml_node_t *node, size_t index) {
        yaml_node_t *keys[KEYS_MAX], *v[KEYS_MAX];
        _cleanup_(job_def_freep) job_def *j = NULL;
        char label[32];
        const char *job;

        if (node->type != YAML_MAPPING_NODE) {
                _cleanup_free_ char *found = node_describe(node);
                if (!found)
                        return loader_oom(l);
                report_at(l, s, node, NULL, "jobs: item %zu: found %s, expected a job (a mapping with name, plugin, "
                          "schedule, ...)", index + 1, found);
                return;
        }

        j = job_new(l, s, node);
        if (!j)
                return loader_oom(l);
        job = job_label(s, node, index, label);
        mapping_collect(l, s, node, job_keys, ELEMENTSOF(job_keys), "", NULL, job, keys, v);
        check_required(l, s, node, v, job);
        /* in this order: messages at one position keep the order they are reported in */
        if (parse_identity(l, s, j, v, job) < 0 || parse_when(l, s, j, v, job) < 0)
                return loader_oom(l);
        parse_policy(l, s, j, v, job);
        if (parse_command(l, s, j, v[J_COMMAND], v[J_SHELL], v[J_WORKING_DIRECTORY], v[J_PLUGIN], job) < 0)
                return loader_oom(l);
        if (v[J_ON_FAILURE])
                parse_chain(l, s, v[J_ON_FAILURE], job, "on_failure", &j->on_failure);
        if (v[J_ON_SUCCESS])
                parse_chain(l, s, v[J_ON_SUCCESS], job, "on_success", &j->on_success);
        parse_job_identity(l, s, j, &(job_identity_nodes) { .job = node, .user = v[J_USER], .group = v[J_GROUP],
                           .environment = v[J_ENVIRONMENT], .environment_file = v[J_ENVIRONMENT_FILE],
                           .credentials = v[J_CREDENTIALS] }, job);
        if (parse_plugin(l, s, j, node, keys, v, job) < 0)
                return loader_oom(l);
        if (v[J_PLUGIN])
                check_job_plugin_owner(l, s, j, v[J_PLUGIN], job);
        parse_isolation(l, s, j, v[J_ISOLATION], v[J_WORKERS], job);
        add_job(l, TAKE_PTR(j));
}

void parse_jobs(loader *l, source *s, yaml_node_t *n) {
        if (node_is_null(n))
                return;
        if (!expect_container(l, s, n, YAML_SEQUENCE_NODE, NULL, "jobs", "a list of jobs (\"- name: ...\")"))
                return;
        size_t i = 0;
        for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++, i++) {
                yaml_node_t *j = node_get(s, *it);
                if (j)
                        parse_job(l, s, j, i);
        }
}

/* Used when a file whose jobs were checked as they came then fails to parse, so that only the
 * YAML error is reported for it, as when a file is parsed whole before its jobs are read. */
void jobs_undo(loader *l, size_t n_diags, size_t n_jobs) {
        registry *reg = l->reg;
        diag_list *d = l->diags;
        int err = 0;

        if (reg->n_jobs == n_jobs && d->n == n_diags)
                return;
        for (size_t i = n_diags; i < d->n; i++) {
                free(d->items[i].file);
                free(d->items[i].job);
                free(d->items[i].message);
        }
        d->n = n_diags;
        for (size_t i = n_jobs; i < reg->n_jobs; i++)
                job_def_free(reg->jobs[i]);
        reg->n_jobs = n_jobs;
        /* the name set cannot forget single names: rebuild it from the jobs that stay */
        for (size_t i = 0; i < l->names_cap; i++) {
                free(l->names[i].name);
                l->names[i] = (struct name_slot) {};
        }
        l->n_names = 0;
        for (size_t i = 0; i < reg->n_jobs && err == 0; i++)
                if (reg->jobs[i]->name)
                        (void) names_claim(l, reg->jobs[i], &err);
        if (err < 0)
                loader_oom(l);
}
