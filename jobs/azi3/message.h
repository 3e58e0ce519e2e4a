/* SPDX-License-Identifier: MIT */
#pragma once

/* Parsing of what the azi-3 jobs receive from the network: the SQS message body of SPEC 8.4
 * and the Megazord responses of SPEC 8.3. Pure functions (no I/O, no clock), so they can be
 * unit-tested and fuzzed on their own. Every failure fills a parse_error whose message says
 * which field is wrong and what was expected; its offset is the byte offset in the input
 * when known, else 0. */

#include <stddef.h>
#include <stdint.h>

#include "basic/macro.h"
#include "basic/parse-error.h"

/* The activity event carried by one SQS message (SPEC 8.4, the "event" object). */
typedef struct azi3_sqs_event {
        int64_t event_id;        /* Megazord's outgoing event id ("event.id") */
        int64_t subscription_id; /* with robot_id, finds the session */
        int64_t robot_id;
        int64_t source_event_id; /* the identity for de-duplication (the replay's "id") */
        char *event_name;
        char *provider_name;     /* NULL when absent: it is informational only */
        usec_t created_at;       /* the event time "createdAt", microseconds since the epoch */
} azi3_sqs_event;

/* One incoming event as returned by Megazord's replay call. */
typedef struct azi3_incoming {
        int64_t id;              /* equals the SQS message's sourceEventId */
        int64_t robot_id;
        char *event_name;
        char *provider_name;
        usec_t created_at;
} azi3_incoming;

/* Frees the strings of E (not E itself) and zeroes it. E may be NULL. */
void azi3_sqs_event_done(azi3_sqs_event *e);

/* Frees an array of N incomings returned by azi3_parse_incomings(). Returns NULL. */
azi3_incoming *azi3_incomings_free(azi3_incoming *v, size_t n);

/* Parses an RFC 3339 timestamp ("2026-03-29T07:41:12.000Z"; 0 to 9 fractional digits,
 * "Z" or a "+hh:mm"/"-hh:mm" offset; years 1970..9999) into microseconds since the epoch;
 * digits below a microsecond are dropped. Returns 0 or -EINVAL. */
int azi3_parse_timestamp(const char *s, usec_t *ret, parse_error *err);

/* Formats T as "YYYY-MM-DDTHH:MM:SS.mmmZ" (UTC, milliseconds, the form Megazord expects).
 * Returns 0, or -ERANGE if T is past year 9999. */
int azi3_format_timestamp(usec_t t, char ret[32]);

/* Parses the SQS message body of SPEC 8.4 (LEN bytes at BODY, need not be NUL-terminated).
 * Requires "event" with integer id, subscriptionId, robotId, sourceEventId, a non-empty string
 * eventName and an RFC 3339 createdAt; if "to.robotId" is present it must equal
 * event.robotId. Unknown fields are ignored. On success *RET owns its strings
 * (release with azi3_sqs_event_done()). Returns 0 or -EINVAL. */
int azi3_parse_sqs_body(const char *body, size_t len, azi3_sqs_event *ret, parse_error *err);

/* Parses the 201 response of subscribe: an object with an integer "id". Returns 0 or -EINVAL. */
int azi3_parse_subscription(const char *body, size_t len, int64_t *ret_id, parse_error *err);

/* Parses the 201 response of posting an incoming (the alarm): an object with an integer "id".
 * Returns 0 or -EINVAL. */
int azi3_parse_created_incoming(const char *body, size_t len, int64_t *ret_id, parse_error *err);

/* Parses the 200 response of replay: an array of objects {id, robotId, eventName,
 * providerName, createdAt}; providerName may be missing or null. On success *RET is a new array
 * of *RET_N entries (NULL when empty), to free with azi3_incomings_free().
 * Returns 0, -EINVAL or -ENOMEM. */
int azi3_parse_incomings(const char *body, size_t len, azi3_incoming **ret, size_t *ret_n, parse_error *err);
