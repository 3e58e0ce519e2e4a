/* SPDX-License-Identifier: MIT */
#pragma once

/* Client of the Megazord events API (SPEC 8.3). Each call sends a fresh Call-Ref UUID
 * (CALL->call_ref, filled even when the call fails, for the caller's log line) and returns
 * 0 on success or a classified error (see http.h): AZI3_TRANSIENT for 5xx, timeouts and
 * unreachable peers, AZI3_PERMANENT for other 4xx and malformed responses, with
 * CALL->message saying what failed and quoting the response body.
 * One client is not thread-safe; use one per thread or process. Many calls at once go through
 * megazord-multi.h, which sends the requests prepared below. */

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

/* --- one call, prepared and interpreted apart (for megazord-multi.c) ------------------------- */

typedef enum megazord_op {
        MEGAZORD_SUBSCRIBE,
        MEGAZORD_UNSUBSCRIBE,
        MEGAZORD_REPLAY,
        MEGAZORD_POST_ALARM,
        _MEGAZORD_OP_MAX,
} megazord_op;

/* A request ready to send: its HTTP part (pointing into the strings below) and its fresh
 * Call-Ref in CALL. */
typedef struct megazord_request {
        megazord_op op;
        int64_t robot_id;
        char *url;
        char *body;
        struct curl_slist *headers;
        char label[96];            /* "Megazord <what> (Call-Ref ...)", for curl's failures */
        azi3_http_request http;
        azi3_call call;
} megazord_request;

/* What a call came back with: R as the synchronous call returns it, with CALL filled; ID the
 * subscription id (subscribe) or created incoming's id (post alarm); INCOMINGS the replayed
 * events (the receiver may take them, leaving NULL). */
typedef struct megazord_reply {
        megazord_op op;
        int64_t robot_id;
        int r;
        azi3_call call;
        int64_t id;
        azi3_incoming *incomings;
        size_t n_incomings;
} megazord_reply;

/* Prepare the request of each call above into *RET (zero it first; free with
 * megazord_request_done() whatever they return). Returns 0, -EINVAL for bad arguments, -ENOMEM,
 * or a classified error with RET->call.message saying why. */
int megazord_prepare_subscribe(megazord *m, int64_t robot_id, const char *event_name, usec_t until,
                               megazord_request *ret);
int megazord_prepare_unsubscribe(megazord *m, int64_t robot_id, int64_t subscription_id, megazord_request *ret);
int megazord_prepare_replay(megazord *m, int64_t robot_id, const char *event_name, usec_t created_since,
                            megazord_request *ret);
int megazord_prepare_post_alarm(megazord *m, int64_t robot_id, const char *event_name, int level,
                                const char *reference_id, megazord_request *ret);

/* Frees what REQ holds and zeroes it; REQ may be NULL. */
void megazord_request_done(megazord_request *req);

/* Interprets the end of REQ's transfer: R and RESP as azi3_http_transfer_finish() gave them
 * (RESP is read only when R is 0). Fills *RET (R, call, id, incomings) and returns RET->r. */
int megazord_reply_make(const megazord_request *req, int r, const azi3_http_response *resp, megazord_reply *ret);

/* Frees the incomings of REPLY and zeroes it; REPLY may be NULL. */
void megazord_reply_done(megazord_reply *reply);

/* The timeout every request of M is limited to. */
usec_t megazord_timeout(const megazord *m) _pure_;
