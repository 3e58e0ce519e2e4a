/* SPDX-License-Identifier: MIT */
#pragma once

/* What the files of the registry loader share, and nothing else includes:
 *   registry-yaml.c   YAML text to a document of nodes with file:line:column marks, composed
 *                     from libyaml's events (jobs checked item by item), drop-in file globbing
 *   registry-value.c  typed values from nodes: keys of a mapping, booleans, integers,
 *                     durations, sizes, time zones; problems reported where they are
 *   registry-job.c    one job: its keys, checks and defaults, its plugin, unique names
 *   registry.c        the registry: the scheduler section, defaults, overrides, includes, and
 *                     the public API of registry.h */

#include <glob.h>
#include <yaml.h>

#include "basic/diag.h"
#include "core/registry.h"

/* The most keys any mapping of the registry allows (a job's). */
#define KEYS_MAX 40

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
        bool done;       /* the node is complete: an alias inside it would make a cycle */
        uint64_t nodes;  /* nodes it stands for, aliases inside it expanded (saturating) */
        unsigned height; /* levels it spans, aliases inside it expanded */
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
        uint64_t alias_nodes; /* nodes the aliases of this file stand for, so far */
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

/* ---- registry-yaml.c: documents and nodes ------------------------------------------------ */

/* Node ID of S's document, or NULL. */
yaml_node_t *node_get(source *s, int id);
/* The text of scalar node N. */
const char *node_scalar(const yaml_node_t *n);
/* Whether N is an empty plain value ("key:" with nothing after it), or an explicit null. */
bool node_is_null(const yaml_node_t *n);
/* "a mapping", "a sequence" or the quoted scalar, for "found ..." in messages; NULL on OOM. */
char *node_describe(const yaml_node_t *n);
/* The 1-based column of character OFFSET of scalar N's value, when the value is in the file as
 * written on one line; else N's own column. */
unsigned scalar_column_at(source *s, const yaml_node_t *n, size_t offset);

/* Reads and parses FILE into S (MAIN_FILE: the registry, else a drop-in). Returns 0 with
 * S->have_doc set (the document may be empty), -EINVAL after reporting a problem, or -errno
 * when the file cannot be read (not reported: see loader_report_unreadable()). The jobs list
 * may have been checked on the way with parse_job() (S->jobs_id); if the file then turns out
 * unusable (a YAML error; for a drop-in also a second document) jobs_undo() drops what that
 * added. */
int source_load(loader *l, source *s, const char *file, bool main_file);
/* Frees what source_load() put in S; S may be partly set up. */
void source_done(source *s);
/* Whether N is the jobs list source_load() already checked. */
bool jobs_checked(const source *s, const yaml_node_t *n);
/* Reports R, an error source_load() returned without reporting it, for FILE. */
void loader_report_unreadable(loader *l, const char *file, int r);
/* Sets *RET to the files matching PATTERN sorted by byte order (not locale, so the merge order
 * is the same everywhere). Returns 0, -ENOENT when nothing matches (or a directory in it does
 * not exist), -ENOMEM. The caller globfree()s *RET after success. */
int dropins_glob(const char *pattern, glob_t *ret);

/* ---- registry-value.c: values, and problems with them --------------------------------------- */

/* Appends a problem at FILE:LINE:COLUMN (0: the whole file) about JOB (may be NULL) to the
 * loader's diagnostics; out of memory is remembered in l->error. */
void loader_report(loader *l, const char *file, unsigned line, unsigned column, const char *job, const char *fmt,
                   ...) _printf_(6, 7);
#define report_at(l, s, node, job, ...) \
        loader_report((l), (s)->file, (unsigned) (node)->start_mark.line + 1, \
                      (unsigned) (node)->start_mark.column + 1, (job), __VA_ARGS__)
/* Remembers -ENOMEM as the loader's hard failure, unless one is remembered already. */
void loader_oom(loader *l);
/* Sorts D's items from FROM on by position, stably. */
void sort_diags(diag_list *d, size_t from);
/* Reports "WHAT: found <N>, expected EXPECTED". */
void report_type(loader *l, source *s, const yaml_node_t *n, const char *job, const char *what,
                 const char *expected);

/* Fills VALUES[i] (and KEYS[i]) with the value node of ALLOWED[i] in mapping MAP, N_ALLOWED at
 * most KEYS_MAX. Reports keys that are not scalars, unknown keys (listing the allowed ones)
 * and duplicate keys. WHAT prefixes messages ("scheduler: "), NOTE is appended to the
 * unknown-key message. */
void mapping_collect(loader *l, source *s, yaml_node_t *map, const char *const *allowed, size_t n_allowed,
                     const char *what, const char *note, const char *job, yaml_node_t **keys, yaml_node_t **values);

/* The parsers below set *RET only when N holds a valid value, and report otherwise: WHAT names
 * the key in the message, JOB (may be NULL) the job. */

/* The value of a scalar node, or NULL (reported) when N is not a scalar. */
const char *expect_scalar(loader *l, source *s, yaml_node_t *n, const char *job, const char *what,
                          const char *expected);
/* A non-empty string; reported and NULL otherwise. */
const char *expect_string(loader *l, source *s, yaml_node_t *n, const char *job, const char *what,
                          const char *expected);
/* Whether N is a node of TYPE; reported when not. */
bool expect_container(loader *l, source *s, yaml_node_t *n, yaml_node_type_t type, const char *job,
                      const char *what, const char *expected);
/* true/false, yes/no, on/off, any case. */
void parse_bool(loader *l, source *s, yaml_node_t *n, const char *job, const char *what, bool *ret);
/* A decimal integer from MIN to MAX. */
void parse_uint(loader *l, source *s, yaml_node_t *n, const char *job, const char *what, unsigned min,
                unsigned max, unsigned *ret);
/* A duration of at least MIN_USEC (1 rejects zero); returns whether *RET was set. */
bool parse_duration(loader *l, source *s, yaml_node_t *n, const char *job, const char *what, usec_t min_usec,
                    usec_t *ret);
/* misfire_threshold: "auto" (MISFIRE_AUTO) or a duration greater than zero; reports otherwise. */
bool parse_misfire_threshold(loader *l, source *s, yaml_node_t *n, const char *job, const char *what, usec_t *ret);
/* "512M", "1G", "65536", "64K": bytes, binary multiples, greater than zero. */
void parse_size(loader *l, source *s, yaml_node_t *n, const char *job, const char *what, uint64_t *ret);
/* Loads time zone NAME (the value of N) into *RET. Returns 0 or the negative errno of
 * tz_load(), reported. */
int load_zone(loader *l, source *s, yaml_node_t *n, const char *job, const char *name, const tz **ret);

/* ---- registry-job.c: jobs ------------------------------------------------------------------ */

/* Frees a job, calling its plugin's fini if init ran. NULL-tolerant; returns NULL. */
job_def *job_def_free(job_def *j);
DEFINE_TRIVIAL_CLEANUP_FUNC(job_def *, job_def_free);
/* Checks item INDEX (0-based) of a jobs list and appends it to the registry. */
void parse_job(loader *l, source *s, yaml_node_t *node, size_t index);
/* Checks the jobs list N (null: no jobs) item by item. */
void parse_jobs(loader *l, source *s, yaml_node_t *n);
/* Drops the diagnostics after the first N_DIAGS and the jobs after the first N_JOBS, and forgets
 * those jobs' names. */
void jobs_undo(loader *l, size_t n_diags, size_t n_jobs);

/* ---- registry-command.c: command jobs ---------------------------------------------------- */

/* The plugin `command:` stands for. */
#define EXEC_PLUGIN "exec.so"
/* `workers:` (scheduler and job) at most */
#define WORKERS_MAX 1024U

/* `command:` COMMAND, `shell:` SHELL and `working_directory:` WD (each may be NULL) of job J
 * turned into the params of exec.so; PLUGIN is the job's plugin key (NULL: none, then
 * exec.so is the plugin). Reports misuse at the key. Returns 0 or -ENOMEM. */
int parse_command(loader *l, source *s, job_def *j, yaml_node_t *command, yaml_node_t *shell, yaml_node_t *wd,
                  yaml_node_t *plugin_key, const char *job);

/* ---- registry-chain.c: on_failure / on_success --------------------------------------------- */

/* Reads the list of job names N (a name alone is a list of one) of key WHAT into *RET. */
void parse_chain(loader *l, source *s, yaml_node_t *n, const char *job, const char *what, job_chain *ret);
/* Frees the items of C. */
void job_chain_done(job_chain *c);
/* After every file is read: reports chained names that name no job, at their position. */
void check_chains(loader *l);
/* ---- registry-identity.c: whom a job runs as, and with what ---------------------------------- */

/* The nodes of a job's identity keys (NULL: not given) and of the job itself. */
typedef struct job_identity_nodes {
        yaml_node_t *job, *user, *group, *environment, *environment_file, *credentials;
} job_identity_nodes;
/* user/group (else scheduler.default_user) resolved, environment_file read, environment and
 * credentials checked. */
void parse_job_identity(loader *l, source *s, job_def *j, const job_identity_nodes *n, const char *job);
/* Reports a plugin file or directory J's user could write, at PLUGIN_NODE. */
void check_job_plugin_owner(loader *l, source *s, job_def *j, yaml_node_t *plugin_node, const char *job);
/* Frees what parse_job_identity() added to J. */
void job_def_free_identity(job_def *j);

/* ---- registry.c: the registry ---------------------------------------------------------------- */

/* The registry's copy of S, made on first use; NULL on OOM. */
const char *loader_intern(loader *l, const char *s);
/* Parses the scheduler section SCHED (NULL if none) and applies the overrides; once, before
 * any job is checked: jobs need the default time zone and plugin_dir. */
void load_scheduler(loader *l, source *s, yaml_node_t *sched);
