/* SPDX-License-Identifier: MIT */
#pragma once

/* A job's `params:` mapping: scalars and lists of scalars, with where each came from, and the
 * typed lookups behind the sched_job_param_* accessors of job.h. */

#include <stdbool.h>
#include <stdint.h>

#include <schedulerd/job.h>

#include "basic/diag.h"
#include "basic/macro.h"

typedef struct param {
        char *key;
        bool is_list;
        char *value;  /* scalar value (is_list == false) */
        char **items; /* list items (is_list == true), n_items entries, NULL-terminated */
        size_t n_items;
        unsigned line, column; /* of the value, for error messages; 0 for defaults */
        bool borrowed; /* key and value are the plugin's param table's strings (a default): not freed */
} param;

typedef struct params {
        param *items;
        size_t n;
        /* ITEMS are another's (a plugin's table defaults, shared by every job of it that sets no
         * params): read only, and params_done() leaves them */
        bool shared;
} params;

/* Appends a scalar; -EEXIST if KEY is already present, -ENOMEM. */
int params_add_scalar(params *p, const char *key, const char *value, unsigned line, unsigned column);

/* Appends a list, taking ownership of ITEMS (NULL-terminated, N entries) on success only. */
int params_add_list(params *p, const char *key, char **items, size_t n, unsigned line, unsigned column);

/* Deep copy. */
int params_copy(const params *src, params *ret);

const param *params_find(const params *p, const char *key);

/* Typed lookups: 0 and *ret, -ENOENT when absent, -EINVAL when of another type. */
int params_get_string(const params *p, const char *key, const char **ret);
int params_get_int(const params *p, const char *key, int64_t *ret);
int params_get_bool(const params *p, const char *key, bool *ret);
int params_get_duration(const params *p, const char *key, usec_t *ret);
int params_get_list(const params *p, const char *key, const char *const **ret_items, size_t *ret_n);

/* Checks P against a plugin's option table: unknown keys, values that don't parse as their
 * declared type, missing required keys; adds table defaults for absent keys. Problems go to
 * DIAGS with FILE and JOB. A NULL table accepts anything. A job that sets no params gets the
 * table's defaults from DEFAULTS (the plugin's, built by the first such job; NULL: its own
 * copy) instead of a copy each: 100,000 jobs of a plugin with five params held 28 MB of them.
 * Returns 0, or -EINVAL if any problem was found, or -ENOMEM. */
int params_apply_table(params *p, const sched_job_param *table, const char *file, unsigned line,
                       unsigned column, const char *job, diag_list *diags, params *defaults);

void params_done(params *p);
