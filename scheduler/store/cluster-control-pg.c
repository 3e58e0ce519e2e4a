/* SPDX-License-Identifier: MIT */
/* Control and policies across a cluster, in PostgreSQL: see cluster-control-pg.h. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/cluster-control-pg.h"

const char cluster_control_pg_schema[] =
        /* the generation counter: one row, updated (so row-locked) by every control change */
        "CREATE TABLE IF NOT EXISTS cluster_generation (\n"
        "        one boolean PRIMARY KEY DEFAULT true CHECK (one),\n"
        "        generation bigint NOT NULL\n"
        ");\n"
        "INSERT INTO cluster_generation (one, generation) VALUES (true, 0) ON CONFLICT DO NOTHING;\n"
        "CREATE TABLE IF NOT EXISTS cluster_job_control (\n"
        "        job text PRIMARY KEY,\n"
        "        enabled_override smallint CHECK (enabled_override IN (0, 1)),\n" /* NULL: none */
        "        generation bigint NOT NULL\n"
        ");\n"
        "CREATE INDEX IF NOT EXISTS cluster_job_control_generation ON cluster_job_control (generation);\n"
        "CREATE TABLE IF NOT EXISTS cluster_run_requests (\n"
        "        id bigserial PRIMARY KEY,\n"
        "        job text NOT NULL,\n"
        "        at_usec bigint NOT NULL,\n"
        "        asked_by text NOT NULL,\n"
        "        asked_at timestamptz NOT NULL DEFAULT now(),\n"
        "        taken_by text,\n" /* NULL: waiting */
        "        taken_at timestamptz,\n"
        "        run_id bigint\n"
        ");\n"
        "CREATE INDEX IF NOT EXISTS cluster_run_requests_waiting ON cluster_run_requests (id) WHERE taken_by IS NULL;\n"
        "CREATE TABLE IF NOT EXISTS cluster_singleton (\n"
        "        job text PRIMARY KEY,\n"
        "        node text NOT NULL,\n"
        "        scheduled_usec bigint NOT NULL,\n"
        "        run_id bigint,\n" /* NULL: taken, its fire not claimed yet */
        "        taken_at timestamptz NOT NULL DEFAULT now()\n"
        ");\n"
        "CREATE TABLE IF NOT EXISTS cluster_high_water (\n"
        "        job text PRIMARY KEY,\n"
        "        through_usec bigint NOT NULL\n"
        ");\n";

static int pg_error(PGconn *c) {
        return PQstatus(c) == CONNECTION_OK ? -EIO : -ECONNRESET;
}

/* Runs SQL with the N text parameters P; *ret gets the result when it has status OK. */
static int exec(PGconn *c, const char *sql, int n, const char *const *p, ExecStatusType ok, PGresult **ret) {
        PGresult *res = PQexecParams(c, sql, n, NULL, p, NULL, NULL, 0);
        if (!res)
                return PQstatus(c) == CONNECTION_OK ? -ENOMEM : -ECONNRESET;
        if (PQresultStatus(res) != ok) {
                PQclear(res);
                return pg_error(c);
        }
        if (ret)
                *ret = res;
        else
                PQclear(res);
        return 0;
}

static int exec_simple(PGconn *c, const char *sql) {
        return exec(c, sql, 0, NULL, PGRES_COMMAND_OK, NULL);
}

static int64_t value_i64(const PGresult *r, int row, int col) {
        return PQgetisnull(r, row, col) ? 0 : strtoll(PQgetvalue(r, row, col), NULL, 10);
}

int cluster_ctl_set_enabled(PGconn *c, const char *job, int override, uint64_t *ret_generation) {
        char ov[8];
        PGresult *res = NULL;
        int q;

        if (override < -1 || override > 1)
                return -EINVAL;
        snprintf(ov, sizeof(ov), "%d", override);
        const char *p[] = { job, override < 0 ? NULL : ov };
        q = exec_simple(c, "BEGIN");
        if (q < 0)
                return q;
        /* the generation's row lock is held to COMMIT: generations commit in the order taken */
        q = exec(c,
                 "WITH g AS (UPDATE cluster_generation SET generation = generation + 1 RETURNING generation) "
                 "INSERT INTO cluster_job_control (job, enabled_override, generation) "
                 "SELECT $1, $2::smallint, generation FROM g "
                 "ON CONFLICT (job) DO UPDATE SET enabled_override = EXCLUDED.enabled_override, "
                 "generation = EXCLUDED.generation RETURNING generation",
                 2, p, PGRES_TUPLES_OK, &res);
        if (q >= 0 && PQntuples(res) != 1)
                q = -EIO;
        uint64_t g = q >= 0 ? (uint64_t) value_i64(res, 0, 0) : 0;
        PQclear(res);
        if (q >= 0) {
                char gs[24];
                snprintf(gs, sizeof(gs), "%" PRIu64, g);
                const char *np[] = { gs };
                q = exec(c, "SELECT pg_notify('" CLUSTER_CONTROL_CHANNEL "', $1)", 1, np, PGRES_TUPLES_OK, NULL);
        }
        if (q >= 0)
                q = exec_simple(c, "COMMIT");
        if (q < 0) {
                (void) exec_simple(c, "ROLLBACK");
                return q;
        }
        if (ret_generation)
                *ret_generation = g;
        return 0;
}

int cluster_ctl_read_control(PGconn *c, uint64_t since, cluster_ctl_control_fn fn, void *userdata,
                            uint64_t *ret_generation) {
        char s[24];
        PGresult *res = NULL;
        uint64_t top = since;
        int q;

        snprintf(s, sizeof(s), "%" PRIu64, since);
        const char *p[] = { s };
        q = exec(c, "SELECT job, enabled_override, generation FROM cluster_job_control WHERE generation > $1::bigint "
                    "ORDER BY generation",
                 1, p, PGRES_TUPLES_OK, &res);
        if (q < 0)
                return q;
        for (int i = 0; i < PQntuples(res); i++) {
                int ov = PQgetisnull(res, i, 1) ? -1 : (int) value_i64(res, i, 1);
                uint64_t g = (uint64_t) value_i64(res, i, 2);
                q = fn(PQgetvalue(res, i, 0), ov, g, userdata);
                if (q < 0) {
                        PQclear(res);
                        return q;
                }
                top = MAX(top, g);
        }
        PQclear(res);
        if (ret_generation)
                *ret_generation = top;
        return 0;
}

int cluster_ctl_listen(PGconn *c) {
        return exec_simple(c, "LISTEN " CLUSTER_CONTROL_CHANNEL);
}

int cluster_ctl_drain_notifies(PGconn *c, unsigned *ret_n) {
        unsigned n = 0;
        PGnotify *no;

        if (!PQconsumeInput(c))
                return -ECONNRESET;
        while ((no = PQnotifies(c))) {
                if (strcmp(no->relname, CLUSTER_CONTROL_CHANNEL) == 0)
                        n++;
                PQfreemem(no);
        }
        if (PQstatus(c) != CONNECTION_OK)
                return -ECONNRESET;
        if (ret_n)
                *ret_n = n;
        return 0;
}

int cluster_ctl_request_run(PGconn *c, const char *job, usec_t at, const char *node, int64_t *ret_id) {
        char a[24];
        PGresult *res = NULL;
        int q;

        if (at > INT64_MAX)
                return -ERANGE;
        snprintf(a, sizeof(a), "%" PRIu64, at);
        const char *p[] = { job, a, node };
        /* one statement: the row and its notification commit together */
        q = exec(c,
                 "WITH r AS (INSERT INTO cluster_run_requests (job, at_usec, asked_by) VALUES ($1, $2::bigint, $3) "
                 "RETURNING id) SELECT r.id, pg_notify('" CLUSTER_CONTROL_CHANNEL "', 'run') FROM r",
                 3, p, PGRES_TUPLES_OK, &res);
        if (q < 0)
                return q;
        int64_t id = PQntuples(res) == 1 ? value_i64(res, 0, 0) : 0;
        PQclear(res);
        if (id <= 0)
                return -EIO;
        if (ret_id)
                *ret_id = id;
        return 0;
}

/* JOBS as a PostgreSQL text[] literal: {"a","b"}, with " and \ escaped. */
static char *text_array(const char *const *jobs, size_t n) {
        size_t len = 3;
        for (size_t i = 0; i < n; i++)
                len += 2 * strlen(jobs[i]) + 3;
        char *s = malloc(len), *o = s;
        if (!s)
                return NULL;
        *o++ = '{';
        for (size_t i = 0; i < n; i++) {
                if (i > 0)
                        *o++ = ',';
                *o++ = '"';
                for (const char *k = jobs[i]; *k; k++) {
                        if (*k == '"' || *k == '\\')
                                *o++ = '\\';
                        *o++ = *k;
                }
                *o++ = '"';
        }
        *o++ = '}';
        *o = 0;
        return s;
}

int cluster_ctl_take_request(PGconn *c, const char *const *jobs, size_t n_jobs, const char *node, int64_t *ret_id,
                            char **ret_job, usec_t *ret_at) {
        PGresult *res = NULL;
        int q;

        if (n_jobs == 0)
                return 0;
        _cleanup_free_ char *arr = text_array(jobs, n_jobs);
        if (!arr)
                return -ENOMEM;
        const char *p[] = { arr, node };
        /* SKIP LOCKED: a request another node is taking right now is not waited for; the UPDATE
         * re-checks taken_by on the locked row, so a request is taken once */
        q = exec(c,
                 "UPDATE cluster_run_requests SET taken_by = $2, taken_at = now() WHERE id = ("
                 "SELECT id FROM cluster_run_requests WHERE taken_by IS NULL AND job = ANY ($1::text[]) "
                 "ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) AND taken_by IS NULL RETURNING id, job, at_usec",
                 2, p, PGRES_TUPLES_OK, &res);
        if (q < 0)
                return q;
        if (PQntuples(res) != 1) {
                PQclear(res);
                return 0;
        }
        char *job = strdup(PQgetvalue(res, 0, 1));
        if (!job) {
                PQclear(res);
                return -ENOMEM;
        }
        *ret_id = value_i64(res, 0, 0);
        *ret_at = (usec_t) value_i64(res, 0, 2);
        *ret_job = job;
        PQclear(res);
        return 1;
}

int cluster_ctl_request_done(PGconn *c, int64_t id, int64_t run_id) {
        char i[24], r[24];
        snprintf(i, sizeof(i), "%" PRId64, id);
        snprintf(r, sizeof(r), "%" PRId64, run_id);
        const char *p[] = { i, run_id > 0 ? r : NULL };
        return exec(c, "UPDATE cluster_run_requests SET run_id = $2::bigint WHERE id = $1::bigint", 2, p,
                    PGRES_COMMAND_OK, NULL);
}

int cluster_ctl_request_get(PGconn *c, int64_t id, char **ret_node, int64_t *ret_run_id) {
        char i[24];
        PGresult *res = NULL;
        int q;

        snprintf(i, sizeof(i), "%" PRId64, id);
        const char *p[] = { i };
        q = exec(c, "SELECT taken_by, run_id FROM cluster_run_requests WHERE id = $1::bigint", 1, p, PGRES_TUPLES_OK,
                 &res);
        if (q < 0)
                return q;
        if (PQntuples(res) != 1) {
                PQclear(res);
                return -ENOENT;
        }
        bool taken = !PQgetisnull(res, 0, 0);
        char *node = NULL;
        if (taken && !(node = strdup(PQgetvalue(res, 0, 0)))) {
                PQclear(res);
                return -ENOMEM;
        }
        if (ret_run_id)
                *ret_run_id = value_i64(res, 0, 1);
        PQclear(res);
        if (ret_node)
                *ret_node = node;
        else
                free(node);
        return taken;
}

int cluster_ctl_singleton_acquire(PGconn *c, const char *job, const char *node, usec_t scheduled, int64_t run_id,
                                 char **ret_node, usec_t *ret_scheduled, int64_t *ret_run_id) {
        char s[24], r[24];
        PGresult *res = NULL;
        int q;

        if (scheduled > INT64_MAX)
                return -ERANGE;
        snprintf(s, sizeof(s), "%" PRIu64, scheduled);
        snprintf(r, sizeof(r), "%" PRId64, run_id);
        const char *p[] = { job, node, s, r };
        /* The conflicting row is locked before the WHERE is judged on its newest version: of two
         * nodes racing for a stale slot one updates it, the other then finds it fresh. */
        q = exec(c,
                 "INSERT INTO cluster_singleton AS s (job, node, scheduled_usec, run_id) "
                 "VALUES ($1, $2, $3::bigint, NULLIF($4::bigint, 0)) "
                 "ON CONFLICT (job) DO UPDATE SET node = EXCLUDED.node, scheduled_usec = EXCLUDED.scheduled_usec, "
                 "run_id = EXCLUDED.run_id, taken_at = now() WHERE "
                 "EXISTS (SELECT 1 FROM runs r WHERE r.id = s.run_id AND r.status <> 'running') "
                 "OR (s.taken_at < now() - interval '" STRINGIFY(CLUSTER_SINGLETON_PENDING_SEC) " seconds' "
                 "AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.id = s.run_id AND r.status = 'running')) "
                 "RETURNING 1",
                 4, p, PGRES_TUPLES_OK, &res);
        if (q < 0)
                return q;
        bool taken = PQntuples(res) == 1;
        PQclear(res);
        if (taken)
                return 1;

        const char *p1[] = { job };
        q = exec(c, "SELECT node, scheduled_usec, run_id FROM cluster_singleton WHERE job = $1", 1, p1, PGRES_TUPLES_OK,
                 &res);
        if (q < 0)
                return q;
        if (PQntuples(res) != 1) {
                /* released between the two statements: the caller may try again at its next fire */
                PQclear(res);
                if (ret_node)
                        *ret_node = NULL;
                if (ret_scheduled)
                        *ret_scheduled = USEC_INFINITY;
                if (ret_run_id)
                        *ret_run_id = 0;
                return 0;
        }
        char *holder = strdup(PQgetvalue(res, 0, 0));
        if (!holder) {
                PQclear(res);
                return -ENOMEM;
        }
        if (ret_scheduled)
                *ret_scheduled = (usec_t) value_i64(res, 0, 1);
        if (ret_run_id)
                *ret_run_id = value_i64(res, 0, 2);
        PQclear(res);
        if (ret_node)
                *ret_node = holder;
        else
                free(holder);
        return 0;
}

int cluster_ctl_singleton_bind(PGconn *c, const char *job, const char *node, int64_t run_id) {
        char r[24];
        PGresult *res = NULL;
        int q;

        snprintf(r, sizeof(r), "%" PRId64, run_id);
        const char *p[] = { job, node, r };
        q = exec(c, "UPDATE cluster_singleton SET run_id = $3::bigint WHERE job = $1 AND node = $2", 3, p,
                 PGRES_COMMAND_OK, &res);
        if (q < 0)
                return q;
        bool ok = strcmp(PQcmdTuples(res), "1") == 0;
        PQclear(res);
        return ok ? 0 : -ESTALE;
}

int cluster_ctl_singleton_release(PGconn *c, const char *job, const char *node) {
        const char *p[] = { job, node };
        return exec(c, "DELETE FROM cluster_singleton WHERE job = $1 AND node = $2", 2, p, PGRES_COMMAND_OK, NULL);
}

int cluster_ctl_catch_up_advance(PGconn *c, const char *job, usec_t expected, usec_t next) {
        char e[24], n[24];
        PGresult *res = NULL;
        int q;

        if ((expected != USEC_INFINITY && expected > INT64_MAX) || next > INT64_MAX)
                return -ERANGE;
        snprintf(e, sizeof(e), "%" PRIu64, expected);
        snprintf(n, sizeof(n), "%" PRIu64, next);
        const char *p[] = { job, expected == USEC_INFINITY ? NULL : e, n };
        /* no mark yet: the INSERT wins once; a mark: the UPDATE's WHERE compares and sets */
        q = exec(c,
                 expected == USEC_INFINITY
                         ? "INSERT INTO cluster_high_water (job, through_usec) SELECT $1, $3::bigint WHERE $2::bigint IS NULL "
                           "ON CONFLICT (job) DO NOTHING"
                         : "UPDATE cluster_high_water SET through_usec = $3::bigint WHERE job = $1 AND through_usec = $2::bigint",
                 3, p, PGRES_COMMAND_OK, &res);
        if (q < 0)
                return q;
        bool moved = strcmp(PQcmdTuples(res), "1") == 0;
        PQclear(res);
        return moved;
}

int cluster_ctl_catch_up_get(PGconn *c, const char *job, usec_t *ret) {
        PGresult *res = NULL;
        const char *p[] = { job };
        int q = exec(c, "SELECT through_usec FROM cluster_high_water WHERE job = $1", 1, p, PGRES_TUPLES_OK, &res);
        if (q < 0)
                return q;
        *ret = PQntuples(res) == 1 ? (usec_t) value_i64(res, 0, 0) : USEC_INFINITY;
        PQclear(res);
        return 0;
}

int cluster_ctl_run_nodes(PGconn *c, const int64_t *ids, size_t n, char **nodes) {
        PGresult *res = NULL;
        int q;

        for (size_t i = 0; i < n; i++)
                nodes[i] = NULL;
        if (n == 0)
                return 0;
        /* the ids as a bigint[] literal: {1,2,3} */
        _cleanup_free_ char *arr = malloc(n * 21 + 3);
        if (!arr)
                return -ENOMEM;
        size_t o = 0;
        arr[o++] = '{';
        for (size_t i = 0; i < n; i++)
                o += (size_t) snprintf(arr + o, 22, "%s%" PRId64, i ? "," : "", ids[i]);
        arr[o++] = '}';
        arr[o] = 0;
        const char *p[] = { arr };
        q = exec(c, "SELECT id, node FROM runs WHERE id = ANY ($1::bigint[]) AND node IS NOT NULL", 1, p,
                 PGRES_TUPLES_OK, &res);
        if (q < 0)
                return q;
        for (int r = 0; r < PQntuples(res); r++) {
                int64_t id = value_i64(res, r, 0);
                for (size_t i = 0; i < n; i++)
                        if (ids[i] == id && !nodes[i] && !(nodes[i] = strdup(PQgetvalue(res, r, 1)))) {
                                PQclear(res);
                                for (size_t k = 0; k < n; k++)
                                        { free(nodes[k]); nodes[k] = NULL; }
                                return -ENOMEM;
                        }
        }
        PQclear(res);
        return 0;
}

int cluster_ctl_set_digest(PGconn *c, uint64_t fence, const char *digest) {
        char f[24];
        snprintf(f, sizeof(f), "%" PRIu64, fence);
        const char *p[] = { f, digest };
        return exec(c, "UPDATE cluster_nodes SET registry_digest = $2 WHERE fence = $1::bigint AND registry_digest <> $2",
                    2, p, PGRES_COMMAND_OK, NULL);
}
