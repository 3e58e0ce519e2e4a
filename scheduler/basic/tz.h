/* SPDX-License-Identifier: MIT */
#pragma once

/* IANA time zones read from the system's tzdata (TZif files under /usr/share/zoneinfo,
 * or $TZDIR). The one place that knows about UTC offsets and DST transitions.
 *
 * Instants here are int64_t seconds since the Unix epoch (UTC). "Local seconds" are a
 * civil time counted as if it were UTC (see civil.h). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "basic/macro.h"

typedef struct tz tz;

/* Loads zone NAME ("Europe/Amsterdam", "UTC", ...). Zones are interned: loading the same
 * name twice returns the same object, which lives until tz_cache_clear(). Names must be
 * relative tzdata paths (no leading '/', no "..", only [A-Za-z0-9/_+-]).
 * Returns 0 and sets *ret, -EINVAL for a malformed name, -ENOENT for an unknown zone,
 * -EBADMSG for a file that is not valid TZif, other -errno on I/O errors. */
int tz_load(const char *name, tz **ret);

/* Frees every interned zone. Pointers from tz_load() become invalid. For tests and exit. */
void tz_cache_clear(void);

/* Builds a zone, not interned, from the TZif image DATA of SIZE bytes (versions 1 to 4; the
 * 64-bit data and the POSIX TZ footer are used when present). NAME is only recorded.
 * Returns 0 and sets *ret, -EBADMSG if DATA is not valid TZif, -EOPNOTSUPP for files with
 * leap-second records ("right/" zones), -ENOMEM. Free with tz_free(). */
int tz_new_from_tzif(const char *name, const void *data, size_t size, tz **ret);

/* Builds a zone, not interned, from a POSIX TZ string alone ("CET-1CEST,M3.5.0,M10.5.0/3",
 * "<+0530>-5:30"; the Jn, n and Mm.w.d date forms and hours -167..167 are accepted).
 * Returns 0 and sets *ret, -EINVAL if SPEC is not a valid TZ string, -ENOMEM.
 * Free with tz_free(). */
int tz_new_from_posix(const char *spec, tz **ret);

/* Frees a zone made by tz_new_from_tzif() or tz_new_from_posix() (never one from tz_load()).
 * Accepts NULL; returns NULL. */
tz *tz_free(tz *z);
DEFINE_TRIVIAL_CLEANUP_FUNC(tz *, tz_free);

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
 * REPEATED: *ret_first = earlier occurrence, *ret_second = later occurrence (the earliest
 *           and the latest, should a local time ever occur more than twice).
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
