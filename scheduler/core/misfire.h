/* SPDX-License-Identifier: MIT */
#pragma once

/* When a fire is too late to start (misfire_threshold), and which instants of a schedule a late
 * daemon has missed. A fire at instant T is in time until its deadline: T + random_delay +
 * misfire_threshold, or with the threshold auto (the default) the job's next instant +
 * random_delay: a fire that could not start before the next one is due is superseded by it.
 * Pure logic: the caller gives the instants and the time. */

#include <stdint.h>

#include "basic/macro.h"

/* misfire_threshold: auto, the default (in time until the job's next instant) */
#define MISFIRE_AUTO 0
/* a job's misfire_threshold when not given: scheduler.misfire_threshold holds */
#define MISFIRE_INHERIT USEC_INFINITY
/* instants looked at per misfire_scan() call at most */
#define MISFIRE_SCAN_MAX 100000

/* Instants of one job recorded as missed together: COUNT of them, FIRST to LAST. */
typedef struct misfire_range {
        usec_t first, last;
        uint64_t count;
        usec_t before_last; /* the instant before LAST, when COUNT >= 2 */
} misfire_range;

/* The deadline of the fire at T whose next instant is NEXT (USEC_INFINITY: none), with
 * THRESHOLD (MISFIRE_AUTO or a duration) and SLACK (the job's random_delay). USEC_INFINITY
 * when it has none (auto, and no next instant), also on overflow. */
usec_t misfire_deadline(usec_t t, usec_t next, usec_t threshold, usec_t slack);

/* The first instant of a schedule strictly after AFTER into *RET; -ERANGE when none, or -errno. */
typedef int (*misfire_next_fn)(const void *userdata, usec_t after, usec_t *ret);

/* From the instant FIRST of a schedule (NEXT gives the ones after it) on: the instants past
 * their deadline at NOW (see misfire_deadline()) go to *RET_MISSED (count 0: none), and
 * *RET_NEXT gets the first one still in time (possibly after NOW; USEC_INFINITY: none left).
 * Returns 1 when it stopped after MISFIRE_SCAN_MAX instants: *RET_NEXT is then the next
 * instant to scan from (itself missed, not counted yet), 0 otherwise, -errno from NEXT. */
int misfire_scan(misfire_next_fn next, const void *userdata, usec_t first, usec_t threshold, usec_t slack, usec_t now,
                 misfire_range *ret_missed, usec_t *ret_next);

/* misfire_scan() for the instants FIRST + k * INTERVAL (INTERVAL > 0), in O(1). */
void misfire_scan_every(usec_t interval, usec_t first, usec_t threshold, usec_t slack, usec_t now,
                        misfire_range *ret_missed, usec_t *ret_next);
