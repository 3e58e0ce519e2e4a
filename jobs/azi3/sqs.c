/* SPDX-License-Identifier: MIT */
#include "sqs.h"

#include <jansson.h>

struct sqs_client {
        char *endpoint;
        char *queue_url;
        char *sigv4;   /* "aws:amz:<region>:sqs" */
        char *userpwd; /* "<key id>:<secret>" */
        char *token_header;
        usec_t timeout;
        CURL *curl;
};

DEFINE_TRIVIAL_CLEANUP_FUNC(struct curl_slist *, curl_slist_free_all);

/* Below curl's threshold for adding "Expect: 100-continue" (1 MiB); SQS's own limits
 * (256 KiB messages) are lower anyway. */
#define SQS_REQUEST_MAX (1024u * 1024u - 1024u)

static void free_secret(char *s) {
        if (!s)
                return;
        explicit_bzero(s, strlen(s));
        free(s);
}

sqs_client *sqs_client_free(sqs_client *c) {
        if (!c)
                return NULL;
        if (c->curl)
                curl_easy_cleanup(c->curl);
        free(c->endpoint);
        free(c->queue_url);
        free(c->sigv4);
        free_secret(c->userpwd);
        free_secret(c->token_header);
        free(c);
        return NULL;
}

sqs_message *sqs_messages_free(sqs_message *v, size_t n) {
        if (!v)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                free(v[i].message_id);
                free(v[i].receipt_handle);
                free(v[i].body);
        }
        free(v);
        return NULL;
}

static bool region_is_valid(const char *r) {
        size_t n = r ? strlen(r) : 0;
        if (n == 0 || n > 32)
                return false;
        return strspn(r, "abcdefghijklmnopqrstuvwxyz0123456789-") == n;
}

int sqs_client_new(const char *endpoint, const char *region, const char *queue_url, usec_t timeout,
                   const sqs_credentials *creds, azi3_call *err, sqs_client **ret) {
        _cleanup_(sqs_client_freep) sqs_client *c = NULL;
        const char *key, *secret, *token;

        azi3_call_reset(err);
        if (!endpoint || (strncmp(endpoint, "http://", 7) != 0 && strncmp(endpoint, "https://", 8) != 0))
                return azi3_call_fail(err, -EINVAL, NULL, 0, "SQS endpoint '%s' is not a URL (expected http(s)://host[:port])",
                                      (endpoint ?: ""));
        if (!region_is_valid(region))
                return azi3_call_fail(err, -EINVAL, NULL, 0, "SQS region '%s' is not valid (expected e.g. eu-west-1)",
                                      (region ?: ""));
        if (isempty(queue_url))
                return azi3_call_fail(err, -EINVAL, NULL, 0, "SQS queue URL is empty (expected the queue's URL)");
        if (timeout == 0)
                return azi3_call_fail(err, -EINVAL, NULL, 0, "SQS request timeout is 0 (expected a positive duration)");

        if (creds) {
                key = creds->access_key_id;
                secret = creds->secret_access_key;
                token = creds->session_token;
        } else {
                key = getenv("AWS_ACCESS_KEY_ID");
                secret = getenv("AWS_SECRET_ACCESS_KEY");
                token = getenv("AWS_SESSION_TOKEN");
        }
        if (isempty(key) || isempty(secret))
                return azi3_call_fail(err, -ENOKEY, NULL, 0,
                                      "no AWS credentials for SQS: %s is %s (expected AWS_ACCESS_KEY_ID and "
                                      "AWS_SECRET_ACCESS_KEY in the job's environment)",
                                      isempty(key) ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
                                      (isempty(key) ? key : secret) ? "empty" : "unset");
        if (strchr(key, ':'))
                return azi3_call_fail(err, -EINVAL, NULL, 0, "AWS_ACCESS_KEY_ID contains ':' (expected an access key id)");

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->timeout = timeout;
        c->endpoint = strdup(endpoint);
        c->queue_url = strdup(queue_url);
        if (!c->endpoint || !c->queue_url ||
            asprintf(&c->sigv4, "aws:amz:%s:sqs", region) < 0 ||
            asprintf(&c->userpwd, "%s:%s", key, secret) < 0 ||
            (!isempty(token) && asprintf(&c->token_header, "X-Amz-Security-Token: %s", token) < 0))
                return -ENOMEM;
        c->curl = curl_easy_init();
        if (!c->curl)
                return -ENOMEM;

        *ret = TAKE_PTR(c);
        return 0;
}

/* SQS error types that are worth retrying even though they come with a 4xx. */
static bool sqs_error_is_transient(const char *type) {
        static const char *const transient[] = {
                "ThrottlingException", "RequestThrottled", "ServiceUnavailable", "InternalFailure",
                "KmsThrottled", "RequestExpired",
        };
        if (!type)
                return false;
        for (size_t i = 0; i < ELEMENTSOF(transient); i++)
                if (strstr(type, transient[i]))
                        return true;
        return false;
}

/* Sends ACTION with the members of REQ (consumed) plus QueueUrl; on success stores the
 * parsed JSON response object in *RET (decref it). */
static int sqs_call(sqs_client *c, const char *action, json_t *req, unsigned extra_seconds,
                    azi3_call *call, json_t **ret) {
        _cleanup_(curl_slist_free_allp) struct curl_slist *headers = NULL;
        _cleanup_(azi3_http_response_done) azi3_http_response resp = {};
        _cleanup_free_ char *body = NULL;
        char target[80], what[160];
        json_error_t jerr;
        json_t *j;
        int r;

        if (!req)
                return -ENOMEM;
        if (json_object_set_new(req, "QueueUrl", json_string(c->queue_url)) < 0) {
                json_decref(req);
                return -ENOMEM;
        }
        body = json_dumps(req, JSON_COMPACT);
        json_decref(req);
        if (!body)
                return -ENOMEM;
        if (strlen(body) >= SQS_REQUEST_MAX)
                return azi3_call_fail(call, -EMSGSIZE, NULL, 0,
                                      "SQS %s on %s: request of %zu bytes is too large (limit %u)",
                                      action, c->queue_url, strlen(body), SQS_REQUEST_MAX);

        snprintf(target, sizeof(target), "X-Amz-Target: AmazonSQS.%s", action);
        snprintf(what, sizeof(what), "SQS %s on %s", action, c->queue_url);
        const char *lines[] = {
                "Content-Type: application/x-amz-json-1.0",
                target,
                /* No "Expect:" line to suppress 100-continue: curl 7.88 signs every header in
                 * this list, even an empty one, and SQS rejects such a signature. curl only adds
                 * Expect to bodies over 1 MiB, which sqs_call() refuses. */
                c->token_header,
        };
        for (size_t i = 0; i < ELEMENTSOF(lines); i++) {
                struct curl_slist *h;
                if (!lines[i])
                        continue;
                h = curl_slist_append(headers, lines[i]);
                if (!h)
                        return -ENOMEM;
                headers = h;
        }

        azi3_http_request hr = {
                .method = "POST",
                .url = c->endpoint,
                .body = body,
                .body_size = strlen(body),
                .headers = headers,
                .timeout = c->timeout + extra_seconds * USEC_PER_SEC,
                .aws_sigv4 = c->sigv4,
                .userpwd = c->userpwd,
        };
        r = azi3_http_perform(c->curl, &hr, what, call, &resp);
        if (r < 0)
                return r;

        j = resp.size > 0 ? json_loadb(resp.body, resp.size, 0, &jerr) : json_object();
        if (resp.status != 200) {
                const char *type = json_string_value(json_object_get(j, "__type"));
                const char *msg = json_string_value(json_object_get(j, "message"));
                const char *shorttype = type && strchr(type, '#') ? strchr(type, '#') + 1 : type;
                bool transient = azi3_http_status_is_transient(resp.status) || sqs_error_is_transient(type);

                if (type)
                        r = azi3_call_fail(call, transient ? AZI3_TRANSIENT : AZI3_PERMANENT, NULL, 0,
                                           "%s at %s failed: HTTP %ld %s: %s", what, c->endpoint,
                                           resp.status, shorttype, (msg ?: ""));
                else
                        r = azi3_call_fail(call, transient ? AZI3_TRANSIENT : AZI3_PERMANENT, resp.body, resp.size,
                                           "%s at %s failed: HTTP %ld", what, c->endpoint, resp.status);
                json_decref(j);
                return r;
        }
        if (!json_is_object(j)) {
                json_decref(j);
                return azi3_call_fail(call, AZI3_PERMANENT, resp.body, resp.size,
                                      "%s at %s: malformed response (expected a JSON object)", what, c->endpoint);
        }
        *ret = j;
        return 0;
}

static char *dup_member(const json_t *o, const char *key) {
        const char *s = json_string_value(json_object_get(o, key));
        return s ? strdup(s) : NULL;
}

int sqs_receive(sqs_client *c, unsigned max_messages, unsigned wait_seconds, int visibility_timeout,
                azi3_call *call, sqs_message **ret, size_t *ret_n) {
        _cleanup_(json_decrefp) json_t *resp = NULL;
        json_t *req, *msgs;
        sqs_message *v = NULL;
        size_t n;
        int r;

        azi3_call_reset(call);
        if (!c || max_messages < 1 || max_messages > SQS_BATCH_MAX || wait_seconds > SQS_WAIT_SECONDS_MAX ||
            visibility_timeout > (int) SQS_VISIBILITY_MAX)
                return -EINVAL;

        req = json_pack("{s:i,s:i,s:[s]}", "MaxNumberOfMessages", (int) max_messages,
                        "WaitTimeSeconds", (int) wait_seconds, "AttributeNames", "ApproximateReceiveCount");
        if (req && visibility_timeout >= 0 &&
            json_object_set_new(req, "VisibilityTimeout", json_integer(visibility_timeout)) < 0) {
                json_decref(req);
                return -ENOMEM;
        }
        r = sqs_call(c, "ReceiveMessage", req, wait_seconds, call, &resp);
        if (r < 0)
                return r;

        msgs = json_object_get(resp, "Messages");
        n = json_array_size(msgs);
        if (msgs && !json_is_array(msgs))
                return azi3_call_fail(call, AZI3_PERMANENT, NULL, 0,
                                      "SQS ReceiveMessage on %s: malformed response (Messages is not an array)",
                                      c->queue_url);
        if (n > max_messages)
                return azi3_call_fail(call, AZI3_PERMANENT, NULL, 0,
                                      "SQS ReceiveMessage on %s: got %zu messages, asked for at most %u",
                                      c->queue_url, n, max_messages);
        if (n > 0) {
                v = calloc(n, sizeof(*v));
                if (!v)
                        return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++) {
                const json_t *m = json_array_get(msgs, i);
                const json_t *body = json_object_get(m, "Body");
                const char *count = json_string_value(json_object_get(json_object_get(m, "Attributes"),
                                                                      "ApproximateReceiveCount"));

                if (!json_is_string(body) || !json_is_string(json_object_get(m, "ReceiptHandle")) ||
                    !json_is_string(json_object_get(m, "MessageId"))) {
                        sqs_messages_free(v, n);
                        return azi3_call_fail(call, AZI3_PERMANENT, NULL, 0,
                                              "SQS ReceiveMessage on %s: malformed message %zu (expected "
                                              "string MessageId, ReceiptHandle and Body)", c->queue_url, i);
                }
                v[i].message_id = dup_member(m, "MessageId");
                v[i].receipt_handle = dup_member(m, "ReceiptHandle");
                v[i].body = dup_member(m, "Body");
                v[i].body_size = json_string_length(body);
                v[i].receive_count = count ? (unsigned) strtoul(count, NULL, 10) : 0;
                if (!v[i].message_id || !v[i].receipt_handle || !v[i].body) {
                        sqs_messages_free(v, n);
                        return -ENOMEM;
                }
        }

        *ret = v;
        *ret_n = n;
        return 0;
}

static int append_failure(sqs_batch_failure **v, size_t *n, const json_t *f, size_t base, size_t count) {
        const char *id = json_string_value(json_object_get(f, "Id"));
        const char *code = json_string_value(json_object_get(f, "Code"));
        const char *msg = json_string_value(json_object_get(f, "Message"));
        char *end;
        unsigned long idx;
        sqs_batch_failure *p;

        if (!id)
                return -EBADMSG;
        errno = 0;
        idx = strtoul(id, &end, 10);
        if (errno != 0 || *end || end == id || idx >= count)
                return -EBADMSG;

        p = realloc(*v, (*n + 1) * sizeof(**v));
        if (!p)
                return -ENOMEM;
        *v = p;
        p[*n] = (sqs_batch_failure) {
                .index = base + idx,
                .sender_fault = json_is_true(json_object_get(f, "SenderFault")),
        };
        snprintf(p[*n].code, sizeof(p[*n].code), "%s", (code ?: ""));
        snprintf(p[*n].message, sizeof(p[*n].message), "%s", (msg ?: ""));
        (*n)++;
        return 0;
}

int sqs_delete_batch(sqs_client *c, const char *const *receipt_handles, size_t n, azi3_call *call,
                     sqs_batch_failure **ret_failures, size_t *ret_n_failed) {
        _cleanup_free_ sqs_batch_failure *failures = NULL;
        size_t n_failed = 0;
        int r;

        azi3_call_reset(call);
        if (!c || (n > 0 && !receipt_handles))
                return -EINVAL;

        for (size_t base = 0; base < n; base += SQS_BATCH_MAX) {
                _cleanup_(json_decrefp) json_t *resp = NULL;
                size_t count = MIN(n - base, (size_t) SQS_BATCH_MAX);
                json_t *entries = json_array(), *failed;
                char id[24];

                if (!entries)
                        return -ENOMEM;
                for (size_t i = 0; i < count; i++) {
                        if (isempty(receipt_handles[base + i])) {
                                json_decref(entries);
                                return -EINVAL;
                        }
                        /* Ids are positions in this batch: SQS wants them unique per request. */
                        snprintf(id, sizeof(id), "%zu", i);
                        if (json_array_append_new(entries, json_pack("{s:s,s:s}", "Id", id, "ReceiptHandle",
                                                                     receipt_handles[base + i])) < 0) {
                                json_decref(entries);
                                return -ENOMEM;
                        }
                }
                r = sqs_call(c, "DeleteMessageBatch", json_pack("{s:o}", "Entries", entries), 0, call, &resp);
                if (r < 0)
                        return r;

                failed = json_object_get(resp, "Failed");
                for (size_t i = 0; i < json_array_size(failed); i++) {
                        r = append_failure(&failures, &n_failed, json_array_get(failed, i), base, count);
                        if (r == -ENOMEM)
                                return r;
                        if (r < 0)
                                return azi3_call_fail(call, AZI3_PERMANENT, NULL, 0,
                                                      "SQS DeleteMessageBatch on %s: malformed Failed entry %zu "
                                                      "(expected an Id of this batch)", c->queue_url, i);
                }
        }

        *ret_failures = TAKE_PTR(failures);
        *ret_n_failed = n_failed;
        return 0;
}

int sqs_change_visibility(sqs_client *c, const char *receipt_handle, unsigned visibility_timeout,
                          azi3_call *call) {
        _cleanup_(json_decrefp) json_t *resp = NULL;

        azi3_call_reset(call);
        if (!c || isempty(receipt_handle) || visibility_timeout > SQS_VISIBILITY_MAX)
                return -EINVAL;
        return sqs_call(c, "ChangeMessageVisibility",
                        json_pack("{s:s,s:i}", "ReceiptHandle", receipt_handle,
                                  "VisibilityTimeout", (int) visibility_timeout),
                        0, call, &resp);
}

int sqs_send(sqs_client *c, const char *body, azi3_call *call, char **ret_message_id) {
        _cleanup_(json_decrefp) json_t *resp = NULL;
        char *id;
        int r;

        azi3_call_reset(call);
        if (!c || isempty(body))
                return -EINVAL;
        r = sqs_call(c, "SendMessage", json_pack("{s:s}", "MessageBody", body), 0, call, &resp);
        if (r < 0)
                return r;
        if (!json_is_string(json_object_get(resp, "MessageId")))
                return azi3_call_fail(call, AZI3_PERMANENT, NULL, 0,
                                      "SQS SendMessage on %s: malformed response (no MessageId)", c->queue_url);
        if (ret_message_id) {
                id = dup_member(resp, "MessageId");
                if (!id)
                        return -ENOMEM;
                *ret_message_id = id;
        }
        return 0;
}
