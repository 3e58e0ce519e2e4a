/* SPDX-License-Identifier: MIT */
/* Tests for civil.c and tz.c. glibc's own calendar and zone code (gmtime_r, localtime_r with
 * $TZ) serves as the independent oracle; tz.c itself never uses it. */

#include <check.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "basic/civil.h"
#include "basic/tz.h"

#define YEAR_1970 INT64_C(0)
#define YEAR_2100 INT64_C(4102444800)

/* Check records every ck_assert through a pipe, far too slow for loops of many thousands:
 * hot loops use this, which only involves Check on failure. */
#define CHECK(cond, ...)                                          \
        do {                                                      \
                if (!(cond))                                      \
                        ck_abort_msg("" #cond ": " __VA_ARGS__); \
        } while (0)
#define CHECK_CMP(a, op, b)                                                                  \
        do {                                                                                 \
                long long _a = (long long) (a), _b = (long long) (b);                        \
                if (!(_a op _b))                                                             \
                        ck_abort_msg("%s " #op " %s: %lld vs %lld", #a, #b, _a, _b);         \
        } while (0)
#define CHECK_EQ(a, b) CHECK_CMP(a, ==, b)
#define CHECK_NE(a, b) CHECK_CMP(a, !=, b)
#define CHECK_GE(a, b) CHECK_CMP(a, >=, b)

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rnd(void) {
        /* xorshift64*: deterministic, so a failure reproduces. */
        rng_state ^= rng_state >> 12;
        rng_state ^= rng_state << 25;
        rng_state ^= rng_state >> 27;
        return rng_state * 0x2545f4914f6cdd1dULL;
}

static int64_t rnd_range(int64_t lo, int64_t hi) {
        return lo + (int64_t) (rnd() % (uint64_t) (hi - lo));
}

static int64_t utc(int y, int mo, int d, int h, int mi, int s) {
        civil c = { y, mo, d, h, mi, s };
        return civil_to_seconds(&c);
}

/* ---- civil ----------------------------------------------------------------------------- */

START_TEST(test_leap_and_month_lengths) {
        CHECK(civil_is_leap_year(2000));
        CHECK(civil_is_leap_year(2024));
        CHECK(civil_is_leap_year(2400));
        CHECK(civil_is_leap_year(0));
        CHECK(civil_is_leap_year(-4));
        CHECK(!civil_is_leap_year(1900));
        CHECK(!civil_is_leap_year(2100));
        CHECK(!civil_is_leap_year(2023));
        CHECK(!civil_is_leap_year(-100));

        CHECK_EQ(civil_days_in_month(2024, 2), 29);
        CHECK_EQ(civil_days_in_month(2023, 2), 28);
        CHECK_EQ(civil_days_in_month(1900, 2), 28);
        CHECK_EQ(civil_days_in_month(2026, 1), 31);
        CHECK_EQ(civil_days_in_month(2026, 4), 30);
        CHECK_EQ(civil_days_in_month(2026, 12), 31);
        CHECK_EQ(civil_days_in_month(2026, 13), 0);
}
END_TEST

START_TEST(test_weekdays) {
        CHECK_EQ(civil_weekday(1970, 1, 1), 4);   /* Thursday */
        CHECK_EQ(civil_weekday(1969, 12, 31), 3); /* Wednesday */
        CHECK_EQ(civil_weekday(2000, 1, 1), 6);   /* Saturday */
        CHECK_EQ(civil_weekday(2024, 2, 29), 4);  /* Thursday */
        CHECK_EQ(civil_weekday(2026, 3, 29), 0);  /* Sunday: EU spring forward */
        CHECK_EQ(civil_weekday(1582, 10, 15), 5); /* Friday: first Gregorian day */
        CHECK_EQ(civil_weekday(1776, 7, 4), 4);   /* Thursday */
        CHECK_EQ(civil_weekday(2038, 1, 19), 2);  /* Tuesday */

        /* glibc agrees for random dates (tm_wday of gmtime_r). */
        for (int i = 0; i < 20000; i++) {
                time_t t = (time_t) rnd_range(-INT64_C(60000000000), INT64_C(60000000000));
                struct tm tm;
                CHECK((gmtime_r(&t, &tm)) != NULL);
                CHECK_EQ(civil_weekday(tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday), tm.tm_wday);
        }
}
END_TEST

START_TEST(test_sequential_days) {
        /* Walk day by day from 1000-01-01 to 3000-12-31 with a naive calendar. */
        int64_t expect = civil_days_from_date(1000, 1, 1);
        for (int y = 1000; y <= 3000; y++)
                for (int m = 1; m <= 12; m++)
                        for (int d = 1; d <= civil_days_in_month(y, m); d++) {
                                int64_t yy;
                                int mm, dd;

                                CHECK_EQ(civil_days_from_date(y, m, d), expect);
                                civil_date_from_days(expect, &yy, &mm, &dd);
                                CHECK(yy == y && mm == m && dd == d);
                                expect++;
                        }
        CHECK_EQ(civil_days_from_date(1970, 1, 1), 0);
        CHECK_EQ(civil_days_from_date(2000, 3, 1), 11017);
}
END_TEST

START_TEST(test_round_trips) {
        for (int i = 0; i < 200000; i++) {
                int64_t days = rnd_range(-INT64_C(400000000), INT64_C(400000000)), y;
                int m, d;

                civil_date_from_days(days, &y, &m, &d);
                CHECK(m >= 1 && m <= 12 && d >= 1 && d <= civil_days_in_month((int) y, m));
                CHECK_EQ(civil_days_from_date(y, m, d), days);
        }

        for (int i = 0; i < 100000; i++) {
                int64_t s = rnd_range(-INT64_C(50000000000), INT64_C(50000000000));
                time_t t = (time_t) s;
                struct tm tm;
                civil c;

                civil_from_seconds(s, &c);
                CHECK(civil_is_valid(&c));
                CHECK_EQ(civil_to_seconds(&c), s);
                /* Compared with glibc's independent implementation. */
                CHECK((gmtime_r(&t, &tm)) != NULL);
                CHECK_EQ(c.year, tm.tm_year + 1900);
                CHECK_EQ(c.month, tm.tm_mon + 1);
                CHECK_EQ(c.day, tm.tm_mday);
                CHECK_EQ(c.hour, tm.tm_hour);
                CHECK_EQ(c.minute, tm.tm_min);
                CHECK_EQ(c.second, tm.tm_sec);
        }

        /* The extremes do not crash and stay in range. */
        civil c;
        civil_from_seconds(INT64_MAX, &c);
        CHECK_EQ(c.year, INT_MAX);
        civil_from_seconds(INT64_MIN, &c);
        CHECK_EQ(c.year, INT_MIN);
}
END_TEST

START_TEST(test_civil_valid) {
        CHECK(civil_is_valid(&(civil) { 2024, 2, 29, 23, 59, 59 }));
        CHECK(!civil_is_valid(&(civil) { 2023, 2, 29, 0, 0, 0 }));
        CHECK(!civil_is_valid(&(civil) { 2023, 0, 1, 0, 0, 0 }));
        CHECK(!civil_is_valid(&(civil) { 2023, 1, 0, 0, 0, 0 }));
        CHECK(!civil_is_valid(&(civil) { 2023, 1, 1, 24, 0, 0 }));
        CHECK(!civil_is_valid(&(civil) { 2023, 1, 1, 0, 60, 0 }));
        CHECK(!civil_is_valid(&(civil) { 2023, 1, 1, 0, 0, 60 }));
}
END_TEST

/* ---- tz against glibc -------------------------------------------------------------------- */

static const char *const zones[] = {
        "UTC", "Europe/Amsterdam", "America/New_York", "Australia/Lord_Howe", "Pacific/Chatham",
        "America/Santiago", "Asia/Kolkata", "Europe/London", "Australia/Sydney",
        "America/Sao_Paulo", "Africa/Casablanca", "Pacific/Apia", "Europe/Dublin",
        "America/Nuuk", "Antarctica/Troll", "Asia/Tehran", "Africa/Cairo", "America/Asuncion",
};

static void oracle_set(const char *tzspec) {
        CHECK_EQ(setenv("TZ", tzspec, 1), 0);
        tzset();
}

static long oracle_offset(int64_t t, char *abbrev) {
        time_t tt = (time_t) t;
        struct tm tm;

        CHECK((localtime_r(&tt, &tm)) != NULL);
        if (abbrev)
                snprintf(abbrev, 64, "%s", tm.tm_zone); /* callers pass 64 bytes */
        return tm.tm_gmtoff;
}

static void compare_with_oracle(const tz *z, int64_t t) {
        char abbrev[64];
        long expect = oracle_offset(t, abbrev);

        CHECK(tz_offset_at(z, t) == expect, "%s at %lld: offset %d, glibc says %ld",
                      tz_name(z), (long long) t, tz_offset_at(z, t), expect);
        CHECK(streq(tz_abbrev_at(z, t), abbrev), "%s at %lld: abbreviation %s, glibc says %s",
                      tz_name(z), (long long) t, tz_abbrev_at(z, t), abbrev);
}

START_TEST(test_offsets_match_glibc) {
        const char *name = zones[_i];
        tz *z;

        CHECK_EQ(tz_load(name, &z), 0);
        oracle_set(name);

        for (int i = 0; i < 4000; i++)
                compare_with_oracle(z, rnd_range(YEAR_1970, YEAR_2100));
        /* Beyond the explicit transitions of any file: the footer rule, folded. */
        for (int i = 0; i < 500; i++)
                compare_with_oracle(z, rnd_range(YEAR_2100, INT64_C(32503680000) * 10));

        /* Every transition instant: glibc changes offset exactly there too. */
        int n = 0;
        for (int64_t t = YEAR_1970; (t = tz_next_transition(z, t)) < YEAR_2100; n++) {
                CHECK_NE(tz_offset_at(z, t - 1), tz_offset_at(z, t));
                compare_with_oracle(z, t - 1);
                compare_with_oracle(z, t);
                /* ... and nowhere in between (sampled). */
                int64_t next = tz_next_transition(z, t);
                if (next < YEAR_2100)
                        for (int k = 1; k <= 4; k++)
                                CHECK_EQ(oracle_offset(t + (next - t) * k / 5, NULL), tz_offset_at(z, t));
        }
        if (streq(name, "Europe/Amsterdam") || streq(name, "America/New_York"))
                CHECK_GE(n, 2 * 120);
        tz_cache_clear();
}
END_TEST

static const char *const posix_specs[] = {
        "CET-1CEST,M3.5.0,M10.5.0/3",
        "<+0530>-5:30",
        "AEST-10AEDT,M10.1.0,M4.1.0/3",
        "<-04>4<-03>,M9.1.6/24,M4.1.6/24",
        "<+1245>-12:45<+1345>,M9.5.0/2:45,M4.1.0/3:45",
        "<+1030>-10:30<+11>-11,M10.1.0,M4.1.0",
        "<-02>2<-01>,M3.5.0/-1,M10.5.0/0",
        "EET-2EEST,M4.5.5/0,M10.5.4/24",
        "IST-1GMT0,M10.5.0,M3.5.0/1",
        "XST3XDT,J60/2,J300/2",
        "XST-2XDT,59/2,299",
        "XST5XDT,J1/100,J200/-20",
        "XST5XDT,M3.2.0/-30,M11.1.0/50",
        "XST-3:20:15XDT-4:05,M4.1.3/1:02:03,M9.3.2/22:59:59",
        "<+00>0<+02>-2,M3.5.0/1,M10.5.0/3",
};

START_TEST(test_posix_strings_match_glibc) {
        const char *spec = posix_specs[_i];
        _cleanup_(tz_freep) tz *z = NULL;

        CHECK_EQ(tz_new_from_posix(spec, &z), 0);
        oracle_set(spec);
        for (int i = 0; i < 3000; i++)
                compare_with_oracle(z, rnd_range(YEAR_1970, INT64_C(16725225600)));
        for (int64_t t = YEAR_1970; (t = tz_next_transition(z, t)) < YEAR_2100;) {
                compare_with_oracle(z, t - 1);
                compare_with_oracle(z, t);
        }
}
END_TEST

START_TEST(test_posix_special_rules) {
        _cleanup_(tz_freep) tz *us = NULL, *us_default = NULL, *all_year = NULL, *fixed = NULL;

        /* No rule given: the US rule, like glibc and tzcode. */
        CHECK_EQ(tz_new_from_posix("XST5XDT", &us_default), 0);
        CHECK_EQ(tz_new_from_posix("XST5XDT,M3.2.0,M11.1.0", &us), 0);
        for (int i = 0; i < 2000; i++) {
                int64_t t = rnd_range(-YEAR_2100, 2 * YEAR_2100);
                CHECK_EQ(tz_offset_at(us, t), tz_offset_at(us_default, t));
        }

        /* DST all year: the end of one year's DST meets the start of the next. */
        CHECK_EQ(tz_new_from_posix("XST3XDT,J1/0,J365/25", &all_year), 0);
        for (int i = 0; i < 2000; i++)
                CHECK_EQ(tz_offset_at(all_year, rnd_range(-YEAR_2100, 2 * YEAR_2100)), -2 * 3600);
        CHECK(tz_next_transition(all_year, 0) == INT64_MAX);
        ck_assert_str_eq(tz_abbrev_at(all_year, 0), "XDT");

        CHECK_EQ(tz_new_from_posix("<+0530>-5:30", &fixed), 0);
        CHECK_EQ(tz_offset_at(fixed, INT64_MIN), 19800);
        ck_assert_str_eq(tz_abbrev_at(fixed, INT64_MAX), "+0530");
        CHECK(tz_next_transition(fixed, INT64_MIN) == INT64_MAX);

        static const char *const bad[] = {
                "", "X5", "XS", "XST", "XST5XDT,M3.2.0", "XST5XDT,M13.1.0,M11.1.0", "XST5XDT,M3.6.0,M11.1.0",
                "XST5XDT,M3.2.7,M11.1.0", "XST5XDT,J0,J100", "XST5XDT,366,100", "XST25", "XST5:60",
                "XST5XDT,M3.2.0/168,M11.1.0", "<+05", "<>5", "XST5 ", "XST5XDT,M3.2.0,M11.1.0,",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                tz *z = NULL;
                CHECK(tz_new_from_posix(bad[i], &z) == -EINVAL, "accepted \"%s\"", bad[i]);
                ck_assert_ptr_null(z);
        }
}
END_TEST

START_TEST(test_far_instants) {
        tz *z;

        CHECK_EQ(tz_load("Europe/Amsterdam", &z), 0);
        oracle_set("Europe/Amsterdam");
        /* Year ~ 100000 and more, still within glibc's int tm_year. */
        for (int i = 0; i < 300; i++)
                compare_with_oracle(z, rnd_range(INT64_C(3000000000000), INT64_C(60000000000000)));

        /* The extremes are defined. */
        CHECK_EQ(tz_offset_at(z, INT64_MIN), tz_offset_at(z, INT64_MIN + 1));
        (void) tz_offset_at(z, INT64_MAX);
        CHECK(tz_next_transition(z, INT64_MAX) == INT64_MAX);
        CHECK(tz_next_transition(z, INT64_MAX - 86400) > INT64_MAX - 86400);
        int64_t a, b;
        (void) tz_local_to_utc(z, INT64_MAX, &a, &b);
        (void) tz_local_to_utc(z, INT64_MIN, &a, &b);
        tz_cache_clear();
}
END_TEST

/* ---- local time resolution ------------------------------------------------------------- */

static void check_local(const tz *z, int64_t local) {
        int64_t first, second;
        tz_local_kind kind = tz_local_to_utc(z, local, &first, &second);

        switch (kind) {
        case TZ_LOCAL_UNIQUE:
                CHECK(first == second);
                CHECK(first + oracle_offset(first, NULL) == local);
                break;
        case TZ_LOCAL_REPEATED:
                CHECK(first < second);
                CHECK(first + oracle_offset(first, NULL) == local);
                CHECK(second + oracle_offset(second, NULL) == local);
                break;
        case TZ_LOCAL_GAP:
                CHECK(first == second);
                /* The transition: local time jumps from below LOCAL to above it. */
                CHECK(first - 1 + oracle_offset(first - 1, NULL) < local);
                CHECK(first + oracle_offset(first, NULL) > local);
                /* No instant shows LOCAL (all offsets here are whole minutes). */
                for (long off = -15 * 3600; off <= 15 * 3600; off += 60)
                        CHECK(oracle_offset(local - off, NULL) != off);
                break;
        default:
                ck_abort_msg("bad kind %d", kind);
        }
        CHECK(tz_local_to_instant(z, local) == first);
}

START_TEST(test_local_to_utc_matches_glibc) {
        const char *name = zones[_i];
        tz *z;

        CHECK_EQ(tz_load(name, &z), 0);
        oracle_set(name);

        /* Every real instant is among the instants its local time resolves to. */
        for (int i = 0; i < 3000; i++) {
                int64_t t = rnd_range(YEAR_1970, YEAR_2100), first, second;
                int64_t local = t + oracle_offset(t, NULL);
                tz_local_kind kind = tz_local_to_utc(z, local, &first, &second);

                CHECK_NE(kind, TZ_LOCAL_GAP);
                CHECK(first == t || second == t, "%s: local %lld resolved to %lld/%lld, not %lld",
                              name, (long long) local, (long long) first, (long long) second, (long long) t);
                check_local(z, local);
        }

        /* Around transitions, where gaps and repeats live. */
        int64_t t = rnd_range(YEAR_1970, YEAR_1970 + 86400 * 365);
        for (int i = 0; i < 12 && (t = tz_next_transition(z, t)) < YEAR_2100; i++) {
                int32_t before = tz_offset_at(z, t - 1), after = tz_offset_at(z, t);
                check_local(z, t + before - 1);
                check_local(z, t + before);
                check_local(z, t + (before + after) / 2);
                check_local(z, t + after - 1);
                check_local(z, t + after);
                t += rnd_range(0, 86400 * 365 * 5);
        }
        tz_cache_clear();
}
END_TEST

static void assert_local(const char *name, int64_t local, tz_local_kind kind, int64_t first, int64_t second) {
        tz *z;
        int64_t a = 0, b = 0;

        CHECK_EQ(tz_load(name, &z), 0);
        CHECK_EQ(tz_local_to_utc(z, local, &a, &b), kind);
        CHECK(a == first && b == second, "%s: got %lld/%lld, expected %lld/%lld", name,
                      (long long) a, (long long) b, (long long) first, (long long) second);
}

START_TEST(test_known_transitions) {
        tz *z;

        /* Europe/Amsterdam 2026: spring forward 02:00 -> 03:00, fall back 03:00 -> 02:00. */
        assert_local("Europe/Amsterdam", utc(2026, 3, 29, 2, 30, 0), TZ_LOCAL_GAP,
                     utc(2026, 3, 29, 1, 0, 0), utc(2026, 3, 29, 1, 0, 0));
        assert_local("Europe/Amsterdam", utc(2026, 10, 25, 2, 30, 0), TZ_LOCAL_REPEATED,
                     utc(2026, 10, 25, 0, 30, 0), utc(2026, 10, 25, 1, 30, 0));
        assert_local("Europe/Amsterdam", utc(2026, 3, 29, 3, 0, 0), TZ_LOCAL_UNIQUE,
                     utc(2026, 3, 29, 1, 0, 0), utc(2026, 3, 29, 1, 0, 0));
        assert_local("Europe/Amsterdam", utc(2026, 3, 29, 1, 59, 59), TZ_LOCAL_UNIQUE,
                     utc(2026, 3, 29, 0, 59, 59), utc(2026, 3, 29, 0, 59, 59));
        CHECK_EQ(tz_load("Europe/Amsterdam", &z), 0);
        CHECK(tz_local_to_instant(z, utc(2026, 3, 29, 2, 30, 0)) == utc(2026, 3, 29, 1, 0, 0));
        CHECK(tz_local_to_instant(z, utc(2026, 10, 25, 2, 30, 0)) == utc(2026, 10, 25, 0, 30, 0));
        CHECK(tz_next_transition(z, utc(2026, 1, 1, 0, 0, 0)) == utc(2026, 3, 29, 1, 0, 0));
        CHECK(tz_next_transition(z, utc(2026, 3, 29, 1, 0, 0)) == utc(2026, 10, 25, 1, 0, 0));
        CHECK(tz_next_transition(z, utc(2026, 3, 29, 0, 59, 59)) == utc(2026, 3, 29, 1, 0, 0));
        ck_assert_str_eq(tz_abbrev_at(z, utc(2026, 7, 1, 0, 0, 0)), "CEST");
        ck_assert_str_eq(tz_abbrev_at(z, utc(2026, 1, 1, 0, 0, 0)), "CET");
        /* Far past the last explicit transition of a fat file (2037). */
        CHECK(tz_next_transition(z, utc(2090, 1, 1, 0, 0, 0)) == utc(2090, 3, 26, 1, 0, 0));

        /* America/Santiago: M9.1.6/24 is midnight at the end of the first Saturday of
         * September; in 2026 that is Saturday 5th, so Sunday 6th 00:00..00:59 is missing. */
        CHECK_EQ(civil_weekday(2026, 9, 5), 6);
        assert_local("America/Santiago", utc(2026, 9, 6, 0, 0, 0), TZ_LOCAL_GAP,
                     utc(2026, 9, 6, 4, 0, 0), utc(2026, 9, 6, 4, 0, 0));
        assert_local("America/Santiago", utc(2026, 9, 6, 0, 59, 59), TZ_LOCAL_GAP,
                     utc(2026, 9, 6, 4, 0, 0), utc(2026, 9, 6, 4, 0, 0));
        assert_local("America/Santiago", utc(2026, 9, 6, 1, 0, 0), TZ_LOCAL_UNIQUE,
                     utc(2026, 9, 6, 4, 0, 0), utc(2026, 9, 6, 4, 0, 0));
        /* ... and M4.1.6/24: Saturday April 4th 2026 24:00 -03 becomes 23:00 -04. */
        assert_local("America/Santiago", utc(2026, 4, 4, 23, 30, 0), TZ_LOCAL_REPEATED,
                     utc(2026, 4, 5, 2, 30, 0), utc(2026, 4, 5, 3, 30, 0));

        /* Australia/Lord_Howe: a 30-minute shift. October 4th 2026 02:00 +10:30 -> 02:30 +11. */
        assert_local("Australia/Lord_Howe", utc(2026, 10, 4, 2, 15, 0), TZ_LOCAL_GAP,
                     utc(2026, 10, 3, 15, 30, 0), utc(2026, 10, 3, 15, 30, 0));
        /* April 5th 2026 02:00 +11 -> 01:30 +10:30. */
        assert_local("Australia/Lord_Howe", utc(2026, 4, 5, 1, 45, 0), TZ_LOCAL_REPEATED,
                     utc(2026, 4, 4, 14, 45, 0), utc(2026, 4, 4, 15, 15, 0));
        CHECK_EQ(tz_load("Australia/Lord_Howe", &z), 0);
        CHECK_EQ(tz_offset_at(z, utc(2026, 1, 1, 0, 0, 0)), 11 * 3600);
        CHECK_EQ(tz_offset_at(z, utc(2026, 7, 1, 0, 0, 0)), 10 * 3600 + 1800);

        /* Pacific/Chatham: +12:45 / +13:45, changing at 02:45 standard time. */
        CHECK_EQ(tz_load("Pacific/Chatham", &z), 0);
        CHECK_EQ(tz_offset_at(z, utc(2026, 1, 1, 0, 0, 0)), 13 * 3600 + 45 * 60);
        CHECK_EQ(tz_offset_at(z, utc(2026, 7, 1, 0, 0, 0)), 12 * 3600 + 45 * 60);
        ck_assert_str_eq(tz_abbrev_at(z, utc(2026, 7, 1, 0, 0, 0)), "+1245");
        assert_local("Pacific/Chatham", utc(2026, 9, 27, 3, 0, 0), TZ_LOCAL_GAP,
                     utc(2026, 9, 26, 14, 0, 0), utc(2026, 9, 26, 14, 0, 0));
        assert_local("Pacific/Chatham", utc(2026, 9, 27, 2, 44, 59), TZ_LOCAL_UNIQUE,
                     utc(2026, 9, 26, 13, 59, 59), utc(2026, 9, 26, 13, 59, 59));

        /* Asia/Kolkata has no DST at all. */
        CHECK_EQ(tz_load("Asia/Kolkata", &z), 0);
        CHECK_EQ(tz_offset_at(z, utc(2026, 6, 1, 0, 0, 0)), 5 * 3600 + 1800);
        CHECK(tz_next_transition(z, utc(2000, 1, 1, 0, 0, 0)) == INT64_MAX);
        tz_cache_clear();
}
END_TEST

/* ---- loading ------------------------------------------------------------------------------- */

START_TEST(test_names) {
        static const char *const invalid[] = {
                "", "/etc/passwd", "../etc/passwd", "Europe/../UTC", "Europe/./Amsterdam", "..",
                "Europe//Amsterdam", "Europe/Amsterdam/", "/UTC", "Europe Amsterdam", "zone.tab",
                "UTC\n", "Europe\\Amsterdam", "Europe/Amsterdam;", "~root",
        };
        char long_name[300];
        tz *z = NULL, *z2 = NULL;

        for (size_t i = 0; i < ELEMENTSOF(invalid); i++) {
                CHECK(tz_load(invalid[i], &z) == -EINVAL, "accepted \"%s\"", invalid[i]);
                ck_assert_ptr_null(z);
        }
        memset(long_name, 'A', sizeof(long_name) - 1);
        long_name[sizeof(long_name) - 1] = 0;
        CHECK_EQ(tz_load(long_name, &z), -EINVAL);
        CHECK_EQ(tz_load(NULL, &z), -EINVAL);

        CHECK_EQ(tz_load("Nowhere/Special", &z), -ENOENT);
        CHECK_EQ(tz_load("Europe/Amsterdam/Noord", &z), -ENOENT);
        CHECK_EQ(tz_load("America", &z), -ENOENT); /* a directory */
        ck_assert_ptr_null(z);

        /* Interned: the same object for the same name. */
        CHECK_EQ(tz_load("Etc/GMT+5", &z), 0);
        CHECK_EQ(tz_load("Etc/GMT+5", &z2), 0);
        ck_assert_ptr_eq(z, z2);
        ck_assert_str_eq(tz_name(z), "Etc/GMT+5");
        CHECK_EQ(tz_offset_at(z, 0), -5 * 3600);

        CHECK_EQ(tz_load("UTC", &z), 0);
        ck_assert_str_eq(tz_name(z), "UTC");
        CHECK_EQ(tz_offset_at(z, utc(2026, 7, 1, 0, 0, 0)), 0);
        ck_assert_str_eq(tz_abbrev_at(z, 0), "UTC");
        CHECK(tz_next_transition(z, INT64_MIN) == INT64_MAX);
        int64_t a, b;
        CHECK_EQ(tz_local_to_utc(z, 12345, &a, &b), TZ_LOCAL_UNIQUE);
        CHECK(a == 12345 && b == 12345);
        tz_cache_clear();
}
END_TEST

/* A TZif image built by hand. */
typedef struct image {
        uint8_t buf[4096];
        size_t n;
} image;

static void put(image *im, const void *p, size_t n) {
        CHECK(im->n + n <= sizeof(im->buf));
        memcpy(im->buf + im->n, p, n);
        im->n += n;
}

static void put32(image *im, uint32_t v) {
        uint8_t b[4] = { v >> 24, v >> 16, v >> 8, v };
        put(im, b, 4);
}

static void put64(image *im, int64_t v) {
        put32(im, (uint32_t) ((uint64_t) v >> 32));
        put32(im, (uint32_t) v);
}

static void put_header(image *im, char version, uint32_t timecnt, uint32_t typecnt, uint32_t charcnt,
                       uint32_t leapcnt) {
        uint8_t reserved[15] = {};
        put(im, "TZif", 4);
        put(im, &version, 1);
        put(im, reserved, 15);
        put32(im, 0); /* isutcnt */
        put32(im, 0); /* isstdcnt */
        put32(im, leapcnt);
        put32(im, timecnt);
        put32(im, typecnt);
        put32(im, charcnt);
}

static void put_type(image *im, int32_t off, uint8_t isdst, uint8_t idx) {
        put32(im, (uint32_t) off);
        put(im, &isdst, 1);
        put(im, &idx, 1);
}

/* Version 1: two transitions, 32-bit times. */
static void make_v1(image *im, int64_t t1, int64_t t2) {
        *im = (image) {};
        put_header(im, 0, 2, 2, 8, 0);
        put32(im, (uint32_t) t1);
        put32(im, (uint32_t) t2);
        put(im, "\x01\x00", 2);
        put_type(im, 3600, 0, 0);
        put_type(im, 7200, 1, 4);
        put(im, "AAA\0BBB\0", 8);
}

/* Version 2: a decoy 32-bit block, then the real 64-bit block and FOOTER. */
static void make_v2(image *im, const char *footer) {
        *im = (image) {};
        put_header(im, '2', 0, 1, 4, 0);
        put_type(im, -7 * 3600, 0, 0);
        put(im, "ZZZ\0", 4);
        put_header(im, '2', 2, 2, 8, 0);
        put64(im, -INT64_C(5000000000));
        put64(im, INT64_C(5000000000)); /* beyond 2038 */
        put(im, "\x01\x00", 2);
        put_type(im, 3600, 0, 0);
        put_type(im, 10800, 0, 4);
        put(im, "AAA\0CCC\0", 8);
        put(im, "\n", 1);
        put(im, footer, strlen(footer));
        put(im, "\n", 1);
}

START_TEST(test_tzif_parsing) {
        image im;
        tz *z = NULL;

        make_v1(&im, 1000000, 2000000);
        CHECK_EQ(tz_new_from_tzif("v1", im.buf, im.n, &z), 0);
        CHECK_EQ(tz_offset_at(z, 0), 3600); /* type 0 before the first transition */
        CHECK_EQ(tz_offset_at(z, 999999), 3600);
        CHECK_EQ(tz_offset_at(z, 1000000), 7200);
        ck_assert_str_eq(tz_abbrev_at(z, 1000000), "BBB");
        CHECK_EQ(tz_offset_at(z, 2000000), 3600);
        ck_assert_str_eq(tz_abbrev_at(z, INT64_MAX), "AAA");
        CHECK(tz_next_transition(z, 0) == 1000000);
        CHECK(tz_next_transition(z, 1000000) == 2000000);
        CHECK(tz_next_transition(z, 2000000) == INT64_MAX);
        z = tz_free(z);
        ck_assert_ptr_null(z);

        make_v2(&im, "CCC-3");
        CHECK_EQ(tz_new_from_tzif("v2", im.buf, im.n, &z), 0);
        CHECK_EQ(tz_offset_at(z, 0), 10800);
        CHECK_EQ(tz_offset_at(z, INT64_C(5000000000)), 3600);
        z = tz_free(z);

        /* The footer rule takes over after the last transition. */
        make_v2(&im, "AAA-1BBB,M3.5.0,M10.5.0/3");
        CHECK_EQ(tz_new_from_tzif("v2rule", im.buf, im.n, &z), 0);
        CHECK_EQ(tz_offset_at(z, INT64_C(5000000000)), 3600);
        CHECK_EQ(tz_offset_at(z, utc(2200, 7, 1, 0, 0, 0)), 7200);
        ck_assert_str_eq(tz_abbrev_at(z, utc(2200, 7, 1, 0, 0, 0)), "BBB");
        CHECK(tz_next_transition(z, utc(2200, 1, 1, 0, 0, 0)) == utc(2200, 3, 30, 1, 0, 0));
        z = tz_free(z);

        /* Damaged images. */
        for (size_t cut = 0; cut < im.n; cut += 7)
                CHECK_EQ(tz_new_from_tzif("cut", im.buf, cut, &z), -EBADMSG);
        make_v2(&im, "not a rule");
        CHECK_EQ(tz_new_from_tzif("bad", im.buf, im.n, &z), -EBADMSG);
        make_v1(&im, 2000000, 1000000);
        CHECK_EQ(tz_new_from_tzif("unsorted", im.buf, im.n, &z), -EBADMSG);
        make_v1(&im, 1000000, 2000000);
        im.buf[44 + 8] = 2; /* type index out of range */
        CHECK_EQ(tz_new_from_tzif("badindex", im.buf, im.n, &z), -EBADMSG);
        make_v1(&im, 1000000, 2000000);
        im.buf[0] = 'X';
        CHECK_EQ(tz_new_from_tzif("magic", im.buf, im.n, &z), -EBADMSG);

        im = (image) {};
        put_header(&im, 0, 0, 1, 4, 1);
        put_type(&im, 0, 0, 0);
        put(&im, "UTC\0", 4);
        put64(&im, 0);
        CHECK_EQ(tz_new_from_tzif("right/UTC", im.buf, im.n, &z), -EOPNOTSUPP);
        ck_assert_ptr_null(z);
}
END_TEST

START_TEST(test_tzdir) {
        char dir[] = "/tmp/test_tz.XXXXXX", path[128];
        image im;
        tz *z = NULL;
        FILE *f;

        CHECK((mkdtemp(dir)) != NULL);
        snprintf(path, sizeof(path), "%s/Test", dir);
        CHECK_EQ(mkdir(path, 0700), 0);

        make_v1(&im, 1000000, 2000000);
        snprintf(path, sizeof(path), "%s/Test/One", dir);
        CHECK((f = fopen(path, "w")) != NULL);
        CHECK_EQ(fwrite(im.buf, 1, im.n, f), im.n);
        fclose(f);
        snprintf(path, sizeof(path), "%s/Test/Text", dir);
        CHECK((f = fopen(path, "w")) != NULL);
        fputs("# not a zone\n", f);
        fclose(f);

        CHECK_EQ(setenv("TZDIR", dir, 1), 0);
        CHECK_EQ(tz_load("Test/One", &z), 0);
        CHECK_EQ(tz_offset_at(z, 1500000), 7200);
        CHECK_EQ(tz_load("Test/Text", &z), -EBADMSG);
        CHECK_EQ(tz_load("Europe/Amsterdam", &z), -ENOENT);
        /* UTC works without tzdata. */
        CHECK_EQ(tz_load("UTC", &z), 0);
        CHECK_EQ(tz_offset_at(z, 0), 0);
        ck_assert_str_eq(tz_name(z), "UTC");
        unsetenv("TZDIR");
        tz_cache_clear();

        snprintf(path, sizeof(path), "%s/Test/One", dir);
        unlink(path);
        snprintf(path, sizeof(path), "%s/Test/Text", dir);
        unlink(path);
        snprintf(path, sizeof(path), "%s/Test", dir);
        rmdir(path);
        rmdir(dir);
}
END_TEST

static Suite *tz_suite(void) {
        Suite *s = suite_create("tz");
        TCase *tc;

        tc = tcase_create("civil");
        tcase_add_test(tc, test_leap_and_month_lengths);
        tcase_add_test(tc, test_weekdays);
        tcase_add_test(tc, test_sequential_days);
        tcase_add_test(tc, test_round_trips);
        tcase_add_test(tc, test_civil_valid);
        suite_add_tcase(s, tc);

        tc = tcase_create("zones");
        tcase_set_timeout(tc, 120);
        tcase_add_loop_test(tc, test_offsets_match_glibc, 0, ELEMENTSOF(zones));
        tcase_add_loop_test(tc, test_posix_strings_match_glibc, 0, ELEMENTSOF(posix_specs));
        tcase_add_test(tc, test_posix_special_rules);
        tcase_add_test(tc, test_far_instants);
        tcase_add_loop_test(tc, test_local_to_utc_matches_glibc, 0, ELEMENTSOF(zones));
        tcase_add_test(tc, test_known_transitions);
        suite_add_tcase(s, tc);

        tc = tcase_create("loading");
        tcase_add_test(tc, test_names);
        tcase_add_test(tc, test_tzif_parsing);
        tcase_add_test(tc, test_tzdir);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(tz_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
