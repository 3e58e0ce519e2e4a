/* SPDX-License-Identifier: MIT */
/* Calendar arithmetic on the proleptic Gregorian calendar. The day-count conversions work on
 * "shifted" years that start on March 1st, so the leap day is the last day of the year and
 * month lengths follow a simple linear pattern; a 400-year era holds exactly 146097 days. */

#include <limits.h>

#include "basic/civil.h"

#define DAYS_PER_ERA 146097
/* Days from 0000-03-01 (start of shifted era 0) to 1970-01-01. */
#define EPOCH_SHIFT 719468
#define SECONDS_PER_DAY 86400

/* Floor division, for negative day and second counts. */
static int64_t div_floor(int64_t a, int64_t b) {
        int64_t q = a / b;
        if ((a % b != 0) && ((a < 0) != (b < 0)))
                q--;
        return q;
}

bool civil_is_leap_year(int year) {
        return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

int civil_days_in_month(int year, int month) {
        static const int days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

        if (month < 1 || month > 12)
                return 0;
        if (month == 2 && civil_is_leap_year(year))
                return 29;
        return days[month - 1];
}

int64_t civil_days_from_date(int64_t year, int month, int day) {
        /* January and February belong to the previous shifted year. */
        int64_t y = year - (month <= 2);
        int64_t era = div_floor(y, 400);
        int64_t yoe = y - era * 400;                              /* 0..399 */
        int64_t mp = month > 2 ? month - 3 : month + 9;           /* 0 = March .. 11 = February */
        int64_t doy = (153 * mp + 2) / 5 + (int64_t) day - 1;     /* day of shifted year */
        int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;      /* day of era */

        return era * DAYS_PER_ERA + doe - EPOCH_SHIFT;
}

void civil_date_from_days(int64_t days, int64_t *ret_year, int *ret_month, int *ret_day) {
        int64_t z = days + EPOCH_SHIFT;
        int64_t era = div_floor(z, DAYS_PER_ERA);
        int64_t doe = z - era * DAYS_PER_ERA;                                       /* 0..146096 */
        int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / (DAYS_PER_ERA - 1)) / 365; /* 0..399 */
        int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);                    /* 0..365 */
        int64_t mp = (5 * doy + 2) / 153;                                          /* 0..11 */
        int month = (int) (mp < 10 ? mp + 3 : mp - 9);

        *ret_day = (int) (doy - (153 * mp + 2) / 5 + 1);
        *ret_month = month;
        *ret_year = yoe + era * 400 + (month <= 2);
}

int civil_weekday(int year, int month, int day) {
        /* 1970-01-01 was a Thursday (4). */
        int64_t d = civil_days_from_date(year, month, day);
        return (int) (d - div_floor(d + 4, 7) * 7 + 4);
}

int64_t civil_to_seconds(const civil *c) {
        return civil_days_from_date(c->year, c->month, c->day) * SECONDS_PER_DAY +
               (int64_t) c->hour * 3600 + (int64_t) c->minute * 60 + c->second;
}

void civil_from_seconds(int64_t s, civil *ret) {
        int64_t days = div_floor(s, SECONDS_PER_DAY);
        int64_t rem = s % SECONDS_PER_DAY;
        int64_t year;
        civil c;

        if (rem < 0)
                rem += SECONDS_PER_DAY;
        civil_date_from_days(days, &year, &c.month, &c.day);
        c.year = year > INT_MAX ? INT_MAX : year < INT_MIN ? INT_MIN : (int) year;
        c.hour = (int) (rem / 3600);
        c.minute = (int) (rem / 60 % 60);
        c.second = (int) (rem % 60);
        *ret = c;
}

bool civil_is_valid(const civil *c) {
        return c->month >= 1 && c->month <= 12 &&
               c->day >= 1 && c->day <= civil_days_in_month(c->year, c->month) &&
               c->hour >= 0 && c->hour <= 23 &&
               c->minute >= 0 && c->minute <= 59 &&
               c->second >= 0 && c->second <= 59;
}
