/* SPDX-License-Identifier: MIT */
/* Values from YAML nodes: the keys of a mapping, booleans, integers, durations, sizes, time zones,
 * each problem reported at the file:line:column it is at, saying what was found and what is
 * expected. */
#include <limits.h>
#include <stdarg.h>
#include <strings.h>

#include "basic/duration.h"
#include "core/registry-internal.h"

void loader_report(loader *l, const char *file, unsigned line, unsigned column, const char *job, const char *fmt,
                   ...) {
        _cleanup_free_ char *msg = NULL;
        va_list ap;

        va_start(ap, fmt);
        int r = vasprintf(&msg, fmt, ap);
        va_end(ap);
        if (r < 0 || diag_add(l->diags, file, line, column, job, "%s", msg) < 0)
                l->error = l->error ?: -ENOMEM;
}

void loader_oom(loader *l) {
        l->error = l->error ?: -ENOMEM;
}

/* Checks run key by key, not in file order; sort what one file produced by position so an
 * operator reads it top to bottom. Stable, so messages at one position keep their order. */
void sort_diags(diag_list *d, size_t from) {
        for (size_t i = from + 1; i < d->n; i++) {
                diag x = d->items[i];
                size_t j = i;
                while (j > from && (d->items[j - 1].line > x.line ||
                                    (d->items[j - 1].line == x.line && d->items[j - 1].column > x.column))) {
                        d->items[j] = d->items[j - 1];
                        j--;
                }
                d->items[j] = x;
        }
}

void report_type(loader *l, source *s, const yaml_node_t *n, const char *job, const char *what,
                 const char *expected) {
        _cleanup_free_ char *found = node_describe(n);
        if (!found)
                return loader_oom(l);
        report_at(l, s, n, job, "%s: found %s, expected %s", what, found, expected);
}

/* Fills VALUES[i] (and KEYS[i]) with the value node of ALLOWED[i] in mapping MAP. Reports keys
 * that are not scalars, unknown keys (listing the allowed ones) and duplicate keys. WHAT
 * prefixes messages ("scheduler: "), NOTE is appended to the unknown-key message. */
void mapping_collect(loader *l, source *s, yaml_node_t *map, const char *const *allowed, size_t n_allowed,
                     const char *what, const char *note, const char *job, yaml_node_t **keys,
                     yaml_node_t **values) {
        for (size_t i = 0; i < n_allowed; i++)
                keys[i] = values[i] = NULL;

        for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
                yaml_node_t *k = node_get(s, p->key), *v = node_get(s, p->value);
                size_t i;

                if (!k || !v)
                        continue;
                if (k->type != YAML_SCALAR_NODE) {
                        report_at(l, s, k, job, "%sfound a %s as a key, expected a plain key name", what,
                                  k->type == YAML_MAPPING_NODE ? "mapping" : "sequence");
                        continue;
                }
                for (i = 0; i < n_allowed; i++)
                        if (streq(node_scalar(k), allowed[i]))
                                break;
                if (i == n_allowed) {
                        _cleanup_free_ char *list = NULL;
                        size_t len = 0;
                        FILE *f = open_memstream(&list, &len);
                        if (!f)
                                return loader_oom(l);
                        for (size_t j = 0; j < n_allowed; j++)
                                fprintf(f, "%s%s", j > 0 ? ", " : "", allowed[j]);
                        if (fclose(f) != 0)
                                return loader_oom(l);
                        report_at(l, s, k, job, "%sunknown key \"%s\"; expected %s%s%s", what, node_scalar(k),
                                  n_allowed > 1 ? "one of " : "", list, note ?: "");
                        continue;
                }
                if (keys[i]) {
                        report_at(l, s, k, job, "%sduplicate key \"%s\" (first given at line %u, column %u); "
                                  "expected each key once", what, node_scalar(k),
                                  (unsigned) keys[i]->start_mark.line + 1, (unsigned) keys[i]->start_mark.column + 1);
                        continue;
                }
                keys[i] = k;
                values[i] = v;
        }
}

/* Returns the value of a scalar node, or NULL (reported) when N is not a scalar. */
const char *expect_scalar(loader *l, source *s, yaml_node_t *n, const char *job, const char *what,
                          const char *expected) {
        if (n->type != YAML_SCALAR_NODE) {
                report_type(l, s, n, job, what, expected);
                return NULL;
        }
        return node_scalar(n);
}

/* A non-empty string; reported and NULL otherwise. */
const char *expect_string(loader *l, source *s, yaml_node_t *n, const char *job, const char *what,
                          const char *expected) {
        const char *v = expect_scalar(l, s, n, job, what, expected);
        if (v && isempty(v)) {
                report_at(l, s, n, job, "%s: found an empty value, expected %s", what, expected);
                return NULL;
        }
        return v;
}

bool expect_container(loader *l, source *s, yaml_node_t *n, yaml_node_type_t type, const char *job,
                      const char *what, const char *expected) {
        if (n->type == type)
                return true;
        report_type(l, s, n, job, what, expected);
        return false;
}

void parse_bool(loader *l, source *s, yaml_node_t *n, const char *job, const char *what, bool *ret) {
        static const char *const yes[] = { "true", "yes", "on" }, *const no[] = { "false", "no", "off" };
        const char *v = expect_scalar(l, s, n, job, what, "true or false");

        if (!v)
                return;
        for (size_t i = 0; i < ELEMENTSOF(yes); i++) {
                if (strcasecmp(v, yes[i]) == 0) {
                        *ret = true;
                        return;
                }
                if (strcasecmp(v, no[i]) == 0) {
                        *ret = false;
                        return;
                }
        }
        report_at(l, s, n, job, "%s: found \"%s\", expected a boolean: true/false, yes/no or on/off", what, v);
}

void parse_uint(loader *l, source *s, yaml_node_t *n, const char *job, const char *what, unsigned min,
                unsigned max, unsigned *ret) {
        const char *v = expect_scalar(l, s, n, job, what, "an integer");
        unsigned long long x = 0;
        const char *p;

        if (!v)
                return;
        for (p = v; *p >= '0' && *p <= '9'; p++)
                if (x <= UINT_MAX)
                        x = x * 10 + (unsigned) (*p - '0');
        if (p == v || *p) {
                loader_report(l, s->file, n->start_mark.line + 1, scalar_column_at(s, n, (size_t) (p - v)), job,
                       "%s: found \"%s\", expected an integer from %u to %u", what, v, min, max);
                return;
        }
        if (x < min || x > max) {
                report_at(l, s, n, job, "%s: %s is out of range, expected %u-%u", what, v, min, max);
                return;
        }
        *ret = (unsigned) x;
}

/* Durations; MIN_USEC 1 rejects zero. */
bool parse_duration(loader *l, source *s, yaml_node_t *n, const char *job, const char *what, usec_t min_usec,
                    usec_t *ret) {
        const char *v = expect_scalar(l, s, n, job, what, "a duration like 30s or 1h30m");
        parse_error e = {};
        usec_t u;

        if (!v)
                return false;
        if (duration_parse(v, &u, &e) < 0) {
                loader_report(l, s->file, n->start_mark.line + 1, scalar_column_at(s, n, e.offset), job, "%s \"%s\": %s",
                       what, v, e.message);
                return false;
        }
        if (u < min_usec) {
                report_at(l, s, n, job, "%s: found %s, expected a duration greater than zero", what, v);
                return false;
        }
        *ret = u;
        return true;
}

bool parse_misfire_threshold(loader *l, source *s, yaml_node_t *n, const char *job, const char *what, usec_t *ret) {
        const char *v = expect_scalar(l, s, n, job, what, "auto or a duration like 30s or 5m");
        if (!v)
                return false;
        if (streq(v, "auto")) {
                *ret = MISFIRE_AUTO;
                return true;
        }
        return parse_duration(l, s, n, job, what, 1, ret);
}

int load_zone(loader *l, source *s, yaml_node_t *n, const char *job, const char *name, const tz **ret) {
        tz *z = NULL;
        int r = tz_load(name, &z);

        if (r >= 0) {
                *ret = z;
                return 0;
        }
        if (r == -ENOMEM)
                loader_oom(l);
        else if (r == -ENOENT)
                report_at(l, s, n, job,
                          "unknown time zone \"%s\" (no such file in %s); expected an IANA zone name like "
                          "Europe/Amsterdam or UTC",
                          name, getenv("TZDIR") ?: "/usr/share/zoneinfo");
        else if (r == -EINVAL)
                report_at(l, s, n, job,
                          "time zone \"%s\" is not a zone name; expected an IANA zone name like Europe/Amsterdam "
                          "(letters, digits, '/', '_', '+', '-')",
                          name);
        else if (r == -EBADMSG)
                report_at(l, s, n, job, "time zone \"%s\": the tzdata file in %s is not valid TZif; expected "
                          "a working tzdata installation", name, getenv("TZDIR") ?: "/usr/share/zoneinfo");
        else
                report_at(l, s, n, job, "time zone \"%s\": cannot be read: %s", name, strerror(-r));
        return r;
}

/* "512M", "1G", "65536", "64K": bytes, binary multiples. */
void parse_size(loader *l, source *s, yaml_node_t *n, const char *job, const char *what, uint64_t *ret) {
        const char *v = expect_scalar(l, s, n, job, what, "a size like 512M");
        unsigned long long x = 0;
        const char *p;

        if (!v)
                return;
        for (p = v; *p >= '0' && *p <= '9'; p++) {
                if (x > (UINT64_MAX - 9) / 10) {
                        report_at(l, s, n, job, "%s: %s is too large", what, v);
                        return;
                }
                x = x * 10 + (unsigned) (*p - '0');
        }
        unsigned shift = 0;
        if (p != v && *p && !p[1])
                shift = *p == 'K' || *p == 'k' ? 10 : *p == 'M' ? 20 : *p == 'G' ? 30 : *p == 'T' ? 40 : 64;
        if (p == v || shift == 64 || (*p && p[1]) || x == 0) {
                loader_report(l, s->file, n->start_mark.line + 1, scalar_column_at(s, n, (size_t) (p - v)), job,
                       "%s: found \"%s\", expected a positive size in bytes with an optional K, M, G or T suffix",
                       what, v);
                return;
        }
        if (shift && x > (UINT64_MAX >> shift)) {
                report_at(l, s, n, job, "%s: %s is too large", what, v);
                return;
        }
        *ret = (uint64_t) x << shift;
}
