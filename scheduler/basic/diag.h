/* SPDX-License-Identifier: MIT */
#pragma once

/* Diagnostics: errors found in an input file, each with where (file:line:column), which job,
 * and what. Parsers collect them all instead of stopping at the first, so `schedctl check`
 * can show every problem at once. */

#include <stddef.h>

#include "basic/macro.h"

typedef struct diag {
        char *file;    /* may be NULL */
        unsigned line; /* 1-based; 0 = unknown */
        unsigned column; /* 1-based; 0 = unknown */
        char *job;     /* may be NULL */
        char *message;
} diag;

typedef struct diag_list {
        diag *items;
        size_t n;
} diag_list;

/* Appends a diagnostic. FILE and JOB may be NULL. Returns 0 or -ENOMEM. */
int diag_add(diag_list *l, const char *file, unsigned line, unsigned column, const char *job, const char *fmt, ...)
        _printf_(6, 7);

/* Formats D as "file:line:column: job NAME: message" (parts that are unknown are left out).
 * Returns a malloc'ed string or NULL on OOM. */
char *diag_format(const diag *d);

/* Frees every entry; L itself is reset to empty and may be reused. */
void diag_list_clear(diag_list *l);
