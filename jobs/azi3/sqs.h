/* SPDX-License-Identifier: MIT */
#pragma once

/* Client of Amazon SQS over the AWS JSON 1.0 protocol (POST to the endpoint root with
 * X-Amz-Target: AmazonSQS.<Action>), signed with SigV4 by libcurl. Errors are classified as
 * in http.h: AZI3_TRANSIENT for 5xx, throttling, timeouts and unreachable endpoints,
 * AZI3_PERMANENT for other 4xx (a missing queue, a bad receipt handle, a rejected signature)
 * and malformed responses; CALL->message names the action, the queue and SQS's error.
 * A request body that would reach 1 MiB is refused with -EMSGSIZE before sending.
 * One client is not thread-safe. */

#include <stdbool.h>
#include <stddef.h>

#include "http.h"
#include "basic/macro.h"

/* SQS limits. */
#define SQS_BATCH_MAX 10u
#define SQS_WAIT_SECONDS_MAX 20u
#define SQS_VISIBILITY_MAX 43200u

typedef struct sqs_client sqs_client;

typedef struct sqs_credentials {
        const char *access_key_id;
        const char *secret_access_key;
        const char *session_token; /* NULL or "" when not using temporary credentials */
} sqs_credentials;

typedef struct sqs_message {
        char *message_id;
        char *receipt_handle;
        char *body;
        size_t body_size;
        unsigned receive_count; /* ApproximateReceiveCount, 0 if SQS did not say */
} sqs_message;

typedef struct sqs_batch_failure {
        size_t index;      /* position of the failed entry in the caller's array */
        bool sender_fault; /* true: the entry itself is bad (e.g. an expired receipt handle) */
        char code[64];
        char message[256];
} sqs_batch_failure;

/* Creates a client for QUEUE_URL reached through ENDPOINT (e.g. "https://sqs.eu-west-1.amazonaws.com"
 * or "http://127.0.0.1:9324") in REGION, each request limited to TIMEOUT (plus the long-poll wait
 * for receives). CREDS NULL means the environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
 * optionally AWS_SESSION_TOKEN. Returns 0; -ENOKEY when credentials are missing; -EINVAL for a
 * bad argument (ENDPOINT not http(s)://, REGION not like "eu-west-1", TIMEOUT 0); -ENOMEM.
 * On failure ERR (may be NULL) says what is wrong and what is expected. */
int sqs_client_new(const char *endpoint, const char *region, const char *queue_url, usec_t timeout,
                   const sqs_credentials *creds, azi3_call *err, sqs_client **ret);

/* Frees C (NULL is fine), wiping its secret; returns NULL. */
sqs_client *sqs_client_free(sqs_client *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(sqs_client *, sqs_client_free);

/* Frees N messages and the array; returns NULL. */
sqs_message *sqs_messages_free(sqs_message *v, size_t n);

/* ReceiveMessage: up to MAX_MESSAGES (1..10), long polling up to WAIT_SECONDS (0..20), hidden
 * for VISIBILITY_TIMEOUT seconds (0..43200) or the queue's default when negative. Stores the
 * messages (possibly none: *RET = NULL, *RET_N = 0); free with sqs_messages_free(). */
int sqs_receive(sqs_client *c, unsigned max_messages, unsigned wait_seconds, int visibility_timeout,
                azi3_call *call, sqs_message **ret, size_t *ret_n);

/* DeleteMessageBatch of N receipt handles (any N; sent in batches of 10). Returns 0 when the
 * requests themselves succeeded, with *RET_FAILURES / *RET_N_FAILED listing the entries SQS
 * refused (NULL / 0 when none; free() the array). A request-level error returns the error; entries
 * of batches sent before it were deleted. */
int sqs_delete_batch(sqs_client *c, const char *const *receipt_handles, size_t n, azi3_call *call,
                     sqs_batch_failure **ret_failures, size_t *ret_n_failed);

/* ChangeMessageVisibility of one received message to VISIBILITY_TIMEOUT seconds (0: visible again
 * at once). */
int sqs_change_visibility(sqs_client *c, const char *receipt_handle, unsigned visibility_timeout,
                          azi3_call *call);

/* SendMessage of BODY (used by tests and tools; the jobs only consume). Stores the new
 * MessageId in *RET_MESSAGE_ID if not NULL (free() it). */
int sqs_send(sqs_client *c, const char *body, azi3_call *call, char **ret_message_id);
