/* SPDX-License-Identifier: MIT */
#pragma once

/* The control socket (SPEC section 7): a Unix stream socket, one JSON request and one JSON reply
 * per line; control/protocol.h names the commands and fields. The socket is 0660, group
 * admin_group (re-applied at each reload), in a directory only root may change: only root and
 * that group can connect. Commands that change something (run, enable, disable, reload, pause, resume, backfill) are
 * checked again against the peer's credentials (SO_PEERCRED, SO_PEERGROUPS): root, the
 * daemon's user or admin_group.
 *
 * Requests: {"command":"list","after":NAME|null,"limit":N|null}
 *           {"command":"status","job":NAME}
 *           {"command":"run","job":NAME,"at":USEC|null,"wait":BOOL}
 *           {"command":"enable"|"disable","job":NAME}
 *           {"command":"history","job":NAME|null,"limit":1..10000,"since":USEC,"status":S|null}
 *           {"command":"reload"}
 *           {"command":"metrics"}        -> {"ok":true,"text":"<Prometheus text exposition>"}
 *           {"command":"pause","job":NAME,"until":USEC|null}, {"command":"resume","job":NAME}
 *           {"command":"backfill","job":NAME,"from":USEC,"to":USEC,"dry_run":BOOL}
 * Replies:  {"ok":true,...} or {"ok":false,"error":"what went wrong and what to do","errno":"ENOENT"}
 * Replies are queued and sent as the peer reads; a list is streamed in batches, in name order,
 * with "more" saying whether "limit" left jobs out. Limits: CONTROL_LINE_MAX bytes per request
 * line; CONTROL_CONNECTIONS_MAX connections, CONTROL_CONNECTIONS_PER_UID per uid but root, the
 * last CONTROL_CONNECTIONS_ROOT_RESERVED for root; a request line must be complete within
 * CONTROL_REQUEST_TIMEOUT of the connection or of the previous reply, a reply taken within
 * CONTROL_REPLY_TIMEOUT (a `run --wait` waits as long as the run takes). */

#include <jansson.h>

#include "core/manager.h"

#define CONTROL_LINE_MAX 65536
#define CONTROL_CONNECTIONS_MAX 256U
#define CONTROL_CONNECTIONS_ROOT_RESERVED 16U /* of those, kept for root */
#define CONTROL_CONNECTIONS_PER_UID 16        /* any uid but root */
#define CONTROL_REQUEST_TIMEOUT (30 * USEC_PER_SEC) /* a request line complete, from the connection or the last reply */
#define CONTROL_REPLY_TIMEOUT (5 * USEC_PER_MINUTE) /* a reply taken by the peer */
#define CONTROL_HISTORY_MAX 10000U /* runs in one history reply */
#define CONTROL_LIST_BATCH 256U    /* jobs of a list added per wake-up */
#define CONTROL_BATCH_USEC (5 * USEC_PER_MSEC)

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
