/* SPDX-License-Identifier: MIT */
/* IANA zones from TZif files (RFC 8536), read by our own parser.
 *
 * A zone is one sorted table of transitions (instant -> local time type). The file's explicit
 * transitions come first; when the POSIX TZ footer has a DST rule, the rule's transitions are
 * generated into the same table for a little over one 400-year Gregorian cycle after the last
 * explicit one. A footer rule only depends on the calendar, and the calendar repeats exactly
 * every 146097 days, so any later instant is folded back into that generated cycle. Every query
 * is therefore one binary search over an immutable table: no per-year cache, no mutation, safe
 * to share between threads once loaded. */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sys/stat.h>

#include "basic/civil.h"
#include "basic/tz.h"

#define SECONDS_PER_DAY 86400
#define CYCLE_SECONDS ((int64_t) 146097 * SECONDS_PER_DAY)
#define CYCLE_YEARS 400
#define TZIF_HEADER_SIZE 44
#define TZIF_MAX_SIZE (4 * 1024 * 1024)
#define TZ_NAME_MAX 255
#define ABBREV_MAX 64
/* RFC 8536 says offsets should lie in -89999..93599; tz_local_to_utc() relies on the bound. */
#define OFFSET_MIN (-89999)
#define OFFSET_MAX 93599
/* Beyond about a million years from the epoch a file's transitions are nonsense; we then do
 * not extend them by the footer rule rather than risk overflowing the calendar arithmetic. */
#define RULE_LIMIT_SECONDS ((int64_t) 1 << 45)
/* Local times are resolved by scanning instants within this distance; it exceeds any offset. */
#define LOCAL_WINDOW (2 * SECONDS_PER_DAY)

typedef struct tz_type {
        int32_t offset;
        bool isdst;
        const char *abbrev;
} tz_type;

typedef enum rule_kind {
        RULE_JULIAN,     /* Jn: 1..365, February 29th never counted */
        RULE_ZERO_BASED, /* n: 0..365, February 29th counted in leap years */
        RULE_MONTH,      /* Mm.w.d: day d (0 = Sunday) of week w (5 = last) of month m */
} rule_kind;

typedef struct tz_rule {
        rule_kind kind;
        int day;
        int week;
        int month;
        int32_t time; /* seconds after local midnight, -167h..167h */
} tz_rule;

typedef struct posix_tz {
        char std_name[ABBREV_MAX];
        char dst_name[ABBREV_MAX];
        int32_t std_offset; /* seconds east of Greenwich */
        int32_t dst_offset;
        bool has_dst;
        tz_rule start;
        tz_rule end;
} posix_tz;

struct tz {
        char *name;
        tz_type *types;
        size_t n_types;
        char *abbrevs; /* storage for every types[].abbrev */

        int64_t *times; /* strictly increasing */
        uint16_t *type_index;
        size_t n_times;
        size_t n_explicit; /* the first n_explicit entries come from the file */
        uint16_t before_type; /* type in effect before times[0] */

        /* With a DST footer rule: instants >= period_start + CYCLE_SECONDS (and, for zones
         * with no explicit transitions, instants < period_start) are folded into
         * [period_start, period_start + CYCLE_SECONDS), which the table covers. */
        bool periodic;
        int64_t period_start;

        struct tz *next_cached;
};

static int64_t div_floor(int64_t a, int64_t b) {
        int64_t q = a / b;
        if ((a % b != 0) && ((a < 0) != (b < 0)))
                q--;
        return q;
}

static int64_t mod_floor(int64_t a, int64_t b) {
        int64_t r = a % b;
        return r < 0 ? r + b : r;
}

static int64_t add_saturated(int64_t a, int64_t b) {
        int64_t r;
        if (__builtin_add_overflow(a, b, &r))
                return b > 0 ? INT64_MAX : INT64_MIN;
        return r;
}

/* ---- POSIX TZ strings ------------------------------------------------------------------ */

static bool is_alpha(char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static bool is_digit(char c) {
        return c >= '0' && c <= '9';
}

/* Zone abbreviation: three or more letters, or <...> holding letters, digits, '+' and '-'. */
static const char *parse_abbrev(const char *p, char buf[static ABBREV_MAX]) {
        size_t n = 0;

        if (*p == '<') {
                p++;
                while (is_alpha(*p) || is_digit(*p) || *p == '+' || *p == '-') {
                        if (n >= ABBREV_MAX - 1)
                                return NULL;
                        buf[n++] = *p++;
                }
                if (*p != '>' || n < 1)
                        return NULL;
                p++;
        } else {
                while (is_alpha(*p)) {
                        if (n >= ABBREV_MAX - 1)
                                return NULL;
                        buf[n++] = *p++;
                }
                if (n < 3)
                        return NULL;
        }
        buf[n] = 0;
        return p;
}

static const char *parse_number(const char *p, int max_digits, int max, int *ret) {
        int v = 0, n = 0;

        while (is_digit(*p)) {
                if (++n > max_digits)
                        return NULL;
                v = v * 10 + (*p++ - '0');
        }
        if (n == 0 || v > max)
                return NULL;
        *ret = v;
        return p;
}

/* [+-]hh[:mm[:ss]] with hh <= MAX_HOURS; returns signed seconds. */
static const char *parse_hms(const char *p, int max_hours, int32_t *ret) {
        int sign = 1, h, m = 0, s = 0;

        if (*p == '+' || *p == '-')
                sign = *p++ == '-' ? -1 : 1;
        p = parse_number(p, 3, max_hours, &h);
        if (p && *p == ':') {
                p = parse_number(p + 1, 2, 59, &m);
                if (p && *p == ':')
                        p = parse_number(p + 1, 2, 59, &s);
        }
        if (!p)
                return NULL;
        *ret = sign * (h * 3600 + m * 60 + s);
        return p;
}

static const char *parse_rule(const char *p, tz_rule *ret) {
        tz_rule r = { .time = 2 * 3600 };

        if (*p == 'J') {
                r.kind = RULE_JULIAN;
                p = parse_number(p + 1, 3, 365, &r.day);
                if (p && r.day < 1)
                        return NULL;
        } else if (*p == 'M') {
                r.kind = RULE_MONTH;
                p = parse_number(p + 1, 2, 12, &r.month);
                if (p && *p == '.')
                        p = parse_number(p + 1, 1, 5, &r.week);
                else
                        p = NULL;
                if (p && *p == '.')
                        p = parse_number(p + 1, 1, 6, &r.day);
                else
                        p = NULL;
                if (p && (r.month < 1 || r.week < 1))
                        return NULL;
        } else {
                r.kind = RULE_ZERO_BASED;
                p = parse_number(p, 3, 365, &r.day);
        }
        if (p && *p == '/')
                p = parse_hms(p + 1, 167, &r.time);
        if (!p)
                return NULL;
        *ret = r;
        return p;
}

static int posix_tz_parse(const char *s, posix_tz *ret) {
        posix_tz t = {};
        const char *p = s;
        int32_t off;

        p = parse_abbrev(p, t.std_name);
        if (!p)
                return -EINVAL;
        p = parse_hms(p, 24, &off);
        if (!p)
                return -EINVAL;
        /* POSIX offsets count west of Greenwich. */
        t.std_offset = -off;
        if (*p == 0) {
                *ret = t;
                return 0;
        }

        t.has_dst = true;
        p = parse_abbrev(p, t.dst_name);
        if (!p)
                return -EINVAL;
        t.dst_offset = t.std_offset + 3600;
        if (*p != ',' && *p != 0) {
                p = parse_hms(p, 24, &off);
                if (!p)
                        return -EINVAL;
                t.dst_offset = -off;
        }
        if (*p == 0) {
                /* POSIX leaves the rule to the implementation; glibc and tzcode use the US one. */
                t.start = (tz_rule) { .kind = RULE_MONTH, .month = 3, .week = 2, .day = 0, .time = 7200 };
                t.end = (tz_rule) { .kind = RULE_MONTH, .month = 11, .week = 1, .day = 0, .time = 7200 };
        } else {
                if (*p != ',')
                        return -EINVAL;
                p = parse_rule(p + 1, &t.start);
                if (!p || *p != ',')
                        return -EINVAL;
                p = parse_rule(p + 1, &t.end);
                if (!p || *p != 0)
                        return -EINVAL;
        }
        *ret = t;
        return 0;
}

/* Days since the epoch of the date rule R names in YEAR. */
static int64_t rule_day(const tz_rule *r, int64_t year) {
        int64_t jan1 = civil_days_from_date(year, 1, 1);
        bool leap = civil_is_leap_year((int) year);

        switch (r->kind) {
        case RULE_JULIAN:
                return jan1 + r->day - 1 + (leap && r->day >= 60);
        case RULE_ZERO_BASED:
                return jan1 + r->day;
        case RULE_MONTH: {
                int64_t first = civil_days_from_date(year, r->month, 1);
                int wday_first = (int) mod_floor(first + 4, 7); /* 1970-01-01 was a Thursday */
                int64_t d = first + (r->day - wday_first + 7) % 7 + (int64_t) (r->week - 1) * 7;

                if (d - first >= civil_days_in_month((int) year, r->month))
                        d -= 7;
                return d;
        }
        }
        return jan1;
}

/* ---- the zone table ------------------------------------------------------------------------ */

tz *tz_free(tz *z) {
        if (!z)
                return NULL;
        free(z->name);
        free(z->types);
        free(z->abbrevs);
        free(z->times);
        free(z->type_index);
        free(z);
        return NULL;
}

/* Number of transitions at or before T. */
static size_t upper_bound(const tz *z, int64_t t) {
        size_t lo = 0, hi = z->n_times;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (z->times[mid] <= t)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo;
}

/* Folds T into the range the table covers; see struct tz. */
static int64_t fold(const tz *z, int64_t t) {
        if (!z->periodic)
                return t;
        if (t < z->period_start + CYCLE_SECONDS && (z->n_explicit > 0 || t >= z->period_start))
                return t;
        /* Computed piecewise so that no intermediate overflows, even for INT64_MIN/MAX. */
        return z->period_start +
               mod_floor(mod_floor(t, CYCLE_SECONDS) - mod_floor(z->period_start, CYCLE_SECONDS), CYCLE_SECONDS);
}

static const tz_type *type_at(const tz *z, int64_t t) {
        size_t i = upper_bound(z, fold(z, t));
        return &z->types[i == 0 ? z->before_type : z->type_index[i - 1]];
}

typedef struct rule_transition {
        int64_t time;
        uint16_t type;
} rule_transition;

/* Appends the footer rule's transitions after the explicit ones; see the top of the file. */
static int zone_extend_by_rule(tz *z, const posix_tz *p, uint16_t std_type, uint16_t dst_type) {
        int64_t last = z->n_explicit > 0 ? z->times[z->n_explicit - 1] : 0;
        int64_t first_year, y, year_of_last, limit;
        int month, day;
        size_t n = 0, cap = 2 * (CYCLE_YEARS + 5), kept;
        rule_transition *v;
        int64_t *times;
        uint16_t *idx;

        if (last > RULE_LIMIT_SECONDS || last < -RULE_LIMIT_SECONDS)
                return 0;

        civil_date_from_days(div_floor(last, SECONDS_PER_DAY), &year_of_last, &month, &day);
        first_year = z->n_explicit > 0 ? year_of_last + 1 : 1970;
        z->period_start = civil_days_from_date(first_year, 1, 1) * SECONDS_PER_DAY;

        v = calloc(cap, sizeof(*v));
        if (!v)
                return -ENOMEM;
        for (y = first_year - 1; y <= first_year + CYCLE_YEARS + 3; y++) {
                int64_t s = rule_day(&p->start, y) * SECONDS_PER_DAY + p->start.time - p->std_offset;
                int64_t e = rule_day(&p->end, y) * SECONDS_PER_DAY + p->end.time - p->dst_offset;

                if (s <= e) {
                        v[n++] = (rule_transition) { s, dst_type };
                        v[n++] = (rule_transition) { e, std_type };
                } else {
                        v[n++] = (rule_transition) { e, std_type };
                        v[n++] = (rule_transition) { s, dst_type };
                }
        }

        /* Nearly sorted already; an insertion sort keeps equal instants in generation order,
         * so that a DST end meeting the next DST start (DST all year) resolves to DST. */
        for (size_t i = 1; i < n; i++) {
                rule_transition x = v[i];
                size_t j = i;
                while (j > 0 && v[j - 1].time > x.time) {
                        v[j] = v[j - 1];
                        j--;
                }
                v[j] = x;
        }

        times = realloc(z->times, (z->n_explicit + n) * sizeof(*times));
        if (!times) {
                free(v);
                return -ENOMEM;
        }
        z->times = times;
        idx = realloc(z->type_index, (z->n_explicit + n) * sizeof(*idx));
        if (!idx) {
                free(v);
                return -ENOMEM;
        }
        z->type_index = idx;

        /* The last years generated only give the kept ones their neighbours: a year's final
         * transition is only known to stand once the next year's first one is known. */
        limit = civil_days_from_date(first_year + CYCLE_YEARS + 2, 1, 1) * SECONDS_PER_DAY;
        kept = z->n_explicit;
        for (size_t i = 0; i < n; i++) {
                if (z->n_explicit > 0 && v[i].time <= last)
                        continue;
                if (v[i].time >= limit)
                        break;
                if (i + 1 < n && v[i + 1].time == v[i].time)
                        continue; /* the later of two simultaneous transitions wins */
                if (kept > 0 && z->type_index[kept - 1] == v[i].type)
                        continue;
                z->times[kept] = v[i].time;
                z->type_index[kept] = v[i].type;
                kept++;
        }
        free(v);
        z->n_times = kept;
        z->periodic = true;
        return 0;
}

/* Builds a zone from the file's parts. FOOTER may be NULL. TYPES' abbrev fields are indexes
 * into CHARS (cast to pointers later). */
static int zone_new(const char *name,
                    const int64_t *times, const uint8_t *type_index, size_t n_times,
                    const tz_type *file_types, const size_t *abbrev_idx, size_t n_file_types,
                    const char *chars, size_t n_chars,
                    const posix_tz *footer, tz **ret) {
        _cleanup_(tz_freep) tz *z = NULL;
        size_t std_len = footer ? strlen(footer->std_name) : 0;
        size_t dst_len = footer && footer->has_dst ? strlen(footer->dst_name) : 0;
        size_t n_abbrevs = n_chars + 1 + std_len + 1 + dst_len + 1;
        uint16_t std_type = 0, dst_type = 0;
        int r;

        z = calloc(1, sizeof(*z));
        if (!z)
                return -ENOMEM;
        z->name = strdup(name);
        z->types = calloc(n_file_types + 2, sizeof(*z->types));
        z->abbrevs = calloc(n_abbrevs, 1);
        z->times = calloc(n_times + 1, sizeof(*z->times));
        z->type_index = calloc(n_times + 1, sizeof(*z->type_index));
        if (!z->name || !z->types || !z->abbrevs || !z->times || !z->type_index)
                return -ENOMEM;

        memcpy(z->abbrevs, chars, n_chars);
        for (size_t i = 0; i < n_file_types; i++) {
                z->types[i] = file_types[i];
                z->types[i].abbrev = z->abbrevs + abbrev_idx[i];
        }
        z->n_types = n_file_types;
        if (n_times > 0) {
                memcpy(z->times, times, n_times * sizeof(*times));
                for (size_t i = 0; i < n_times; i++)
                        z->type_index[i] = type_index[i];
        }
        z->n_times = z->n_explicit = n_times;
        /* RFC 8536: type 0 before the first transition. */
        z->before_type = 0;

        if (footer) {
                char *a = z->abbrevs + n_chars + 1;

                memcpy(a, footer->std_name, std_len);
                std_type = (uint16_t) z->n_types++;
                z->types[std_type] = (tz_type) { .offset = footer->std_offset, .isdst = false, .abbrev = a };
                if (footer->has_dst) {
                        a += std_len + 1;
                        memcpy(a, footer->dst_name, dst_len);
                        dst_type = (uint16_t) z->n_types++;
                        z->types[dst_type] = (tz_type) { .offset = footer->dst_offset, .isdst = true, .abbrev = a };
                }
                if (n_times == 0)
                        z->before_type = std_type;
                if (footer->has_dst) {
                        r = zone_extend_by_rule(z, footer, std_type, dst_type);
                        if (r < 0)
                                return r;
                }
        }

        *ret = TAKE_PTR(z);
        return 0;
}

int tz_new_from_posix(const char *spec, tz **ret) {
        posix_tz p;
        int r;

        if (!spec)
                return -EINVAL;
        r = posix_tz_parse(spec, &p);
        if (r < 0)
                return r;
        if (p.std_offset < OFFSET_MIN || p.std_offset > OFFSET_MAX ||
            (p.has_dst && (p.dst_offset < OFFSET_MIN || p.dst_offset > OFFSET_MAX)))
                return -EINVAL;
        return zone_new(spec, NULL, NULL, 0, NULL, NULL, 0, "", 0, &p, ret);
}

/* ---- TZif ----------------------------------------------------------------------------------- */

typedef struct tzif_counts {
        uint32_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
} tzif_counts;

static uint32_t be32(const uint8_t *p) {
        return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
}

static int64_t be64(const uint8_t *p) {
        return (int64_t) ((uint64_t) be32(p) << 32 | be32(p + 4));
}

static int tzif_header(const uint8_t *p, size_t size, tzif_counts *ret) {
        if (size < TZIF_HEADER_SIZE || memcmp(p, "TZif", 4) != 0)
                return -EBADMSG;
        *ret = (tzif_counts) {
                .isutcnt = be32(p + 20),
                .isstdcnt = be32(p + 24),
                .leapcnt = be32(p + 28),
                .timecnt = be32(p + 32),
                .typecnt = be32(p + 36),
                .charcnt = be32(p + 40),
        };
        return 0;
}

static uint64_t tzif_block_size(const tzif_counts *c, unsigned timesize) {
        return (uint64_t) c->timecnt * timesize + c->timecnt + (uint64_t) c->typecnt * 6 + c->charcnt +
               (uint64_t) c->leapcnt * (timesize + 4) + c->isstdcnt + c->isutcnt;
}

int tz_new_from_tzif(const char *name, const void *data, size_t size, tz **ret) {
        const uint8_t *p = data;
        tzif_counts c;
        unsigned timesize = 4;
        uint64_t block;
        posix_tz footer;
        bool has_footer = false;
        _cleanup_free_ int64_t *times = NULL;
        _cleanup_free_ tz_type *types = NULL;
        _cleanup_free_ size_t *abbrev_idx = NULL;
        _cleanup_free_ char *chars = NULL;
        const uint8_t *q;
        int r;

        if (!name || !data)
                return -EINVAL;

        r = tzif_header(p, size, &c);
        if (r < 0)
                return r;
        block = tzif_block_size(&c, 4);
        if (block > size - TZIF_HEADER_SIZE)
                return -EBADMSG;

        if (p[4] >= '2') {
                /* Skip the 32-bit data; the second header describes the 64-bit data. */
                size_t off = TZIF_HEADER_SIZE + (size_t) block;
                const uint8_t *f, *end;

                r = tzif_header(p + off, size - off, &c);
                if (r < 0)
                        return r;
                timesize = 8;
                block = tzif_block_size(&c, 8);
                if (block > size - off - TZIF_HEADER_SIZE)
                        return -EBADMSG;
                p += off;
                size -= off;

                f = p + TZIF_HEADER_SIZE + block;
                end = p + size;
                if (f >= end || *f != '\n')
                        return -EBADMSG;
                f++;
                q = memchr(f, '\n', (size_t) (end - f));
                if (!q)
                        return -EBADMSG;
                if (q > f) {
                        char spec[256];

                        if ((size_t) (q - f) >= sizeof(spec))
                                return -EBADMSG;
                        memcpy(spec, f, (size_t) (q - f));
                        spec[q - f] = 0;
                        if (posix_tz_parse(spec, &footer) < 0)
                                return -EBADMSG;
                        if (footer.std_offset < OFFSET_MIN || footer.std_offset > OFFSET_MAX ||
                            (footer.has_dst && (footer.dst_offset < OFFSET_MIN || footer.dst_offset > OFFSET_MAX)))
                                return -EBADMSG;
                        has_footer = true;
                }
        } else if (p[4] != 0)
                return -EBADMSG;

        if (c.leapcnt > 0)
                return -EOPNOTSUPP;
        if (c.typecnt < 1 || c.typecnt > 256 || c.charcnt < 1 ||
            (c.isstdcnt != 0 && c.isstdcnt != c.typecnt) || (c.isutcnt != 0 && c.isutcnt != c.typecnt))
                return -EBADMSG;

        q = p + TZIF_HEADER_SIZE;
        times = calloc(c.timecnt + 1, sizeof(*times));
        types = calloc(c.typecnt, sizeof(*types));
        abbrev_idx = calloc(c.typecnt, sizeof(*abbrev_idx));
        chars = calloc(c.charcnt + 1, 1);
        if (!times || !types || !abbrev_idx || !chars)
                return -ENOMEM;

        for (uint32_t i = 0; i < c.timecnt; i++) {
                times[i] = timesize == 8 ? be64(q + 8 * i) : (int64_t) (int32_t) be32(q + 4 * i);
                if (i > 0 && times[i] <= times[i - 1])
                        return -EBADMSG;
        }
        q += (size_t) c.timecnt * timesize;
        const uint8_t *type_index = q;
        for (uint32_t i = 0; i < c.timecnt; i++)
                if (type_index[i] >= c.typecnt)
                        return -EBADMSG;
        q += c.timecnt;
        for (uint32_t i = 0; i < c.typecnt; i++, q += 6) {
                int32_t off = (int32_t) be32(q);

                if (off < OFFSET_MIN || off > OFFSET_MAX || q[4] > 1 || q[5] >= c.charcnt)
                        return -EBADMSG;
                types[i] = (tz_type) { .offset = off, .isdst = q[4] };
                abbrev_idx[i] = q[5];
        }
        memcpy(chars, q, c.charcnt);

        return zone_new(name, times, type_index, c.timecnt, types, abbrev_idx, c.typecnt,
                        chars, c.charcnt + 1, has_footer ? &footer : NULL, ret);
}

/* ---- loading and interning ------------------------------------------------------------------ */

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static tz *cache_head;

static bool zone_name_valid(const char *name) {
        size_t n = 0;
        bool component_start = true;

        if (isempty(name))
                return false;
        for (const char *p = name; *p; p++, n++) {
                char ch = *p;

                if (n >= TZ_NAME_MAX)
                        return false;
                if (ch == '/') {
                        /* No leading '/', no empty component, so never an absolute path. */
                        if (component_start)
                                return false;
                        component_start = true;
                        continue;
                }
                /* '.' is not allowed at all, which rules out "." and ".." components. */
                if (!is_alpha(ch) && !is_digit(ch) && ch != '_' && ch != '+' && ch != '-')
                        return false;
                component_start = false;
        }
        return !component_start;
}

static int read_zone_file(const char *path, uint8_t **ret, size_t *ret_size) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ uint8_t *buf = NULL;
        struct stat st;
        size_t size = 0;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return errno == ENOTDIR ? -ENOENT : negative_errno();
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (!S_ISREG(st.st_mode))
                return -ENOENT; /* e.g. "America", a directory of zones */
        if (st.st_size > TZIF_MAX_SIZE)
                return -EBADMSG;

        buf = malloc(TZIF_MAX_SIZE);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                ssize_t k = read(fd, buf + size, TZIF_MAX_SIZE - size);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (k == 0)
                        break;
                size += (size_t) k;
                if (size == TZIF_MAX_SIZE)
                        return -EBADMSG;
        }
        *ret = TAKE_PTR(buf);
        *ret_size = size;
        return 0;
}

static int zone_load_uncached(const char *name, tz **ret) {
        const char *dir = getenv("TZDIR");
        _cleanup_free_ char *path = NULL;
        _cleanup_free_ uint8_t *data = NULL;
        size_t size = 0;
        int r;

        if (isempty(dir))
                dir = "/usr/share/zoneinfo";
        path = malloc(strlen(dir) + 1 + strlen(name) + 1);
        if (!path)
                return -ENOMEM;
        sprintf(path, "%s/%s", dir, name);

        r = read_zone_file(path, &data, &size);
        if (r == -ENOENT && streq(name, "UTC")) {
                /* UTC must work even on a system without tzdata. */
                _cleanup_(tz_freep) tz *z = NULL;

                r = tz_new_from_posix("UTC0", &z);
                if (r < 0)
                        return r;
                free(z->name);
                z->name = strdup(name);
                if (!z->name)
                        return -ENOMEM;
                *ret = TAKE_PTR(z);
                return 0;
        }
        if (r < 0)
                return r;
        return tz_new_from_tzif(name, data, size, ret);
}

int tz_load(const char *name, tz **ret) {
        tz *z;
        int r = 0;

        if (!zone_name_valid(name))
                return -EINVAL;

        pthread_mutex_lock(&cache_lock);
        for (z = cache_head; z; z = z->next_cached)
                if (streq(z->name, name))
                        break;
        if (!z) {
                r = zone_load_uncached(name, &z);
                if (r >= 0) {
                        z->next_cached = cache_head;
                        cache_head = z;
                }
        }
        pthread_mutex_unlock(&cache_lock);

        if (r < 0)
                return r;
        *ret = z;
        return 0;
}

void tz_cache_clear(void) {
        pthread_mutex_lock(&cache_lock);
        while (cache_head) {
                tz *z = cache_head;
                cache_head = z->next_cached;
                tz_free(z);
        }
        pthread_mutex_unlock(&cache_lock);
}

/* ---- queries ------------------------------------------------------------------------------- */

const char *tz_name(const tz *z) {
        return z->name;
}

int32_t tz_offset_at(const tz *z, int64_t t) {
        return type_at(z, t)->offset;
}

const char *tz_abbrev_at(const tz *z, int64_t t) {
        return type_at(z, t)->abbrev;
}

int64_t tz_next_transition(const tz *z, int64_t t) {
        int64_t f = fold(z, t);
        size_t i = upper_bound(z, f);
        int32_t cur = z->types[i == 0 ? z->before_type : z->type_index[i - 1]].offset;

        /* A folded T has the answer within the following year, which the table covers. */
        for (; i < z->n_times; i++)
                if (z->types[z->type_index[i]].offset != cur)
                        return add_saturated(t, z->times[i] - f);
        return INT64_MAX;
}

tz_local_kind tz_local_to_utc(const tz *z, int64_t local, int64_t *ret_first, int64_t *ret_second) {
        /* Walk the periods of constant offset that overlap [local - window, local + window].
         * A period [start, end) with offset o shows local times [start + o, end + o): LOCAL
         * occurs in it iff start <= local - o < end. Since |o| < window, no occurrence can lie
         * outside the scanned range. */
        int64_t lo = add_saturated(local, -LOCAL_WINDOW), hi = add_saturated(local, LOCAL_WINDOW);
        int64_t start = lo, found[2] = {}, gap = INT64_MIN;
        int32_t off = tz_offset_at(z, lo);
        unsigned n = 0;

        for (unsigned iterations = 0; iterations < 64; iterations++) {
                int64_t end = tz_next_transition(z, start);
                int64_t candidate = add_saturated(local, -off);
                int32_t next_off;

                if (candidate >= start && candidate < end) {
                        if (n < 2)
                                found[n++] = candidate;
                        else
                                found[1] = candidate; /* keep the first and the last occurrence */
                }
                if (end >= hi)
                        break; /* later periods cannot hold LOCAL */
                next_off = tz_offset_at(z, end);
                if (gap == INT64_MIN && next_off > off && local >= add_saturated(end, off) &&
                    local < add_saturated(end, next_off))
                        gap = end;
                start = end;
                off = next_off;
        }

        if (n == 0) {
                if (gap == INT64_MIN)
                        gap = local - tz_offset_at(z, local); /* unreachable with a sane table */
                *ret_first = *ret_second = gap;
                return TZ_LOCAL_GAP;
        }
        *ret_first = found[0];
        *ret_second = found[n - 1];
        return n == 1 ? TZ_LOCAL_UNIQUE : TZ_LOCAL_REPEATED;
}

int64_t tz_local_to_instant(const tz *z, int64_t local) {
        int64_t first, second;

        (void) tz_local_to_utc(z, local, &first, &second);
        return first;
}
