/* SPDX-License-Identifier: MIT */
#pragma once

/* A job's environment: `environment:` (a mapping) and `environment_file:` (KEY=VALUE lines),
 * checked when the registry is read and set in the run's child (job_identity_enter()). */

#include <stdbool.h>
#include <stddef.h>

/* Whether KEY is an environment variable name: [A-Za-z_][A-Za-z0-9_]*. */
bool env_name_is_valid(const char *key);

/* Pure: one line of an environment file. Blank lines and lines starting with '#' (after
 * blanks) give 0; "KEY=VALUE" or "export KEY=VALUE" gives 1 with *RET_ASSIGNMENT (malloc'ed)
 * "KEY=VALUE", the value's surrounding blanks dropped and one pair of matching single or double
 * quotes removed. -EINVAL with *RET_COLUMN (1-based) and *RET_WHY (static text) for anything
 * else; -ENOMEM. */
int env_file_parse_line(const char *line, char **ret_assignment, unsigned *ret_column, const char **ret_why);

/* Appends "KEY=VALUE" (taken over) to the array *VARS of *N, replacing an earlier assignment of
 * the same KEY so the last one wins. -ENOMEM (then ASSIGNMENT is freed). */
int env_list_put(char ***vars, size_t *n, char *assignment);
