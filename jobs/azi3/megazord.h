/* SPDX-License-Identifier: MIT */
#pragma once

/* Client of the Megazord events API (SPEC 8.3). Each call sends a fresh Call-Ref UUID
 * (CALL->call_ref, filled even when the call fails, for the caller's log line) and returns
 * 0 on success or a classified error (see http.h): AZI3_TRANSIENT for 5xx, timeouts and
 * unreachable peers, AZI3_PERMANENT for other 4xx and malformed responses, with
 * CALL->message saying what failed and quoting the response body.
 * One client is not thread-safe; use one per thread or process. */

#include <stdint.h>

#include "http.h"
#include "basic/macro.h"
#include "message.h"

/* The providerName of every alarm this service posts. */
#define MEGAZORD_ALARM_PROVIDER "azi-3-status-jobs"

typedef struct megazord megazord;

/* Creates a client for BASE_URL ("http://host:port", a trailing slash is fine) whose every
 * request is limited to TIMEOUT (> 0). Returns 0, -EINVAL (BASE_URL not http(s)://..., or
 * TIMEOUT 0) or -ENOMEM. */
int megazord_new(const char *base_url, usec_t timeout, megazord **ret);

/* Frees M (NULL is fine); returns NULL. */
megazord *megazord_free(megazord *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(megazord *, megazord_free);

/* POST .../robots/{ROBOT_ID}/subscriptions for EVENT_NAME until UNTIL (an instant);
 * on 201 stores the new subscription's id in *RET_SUBSCRIPTION_ID. */
int megazord_subscribe(megazord *m, int64_t robot_id, const char *event_name, usec_t until,
                       azi3_call *call, int64_t *ret_subscription_id);

/* DELETE .../robots/{ROBOT_ID}/subscriptions/{SUBSCRIPTION_ID}. Returns 0 when Megazord
 * deleted it (204), 1 when it was already gone (404), else an error. */
int megazord_unsubscribe(megazord *m, int64_t robot_id, int64_t subscription_id, azi3_call *call);

/* GET .../robots/{ROBOT_ID}/incomings?event_name=EVENT_NAME&created_since=<CREATED_SINCE in
 * whole seconds, rounded down>. On 200 stores the events (possibly none: *RET = NULL,
 * *RET_N = 0); free them with azi3_incomings_free(). */
int megazord_replay(megazord *m, int64_t robot_id, const char *event_name, usec_t created_since,
                    azi3_call *call, azi3_incoming **ret, size_t *ret_n);

/* POST .../robots/{ROBOT_ID}/incomings with providerName MEGAZORD_ALARM_PROVIDER, EVENT_NAME,
 * LEVEL and REFERENCE_ID (the caller's idempotency key); on 201 stores the created incoming's
 * id in *RET_INCOMING_ID (may be NULL). */
int megazord_post_alarm(megazord *m, int64_t robot_id, const char *event_name, int level,
                        const char *reference_id, azi3_call *call, int64_t *ret_incoming_id);
