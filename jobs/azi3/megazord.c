/* SPDX-License-Identifier: MIT */
#include "megazord.h"

#include <inttypes.h>
#include <jansson.h>

struct megazord {
        char *base_url; /* without a trailing slash */
        usec_t timeout;
        CURL *curl;     /* kept so keep-alive connections are reused between calls */
};

int megazord_new(const char *base_url, usec_t timeout, megazord **ret) {
        _cleanup_(megazord_freep) megazord *m = NULL;
        size_t len;

        if (!base_url || timeout == 0 ||
            (strncmp(base_url, "http://", 7) != 0 && strncmp(base_url, "https://", 8) != 0))
                return -EINVAL;

        m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        m->base_url = strdup(base_url);
        if (!m->base_url)
                return -ENOMEM;
        len = strlen(m->base_url);
        while (len > 0 && m->base_url[len - 1] == '/')
                m->base_url[--len] = '\0';
        m->timeout = timeout;
        m->curl = curl_easy_init();
        if (!m->curl)
                return -ENOMEM;

        *ret = TAKE_PTR(m);
        return 0;
}

megazord *megazord_free(megazord *m) {
        if (!m)
                return NULL;
        if (m->curl)
                curl_easy_cleanup(m->curl);
        free(m->base_url);
        free(m);
        return NULL;
}

usec_t megazord_timeout(const megazord *m) {
        return m->timeout;
}

static const char *const op_what[_MEGAZORD_OP_MAX] = {
        [MEGAZORD_SUBSCRIBE] = "subscribe",
        [MEGAZORD_UNSUBSCRIBE] = "unsubscribe",
        [MEGAZORD_REPLAY] = "replay",
        [MEGAZORD_POST_ALARM] = "post alarm",
};

void megazord_request_done(megazord_request *req) {
        if (!req)
                return;
        free(req->url);
        free(req->body);
        curl_slist_free_all(req->headers);
        *req = (megazord_request) {};
}

void megazord_reply_done(megazord_reply *reply) {
        if (!reply)
                return;
        azi3_incomings_free(reply->incomings, reply->n_incomings);
        *reply = (megazord_reply) {};
}

/* Fills REQ for METHOD on PATH with BODY (a JSON document, taken; or NULL) and a fresh
 * Call-Ref. */
static int prepare(megazord *m, megazord_op op, int64_t robot_id, const char *method, const char *path, char *body,
                   megazord_request *req) {
        char header[64];
        struct curl_slist *h;
        int r;

        req->op = op;
        req->robot_id = robot_id;
        req->body = body;
        r = azi3_uuid_random(req->call.call_ref);
        if (r < 0)
                return azi3_call_fail(&req->call, r, NULL, 0, "Megazord %s: cannot make a Call-Ref UUID: %s",
                                      op_what[op], strerror(-r));
        if (asprintf(&req->url, "%s%s", m->base_url, path) < 0) {
                req->url = NULL;
                return -ENOMEM;
        }

        snprintf(header, sizeof(header), "Call-Ref: %s", req->call.call_ref);
        const char *lines[] = {
                header,
                "Accept: application/json",
                body ? "Content-Type: application/json" : NULL,
                "Expect:", /* no 100-continue round trip */
        };
        for (size_t i = 0; i < ELEMENTSOF(lines); i++) {
                if (!lines[i])
                        continue;
                h = curl_slist_append(req->headers, lines[i]);
                if (!h)
                        return -ENOMEM;
                req->headers = h;
        }
        snprintf(req->label, sizeof(req->label), "Megazord %s (Call-Ref %s)", op_what[op], req->call.call_ref);
        req->http = (azi3_http_request) {
                .method = method,
                .url = req->url,
                .body = req->body,
                .body_size = req->body ? strlen(req->body) : 0,
                .headers = req->headers,
                .timeout = m->timeout,
        };
        return 0;
}

/* Turns an unexpected status into a classified error quoting the body. */
static int status_error(azi3_call *call, const char *what, const char *method, const char *url,
                        const azi3_http_response *resp, long expected) {
        return azi3_call_fail(call, azi3_http_status_is_transient(resp->status) ? AZI3_TRANSIENT : AZI3_PERMANENT,
                              resp->body, resp->size,
                              "Megazord %s (Call-Ref %s) %s %s: HTTP %ld (expected %ld)",
                              what, call->call_ref, method, url, resp->status, expected);
}

static int malformed(azi3_call *call, const char *what, const char *method, const char *url,
                     const azi3_http_response *resp, const parse_error *e) {
        return azi3_call_fail(call, AZI3_PERMANENT, resp->body, resp->size,
                              "Megazord %s (Call-Ref %s) %s %s: malformed response: %s",
                              what, call->call_ref, method, url, e->message);
}

static int dump_json(json_t *j, char **ret) {
        char *s;

        if (!j)
                return -ENOMEM;
        s = json_dumps(j, JSON_COMPACT);
        json_decref(j);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

int megazord_prepare_subscribe(megazord *m, int64_t robot_id, const char *event_name, usec_t until,
                               megazord_request *ret) {
        char path[128], until_s[32], *body = NULL;
        int r;

        if (!m || !ret || robot_id < 0 || isempty(event_name))
                return -EINVAL;
        if (azi3_format_timestamp(until, until_s) < 0)
                return azi3_call_fail(&ret->call, -ERANGE, NULL, 0, "Megazord subscribe: until is out of range");
        r = dump_json(json_pack("{s:[s],s:s}", "eventNames", event_name, "until", until_s), &body);
        if (r < 0)
                return r;
        snprintf(path, sizeof(path), "/internal/v1/events/robots/%" PRId64 "/subscriptions", robot_id);
        return prepare(m, MEGAZORD_SUBSCRIBE, robot_id, "POST", path, body, ret);
}

int megazord_prepare_unsubscribe(megazord *m, int64_t robot_id, int64_t subscription_id, megazord_request *ret) {
        char path[160];

        if (!m || !ret || robot_id < 0 || subscription_id < 0)
                return -EINVAL;
        snprintf(path, sizeof(path), "/internal/v1/events/robots/%" PRId64 "/subscriptions/%" PRId64,
                 robot_id, subscription_id);
        return prepare(m, MEGAZORD_UNSUBSCRIBE, robot_id, "DELETE", path, NULL, ret);
}

int megazord_prepare_replay(megazord *m, int64_t robot_id, const char *event_name, usec_t created_since,
                            megazord_request *ret) {
        _cleanup_free_ char *path = NULL;
        char *escaped;
        int r;

        if (!m || !ret || robot_id < 0 || isempty(event_name))
                return -EINVAL;
        escaped = curl_easy_escape(m->curl, event_name, 0);
        if (!escaped)
                return -ENOMEM;
        r = asprintf(&path, "/internal/v1/events/robots/%" PRId64 "/incomings?event_name=%s&created_since=%" PRIu64,
                     robot_id, escaped, created_since / USEC_PER_SEC);
        curl_free(escaped);
        if (r < 0) {
                path = NULL;
                return -ENOMEM;
        }
        return prepare(m, MEGAZORD_REPLAY, robot_id, "GET", path, NULL, ret);
}

int megazord_prepare_post_alarm(megazord *m, int64_t robot_id, const char *event_name, int level,
                                const char *reference_id, megazord_request *ret) {
        char path[128], *body = NULL;
        int r;

        if (!m || !ret || robot_id < 0 || isempty(event_name) || isempty(reference_id))
                return -EINVAL;
        r = dump_json(json_pack("{s:s,s:s,s:i,s:s}", "providerName", MEGAZORD_ALARM_PROVIDER,
                                "eventName", event_name, "level", level, "referenceId", reference_id),
                      &body);
        if (r < 0)
                return r;
        snprintf(path, sizeof(path), "/internal/v1/events/robots/%" PRId64 "/incomings", robot_id);
        return prepare(m, MEGAZORD_POST_ALARM, robot_id, "POST", path, body, ret);
}

/* The status each call expects on success. */
static long expected_status(megazord_op op) {
        switch (op) {
        case MEGAZORD_UNSUBSCRIBE:
                return 204;
        case MEGAZORD_REPLAY:
                return 200;
        default:
                return 201;
        }
}

static int reply_interpret(const megazord_request *req, const azi3_http_response *resp, megazord_reply *ret) {
        const char *what = op_what[req->op], *method = req->http.method, *url = req->url;
        azi3_call *call = &ret->call;
        parse_error e;
        int r;

        if (req->op == MEGAZORD_UNSUBSCRIBE && resp->status == 404)
                return 1; /* already gone: what we wanted */
        if (resp->status != expected_status(req->op))
                return status_error(call, what, method, url, resp, expected_status(req->op));
        switch (req->op) {
        case MEGAZORD_SUBSCRIBE:
                if (azi3_parse_subscription(resp->body, resp->size, &ret->id, &e) < 0)
                        return malformed(call, what, method, url, resp, &e);
                return 0;
        case MEGAZORD_POST_ALARM:
                if (azi3_parse_created_incoming(resp->body, resp->size, &ret->id, &e) < 0)
                        return malformed(call, what, method, url, resp, &e);
                return 0;
        case MEGAZORD_REPLAY:
                r = azi3_parse_incomings(resp->body, resp->size, &ret->incomings, &ret->n_incomings, &e);
                if (r == -ENOMEM)
                        return r;
                if (r < 0)
                        return malformed(call, what, method, url, resp, &e);
                return 0;
        default:
                return 0;
        }
}

int megazord_reply_make(const megazord_request *req, int r, const azi3_http_response *resp, megazord_reply *ret) {
        *ret = (megazord_reply) {
                .op = req->op,
                .robot_id = req->robot_id,
                .call = req->call,
        };
        if (r >= 0)
                r = reply_interpret(req, resp, ret);
        ret->r = r;
        return r;
}

/* Prepared by the caller (PREP is the preparation's result): sends REQ on M's own handle and
 * interprets the answer into *RET. */
static int perform(megazord *m, megazord_request *req, int prep, azi3_call *call, megazord_reply *ret) {
        _cleanup_(azi3_http_response_done) azi3_http_response resp = {};
        int r = prep;

        if (r >= 0)
                r = azi3_http_perform(m->curl, &req->http, req->label, &req->call, &resp);
        if (r == -EINVAL && !req->url) {
                megazord_request_done(req);
                return r; /* bad arguments: nothing was sent */
        }
        r = megazord_reply_make(req, r, &resp, ret);
        *call = ret->call;
        megazord_request_done(req);
        return r;
}

int megazord_subscribe(megazord *m, int64_t robot_id, const char *event_name, usec_t until,
                       azi3_call *call, int64_t *ret_subscription_id) {
        megazord_request req = {};
        megazord_reply reply = {};
        int r;

        azi3_call_reset(call);
        if (!call)
                return -EINVAL;
        r = perform(m, &req, megazord_prepare_subscribe(m, robot_id, event_name, until, &req), call, &reply);
        if (r >= 0)
                *ret_subscription_id = reply.id;
        return r;
}

int megazord_unsubscribe(megazord *m, int64_t robot_id, int64_t subscription_id, azi3_call *call) {
        megazord_request req = {};
        megazord_reply reply = {};

        azi3_call_reset(call);
        if (!call)
                return -EINVAL;
        return perform(m, &req, megazord_prepare_unsubscribe(m, robot_id, subscription_id, &req), call, &reply);
}

int megazord_replay(megazord *m, int64_t robot_id, const char *event_name, usec_t created_since,
                    azi3_call *call, azi3_incoming **ret, size_t *ret_n) {
        megazord_request req = {};
        megazord_reply reply = {};
        int r;

        azi3_call_reset(call);
        if (!call)
                return -EINVAL;
        r = perform(m, &req, megazord_prepare_replay(m, robot_id, event_name, created_since, &req), call, &reply);
        if (r < 0) {
                megazord_reply_done(&reply);
                return r;
        }
        *ret = TAKE_PTR(reply.incomings);
        *ret_n = reply.n_incomings;
        return 0;
}

int megazord_post_alarm(megazord *m, int64_t robot_id, const char *event_name, int level,
                        const char *reference_id, azi3_call *call, int64_t *ret_incoming_id) {
        megazord_request req = {};
        megazord_reply reply = {};
        int r;

        azi3_call_reset(call);
        if (!call)
                return -EINVAL;
        r = perform(m, &req, megazord_prepare_post_alarm(m, robot_id, event_name, level, reference_id, &req), call,
                    &reply);
        if (r >= 0 && ret_incoming_id)
                *ret_incoming_id = reply.id;
        return r;
}
