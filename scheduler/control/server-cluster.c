/* SPDX-License-Identifier: MIT */
/* The control protocol's cluster side: see server-cluster.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "basic/clock.h"
#include "control/protocol.h"
#include "control/server-cluster.h"
#include "core/cluster-control.h"
#include "store/cluster.h"

static json_t *error_reply(int err, const char *msg) {
        const char *name = strerrorname_np(err < 0 ? -err : err);
        return json_pack("{s:b, s:s, s:s}", FIELD_OK, 0, FIELD_ERROR, msg, FIELD_ERRNO, name ?: "EIO");
}

static json_t *usec_or_null(usec_t u) {
        return u == USEC_INFINITY ? json_null() : json_integer((json_int_t) u);
}

/* The digest most alive nodes report: a node with another one runs another registry (a
 * rollout in progress, or a node left behind). Ties go to the smaller digest, so that every
 * node answering says the same. */
static const char *majority_digest(const cluster_node_row *rows, size_t n) {
        const char *best = NULL;
        size_t best_n = 0;
        for (size_t i = 0; i < n; i++) {
                if (!streq(rows[i].state, "alive"))
                        continue;
                size_t k = 0;
                for (size_t l = 0; l < n; l++)
                        if (streq(rows[l].state, "alive") && streq(rows[l].registry_digest, rows[i].registry_digest))
                                k++;
                if (k > best_n || (k == best_n && best && strcmp(rows[i].registry_digest, best) < 0)) {
                        best = rows[i].registry_digest;
                        best_n = k;
                }
        }
        return best;
}

json_t *control_cluster_nodes_reply(manager *m) {
        cluster_node_row *rows = NULL;
        size_t n = 0;

        if (!m->cluster_control)
                return error_reply(-EOPNOTSUPP, "not a cluster: scheduler.store is SQLite (a PostgreSQL connection string "
                                                "in scheduler.store makes this daemon a node)");
        int q = cluster_control_list_nodes(m->cluster_control, &rows, &n);
        if (q < 0)
                return error_reply(q, "cannot list the nodes: PostgreSQL is not reachable from this node right now");
        const char *major = majority_digest(rows, n), *self = cluster_control_node(m->cluster_control);
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++) {
                const cluster_node_row *r = &rows[i];
                char id[256];
                snprintf(id, sizeof(id), "%s#%llu", r->name, (unsigned long long) r->incarnation);
                json_array_append_new(
                        arr, json_pack("{s:s, s:s, s:I, s:s, s:o, s:b, s:I, s:s, s:b, s:I, s:o, s:b}", FIELD_NODE, id,
                                       FIELD_NAME, r->name, FIELD_INCARNATION, (json_int_t) r->incarnation, FIELD_STATE,
                                       r->state, FIELD_LEASE_EXPIRES_USEC, usec_or_null(r->lease_expires_usec),
                                       FIELD_LEASE_EXPIRED, r->lease_expired, FIELD_CLOCK_OFFSET_USEC,
                                       (json_int_t) r->clock_offset_usec, FIELD_REGISTRY_DIGEST, r->registry_digest,
                                       FIELD_REGISTRY_DIFFERS,
                                       streq(r->state, "alive") && major && !streq(major, r->registry_digest),
                                       FIELD_RUNS_IN_FLIGHT, (json_int_t) r->runs_in_flight, FIELD_STARTED_USEC,
                                       usec_or_null(r->started_usec), FIELD_SELF, streq(id, self)));
        }
        cluster_node_rows_free(rows, n);
        return json_pack("{s:b, s:o, s:s, s:I}", FIELD_OK, 1, FIELD_NODES, arr, FIELD_NODE, self, FIELD_NOW_USEC,
                         (json_int_t) clock_now_realtime());
}

void control_cluster_run_nodes(manager *m, const history_run *runs, size_t n, char **nodes) {
        _cleanup_free_ int64_t *ids = n ? calloc(n, sizeof(int64_t)) : NULL;
        for (size_t i = 0; i < n; i++)
                nodes[i] = NULL;
        if (m->cluster_control && ids) {
                for (size_t i = 0; i < n; i++)
                        ids[i] = runs[i].id;
                (void) cluster_control_run_nodes(m->cluster_control, ids, n, nodes);
        }
        for (size_t i = 0; i < n; i++)
                if (!nodes[i])
                        nodes[i] = strdup("");
}

void control_cluster_nodes_free(char **nodes, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(nodes[i]);
}

void control_cluster_job_node(manager *m, int64_t last_run_id, json_t *o) {
        char *node = NULL;
        if (m->cluster_control && last_run_id > 0)
                (void) cluster_control_run_nodes(m->cluster_control, &last_run_id, 1, &node);
        json_object_set_new(o, FIELD_NODE, json_string(node ?: ""));
        free(node);
}

json_t *control_cluster_run_elsewhere(manager *m, const char *name, usec_t at) {
        int64_t id;
        if (!m->cluster_control)
                return NULL;
        int q = cluster_control_request_run(m->cluster_control, name, at == USEC_INFINITY ? clock_now_realtime() : at, &id);
        if (q < 0)
                return error_reply(q, "job is not in this node's registry, and the run request for another node could "
                                      "not be stored: PostgreSQL is not reachable from this node right now");
        return json_pack("{s:b, s:I, s:s, s:b}", FIELD_OK, 1, FIELD_REQUEST_ID, (json_int_t) id, FIELD_JOB, name,
                         "queued", 1);
}
