/* SPDX-License-Identifier: MIT */
#pragma once

/* Proleptic Gregorian calendar arithmetic on "civil" (wall-clock) date-times, with no
 * time zone attached. Pure functions: no I/O, no clock. */

#include <stdbool.h>
#include <stdint.h>

typedef struct civil {
        int year;   /* e.g. 2026 */
        int month;  /* 1..12 */
        int day;    /* 1..31 */
        int hour;   /* 0..23 */
        int minute; /* 0..59 */
        int second; /* 0..59 */
} civil;

/* Days in MONTH (1..12) of YEAR. */
int civil_days_in_month(int year, int month);

/* True if YEAR is a Gregorian leap year. */
bool civil_is_leap_year(int year);

/* Day of week of the date: 0 = Sunday .. 6 = Saturday. */
int civil_weekday(int year, int month, int day);

/* Seconds of the civil time C counted as if it were UTC ("local seconds"). C must be
 * normalised (fields in range). */
int64_t civil_to_seconds(const civil *c);

/* Inverse of civil_to_seconds(): writes the civil time of local seconds S to *ret. */
void civil_from_seconds(int64_t s, civil *ret);
