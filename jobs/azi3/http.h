/* SPDX-License-Identifier: MIT */
#pragma once

/* The libcurl plumbing shared by the Megazord and SQS clients: one request with a timeout,
 * the response body captured (bounded), and failures classified the way the jobs act on
 * them:
 *   0              success
 *   AZI3_TRANSIENT (-EAGAIN)  worth retrying later: 5xx, 408, 429, timeouts, connection
 *                             refused or reset, DNS failures
 *   AZI3_PERMANENT (-EPROTO)  retrying will not help: other 4xx, malformed responses, bad URLs
 *   other negative errnos     local problems (-ENOMEM, -EINVAL for bad arguments, -ENOKEY for
 *                             missing AWS credentials)
 * Every call fills an azi3_call, success or not, for the caller to log. */

#include <curl/curl.h>
#include <stddef.h>

#include "basic/macro.h"
#include "uuid.h"

#define AZI3_TRANSIENT (-EAGAIN)
#define AZI3_PERMANENT (-EPROTO)

/* Responses larger than this are refused (permanent): no peer of ours sends that much. */
#define AZI3_HTTP_RESPONSE_MAX (8u * 1024u * 1024u)
/* How much of a response body an error message quotes. */
#define AZI3_HTTP_BODY_EXCERPT 400u

typedef struct azi3_call {
        char call_ref[AZI3_UUID_STRING_MAX]; /* the Call-Ref sent to Megazord; "" for SQS */
        long status;                         /* HTTP status of the response; 0 if none arrived */
        char message[1024];                  /* on failure: what failed, where, and why
                                              * (with an excerpt of the response body); "" on success */
} azi3_call;

typedef struct azi3_http_request {
        const char *method;               /* "GET", "POST", "DELETE" */
        const char *url;
        const char *body;                 /* NULL: no request body */
        size_t body_size;
        const struct curl_slist *headers; /* extra headers, may be NULL */
        usec_t timeout;                   /* whole-request limit, > 0 */
        const char *aws_sigv4;            /* CURLOPT_AWS_SIGV4 provider string, or NULL */
        const char *userpwd;              /* CURLOPT_USERPWD ("key:secret"), or NULL */
} azi3_http_request;

typedef struct azi3_http_response {
        long status;
        char *body; /* NUL-terminated (the NUL is not counted in size); NULL if empty */
        size_t size;
} azi3_http_response;

/* Frees the body of R and zeroes it. R may be NULL. */
void azi3_http_response_done(azi3_http_response *r);

/* Returns true for the HTTP statuses worth retrying (5xx, 408 Request Timeout, 429). */
bool azi3_http_status_is_transient(long status);

/* One request on an easy handle, in two halves, so the Megazord client can run many through a
 * multi handle (megazord-multi.c) and one at a time through curl_easy_perform() alike. The
 * response body collects in BUF (bounded by AZI3_HTTP_RESPONSE_MAX). */
typedef struct azi3_http_transfer {
        CURL *curl;                    /* owned by the caller */
        char errbuf[CURL_ERROR_SIZE];
        char *buf;
        size_t size;
        bool too_big;
} azi3_http_transfer;

/* Resets T's handle and sets it up for REQ (which, with its strings and headers, must outlive
 * the transfer). Returns 0, -EINVAL, or a classified error in CALL naming WHAT. */
int azi3_http_transfer_setup(azi3_http_transfer *t, const azi3_http_request *req, const char *what,
                             azi3_call *call);

/* Classifies the transfer's end, curl's code C, as azi3_http_perform() does, moving the body
 * into *RET on 0. T is ready for its next setup either way. */
int azi3_http_transfer_finish(azi3_http_transfer *t, const azi3_http_request *req, CURLcode c, const char *what,
                              azi3_call *call, azi3_http_response *ret);

/* Frees the body collected so far (T may be NULL); the handle stays. */
void azi3_http_transfer_done(azi3_http_transfer *t);

/* Performs REQ on the easy handle CURL (reset first, so connections are reused across calls
 * but no option leaks from one call to the next). Returns 0 once any HTTP response arrived,
 * whatever its status, with *RET holding it (free with azi3_http_response_done()); else a
 * classified error (see above) with CALL->message naming WHAT, the URL and curl's reason.
 * CALL->status is set to the response status either way. */
int azi3_http_perform(CURL *curl, const azi3_http_request *req, const char *what,
                      azi3_call *call, azi3_http_response *ret);

/* Writes "PREFIX: <escaped excerpt of BODY>" style text into CALL->message: printf FMT,
 * then, if SIZE > 0, ": response body: " and at most AZI3_HTTP_BODY_EXCERPT bytes of BODY
 * with control characters escaped. Returns R, for `return azi3_call_fail(...)`. */
int azi3_call_fail(azi3_call *call, int r, const char *body, size_t size, const char *fmt, ...) _printf_(5, 6);

/* Start a fresh call record: clears CALL (the call_ref too). CALL may be NULL. */
void azi3_call_reset(azi3_call *call);
