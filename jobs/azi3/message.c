/* SPDX-License-Identifier: MIT */
#include "basic/civil.h"
#include "message.h"

#include <inttypes.h>
#include <jansson.h> /* provides json_decrefp() for _cleanup_ */
#include <time.h>

/* The latest instant azi3_format_timestamp() can print: 9999-12-31T23:59:59.999999Z. */
#define TIMESTAMP_MAX_SEC INT64_C(253402300799)

void azi3_sqs_event_done(azi3_sqs_event *e) {
        if (!e)
                return;
        free(e->event_name);
        free(e->provider_name);
        *e = (azi3_sqs_event) {};
}

azi3_incoming *azi3_incomings_free(azi3_incoming *v, size_t n) {
        if (!v)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                free(v[i].event_name);
                free(v[i].provider_name);
        }
        free(v);
        return NULL;
}

/* Reads exactly N digits at *P; returns -1 if they are not all digits. */
static int read_digits(const char **p, int n) {
        int v = 0;
        for (int i = 0; i < n; i++) {
                char c = (*p)[i];
                if (c < '0' || c > '9')
                        return -1;
                v = v * 10 + (c - '0');
        }
        *p += n;
        return v;
}

static int expect_char(const char **p, char c) {
        if (**p != c)
                return -1;
        (*p)++;
        return 0;
}

int azi3_parse_timestamp(const char *s, usec_t *ret, parse_error *err) {
        const char *p = s;
        int year, mon, day, hour, min, sec, off_sign = 0, off_h = 0, off_m = 0;
        usec_t frac = 0;

        if (!s)
                return parse_error_set(err, 0, "missing timestamp (expected RFC 3339 like 2026-03-29T07:41:12.000Z)");

        if ((year = read_digits(&p, 4)) < 0 || expect_char(&p, '-') < 0 ||
            (mon = read_digits(&p, 2)) < 0 || expect_char(&p, '-') < 0 ||
            (day = read_digits(&p, 2)) < 0 || (*p != 'T' && *p != 't') || !p++ ||
            (hour = read_digits(&p, 2)) < 0 || expect_char(&p, ':') < 0 ||
            (min = read_digits(&p, 2)) < 0 || expect_char(&p, ':') < 0 ||
            (sec = read_digits(&p, 2)) < 0)
                return parse_error_set(err, (size_t) (p - s),
                                       "'%s' is not an RFC 3339 timestamp (expected YYYY-MM-DDTHH:MM:SS[.fff]Z)", s);

        if (*p == '.') {
                int digits = 0;
                p++;
                while (*p >= '0' && *p <= '9') {
                        if (digits < 6)
                                frac = frac * 10 + (usec_t) (*p - '0');
                        digits++;
                        p++;
                }
                if (digits == 0 || digits > 9)
                        return parse_error_set(err, (size_t) (p - s),
                                               "'%s': the fraction of a second must have 1 to 9 digits", s);
                for (int i = digits; i < 6; i++)
                        frac *= 10;
        }

        if (*p == 'Z' || *p == 'z')
                p++;
        else if (*p == '+' || *p == '-') {
                off_sign = *p == '+' ? 1 : -1;
                p++;
                if ((off_h = read_digits(&p, 2)) < 0 || expect_char(&p, ':') < 0 ||
                    (off_m = read_digits(&p, 2)) < 0 || off_h > 23 || off_m > 59)
                        return parse_error_set(err, (size_t) (p - s),
                                               "'%s': bad UTC offset (expected Z or +hh:mm / -hh:mm)", s);
        } else
                return parse_error_set(err, (size_t) (p - s),
                                       "'%s': missing time zone designator (expected Z or +hh:mm / -hh:mm)", s);

        if (*p != '\0')
                return parse_error_set(err, (size_t) (p - s), "'%s': unexpected text after the timestamp", s);

        if (year < 1970 || mon < 1 || mon > 12 || day < 1 || hour > 23 || min > 59 || sec > 60)
                return parse_error_set(err, 0, "'%s': date or time field out of range", s);
        if (sec == 60) /* leap second: the instant is the first one of the next minute */
                sec = 59, frac = USEC_PER_SEC - 1;

        if (day > civil_days_in_month(year, mon))
                return parse_error_set(err, 0, "'%s': no such date", s);
        civil c = { .year = year, .month = mon, .day = day, .hour = hour, .minute = min, .second = sec };
        int64_t t = civil_to_seconds(&c);

        int64_t secs = (int64_t) t - off_sign * (off_h * 3600 + off_m * 60);
        if (secs < 0)
                return parse_error_set(err, 0, "'%s' is before 1970 (expected a recent instant)", s);

        *ret = (usec_t) secs * USEC_PER_SEC + frac;
        return 0;
}

int azi3_format_timestamp(usec_t t, char ret[32]) {
        civil c;

        if (t / USEC_PER_SEC > (usec_t) TIMESTAMP_MAX_SEC)
                return -ERANGE;
        civil_from_seconds((int64_t) (t / USEC_PER_SEC), &c);
        snprintf(ret, 32, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", c.year, c.month, c.day, c.hour, c.minute, c.second,
                 (unsigned) ((t % USEC_PER_SEC) / USEC_PER_MSEC));
        return 0;
}

static int load_json(const char *body, size_t len, json_t **ret, const char *what, parse_error *err) {
        json_error_t jerr;
        json_t *j;

        if (!body)
                return parse_error_set(err, 0, "%s: empty body (expected JSON)", what);
        j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
        if (!j)
                return parse_error_set(err, jerr.position > 0 ? (size_t) jerr.position : 0,
                                       "%s is not valid JSON: %s at line %d, column %d",
                                       what, jerr.text, jerr.line, jerr.column);
        *ret = j;
        return 0;
}

/* Reads OBJ[KEY] as an integer of at least MIN (0: a robot id; 1: the ids Megazord assigns, which
 * the store keeps as positive: a 0 accepted here failed every later write of its batch). */
static int get_int(const json_t *obj, const char *where, const char *key, int64_t min, int64_t *ret,
                   parse_error *err) {
        const json_t *v = json_object_get(obj, key);
        const char *what = min > 0 ? "a positive integer" : "a non-negative integer";

        if (!v)
                return parse_error_set(err, 0, "%s: missing \"%s\" (expected %s)", where, key, what);
        if (!json_is_integer(v) || json_integer_value(v) < min)
                return parse_error_set(err, 0, "%s: \"%s\" is not %s", where, key, what);
        *ret = (int64_t) json_integer_value(v);
        return 0;
}

static int get_id(const json_t *obj, const char *where, const char *key, int64_t *ret, parse_error *err) {
        return get_int(obj, where, key, 1, ret, err);
}

static int get_robot_id(const json_t *obj, const char *where, const char *key, int64_t *ret, parse_error *err) {
        return get_int(obj, where, key, 0, ret, err);
}

/* Reads OBJ[KEY] as a string, copied. OPTIONAL allows it to be missing or null (*RET = NULL). */
static int get_string(const json_t *obj, const char *where, const char *key, bool optional,
                      char **ret, parse_error *err) {
        const json_t *v = json_object_get(obj, key);
        char *s;

        if (optional && (!v || json_is_null(v))) {
                *ret = NULL;
                return 0;
        }
        if (!v)
                return parse_error_set(err, 0, "%s: missing \"%s\" (expected a non-empty string)", where, key);
        if (!json_is_string(v) || json_string_length(v) == 0 || strlen(json_string_value(v)) != json_string_length(v))
                return parse_error_set(err, 0, "%s: \"%s\" is not a non-empty string", where, key);
        s = strdup(json_string_value(v));
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

static int get_timestamp(const json_t *obj, const char *where, const char *key, usec_t *ret, parse_error *err) {
        const json_t *v = json_object_get(obj, key);
        parse_error inner;
        int r;

        if (!v || !json_is_string(v))
                return parse_error_set(err, 0, "%s: \"%s\" is %s (expected an RFC 3339 timestamp string)",
                                       where, key, v ? "not a string" : "missing");
        r = azi3_parse_timestamp(json_string_value(v), ret, &inner);
        if (r < 0)
                return parse_error_set(err, 0, "%s: \"%s\": %s", where, key, inner.message);
        return 0;
}

int azi3_parse_sqs_body(const char *body, size_t len, azi3_sqs_event *ret, parse_error *err) {
        _cleanup_(json_decrefp) json_t *root = NULL;
        _cleanup_(azi3_sqs_event_done) azi3_sqs_event e = {};
        const json_t *ev, *to;
        int r;

        r = load_json(body, len, &root, "SQS message body", err);
        if (r < 0)
                return r;
        if (!json_is_object(root))
                return parse_error_set(err, 0, "SQS message body is not a JSON object");

        ev = json_object_get(root, "event");
        if (!json_is_object(ev))
                return parse_error_set(err, 0, "SQS message body: \"event\" is %s (expected an object)",
                                       ev ? "not an object" : "missing");

        if ((r = get_id(ev, "SQS message event", "id", &e.event_id, err)) < 0 ||
            (r = get_id(ev, "SQS message event", "subscriptionId", &e.subscription_id, err)) < 0 ||
            (r = get_robot_id(ev, "SQS message event", "robotId", &e.robot_id, err)) < 0 ||
            (r = get_id(ev, "SQS message event", "sourceEventId", &e.source_event_id, err)) < 0 ||
            (r = get_string(ev, "SQS message event", "eventName", false, &e.event_name, err)) < 0 ||
            (r = get_string(ev, "SQS message event", "providerName", true, &e.provider_name, err)) < 0 ||
            (r = get_timestamp(ev, "SQS message event", "createdAt", &e.created_at, err)) < 0)
                return r;

        to = json_object_get(root, "to");
        if (to && json_object_get(to, "robotId")) {
                int64_t to_robot;
                r = get_robot_id(to, "SQS message \"to\"", "robotId", &to_robot, err);
                if (r < 0)
                        return r;
                if (to_robot != e.robot_id)
                        return parse_error_set(err, 0,
                                               "SQS message body: to.robotId %" PRId64 " differs from event.robotId %" PRId64,
                                               to_robot, e.robot_id);
        }

        *ret = e;
        e = (azi3_sqs_event) {};
        return 0;
}

static int parse_object_id(const char *body, size_t len, const char *what, int64_t *ret_id, parse_error *err) {
        _cleanup_(json_decrefp) json_t *root = NULL;
        int64_t id;
        int r;

        r = load_json(body, len, &root, what, err);
        if (r < 0)
                return r;
        if (!json_is_object(root))
                return parse_error_set(err, 0, "%s is not a JSON object", what);
        r = get_id(root, what, "id", &id, err);
        if (r < 0)
                return r;
        *ret_id = id;
        return 0;
}

int azi3_parse_subscription(const char *body, size_t len, int64_t *ret_id, parse_error *err) {
        return parse_object_id(body, len, "subscription response", ret_id, err);
}

int azi3_parse_created_incoming(const char *body, size_t len, int64_t *ret_id, parse_error *err) {
        return parse_object_id(body, len, "created incoming response", ret_id, err);
}

int azi3_parse_incomings(const char *body, size_t len, azi3_incoming **ret, size_t *ret_n, parse_error *err) {
        _cleanup_(json_decrefp) json_t *root = NULL;
        azi3_incoming *v = NULL;
        size_t n, i;
        int r;

        r = load_json(body, len, &root, "replay response", err);
        if (r < 0)
                return r;
        if (!json_is_array(root))
                return parse_error_set(err, 0, "replay response is not a JSON array");

        n = json_array_size(root);
        if (n > 0) {
                v = calloc(n, sizeof(*v));
                if (!v)
                        return -ENOMEM;
        }
        for (i = 0; i < n; i++) {
                const json_t *o = json_array_get(root, i);
                char where[64];

                snprintf(where, sizeof(where), "replay response item %zu", i);
                if (!json_is_object(o)) {
                        r = parse_error_set(err, 0, "%s is not an object", where);
                        goto fail;
                }
                if ((r = get_id(o, where, "id", &v[i].id, err)) < 0 ||
                    (r = get_robot_id(o, where, "robotId", &v[i].robot_id, err)) < 0 ||
                    (r = get_string(o, where, "eventName", false, &v[i].event_name, err)) < 0 ||
                    (r = get_string(o, where, "providerName", true, &v[i].provider_name, err)) < 0 ||
                    (r = get_timestamp(o, where, "createdAt", &v[i].created_at, err)) < 0)
                        goto fail;
        }

        *ret = v;
        *ret_n = n;
        return 0;
fail:
        azi3_incomings_free(v, n);
        return r;
}
