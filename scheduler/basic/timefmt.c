/* SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <inttypes.h>

#include "basic/civil.h"
#include "basic/timefmt.h"

char *timefmt_rfc3339(usec_t t, const tz *z, bool millis, char *buf, size_t n) {
        int64_t secs = (int64_t) (t / USEC_PER_SEC);
        int32_t off = z ? tz_offset_at(z, secs) : 0;
        civil c;
        char frac[16] = "", zone[16] = "Z";

        civil_from_seconds(secs + off, &c);
        if (millis)
                snprintf(frac, sizeof(frac), ".%03u", (unsigned) ((t % USEC_PER_SEC) / USEC_PER_MSEC));
        if (z) {
                int32_t a = off < 0 ? -off : off;
                snprintf(zone, sizeof(zone), "%c%02d:%02d", off < 0 ? '-' : '+', (int) (a / 3600),
                         (int) (a % 3600 / 60));
        }
        snprintf(buf, n, "%04d-%02d-%02dT%02d:%02d:%02d%s%s", c.year, c.month, c.day, c.hour, c.minute, c.second,
                 frac, zone);
        return buf;
}

static bool digits(const char *s, size_t k, int *ret) {
        int v = 0;
        for (size_t i = 0; i < k; i++) {
                if (!isdigit((unsigned char) s[i]))
                        return false;
                v = v * 10 + (s[i] - '0');
        }
        *ret = v;
        return true;
}

int timefmt_parse(const char *s, const tz *local_zone, usec_t *ret, parse_error *e) {
        return timefmt_parse_local(s, local_zone, ret, NULL, e);
}

int timefmt_parse_local(const char *s, const tz *local_zone, usec_t *ret, tz_local_kind *ret_kind, parse_error *e) {
        tz_local_kind kind = TZ_LOCAL_UNIQUE;
        civil c = {};
        const char *p = s;
        usec_t frac = 0;

        if (!digits(p, 4, &c.year) || p[4] != '-' || !digits(p + 5, 2, &c.month) || p[7] != '-' ||
            !digits(p + 8, 2, &c.day))
                return parse_error_set(e, 0, "expected a date-time like 2026-03-29T07:00:00Z, found \"%s\"", s);
        p += 10;
        if (*p == 'T' || *p == 't' || *p == ' ') {
                p++;
                if (!digits(p, 2, &c.hour) || p[2] != ':' || !digits(p + 3, 2, &c.minute))
                        return parse_error_set(e, (size_t) (p - s), "expected HH:MM after the date in \"%s\"", s);
                p += 5;
                if (*p == ':') {
                        if (!digits(p + 1, 2, &c.second))
                                return parse_error_set(e, (size_t) (p - s), "expected seconds after \"HH:MM:\" in \"%s\"", s);
                        p += 3;
                        if (*p == '.') {
                                usec_t scale = 100000;
                                p++;
                                if (!isdigit((unsigned char) *p))
                                        return parse_error_set(e, (size_t) (p - s), "expected digits after '.' in \"%s\"", s);
                                while (isdigit((unsigned char) *p)) {
                                        frac += (usec_t) (*p - '0') * scale;
                                        scale /= 10;
                                        p++;
                                }
                        }
                }
        }
        if (c.month < 1 || c.month > 12 || c.day < 1 || c.day > civil_days_in_month(c.year, c.month) || c.hour > 23 ||
            c.minute > 59)
                return parse_error_set(e, 0, "\"%s\" is not a valid date-time", s);
        /* time_t has no leap seconds: :60 would silently stand for :59 or the next minute */
        if (c.second > 59)
                return parse_error_set(e, 0, "\"%s\": seconds must be 00 to 59", s);

        int64_t local = civil_to_seconds(&c), t;
        if (*p == 'Z' || *p == 'z') {
                t = local;
                p++;
        } else if (*p == '+' || *p == '-') {
                int hh, mm;
                int sign = *p == '-' ? -1 : 1;
                if (!digits(p + 1, 2, &hh) || p[3] != ':' || !digits(p + 4, 2, &mm) || hh > 23 || mm > 59)
                        return parse_error_set(e, (size_t) (p - s), "expected an offset like +02:00 in \"%s\"", s);
                t = local - sign * (hh * 3600 + mm * 60);
                p += 6;
        } else if (*p == '\0' && local_zone) {
                int64_t second;
                kind = tz_local_to_utc(local_zone, local, &t, &second);
        }
        else if (*p == '\0')
                return parse_error_set(e, (size_t) (p - s), "\"%s\" has no UTC offset; add Z or an offset like +02:00", s);
        else
                return parse_error_set(e, (size_t) (p - s), "unexpected \"%s\" in date-time \"%s\"", p, s);
        if (*p != '\0')
                return parse_error_set(e, (size_t) (p - s), "unexpected \"%s\" after the date-time", p);
        if (t < 0)
                return parse_error_set(e, 0, "\"%s\" is before 1970", s);
        if (t > INT64_C(253402300799)) /* 9999-12-31T23:59:59Z: what timefmt_rfc3339() can write back */
                return parse_error_set(e, 0, "\"%s\" is after the year 9999 in UTC", s);
        *ret = (usec_t) t * USEC_PER_SEC + frac;
        if (ret_kind)
                *ret_kind = kind;
        return 0;
}
