/* SPDX-License-Identifier: MIT */
#pragma once

/* Inside the store layer only (and the cluster code built on it): the PostgreSQL backend's
 * connection and its schema steps. Everything else uses store/history.h. */

#include <libpq-fe.h>

#include "store/history.h"

/* H's live connection, or NULL when H is not a PostgreSQL handle or is disconnected right now.
 * The connection is H's: use it between history calls on the same thread, do not close it, and
 * leave no transaction open on it (inside an open history batch, statements join the batch).
 * After a failure that lost it (PQstatus CONNECTION_BAD), call history_pg_connect(). */
PGconn *history_pg_conn(history *h);

/* Connects H now if it is disconnected and its reconnect backoff allows (see
 * history_open_store()). 0 when connected, -ENOTCONN (history_last_error() says why), -EINVAL
 * for a handle that is not PostgreSQL. */
int history_pg_connect(history *h);

/* Called after every successful (re)connection of H, once the schema is current: where the
 * cluster code LISTENs again and resyncs what it may have missed. CONN is the new connection.
 * A negative return drops the connection again (the next call reconnects, with backoff). */
typedef int (*history_pg_connect_fn)(history *h, PGconn *conn, void *userdata);
void history_pg_set_connect_hook(history *h, history_pg_connect_fn fn, void *userdata);

/* How many times H has connected (1 after history_open_store(); each reconnection adds one):
 * a value that changed tells a caller that session state (LISTEN, prepared statements, advisory
 * locks) is gone. 0 for a handle that is not PostgreSQL. */
uint64_t history_pg_connections(history *h);

/* How many run results H keeps to write on reconnection (see history_finish_run()), and in
 * *RET_DROPPED (may be NULL) how many it had to drop over its life for want of room. */
size_t history_pg_pending_results(history *h, uint64_t *ret_dropped);

/* Fails a PostgreSQL result the way every history call does: maps RES's SQLSTATE (or the lost
 * connection) to -errno, puts WHAT and the server's message into history_last_error(), and
 * drops a lost connection (the next call reconnects). For code that runs its own statements on
 * history_pg_conn(). */
int history_pg_fail(history *h, const PGresult *res, const char *what);

/* SQLSTATE (5 characters, may be NULL) to a negative errno: 23505 -EEXIST, 23503 -ENOENT,
 * 08xxx/57P0x -ENOTCONN, 25006 -EROFS, 53100 -ENOSPC, 40001/40P01/55P03 -EBUSY, 57014
 * -ETIMEDOUT, 28xxx/42501 -EACCES, 22xxx/other 23xxx -EINVAL, anything else -EIO. */
int history_pg_sqlstate_to_errno(const char *sqlstate);

/* ---- the schema ---------------------------------------------------------------------------
 * history_pg_schema[i] takes the database from schema version i to i + 1; the versions applied
 * are rows of schedulerd_schema (version, description, applied_at). At connection every
 * missing step runs, in order, in one transaction under pg_advisory_xact_lock
 * (HISTORY_PG_MIGRATION_LOCK): N daemons starting at once migrate once, the others wait and
 * find the work done. Released steps never change: a change appends a step. SQL may hold
 * several statements. */
typedef struct history_pg_step {
        const char *description;        /* for the version table and errors: "runs, jobs, retries" */
        const char *sql;
} history_pg_step;

extern const history_pg_step history_pg_schema[];
extern const size_t history_pg_schema_steps;

/* The advisory lock key of schema migrations ('SCHD' 'MIGR'). */
#define HISTORY_PG_MIGRATION_LOCK INT64_C(0x534348444d494752)
