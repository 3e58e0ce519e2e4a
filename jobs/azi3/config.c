/* SPDX-License-Identifier: MIT */
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <yaml.h>

#include "config.h"
#include "store.h"
#include "basic/duration.h"

/* The file is read into memory whole; the cap catches mistakes such as pointing params.config
 * at a database. It is sized for fleets: 10,000 rules with every key spelt out take about
 * 2 MiB, so 1 MiB refused a configuration of the size issue 7 asks for. */
#define CONFIG_SIZE_MAX (16 * 1024 * 1024)

typedef struct parser {
        yaml_document_t *doc;
        azi3_config_errors *errors;
        const char *name;
        bool failed; /* an error was recorded */
        int oom;     /* -ENOMEM once allocation failed */
} parser;

_printf_(4, 0) static void errors_addv(parser *p, unsigned line, unsigned column, const char *fmt, va_list ap) {
        char *msg = NULL;
        azi3_config_error *n;

        p->failed = true;
        if (vasprintf(&msg, fmt, ap) < 0) {
                p->oom = -ENOMEM;
                return;
        }
        n = realloc(p->errors->items, (p->errors->n + 1) * sizeof(*n));
        if (!n) {
                free(msg);
                p->oom = -ENOMEM;
                return;
        }
        p->errors->items = n;
        n[p->errors->n++] = (azi3_config_error) { line, column, msg };
}

_printf_(4, 5) static void error_at(parser *p, unsigned line, unsigned column, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        errors_addv(p, line, column, fmt, ap);
        va_end(ap);
}

/* An error at NODE's first character (OFFSET == AT_NODE), or OFFSET bytes into its value. */
#define AT_NODE SIZE_MAX

_printf_(4, 5) static void error_node(parser *p, const yaml_node_t *node, size_t offset, const char *fmt, ...) {
        va_list ap;
        unsigned line = (unsigned) node->start_mark.line + 1, column = (unsigned) node->start_mark.column + 1;

        if (node->type == YAML_SCALAR_NODE && offset != AT_NODE) {
                /* offsets count characters of the value, which starts after an opening quote */
                yaml_scalar_style_t st = node->data.scalar.style;
                bool quoted = st == YAML_SINGLE_QUOTED_SCALAR_STYLE || st == YAML_DOUBLE_QUOTED_SCALAR_STYLE;
                column += (unsigned) offset + (quoted ? 1 : 0);
        }
        va_start(ap, fmt);
        errors_addv(p, line, column, fmt, ap);
        va_end(ap);
}

static const char *node_kind(const yaml_node_t *n) {
        switch (n->type) {
        case YAML_MAPPING_NODE:
                return "a mapping";
        case YAML_SEQUENCE_NODE:
                return "a list";
        case YAML_SCALAR_NODE:
                return n->data.scalar.length == 0 && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE ? "nothing"
                                                                                                    : "a scalar";
        default:
                return "nothing";
        }
}

static const char *scalar(const yaml_node_t *n) {
        return (const char *) n->data.scalar.value;
}

static bool is_null(const yaml_node_t *n) {
        if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
                return false;
        const char *s = scalar(n);
        return *s == '\0' || streq(s, "~") || streq(s, "null") || streq(s, "Null") || streq(s, "NULL");
}

/* ---- typed values ----------------------------------------------------------------------- */

/* PATH names the key for messages ("megazord.timeout", "rules[2].start"). */

static bool want_scalar(parser *p, const yaml_node_t *n, const char *path, const char *expected) {
        if (n->type == YAML_SCALAR_NODE && !is_null(n))
                return true;
        error_node(p, n, AT_NODE, "%s: expected %s, got %s", path, expected, node_kind(n));
        return false;
}

static void get_string(parser *p, const yaml_node_t *n, const char *path, char **ret) {
        if (!want_scalar(p, n, path, "a string"))
                return;
        char *s = strdup(scalar(n));
        if (!s) {
                p->oom = -ENOMEM;
                return;
        }
        free(*ret);
        *ret = s;
}

static void get_url(parser *p, const yaml_node_t *n, const char *path, char **ret) {
        if (!want_scalar(p, n, path, "an http:// or https:// URL"))
                return;
        const char *s = scalar(n);
        if ((strncmp(s, "http://", 7) != 0 || !s[7]) && (strncmp(s, "https://", 8) != 0 || !s[8])) {
                error_node(p, n, AT_NODE, "%s: invalid URL \"%s\"; expected an http:// or https:// URL", path, s);
                return;
        }
        get_string(p, n, path, ret);
}

static void get_duration(parser *p, const yaml_node_t *n, const char *path, usec_t *ret) {
        parse_error e = {};
        usec_t u;

        if (!want_scalar(p, n, path, "a duration such as 30s, 5m or 2h"))
                return;
        if (duration_parse(scalar(n), &u, &e) < 0) {
                error_node(p, n, e.offset, "%s: invalid duration \"%s\": %s", path, scalar(n), e.message);
                return;
        }
        *ret = u;
}

static void get_positive_duration(parser *p, const yaml_node_t *n, const char *path, usec_t *ret) {
        usec_t u = 0;
        size_t before = p->errors->n;

        get_duration(p, n, path, &u);
        if (p->errors->n != before)
                return;
        if (u == 0) {
                error_node(p, n, AT_NODE, "%s: must be longer than 0, got \"%s\"", path, scalar(n));
                return;
        }
        *ret = u;
}

/* A duration in [MIN, MAX]. */
static void get_bounded_duration(parser *p, const yaml_node_t *n, const char *path, usec_t min, usec_t max,
                                 usec_t *ret) {
        usec_t u = 0;
        size_t before = p->errors->n;
        char lo[DURATION_MAX], hi[DURATION_MAX];

        get_duration(p, n, path, &u);
        if (p->errors->n != before)
                return;
        if (u < min || u > max) {
                error_node(p, n, AT_NODE, "%s: \"%s\" is not between %s and %s", path, scalar(n),
                           duration_format(min, lo, sizeof(lo)), duration_format(max, hi, sizeof(hi)));
                return;
        }
        *ret = u;
}

/* Whole seconds in [0, MAX], as SQS takes them. */
static void get_seconds(parser *p, const yaml_node_t *n, const char *path, usec_t max, usec_t *ret) {
        usec_t u = 0;
        size_t before = p->errors->n;
        char buf[DURATION_MAX];

        get_duration(p, n, path, &u);
        if (p->errors->n != before)
                return;
        if (u % USEC_PER_SEC != 0 || u > max) {
                error_node(p, n, AT_NODE, "%s: \"%s\" is not a whole number of seconds between 0 and %s", path, scalar(n),
                           duration_format(max, buf, sizeof(buf)));
                return;
        }
        *ret = u;
}

static void get_int(parser *p, const yaml_node_t *n, const char *path, int64_t min, int64_t max, int64_t *ret) {
        char expected[96];
        snprintf(expected, sizeof(expected), "an integer between %" PRId64 " and %" PRId64, min, max);

        if (!want_scalar(p, n, path, expected))
                return;

        const char *s = scalar(n);
        bool ok = n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && *s;
        for (const char *c = s; ok && *c; c++)
                ok = (*c >= '0' && *c <= '9') || (c == s && *c == '-' && c[1]);
        if (ok) {
                errno = 0;
                char *end;
                long long v = strtoll(s, &end, 10);
                if (errno == 0 && *end == '\0' && v >= min && v <= max) {
                        *ret = v;
                        return;
                }
        }
        if (ok || n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE)
                error_node(p, n, AT_NODE, "%s: invalid value \"%s\"; expected %s", path, s, expected);
        else
                error_node(p, n, AT_NODE, "%s: got the quoted string \"%s\"; expected %s, without quotes", path, s,
                           expected);
}

static void get_name(parser *p, const yaml_node_t *n, const char *path, char **ret) {
        if (!want_scalar(p, n, path, "an event name such as TOILET_ACTIVITY"))
                return;
        const char *s = scalar(n);
        for (size_t i = 0; s[i]; i++)
                if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_')) {
                        error_node(p, n, i, "%s: invalid event name \"%s\"; expected upper-case letters, digits "
                                   "and '_', such as TOILET_ACTIVITY", path, s);
                        return;
                }
        get_string(p, n, path, ret);
}

static void get_rule_id(parser *p, const yaml_node_t *n, const char *path, char **ret) {
        if (!want_scalar(p, n, path, "a rule id such as toilet-activity"))
                return;
        const char *s = scalar(n);
        size_t len = strlen(s);
        for (size_t i = 0; i < len; i++)
                if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
                      strchr("._-", s[i]))) {
                        error_node(p, n, i, "%s: invalid rule id \"%s\"; expected letters, digits, '.', '_' "
                                   "and '-'", path, s);
                        return;
                }
        if (len > AZI3_RULE_ID_MAX) {
                error_node(p, n, AT_NODE, "%s: rule id is %zu characters long; expected at most %d", path, len,
                           AZI3_RULE_ID_MAX);
                return;
        }
        get_string(p, n, path, ret);
}

int azi3_parse_local_time(const char *s, unsigned *ret, parse_error *e) {
        for (size_t i = 0; i < 5; i++) {
                bool colon = i == 2;
                if (s[i] == '\0' || (colon ? s[i] != ':' : (s[i] < '0' || s[i] > '9')))
                        return parse_error_set(e, i, "expected HH:MM with two digits each (such as 07:00)");
        }
        if (s[5] != '\0')
                return parse_error_set(e, 5, "unexpected text after HH:MM");
        unsigned h = (unsigned) (s[0] - '0') * 10 + (unsigned) (s[1] - '0');
        unsigned m = (unsigned) (s[3] - '0') * 10 + (unsigned) (s[4] - '0');
        if (h > 23)
                return parse_error_set(e, 0, "hour %02u is out of range; expected 00 to 23", h);
        if (m > 59)
                return parse_error_set(e, 3, "minute %02u is out of range; expected 00 to 59", m);
        *ret = h * 60 + m;
        return 0;
}

static void get_local_time(parser *p, const yaml_node_t *n, const char *path, unsigned *ret) {
        parse_error e = {};
        /* "07:00" must be quoted in YAML 1.1 or some tools read it as a sexagesimal number; ours
         * does not, so a plain 07:00 is accepted too. */
        if (!want_scalar(p, n, path, "a local time \"HH:MM\""))
                return;
        if (azi3_parse_local_time(scalar(n), ret, &e) < 0)
                error_node(p, n, e.offset, "%s: invalid time \"%s\": %s", path, scalar(n), e.message);
}

static void get_zone(parser *p, const yaml_node_t *n, const char *path, char **ret_name, const tz **ret) {
        tz *z;
        if (!want_scalar(p, n, path, "an IANA time zone such as Europe/Amsterdam"))
                return;
        int r = tz_load(scalar(n), &z);
        if (r == -ENOMEM) {
                p->oom = r;
                return;
        }
        if (r < 0) {
                error_node(p, n, AT_NODE, "%s: %s time zone \"%s\"; expected an IANA name from the system's tzdata, such "
                           "as Europe/Amsterdam", path, r == -ENOENT ? "unknown" : r == -EINVAL ? "malformed" : "unreadable",
                           scalar(n));
                return;
        }
        *ret = z;
        get_string(p, n, path, ret_name);
}

/* ---- mappings ---------------------------------------------------------------------------- */

/* Walks mapping N: each key must be one of KEYS (a NULL-terminated list); calls FN for each
 * value with the key's index. Reports non-mappings, non-scalar keys, unknown and duplicate
 * keys. SEEN (one entry per key) receives the value nodes. Returns false if N is no mapping. */
static bool walk_mapping(parser *p, const yaml_node_t *n, const char *path, const char *const *keys,
                         yaml_node_t **seen) {
        size_t n_keys = 0;
        while (keys[n_keys])
                n_keys++;

        if (n->type != YAML_MAPPING_NODE) {
                error_node(p, n, AT_NODE, "%s: expected a mapping, got %s", path, node_kind(n));
                return false;
        }

        for (yaml_node_pair_t *pair = n->data.mapping.pairs.start; pair < n->data.mapping.pairs.top; pair++) {
                yaml_node_t *k = yaml_document_get_node(p->doc, pair->key);
                yaml_node_t *v = yaml_document_get_node(p->doc, pair->value);
                if (!k || !v)
                        continue;
                if (k->type != YAML_SCALAR_NODE) {
                        error_node(p, k, AT_NODE, "%s: expected a key name, got %s", path, node_kind(k));
                        continue;
                }

                size_t i;
                for (i = 0; i < n_keys; i++)
                        if (streq(keys[i], scalar(k)))
                                break;
                if (i == n_keys) {
                        char allowed[512] = "";
                        for (size_t j = 0; j < n_keys; j++) {
                                size_t len = strlen(allowed);
                                snprintf(allowed + len, sizeof(allowed) - len, "%s%s", j ? ", " : "", keys[j]);
                        }
                        error_node(p, k, AT_NODE, "%s: unknown key \"%s\"; allowed keys: %s", path, scalar(k), allowed);
                        continue;
                }
                if (seen[i]) {
                        error_node(p, k, AT_NODE, "%s: duplicate key \"%s\" (first given at line %u)", path, scalar(k),
                                   (unsigned) seen[i]->start_mark.line + 1);
                        continue;
                }
                seen[i] = v;
        }
        return true;
}

static void require(parser *p, const yaml_node_t *n, const char *path, const char *const *keys, yaml_node_t **seen,
                    const bool *required) {
        for (size_t i = 0; keys[i]; i++)
                if (required[i] && !seen[i])
                        error_node(p, n, AT_NODE, "%s: missing required key \"%s\"", path, keys[i]);
}

static char *join_path(const char *parent, const char *key) {
        char *s = NULL;
        if (asprintf(&s, "%s%s%s", parent, *parent ? "." : "", key) < 0)
                return NULL;
        return s;
}

enum { MZ_BASE_URL, MZ_TIMEOUT, MZ_MAX_PARALLEL, _MZ_MAX };
static const char *const megazord_keys[] = { "base_url", "timeout", "max_parallel", NULL };

static void parse_megazord(parser *p, const yaml_node_t *n, azi3_config *c) {
        yaml_node_t *seen[_MZ_MAX] = {};
        static const bool required[_MZ_MAX] = { [MZ_BASE_URL] = true };

        if (!walk_mapping(p, n, "megazord", megazord_keys, seen))
                return;
        require(p, n, "megazord", megazord_keys, seen, required);
        if (seen[MZ_BASE_URL])
                get_url(p, seen[MZ_BASE_URL], "megazord.base_url", &c->megazord_base_url);
        if (seen[MZ_TIMEOUT])
                get_positive_duration(p, seen[MZ_TIMEOUT], "megazord.timeout", &c->megazord_timeout);
        if (seen[MZ_MAX_PARALLEL]) {
                int64_t v = c->megazord_max_parallel;

                get_int(p, seen[MZ_MAX_PARALLEL], "megazord.max_parallel", 1, AZI3_MEGAZORD_MAX_PARALLEL_MAX, &v);
                c->megazord_max_parallel = (unsigned) v;
        }
}

enum { SQS_ENDPOINT, SQS_REGION, SQS_QUEUE_URL, SQS_WAIT_TIME, SQS_VISIBILITY_TIMEOUT, _SQS_MAX };
static const char *const sqs_keys[] = { "endpoint", "region", "queue_url", "wait_time", "visibility_timeout", NULL };

static void parse_sqs(parser *p, const yaml_node_t *n, azi3_config *c) {
        yaml_node_t *seen[_SQS_MAX] = {};
        static const bool required[_SQS_MAX] = { [SQS_ENDPOINT] = true, [SQS_REGION] = true, [SQS_QUEUE_URL] = true };

        if (!walk_mapping(p, n, "sqs", sqs_keys, seen))
                return;
        require(p, n, "sqs", sqs_keys, seen, required);
        if (seen[SQS_ENDPOINT])
                get_url(p, seen[SQS_ENDPOINT], "sqs.endpoint", &c->sqs_endpoint);
        if (seen[SQS_REGION])
                get_string(p, seen[SQS_REGION], "sqs.region", &c->sqs_region);
        if (seen[SQS_QUEUE_URL])
                get_url(p, seen[SQS_QUEUE_URL], "sqs.queue_url", &c->sqs_queue_url);
        if (seen[SQS_WAIT_TIME])
                get_seconds(p, seen[SQS_WAIT_TIME], "sqs.wait_time", 20 * USEC_PER_SEC, &c->sqs_wait_time);
        if (seen[SQS_VISIBILITY_TIMEOUT])
                get_seconds(p, seen[SQS_VISIBILITY_TIMEOUT], "sqs.visibility_timeout", 12 * USEC_PER_HOUR,
                            &c->sqs_visibility_timeout);
}

enum {
        R_ROBOT_ID,
        R_RULE_ID,
        R_TIMEZONE,
        R_START,
        R_END,
        R_WINDOW,
        R_EVENT,
        R_ALARM_EVENT,
        R_ALARM_LEVEL,
        _R_MAX
};
static const char *const rule_keys[] = { "robot_id", "rule_id",     "timezone",    "start", "end",
                                         "window",   "event",       "alarm_event", "alarm_level", NULL };

static void parse_rule(parser *p, const yaml_node_t *n, size_t idx, azi3_rule *r, bool *ret_complete) {
        yaml_node_t *seen[_R_MAX] = {};
        static const bool required[_R_MAX] = {
                [R_ROBOT_ID] = true, [R_RULE_ID] = true, [R_TIMEZONE] = true, [R_START] = true, [R_END] = true,
        };
        char path[32];
        size_t before = p->errors->n;

        snprintf(path, sizeof(path), "rules[%zu]", idx);
        *ret_complete = false;
        *r = (azi3_rule) {
                .window = AZI3_DEFAULT_WINDOW,
                .alarm_level = AZI3_DEFAULT_ALARM_LEVEL,
                .line = (unsigned) n->start_mark.line + 1,
                .column = (unsigned) n->start_mark.column + 1,
        };
        r->event = strdup(AZI3_DEFAULT_EVENT);
        r->alarm_event = strdup(AZI3_DEFAULT_ALARM_EVENT);
        if (!r->event || !r->alarm_event) {
                p->oom = -ENOMEM;
                return;
        }

        if (!walk_mapping(p, n, path, rule_keys, seen))
                return;
        require(p, n, path, rule_keys, seen, required);

        for (size_t i = 0; i < _R_MAX; i++) {
                if (!seen[i])
                        continue;
                _cleanup_free_ char *key = join_path(path, rule_keys[i]);
                if (!key) {
                        p->oom = -ENOMEM;
                        return;
                }
                int64_t v;
                switch (i) {
                case R_ROBOT_ID:
                        v = 0;
                        get_int(p, seen[i], key, 1, INT64_MAX, &v);
                        r->robot_id = v;
                        break;
                case R_RULE_ID:
                        get_rule_id(p, seen[i], key, &r->rule_id);
                        break;
                case R_TIMEZONE:
                        get_zone(p, seen[i], key, &r->timezone, &r->zone);
                        break;
                case R_START:
                        get_local_time(p, seen[i], key, &r->start_minute);
                        break;
                case R_END:
                        get_local_time(p, seen[i], key, &r->end_minute);
                        break;
                case R_WINDOW:
                        get_positive_duration(p, seen[i], key, &r->window);
                        break;
                case R_EVENT:
                        get_name(p, seen[i], key, &r->event);
                        break;
                case R_ALARM_EVENT:
                        get_name(p, seen[i], key, &r->alarm_event);
                        break;
                case R_ALARM_LEVEL:
                        v = AZI3_DEFAULT_ALARM_LEVEL;
                        get_int(p, seen[i], key, 0, INT32_MAX, &v);
                        r->alarm_level = (int32_t) v;
                        break;
                }
        }
        *ret_complete = p->errors->n == before;
}

static int rule_key_cmp(const azi3_rule *r, int64_t robot_id, const char *rule_id) {
        if (r->robot_id != robot_id)
                return r->robot_id < robot_id ? -1 : 1;
        return strcmp(r->rule_id, rule_id);
}

/* By key, then by position in the file, so the first of equal keys sorts first. */
static int rule_key_compare(const void *a, const void *b) {
        const azi3_rule *x = *(const azi3_rule *const *) a, *y = *(const azi3_rule *const *) b;
        int d = rule_key_cmp(x, y->robot_id, y->rule_id);

        return d != 0 ? d : (x > y) - (x < y);
}

static void parse_rules(parser *p, const yaml_node_t *n, azi3_config *c) {
        if (n->type != YAML_SEQUENCE_NODE) {
                error_node(p, n, AT_NODE, "rules: expected a list of rules, got %s", node_kind(n));
                return;
        }

        size_t count = (size_t) (n->data.sequence.items.top - n->data.sequence.items.start);
        if (count == 0)
                return;
        c->rules = calloc(count, sizeof(azi3_rule));
        bool *complete = calloc(count, sizeof(bool));
        if (!c->rules || !complete) {
                free(complete);
                p->oom = -ENOMEM;
                return;
        }

        for (size_t i = 0; i < count && !p->oom; i++) {
                yaml_node_t *item = yaml_document_get_node(p->doc, n->data.sequence.items.start[i]);
                c->n_rules = i + 1;
                if (!item)
                        continue;
                parse_rule(p, item, i, &c->rules[i], &complete[i]);
        }

        /* Duplicates only among rules that parsed, so one typo does not cascade. Sorted by key
         * (then by position), each rule after the first of its key is a duplicate of that first:
         * n log n, where comparing every pair took seconds for a fleet's 10,000 rules. */
        _cleanup_free_ size_t *dup_of = NULL;
        size_t n_keyed = 0;

        c->by_key = calloc(count, sizeof(*c->by_key));
        dup_of = calloc(count, sizeof(*dup_of));
        if (!c->by_key || !dup_of) {
                free(complete);
                p->oom = -ENOMEM;
                return;
        }
        for (size_t i = 0; i < c->n_rules; i++)
                if (complete[i])
                        c->by_key[n_keyed++] = &c->rules[i];
        free(complete);
        qsort(c->by_key, n_keyed, sizeof(*c->by_key), rule_key_compare);
        for (size_t k = 1, first = 0; k < n_keyed; k++) {
                if (rule_key_cmp(c->by_key[k], c->by_key[first]->robot_id, c->by_key[first]->rule_id) != 0) {
                        first = k;
                        continue;
                }
                dup_of[c->by_key[k] - c->rules] = (size_t) (c->by_key[first] - c->rules) + 1;
        }
        /* reported in file order, as the comparison of every pair did */
        for (size_t i = 0; i < c->n_rules && !p->oom; i++) {
                if (dup_of[i] == 0)
                        continue;
                size_t j = dup_of[i] - 1;
                error_at(p, c->rules[i].line, c->rules[i].column,
                         "rules[%zu]: duplicate rule: robot_id %" PRId64 " with rule_id \"%s\" is "
                         "already defined by rules[%zu] at line %u; expected each (robot_id, "
                         "rule_id) once",
                         i, c->rules[i].robot_id, c->rules[i].rule_id, j, c->rules[j].line);
        }
}

enum { K_STORE, K_MEGAZORD, K_SQS, K_RETENTION, K_SETTLE, K_MAX_ALARM_AGE, K_REPLAY_AFTER, K_RULES, _K_MAX };
static const char *const root_keys[] = { "store", "megazord", "sqs", "retention", "settle", "max_alarm_age",
                                         "replay_after", "rules", NULL };

/* `store:` is a file path or a libpq connection string (issue 15); a password never sits in
 * a file that is read by every job and shown in logs. */
static void get_store(parser *p, const yaml_node_t *n, azi3_config *c) {
        char err[512];
        int r;

        get_string(p, n, "store", &c->store);
        if (!c->store || !azi3_store_is_conninfo(c->store))
                return;
        r = azi3_store_conninfo_check(c->store, err, sizeof(err));
        if (r == -ENOMEM)
                p->oom = r;
        else if (r < 0)
                error_node(p, n, AT_NODE, "store: %s", err);
}

static int resolve_store(parser *p, azi3_config *c) {
        if (!c->store || c->store[0] == '/' || azi3_store_is_conninfo(c->store))
                return 0;
        const char *slash = strrchr(p->name, '/');
        if (!slash)
                return 0;
        char *s = NULL;
        if (asprintf(&s, "%.*s/%s", (int) (slash - p->name), p->name, c->store) < 0)
                return -ENOMEM;
        free(c->store);
        c->store = s;
        return 0;
}

static void parse_root(parser *p, const yaml_node_t *root, azi3_config *c) {
        yaml_node_t *seen[_K_MAX] = {};
        static const bool required[_K_MAX] = {
                [K_STORE] = true, [K_MEGAZORD] = true, [K_SQS] = true, [K_RULES] = true,
        };

        if (!walk_mapping(p, root, "configuration", root_keys, seen))
                return;
        require(p, root, "configuration", root_keys, seen, required);
        if (seen[K_STORE])
                get_store(p, seen[K_STORE], c);
        if (seen[K_MEGAZORD])
                parse_megazord(p, seen[K_MEGAZORD], c);
        if (seen[K_SQS])
                parse_sqs(p, seen[K_SQS], c);
        if (seen[K_RETENTION])
                get_positive_duration(p, seen[K_RETENTION], "retention", &c->retention);
        if (seen[K_SETTLE])
                get_bounded_duration(p, seen[K_SETTLE], "settle", 0, AZI3_SETTLE_MAX, &c->settle);
        if (seen[K_MAX_ALARM_AGE])
                get_bounded_duration(p, seen[K_MAX_ALARM_AGE], "max_alarm_age", USEC_PER_MINUTE, 7 * USEC_PER_DAY,
                                     &c->max_alarm_age);
        if (seen[K_REPLAY_AFTER])
                get_bounded_duration(p, seen[K_REPLAY_AFTER], "replay_after", 10 * USEC_PER_SEC, USEC_PER_DAY,
                                     &c->replay_after);
        if (seen[K_RULES])
                parse_rules(p, seen[K_RULES], c);
}

int azi3_config_parse(const char *text, size_t size, const char *name, azi3_config **ret,
                      azi3_config_errors *errors) {
        _cleanup_(azi3_config_freep) azi3_config *c = NULL;
        yaml_parser_t yp;
        yaml_document_t doc;
        parser p = { .doc = &doc, .errors = errors, .name = name ?: "<string>" };
        int r = 0;

        if (!errors->file) {
                errors->file = strdup(p.name);
                if (!errors->file)
                        return -ENOMEM;
        }

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->path = strdup(p.name);
        if (!c->path)
                return -ENOMEM;
        c->megazord_timeout = AZI3_DEFAULT_MEGAZORD_TIMEOUT;
        c->megazord_max_parallel = AZI3_DEFAULT_MEGAZORD_MAX_PARALLEL;
        c->sqs_wait_time = AZI3_DEFAULT_SQS_WAIT_TIME;
        c->sqs_visibility_timeout = AZI3_DEFAULT_SQS_VISIBILITY_TIMEOUT;
        c->retention = AZI3_DEFAULT_RETENTION;
        c->settle = AZI3_DEFAULT_SETTLE;
        c->max_alarm_age = AZI3_DEFAULT_MAX_ALARM_AGE;
        c->replay_after = AZI3_DEFAULT_REPLAY_AFTER;

        if (!yaml_parser_initialize(&yp))
                return -ENOMEM;
        yaml_parser_set_input_string(&yp, (const unsigned char *) text, size);

        if (!yaml_parser_load(&yp, &doc)) {
                if (yp.error == YAML_MEMORY_ERROR) {
                        yaml_parser_delete(&yp);
                        return -ENOMEM;
                }
                error_at(&p, (unsigned) yp.problem_mark.line + 1, (unsigned) yp.problem_mark.column + 1,
                         "invalid YAML: %s%s%s", yp.problem ?: "syntax error", yp.context ? " " : "",
                         yp.context ?: "");
                yaml_parser_delete(&yp);
                return p.oom ?: -EINVAL;
        }

        yaml_node_t *root = yaml_document_get_root_node(&doc);
        if (!root || is_null(root))
                error_at(&p, 1, 1, "the configuration is empty; expected a mapping with the keys store, megazord, "
                         "sqs, retention and rules");
        else
                parse_root(&p, root, c);

        yaml_document_delete(&doc);
        yaml_parser_delete(&yp);

        if (p.oom)
                return p.oom;
        if (p.failed)
                return -EINVAL;
        r = resolve_store(&p, c);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(c);
        return 0;
}

int azi3_config_load(const char *path, azi3_config **ret, azi3_config_errors *errors) {
        _cleanup_fclose_ FILE *f = NULL;
        _cleanup_free_ char *buf = NULL;
        size_t n = 0;
        int r;

        if (!errors->file) {
                errors->file = strdup(path);
                if (!errors->file)
                        return -ENOMEM;
        }

        f = fopen(path, "re");
        if (!f) {
                r = negative_errno();
                parser p = { .errors = errors };
                error_at(&p, 0, 0, "cannot open the configuration: %s", strerror(-r));
                return p.oom ?: r;
        }

        buf = malloc(CONFIG_SIZE_MAX + 1);
        if (!buf)
                return -ENOMEM;
        n = fread(buf, 1, CONFIG_SIZE_MAX + 1, f);
        if (ferror(f)) {
                r = -EIO;
                parser p = { .errors = errors };
                error_at(&p, 0, 0, "cannot read the configuration: %s", strerror(EIO));
                return p.oom ?: r;
        }
        if (n > CONFIG_SIZE_MAX) {
                parser p = { .errors = errors };
                error_at(&p, 0, 0, "the configuration is larger than %d bytes; expected a small YAML file",
                         CONFIG_SIZE_MAX);
                return p.oom ?: -EFBIG;
        }
        return azi3_config_parse(buf, n, path, ret, errors);
}

char *azi3_config_error_format(const azi3_config_errors *l, size_t i) {
        const azi3_config_error *e = &l->items[i];
        char *s = NULL;
        int r;

        if (e->line > 0)
                r = asprintf(&s, "%s:%u:%u: %s", l->file ?: "", e->line, e->column, e->message);
        else
                r = asprintf(&s, "%s: %s", l->file ?: "", e->message);
        return r < 0 ? NULL : s;
}

void azi3_config_errors_clear(azi3_config_errors *l) {
        for (size_t i = 0; i < l->n; i++)
                free(l->items[i].message);
        free(l->items);
        free(l->file);
        *l = (azi3_config_errors) {};
}

azi3_config *azi3_config_free(azi3_config *c) {
        if (!c)
                return NULL;
        for (size_t i = 0; i < c->n_rules; i++) {
                free(c->rules[i].rule_id);
                free(c->rules[i].timezone);
                free(c->rules[i].event);
                free(c->rules[i].alarm_event);
        }
        free(c->rules);
        free(c->by_key);
        free(c->path);
        free(c->store);
        free(c->megazord_base_url);
        free(c->sqs_endpoint);
        free(c->sqs_region);
        free(c->sqs_queue_url);
        free(c);
        return NULL;
}

const azi3_rule *azi3_config_find_rule(const azi3_config *c, int64_t robot_id, const char *rule_id) {
        size_t lo = 0, hi = c->n_rules;

        /* a returned configuration has no duplicates, so by_key holds every rule */
        if (!c->by_key || !rule_id)
                return NULL;
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                int d = rule_key_cmp(c->by_key[mid], robot_id, rule_id);

                if (d == 0)
                        return c->by_key[mid];
                if (d < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return NULL;
}

day_rule azi3_rule_day(const azi3_rule *r) {
        return (day_rule) { .zone = r->zone, .start_minute = r->start_minute, .end_minute = r->end_minute };
}
