/* SPDX-License-Identifier: MIT */
#pragma once

/* The monitoring day of an azi-3 rule: turns the rule's local start and end times into the
 * session's instants A and B for one local date (SPEC section 4's rule: a local time inside a
 * spring-forward gap becomes the first instant after the gap, a repeated local time its first
 * occurrence), and finds which local date's session an instant belongs to.
 *
 * A session is named by the local date of its start: with start 22:00 and end 06:00, the
 * session of 2026-03-28 runs from 22:00 on the 28th to 06:00 on the 29th. When end <= start
 * (as local clock times), B is on the next date; end == start makes a session of one local day
 * (usually 24 hours, 23 or 25 on DST days), and consecutive sessions then touch: B of one is A
 * of the next. On a DST day A == B is possible (both times inside the same gap); such a session
 * has no instant in [A, B) and is never current. Pure functions: no I/O, no clock. */

#include <stdbool.h>

#include "basic/macro.h"
#include "basic/tz.h"

typedef struct day_rule {
        const tz *zone;
        unsigned start_minute; /* local start, minutes after midnight (0..1439) */
        unsigned end_minute;   /* local end, minutes after midnight (0..1439) */
} day_rule;

typedef struct day_date {
        int year;
        int month; /* 1..12 */
        int day;   /* 1..31 */
} day_date;

#define DAY_DATE_STRING_MAX sizeof("-2147483648-12-31")

/* A and B of the session of local date D. Returns 0, -EINVAL for an invalid rule or date,
 * -ERANGE if an instant would be before the Unix epoch. */
int day_bounds(const day_rule *r, day_date d, usec_t *ret_a, usec_t *ret_b);

/* Which session NOW belongs to. Returns 1 and the date whose [A, B) contains NOW (the session
 * to create or to use), or 0 and the date of the next session to begin (A > NOW) when NOW lies
 * between two sessions; *ret_a and *ret_b (each may be NULL) are that session's bounds.
 * Returns -EINVAL for an invalid rule, -ERANGE near the ends of time. */
int day_find(const day_rule *r, usec_t now, day_date *ret_day, usec_t *ret_a, usec_t *ret_b);

/* The date D days after (D < 0: before) DATE. */
day_date day_date_add(day_date date, int d) _pure_;

/* True if DATE is a real calendar date. */
bool day_date_valid(day_date date) _pure_;

/* Formats DATE as "YYYY-MM-DD" into BUF (DAY_DATE_STRING_MAX bytes). Returns BUF. */
char *day_date_format(day_date date, char buf[static DAY_DATE_STRING_MAX]);

/* Parses "YYYY-MM-DD" (exactly; a real date). Returns 0 or -EINVAL. */
int day_date_parse(const char *s, day_date *ret);
