/* SPDX-License-Identifier: MIT */
/* The nodes, their leases and the fencing of their runs, in PostgreSQL: see store/cluster.h. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/cluster.h"

const char cluster_pg_schema[] =
        "CREATE SEQUENCE IF NOT EXISTS cluster_fence;\n"
        "CREATE TABLE IF NOT EXISTS cluster_nodes (\n"
        "        fence bigint PRIMARY KEY,\n"
        "        name text NOT NULL,\n"
        "        incarnation bigint NOT NULL,\n"
        "        state text NOT NULL DEFAULT 'alive'\n"
        "                CHECK (state IN ('alive', 'stopped', 'lost', 'replaced')),\n"
        "        started timestamptz NOT NULL DEFAULT now(),\n"
        "        renewed timestamptz NOT NULL DEFAULT now(),\n"
        "        lease_expires timestamptz NOT NULL,\n"
        "        clock_offset_usec bigint NOT NULL DEFAULT 0,\n"
        "        registry_digest text NOT NULL DEFAULT '',\n"
        "        ended timestamptz,\n"
        "        ended_by bigint,\n"
        "        UNIQUE (name, incarnation));\n"
        "CREATE INDEX IF NOT EXISTS cluster_nodes_alive ON cluster_nodes (lease_expires) WHERE state = 'alive';\n"
        /* a claim carries its node: the history connection's session says which (bind_session) */
        "ALTER TABLE runs ADD COLUMN IF NOT EXISTS node text\n"
        "        DEFAULT NULLIF(current_setting('schedulerd.node', true), '');\n"
        "ALTER TABLE runs ADD COLUMN IF NOT EXISTS fence bigint\n"
        "        DEFAULT NULLIF(current_setting('schedulerd.fence', true), '')::bigint;\n"
        "CREATE INDEX IF NOT EXISTS runs_running_fence ON runs (fence) WHERE status = 'running';\n"
        /* The fence. A run of an incarnation that is no longer alive ends only as interrupted
         * (by the survivor that took it over): its own node's late result matches no row. And
         * such an incarnation claims nothing more: a claim racing the take-over either commits
         * first (and is interrupted by it) or fails. FOR SHARE orders both against the take-over's
         * UPDATE of the node's row. */
        "CREATE OR REPLACE FUNCTION cluster_fence_check() RETURNS trigger LANGUAGE plpgsql AS $f$\n"
        "BEGIN\n"
        "        IF NEW.fence IS NULL OR (TG_OP = 'UPDATE' AND (NEW.status = 'running' OR NEW.status = 'interrupted')) THEN\n"
        "                RETURN NEW;\n"
        "        END IF;\n"
        "        PERFORM 1 FROM cluster_nodes WHERE fence = NEW.fence AND state = 'alive' FOR SHARE;\n"
        "        IF FOUND THEN\n"
        "                RETURN NEW;\n"
        "        END IF;\n"
        "        IF TG_OP = 'INSERT' THEN\n"
        "                RAISE EXCEPTION 'claim refused: node incarnation % lost its lease', NEW.fence\n"
        "                        USING ERRCODE = 'object_not_in_prerequisite_state';\n"
        "        END IF;\n"
        "        RETURN NULL;\n"
        "END\n"
        "$f$;\n"
        "DROP TRIGGER IF EXISTS runs_fence ON runs;\n"
        "CREATE TRIGGER runs_fence BEFORE UPDATE ON runs FOR EACH ROW WHEN (OLD.status = 'running')\n"
        "        EXECUTE FUNCTION cluster_fence_check();\n"
        "DROP TRIGGER IF EXISTS runs_fence_claim ON runs;\n"
        "CREATE TRIGGER runs_fence_claim BEFORE INSERT ON runs FOR EACH ROW\n"
        "        EXECUTE FUNCTION cluster_fence_check();\n";

/* ---- helpers -------------------------------------------------------------------------- */

static int conn_error(PGconn *c) {
        return PQstatus(c) == CONNECTION_BAD ? -ECONNRESET : -EIO;
}

/* Runs SQL with N text parameters; returns the result (tuples or command ok) or NULL with
 * *ret_error set. */
static PGresult *exec(PGconn *c, const char *sql, int n, const char *const *p, int *ret_error) {
        PGresult *res = PQexecParams(c, sql, n, NULL, p, NULL, NULL, 0);
        ExecStatusType st = PQresultStatus(res);
        if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
                return res;
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        *ret_error = state && streq(state, "23505") ? -EEXIST : conn_error(c);
        PQclear(res);
        return NULL;
}

static int exec_command(PGconn *c, const char *sql) {
        int r = 0;
        PGresult *res = exec(c, sql, 0, NULL, &r);
        PQclear(res);
        return r;
}

static usec_t get_usec(const PGresult *res, int row, int col) {
        if (PQgetisnull(res, row, col))
                return USEC_INFINITY;
        return (usec_t) strtoull(PQgetvalue(res, row, col), NULL, 10);
}

/* ---- lease ----------------------------------------------------------------------------- */

int cluster_pg_register(PGconn *c, const char *name, usec_t lease_usec, const char *digest,
                        cluster_identity *ret) {
        char lease[32];
        snprintf(lease, sizeof(lease), "%" PRIu64, lease_usec);
        const char *p[] = { name, lease, digest ?: "" };
        int r = 0;
        PGresult *res = exec(c,
                             "INSERT INTO cluster_nodes (fence, name, incarnation, lease_expires, registry_digest) "
                             "SELECT nextval('cluster_fence'), $1, "
                             "       COALESCE((SELECT max(incarnation) FROM cluster_nodes WHERE name = $1), 0) + 1, "
                             "       now() + $2::bigint * interval '1 microsecond', $3 "
                             "RETURNING incarnation, fence",
                             3, p, &r);
        if (!res)
                return r;
        cluster_identity id = {
                .incarnation = strtoull(PQgetvalue(res, 0, 0), NULL, 10),
                .fence = strtoull(PQgetvalue(res, 0, 1), NULL, 10),
        };
        PQclear(res);
        *ret = id;
        return 0;
}

int cluster_pg_renew(PGconn *c, uint64_t fence, usec_t lease_usec, int64_t offset_usec, const char *digest) {
        char f[32], lease[32], off[32];
        snprintf(f, sizeof(f), "%" PRIu64, fence);
        snprintf(lease, sizeof(lease), "%" PRIu64, lease_usec);
        snprintf(off, sizeof(off), "%" PRId64, offset_usec);
        const char *p[] = { f, lease, off, digest };
        int r = 0;
        PGresult *res = exec(c,
                             "UPDATE cluster_nodes SET renewed = now(), "
                             "       lease_expires = now() + $2::bigint * interval '1 microsecond', "
                             "       clock_offset_usec = $3, registry_digest = COALESCE($4, registry_digest) "
                             "WHERE fence = $1 AND state = 'alive'",
                             4, p, &r);
        if (!res)
                return r;
        r = streq(PQcmdTuples(res), "1") ? 0 : -ESTALE;
        PQclear(res);
        if (r == 0)
                return 0;
        /* 'replaced' while this incarnation was alive to renew: another daemon registered under
         * its name (a restart closes the earlier incarnation only once it is dead) */
        res = exec(c, "SELECT state FROM cluster_nodes WHERE fence = $1", 1, p, &r);
        if (!res)
                return r;
        r = PQntuples(res) == 1 && streq(PQgetvalue(res, 0, 0), "replaced") ? -EADDRINUSE : -ESTALE;
        PQclear(res);
        return r;
}

int cluster_pg_bind_session(PGconn *c, const char *node, uint64_t fence) {
        char f[32];
        snprintf(f, sizeof(f), "%" PRIu64, fence);
        const char *p[] = { node, f };
        int r = 0;
        PGresult *res = exec(c, "SELECT set_config('schedulerd.node', $1, false), set_config('schedulerd.fence', $2, false)",
                             2, p, &r);
        PQclear(res);
        return r;
}

int cluster_pg_now(PGconn *c, usec_t *ret) {
        int r = 0;
        PGresult *res = exec(c, "SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint", 0, NULL, &r);
        if (!res)
                return r;
        usec_t t = get_usec(res, 0, 0);
        PQclear(res);
        *ret = t;
        return 0;
}

int cluster_pg_leave(PGconn *c, uint64_t fence) {
        char f[32];
        snprintf(f, sizeof(f), "%" PRIu64, fence);
        const char *p[] = { f };
        int r = 0;
        PGresult *res = exec(c, "UPDATE cluster_nodes SET state = 'stopped', ended = now() "
                                "WHERE fence = $1 AND state = 'alive'", 1, p, &r);
        PQclear(res);
        return r;
}

/* ---- take-over ------------------------------------------------------------------------- */

cluster_lost_run *cluster_lost_runs_free(cluster_lost_run *runs, size_t n) {
        for (size_t i = 0; runs && i < n; i++) {
                free(runs[i].job);
                free(runs[i].node);
        }
        free(runs);
        return NULL;
}

/* In one transaction: ENDING (an UPDATE of cluster_nodes ... RETURNING fence, name,
 * incarnation, with parameters P) ends incarnations, then their running runs are
 * interrupted with CAUSE ("node lost: ") and the node. */
static int end_nodes(PGconn *c, const char *ending, int n_p, const char *const *p, const char *cause,
                     cluster_lost_run **ret_runs, size_t *ret_n, size_t *ret_n_nodes) {
        cluster_lost_run *runs = NULL;
        size_t n = 0;
        PGresult *res;
        int r = exec_command(c, "BEGIN");
        if (r < 0)
                return r;

        res = exec(c, ending, n_p, p, &r);
        if (!res)
                goto rollback;
        int n_nodes = PQntuples(res);
        PQclear(res);
        if (n_nodes > 0) {
                const char *q[] = { p[0], cause };
                /* the nodes just ended are those ended by this transaction's own statement */
                res = exec(c,
                           "UPDATE runs r SET status = 'interrupted', "
                           "       message = $2 || n.name || '#' || n.incarnation "
                           "FROM cluster_nodes n "
                           "WHERE r.fence = n.fence AND r.status = 'running' AND n.ended_by = $1::bigint "
                           "  AND n.ended = now() "
                           "RETURNING r.id, r.job, r.attempt, COALESCE(NULLIF(r.retry_of, 0), r.id), "
                           "          r.scheduled_usec, n.name || '#' || n.incarnation, COALESCE(r.pid, 0), "
                           "          r.started_usec",
                           2, q, &r);
                if (!res)
                        goto rollback;
                n = (size_t) PQntuples(res);
                if (n > 0 && !(runs = calloc(n, sizeof(*runs)))) {
                        PQclear(res);
                        r = -ENOMEM;
                        goto rollback;
                }
                for (size_t i = 0; i < n; i++) {
                        runs[i] = (cluster_lost_run) {
                                .id = strtoll(PQgetvalue(res, (int) i, 0), NULL, 10),
                                .job = strdup(PQgetvalue(res, (int) i, 1)),
                                .attempt = (unsigned) strtoul(PQgetvalue(res, (int) i, 2), NULL, 10),
                                .first_id = strtoll(PQgetvalue(res, (int) i, 3), NULL, 10),
                                .scheduled_usec = get_usec(res, (int) i, 4),
                                .node = strdup(PQgetvalue(res, (int) i, 5)),
                                .pid = (pid_t) strtol(PQgetvalue(res, (int) i, 6), NULL, 10),
                                .started_usec = get_usec(res, (int) i, 7),
                        };
                        if (!runs[i].job || !runs[i].node) {
                                PQclear(res);
                                r = -ENOMEM;
                                goto rollback;
                        }
                }
                PQclear(res);
        }
        r = exec_command(c, "COMMIT");
        if (r < 0) {
                cluster_lost_runs_free(runs, n);
                return r;
        }
        *ret_runs = runs;
        *ret_n = n;
        if (ret_n_nodes)
                *ret_n_nodes = (size_t) n_nodes;
        return 0;

rollback:
        (void) exec_command(c, "ROLLBACK");
        cluster_lost_runs_free(runs, n);
        return r;
}

int cluster_pg_take_over(PGconn *c, uint64_t by_fence, cluster_lost_run **ret_runs, size_t *ret_n,
                         size_t *ret_n_nodes) {
        char f[32];
        snprintf(f, sizeof(f), "%" PRIu64, by_fence);
        const char *p[] = { f };
        /* SKIP LOCKED: a node another survivor is declaring lost right now is theirs */
        return end_nodes(c,
                         "UPDATE cluster_nodes SET state = 'lost', ended = now(), ended_by = $1::bigint "
                         "WHERE fence IN (SELECT fence FROM cluster_nodes WHERE state = 'alive' "
                         "                AND lease_expires < now() AND fence <> $1::bigint FOR UPDATE SKIP LOCKED) "
                         "RETURNING fence",
                         1, p, "node lost: ", ret_runs, ret_n, ret_n_nodes);
}

int cluster_pg_close_previous(PGconn *c, const char *name, uint64_t fence, cluster_lost_run **ret_runs,
                              size_t *ret_n) {
        char f[32];
        snprintf(f, sizeof(f), "%" PRIu64, fence);
        const char *p[] = { f, name };
        return end_nodes(c,
                         "UPDATE cluster_nodes SET state = 'replaced', ended = now(), ended_by = $1::bigint "
                         "WHERE name = $2 AND state = 'alive' AND fence < $1::bigint RETURNING fence",
                         2, p, "node restarted: ", ret_runs, ret_n, NULL);
}

/* ---- listing --------------------------------------------------------------------------- */

cluster_node_row *cluster_node_rows_free(cluster_node_row *rows, size_t n) {
        for (size_t i = 0; rows && i < n; i++) {
                free(rows[i].name);
                free(rows[i].state);
                free(rows[i].registry_digest);
        }
        free(rows);
        return NULL;
}

#define EPOCH_USEC(col) "(extract(epoch FROM " col ") * 1000000)::bigint"

int cluster_pg_list_nodes(PGconn *c, cluster_node_row **ret_rows, size_t *ret_n) {
        cluster_node_row *rows = NULL;
        int r = 0;
        PGresult *res = exec(c,
                             "SELECT n.name, n.incarnation, n.fence, n.state, "
                             "       n.state = 'alive' AND n.lease_expires < now(), " EPOCH_USEC("n.lease_expires") ", "
                             EPOCH_USEC("n.renewed") ", " EPOCH_USEC("n.started") ", n.clock_offset_usec, "
                             "       n.registry_digest, "
                             "       (SELECT count(*) FROM runs r WHERE r.fence = n.fence AND r.status = 'running') "
                             "FROM cluster_nodes n "
                             "WHERE n.state = 'alive' OR n.ended > now() - interval '1 hour' "
                             "ORDER BY n.name, n.incarnation",
                             0, NULL, &r);
        if (!res)
                return r;
        size_t n = (size_t) PQntuples(res);
        if (n > 0 && !(rows = calloc(n, sizeof(*rows)))) {
                PQclear(res);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++) {
                int k = (int) i;
                rows[i] = (cluster_node_row) {
                        .name = strdup(PQgetvalue(res, k, 0)),
                        .incarnation = strtoull(PQgetvalue(res, k, 1), NULL, 10),
                        .fence = strtoull(PQgetvalue(res, k, 2), NULL, 10),
                        .state = strdup(PQgetvalue(res, k, 3)),
                        .lease_expired = PQgetvalue(res, k, 4)[0] == 't',
                        .lease_expires_usec = get_usec(res, k, 5),
                        .renewed_usec = get_usec(res, k, 6),
                        .started_usec = get_usec(res, k, 7),
                        .clock_offset_usec = strtoll(PQgetvalue(res, k, 8), NULL, 10),
                        .registry_digest = strdup(PQgetvalue(res, k, 9)),
                        .runs_in_flight = (unsigned) strtoul(PQgetvalue(res, k, 10), NULL, 10),
                };
                if (!rows[i].name || !rows[i].state || !rows[i].registry_digest) {
                        PQclear(res);
                        cluster_node_rows_free(rows, n);
                        return -ENOMEM;
                }
        }
        PQclear(res);
        *ret_rows = rows;
        *ret_n = n;
        return 0;
}
