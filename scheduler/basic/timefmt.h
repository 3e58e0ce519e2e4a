/* SPDX-License-Identifier: MIT */
#pragma once

/* RFC 3339 timestamps: formatting instants in a zone and parsing what operators type. */

#include <stddef.h>

#include "basic/macro.h"
#include "basic/parse-error.h"
#include "basic/tz.h"

#define TIMEFMT_MAX 40

/* Formats T as RFC 3339 in zone Z with its offset ("2026-03-29T03:00:00+02:00"), or with "Z"
 * when Z is NULL. Sub-second digits (milliseconds) only when MILLIS is true. Returns BUF. */
char *timefmt_rfc3339(usec_t t, const tz *z, bool millis, char *buf, size_t n);

/* Parses "YYYY-MM-DDTHH:MM[:SS[.frac]](Z|±HH:MM)" ('T' may be a space). Without an offset the
 * time is local to LOCAL_ZONE, resolved with SPEC section 4's rule (gap: first instant after;
 * repeated: first occurrence); with LOCAL_ZONE NULL an offset is required.
 * Returns 0 and *ret, or -EINVAL with a message in E. */
int timefmt_parse(const char *s, const tz *local_zone, usec_t *ret, parse_error *e);

/* timefmt_parse(), also telling in *RET_KIND (may be NULL; set only on success) whether an
 * offset-less local time was unique, fell in a gap (moved to the first instant after it) or was
 * repeated (the first occurrence taken); TZ_LOCAL_UNIQUE when the time had an offset. */
int timefmt_parse_local(const char *s, const tz *local_zone, usec_t *ret, tz_local_kind *ret_kind, parse_error *e);
