/* SPDX-License-Identifier: MIT */
#pragma once

/* The Prometheus endpoint: GET /metrics on the registry's scheduler.metrics_listen, served by
 * libmicrohttpd on the daemon's event loop (its epoll descriptor watched by sd-event, no
 * threads), each answer rendered from memory by manager_metrics_text(). Bounded: at most
 * METRICS_HTTP_CONNECTIONS_MAX connections, each closed after METRICS_HTTP_TIMEOUT_SEC idle. */

#include "core/manager.h"

#define METRICS_HTTP_CONNECTIONS_MAX 16U
/* ... of which one address may hold this many: one host trickling bytes cannot take every slot
 * from the scraper (a scraper needs one or two). */
#define METRICS_HTTP_CONNECTIONS_PER_IP 4U
#define METRICS_HTTP_TIMEOUT_SEC 10U

typedef struct metrics_http metrics_http;

/* Listens on the registry's metrics_listen, if set (*RET is then NULL when not). Returns 0 or
 * -errno (logged, with the address). */
int metrics_http_new(manager *m, metrics_http **ret);

/* Stops listening. NULL-tolerant; returns NULL. */
metrics_http *metrics_http_free(metrics_http *h);
