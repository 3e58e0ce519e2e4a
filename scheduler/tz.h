/* SPDX-License-Identifier: MIT */
#pragma once

/* IANA time zones read from the system's tzdata (TZif files under /usr/share/zoneinfo,
 * or $TZDIR). The one place that knows about UTC offsets and DST transitions.
 *
 * Instants here are int64_t seconds since the Unix epoch (UTC). "Local seconds" are a
 * civil time counted as if it were UTC (see civil.h). */

#include <stdbool.h>
#include <stdint.h>

typedef struct tz tz;

/* Loads zone NAME ("Europe/Amsterdam", "UTC", ...). Zones are interned: loading the same
 * name twice returns the same object, which lives until tz_cache_clear(). Names must be
 * relative tzdata paths (no leading '/', no "..", only [A-Za-z0-9/_+-]).
 * Returns 0 and sets *ret, -EINVAL for a malformed name, -ENOENT for an unknown zone,
 * -EBADMSG for a file that is not valid TZif, other -errno on I/O errors. */
int tz_load(const char *name, tz **ret);

/* Frees every interned zone. Pointers from tz_load() become invalid. For tests and exit. */
void tz_cache_clear(void);

/* The name the zone was loaded by. */
const char *tz_name(const tz *z);

/* UTC offset in seconds east of Greenwich in effect at instant T. */
int32_t tz_offset_at(const tz *z, int64_t t);

/* Abbreviation ("CEST", "+0530") in effect at instant T; static storage owned by Z. */
const char *tz_abbrev_at(const tz *z, int64_t t);

/* The first instant > T at which the UTC offset changes, or INT64_MAX if none. */
int64_t tz_next_transition(const tz *z, int64_t t);

typedef enum tz_local_kind {
        TZ_LOCAL_UNIQUE,   /* the local time occurs exactly once */
        TZ_LOCAL_GAP,      /* the local time does not exist (clocks sprang forward over it) */
        TZ_LOCAL_REPEATED, /* the local time occurs twice (clocks fell back over it) */
} tz_local_kind;

/* Maps local seconds LOCAL in zone Z to instants.
 * UNIQUE:   *ret_first = *ret_second = the instant.
 * REPEATED: *ret_first = earlier occurrence, *ret_second = later occurrence.
 * GAP:      *ret_first = *ret_second = the first instant after the gap (the transition).
 * Returns the kind. Never fails. */
tz_local_kind tz_local_to_utc(const tz *z, int64_t local, int64_t *ret_first, int64_t *ret_second);

/* SPEC section 4's rule for turning a configured local time into one instant: a missing
 * time becomes the first instant after the gap, a repeated time its first occurrence. */
int64_t tz_local_to_instant(const tz *z, int64_t local);

/* Local seconds of instant T in zone Z (T + offset). */
static inline int64_t tz_utc_to_local(const tz *z, int64_t t) {
        return t + tz_offset_at(z, t);
}
