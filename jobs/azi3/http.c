/* SPDX-License-Identifier: MIT */
#include "http.h"

#include <stdarg.h>

void azi3_http_response_done(azi3_http_response *r) {
        if (!r)
                return;
        free(r->body);
        *r = (azi3_http_response) {};
}

void azi3_call_reset(azi3_call *call) {
        if (call)
                *call = (azi3_call) {};
}

bool azi3_http_status_is_transient(long status) {
        return status >= 500 || status == 408 || status == 429;
}

int azi3_call_fail(azi3_call *call, int r, const char *body, size_t size, const char *fmt, ...) {
        va_list ap;
        size_t len;

        if (!call)
                return r;
        va_start(ap, fmt);
        vsnprintf(call->message, sizeof(call->message), fmt, ap);
        va_end(ap);

        if (!body || size == 0)
                return r;

        len = strlen(call->message);
        len += (size_t) snprintf(call->message + len, sizeof(call->message) - len, ": response body: ");
        for (size_t i = 0; i < size && i < AZI3_HTTP_BODY_EXCERPT && len + 5 < sizeof(call->message); i++) {
                unsigned char c = (unsigned char) body[i];
                if (c == '\n' || c == '\r' || c == '\t')
                        call->message[len++] = ' ';
                else if (c < 0x20 || c == 0x7f)
                        len += (size_t) snprintf(call->message + len, sizeof(call->message) - len, "\\x%02x", c);
                else
                        call->message[len++] = (char) c;
        }
        if (size > AZI3_HTTP_BODY_EXCERPT && len + 4 < sizeof(call->message))
                len += (size_t) snprintf(call->message + len, sizeof(call->message) - len, "...");
        call->message[MIN(len, sizeof(call->message) - 1)] = '\0';
        return r;
}

static size_t sink_write(char *data, size_t size, size_t nmemb, void *userdata) {
        azi3_http_transfer *t = userdata;
        size_t n = size * nmemb;
        char *p;

        if (n > AZI3_HTTP_RESPONSE_MAX - t->size) {
                t->too_big = true;
                return 0; /* makes curl fail with CURLE_WRITE_ERROR */
        }
        p = realloc(t->buf, t->size + n + 1);
        if (!p)
                return 0;
        memcpy(p + t->size, data, n);
        t->buf = p;
        t->size += n;
        t->buf[t->size] = '\0';
        return n;
}

static bool curl_code_is_transient(CURLcode c) {
        switch (c) {
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_RESOLVE_PROXY:
        case CURLE_COULDNT_CONNECT:
        case CURLE_OPERATION_TIMEDOUT:
        case CURLE_SEND_ERROR:
        case CURLE_RECV_ERROR:
        case CURLE_GOT_NOTHING:
        case CURLE_PARTIAL_FILE:
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_HTTP2:
        case CURLE_HTTP2_STREAM:
        case CURLE_AGAIN:
                return true;
        default:
                return false;
        }
}

void azi3_http_transfer_done(azi3_http_transfer *t) {
        if (!t)
                return;
        free(t->buf);
        t->buf = NULL;
        t->size = 0;
        t->too_big = false;
        t->errbuf[0] = '\0';
}

int azi3_http_transfer_setup(azi3_http_transfer *t, const azi3_http_request *req, const char *what,
                             azi3_call *call) {
        CURL *curl = t ? t->curl : NULL;
        CURLcode c;

        if (!curl || !req || !req->method || !req->url || req->timeout == 0)
                return -EINVAL;

        azi3_http_transfer_done(t);
        curl_easy_reset(curl);
        c = curl_easy_setopt(curl, CURLOPT_URL, req->url);
        if (c != CURLE_OK)
                return azi3_call_fail(call, c == CURLE_OUT_OF_MEMORY ? -ENOMEM : AZI3_PERMANENT, NULL, 0,
                                      "%s: bad URL '%s': %s", what, req->url, curl_easy_strerror(c));
        curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, t->errbuf);
        curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
#if LIBCURL_VERSION_NUM >= 0x075500
        curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
#else
        curl_easy_setopt(curl, CURLOPT_PROTOCOLS, (long) (CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
        curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long) MAX(req->timeout / USEC_PER_MSEC, 1));
        curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, (long) MAX(req->timeout / USEC_PER_MSEC, 1));
        curl_easy_setopt(curl, CURLOPT_USERAGENT, "schedulerd-azi3/" PACKAGE_VERSION);
        curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, sink_write);
        curl_easy_setopt(curl, CURLOPT_WRITEDATA, t);
        curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, req->method);
        if (req->body) {
                curl_easy_setopt(curl, CURLOPT_POSTFIELDS, req->body);
                curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) req->body_size);
        } else if (streq(req->method, "GET"))
                curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
        if (req->headers)
                curl_easy_setopt(curl, CURLOPT_HTTPHEADER, req->headers);
        if (req->aws_sigv4) {
                c = curl_easy_setopt(curl, CURLOPT_AWS_SIGV4, req->aws_sigv4);
                if (c != CURLE_OK)
                        return azi3_call_fail(call, AZI3_PERMANENT, NULL, 0,
                                              "%s: this libcurl cannot sign AWS requests: %s",
                                              what, curl_easy_strerror(c));
        }
        if (req->userpwd)
                curl_easy_setopt(curl, CURLOPT_USERPWD, req->userpwd);
        return 0;
}

int azi3_http_transfer_finish(azi3_http_transfer *t, const azi3_http_request *req, CURLcode c, const char *what,
                              azi3_call *call, azi3_http_response *ret) {
        long status = 0;

        curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &status);
        /* Credentials must not linger in the handle between calls. */
        curl_easy_setopt(t->curl, CURLOPT_USERPWD, NULL);
        if (call)
                call->status = status;

        if (c != CURLE_OK) {
                int r;
                if (t->too_big)
                        r = azi3_call_fail(call, AZI3_PERMANENT, NULL, 0,
                                           "%s %s %s: response larger than %u bytes", what, req->method,
                                           req->url, AZI3_HTTP_RESPONSE_MAX);
                else if (c == CURLE_WRITE_ERROR || c == CURLE_OUT_OF_MEMORY)
                        r = azi3_call_fail(call, -ENOMEM, NULL, 0, "%s %s %s: out of memory reading the response",
                                           what, req->method, req->url);
                else
                        r = azi3_call_fail(call, curl_code_is_transient(c) ? AZI3_TRANSIENT : AZI3_PERMANENT,
                                           NULL, 0, "%s %s %s failed: %s", what, req->method, req->url,
                                           t->errbuf[0] ? t->errbuf : curl_easy_strerror(c));
                azi3_http_transfer_done(t);
                return r;
        }

        *ret = (azi3_http_response) { .status = status, .body = TAKE_PTR(t->buf), .size = t->size };
        azi3_http_transfer_done(t);
        return 0;
}

int azi3_http_perform(CURL *curl, const azi3_http_request *req, const char *what,
                      azi3_call *call, azi3_http_response *ret) {
        azi3_http_transfer t = { .curl = curl };
        int r;

        r = azi3_http_transfer_setup(&t, req, what, call);
        if (r < 0) {
                azi3_http_transfer_done(&t);
                return r;
        }
        return azi3_http_transfer_finish(&t, req, curl_easy_perform(curl), what, call, ret);
}
