/* SPDX-License-Identifier: MIT */
#pragma once

/* The client side of the control socket (control/server.h describes the protocol,
 * control/protocol.h names its commands and fields): one JSON request line out, one JSON reply
 * line back. Kept apart from schedctl's verbs so the wire handling has one
 * home and no output formatting. */

#include <jansson.h>

#include "basic/macro.h"

/* Replies larger than this are refused rather than buffered without bound. */
#define CTL_REPLY_MAX (64U * 1024U * 1024U)

/* Connects to the Unix stream socket at PATH. Returns a connected CLOEXEC fd, or -errno:
 * -ENAMETOOLONG for a path that does not fit sockaddr_un, else connect()'s error
 * (-ENOENT, -ECONNREFUSED, -EACCES, ...). */
int ctl_connect(const char *path);

/* Sends REQ (not consumed) as one line on FD and reads one reply line, waiting at most
 * TIMEOUT (USEC_INFINITY: no limit; measured on the monotonic clock) for the reply to start
 * and, once it has, between two parts of it. Returns 0 and
 * *ret_reply (a new reference to a JSON object), -ETIMEDOUT when no full reply came in time,
 * -ECONNRESET when the daemon closed the connection first, -EBADMSG for a reply that is not a
 * JSON object or is longer than CTL_REPLY_MAX, other -errno on I/O errors. */
int ctl_call(int fd, json_t *req, usec_t timeout, json_t **ret_reply);
