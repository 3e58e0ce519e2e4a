/* SPDX-License-Identifier: MIT */
#include <stdio.h>

#include "basic/civil.h"
#include "day.h"

#define SEC_PER_DAY INT64_C(86400)

static int64_t floor_div(int64_t a, int64_t b) {
        int64_t q = a / b;
        return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

bool day_date_valid(day_date date) {
        return date.month >= 1 && date.month <= 12 && date.day >= 1 &&
                date.day <= civil_days_in_month(date.year, date.month) &&
                /* keeps every local-seconds computation here far from overflow */
                date.year > -100000 && date.year < 100000;
}

/* Local seconds of midnight starting DATE. */
static int64_t date_to_local(day_date date) {
        civil c = { .year = date.year, .month = date.month, .day = date.day };
        return civil_to_seconds(&c);
}

static day_date date_from_local(int64_t local) {
        civil c;
        civil_from_seconds(floor_div(local, SEC_PER_DAY) * SEC_PER_DAY, &c);
        return (day_date) { c.year, c.month, c.day };
}

day_date day_date_add(day_date date, int d) {
        return date_from_local(date_to_local(date) + (int64_t) d * SEC_PER_DAY);
}

static bool rule_valid(const day_rule *r) {
        return r && r->zone && r->start_minute < 24 * 60 && r->end_minute < 24 * 60;
}

static int instant_to_usec(int64_t s, usec_t *ret) {
        if (s < 0 || (uint64_t) s > USEC_INFINITY / USEC_PER_SEC - 1)
                return -ERANGE;
        *ret = (usec_t) s * USEC_PER_SEC;
        return 0;
}

int day_bounds(const day_rule *r, day_date d, usec_t *ret_a, usec_t *ret_b) {
        usec_t a, b;
        int k;

        if (!rule_valid(r) || !day_date_valid(d))
                return -EINVAL;

        int64_t midnight = date_to_local(d);
        int64_t start = midnight + (int64_t) r->start_minute * 60;
        int64_t end = midnight + (int64_t) r->end_minute * 60;
        if (r->end_minute <= r->start_minute)
                end += SEC_PER_DAY;

        k = instant_to_usec(tz_local_to_instant(r->zone, start), &a);
        if (k < 0)
                return k;
        k = instant_to_usec(tz_local_to_instant(r->zone, end), &b);
        if (k < 0)
                return k;

        /* Local end is after local start and the mapping is monotonic, so B >= A; keep the
         * invariant explicit for callers that rely on it. */
        if (b < a)
                b = a;

        *ret_a = a;
        *ret_b = b;
        return 0;
}

static void set_found(day_date d, usec_t a, usec_t b, day_date *ret_day, usec_t *ret_a, usec_t *ret_b) {
        *ret_day = d;
        if (ret_a)
                *ret_a = a;
        if (ret_b)
                *ret_b = b;
}

int day_find(const day_rule *r, usec_t now, day_date *ret_day, usec_t *ret_a, usec_t *ret_b) {
        if (!rule_valid(r))
                return -EINVAL;
        if (now / USEC_PER_SEC > (usec_t) INT64_MAX / 2)
                return -ERANGE;

        int64_t now_s = (int64_t) (now / USEC_PER_SEC);
        day_date today = date_from_local(tz_utc_to_local(r->zone, now_s));
        usec_t a, b;
        int k;

        /* A session starts on its own date and lasts at most a local day plus a DST shift, so
         * the one containing NOW started yesterday or today; a zone whose clocks fall back over
         * midnight can make tomorrow's start precede NOW, hence tomorrow too. Sessions do not
         * overlap, so the first match is the only one. */
        for (int off = -1; off <= 1; off++) {
                day_date d = day_date_add(today, off);
                k = day_bounds(r, d, &a, &b);
                if (k < 0)
                        return k;
                if (a <= now && now < b) {
                        set_found(d, a, b, ret_day, ret_a, ret_b);
                        return 1;
                }
        }

        /* Between sessions: the next one normally starts today or tomorrow. A day whose A == B
         * (start and end inside one DST gap) has no session and is skipped; that happens at
         * most once a year, so a few more days always suffice. */
        for (int off = -1; off <= 4; off++) {
                day_date d = day_date_add(today, off);
                k = day_bounds(r, d, &a, &b);
                if (k < 0)
                        return k;
                if (a > now && a < b) {
                        set_found(d, a, b, ret_day, ret_a, ret_b);
                        return 0;
                }
        }
        return -ERANGE;
}

char *day_date_format(day_date date, char buf[static DAY_DATE_STRING_MAX]) {
        snprintf(buf, DAY_DATE_STRING_MAX, "%04d-%02d-%02d", date.year, date.month, date.day);
        return buf;
}

int day_date_parse(const char *s, day_date *ret) {
        int y, m, d, n = 0;

        if (!s)
                return -EINVAL;
        for (int i = 0; i < 10; i++) {
                bool dash = i == 4 || i == 7;
                if (dash ? s[i] != '-' : (s[i] < '0' || s[i] > '9'))
                        return -EINVAL;
        }
        if (s[10] != '\0' || sscanf(s, "%4d-%2d-%2d%n", &y, &m, &d, &n) != 3 || n != 10)
                return -EINVAL;

        day_date date = { y, m, d };
        if (!day_date_valid(date))
                return -EINVAL;
        *ret = date;
        return 0;
}
