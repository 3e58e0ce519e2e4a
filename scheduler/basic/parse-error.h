/* SPDX-License-Identifier: MIT */
#pragma once

/* Where and why a small parser (schedule, duration, ...) rejected its input. Filled only
 * on failure, so callers can turn it into "file:line:column: message" by adding the
 * offset to the column where the value started. */

#include <errno.h>
#include <stddef.h>
#include <stdio.h>

typedef struct parse_error {
        size_t offset;      /* byte offset into the parsed string where the problem starts */
        char message[256];  /* what was found and what was expected, no trailing period */
} parse_error;

/* printf into E->message and set E->offset; E may be NULL. Returns -EINVAL for convenience. */
int parse_error_set(parse_error *e, size_t offset, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
