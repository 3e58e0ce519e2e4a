/* SPDX-License-Identifier: MIT */
#pragma once

/* The nodes of a cluster, their leases and the fencing of their runs, in PostgreSQL (issue 15,
 * items 2, 3 and 6). SQL only, on a PGconn it is handed; the daemon's side (the lease timer,
 * the clock-skew check, the take-over) is core/cluster.c.
 *
 * NODES  A node is a name (the machine-id, or scheduler.cluster.node when several daemons
 *       share a machine) and an incarnation, counted up at each start. Each incarnation gets a
 *       fencing token from the sequence cluster_fence (unique, increasing) and a cluster_nodes
 *       row: its state ('alive', 'stopped' when it left cleanly, 'lost' when its lease
 *       expired and a surviving node took its runs over, 'replaced' when the same name started
 *       again), its lease's end and its clock offset. Every instant is judged by the
 *       database's clock (now()), never by a node's.
 *
 * FENCING  runs.node and runs.fence name the incarnation that claimed a run. A trigger on runs
 *       refuses to finish a run whose incarnation is no longer 'alive' with anything but
 *       'interrupted': once a node is declared lost, its late completions change nothing
 *       (the UPDATE matches no row), while the survivor's "interrupted, node lost" goes
 *       through. Declaring a node lost and interrupting its runs is one transaction.
 *
 * Functions return 0 (or the documented positive value) or a negative errno: -ECONNRESET
 * when the connection is bad (the caller reconnects), -EIO for an SQL error (PQerrorMessage
 * says which), -ENOMEM. Out-parameters are set only on success. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <libpq-fe.h>

#include "basic/macro.h"

/* One migration step (idempotent), appended to the PostgreSQL migration array: the sequence,
 * cluster_nodes, runs.node and runs.fence, and the fencing trigger. Needs the runs table. */
extern const char cluster_pg_schema[];

/* The identity of this incarnation, from cluster_pg_register(). */
typedef struct cluster_identity {
        uint64_t incarnation;
        uint64_t fence;
} cluster_identity;

/* Registers a new incarnation of node NAME, alive with a lease of LEASE_USEC from the
 * database's now(). -EEXIST when another daemon of the same name registered at the same
 * moment (try again). */
int cluster_pg_register(PGconn *c, const char *name, usec_t lease_usec, const char *digest,
                        cluster_identity *ret);

/* Renews the lease of incarnation FENCE to now() + LEASE_USEC and records its clock OFFSET
 * and registry DIGEST (may be NULL: unchanged). -ESTALE when the incarnation is no longer
 * alive (it was declared lost): it must not claim or complete anything more. -EADDRINUSE when
 * it was 'replaced' although alive: another daemon registered under the same name. */
int cluster_pg_renew(PGconn *c, uint64_t fence, usec_t lease_usec, int64_t offset_usec, const char *digest);

/* Makes the runs this session inserts (claims) carry NODE ("name#incarnation") and FENCE, as
 * the defaults of runs.node and runs.fence: on the history's connection, after each
 * (re)connection and registration. Session state: gone with the connection. */
int cluster_pg_bind_session(PGconn *c, const char *node, uint64_t fence);

/* The database's clock (clock_timestamp()), microseconds since the epoch. */
int cluster_pg_now(PGconn *c, usec_t *ret);

/* Marks incarnation FENCE 'stopped' (a clean shutdown, its runs all finished). */
int cluster_pg_leave(PGconn *c, uint64_t fence);

/* A run interrupted because its node was lost or replaced: what its retry needs. */
typedef struct cluster_lost_run {
        int64_t id;
        char *job;
        unsigned attempt;
        int64_t first_id;               /* the attempt-0 row of its chain (id itself for attempt 0) */
        usec_t scheduled_usec;
        char *node;                     /* "name#incarnation" of the node that lost it */
        pid_t pid;                      /* its process as recorded; 0 if none */
        usec_t started_usec;
} cluster_lost_run;

cluster_lost_run *cluster_lost_runs_free(cluster_lost_run *runs, size_t n);

/* Take-over: every other incarnation whose lease has ended by the database's clock becomes
 * 'lost' (recording BY_FENCE as the survivor that declared it) and each of its running runs
 * 'interrupted' with the message "node lost: NAME#INCARNATION", in one transaction. Two
 * survivors racing declare each node once: *ret_runs (may be NULL when *ret_n is 0) holds the
 * runs this call interrupted, for their retry policy; *ret_n_nodes (may be NULL) how many
 * incarnations it declared lost. */
int cluster_pg_take_over(PGconn *c, uint64_t by_fence, cluster_lost_run **ret_runs, size_t *ret_n,
                         size_t *ret_n_nodes);

/* At start-up: the earlier incarnations of NAME still 'alive' (this node died or was killed)
 * become 'replaced', and their running runs 'interrupted' ("node restarted: NAME#N"), as
 * cluster_pg_take_over() does. */
int cluster_pg_close_previous(PGconn *c, const char *name, uint64_t fence, cluster_lost_run **ret_runs,
                              size_t *ret_n);

/* One row of cluster_nodes, for `schedctl nodes` and the metrics. */
typedef struct cluster_node_row {
        char *name;
        uint64_t incarnation;
        uint64_t fence;
        char *state;                    /* alive, stopped, lost, replaced */
        bool lease_expired;             /* alive but its lease ended (not taken over yet) */
        usec_t lease_expires_usec;      /* database clock */
        usec_t renewed_usec;
        usec_t started_usec;
        int64_t clock_offset_usec;      /* the node's clock minus the database's, last measured */
        char *registry_digest;          /* "" if none */
        unsigned runs_in_flight;        /* its runs still 'running' */
} cluster_node_row;

/* The alive incarnations, and those that ended within the last hour, by name then
 * incarnation. *ret_rows is NULL when there are none. */
int cluster_pg_list_nodes(PGconn *c, cluster_node_row **ret_rows, size_t *ret_n);

cluster_node_row *cluster_node_rows_free(cluster_node_row *rows, size_t n);
