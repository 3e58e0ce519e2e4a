/* SPDX-License-Identifier: MIT */
#include <microhttpd.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "basic/listen-address.h"
#include "basic/log.h"
#include "control/metrics-http.h"

struct metrics_http {
        manager *m;
        struct MHD_Daemon *d;
        int fd;
        sd_event_source *io_source, *timer_source;
};

static enum MHD_Result respond(struct MHD_Connection *c, unsigned code, const char *type, char *body, size_t len) {
        struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
        if (!r) {
                free(body);
                return MHD_NO;
        }
        (void) MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
        enum MHD_Result q = MHD_queue_response(c, code, r);
        MHD_destroy_response(r);
        return q;
}

static enum MHD_Result respond_text(struct MHD_Connection *c, unsigned code, const char *text) {
        char *b = strdup(text);
        return b ? respond(c, code, "text/plain; charset=utf-8", b, strlen(b)) : MHD_NO;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls) {
        metrics_http *h = cls;
        char *text;
        size_t len;

        if (!streq(method, MHD_HTTP_METHOD_GET) && !streq(method, MHD_HTTP_METHOD_HEAD))
                return respond_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET /metrics is served here\n");
        if (!streq(url, "/metrics"))
                return respond_text(c, MHD_HTTP_NOT_FOUND, "not found; the metrics are at /metrics\n");
        int q = manager_metrics_text(h->m, &text, &len);
        if (q == -E2BIG)
                return respond_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
                                    "the exposition is larger than its limit; see schedulerd.yaml(5), metrics_listen\n");
        if (q < 0)
                return respond_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory rendering the metrics\n");
        return respond(c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", text, len);
}

/* after every run of MHD: its own deadline for idle connections, as a timer of the loop */
static void arm(metrics_http *h) {
        MHD_UNSIGNED_LONG_LONG ms;
        if (MHD_get_timeout(h->d, &ms) == MHD_YES) {
                (void) sd_event_source_set_time_relative(h->timer_source, ms * USEC_PER_MSEC);
                (void) sd_event_source_set_enabled(h->timer_source, SD_EVENT_ONESHOT);
        } else
                (void) sd_event_source_set_enabled(h->timer_source, SD_EVENT_OFF);
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        metrics_http *h = userdata;
        (void) MHD_run(h->d);
        arm(h);
        return 0;
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        metrics_http *h = userdata;
        (void) MHD_run(h->d);
        arm(h);
        return 0;
}

int metrics_http_new(manager *m, metrics_http **ret) {
        const char *listen_on = m->reg->reg->metrics_listen, *err = NULL;
        struct sockaddr_storage ss;
        socklen_t len;
        int q, one = 1;

        *ret = NULL;
        if (isempty(listen_on))
                return 0;
        if (listen_address_parse(listen_on, &ss, &len, &err) < 0)
                return log_error_errno(-EINVAL, "metrics_listen \"%s\": %s", listen_on, err);

        metrics_http *h = calloc(1, sizeof(metrics_http));
        if (!h)
                return -ENOMEM;
        h->m = m;
        h->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (h->fd < 0) {
                q = log_error_errno(-errno, "Cannot create the metrics socket: %m");
                goto fail;
        }
        (void) setsockopt(h->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(h->fd, (struct sockaddr *) &ss, len) < 0 || listen(h->fd, 16) < 0) {
                q = log_error_errno(-errno, "Cannot listen on metrics_listen %s: %m; choose a free port", listen_on);
                goto fail;
        }
        h->d = MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_ERROR_LOG, 0, NULL, NULL, on_request, h,
                                MHD_OPTION_LISTEN_SOCKET, h->fd, MHD_OPTION_CONNECTION_LIMIT,
                                (unsigned) METRICS_HTTP_CONNECTIONS_MAX, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
                                (unsigned) METRICS_HTTP_CONNECTIONS_PER_IP, MHD_OPTION_CONNECTION_TIMEOUT,
                                (unsigned) METRICS_HTTP_TIMEOUT_SEC, MHD_OPTION_END);
        if (!h->d) {
                q = log_error_errno(-EIO, "Cannot start the metrics endpoint on %s", listen_on);
                goto fail;
        }
        h->fd = -EBADF; /* MHD's now */
        const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_EPOLL_FD);
        if (!info) {
                q = log_error_errno(-EIO, "Cannot watch the metrics endpoint: libmicrohttpd has no epoll descriptor");
                goto fail;
        }
        q = sd_event_add_io(m->event, &h->io_source, info->epoll_fd, EPOLLIN, on_io, h);
        if (q >= 0)
                q = sd_event_add_time_relative(m->event, &h->timer_source, CLOCK_MONOTONIC, USEC_PER_SEC, USEC_PER_MSEC,
                                               on_timer, h);
        if (q < 0) {
                log_error_errno(q, "Cannot watch the metrics endpoint: %m");
                goto fail;
        }
        arm(h);
        log_info("Serving Prometheus metrics on http://%s/metrics", listen_on);
        *ret = h;
        return 0;

fail:
        metrics_http_free(h);
        return q;
}

metrics_http *metrics_http_free(metrics_http *h) {
        if (!h)
                return NULL;
        sd_event_source_disable_unref(h->io_source);
        sd_event_source_disable_unref(h->timer_source);
        if (h->d)
                MHD_stop_daemon(h->d);
        if (h->fd >= 0)
                close(h->fd);
        free(h);
        return NULL;
}
