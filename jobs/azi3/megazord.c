/* SPDX-License-Identifier: MIT */
#include "megazord.h"

#include <inttypes.h>
#include <jansson.h>

struct megazord {
        char *base_url; /* without a trailing slash */
        usec_t timeout;
        CURL *curl;     /* kept so keep-alive connections are reused between calls */
};

DEFINE_TRIVIAL_CLEANUP_FUNC(struct curl_slist *, curl_slist_free_all);

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

/* Sends one request with a fresh Call-Ref. BODY is a JSON document or NULL. On 0, *RET holds
 * the response (any status); *RET_URL the full URL, for messages. */
static int request(megazord *m, const char *what, const char *method, const char *path, const char *body,
                   azi3_call *call, azi3_http_response *ret, char **ret_url) {
        _cleanup_(curl_slist_free_allp) struct curl_slist *headers = NULL;
        _cleanup_free_ char *url = NULL;
        char header[64];
        struct curl_slist *h;
        int r;

        r = azi3_uuid_random(call->call_ref);
        if (r < 0)
                return azi3_call_fail(call, r, NULL, 0, "Megazord %s: cannot make a Call-Ref UUID: %s",
                                      what, strerror(-r));
        if (asprintf(&url, "%s%s", m->base_url, path) < 0) {
                url = NULL;
                return -ENOMEM;
        }

        snprintf(header, sizeof(header), "Call-Ref: %s", call->call_ref);
        const char *lines[] = {
                header,
                "Accept: application/json",
                body ? "Content-Type: application/json" : NULL,
                "Expect:", /* no 100-continue round trip */
        };
        for (size_t i = 0; i < ELEMENTSOF(lines); i++) {
                if (!lines[i])
                        continue;
                h = curl_slist_append(headers, lines[i]);
                if (!h)
                        return -ENOMEM;
                headers = h;
        }

        azi3_http_request req = {
                .method = method,
                .url = url,
                .body = body,
                .body_size = body ? strlen(body) : 0,
                .headers = headers,
                .timeout = m->timeout,
        };
        char label[96];
        snprintf(label, sizeof(label), "Megazord %s (Call-Ref %s)", what, call->call_ref);
        r = azi3_http_perform(m->curl, &req, label, call, ret);
        if (r < 0)
                return r;
        *ret_url = TAKE_PTR(url);
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

int megazord_subscribe(megazord *m, int64_t robot_id, const char *event_name, usec_t until,
                       azi3_call *call, int64_t *ret_subscription_id) {
        _cleanup_(azi3_http_response_done) azi3_http_response resp = {};
        _cleanup_free_ char *body = NULL, *url = NULL;
        char path[128], until_s[32];
        parse_error e;
        int64_t id;
        int r;

        azi3_call_reset(call);
        if (!m || !call || robot_id < 0 || isempty(event_name))
                return -EINVAL;
        if (azi3_format_timestamp(until, until_s) < 0)
                return azi3_call_fail(call, -ERANGE, NULL, 0, "Megazord subscribe: until is out of range");

        r = dump_json(json_pack("{s:[s],s:s}", "eventNames", event_name, "until", until_s), &body);
        if (r < 0)
                return r;
        snprintf(path, sizeof(path), "/internal/v1/events/robots/%" PRId64 "/subscriptions", robot_id);
        r = request(m, "subscribe", "POST", path, body, call, &resp, &url);
        if (r < 0)
                return r;
        if (resp.status != 201)
                return status_error(call, "subscribe", "POST", url, &resp, 201);
        if (azi3_parse_subscription(resp.body, resp.size, &id, &e) < 0)
                return malformed(call, "subscribe", "POST", url, &resp, &e);

        *ret_subscription_id = id;
        return 0;
}

int megazord_unsubscribe(megazord *m, int64_t robot_id, int64_t subscription_id, azi3_call *call) {
        _cleanup_(azi3_http_response_done) azi3_http_response resp = {};
        _cleanup_free_ char *url = NULL;
        char path[160];
        int r;

        azi3_call_reset(call);
        if (!m || !call || robot_id < 0 || subscription_id < 0)
                return -EINVAL;

        snprintf(path, sizeof(path), "/internal/v1/events/robots/%" PRId64 "/subscriptions/%" PRId64,
                 robot_id, subscription_id);
        r = request(m, "unsubscribe", "DELETE", path, NULL, call, &resp, &url);
        if (r < 0)
                return r;
        if (resp.status == 204)
                return 0;
        if (resp.status == 404) /* already gone: what we wanted */
                return 1;
        return status_error(call, "unsubscribe", "DELETE", url, &resp, 204);
}

int megazord_replay(megazord *m, int64_t robot_id, const char *event_name, usec_t created_since,
                    azi3_call *call, azi3_incoming **ret, size_t *ret_n) {
        _cleanup_(azi3_http_response_done) azi3_http_response resp = {};
        _cleanup_free_ char *url = NULL, *path = NULL;
        azi3_incoming *v;
        parse_error e;
        size_t n;
        char *escaped;
        int r;

        azi3_call_reset(call);
        if (!m || !call || robot_id < 0 || isempty(event_name))
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

        r = request(m, "replay", "GET", path, NULL, call, &resp, &url);
        if (r < 0)
                return r;
        if (resp.status != 200)
                return status_error(call, "replay", "GET", url, &resp, 200);
        r = azi3_parse_incomings(resp.body, resp.size, &v, &n, &e);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return malformed(call, "replay", "GET", url, &resp, &e);

        *ret = v;
        *ret_n = n;
        return 0;
}

int megazord_post_alarm(megazord *m, int64_t robot_id, const char *event_name, int level,
                        const char *reference_id, azi3_call *call, int64_t *ret_incoming_id) {
        _cleanup_(azi3_http_response_done) azi3_http_response resp = {};
        _cleanup_free_ char *body = NULL, *url = NULL;
        char path[128];
        parse_error e;
        int64_t id;
        int r;

        azi3_call_reset(call);
        if (!m || !call || robot_id < 0 || isempty(event_name) || isempty(reference_id))
                return -EINVAL;

        r = dump_json(json_pack("{s:s,s:s,s:i,s:s}", "providerName", MEGAZORD_ALARM_PROVIDER,
                                "eventName", event_name, "level", level, "referenceId", reference_id),
                      &body);
        if (r < 0)
                return r;
        snprintf(path, sizeof(path), "/internal/v1/events/robots/%" PRId64 "/incomings", robot_id);
        r = request(m, "post alarm", "POST", path, body, call, &resp, &url);
        if (r < 0)
                return r;
        if (resp.status != 201)
                return status_error(call, "post alarm", "POST", url, &resp, 201);
        if (azi3_parse_created_incoming(resp.body, resp.size, &id, &e) < 0)
                return malformed(call, "post alarm", "POST", url, &resp, &e);

        if (ret_incoming_id)
                *ret_incoming_id = id;
        return 0;
}
