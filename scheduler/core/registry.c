/* SPDX-License-Identifier: MIT */
#include <glob.h>
#include <limits.h>
#include <stdarg.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <yaml.h>

#include "basic/duration.h"
#include "basic/trust.h"
#include "core/registry.h"

#ifndef LOCALSTATEDIR
#define LOCALSTATEDIR "/var"
#endif
#ifndef RUNSTATEDIR
#define RUNSTATEDIR "/run"
#endif
#ifndef PLUGINDIR
#define PLUGINDIR "/usr/lib/schedulerd/jobs"
#endif

/* A registry is written by people; anything bigger than this is a mistake, not a registry. */
#define REGISTRY_FILE_MAX (16U * 1024U * 1024U)
#define JOB_NAME_MAX 64U
#define MAX_CONCURRENT_MAX 10000U
#define RETRY_ATTEMPTS_MAX 100U
#define HISTORY_MAX_RUNS_MAX 100000000U

static const char *const top_keys[] = { "scheduler", "jobs" };
static const char *const dropin_keys[] = { "jobs" };
enum { TOP_SCHEDULER, TOP_JOBS };

static const char *const scheduler_keys[] = {
        "state_dir", "plugin_dir", "control_socket", "admin_group", "timezone",
        "max_concurrent", "shutdown_grace", "history", "include",
};
enum { S_STATE_DIR, S_PLUGIN_DIR, S_CONTROL_SOCKET, S_ADMIN_GROUP, S_TIMEZONE,
       S_MAX_CONCURRENT, S_SHUTDOWN_GRACE, S_HISTORY, S_INCLUDE };

static const char *const history_keys[] = { "retention", "max_runs_per_job" };
enum { H_RETENTION, H_MAX_RUNS };

static const char *const job_keys[] = {
        "name", "description", "plugin", "schedule", "timezone", "enabled", "singleton",
        "timeout", "retry", "run_on_startup", "catch_up", "params", "limits",
};
enum { J_NAME, J_DESCRIPTION, J_PLUGIN, J_SCHEDULE, J_TIMEZONE, J_ENABLED, J_SINGLETON,
       J_TIMEOUT, J_RETRY, J_RUN_ON_STARTUP, J_CATCH_UP, J_PARAMS, J_LIMITS };

static const char *const limits_keys[] = { "address_space", "cpu", "open_files" };
enum { L_ADDRESS_SPACE, L_CPU, L_OPEN_FILES };

static const char *const retry_keys[] = { "attempts", "backoff", "max_backoff" };
enum { R_ATTEMPTS, R_BACKOFF, R_MAX_BACKOFF };

#define KEYS_MAX 13

/* A plugin file looked at, and loaded (or found unloadable), once per path and shared by every
 * job naming it. */
typedef struct plugin_slot {
        char *path;
        int stat_errno;  /* of stat(path), 0 if it worked */
        bool regular;    /* a regular file */
        bool load_tried;
        plugin *plugin;  /* NULL when not loaded or loading failed */
        char *error;
} plugin_slot;

/* An anchor (&name) of the document being composed. */
typedef struct anchor {
        char *name;
        int id; /* its node */
} anchor;

/* One YAML file being read. The document is composed from libyaml's events (see source_load())
 * into DOC, whose nodes this file owns. */
typedef struct source {
        const char *file; /* the name diagnostics use */
        char *text;
        size_t size;
        yaml_document_t doc;
        bool have_doc;
        bool main_file;
        anchor *anchors;
        size_t n_anchors;
        int jobs_id;       /* the jobs list whose items were checked as they came, 0 if none */
        size_t jobs_index; /* items of it so far */
} source;

/* A name taken, and where: copies, so the set never points into a job freed on an error path. */
struct name_slot {
        char *name; /* NULL: empty slot */
        const char *file; /* interned in the registry */
        unsigned line, column;
};

typedef struct loader {
        registry *reg;
        registry_flags flags;
        diag_list *diags;
        char *base_dir;     /* directory of the main file, as written (for includes) */
        char *base_dir_abs; /* the same, absolute (for directories the daemon keeps using) */
        plugin_slot *plugins;
        size_t n_plugins;
        size_t jobs_cap; /* of reg->jobs */
        const char *path; /* the main file */
        const registry_overrides *overrides;
        bool scheduler_done; /* the scheduler section is parsed and the overrides applied */
        /* open-addressing set of the jobs named so far, so duplicate names are found in O(1):
         * registries of 100,000 jobs exist */
        struct name_slot *names;
        size_t names_cap, n_names;
        int error; /* first -ENOMEM or similar hard failure */
} loader;

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

/* The registry's copy of S, made on first use; NULL on OOM. Searched newest first: jobs next
 * to each other tend to share their strings. */
static const char *intern(loader *l, const char *s) {
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

static void report(loader *l, const char *file, unsigned line, unsigned column, const char *job, const char *fmt,
                   ...) _printf_(6, 7);
static void report(loader *l, const char *file, unsigned line, unsigned column, const char *job, const char *fmt,
                   ...) {
        _cleanup_free_ char *msg = NULL;
        va_list ap;

        va_start(ap, fmt);
        int r = vasprintf(&msg, fmt, ap);
        va_end(ap);
        if (r < 0 || diag_add(l->diags, file, line, column, job, "%s", msg) < 0)
                l->error = l->error ?: -ENOMEM;
}

#define report_at(l, s, node, job, ...) \
        report((l), (s)->file, (unsigned) (node)->start_mark.line + 1, (unsigned) (node)->start_mark.column + 1, \
               (job), __VA_ARGS__)

static void oom(loader *l) {
        l->error = l->error ?: -ENOMEM;
}

/* Checks run key by key, not in file order; sort what one file produced by position so an
 * operator reads it top to bottom. Stable, so messages at one position keep their order. */
static void sort_diags(diag_list *d, size_t from) {
        for (size_t i = from + 1; i < d->n; i++) {
                diag x = d->items[i];
                size_t j = i;
                while (j > from && (d->items[j - 1].line > x.line ||
                                    (d->items[j - 1].line == x.line && d->items[j - 1].column > x.column))) {
                        d->items[j] = d->items[j - 1];
                        j--;
                }
                d->items[j] = x;
        }
}

/* ---- node helpers ---------------------------------------------------------------------- */

static yaml_node_t *node_get(source *s, int id) {
        return yaml_document_get_node(&s->doc, id);
}

static const char *scalar(const yaml_node_t *n) {
        return (const char *) n->data.scalar.value;
}

/* An empty plain value ("key:" with nothing after it), or an explicit null. */
static bool node_is_null(const yaml_node_t *n) {
        if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
                return false;
        const char *v = scalar(n);
        return streq(v, "") || streq(v, "~") || streq(v, "null") || streq(v, "Null") || streq(v, "NULL");
}

/* "a mapping", "a sequence" or the quoted scalar, for "found ..." in messages. */
static char *node_describe(const yaml_node_t *n) {
        char *s = NULL;

        switch (n->type) {
        case YAML_MAPPING_NODE:
                return strdup("a mapping");
        case YAML_SEQUENCE_NODE:
                return strdup("a sequence");
        case YAML_SCALAR_NODE:
                if (node_is_null(n))
                        return strdup("an empty value");
                if (asprintf(&s, "\"%s\"", scalar(n)) < 0)
                        return NULL;
                return s;
        default:
                return strdup("nothing");
        }
}

static void report_type(loader *l, source *s, const yaml_node_t *n, const char *job, const char *what,
                        const char *expected) {
        _cleanup_free_ char *found = node_describe(n);
        if (!found)
                return oom(l);
        report_at(l, s, n, job, "%s: found %s, expected %s", what, found, expected);
}

/* Whether the scalar's text is, byte for byte, in the file at its mark on one line, so that an
 * offset into its value is also an offset into the line (plain, or quoted without escapes). */
static size_t utf8_chars(const char *p, size_t n) {
        size_t c = 0;
        for (size_t i = 0; i < n && p[i]; i++)
                c += ((unsigned char) p[i] & 0xC0) != 0x80;
        return c;
}

static unsigned scalar_column_at(source *s, const yaml_node_t *n, size_t offset) {
        unsigned col = (unsigned) n->start_mark.column + 1;
        const char *v = scalar(n);
        size_t len = n->data.scalar.length, lead;
        yaml_scalar_style_t style = n->data.scalar.style;

        if (n->start_mark.line != n->end_mark.line || offset > len)
                return col;
        if (style == YAML_PLAIN_SCALAR_STYLE)
                lead = 0;
        else if (style == YAML_SINGLE_QUOTED_SCALAR_STYLE || style == YAML_DOUBLE_QUOTED_SCALAR_STYLE)
                lead = 1;
        else
                return col;

        /* libyaml marks count characters; find the line's byte offset of the mark. */
        size_t pos = 0;
        for (size_t line = 0; line < n->start_mark.line && pos < s->size; pos++)
                if (s->text[pos] == '\n')
                        line++;
        for (size_t c = 0; c < n->start_mark.column && pos < s->size; c++) {
                pos++;
                while (pos < s->size && ((unsigned char) s->text[pos] & 0xC0) == 0x80)
                        pos++;
        }
        if (pos + lead + len > s->size || memcmp(s->text + pos + lead, v, len) != 0)
                return col;
        if (lead && (pos + lead + len >= s->size || s->text[pos + lead + len] != s->text[pos]))
                return col;
        return col + (unsigned) lead + (unsigned) utf8_chars(v, offset);
}

/* Fills VALUES[i] (and KEYS[i]) with the value node of ALLOWED[i] in mapping MAP. Reports keys
 * that are not scalars, unknown keys (listing the allowed ones) and duplicate keys. WHAT
 * prefixes messages ("scheduler: "), NOTE is appended to the unknown-key message. */
static void mapping_collect(loader *l, source *s, yaml_node_t *map, const char *const *allowed, size_t n_allowed,
                            const char *what, const char *note, const char *job, yaml_node_t **keys,
                            yaml_node_t **values) {
        for (size_t i = 0; i < n_allowed; i++)
                keys[i] = values[i] = NULL;

        for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
                yaml_node_t *k = node_get(s, p->key), *v = node_get(s, p->value);
                size_t i;

                if (!k || !v)
                        continue;
                if (k->type != YAML_SCALAR_NODE) {
                        report_at(l, s, k, job, "%sfound a %s as a key, expected a plain key name", what,
                                  k->type == YAML_MAPPING_NODE ? "mapping" : "sequence");
                        continue;
                }
                for (i = 0; i < n_allowed; i++)
                        if (streq(scalar(k), allowed[i]))
                                break;
                if (i == n_allowed) {
                        _cleanup_free_ char *list = NULL;
                        size_t len = 0;
                        FILE *f = open_memstream(&list, &len);
                        if (!f)
                                return oom(l);
                        for (size_t j = 0; j < n_allowed; j++)
                                fprintf(f, "%s%s", j > 0 ? ", " : "", allowed[j]);
                        if (fclose(f) != 0)
                                return oom(l);
                        report_at(l, s, k, job, "%sunknown key \"%s\"; expected %s%s%s", what, scalar(k),
                                  n_allowed > 1 ? "one of " : "", list, note ?: "");
                        continue;
                }
                if (keys[i]) {
                        report_at(l, s, k, job, "%sduplicate key \"%s\" (first given at line %u, column %u); "
                                  "expected each key once", what, scalar(k),
                                  (unsigned) keys[i]->start_mark.line + 1, (unsigned) keys[i]->start_mark.column + 1);
                        continue;
                }
                keys[i] = k;
                values[i] = v;
        }
}

/* Returns the value of a scalar node, or NULL (reported) when N is not a scalar. */
static const char *expect_scalar(loader *l, source *s, yaml_node_t *n, const char *job, const char *what,
                                 const char *expected) {
        if (n->type != YAML_SCALAR_NODE) {
                report_type(l, s, n, job, what, expected);
                return NULL;
        }
        return scalar(n);
}

/* A non-empty string; reported and NULL otherwise. */
static const char *expect_string(loader *l, source *s, yaml_node_t *n, const char *job, const char *what,
                                 const char *expected) {
        const char *v = expect_scalar(l, s, n, job, what, expected);
        if (v && isempty(v)) {
                report_at(l, s, n, job, "%s: found an empty value, expected %s", what, expected);
                return NULL;
        }
        return v;
}

static bool expect_container(loader *l, source *s, yaml_node_t *n, yaml_node_type_t type, const char *job,
                             const char *what, const char *expected) {
        if (n->type == type)
                return true;
        report_type(l, s, n, job, what, expected);
        return false;
}

static void parse_bool(loader *l, source *s, yaml_node_t *n, const char *job, const char *what, bool *ret) {
        static const char *const yes[] = { "true", "yes", "on" }, *const no[] = { "false", "no", "off" };
        const char *v = expect_scalar(l, s, n, job, what, "true or false");

        if (!v)
                return;
        for (size_t i = 0; i < ELEMENTSOF(yes); i++) {
                if (strcasecmp(v, yes[i]) == 0) {
                        *ret = true;
                        return;
                }
                if (strcasecmp(v, no[i]) == 0) {
                        *ret = false;
                        return;
                }
        }
        report_at(l, s, n, job, "%s: found \"%s\", expected a boolean: true/false, yes/no or on/off", what, v);
}

static void parse_uint(loader *l, source *s, yaml_node_t *n, const char *job, const char *what, unsigned min,
                       unsigned max, unsigned *ret) {
        const char *v = expect_scalar(l, s, n, job, what, "an integer");
        unsigned long long x = 0;
        const char *p;

        if (!v)
                return;
        for (p = v; *p >= '0' && *p <= '9'; p++)
                if (x <= UINT_MAX)
                        x = x * 10 + (unsigned) (*p - '0');
        if (p == v || *p) {
                report(l, s->file, n->start_mark.line + 1, scalar_column_at(s, n, (size_t) (p - v)), job,
                       "%s: found \"%s\", expected an integer from %u to %u", what, v, min, max);
                return;
        }
        if (x < min || x > max) {
                report_at(l, s, n, job, "%s: %s is out of range, expected %u-%u", what, v, min, max);
                return;
        }
        *ret = (unsigned) x;
}

/* Durations; MIN_USEC 1 rejects zero. */
static bool parse_duration(loader *l, source *s, yaml_node_t *n, const char *job, const char *what, usec_t min_usec,
                           usec_t *ret) {
        const char *v = expect_scalar(l, s, n, job, what, "a duration like 30s or 1h30m");
        parse_error e = {};
        usec_t u;

        if (!v)
                return false;
        if (duration_parse(v, &u, &e) < 0) {
                report(l, s->file, n->start_mark.line + 1, scalar_column_at(s, n, e.offset), job, "%s \"%s\": %s",
                       what, v, e.message);
                return false;
        }
        if (u < min_usec) {
                report_at(l, s, n, job, "%s: found %s, expected a duration greater than zero", what, v);
                return false;
        }
        *ret = u;
        return true;
}

static int load_zone(loader *l, source *s, yaml_node_t *n, const char *job, const char *name, const tz **ret) {
        tz *z = NULL;
        int r = tz_load(name, &z);

        if (r >= 0) {
                *ret = z;
                return 0;
        }
        if (r == -ENOMEM)
                oom(l);
        else if (r == -ENOENT)
                report_at(l, s, n, job,
                          "unknown time zone \"%s\" (no such file in %s); expected an IANA zone name like "
                          "Europe/Amsterdam or UTC",
                          name, getenv("TZDIR") ?: "/usr/share/zoneinfo");
        else if (r == -EINVAL)
                report_at(l, s, n, job,
                          "time zone \"%s\" is not a zone name; expected an IANA zone name like Europe/Amsterdam "
                          "(letters, digits, '/', '_', '+', '-')",
                          name);
        else if (r == -EBADMSG)
                report_at(l, s, n, job, "time zone \"%s\": the tzdata file in %s is not valid TZif; expected "
                          "a working tzdata installation", name, getenv("TZDIR") ?: "/usr/share/zoneinfo");
        else
                report_at(l, s, n, job, "time zone \"%s\": cannot be read: %s", name, strerror(-r));
        return r;
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
                return oom(l);
        free(*field);
        *field = p;
}

/* ---- files ----------------------------------------------------------------------------- */

static int read_file(const char *path, char **ret, size_t *ret_size) {
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        _cleanup_free_ char *buf = NULL;
        struct stat st;
        size_t n;

        if (!f)
                return -errno;
        if (fstat(fileno(f), &st) < 0)
                return -errno;
        if (S_ISDIR(st.st_mode))
                return -EISDIR;
        if (st.st_size > (off_t) REGISTRY_FILE_MAX)
                return -EFBIG;
        buf = malloc((size_t) st.st_size + 1);
        if (!buf)
                return -ENOMEM;
        n = fread(buf, 1, (size_t) st.st_size + 1, f);
        if (ferror(f))
                return -EIO;
        if (n > (size_t) st.st_size)
                return -EFBIG; /* grew while we read it */
        buf[n] = '\0';
        *ret = TAKE_PTR(buf);
        *ret_size = n;
        return 0;
}

/* Line and column (1-based) of byte OFFSET, for libyaml reader errors that only give an offset. */
static void offset_to_position(const source *s, size_t offset, unsigned *ret_line, unsigned *ret_column) {
        unsigned line = 1, col = 1;
        for (size_t i = 0; i < offset && i < s->size; i++) {
                if (s->text[i] == '\n') {
                        line++;
                        col = 1;
                } else if (((unsigned char) s->text[i] & 0xC0) != 0x80)
                        col++;
        }
        *ret_line = line;
        *ret_column = col;
}

static void report_yaml_error(loader *l, source *s, const yaml_parser_t *p) {
        unsigned line, col;

        if (p->error == YAML_MEMORY_ERROR)
                return oom(l);
        if (p->error == YAML_READER_ERROR) {
                offset_to_position(s, p->problem_offset, &line, &col);
                if (p->problem_value >= 0)
                        report(l, s->file, line, col, NULL, "invalid YAML: %s (byte 0x%02X); expected UTF-8 text",
                               p->problem ?: "unreadable input", (unsigned) p->problem_value);
                else
                        report(l, s->file, line, col, NULL, "invalid YAML: %s; expected UTF-8 text",
                               p->problem ?: "unreadable input");
                return;
        }
        line = (unsigned) p->problem_mark.line + 1;
        col = (unsigned) p->problem_mark.column + 1;
        if (p->context)
                report(l, s->file, line, col, NULL, "invalid YAML: %s (%s at line %u, column %u); expected well-formed YAML",
                       p->problem ?: "syntax error", p->context, (unsigned) p->context_mark.line + 1,
                       (unsigned) p->context_mark.column + 1);
        else
                report(l, s->file, line, col, NULL, "invalid YAML: %s; expected well-formed YAML",
                       p->problem ?: "syntax error");
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
                oom(l);
        else if (r < 0 && !slot->error && asprintf(&slot->error, "plugin %s: cannot be loaded: %s", slot->path,
                                                   strerror(-r)) < 0)
                slot->error = NULL;
}

static void check_plugin(loader *l, source *s, job_def *j, yaml_node_t *n, const char *job) {
        _cleanup_free_ char *path = NULL, *why = NULL;
        int r = plugin_resolve_path(l->reg->plugin_dir, j->plugin_name, &path, &why);
        if (r == -EINVAL)
                return report_at(l, s, n, job, "%s", why);
        if (r < 0 || !(j->plugin_path = intern(l, path)))
                return oom(l);
        if (l->flags & REGISTRY_IGNORE_PLUGINS)
                return;

        /* one stat() per file, not per job: registries of 100,000 jobs share a few plugins */
        plugin_slot *slot = plugin_slot_get(l, j->plugin_path);
        if (!slot)
                return oom(l);
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

static job_def *job_def_free(job_def *j) {
        if (!j)
                return NULL;
        if (j->initialized && j->plugin && j->plugin->desc->fini)
                j->plugin->desc->fini(j->userdata);
        plugin_unref(j->plugin);
        free(j->name);
        free(j->description);
        free(j->schedule_expr);
        params_done(&j->params);
        free(j);
        return NULL;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(job_def *, job_def_free);

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
                        report(l, s->file, n->start_mark.line + 1, scalar_column_at(s, n, i), name,
                               "name \"%s\": character '%c' at position %zu is not allowed; expected a name matching "
                               "[a-z0-9][a-z0-9-]* (at most %u characters)",
                               name, c, i + 1, JOB_NAME_MAX);
                        return false;
                }
        }
        if (i > JOB_NAME_MAX) {
                report(l, s->file, n->start_mark.line + 1, scalar_column_at(s, n, JOB_NAME_MAX), name,
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
                const char *key = scalar(k);
                const param *prev = params_find(&j->params, key);
                if (prev) {
                        report_at(l, s, k, job, "params: duplicate key \"%s\" (first given at line %u); expected "
                                  "each key once", key, prev->line);
                        continue;
                }

                unsigned line = (unsigned) v->start_mark.line + 1, col = (unsigned) v->start_mark.column + 1;
                if (v->type == YAML_SCALAR_NODE) {
                        r = params_add_scalar(&j->params, key, scalar(v), line, col);
                        if (r < 0)
                                oom(l);
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
                        return oom(l);
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
                        items[i] = strdup(scalar(e));
                        if (!items[i]) {
                                oom(l);
                                ok = false;
                                break;
                        }
                        i++;
                }
                if (ok && params_add_list(&j->params, key, items, i, line, col) >= 0)
                        continue;
                if (ok)
                        oom(l);
                for (size_t x = 0; x < i; x++)
                        free(items[x]);
                free(items);
        }
}

/* "512M", "1G", "65536", "64K": bytes, binary multiples. */
static void parse_size(loader *l, source *s, yaml_node_t *n, const char *job, const char *what, uint64_t *ret) {
        const char *v = expect_scalar(l, s, n, job, what, "a size like 512M");
        unsigned long long x = 0;
        const char *p;

        if (!v)
                return;
        for (p = v; *p >= '0' && *p <= '9'; p++) {
                if (x > (UINT64_MAX - 9) / 10) {
                        report_at(l, s, n, job, "%s: %s is too large", what, v);
                        return;
                }
                x = x * 10 + (unsigned) (*p - '0');
        }
        unsigned shift = 0;
        if (p != v && *p && !p[1])
                shift = *p == 'K' || *p == 'k' ? 10 : *p == 'M' ? 20 : *p == 'G' ? 30 : *p == 'T' ? 40 : 64;
        if (p == v || shift == 64 || (*p && p[1]) || x == 0) {
                report(l, s->file, n->start_mark.line + 1, scalar_column_at(s, n, (size_t) (p - v)), job,
                       "%s: found \"%s\", expected a positive size in bytes with an optional K, M, G or T suffix",
                       what, v);
                return;
        }
        if (shift && x > (UINT64_MAX >> shift)) {
                report_at(l, s, n, job, "%s: %s is too large", what, v);
                return;
        }
        *ret = (uint64_t) x << shift;
}

static void parse_limits(loader *l, source *s, job_def *j, yaml_node_t *map, const char *job) {
        yaml_node_t *keys[KEYS_MAX], *v[KEYS_MAX];
        unsigned files = 0;

        mapping_collect(l, s, map, limits_keys, ELEMENTSOF(limits_keys), "limits: ", NULL, job, keys, v);
        if (v[L_ADDRESS_SPACE])
                parse_size(l, s, v[L_ADDRESS_SPACE], job, "limits.address_space", &j->limits.address_space);
        if (v[L_CPU] && parse_duration(l, s, v[L_CPU], job, "limits.cpu", USEC_PER_SEC, &j->limits.cpu))
                j->limits.cpu = (j->limits.cpu + USEC_PER_SEC - 1) / USEC_PER_SEC * USEC_PER_SEC;
        if (v[L_OPEN_FILES]) {
                parse_uint(l, s, v[L_OPEN_FILES], job, "limits.open_files", 16, 1048576, &files);
                j->limits.open_files = files;
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
                        return oom(l);
                }
                l->reg->jobs = n;
                l->jobs_cap = cap;
        }
        l->reg->jobs[l->reg->n_jobs++] = j;
}

static void parse_job(loader *l, source *s, yaml_node_t *node, size_t index) {
        yaml_node_t *keys[KEYS_MAX], *v[KEYS_MAX];
        _cleanup_(job_def_freep) job_def *j = NULL;
        char label[32];
        const char *job;

        if (node->type != YAML_MAPPING_NODE) {
                _cleanup_free_ char *found = node_describe(node);
                if (!found)
                        return oom(l);
                report_at(l, s, node, NULL, "jobs: item %zu: found %s, expected a job (a mapping with name, plugin, "
                          "schedule, ...)", index + 1, found);
                return;
        }

        j = calloc(1, sizeof(job_def));
        if (!j)
                return oom(l);
        *j = (job_def) {
                .enabled = true,
                .singleton = true,
                .timeout = USEC_INFINITY,
                .retry = { .attempts = 0, .backoff = REGISTRY_DEFAULT_BACKOFF, .max_backoff = REGISTRY_DEFAULT_MAX_BACKOFF },
                .line = (unsigned) node->start_mark.line + 1,
                .column = (unsigned) node->start_mark.column + 1,
        };
        j->file = intern(l, s->file);
        if (!j->file)
                return oom(l);

        /* Messages name the job; until its name is known, by its position in the list. */
        snprintf(label, sizeof(label), "#%zu", index + 1);
        job = label;
        for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top; p++) {
                yaml_node_t *k = node_get(s, p->key), *nv = node_get(s, p->value);
                if (k && nv && k->type == YAML_SCALAR_NODE && streq(scalar(k), "name") &&
                    nv->type == YAML_SCALAR_NODE && !isempty(scalar(nv))) {
                        job = scalar(nv);
                        break;
                }
        }

        mapping_collect(l, s, node, job_keys, ELEMENTSOF(job_keys), "", NULL, job, keys, v);

        static const struct {
                int key;
                const char *expected;
        } required[] = {
                { J_NAME, "a job name matching [a-z0-9][a-z0-9-]*" },
                { J_PLUGIN, "the job's shared object, e.g. hello.so" },
                { J_SCHEDULE, "a cron expression, a macro like @hourly or \"@every <duration>\"" },
        };
        for (size_t i = 0; i < ELEMENTSOF(required); i++)
                if (!v[required[i].key])
                        report_at(l, s, node, job, "missing required key \"%s\"; expected %s",
                                  job_keys[required[i].key], required[i].expected);

        if (v[J_NAME]) {
                const char *name = expect_scalar(l, s, v[J_NAME], job, "name", "a job name");
                if (name && check_name(l, s, v[J_NAME], name)) {
                        int err = 0;
                        j->name = strdup(name);
                        if (!j->name)
                                return oom(l);
                        const struct name_slot *o = names_claim(l, j, &err);
                        if (err < 0)
                                return oom(l);
                        if (o)
                                report_at(l, s, v[J_NAME], job, "duplicate job name \"%s\" (first defined at "
                                          "%s:%u:%u); expected unique names", name, o->file, o->line, o->column);
                }
        }

        if (v[J_DESCRIPTION] && !node_is_null(v[J_DESCRIPTION])) {
                const char *d = expect_scalar(l, s, v[J_DESCRIPTION], job, "description", "a one-line text");
                if (d && !(j->description = strdup(d)))
                        return oom(l);
        }

        if (v[J_TIMEZONE]) {
                const char *z = expect_string(l, s, v[J_TIMEZONE], job, "timezone",
                                              "an IANA zone name like Europe/Amsterdam");
                if (z) {
                        if (!(j->timezone = intern(l, z)))
                                return oom(l);
                        (void) load_zone(l, s, v[J_TIMEZONE], job, z, &j->zone);
                }
        } else {
                if (!(j->timezone = intern(l, l->reg->timezone)))
                        return oom(l);
                j->zone = l->reg->zone;
        }

        if (v[J_SCHEDULE]) {
                const char *e = expect_string(l, s, v[J_SCHEDULE], job, "schedule",
                                              "a cron expression, a macro like @hourly or \"@every <duration>\"");
                if (e) {
                        parse_error pe = {};
                        if (!(j->schedule_expr = strdup(e)))
                                return oom(l);
                        if (schedule_parse(e, &j->schedule, &pe) < 0)
                                report(l, s->file, v[J_SCHEDULE]->start_mark.line + 1,
                                       scalar_column_at(s, v[J_SCHEDULE], pe.offset), job, "schedule \"%s\": %s", e,
                                       pe.message);
                }
        }

        if (v[J_ENABLED])
                parse_bool(l, s, v[J_ENABLED], job, "enabled", &j->enabled);
        if (v[J_SINGLETON])
                parse_bool(l, s, v[J_SINGLETON], job, "singleton", &j->singleton);
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
                             "a mapping of address_space, cpu, open_files"))
                parse_limits(l, s, j, v[J_LIMITS], job);
        if (v[J_PARAMS] && !node_is_null(v[J_PARAMS]) &&
            expect_container(l, s, v[J_PARAMS], YAML_MAPPING_NODE, job, "params", "a mapping of the plugin's params"))
                parse_params(l, s, j, v[J_PARAMS], job);

        if (v[J_PLUGIN]) {
                const char *p = expect_string(l, s, v[J_PLUGIN], job, "plugin",
                                              "the job's shared object, e.g. hello.so");
                if (p) {
                        if (!(j->plugin_name = intern(l, p)))
                                return oom(l);
                        check_plugin(l, s, j, v[J_PLUGIN], job);
                }
        }

        if (j->plugin && j->plugin->desc->params) {
                yaml_node_t *at = keys[J_PARAMS] ?: node;
                int r = params_apply_table(&j->params, j->plugin->desc->params, s->file,
                                           (unsigned) at->start_mark.line + 1, (unsigned) at->start_mark.column + 1,
                                           job, l->diags);
                if (r == -ENOMEM)
                        oom(l);
        }

        add_job(l, TAKE_PTR(j));
}

static void parse_jobs(loader *l, source *s, yaml_node_t *n) {
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

/* ---- the scheduler section --------------------------------------------------------------- */

static void parse_history(loader *l, source *s, yaml_node_t *map) {
        yaml_node_t *keys[KEYS_MAX], *v[KEYS_MAX];

        mapping_collect(l, s, map, history_keys, ELEMENTSOF(history_keys), "scheduler.history: ", NULL, NULL, keys, v);
        if (v[H_RETENTION])
                (void) parse_duration(l, s, v[H_RETENTION], NULL, "scheduler.history.retention", 1,
                                      &l->reg->history_retention);
        if (v[H_MAX_RUNS])
                parse_uint(l, s, v[H_MAX_RUNS], NULL, "scheduler.history.max_runs_per_job", 1, HISTORY_MAX_RUNS_MAX,
                           &l->reg->history_max_runs_per_job);
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
                                return oom(l);
                }
        }
        if (v[S_TIMEZONE]) {
                const char *z = expect_string(l, s, v[S_TIMEZONE], NULL, "scheduler.timezone",
                                              "an IANA zone name like Europe/Amsterdam");
                if (z) {
                        free(reg->timezone);
                        if (!(reg->timezone = strdup(z)))
                                return oom(l);
                        reg->zone = NULL;
                        (void) load_zone(l, s, v[S_TIMEZONE], NULL, z, &reg->zone);
                }
        }
        if (v[S_MAX_CONCURRENT])
                parse_uint(l, s, v[S_MAX_CONCURRENT], NULL, "scheduler.max_concurrent", 1, MAX_CONCURRENT_MAX,
                           &reg->max_concurrent);
        if (v[S_SHUTDOWN_GRACE])
                (void) parse_duration(l, s, v[S_SHUTDOWN_GRACE], NULL, "scheduler.shutdown_grace", 0,
                                      &reg->shutdown_grace);
        if (v[S_HISTORY] && !node_is_null(v[S_HISTORY]) &&
            expect_container(l, s, v[S_HISTORY], YAML_MAPPING_NODE, NULL, "scheduler.history",
                             "a mapping with retention, max_runs_per_job"))
                parse_history(l, s, v[S_HISTORY]);
        if (v[S_INCLUDE])
                parse_path(l, s, v[S_INCLUDE], "scheduler.include", "a glob pattern like jobs.d/*.yaml", l->base_dir,
                           &reg->include);
}

/* ---- files and includes ------------------------------------------------------------------ */

static int apply_overrides(registry *reg, const registry_overrides *o);

/* The scheduler section (NULL if none) and the overrides, once: the default time zone and
 * plugin_dir are needed by the jobs. */
static void load_scheduler(loader *l, source *s, yaml_node_t *sched) {
        registry *reg = l->reg;
        tz *z = NULL;
        int r;

        l->scheduler_done = true;
        r = tz_load(reg->timezone, &z);
        if (r < 0)
                report(l, l->path, 0, 0, NULL, "cannot load the default time zone %s: %s; expected tzdata "
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

/* ---- composing ----------------------------------------------------------------------------
 * The document is built from libyaml's events, with the nodes, marks and errors
 * yaml_parser_load() would give, except that each item of the jobs list is checked as soon as
 * it is complete and then freed: the whole tree of a 100,000-job registry took more memory than
 * the registry itself. The jobs list is read this way when nothing it needs can come after it:
 * in a drop-in always, in the main file when the scheduler section came first. */

static void nodes_free(source *s, int from_id) {
        if (!s->doc.nodes.start)
                return;
        for (yaml_node_t *n = s->doc.nodes.start + from_id - 1; n < s->doc.nodes.top; n++) {
                if (n->type == YAML_SCALAR_NODE)
                        free(n->data.scalar.value);
                else if (n->type == YAML_SEQUENCE_NODE)
                        free(n->data.sequence.items.start);
                else if (n->type == YAML_MAPPING_NODE)
                        free(n->data.mapping.pairs.start);
        }
        s->doc.nodes.top = s->doc.nodes.start + from_id - 1;
}

static void source_done(source *s) {
        nodes_free(s, 1);
        free(s->doc.nodes.start);
        s->doc = (yaml_document_t) {};
        s->have_doc = false;
        for (size_t i = 0; i < s->n_anchors; i++)
                free(s->anchors[i].name);
        free(s->anchors);
        s->anchors = NULL;
        s->n_anchors = 0;
        free(s->text);
        s->text = NULL;
}

/* Appends N (whose strings S now owns) and returns its id, or -ENOMEM. */
static int node_push(source *s, const yaml_node_t *n) {
        yaml_document_t *d = &s->doc;
        if (d->nodes.top == d->nodes.end) {
                size_t used = (size_t) (d->nodes.top - d->nodes.start), cap = used ? used * 2 : 64;
                if (cap > INT_MAX)
                        return -ENOMEM;
                yaml_node_t *t = realloc(d->nodes.start, cap * sizeof(yaml_node_t));
                if (!t)
                        return -ENOMEM;
                d->nodes = (typeof(d->nodes)) { .start = t, .top = t + used, .end = t + cap };
        }
        *d->nodes.top++ = *n;
        return (int) (d->nodes.top - d->nodes.start);
}

/* Grows the item or pair array of a container node by one slot; returns it or NULL. */
static void *slot_push(void **start, void **top, void **end, size_t size) {
        size_t used = (size_t) ((char *) *top - (char *) *start) / size;
        if (*top == *end) {
                size_t cap = used ? used * 2 : 4;
                char *t = realloc(*start, cap * size);
                if (!t)
                        return NULL;
                *start = t;
                *end = t + cap * size;
        }
        void *slot = (char *) *start + used * size;
        *top = (char *) slot + size;
        return slot;
}

static int composer_error(yaml_parser_t *p, const char *context, yaml_mark_t context_mark, const char *problem,
                          yaml_mark_t problem_mark) {
        p->error = YAML_COMPOSER_ERROR;
        p->context = context;
        p->context_mark = context_mark;
        p->problem = problem;
        p->problem_mark = problem_mark;
        return -EINVAL;
}

/* Remembers anchor NAME (taken over) for node ID; a second anchor of the same name is an error,
 * as for yaml_parser_load(). */
static int anchor_add(source *s, yaml_parser_t *p, char *name, int id) {
        if (!name)
                return 0;
        for (size_t i = 0; i < s->n_anchors; i++)
                if (streq(s->anchors[i].name, name)) {
                        free(name);
                        return composer_error(p, "found duplicate anchor; first occurence",
                                              s->doc.nodes.start[s->anchors[i].id - 1].start_mark,
                                              "second occurence", s->doc.nodes.start[id - 1].start_mark);
                }
        anchor *t = realloc(s->anchors, (s->n_anchors + 1) * sizeof(anchor));
        if (!t) {
                free(name);
                return -ENOMEM;
        }
        s->anchors = t;
        s->anchors[s->n_anchors++] = (anchor) { .name = name, .id = id };
        return 0;
}

static int next_event(yaml_parser_t *p, yaml_event_t *ev) {
        if (!yaml_parser_parse(p, ev))
                return p->error == YAML_MEMORY_ERROR ? -ENOMEM : -EINVAL;
        return 0;
}

typedef enum compose_role {
        NODE_PLAIN,
        NODE_ROOT,
        NODE_JOBS, /* the jobs list, checked item by item */
} compose_role;

static int compose_node(loader *l, source *s, yaml_parser_t *p, yaml_event_t *ev, compose_role role, int *ret_id);

/* Whether the value of root key K, starting with event EV, is the jobs list to check item by
 * item; in the main file this parses the scheduler section first. */
static bool stream_jobs(loader *l, source *s, int root_id, int key_id, const yaml_event_t *ev) {
        const yaml_node_t *k = &s->doc.nodes.start[key_id - 1];
        if (s->jobs_id || ev->type != YAML_SEQUENCE_START_EVENT || k->type != YAML_SCALAR_NODE ||
            !streq(scalar(k), "jobs"))
                return false;
        if (!s->main_file)
                return true;
        if (l->scheduler_done)
                return false;
        /* the first "jobs" key: anything before it is in the root mapping's pairs already */
        const yaml_node_t *root = &s->doc.nodes.start[root_id - 1];
        for (const yaml_node_pair_t *q = root->data.mapping.pairs.start; q < root->data.mapping.pairs.top; q++) {
                yaml_node_t *qk = node_get(s, q->key);
                if (qk && qk->type == YAML_SCALAR_NODE && streq(scalar(qk), "jobs"))
                        return false;
                if (qk && qk->type == YAML_SCALAR_NODE && streq(scalar(qk), "scheduler")) {
                        load_scheduler(l, s, node_get(s, q->value));
                        return true;
                }
        }
        return false;
}

/* An item of the jobs list is complete: check it, and drop its nodes unless an anchor in it
 * may still be referred to. */
static void stream_job(loader *l, source *s, int id) {
        parse_job(l, s, node_get(s, id), s->jobs_index++);
        for (size_t i = 0; i < s->n_anchors; i++)
                if (s->anchors[i].id >= id)
                        return;
        nodes_free(s, id);
}

static int compose_container(loader *l, source *s, yaml_parser_t *p, yaml_event_t *ev, compose_role role,
                             int *ret_id) {
        bool mapping = ev->type == YAML_MAPPING_START_EVENT;
        yaml_node_t n = {
                .type = mapping ? YAML_MAPPING_NODE : YAML_SEQUENCE_NODE,
                .start_mark = ev->start_mark,
                .end_mark = ev->end_mark,
        };
        char *anchor_name = (char *) (mapping ? ev->data.mapping_start.anchor : ev->data.sequence_start.anchor);
        int id, q;

        if (mapping) {
                n.data.mapping.style = ev->data.mapping_start.style;
                ev->data.mapping_start.anchor = NULL;
        } else {
                n.data.sequence.style = ev->data.sequence_start.style;
                ev->data.sequence_start.anchor = NULL;
        }
        yaml_event_delete(ev);
        id = node_push(s, &n);
        if (id < 0) {
                free(anchor_name);
                return id;
        }
        q = anchor_add(s, p, anchor_name, id);
        if (q < 0)
                return q;
        if (role == NODE_JOBS)
                s->jobs_id = id;

        for (;;) {
                yaml_event_t e;
                int key = 0, value;
                compose_role value_role = NODE_PLAIN;

                q = next_event(p, &e);
                if (q < 0)
                        return q;
                if (e.type == YAML_SEQUENCE_END_EVENT || e.type == YAML_MAPPING_END_EVENT) {
                        s->doc.nodes.start[id - 1].end_mark = e.end_mark;
                        yaml_event_delete(&e);
                        break;
                }
                if (mapping) {
                        q = compose_node(l, s, p, &e, NODE_PLAIN, &key);
                        if (q < 0)
                                return q;
                        q = next_event(p, &e);
                        if (q < 0)
                                return q;
                        if (role == NODE_ROOT && stream_jobs(l, s, id, key, &e))
                                value_role = NODE_JOBS;
                }
                q = compose_node(l, s, p, &e, value_role, &value);
                if (q < 0)
                        return q;
                /* the node may have moved: the node array grows */
                yaml_node_t *self = &s->doc.nodes.start[id - 1];
                if (mapping) {
                        yaml_node_pair_t *slot = slot_push((void **) &self->data.mapping.pairs.start,
                                                           (void **) &self->data.mapping.pairs.top,
                                                           (void **) &self->data.mapping.pairs.end,
                                                           sizeof(yaml_node_pair_t));
                        if (!slot)
                                return -ENOMEM;
                        *slot = (yaml_node_pair_t) { .key = key, .value = value };
                } else if (role == NODE_JOBS)
                        stream_job(l, s, value);
                else {
                        yaml_node_item_t *slot = slot_push((void **) &self->data.sequence.items.start,
                                                           (void **) &self->data.sequence.items.top,
                                                           (void **) &self->data.sequence.items.end,
                                                           sizeof(yaml_node_item_t));
                        if (!slot)
                                return -ENOMEM;
                        *slot = value;
                }
        }
        *ret_id = id;
        return 0;
}

/* Composes the node starting with event EV (consumed) and sets *RET_ID. Returns 0, -EINVAL
 * with P's error fields set, or -ENOMEM. */
static int compose_node(loader *l, source *s, yaml_parser_t *p, yaml_event_t *ev, compose_role role, int *ret_id) {
        int id, q;

        switch (ev->type) {
        case YAML_ALIAS_EVENT:
                for (size_t i = 0; i < s->n_anchors; i++)
                        if (streq(s->anchors[i].name, (char *) ev->data.alias.anchor)) {
                                yaml_event_delete(ev);
                                *ret_id = s->anchors[i].id;
                                return 0;
                        }
                q = composer_error(p, NULL, (yaml_mark_t) {}, "found undefined alias", ev->start_mark);
                yaml_event_delete(ev);
                return q;
        case YAML_SCALAR_EVENT: {
                yaml_node_t n = {
                        .type = YAML_SCALAR_NODE,
                        .data.scalar = {
                                .value = ev->data.scalar.value,
                                .length = ev->data.scalar.length,
                                .style = ev->data.scalar.style,
                        },
                        .start_mark = ev->start_mark,
                        .end_mark = ev->end_mark,
                };
                char *anchor_name = (char *) ev->data.scalar.anchor;
                ev->data.scalar.value = NULL;
                ev->data.scalar.anchor = NULL;
                yaml_event_delete(ev);
                id = node_push(s, &n);
                if (id < 0) {
                        free(n.data.scalar.value);
                        free(anchor_name);
                        return id;
                }
                q = anchor_add(s, p, anchor_name, id);
                if (q < 0)
                        return q;
                *ret_id = id;
                return 0;
        }
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT:
                if (role == NODE_JOBS && ev->type != YAML_SEQUENCE_START_EVENT)
                        role = NODE_PLAIN;
                if (role == NODE_ROOT && ev->type != YAML_MAPPING_START_EVENT)
                        role = NODE_PLAIN;
                return compose_container(l, s, p, ev, role, ret_id);
        default:
                yaml_event_delete(ev);
                return -EINVAL; /* the parser never gives anything else here */
        }
}

/* Composes the next document of P's stream into S, checking jobs items on the way if
 * CHECK_JOBS. Sets *RET_START_MARK to where the document starts. Returns 1 if there was a
 * document, 0 at the end of the stream, -EINVAL (P's error fields say why), -ENOMEM. */
static int compose_document(loader *l, source *s, yaml_parser_t *p, bool check_jobs, yaml_mark_t *ret_start_mark) {
        yaml_event_t ev;
        int q, root;

        q = next_event(p, &ev);
        if (q < 0)
                return q;
        if (ev.type == YAML_STREAM_START_EVENT) {
                yaml_event_delete(&ev);
                q = next_event(p, &ev);
                if (q < 0)
                        return q;
        }
        if (ev.type == YAML_STREAM_END_EVENT || ev.type == YAML_NO_EVENT) { /* NO_EVENT: after the end */
                yaml_event_delete(&ev);
                return 0;
        }
        *ret_start_mark = ev.start_mark;
        yaml_event_delete(&ev); /* DOCUMENT-START */
        q = next_event(p, &ev);
        if (q < 0)
                return q;
        q = compose_node(l, s, p, &ev, check_jobs ? NODE_ROOT : NODE_PLAIN, &root);
        if (q < 0)
                return q;
        q = next_event(p, &ev); /* DOCUMENT-END */
        if (q < 0)
                return q;
        yaml_event_delete(&ev);
        return 1;
}

/* Drops what checking jobs of a file that then failed to parse added, so that only the YAML
 * error is reported for it, as when a file is parsed whole before its jobs are read. */
static void jobs_undo(loader *l, size_t n_diags, size_t n_jobs) {
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
                oom(l);
}

/* Refuses (reports, -EINVAL) a registry file others could have written: basic/trust.h. The
 * registry named on the command line may be a symbolic link and sit in a sticky directory; a
 * drop-in, found by listing its directory, may not. */
static int trust_check_source(loader *l, const char *file, bool main_file) {
        _cleanup_free_ char *why = NULL;
        _cleanup_close_ int fd = -EBADF;
        int r = trust_open_file(file, main_file ? TRUST_FOLLOW | TRUST_STICKY_HOLDER : 0, &fd, &why);
        if (r == -EPERM)
                report(l, file, 0, 0, NULL, "refused: %s", why);
        return r == -EPERM ? -EINVAL : r == -ENOMEM ? r : 0; /* other errors: read_file() says them */
}

/* Reads and parses FILE into S (MAIN_FILE: the registry, else a drop-in). Returns 0 with
 * S->have_doc set (the document may be empty), -EINVAL after reporting a problem, or -errno
 * when the file cannot be read (not reported). The jobs list may have been checked on the way
 * (S->jobs_id); if the file then turns out unusable (a YAML error; for a drop-in also a second
 * document) what that added is undone. */
static int source_load(loader *l, source *s, const char *file, bool main_file) {
        size_t n_diags = l->diags->n, n_jobs = l->reg->n_jobs;
        yaml_parser_t p;
        yaml_mark_t start = {};
        int r;

        *s = (source) { .file = file, .main_file = main_file };
        r = trust_check_source(l, file, main_file);
        if (r < 0)
                return r;
        r = read_file(file, &s->text, &s->size);
        if (r < 0)
                return r;

        if (!yaml_parser_initialize(&p)) {
                oom(l);
                return -ENOMEM;
        }
        yaml_parser_set_input_string(&p, (const unsigned char *) s->text, s->size);
        r = compose_document(l, s, &p, true, &start);
        if (r < 0) {
                jobs_undo(l, n_diags, n_jobs);
                if (r == -ENOMEM)
                        oom(l);
                else
                        report_yaml_error(l, s, &p);
                yaml_parser_delete(&p);
                return r;
        }
        s->have_doc = true;

        /* One document per file: a second one would be silently ignored otherwise. */
        source extra = { .file = file };
        r = compose_document(l, &extra, &p, false, &start);
        if (r != 0 && !main_file)
                jobs_undo(l, n_diags, n_jobs);
        if (r == -ENOMEM)
                oom(l);
        else if (r < 0)
                report_yaml_error(l, s, &p);
        else if (r > 0) {
                report(l, file, (unsigned) start.line + 1, (unsigned) start.column + 1, NULL,
                       "a second YAML document starts here; expected one document per file");
                r = -EINVAL;
        }
        source_done(&extra);
        yaml_parser_delete(&p);
        return r;
}

/* Whether N is the jobs list source_load() already checked. */
static bool jobs_checked(const source *s, const yaml_node_t *n) {
        return s->jobs_id > 0 && n == s->doc.nodes.start + s->jobs_id - 1;
}

static void report_unreadable(loader *l, const char *file, int r) {
        if (r == -ENOMEM)
                return oom(l);
        if (r == -EFBIG)
                report(l, file, 0, 0, NULL, "file is larger than %u MiB; expected a registry file",
                       REGISTRY_FILE_MAX / 1024 / 1024);
        else
                report(l, file, 0, 0, NULL, "cannot read: %s; expected a readable YAML file", strerror(-r));
}

static int strcmp_ptr(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

static void load_includes(loader *l, const char *main_file) {
        struct stat main_st = {}, st;
        glob_t g = {};
        int r;

        if (stat(main_file, &main_st) < 0)
                main_st = (struct stat) {};

        r = glob(l->reg->include, 0, NULL, &g);
        if (r == GLOB_NOSPACE) {
                globfree(&g);
                return oom(l);
        }
        if (r != 0) { /* no matches, or a directory that does not exist: nothing to include */
                globfree(&g);
                return;
        }
        /* By byte order, not locale, so the merge order is the same everywhere. */
        qsort(g.gl_pathv, g.gl_pathc, sizeof(char *), strcmp_ptr);

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
                        report_unreadable(l, file, r);
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
                .shutdown_grace = REGISTRY_DEFAULT_SHUTDOWN_GRACE,
                .history_retention = REGISTRY_DEFAULT_HISTORY_RETENTION,
                .history_max_runs_per_job = REGISTRY_DEFAULT_HISTORY_MAX_RUNS,
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
                report_unreadable(&l, path, r);
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
        free(r->include);
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
