/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>

#include "basic/macro.h"
#include "basic/parse-error.h"

/* Parses a duration: one or more <number><unit> terms, optionally separated by spaces,
 * summed ("250ms", "30s", "5m", "2h", "1d", "1h30m", "1h 30m"). Units: us, ms, s, m, h, d, w.
 * A bare "0" is zero. Rejects empty strings, missing units, unknown units, negative numbers
 * and overflow. Returns 0 and sets *ret, or -EINVAL/-ERANGE and fills E (may be NULL). */
int duration_parse(const char *s, usec_t *ret, parse_error *e);

/* Formats U compactly ("1h30m", "250ms", "0"), exact to the microsecond. Returns BUF. */
char *duration_format(usec_t u, char *buf, size_t n);
#define DURATION_MAX 64
