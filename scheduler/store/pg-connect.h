/* SPDX-License-Identifier: MIT */
#pragma once

/* Connections to PostgreSQL whose every wait is bounded, for each of the daemon's connections
 * (history, cluster lease, cluster control): they are used from the event loop, so a host that
 * drops packets must cost seconds, not the minutes of TCP's own timeouts. */

#include <libpq-fe.h>
#include <stddef.h>

/* How long a connection attempt may take per host (unless $PGCONNECT_TIMEOUT says), and how
 * long one statement may run. */
#define PG_CONNECT_TIMEOUT_S 2
#define PG_STATEMENT_TIMEOUT_MS 5000
/* A connection attempt holds the event loop (up to connect_timeout when the host drops
 * packets): after a failed one, the next waits at least this many times as long as it took. */
#define PG_CONNECT_BACKOFF_FACTOR 4

/* Connects to CONNINFO (a libpq connection string or URI; it and libpq's environment override
 * the defaults here): connect_timeout PG_CONNECT_TIMEOUT_S, application_name APP (unless
 * $PGAPPNAME), TCP keepalives and tcp_user_timeout (a peer gone without a word is noticed in
 * ~10 s), then for the session statement_timeout PG_STATEMENT_TIMEOUT_MS and
 * client_min_messages warning. Returns 0 with the connection in *RET; -ENOMEM; -ENOTCONN (no
 * connection) or -EIO (the session could not be set up), with libpq's reason on one line in ERR
 * (ERRLEN bytes). */
int pg_connect_bounded(const char *conninfo, const char *app, char *err, size_t errlen, PGconn **ret);

/* libpq's message MSG (NULL or empty: "unknown error") on one line in BUF (LEN bytes): its
 * trailing newline dropped, a second line (DETAIL, a second host's reason) kept after a space. */
void pg_message_line(const char *msg, char *buf, size_t len);
