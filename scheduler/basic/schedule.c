/* SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <inttypes.h>
#include <strings.h>

#include "basic/civil.h"
#include "basic/duration.h"
#include "basic/schedule.h"

/* ---- parsing -------------------------------------------------------------------------- */

typedef struct field_desc {
        const char *name;
        int min, max;        /* the canonical range, what '*' covers */
        int max_input;       /* largest number accepted (7 for Sunday in day-of-week) */
        const char *const *names; /* three-letter names for min, min+1, ... or NULL */
        const char *expected; /* how the valid values read in a message */
} field_desc;

static const char *const month_names[] = { "jan", "feb", "mar", "apr", "may", "jun",
                                           "jul", "aug", "sep", "oct", "nov", "dec", NULL };
static const char *const day_names[] = { "sun", "mon", "tue", "wed", "thu", "fri", "sat", NULL };

enum { F_SECOND, F_MINUTE, F_HOUR, F_MDAY, F_MONTH, F_WDAY, _F_MAX };

static const field_desc fields[_F_MAX] = {
        [F_SECOND] = { "second", 0, 59, 59, NULL, "0-59" },
        [F_MINUTE] = { "minute", 0, 59, 59, NULL, "0-59" },
        [F_HOUR] = { "hour", 0, 23, 23, NULL, "0-23" },
        [F_MDAY] = { "day-of-month", 1, 31, 31, NULL, "1-31" },
        [F_MONTH] = { "month", 1, 12, 12, month_names, "1-12 or jan-dec" },
        [F_WDAY] = { "day-of-week", 0, 6, 7, day_names, "0-7 or sun-sat" },
};

typedef struct field_text {
        const char *s; /* start of the field inside the whole expression */
        size_t len;
} field_text;

/* Reads one value (number or name) at P inside field F. RANGE_END says the value closes a
 * range, where "sun" means 7 so that "fri-sun" reads as Friday to Sunday. */
static int parse_value(const field_desc *f, const char *expr, const char **p, const char *end, bool range_end,
                       int *ret, parse_error *e) {
        const char *start = *p, *q = *p;
        size_t off = (size_t) (start - expr);

        if (q < end && isdigit((unsigned char) *q)) {
                long v = 0;
                while (q < end && isdigit((unsigned char) *q)) {
                        if (v < 100000)
                                v = v * 10 + (*q - '0');
                        q++;
                }
                if (q < end && isalpha((unsigned char) *q)) {
                        while (q < end && isalnum((unsigned char) *q))
                                q++;
                        return parse_error_set(e, off, "%s field: \"%.*s\" is not a valid value, expected %s", f->name,
                                               (int) (q - start), start, f->expected);
                }
                if (v < f->min || v > f->max_input)
                        return parse_error_set(e, off, "%s field: %.*s is out of range, expected %s", f->name,
                                               (int) (q - start), start, f->expected);
                *p = q;
                *ret = (int) v;
                return 0;
        }

        if (q < end && isalpha((unsigned char) *q)) {
                while (q < end && isalnum((unsigned char) *q))
                        q++;
                int len = (int) (q - start);
                if (!f->names)
                        return parse_error_set(e, off, "%s field: \"%.*s\" is not a number, expected %s", f->name, len,
                                               start, f->expected);
                for (int i = 0; f->names[i]; i++)
                        if (len == 3 && strncasecmp(start, f->names[i], 3) == 0) {
                                int v = f->min + i;
                                if (range_end && f == &fields[F_WDAY] && v == 0)
                                        v = 7;
                                *p = q;
                                *ret = v;
                                return 0;
                        }
                return parse_error_set(e, off, "unknown %s name \"%.*s\", expected %s",
                                       f == &fields[F_MONTH] ? "month" : "day", len, start,
                                       f == &fields[F_MONTH] ? "jan-dec" : "sun-sat");
        }

        if (q >= end)
                return parse_error_set(e, off, "%s field: expected a value (%s) at the end of the field", f->name,
                                       f->expected);
        return parse_error_set(e, off, "%s field: unexpected \"%c\", expected a number%s or '*'", f->name, *q,
                               f->names ? ", a name" : "");
}

static int parse_field(const field_desc *f, const char *expr, const field_text *t, uint64_t *ret, parse_error *e) {
        const char *p = t->s, *end = t->s + t->len;
        uint64_t mask = 0;
        int r;

        for (;;) {
                const char *item = p;
                int lo, hi, step = 1;
                bool single = false;

                if (p < end && *p == '*') {
                        lo = f->min;
                        hi = f->max;
                        p++;
                } else {
                        r = parse_value(f, expr, &p, end, false, &lo, e);
                        if (r < 0)
                                return r;
                        if (p < end && *p == '-') {
                                p++;
                                r = parse_value(f, expr, &p, end, true, &hi, e);
                                if (r < 0)
                                        return r;
                                if (hi < lo)
                                        return parse_error_set(e, (size_t) (item - expr),
                                                               "%s field: range %.*s is reversed, expected the smaller value first",
                                                               f->name, (int) (p - item), item);
                        } else {
                                hi = lo;
                                single = true;
                        }
                }

                if (p < end && *p == '/') {
                        const char *sp = ++p;
                        long n = 0;
                        int span = f->max - f->min + 1;
                        if (p >= end || !isdigit((unsigned char) *p))
                                return parse_error_set(e, (size_t) (sp - expr),
                                                       "%s field: expected a step number after '/', found \"%.*s\"",
                                                       f->name, (int) (end - sp), sp);
                        while (p < end && isdigit((unsigned char) *p)) {
                                if (n < 100000)
                                        n = n * 10 + (*p - '0');
                                p++;
                        }
                        if (n == 0)
                                return parse_error_set(e, (size_t) (sp - expr),
                                                       "%s field: step 0 is not allowed, expected a step from 1 to %d",
                                                       f->name, span);
                        if (n > span)
                                return parse_error_set(e, (size_t) (sp - expr),
                                                       "%s field: step %.*s is out of range, expected a step from 1 to %d",
                                                       f->name, (int) (p - sp), sp, span);
                        step = (int) n;
                        /* "a/n" means a-max/n, as in cronie */
                        if (single)
                                hi = MAX(lo, f->max);
                }

                for (int v = lo; v <= hi; v += step)
                        mask |= UINT64_C(1) << v;

                if (p >= end)
                        break;
                if (*p != ',')
                        return parse_error_set(e, (size_t) (p - expr),
                                               "%s field: unexpected \"%c\", expected ',', '-' or '/'", f->name, *p);
                p++;
                if (p >= end)
                        return parse_error_set(e, (size_t) (p - expr),
                                               "%s field: expected a value after ',', found the end of the field",
                                               f->name);
        }

        *ret = mask;
        return 0;
}

static bool is_space(char c) {
        return c == ' ' || c == '\t';
}

static int parse_every(const char *expr, const char *p, schedule *ret, parse_error *e) {
        parse_error de;
        usec_t u;
        int r;

        while (is_space(*p))
                p++;
        size_t base = (size_t) (p - expr);
        if (*p == '\0')
                return parse_error_set(e, base, "@every needs a duration, expected e.g. \"@every 5m\"");

        r = duration_parse(p, &u, &de);
        if (r < 0) {
                if (e) {
                        *e = de;
                        e->offset += base;
                }
                return r;
        }
        if (u == 0)
                return parse_error_set(e, base, "@every interval \"%s\" is zero, expected a duration greater than 0", p);

        *ret = (schedule) { .kind = SCHEDULE_EVERY, .interval = u };
        return 0;
}

static int parse_cron(const char *expr, schedule *ret, parse_error *e);

static int parse_macro(const char *expr, const char *p, schedule *ret, parse_error *e) {
        static const struct {
                const char *name;
                const char *expansion;
        } macros[] = {
                { "@yearly", "0 0 1 1 *" }, { "@annually", "0 0 1 1 *" }, { "@monthly", "0 0 1 * *" },
                { "@weekly", "0 0 * * 0" }, { "@daily", "0 0 * * *" },    { "@midnight", "0 0 * * *" },
                { "@hourly", "0 * * * *" },
        };
        const char *start = p, *q = p;

        while (*q && !is_space(*q))
                q++;
        size_t len = (size_t) (q - start);

        if (len == 6 && strncasecmp(start, "@every", 6) == 0)
                return parse_every(expr, q, ret, e);

        for (size_t i = 0; i < ELEMENTSOF(macros); i++) {
                if (strlen(macros[i].name) != len || strncasecmp(start, macros[i].name, len) != 0)
                        continue;
                while (is_space(*q))
                        q++;
                if (*q)
                        return parse_error_set(e, (size_t) (q - expr),
                                               "unexpected \"%s\" after %s, expected nothing after a macro", q,
                                               macros[i].name);
                return parse_cron(macros[i].expansion, ret, NULL);
        }

        return parse_error_set(e, (size_t) (start - expr),
                               "unknown macro \"%.*s\", expected @yearly, @annually, @monthly, @weekly, @daily, "
                               "@midnight, @hourly or @every <duration>",
                               (int) len, start);
}

/* Whether some selected day of the month exists in some selected month, when the day is
 * decided by the day-of-month field alone (AND semantics). Feb counts 29 days: leap years
 * come, and with them every weekday for Feb 29. */
static int check_can_fire(const char *expr, const field_text *mday_text, const schedule *s, parse_error *e) {
        static const int max_days[13] = { 0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

        if (!s->mday_star && !s->wday_star)
                return 0; /* OR: every selected weekday occurs in every month */

        for (int m = 1; m <= 12; m++) {
                if (!(s->months & (1u << m)))
                        continue;
                for (int d = 1; d <= max_days[m]; d++)
                        if (s->mdays & (1u << d))
                                return 0;
        }

        int first = 1;
        while (!(s->mdays & (1u << first)))
                first++;
        return parse_error_set(e, (size_t) (mday_text->s - expr),
                               "day-of-month field: day %d never occurs in the selected months, so the expression "
                               "can never fire; expected a day that exists in at least one selected month",
                               first);
}

static int parse_cron(const char *expr, schedule *ret, parse_error *e) {
        field_text t[6];
        const char *p = expr;
        size_t n = 0;
        int r;

        for (;;) {
                while (is_space(*p))
                        p++;
                if (*p == '\0')
                        break;
                if (n == 6) {
                        size_t extra = (size_t) (p - expr), total = n;
                        while (*p) {
                                total++;
                                while (*p && !is_space(*p))
                                        p++;
                                while (is_space(*p))
                                        p++;
                        }
                        return parse_error_set(e, extra, "expected 5 or 6 fields, found %zu", total);
                }
                t[n].s = p;
                while (*p && !is_space(*p))
                        p++;
                t[n].len = (size_t) (p - t[n].s);
                n++;
        }
        if (n < 5)
                return parse_error_set(e, (size_t) (p - expr), "expected 5 or 6 fields, found %zu", n);

        /* align to the 6-field layout; 5-field expressions fire at second 0 */
        field_text ft[_F_MAX];
        if (n == 6)
                memcpy(ft, t, sizeof(ft));
        else {
                ft[F_SECOND] = (field_text) { "0", 1 };
                memcpy(ft + 1, t, 5 * sizeof(field_text));
        }

        uint64_t masks[_F_MAX];
        for (int i = 0; i < _F_MAX; i++) {
                /* the implicit "0" is not inside EXPR; it is valid, so no offset is ever computed */
                r = parse_field(&fields[i], n == 6 || i != F_SECOND ? expr : ft[i].s, &ft[i], &masks[i], e);
                if (r < 0)
                        return r;
        }
        if (masks[F_WDAY] & (UINT64_C(1) << 7))
                masks[F_WDAY] = (masks[F_WDAY] | 1) & 0x7f;

        schedule s = {
                .kind = SCHEDULE_CRON,
                .seconds = masks[F_SECOND],
                .minutes = masks[F_MINUTE],
                .hours = (uint32_t) masks[F_HOUR],
                .mdays = (uint32_t) masks[F_MDAY],
                .months = (uint16_t) masks[F_MONTH],
                .wdays = (uint8_t) masks[F_WDAY],
                .mday_star = ft[F_MDAY].s[0] == '*',
                .wday_star = ft[F_WDAY].s[0] == '*',
                .fixed_time = ft[F_SECOND].s[0] != '*' && ft[F_MINUTE].s[0] != '*' && ft[F_HOUR].s[0] != '*',
        };

        r = check_can_fire(expr, &ft[F_MDAY], &s, e);
        if (r < 0)
                return r;

        *ret = s;
        return 0;
}

int schedule_parse(const char *expr, schedule *ret, parse_error *e) {
        const char *p;

        if (!expr)
                return parse_error_set(e, 0, "expected a schedule (5 or 6 cron fields, a macro or @every), found nothing");

        p = expr;
        while (is_space(*p))
                p++;
        if (*p == '\0')
                return parse_error_set(e, 0,
                                       "expected a schedule (5 or 6 cron fields, a macro or @every), found an empty string");
        if (*p == '@')
                return parse_macro(expr, p, ret, e);
        return parse_cron(expr, ret, e);
}

/* ---- evaluation ------------------------------------------------------------------------- */

/* Lowest set bit >= FROM in MASK, or -1. */
static int next_bit(uint64_t mask, int from) {
        if (from >= 64)
                return -1;
        mask &= ~UINT64_C(0) << from;
        return mask ? __builtin_ctzll(mask) : -1;
}

static int first_bit(uint64_t mask) {
        return next_bit(mask, 0);
}

static bool day_matches(const schedule *s, int year, int month, int day) {
        bool dom = s->mdays & (UINT32_C(1) << day);
        bool dow = s->wdays & (1u << civil_weekday(year, month, day));

        /* Vixie: either may match when both are restricted, otherwise both must */
        if (s->mday_star || s->wday_star)
                return dom && dow;
        return dom || dow;
}

#define YEAR_LIMIT 9999

/* The first matching local civil time >= FROM (local seconds). Jumps straight to the next
 * selected month, day, hour, minute and second; the only loop over days is within one
 * month, because the day rule depends on the weekday. Returns 0 or -ERANGE past 9999. */
static int next_local_match(const schedule *s, int64_t from, int64_t *ret) {
        civil c;
        int v;

        civil_from_seconds(from, &c);

        while (c.year <= YEAR_LIMIT) {
                v = next_bit(s->months, c.month);
                if (v < 0) {
                        c = (civil) { .year = c.year + 1, .month = first_bit(s->months), .day = 1 };
                        continue;
                }
                if (v != c.month)
                        c = (civil) { .year = c.year, .month = v, .day = 1 };

                int dim = civil_days_in_month(c.year, c.month);
                int d = c.day;
                while (d <= dim && !day_matches(s, c.year, c.month, d))
                        d++;
                if (d > dim) {
                        c = (civil) { .year = c.year, .month = c.month + 1, .day = 1 };
                        if (c.month > 12)
                                c = (civil) { .year = c.year + 1, .month = 1, .day = 1 };
                        continue;
                }
                if (d != c.day)
                        c = (civil) { .year = c.year, .month = c.month, .day = d };

                v = next_bit(s->hours, c.hour);
                if (v < 0)
                        goto next_day;
                if (v != c.hour) {
                        c.hour = v;
                        c.minute = c.second = 0;
                }
                for (;;) {
                        v = next_bit(s->minutes, c.minute);
                        if (v < 0)
                                goto next_hour;
                        if (v != c.minute) {
                                c.minute = v;
                                c.second = 0;
                        }
                        v = next_bit(s->seconds, c.second);
                        if (v >= 0) {
                                c.second = v;
                                *ret = civil_to_seconds(&c);
                                return 0;
                        }
                        c.minute++;
                        c.second = 0;
                        if (c.minute < 60)
                                continue;
                next_hour:
                        v = next_bit(s->hours, c.hour + 1);
                        if (v < 0)
                                break;
                        c.hour = v;
                        c.minute = c.second = 0;
                }
        next_day:
                c.day++;
                c.hour = c.minute = c.second = 0;
                if (c.day > dim) {
                        c.day = 1;
                        if (++c.month > 12) {
                                c.month = 1;
                                c.year++;
                        }
                }
        }
        return -ERANGE;
}

/* Instants are walked in segments of constant UTC offset [t, next transition). Inside one,
 * local time runs with real time, so the first matching local time maps to the first fire.
 * Between segments sit the DST rules: a spring-forward gap is where fixed-time expressions
 * fire at the transition, and after a fall-back the repeated local times fire again only
 * for periodic expressions. Nothing is scanned: one match search per segment at most, and
 * a search result is reused while it stays ahead of the segment. */
int schedule_next(const schedule *s, const tz *z, int64_t after, int64_t *ret) {
        /* one year past 9999 in seconds, and well inside int64 for offset arithmetic */
        static const int64_t max_instant = INT64_C(253402300799);
        int64_t cached_from = INT64_MIN, cached_match = 0;
        int r;

        if (!s || !z || s->kind != SCHEDULE_CRON)
                return -EINVAL;
        if (after >= max_instant)
                return -ERANGE;

        int64_t t = MAX(after, -max_instant) + 1;

        /* Starting exactly at the end of a gap: the loop below only sees a gap when it crosses
         * the transition, so a fixed time inside this one would be skipped (found by fuzzing). */
        if (s->fixed_time) {
                int32_t off_before = tz_offset_at(z, t - 1), off_at = tz_offset_at(z, t);
                int64_t match;
                if (off_at > off_before && next_local_match(s, t + off_before, &match) >= 0 && match < t + off_at) {
                        *ret = t;
                        return 0;
                }
        }

        for (;;) {
                int32_t off = tz_offset_at(z, t);
                int64_t tn = tz_next_transition(z, t);
                int64_t from = t + off, match;

                if (cached_from != INT64_MIN && from >= cached_from && cached_match >= from)
                        match = cached_match;
                else {
                        r = next_local_match(s, from, &match);
                        if (r < 0)
                                return r;
                        cached_from = from;
                        cached_match = match;
                }

                for (;;) {
                        if (tn != INT64_MAX && match >= tn + off)
                                break; /* beyond this segment */

                        int64_t instant = match - off;
                        if (s->fixed_time) {
                                int64_t first, second;
                                if (tz_local_to_utc(z, match, &first, &second) == TZ_LOCAL_REPEATED && first < instant) {
                                        /* the second pass through a repeated time: fixed-time already fired */
                                        r = next_local_match(s, match + 1, &match);
                                        if (r < 0)
                                                return r;
                                        cached_from = match; /* MATCH is the first match >= itself */
                                        cached_match = match;
                                        continue;
                                }
                        }
                        *ret = instant;
                        return 0;
                }

                if (tn >= max_instant)
                        return -ERANGE;

                /* MATCH lies beyond this segment's local times; a fixed-time expression whose
                 * match fell into the gap the transition opens fires at the transition */
                int32_t off_next = tz_offset_at(z, tn);
                if (s->fixed_time && off_next > off && match < tn + off_next) {
                        *ret = tn;
                        return 0;
                }
                t = tn;
        }
}
