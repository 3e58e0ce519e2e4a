/* SPDX-License-Identifier: MIT */
#pragma once

/* This daemon as one node of a cluster on PostgreSQL (issue 15, items 2, 3 and 6): its lease,
 * its offset to the database's clock, the take-over of nodes whose lease ended, and what it
 * does while PostgreSQL is unreachable. The SQL is store/cluster-pg.c; this file is the
 * daemon's side, on its own connection (a lease renewal never waits behind history writes).
 *
 * LEASE  The node registers a new incarnation at start and renews its lease every third of
 *       scheduler.cluster.lease. It claims fires only while the lease it last renewed has more
 *       than a third of its length left (counted on CLOCK_MONOTONIC from before the renewal
 *       was sent, so never longer than the database granted), while PostgreSQL answers, and
 *       while its clock is within scheduler.cluster.max_clock_skew of the database's.
 *
 * TAKE-OVER  Each renewal also declares lost every other incarnation whose lease ended by the
 *       database's clock, and interrupts its runs ("node lost: NAME#N"); the job's retry policy
 *       then decides whether they run again here (the retry's claim key makes that once). A
 *       node that was itself unreachable takes nothing over until it has been reachable for a
 *       whole lease: after an outage of PostgreSQL every node gets the chance to renew first.
 *       A node that learns it was declared lost (its renewal finds its incarnation closed)
 *       kills its runs still in flight: they were interrupted and may run again elsewhere.
 *
 * OUTAGE  While PostgreSQL is unreachable nothing is claimed (so nothing can run twice); runs
 *       in flight finish and their results wait here, in order, to be written when it is
 *       back; fires missed meanwhile follow each job's catch_up then. The outage is logged
 *       once, when it begins and when it ends, and shown in STATUS=. Reconnects back off from
 *       CLUSTER_BACKOFF_MIN to a fifth of the lease. */

#include <stdbool.h>
#include <stdio.h>

#include "store/history.h"

typedef struct manager manager;
typedef struct cluster cluster;

#define CLUSTER_DEFAULT_LEASE (10 * USEC_PER_SEC)
#define CLUSTER_DEFAULT_MAX_CLOCK_SKEW (2 * USEC_PER_SEC)
#define CLUSTER_BACKOFF_MIN (250 * USEC_PER_MSEC)

/* Joins the cluster whose database is CONNINFO (a libpq connection string) as node NAME (NULL:
 * the machine-id): registers an incarnation, closes the runs of this node's previous ones,
 * and starts the lease timer on M's event loop. PostgreSQL unreachable is not an error: the
 * node starts in an outage and keeps trying. -ENOMEM, or -errno setting up the timer. */
int cluster_start(manager *m, const char *conninfo, const char *name, usec_t lease, usec_t max_clock_skew,
                  cluster **ret);

/* Leaves the cluster (the incarnation is 'stopped' if none of its runs is still in flight;
 * else its lease runs out and the runs are taken over), writes what results it can, frees.
 * Accepts NULL; returns NULL. */
cluster *cluster_free(cluster *c);

/* Whether this node may claim a fire now (see LEASE). Says why not in the log, once per
 * change of reason. */
bool cluster_may_claim(cluster *c);

/* "NAME#INCARNATION" of this node ("NAME#?" before it registered), and its fencing token
 * (0 before it registered). */
const char *cluster_node_id(const cluster *c);
uint64_t cluster_fence(const cluster *c);

/* Records the end of run RUN_ID in H: at once, or queued while PostgreSQL is unreachable (or
 * other results wait before it). A result the fence refuses (the run was taken over) is
 * discarded and logged. Returns 0, or -ENOMEM (then the result is lost, and logged). */
int cluster_finish_run(cluster *c, history *h, const char *job, int64_t run_id, unsigned attempt,
                       const history_result *res);

/* A short state for STATUS= ("" when all is well): an outage, a clock too far off, a lost lease. */
const char *cluster_status(const cluster *c);

/* The node's gauges in the Prometheus text format: clock offset, lease left, reachability,
 * runs taken over, results queued and discarded. */
void cluster_metrics_write(const cluster *c, FILE *f);
