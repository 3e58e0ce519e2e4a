/* SPDX-License-Identifier: MIT */
#pragma once

/* The control protocol's cluster side (issue 15): `schedctl nodes`, the "node" of runs and
 * jobs, and `schedctl run` of a job this node does not define; server.c calls these. With the
 * SQLite store there is no cluster: "node" is "" and `nodes` says so. */

#include <jansson.h>

#include "core/manager.h"
#include "store/history.h"

/* The reply to `nodes`. */
json_t *control_cluster_nodes_reply(manager *m);

/* The node of each of the N runs RUNS into NODES[i] (malloc'ed, "" when unknown or not a
 * cluster; NULL only on OOM); free with control_cluster_nodes_free(). */
void control_cluster_run_nodes(manager *m, const history_run *runs, size_t n, char **nodes);
void control_cluster_nodes_free(char **nodes, size_t n);

/* Adds "node" (of its last run) to job object O with the stats ST of its job. */
void control_cluster_job_node(manager *m, int64_t last_run_id, json_t *o);

/* `schedctl run NAME` where NAME is not in this node's registry: in a cluster, a run request
 * for a node that defines it (the reply names the request); else NULL (no such job). */
json_t *control_cluster_run_elsewhere(manager *m, const char *name, usec_t at);
