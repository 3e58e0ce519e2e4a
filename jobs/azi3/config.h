/* SPDX-License-Identifier: MIT */
#pragma once

/* The azi-3 configuration file (SPEC section 8, etc/azi3.yaml): parsing, defaults and
 * validation. Every problem is collected with its line and column (1-based), so an operator
 * sees all of them at once; a configuration is returned only when there were none.
 *
 * Keys and defaults:
 *   store                      required; a path, relative ones resolve against the file's directory
 *   megazord.base_url          required; http:// or https:// URL
 *   megazord.timeout           default 5s; > 0
 *   megazord.max_parallel      default 16; 1..256: how many Megazord calls of one run may be in
 *                              flight at once (calls for one robot still go one at a time)
 *   sqs.endpoint               required; http(s) URL
 *   sqs.region                 required
 *   sqs.queue_url              required; http(s) URL
 *   sqs.wait_time              default 10s; whole seconds, 0..20s (the SQS long-poll limit)
 *   sqs.visibility_timeout     default 30s; whole seconds, 0..12h (SQS limits)
 *   retention                  default 24h; > 0
 *   settle                     default 30s; 0..10m: how long after a window's until a late delivery
 *                              may still close it as activity before it is judged
 *   max_alarm_age              default 1h; 1m..7d: an owed alarm whose window ended longer ago is
 *                              recorded as too late, never posted
 *   replay_after               default 2m; 10s..24h: open sessions are replayed from Megazord when
 *                              sqs-consumer has not completed a receive for this long
 *   rules[]                    required (may be empty)
 *     robot_id                 required; integer > 0
 *     rule_id                  required; [A-Za-z0-9._-], at most 64 characters
 *     timezone                 required; an IANA zone in the system's tzdata
 *     start, end               required; "HH:MM", 00:00..23:59; end <= start: B is the next day
 *     window                   default 2h; > 0
 *     event                    default TOILET_ACTIVITY; [A-Z0-9_]+
 *     alarm_event              default NO_TOILET_ACTIVITY_ALARM; [A-Z0-9_]+
 *     alarm_level              default 10; integer 0..2147483647
 * (robot_id, rule_id) must be unique. Unknown keys and duplicate keys are errors. */

#include <stddef.h>
#include <stdint.h>

#include "day.h"
#include "basic/macro.h"
#include "basic/parse-error.h"
#include "basic/tz.h"

#define AZI3_DEFAULT_WINDOW (2 * USEC_PER_HOUR)
#define AZI3_DEFAULT_EVENT "TOILET_ACTIVITY"
#define AZI3_DEFAULT_ALARM_EVENT "NO_TOILET_ACTIVITY_ALARM"
#define AZI3_DEFAULT_ALARM_LEVEL 10
#define AZI3_DEFAULT_RETENTION (24 * USEC_PER_HOUR)
#define AZI3_DEFAULT_MEGAZORD_TIMEOUT (5 * USEC_PER_SEC)
#define AZI3_DEFAULT_MEGAZORD_MAX_PARALLEL 16u
#define AZI3_MEGAZORD_MAX_PARALLEL_MAX 256
#define AZI3_DEFAULT_SQS_WAIT_TIME (10 * USEC_PER_SEC)
#define AZI3_DEFAULT_SQS_VISIBILITY_TIMEOUT (30 * USEC_PER_SEC)
#define AZI3_DEFAULT_SETTLE (30 * USEC_PER_SEC)
#define AZI3_SETTLE_MAX (10 * USEC_PER_MINUTE)
#define AZI3_DEFAULT_MAX_ALARM_AGE USEC_PER_HOUR
#define AZI3_DEFAULT_REPLAY_AFTER (2 * USEC_PER_MINUTE)
#define AZI3_RULE_ID_MAX 64

typedef struct azi3_rule {
        int64_t robot_id;
        char *rule_id;
        char *timezone;
        const tz *zone;        /* interned by tz_load(); not owned */
        unsigned start_minute; /* local, minutes after midnight */
        unsigned end_minute;
        usec_t window;
        char *event;
        char *alarm_event;
        int32_t alarm_level;
        unsigned line, column; /* where the rule's mapping starts */
} azi3_rule;

typedef struct azi3_config {
        char *path; /* the file it was read from (or the name given to azi3_config_parse) */
        char *store;
        char *megazord_base_url;
        usec_t megazord_timeout;
        unsigned megazord_max_parallel;
        char *sqs_endpoint;
        char *sqs_region;
        char *sqs_queue_url;
        usec_t sqs_wait_time;
        usec_t sqs_visibility_timeout;
        usec_t retention;
        usec_t settle;
        usec_t max_alarm_age;
        usec_t replay_after;
        azi3_rule *rules;      /* in file order, the order monitoring-scheduler visits them */
        size_t n_rules;
        const azi3_rule **by_key; /* the n_rules rules by (robot_id, rule_id): lookups per message */
} azi3_config;

typedef struct azi3_config_error {
        unsigned line;   /* 1-based; 0 when not tied to a place (e.g. the file cannot be read) */
        unsigned column; /* 1-based */
        char *message;   /* what is wrong and what is expected, starting with the key's path */
} azi3_config_error;

typedef struct azi3_config_errors {
        char *file;
        azi3_config_error *items;
        size_t n;
} azi3_config_errors;

/* Reads and validates the file at PATH. Returns 0 and a configuration, or -EINVAL when the
 * file has problems (all of them appended to ERRORS), -ENOENT / other -errno when it cannot be
 * read (also described in ERRORS), -ENOMEM. ERRORS must be zero-initialized or cleared. */
int azi3_config_load(const char *path, azi3_config **ret, azi3_config_errors *errors);

/* As azi3_config_load() for TEXT of SIZE bytes; NAME is used in messages and to resolve a
 * relative store path (against NAME's directory; as is when NAME has none). */
int azi3_config_parse(const char *text, size_t size, const char *name, azi3_config **ret,
                      azi3_config_errors *errors);

/* Formats error I of L as "file:line:column: message". Returns a malloc'ed string or NULL. */
char *azi3_config_error_format(const azi3_config_errors *l, size_t i);

/* Frees every error; L may be reused. */
void azi3_config_errors_clear(azi3_config_errors *l);

/* NULL-tolerant; returns NULL. */
azi3_config *azi3_config_free(azi3_config *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(azi3_config *, azi3_config_free);

/* The rule (ROBOT_ID, RULE_ID), or NULL. */
const azi3_rule *azi3_config_find_rule(const azi3_config *c, int64_t robot_id, const char *rule_id);

/* The rule's local start and end, for day_bounds() and day_find(). */
day_rule azi3_rule_day(const azi3_rule *r);

/* Parses "HH:MM" (two digits each, 00:00..23:59) into minutes after midnight.
 * Returns 0, or -EINVAL and fills E (may be NULL) with where and why. */
int azi3_parse_local_time(const char *s, unsigned *ret, parse_error *e);
