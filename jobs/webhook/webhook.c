/* SPDX-License-Identifier: MIT */
/* webhook.so: posts a JSON summary of the run that started this one (on_failure / on_success)
 * to a URL. "Tell me when backups fail":
 *
 *     - name: backup
 *       ...
 *       on_failure: [notify]
 *     - name: notify
 *       plugin: webhook.so
 *       schedule: "@yearly"
 *       enabled: false          # runs only when chained
 *       retry: { attempts: 3, backoff: 10s }
 *       params: { url: "https://hooks.example.com/T000/B000" }
 *
 * The body: {"job", "run_id", "status", "message", "scheduled", "finished", "notifier",
 * "notifier_run_id"}, times in RFC 3339 UTC. A 2xx answer is success; a network error, a
 * timeout, 408, 429 or 5xx asks for a retry (the job's `retry:` policy); any other answer is a
 * failure. Started without a cause (schedctl run, its schedule), it posts a test summary of its
 * own run with status "test". */

#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>

#include <schedulerd/job.h>

static const sched_job_param webhook_params[] = {
        { "url", SCHED_PARAM_STRING, NULL, "where to POST the JSON summary (http:// or https://)" },
        { "timeout", SCHED_PARAM_DURATION, "10s", "the whole request at most (connect, send, answer)" },
        { "authorization", SCHED_PARAM_STRING, "", "value of an Authorization header, e.g. \"Bearer TOKEN\"" },
        {}
};

static int webhook_init(sched_job_ctx *ctx, void **ret_userdata) {
        const char *url = "";
        (void) sched_job_param_string(ctx, "url", &url);
        if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) {
                sched_job_set_message(ctx, "params.url: found \"%s\", expected an http:// or https:// URL", url);
                return -EINVAL;
        }
        *ret_userdata = NULL;
        return 0;
}

static json_t *rfc3339(sched_usec_t u) {
        time_t t = (time_t) (u / 1000000);
        struct tm tm;
        char b[32];
        if (u == 0 || u == SCHED_USEC_INFINITY || !gmtime_r(&t, &tm))
                return json_null();
        strftime(b, sizeof(b), "%Y-%m-%dT%H:%M:%SZ", &tm);
        return json_string(b);
}

static char *body(sched_job_ctx *ctx) {
        const sched_job_cause_info *c;
        json_t *o;

        if (sched_job_cause(ctx, &c) >= 0)
                o = json_pack("{s:s, s:I, s:s, s:s, s:o, s:o}", "job", c->job, "run_id", (json_int_t) c->run_id, "status",
                              c->status, "message", c->message, "scheduled", rfc3339(c->scheduled), "finished",
                              rfc3339(c->finished));
        else
                o = json_pack("{s:s, s:I, s:s, s:s, s:o, s:n}", "job", sched_job_name(ctx), "run_id",
                              (json_int_t) sched_job_run_id(ctx), "status", "test", "message",
                              "a test post: this run was not started by on_failure or on_success", "scheduled",
                              rfc3339(sched_job_scheduled(ctx)), "finished");
        if (!o)
                return NULL;
        json_object_set_new(o, "notifier", json_string(sched_job_name(ctx)));
        json_object_set_new(o, "notifier_run_id", json_integer((json_int_t) sched_job_run_id(ctx)));
        char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
        json_decref(o);
        return s;
}

static size_t discard(char *p, size_t size, size_t n, void *userdata) {
        (void) p;
        (void) userdata;
        return size * n;
}

static sched_job_result webhook_run(sched_job_ctx *ctx) {
        const char *url = "", *auth = "";
        sched_usec_t timeout = 10000000;
        char errbuf[CURL_ERROR_SIZE] = "", *header = NULL;
        struct curl_slist *headers = NULL;
        long code = 0;
        sched_job_result res;

        (void) sched_job_param_string(ctx, "url", &url);
        (void) sched_job_param_duration(ctx, "timeout", &timeout);
        (void) sched_job_param_string(ctx, "authorization", &auth);

        char *json = body(ctx);
        CURL *h = curl_easy_init();
        headers = curl_slist_append(headers, "Content-Type: application/json");
        if (auth[0] != '\0' && asprintf(&header, "Authorization: %s", auth) >= 0)
                headers = curl_slist_append(headers, header);
        if (!json || !h || !headers) {
                sched_job_set_message(ctx, "out of memory preparing the request");
                res = SCHED_JOB_RETRY;
                goto finish;
        }
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, json);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long) (timeout / 1000));
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(h, CURLOPT_USERAGENT, "schedulerd-webhook/" PACKAGE_VERSION);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);

        CURLcode cc = curl_easy_perform(h);
        if (cc != CURLE_OK) {
                sched_job_set_message(ctx, "POST %s: %s", url, errbuf[0] ? errbuf : curl_easy_strerror(cc));
                res = SCHED_JOB_RETRY;
                goto finish;
        }
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
        if (code >= 200 && code < 300) {
                sched_job_set_message(ctx, "POST %s: %ld", url, code);
                res = SCHED_JOB_OK;
        } else if (code == 408 || code == 429 || code >= 500) {
                sched_job_set_message(ctx, "POST %s: answered %ld; will retry per the job's retry policy", url, code);
                res = SCHED_JOB_RETRY;
        } else {
                sched_job_set_message(ctx, "POST %s: answered %ld; check url and authorization", url, code);
                res = SCHED_JOB_FAIL;
        }
        printf("posted %s\n", json);

finish:
        curl_slist_free_all(headers);
        curl_easy_cleanup(h);
        free(header);
        free(json);
        return res;
}

SCHEDULERD_JOB_DEFINE(
        .name = "webhook",
        .description = "Posts a JSON summary of the run that started it (on_failure / on_success) to a URL",
        .params = webhook_params,
        .init = webhook_init,
        .run = webhook_run,
);
