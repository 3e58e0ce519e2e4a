/* SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <inttypes.h>

#include "basic/duration.h"

static const struct {
        const char *suffix;
        usec_t usec;
} units[] = {
        /* longest suffix first so "ms" is not read as "m" followed by junk */
        { "us", 1 },
        { "ms", USEC_PER_MSEC },
        { "s", USEC_PER_SEC },
        { "m", USEC_PER_MINUTE },
        { "h", USEC_PER_HOUR },
        { "d", USEC_PER_DAY },
        { "w", 7 * USEC_PER_DAY },
};

int duration_parse(const char *s, usec_t *ret, parse_error *e) {
        const char *p = s;
        usec_t total = 0;
        unsigned terms = 0;

        if (!s)
                return parse_error_set(e, 0, "expected a duration like 30s, 5m or 1h30m, found nothing");

        while (*p == ' ')
                p++;
        if (*p == '\0')
                return parse_error_set(e, 0, "expected a duration like 30s, 5m or 1h30m, found an empty string");

        while (*p) {
                const char *start = p;
                uint64_t n = 0;

                if (!isdigit((unsigned char) *p))
                        return parse_error_set(e, (size_t) (p - s),
                                               "expected a number at \"%s\" (durations look like 30s, 5m or 1h30m)", p);
                while (isdigit((unsigned char) *p)) {
                        unsigned d = (unsigned) (*p - '0');
                        if (n > (UINT64_MAX - d) / 10)
                                return parse_error_set(e, (size_t) (start - s), "number \"%.*s...\" is too large",
                                                       (int) (p - start), start);
                        n = n * 10 + d;
                        p++;
                }

                size_t best = 0;
                usec_t mult = 0;
                for (size_t i = 0; i < ELEMENTSOF(units); i++) {
                        size_t l = strlen(units[i].suffix);
                        if (l > best && strncmp(p, units[i].suffix, l) == 0 && !isalpha((unsigned char) p[l])) {
                                best = l;
                                mult = units[i].usec;
                        }
                }
                if (best == 0) {
                        /* "0" alone is unambiguous; any other number needs a unit */
                        if (n == 0 && terms == 0 && (*p == '\0' || *p == ' ')) {
                                mult = 1;
                        } else if (*p == '\0' || *p == ' ')
                                return parse_error_set(e, (size_t) (p - s),
                                                       "missing unit after \"%.*s\": expected one of us, ms, s, m, h, d, w",
                                                       (int) (p - start), start);
                        else
                                return parse_error_set(e, (size_t) (p - s),
                                                       "unknown unit \"%.*s\": expected one of us, ms, s, m, h, d, w",
                                                       (int) strcspn(p, " 0123456789"), p);
                }
                p += best;

                if (mult != 0 && n > UINT64_MAX / mult)
                        return parse_error_set(e, (size_t) (start - s), "duration \"%s\" is too large", s);
                if (n * mult > UINT64_MAX - 1 - total) /* keep USEC_INFINITY unreachable */
                        return parse_error_set(e, (size_t) (start - s), "duration \"%s\" is too large", s);
                total += n * mult;
                terms++;

                while (*p == ' ')
                        p++;
        }

        *ret = total;
        return 0;
}

char *duration_format(usec_t u, char *buf, size_t n) {
        static const struct {
                const char *suffix;
                usec_t usec;
        } f[] = {
                { "d", USEC_PER_DAY }, { "h", USEC_PER_HOUR }, { "m", USEC_PER_MINUTE },
                { "s", USEC_PER_SEC }, { "ms", USEC_PER_MSEC }, { "us", 1 },
        };
        size_t len = 0;

        if (n == 0)
                return buf;
        buf[0] = '\0';
        if (u == USEC_INFINITY) {
                snprintf(buf, n, "infinity");
                return buf;
        }
        if (u == 0) {
                snprintf(buf, n, "0");
                return buf;
        }
        for (size_t i = 0; i < ELEMENTSOF(f) && u > 0; i++) {
                if (u < f[i].usec)
                        continue;
                int w = snprintf(buf + len, n - len, "%" PRIu64 "%s", u / f[i].usec, f[i].suffix);
                if (w < 0 || (size_t) w >= n - len)
                        break;
                len += (size_t) w;
                u %= f[i].usec;
        }
        return buf;
}
