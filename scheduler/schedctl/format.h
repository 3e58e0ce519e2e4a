/* SPDX-License-Identifier: MIT */
#pragma once

/* What schedctl prints for people: aligned tables in the style of `systemctl list-timers`,
 * timestamps in a job's zone, relative times ("3d 4h"), and the decision whether to colour. */

#include <stdio.h>

#include "basic/macro.h"
#include "basic/tz.h"

#define FORMAT_TIMESTAMP_MAX 64
#define FORMAT_RELATIVE_MAX 48

/* ANSI SGR sequences for table_add(); only emitted when table_print() is told to colour. */
#define COLOR_RED "\033[0;31m"
#define COLOR_GREEN "\033[0;32m"
#define COLOR_YELLOW "\033[0;33m"
#define COLOR_GREY "\033[0;90m"
#define COLOR_BOLD "\033[1m"
#define COLOR_HEADER "\033[1;4m"
#define COLOR_RESET "\033[0m"

typedef struct table_column {
        const char *header;
        bool right; /* right-aligned (numbers) */
} table_column;

typedef struct table table;

/* A table of the N given columns (the array must outlive the table). NULL on OOM. */
table *table_new(const table_column *columns, size_t n);

/* Accepts NULL; returns NULL. */
table *table_free(table *t);
DEFINE_TRIVIAL_CLEANUP_FUNC(table *, table_free);

/* Appends the next cell, row by row: TEXT (NULL prints "-") in COLOR (an SGR sequence or NULL).
 * TEXT is shown on one line, its control characters made visible. Returns 0 or -ENOMEM. */
int table_add(table *t, const char *text, const char *color);

/* Rows added so far (complete or not). */
size_t table_rows(const table *t);

/* Prints the header and every row to F, each column as wide as its widest cell (by displayed
 * characters, so UTF-8 text aligns), two spaces between columns and no trailing blanks.
 * COLOR: emit the cells' and header's SGR sequences. Returns 0 or -EIO. */
int table_print(const table *t, FILE *f, bool color);

/* Prints S to F with its control characters (but those in KEEP) made visible (basic/escape.h):
 * for anything a job wrote. Cells of a table are escaped by table_add(). Returns 0 or -ENOMEM. */
int print_escaped(FILE *f, const char *s, const char *keep);

/* Whether output to F may be coloured: F is a terminal, NO_COLOR is unset (any value, even
 * empty, disables colour, as no-color.org says) and TERM is not "dumb". */
bool colors_enabled(FILE *f);

/* "Sun 2026-03-29 03:00:00 CEST": T in zone Z (NULL: UTC), as systemctl shows timestamps.
 * Returns BUF. */
char *format_timestamp(usec_t t, const tz *z, char *buf, size_t n);

/* The two largest non-zero units of D, as systemctl does: "3d 4h", "12min 5s", "250ms"
 * (sub-second only below a second), "0" for zero. Returns BUF. */
char *format_relative(usec_t d, char *buf, size_t n);
