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

/* Inverse of civil_to_seconds(): writes the civil time of local seconds S to *ret.
 * Years outside the range of int are clamped to INT_MIN / INT_MAX. */
void civil_from_seconds(int64_t s, civil *ret);

/* Days since 1970-01-01 of the date YEAR-MONTH-DAY (MONTH 1..12; DAY may run past the end of
 * the month or be < 1, the result is then simply offset by that many days). Valid for any
 * |YEAR| <= 2^40. */
int64_t civil_days_from_date(int64_t year, int month, int day);

/* Inverse of civil_days_from_date() for a normalised date. */
void civil_date_from_days(int64_t days, int64_t *ret_year, int *ret_month, int *ret_day);

/* True if every field of C is in range (month 1..12, day within the month, hour 0..23,
 * minute and second 0..59). */
bool civil_is_valid(const civil *c);
