/* SPDX-License-Identifier: MIT */
#pragma once

/* Control and policies across the cluster, the daemon's side (issue 15, items 4 and 5; the SQL
 * is store/cluster-control-pg.c). Present only when the store is PostgreSQL.
 *
 * ENABLE/DISABLE  `schedctl enable/disable` on any node writes cluster_job_control at the next
 *       generation and notifies. Every node keeps a connection of its own that LISTENs, its
 *       socket an IO source of the event loop: a notification (the hint) makes it read the rows
 *       past the last generation it applied (the truth), within a round trip. After every
 *       (re)connect it reads them all (notifications sent while it was away are lost), and it
 *       reads past its generation every CLUSTER_RESYNC_USEC anyway, so a lost hint costs at
 *       most that.
 *
 * SCHEDCTL RUN  A node that defines the job and has room starts it itself: one request, one
 *       run. One that does not (the job is not in its registry during a rollout, or it is at
 *       its max_concurrent) queues a run request; a node that defines the job takes it (SKIP
 *       LOCKED, once) when notified, at its resync, and after each of its runs ends.
 *
 * SINGLETON  The node that claimed a singleton job's fire takes the job's cluster-wide slot,
 *       bound to the claimed run; held by another run in flight, the claimed fire is recorded
 *       skipped instead. Claim first, slot second: the claim decides which node owns a fire, so
 *       a node dying between the two leaves a 'running' claim for the lease take-over to close,
 *       never a slot that tells the other nodes the fire is someone else's while nobody runs it.
 *       A retry takes the slot before its claim (it waits for room rather than being skipped)
 *       and binds it after. The slot is given back when the run ends.
 *
 * CATCH-UP  A catch-up run goes only when this node advances the job's high-water mark from
 *       what it read to the missed fire (compare-and-set): after a cluster-wide outage the
 *       nodes starting together run it once.
 *
 * SPREAD  A node wakes to claim a fire later by its load: CLUSTER_SPREAD_USEC times its share
 *       of max_concurrent in use, all of it when full. An idle node wins the claim race; a busy
 *       one still claims what nobody else took (a fire is never left unclaimed for want of an
 *       idle node), only a little later.
 *
 * FAIL CLOSED  When the connection is down, a singleton fire is not started (its slot cannot
 *       be taken) and a catch-up does not run; both are logged. Enable/disable reports the
 *       error to the client. */

#include <stdbool.h>
#include <stdint.h>

#include "basic/macro.h"

struct manager;
struct job_rt;
typedef struct cluster_control cluster_control;

#define CLUSTER_RESYNC_USEC (5 * USEC_PER_SEC)
#define CLUSTER_SPREAD_USEC (20 * USEC_PER_MSEC)
/* In a cluster a fire this recent is not missed: a live node is firing it (a node joining a
 * running cluster must not take the fire of the current instant for a catch-up). */
#define CLUSTER_CATCH_UP_SETTLE_USEC (2 * USEC_PER_SEC)

/* Starts the control connection to CONNINFO for node NODE (its name in the slots and requests
 * it takes; NULL: HOSTNAME:PID, unique per incarnation on a machine) on M's event loop: LISTEN, a full resync, the resync timer. A failed first connect is
 * logged and retried with backoff, not an error. -ENOMEM. */
int cluster_control_new(struct manager *m, const char *conninfo, const char *node, cluster_control **ret);

/* Closes the connection and its sources. Accepts NULL; returns NULL. */
cluster_control *cluster_control_free(cluster_control *cc);

/* The node name this daemon uses in the cluster. */
const char *cluster_control_node(const cluster_control *cc);

/* Whether the control connection is up now. */
bool cluster_control_connected(const cluster_control *cc);

/* Persists JOB's override (1, 0, -1: none) cluster-wide and applies it here. -errno
 * (-ENOTCONN without a connection). */
int cluster_control_set_enabled(cluster_control *cc, const char *job, int override);

/* Queues a run of JOB standing for AT for a node that defines it. *ret_id: the request. */
int cluster_control_request_run(cluster_control *cc, const char *job, usec_t at, int64_t *ret_id);

/* Takes the run requests this node can start now (its jobs, room under max_concurrent). Cheap
 * when none can be waiting (no notification or resync since the queue was last found empty):
 * no query then, so it may be called at every run's end. */
void cluster_control_take_requests(cluster_control *cc);

/* Takes J's singleton slot for the fire at SCHEDULED, bound to RUN_ID (its claimed run), or
 * pending (RUN_ID 0, a retry before its claim: see cluster_control_singleton_bind()).
 * 1: taken; -EALREADY: held for this same instant by another node (a retry of it there);
 * -EBUSY: another run is in flight. With either, WHY (N bytes) says where. -ENOTCONN or
 * another -errno: no slot (fail closed, do not run). */
int cluster_control_singleton_take(cluster_control *cc, struct job_rt *j, usec_t scheduled, int64_t run_id, char *why,
                                   size_t n);

/* Binds the pending slot of JOB taken by this node to RUN_ID (its retry claimed), or gives it
 * back (RUN_ID <= 0: the claim failed, or the run ended). */
void cluster_control_singleton_bind(cluster_control *cc, const char *job, int64_t run_id);
void cluster_control_singleton_release(cluster_control *cc, const char *job);

/* Whether this node runs JOB's catch-up for MISSED, having read the mark before: advances the
 * high-water mark by compare-and-set. False when another node did, or without a connection. */
bool cluster_control_catch_up_once(cluster_control *cc, const char *job, usec_t missed);

/* How much later than its instant this node should wake to claim fires, by its load. */
usec_t cluster_control_claim_delay(const struct manager *m);

/* The cluster's nodes (store/cluster.h rows; free with cluster_node_rows_free()). -ENOTCONN. */
struct cluster_node_row;
int cluster_control_list_nodes(cluster_control *cc, struct cluster_node_row **ret_rows, size_t *ret_n);

/* The node that ran each of the N runs IDS into NODES[i] (malloc'ed; NULL if unknown). -errno. */
int cluster_control_run_nodes(cluster_control *cc, const int64_t *ids, size_t n, char **nodes);
