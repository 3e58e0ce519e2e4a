/* SPDX-License-Identifier: MIT */
#include <check.h>
#include <inttypes.h>
#include <stdio.h>
#include <time.h>

#include "basic/civil.h"
#include "basic/schedule.h"
#include "basic/tz.h"

/* ---- helpers ---------------------------------------------------------------------------- */

/* "2026-03-29T01:00:00Z" to seconds since the epoch */
static int64_t utc(const char *iso) {
        civil c = { 0 };
        ck_assert_int_eq(sscanf(iso, "%d-%d-%dT%d:%d:%dZ", &c.year, &c.month, &c.day, &c.hour, &c.minute, &c.second),
                         6);
        return civil_to_seconds(&c);
}

static void fmt_utc(int64_t t, char *buf, size_t n) {
        civil c;
        civil_from_seconds(t, &c);
        snprintf(buf, n, "%04d-%02d-%02dT%02d:%02d:%02dZ", c.year, c.month, c.day, c.hour, c.minute, c.second);
}

static schedule parse_ok(const char *expr) {
        schedule s;
        parse_error e = { 0 };
        int r = schedule_parse(expr, &s, &e);
        ck_assert_msg(r == 0, "\"%s\" rejected: %zu: %s", expr, e.offset, e.message);
        return s;
}

/* Checks that EXPR in ZONE fires at EXPECTED[0..], one after the other, starting after AFTER. */
static void check_fires(const char *expr, const char *zone, const char *after, const char *const *expected) {
        schedule s = parse_ok(expr);
        tz *z;
        int64_t t = utc(after);

        ck_assert_int_eq(tz_load(zone, &z), 0);
        for (size_t i = 0; expected[i]; i++) {
                int64_t next;
                char got[32];
                ck_assert_int_eq(schedule_next(&s, z, t, &next), 0);
                fmt_utc(next, got, sizeof(got));
                ck_assert_msg(next == utc(expected[i]), "\"%s\" in %s after %s, fire %zu: got %s, expected %s", expr,
                              zone, after, i, got, expected[i]);
                t = next;
        }
}

#define FIRES(expr, zone, after, ...) check_fires(expr, zone, after, (const char *const[]) { __VA_ARGS__, NULL })

static uint64_t bits(const int *v, size_t n) {
        uint64_t m = 0;
        for (size_t i = 0; i < n; i++)
                m |= UINT64_C(1) << v[i];
        return m;
}
#define BITS(...) bits((const int[]) { __VA_ARGS__ }, sizeof((const int[]) { __VA_ARGS__ }) / sizeof(int))

/* field by field: padding bytes in the struct are unspecified */
static bool same_schedule(const schedule *x, const schedule *y) {
        return x->kind == y->kind && x->seconds == y->seconds && x->minutes == y->minutes && x->hours == y->hours &&
               x->mdays == y->mdays && x->months == y->months && x->wdays == y->wdays &&
               x->mday_star == y->mday_star && x->wday_star == y->wday_star && x->fixed_time == y->fixed_time &&
               x->interval == y->interval;
}

static void check_same(const char *a, const char *b) {
        schedule x = parse_ok(a), y = parse_ok(b);
        ck_assert_msg(same_schedule(&x, &y), "\"%s\" differs from \"%s\"", a, b);
}

/* ---- parsing: valid forms --------------------------------------------------------------- */

START_TEST(test_parse_star) {
        schedule s = parse_ok("* * * * *");
        ck_assert_int_eq(s.kind, SCHEDULE_CRON);
        ck_assert_uint_eq(s.seconds, 1);
        ck_assert_uint_eq(s.minutes, (UINT64_C(1) << 60) - 1);
        ck_assert_uint_eq(s.hours, (UINT32_C(1) << 24) - 1);
        ck_assert_uint_eq(s.mdays, 0xfffffffeu);
        ck_assert_uint_eq(s.months, 0x1ffe);
        ck_assert_uint_eq(s.wdays, 0x7f);
        ck_assert(s.mday_star && s.wday_star);
        ck_assert(!s.fixed_time);
}
END_TEST

START_TEST(test_parse_lists_ranges_steps) {
        schedule s = parse_ok("5,10-12,*/20 0-23/6 1,15 * *");
        ck_assert_uint_eq(s.minutes, BITS(0, 5, 10, 11, 12, 20, 40));
        ck_assert_uint_eq(s.hours, BITS(0, 6, 12, 18));
        ck_assert_uint_eq(s.mdays, BITS(1, 15));
        ck_assert(!s.mday_star && s.wday_star);
        ck_assert(s.fixed_time); /* no field begins with '*', steps inside a list do not count */
}
END_TEST

START_TEST(test_parse_fixed_time_rule) {
        /* fixed-time: none of second, minute, hour begins with '*' */
        ck_assert(parse_ok("0 0 * * *").fixed_time);
        ck_assert(parse_ok("30 2 * * *").fixed_time);
        ck_assert(parse_ok("0 7,19 * * *").fixed_time);
        ck_assert(parse_ok("5,10-12,*/20 2 * * *").fixed_time); /* begins with '5' */
        ck_assert(parse_ok("0 0-23/2 * * *").fixed_time);
        ck_assert(parse_ok("0 0 0 * * *").fixed_time);
        ck_assert(!parse_ok("0 * * * *").fixed_time);
        ck_assert(!parse_ok("*/15 2 * * *").fixed_time);
        ck_assert(!parse_ok("0 */2 * * *").fixed_time);
        ck_assert(!parse_ok("* 0 0 * * *").fixed_time);
        ck_assert(!parse_ok("*/30 0 0 * * *").fixed_time);
}
END_TEST

START_TEST(test_parse_a_slash_n) {
        ck_assert_uint_eq(parse_ok("10/15 * * * *").minutes, BITS(10, 25, 40, 55));
        ck_assert_uint_eq(parse_ok("0 0 * * * *").seconds, BITS(0));
}
END_TEST

START_TEST(test_parse_steps_more) {
        ck_assert_uint_eq(parse_ok("0-30/10 * * * *").minutes, BITS(0, 10, 20, 30));
        ck_assert_uint_eq(parse_ok("0 20/2 * * *").hours, BITS(20, 22));
        ck_assert_uint_eq(parse_ok("0 0 */10 * *").mdays, BITS(1, 11, 21, 31));
        ck_assert_uint_eq(parse_ok("0 0 * */5 *").months, BITS(1, 6, 11));
        ck_assert_uint_eq(parse_ok("0 0 * * */2").wdays, BITS(0, 2, 4, 6));
        ck_assert_uint_eq(parse_ok("0 0 * * 3/2").wdays, BITS(3, 5));
        ck_assert_uint_eq(parse_ok("*/60 * * * *").minutes, BITS(0));
        ck_assert_uint_eq(parse_ok("* * * * *,5").wdays, 0x7f);
}
END_TEST

START_TEST(test_parse_names) {
        schedule s = parse_ok("0 0 * JAN-mar,Dec Mon-FRI");
        ck_assert_uint_eq(s.months, BITS(1, 2, 3, 12));
        ck_assert_uint_eq(s.wdays, BITS(1, 2, 3, 4, 5));
        ck_assert_uint_eq(parse_ok("0 0 * * 5-7").wdays, BITS(0, 5, 6));
        ck_assert_uint_eq(parse_ok("0 0 * * fri-sun").wdays, BITS(0, 5, 6));
        ck_assert_uint_eq(parse_ok("0 0 * * 7").wdays, BITS(0));
        ck_assert_uint_eq(parse_ok("0 0 * * 0-7").wdays, 0x7f);
        ck_assert_uint_eq(parse_ok("0 0 * * sun,sat").wdays, BITS(0, 6));
        ck_assert_uint_eq(parse_ok("0 0 * jul/2 *").months, BITS(7, 9, 11));
}
END_TEST

START_TEST(test_parse_six_fields) {
        schedule s = parse_ok("30 0 12 * * *");
        ck_assert_uint_eq(s.seconds, BITS(30));
        ck_assert_uint_eq(s.minutes, BITS(0));
        ck_assert_uint_eq(s.hours, BITS(12));
        ck_assert(s.fixed_time);
        ck_assert_uint_eq(parse_ok("*/15 * * * * *").seconds, BITS(0, 15, 30, 45));
}
END_TEST

START_TEST(test_parse_whitespace) {
        check_same("  0\t12  * *   *  ", "0 12 * * *");
}
END_TEST

START_TEST(test_parse_dom_dow_flags) {
        schedule s = parse_ok("0 0 */2 * 1");
        ck_assert(s.mday_star && !s.wday_star);
        s = parse_ok("0 0 1 * 1");
        ck_assert(!s.mday_star && !s.wday_star);
        s = parse_ok("0 0 1 * */1");
        ck_assert(!s.mday_star && s.wday_star);
}
END_TEST

START_TEST(test_parse_macros) {
        check_same("@yearly", "0 0 1 1 *");
        check_same("@annually", "0 0 1 1 *");
        check_same("@monthly", "0 0 1 * *");
        check_same("@weekly", "0 0 * * 0");
        check_same("@daily", "0 0 * * *");
        check_same("@midnight", "0 0 * * *");
        check_same("@hourly", "0 * * * *");
        check_same("  @Daily ", "0 0 * * *");
        ck_assert(!parse_ok("@hourly").fixed_time);
        ck_assert(parse_ok("@daily").fixed_time);
        ck_assert(parse_ok("@weekly").fixed_time);
        ck_assert(parse_ok("@monthly").fixed_time);
        ck_assert(parse_ok("@yearly").fixed_time);
}
END_TEST

START_TEST(test_parse_every) {
        schedule s = parse_ok("@every 1h30m");
        ck_assert_int_eq(s.kind, SCHEDULE_EVERY);
        ck_assert_uint_eq(s.interval, 90 * USEC_PER_MINUTE);
        ck_assert_uint_eq(parse_ok("@every 250ms").interval, 250 * USEC_PER_MSEC);
        ck_assert_uint_eq(parse_ok("@every   5s").interval, 5 * USEC_PER_SEC);

        tz *z;
        int64_t t;
        ck_assert_int_eq(tz_load("UTC", &z), 0);
        ck_assert_int_eq(schedule_next(&s, z, 0, &t), -EINVAL);
}
END_TEST

/* ---- parsing: invalid forms ------------------------------------------------------------- */

static const struct {
        const char *expr;
        size_t offset;
        const char *message; /* a substring of the message */
} bad[] = {
        { "61 * * * *", 0, "minute field: 61 is out of range, expected 0-59" },
        { "* * * *", 7, "expected 5 or 6 fields, found 4" },
        { "1 2 3 4 5 6 7", 12, "expected 5 or 6 fields, found 7" },
        { "", 0, "found an empty string" },
        { "   ", 0, "found an empty string" },
        { "0 0 1 foo *", 6, "unknown month name \"foo\", expected jan-dec" },
        { "0 0 * * funday", 8, "unknown day name \"funday\", expected sun-sat" },
        { "*/0 * * * *", 2, "minute field: step 0 is not allowed" },
        { "*/61 * * * *", 2, "minute field: step 61 is out of range, expected a step from 1 to 60" },
        { "10-5 * * * *", 0, "minute field: range 10-5 is reversed" },
        { "0 0 * * sat-mon", 8, "day-of-week field: range sat-mon is reversed" },
        { "@sometimes", 0, "unknown macro \"@sometimes\"" },
        { "@daily now", 7, "unexpected \"now\" after @daily" },
        { "@every", 6, "@every needs a duration" },
        { "@every 0s", 7, "is zero, expected a duration greater than 0" },
        { "@every 5x", 8, "" },
        { "0 0 30 2 *", 4, "can never fire" },
        { "0 0 31 4,6 *", 4, "day 31 never occurs in the selected months" },
        { "0 0 30 2 */2", 4, "can never fire" },
        { "0 0 * * 8", 8, "day-of-week field: 8 is out of range, expected 0-7 or sun-sat" },
        { "0 24 * * *", 2, "hour field: 24 is out of range, expected 0-23" },
        { "0 0 0 * *", 4, "day-of-month field: 0 is out of range, expected 1-31" },
        { "0 0 32 * *", 4, "day-of-month field: 32 is out of range" },
        { "0 0 * 13 *", 6, "month field: 13 is out of range, expected 1-12 or jan-dec" },
        { "0 0 * 0 *", 6, "month field: 0 is out of range" },
        { "60 0 0 * * *", 0, "second field: 60 is out of range, expected 0-59" },
        { "1,,2 * * * *", 2, "minute field: unexpected \",\"" },
        { "1, * * * *", 2, "expected a value after ','" },
        { "a * * * *", 0, "minute field: \"a\" is not a number, expected 0-59" },
        { "5/ * * * *", 2, "expected a step number after '/'" },
        { "1-2-3 * * * *", 3, "minute field: unexpected \"-\", expected ',', '-' or '/'" },
        { "0 0 * * mon-", 12, "expected a value" },
        { "0 0 * * 1#2", 9, "day-of-week field: unexpected \"#\"" },
        { "0 0 L * *", 4, "day-of-month field: \"L\" is not a number" },
        { "0 0 ? * *", 4, "day-of-month field: unexpected \"?\"" },
        { "99999999999 * * * *", 0, "minute field: 99999999999 is out of range" },
        { "0 0 * janx *", 6, "unknown month name \"janx\"" },
        { "0 5x * * *", 2, "hour field: \"5x\" is not a valid value" },
};

START_TEST(test_parse_invalid) {
        const char *expr = bad[_i].expr;
        schedule s = { .kind = SCHEDULE_EVERY, .interval = 42 };
        parse_error e = { 0 };

        ck_assert_int_eq(schedule_parse(expr, &s, &e), -EINVAL);
        ck_assert_msg(strstr(e.message, bad[_i].message), "\"%s\": message \"%s\" lacks \"%s\"", expr, e.message,
                      bad[_i].message);
        ck_assert_msg(e.offset == bad[_i].offset, "\"%s\": offset %zu, expected %zu (%s)", expr, e.offset,
                      bad[_i].offset, e.message);
        /* out-parameter untouched on failure */
        ck_assert_int_eq(s.kind, SCHEDULE_EVERY);
        ck_assert_uint_eq(s.interval, 42);
        /* E may be NULL */
        ck_assert_int_eq(schedule_parse(expr, &s, NULL), -EINVAL);
}
END_TEST

START_TEST(test_parse_null) {
        schedule s;
        parse_error e;
        ck_assert_int_eq(schedule_parse(NULL, &s, &e), -EINVAL);
        ck_assert_ptr_nonnull(strstr(e.message, "found nothing"));
}
END_TEST

/* ---- next fires: plain calendar ---------------------------------------------------------- */

START_TEST(test_next_basic_utc) {
        FIRES("* * * * *", "UTC", "2026-01-01T00:00:00Z", "2026-01-01T00:01:00Z", "2026-01-01T00:02:00Z");
        FIRES("* * * * *", "UTC", "2026-01-01T00:00:30Z", "2026-01-01T00:01:00Z");
        FIRES("*/15 * * * * *", "UTC", "2026-12-31T23:59:30Z", "2026-12-31T23:59:45Z", "2027-01-01T00:00:00Z",
              "2027-01-01T00:00:15Z");
        FIRES("0 12 * * *", "UTC", "2026-01-01T12:00:00Z", "2026-01-02T12:00:00Z");
        FIRES("@yearly", "UTC", "2026-06-01T00:00:00Z", "2027-01-01T00:00:00Z", "2028-01-01T00:00:00Z");
        FIRES("@weekly", "UTC", "2026-01-01T00:00:00Z", "2026-01-04T00:00:00Z", "2026-01-11T00:00:00Z");
        FIRES("0 0 * * 5-7", "UTC", "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z",
              "2026-01-04T00:00:00Z", "2026-01-09T00:00:00Z");
}
END_TEST

START_TEST(test_next_leap_day) {
        FIRES("0 0 29 2 *", "UTC", "2028-03-01T00:00:00Z", "2032-02-29T00:00:00Z", "2036-02-29T00:00:00Z");
        /* 2100 is not a leap year */
        FIRES("0 0 29 2 *", "UTC", "2096-03-01T00:00:00Z", "2104-02-29T00:00:00Z");
        FIRES("0 0 29 2 *", "Europe/Amsterdam", "2028-03-01T00:00:00Z", "2032-02-28T23:00:00Z");
}
END_TEST

START_TEST(test_next_31st) {
        FIRES("0 0 31 * *", "UTC", "2026-01-31T00:00:00Z", "2026-03-31T00:00:00Z", "2026-05-31T00:00:00Z",
              "2026-07-31T00:00:00Z", "2026-08-31T00:00:00Z", "2026-10-31T00:00:00Z", "2026-12-31T00:00:00Z",
              "2027-01-31T00:00:00Z");
}
END_TEST

START_TEST(test_next_dom_dow_or) {
        /* the 1st or any Monday (Feb 1 2026 is a Sunday) */
        FIRES("0 0 1 * 1", "UTC", "2026-01-31T12:00:00Z", "2026-02-01T00:00:00Z", "2026-02-02T00:00:00Z",
              "2026-02-09T00:00:00Z", "2026-02-16T00:00:00Z", "2026-02-23T00:00:00Z", "2026-03-01T00:00:00Z",
              "2026-03-02T00:00:00Z");
        /* '*' prefix makes day-of-month unrestricted: odd days AND Mondays */
        FIRES("0 0 */2 * mon", "UTC", "2026-01-31T12:00:00Z", "2026-02-09T00:00:00Z", "2026-02-23T00:00:00Z",
              "2026-03-09T00:00:00Z", "2026-03-23T00:00:00Z");
        /* a day-of-week of star-slash-1 is unrestricted: the 13th of each month only */
        FIRES("0 0 13 * */1", "UTC", "2026-01-01T00:00:00Z", "2026-01-13T00:00:00Z", "2026-02-13T00:00:00Z");
        /* day 30 in February OR Sundays: only Sundays in February */
        FIRES("0 0 30 2 0", "UTC", "2026-01-31T00:00:00Z", "2026-02-01T00:00:00Z", "2026-02-08T00:00:00Z");
}
END_TEST

START_TEST(test_next_kolkata) {
        FIRES("0 9 * * *", "Asia/Kolkata", "2026-01-01T00:00:00Z", "2026-01-01T03:30:00Z", "2026-01-02T03:30:00Z");
        FIRES("@hourly", "Asia/Kolkata", "2026-01-01T00:00:00Z", "2026-01-01T00:30:00Z", "2026-01-01T01:30:00Z");
}
END_TEST

/* ---- next fires across DST transitions ---------------------------------------------------- */

START_TEST(test_next_amsterdam_spring) {
        /* 2026-03-29 01:00Z: 02:00 CET becomes 03:00 CEST */
        FIRES("30 2 * * *", "Europe/Amsterdam", "2026-03-28T12:00:00Z", "2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z");
        /* both gap times meet at the transition: one fire */
        FIRES("0,30 2 * * *", "Europe/Amsterdam", "2026-03-28T12:00:00Z", "2026-03-29T01:00:00Z",
              "2026-03-30T00:00:00Z", "2026-03-30T00:30:00Z");
        /* a gap time and the first time after it: still one fire */
        FIRES("0 2,3 * * *", "Europe/Amsterdam", "2026-03-28T12:00:00Z", "2026-03-29T01:00:00Z",
              "2026-03-30T00:00:00Z");
        /* periodic: gap times do not fire */
        FIRES("*/30 2 * * *", "Europe/Amsterdam", "2026-03-28T12:00:00Z", "2026-03-30T00:00:00Z",
              "2026-03-30T00:30:00Z");
        FIRES("@hourly", "Europe/Amsterdam", "2026-03-28T23:30:00Z", "2026-03-29T00:00:00Z", "2026-03-29T01:00:00Z",
              "2026-03-29T02:00:00Z");
        FIRES("@daily", "Europe/Amsterdam", "2026-03-28T12:00:00Z", "2026-03-28T23:00:00Z", "2026-03-29T22:00:00Z");
}
END_TEST

START_TEST(test_next_amsterdam_fall) {
        /* 2026-10-25 01:00Z: 03:00 CEST becomes 02:00 CET */
        FIRES("30 2 * * *", "Europe/Amsterdam", "2026-10-24T12:00:00Z", "2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z");
        /* between the two occurrences: the second one does not fire */
        FIRES("30 2 * * *", "Europe/Amsterdam", "2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z");
        FIRES("30 2 * * *", "Europe/Amsterdam", "2026-10-25T01:00:00Z", "2026-10-26T01:30:00Z");
        FIRES("30 * * * *", "Europe/Amsterdam", "2026-10-24T23:00:00Z", "2026-10-24T23:30:00Z", "2026-10-25T00:30:00Z",
              "2026-10-25T01:30:00Z", "2026-10-25T02:30:00Z");
        FIRES("*/30 2 * * *", "Europe/Amsterdam", "2026-10-24T12:00:00Z", "2026-10-25T00:00:00Z",
              "2026-10-25T00:30:00Z", "2026-10-25T01:00:00Z", "2026-10-25T01:30:00Z", "2026-10-26T01:00:00Z");
        /* periodic, starting inside the second pass */
        FIRES("*/30 2 * * *", "Europe/Amsterdam", "2026-10-25T01:10:00Z", "2026-10-25T01:30:00Z",
              "2026-10-26T01:00:00Z");
}
END_TEST

START_TEST(test_next_new_york) {
        /* 2026-03-08 07:00Z: 02:00 EST becomes 03:00 EDT */
        FIRES("0 2 * * *", "America/New_York", "2026-03-07T00:00:00Z", "2026-03-07T07:00:00Z", "2026-03-08T07:00:00Z",
              "2026-03-09T06:00:00Z");
        FIRES("15 * * * *", "America/New_York", "2026-03-08T06:00:00Z", "2026-03-08T06:15:00Z",
              "2026-03-08T07:15:00Z", "2026-03-08T08:15:00Z");
        /* 2026-11-01 06:00Z: 02:00 EDT becomes 01:00 EST */
        FIRES("30 1 * * *", "America/New_York", "2026-10-31T12:00:00Z", "2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z");
        FIRES("0 * * * *", "America/New_York", "2026-11-01T04:30:00Z", "2026-11-01T05:00:00Z", "2026-11-01T06:00:00Z",
              "2026-11-01T07:00:00Z");
        FIRES("*/20 0 1 * * *", "America/New_York", "2026-11-01T04:59:59Z", "2026-11-01T05:00:00Z",
              "2026-11-01T05:00:20Z", "2026-11-01T05:00:40Z", "2026-11-01T06:00:00Z", "2026-11-01T06:00:20Z",
              "2026-11-01T06:00:40Z", "2026-11-02T06:00:00Z");
        /* 6-field fixed time inside the repeated hour: first occurrence only */
        FIRES("15 45 1 * * *", "America/New_York", "2026-11-01T00:00:00Z", "2026-11-01T05:45:15Z",
              "2026-11-02T06:45:15Z");
}
END_TEST

START_TEST(test_next_lord_howe) {
        /* 30-minute shift. 2026-10-04 02:00 +1030 (2026-10-03T15:30Z) becomes 02:30 +11 */
        FIRES("15 2 * * *", "Australia/Lord_Howe", "2026-10-02T00:00:00Z", "2026-10-02T15:45:00Z",
              "2026-10-03T15:30:00Z", "2026-10-04T15:15:00Z");
        FIRES("15 * * * *", "Australia/Lord_Howe", "2026-10-03T15:00:00Z", "2026-10-03T16:15:00Z",
              "2026-10-03T17:15:00Z");
        /* 2026-04-05 02:00 +11 (2026-04-04T15:00Z) becomes 01:30 +1030 */
        FIRES("45 1 * * *", "Australia/Lord_Howe", "2026-04-04T00:00:00Z", "2026-04-04T14:45:00Z",
              "2026-04-05T15:15:00Z");
        FIRES("*/15 1 * * *", "Australia/Lord_Howe", "2026-04-04T14:00:00Z", "2026-04-04T14:15:00Z",
              "2026-04-04T14:30:00Z", "2026-04-04T14:45:00Z", "2026-04-04T15:00:00Z", "2026-04-04T15:15:00Z",
              "2026-04-05T14:30:00Z");
}
END_TEST

START_TEST(test_next_chatham) {
        /* 2026-09-27 02:45 +1245 (2026-09-26T14:00Z) becomes 03:45 +1345 */
        FIRES("0 3 * * *", "Pacific/Chatham", "2026-09-25T00:00:00Z", "2026-09-25T14:15:00Z", "2026-09-26T14:00:00Z",
              "2026-09-27T13:15:00Z");
        /* 2026-04-05 03:45 +1345 (2026-04-04T14:00Z) becomes 02:45 +1245 */
        FIRES("0 3 * * *", "Pacific/Chatham", "2026-04-03T00:00:00Z", "2026-04-03T13:15:00Z", "2026-04-04T13:15:00Z",
              "2026-04-05T14:15:00Z");
        FIRES("0 * * * *", "Pacific/Chatham", "2026-04-04T12:30:00Z", "2026-04-04T13:15:00Z", "2026-04-04T14:15:00Z",
              "2026-04-04T15:15:00Z");
}
END_TEST

START_TEST(test_next_santiago) {
        /* 2026-09-06 00:00 -04 (04:00Z) becomes 01:00 -03: midnight does not exist that day */
        FIRES("0 0 * * *", "America/Santiago", "2026-09-04T12:00:00Z", "2026-09-05T04:00:00Z", "2026-09-06T04:00:00Z",
              "2026-09-07T03:00:00Z");
        FIRES("0 * * * *", "America/Santiago", "2026-09-06T02:30:00Z", "2026-09-06T03:00:00Z", "2026-09-06T04:00:00Z",
              "2026-09-06T05:00:00Z");
        /* 2026-04-05 00:00 -03 (03:00Z) becomes 23:00 -04 on the 4th */
        FIRES("30 23 * * *", "America/Santiago", "2026-04-04T12:00:00Z", "2026-04-05T02:30:00Z",
              "2026-04-06T03:30:00Z");
        FIRES("0 0 * * *", "America/Santiago", "2026-04-04T00:00:00Z", "2026-04-04T03:00:00Z", "2026-04-05T04:00:00Z");
}
END_TEST

START_TEST(test_next_errors) {
        schedule s = parse_ok("0 0 * * *");
        tz *z;
        int64_t t = 12345;
        ck_assert_int_eq(tz_load("UTC", &z), 0);
        ck_assert_int_eq(schedule_next(&s, z, utc("9999-12-31T00:00:00Z"), &t), -ERANGE);
        ck_assert_int_eq(t, 12345);
        ck_assert_int_eq(schedule_next(&s, z, INT64_MAX, &t), -ERANGE);
        ck_assert_int_eq(schedule_next(&s, z, INT64_MIN, &t), 0);
}
END_TEST

/* Prints the cost of one schedule_next(); informative only, never asserted. */
START_TEST(test_next_speed) {
        schedule s = parse_ok("0 0 29 2 *");
        tz *z;
        int64_t t = 0, after = utc("2028-03-01T00:00:00Z");
        struct timespec a, b;
        const int n = 2000;

        ck_assert_int_eq(tz_load("Europe/Amsterdam", &z), 0);
        clock_gettime(CLOCK_MONOTONIC, &a);
        for (int i = 0; i < n; i++)
                ck_assert_int_eq(schedule_next(&s, z, after, &t), 0);
        clock_gettime(CLOCK_MONOTONIC, &b);
        ck_assert_int_eq(t, utc("2032-02-28T23:00:00Z"));
        printf("schedule_next(\"0 0 29 2 *\", Europe/Amsterdam, 2028-03-01): %.0f ns per call\n",
               ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / n);
}
END_TEST

static Suite *schedule_suite(void) {
        Suite *s = suite_create("schedule");
        TCase *tc = tcase_create("parse");
        tcase_add_test(tc, test_parse_star);
        tcase_add_test(tc, test_parse_lists_ranges_steps);
        tcase_add_test(tc, test_parse_fixed_time_rule);
        tcase_add_test(tc, test_parse_a_slash_n);
        tcase_add_test(tc, test_parse_steps_more);
        tcase_add_test(tc, test_parse_names);
        tcase_add_test(tc, test_parse_six_fields);
        tcase_add_test(tc, test_parse_whitespace);
        tcase_add_test(tc, test_parse_dom_dow_flags);
        tcase_add_test(tc, test_parse_macros);
        tcase_add_test(tc, test_parse_every);
        tcase_add_loop_test(tc, test_parse_invalid, 0, (int) ELEMENTSOF(bad));
        tcase_add_test(tc, test_parse_null);
        suite_add_tcase(s, tc);

        tc = tcase_create("next");
        tcase_add_test(tc, test_next_basic_utc);
        tcase_add_test(tc, test_next_leap_day);
        tcase_add_test(tc, test_next_31st);
        tcase_add_test(tc, test_next_dom_dow_or);
        tcase_add_test(tc, test_next_kolkata);
        tcase_add_test(tc, test_next_amsterdam_spring);
        tcase_add_test(tc, test_next_amsterdam_fall);
        tcase_add_test(tc, test_next_new_york);
        tcase_add_test(tc, test_next_lord_howe);
        tcase_add_test(tc, test_next_chatham);
        tcase_add_test(tc, test_next_santiago);
        tcase_add_test(tc, test_next_errors);
        tcase_add_test(tc, test_next_speed);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(schedule_suite());
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        tz_cache_clear();
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
