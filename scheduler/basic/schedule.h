/* SPDX-License-Identifier: MIT */
#pragma once

/* Schedules (SPEC section 3 and 4): parsing cron expressions, macros and @every, and
 * computing next fire instants in a time zone with the Vixie/cronie DST rules.
 * Pure logic: no I/O, no clock. */

#include <stdbool.h>
#include <stdint.h>

#include "basic/macro.h"
#include "basic/parse-error.h"
#include "basic/tz.h"

typedef enum schedule_kind {
        SCHEDULE_CRON,  /* wall-clock, evaluated in a time zone */
        SCHEDULE_EVERY, /* @every <duration>: monotonic interval */
} schedule_kind;

typedef struct schedule {
        schedule_kind kind;
        /* SCHEDULE_CRON: bit i set = value i allowed */
        uint64_t seconds;  /* 0..59; 5-field expressions have only bit 0 */
        uint64_t minutes;  /* 0..59 */
        uint32_t hours;    /* 0..23 */
        uint32_t mdays;    /* 1..31 */
        uint16_t months;   /* 1..12 */
        uint8_t wdays;     /* 0..6, Sunday = 0 (7 in input is folded to 0) */
        bool mday_star;    /* day-of-month field begins with '*': unrestricted */
        bool wday_star;    /* day-of-week field begins with '*': unrestricted */
        bool fixed_time;   /* none of seconds, minute, hour fields begins with '*' */
        /* SCHEDULE_EVERY */
        usec_t interval;
} schedule;

/* Parses EXPR: 5-field cron "m h dom mon dow", 6-field "s m h dom mon dow", the macros
 * @yearly @annually @monthly @weekly @daily @midnight @hourly, or "@every <duration>".
 * Fields take '*', numbers, ranges a-b, steps x/n and a-b/n and star-slash-n, comma lists,
 * month names jan..dec and day names sun..sat (case-insensitive); 7 means Sunday, and "sun"
 * closing a range means 7 ("fri-sun"). "a/n" means a-max/n, where max is the field's canonical
 * maximum (6 for day-of-week); a step must lie between 1 and the field's span (60 for minutes).
 * Macros are case-insensitive.
 * An expression that can never fire (e.g. "0 0 30 2 *") is rejected.
 * Returns 0 and fills *ret, or -EINVAL and fills E (may be NULL) with the offset of the
 * offending token and a message naming what was found and what was expected. */
int schedule_parse(const char *expr, schedule *ret, parse_error *e);

/* For a SCHEDULE_CRON schedule: the first fire instant strictly after AFTER (UTC seconds)
 * when evaluated in zone Z, following SPEC section 4:
 *  - fixed-time expressions: a local time in a gap fires once at the first instant after the
 *    gap; a repeated local time fires once, at its first occurrence;
 *  - periodic expressions: follow real time; gap times do not fire, repeated times fire at
 *    both occurrences;
 *  - fires landing on the same instant are one fire.
 * Direct computation (skips non-matching years/months/days/hours), not a scan.
 * Returns 0 and sets *ret, -EINVAL for a non-cron schedule, -ERANGE if no fire exists
 * before year 10000. */
int schedule_next(const schedule *s, const tz *z, int64_t after, int64_t *ret);
