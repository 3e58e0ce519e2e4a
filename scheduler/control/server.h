/* SPDX-License-Identifier: MIT */
#pragma once

/* The control socket (SPEC section 7): a Unix stream socket, one JSON request and one JSON reply
 * per line; control/protocol.h names the commands and fields. Reading commands (list, status,
 * history) are open to anyone who can reach the socket (mode 0660, group admin_group);
 * commands that change something (run, enable, disable, reload, pause, resume, backfill) need root or membership of
 * admin_group, judged from the peer's credentials (SO_PEERCRED, SO_PEERGROUPS).
 *
 * Requests: {"command":"list"}
 *           {"command":"status","job":NAME}
 *           {"command":"run","job":NAME,"at":USEC|null,"wait":BOOL}
 *           {"command":"enable"|"disable","job":NAME}
 *           {"command":"history","job":NAME|null,"limit":N,"since":USEC,"status":S|null}
 *           {"command":"reload"}
 *           {"command":"pause","job":NAME,"until":USEC|null}, {"command":"resume","job":NAME}
 *           {"command":"backfill","job":NAME,"from":USEC,"to":USEC,"dry_run":BOOL}
 * Replies:  {"ok":true,...} or {"ok":false,"error":"what went wrong and what to do","errno":"ENOENT"}
 * Limits: CONTROL_LINE_MAX bytes per request line, CONTROL_CONNECTIONS_MAX connections, and an
 * idle connection is closed after CONTROL_IDLE_TIMEOUT (a `run --wait` waits as long as the
 * run takes). */

#include <jansson.h>

#include "core/manager.h"

#define CONTROL_LINE_MAX (64U * 1024U)
#define CONTROL_CONNECTIONS_MAX 256U
#define CONTROL_IDLE_TIMEOUT (30 * USEC_PER_SEC)

typedef struct control control;

/* Listens on the registry's control_socket. Returns 0 or -errno (logged). */
int control_new(manager *m, control **ret);

control *control_free(control *c);

/* Pure: handles one parsed request from a peer with the given privilege; returns the reply
 * object (new reference), or NULL with *ret_wait_run_id set when the reply must wait for that run
 * to finish. Exposed for tests. */
json_t *control_dispatch(manager *m, json_t *req, bool privileged, int64_t *ret_wait_run_id);

/* The reply describing a finished run (for run --wait). */
json_t *control_run_reply(const run *r);
