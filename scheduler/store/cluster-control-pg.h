/* SPDX-License-Identifier: MIT */
#pragma once

/* Control and policies across a cluster, in PostgreSQL (issue 15, items 4 and 5): the tables
 * and statements that make `schedctl enable/disable` and `schedctl run` reach every node, a
 * `singleton` job hold one run in flight in the whole cluster, and catch-up after a
 * cluster-wide outage run once. The daemon's side (the LISTEN connection on the event loop,
 * the resync) is core/cluster-control.c; this file is SQL only, on a PGconn it is handed.
 *
 * ENABLE/DISABLE  cluster_job_control holds one row per job with an override; every change
 *       takes the next value of cluster_generation under its row lock, in the same
 *       transaction, so generations commit in the order they are taken: a node that has seen
 *       every row up to generation G and reads "generation > G" misses nothing. The change
 *       sends NOTIFY schedulerd_control (a hint: a node reads the table when it comes, and after
 *       every reconnect, since notifications sent while it was away are lost).
 *
 * RUN REQUESTS  `schedctl run` of a job that the receiving node cannot start (not in its
 *       registry during a rollout, or at its max_concurrent) becomes a cluster_run_requests
 *       row; a node that defines the job takes it with FOR UPDATE SKIP LOCKED, marking it
 *       taken in the same statement: one node takes each request, once.
 *
 * SINGLETON  cluster_singleton has one row per singleton job with a run in flight (or, for a
 *       retry, being claimed): the node and the fire it stands for, and the run's id. A row
 *       is taken with INSERT ... ON CONFLICT DO UPDATE ... WHERE <the holder is stale>, which
 *       locks the conflicting row, so of two nodes racing exactly one gets it. Stale: its run
 *       is in runs and no longer 'running' (it finished, or a surviving node marked it
 *       interrupted when its node's lease expired); or no running run of it is to be seen
 *       CLUSTER_SINGLETON_PENDING_SEC after it was taken (a pending slot: the node died between
 *       taking it and claiming, or its claim was rolled back). A run row not committed yet is
 *       not taken for a finished run.
 *
 * CATCH-UP  cluster_high_water holds, per job, the last fire instant catch-up has handled;
 *       it advances by compare-and-set, so after a cluster-wide outage N nodes starting at
 *       once compute the same missed fire and exactly one of them runs it.
 *
 * Functions return 0 (or the documented positive value) or a negative errno: -ECONNRESET
 * when the connection is bad (the caller reconnects), -EIO for an SQL error (PQerrorMessage
 * says which), -ENOMEM. Out-parameters are set only on success. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "basic/macro.h"

#define CLUSTER_CONTROL_CHANNEL "schedulerd_control"
/* a singleton slot taken but not bound to a run this long is free again */
#define CLUSTER_SINGLETON_PENDING_SEC 30

/* The schema of this file's tables, one migration step (idempotent: CREATE ... IF NOT
 * EXISTS), appended to the PostgreSQL migration array. Needs the runs table (id, job,
 * status) of the history schema. */
extern const char cluster_control_pg_schema[];

/* Sets (1, 0) or removes (-1) JOB's enable override at the next generation and notifies
 * every listening node. *ret_generation (may be NULL) is the generation given. -EINVAL for
 * another OVERRIDE. */
int cluster_ctl_set_enabled(PGconn *c, const char *job, int override, uint64_t *ret_generation);

/* Calls FN for each job whose control row changed after generation SINCE (0: every row),
 * oldest first; OVERRIDE is -1, 0 or 1. *ret_generation (may be NULL) is the highest
 * generation seen (SINCE if none). A negative return of FN stops and is returned. */
typedef int (*cluster_ctl_control_fn)(const char *job, int override, uint64_t generation, void *userdata);
int cluster_ctl_read_control(PGconn *c, uint64_t since, cluster_ctl_control_fn fn, void *userdata,
                            uint64_t *ret_generation);

/* LISTEN on CLUSTER_CONTROL_CHANNEL (again after every reconnect). */
int cluster_ctl_listen(PGconn *c);

/* Reads what arrived on the connection's socket and counts the notifications on the control
 * channel into *ret_n (may be NULL). Never blocks. -ECONNRESET when the connection broke. */
int cluster_ctl_drain_notifies(PGconn *c, unsigned *ret_n);

/* Queues a run of JOB standing for AT (microseconds since the epoch), asked on node NODE,
 * and notifies. *ret_id (may be NULL): the request's id. */
int cluster_ctl_request_run(PGconn *c, const char *job, usec_t at, const char *node, int64_t *ret_id);

/* Takes the oldest untaken request for one of the N_JOBS jobs JOBS (the jobs this node
 * defines), for node NODE. Returns 1 and sets *ret_id, *ret_job (malloc'ed) and *ret_at, or 0
 * when there is none (or another node holds every one just now). */
int cluster_ctl_take_request(PGconn *c, const char *const *jobs, size_t n_jobs, const char *node, int64_t *ret_id,
                            char **ret_job, usec_t *ret_at);

/* Records the run (RUN_ID, 0 if none could start) that request ID became. */
int cluster_ctl_request_done(PGconn *c, int64_t id, int64_t run_id);

/* The request ID: whether it was taken (1) or still waits (0); its node (malloc'ed, NULL
 * while untaken) and its run id (0 while none). -ENOENT if there is no such request. */
int cluster_ctl_request_get(PGconn *c, int64_t id, char **ret_node, int64_t *ret_run_id);

/* Takes JOB's singleton slot for node NODE's fire at SCHEDULED, bound at once to RUN_ID (the
 * fire's claimed run), or pending (RUN_ID 0: bound later by cluster_ctl_singleton_bind()).
 * Returns 1 when taken, or 0 when it is held: then *ret_node (malloc'ed), *ret_scheduled and
 * *ret_run_id (0: not bound yet) describe the holder (each pointer may be NULL). */
int cluster_ctl_singleton_acquire(PGconn *c, const char *job, const char *node, usec_t scheduled, int64_t run_id,
                                 char **ret_node, usec_t *ret_scheduled, int64_t *ret_run_id);

/* Binds NODE's slot of JOB to RUN_ID (the run its fire claimed). -ESTALE if NODE does not
 * hold it any more. */
int cluster_ctl_singleton_bind(PGconn *c, const char *job, const char *node, int64_t run_id);

/* Gives NODE's slot of JOB back (its run ended, or its claim failed). 0 also when NODE did
 * not hold it. */
int cluster_ctl_singleton_release(PGconn *c, const char *job, const char *node);

/* Advances JOB's catch-up high-water mark from EXPECTED (USEC_INFINITY: no mark yet) to
 * NEXT. Returns 1 if this call moved it, 0 if another node moved it first (then this node
 * must not run the catch-up). */
int cluster_ctl_catch_up_advance(PGconn *c, const char *job, usec_t expected, usec_t next);

/* JOB's catch-up high-water mark in *ret (USEC_INFINITY: none). */
int cluster_ctl_catch_up_get(PGconn *c, const char *job, usec_t *ret);

/* The node that claimed each of the N runs IDS (runs.node), into NODES[i] (malloc'ed, NULL when
 * unknown or gone); NODES has N entries. On failure every entry is NULL. */
int cluster_ctl_run_nodes(PGconn *c, const int64_t *ids, size_t n, char **nodes);

/* Records DIGEST as the registry of incarnation FENCE (cluster_nodes.registry_digest), for
 * `schedctl nodes` to show nodes whose registries differ. */
int cluster_ctl_set_digest(PGconn *c, uint64_t fence, const char *digest);
