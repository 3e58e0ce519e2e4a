/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <sys/stat.h>

#include "store/history-backend.h"

/* 'SCHD': lets us tell our own file from some other SQLite database put at the same path. */
#define HISTORY_APPLICATION_ID 0x53434844

/* migrations[i] takes the schema from user_version i to i + 1. Released entries never
 * change: a new schema version appends one. */
static const char *const migrations[] = {
        /* 0 -> 1 */
        "CREATE TABLE runs (\n"
        "        id INTEGER PRIMARY KEY,\n"
        "        job TEXT NOT NULL,\n"
        "        trigger TEXT NOT NULL\n"
        "                CHECK (trigger IN ('schedule', 'manual', 'startup', 'retry', 'catch_up')),\n"
        "        attempt INTEGER NOT NULL CHECK ((trigger = 'retry') = (attempt > 0)),\n"
        /* 'fire' or NULL; see THE CLAIM KEY in history.h */
        "        claim_class TEXT CHECK (claim_class IS NULL OR claim_class = 'fire'),\n"
        "        retry_of INTEGER REFERENCES runs (id) ON DELETE SET NULL,\n"
        "        scheduled_usec INTEGER NOT NULL,\n"
        "        started_usec INTEGER NOT NULL,\n"
        "        finished_usec INTEGER,\n"
        "        status TEXT NOT NULL CHECK (status IN ('running', 'succeeded', 'failed',\n"
        "                'timed_out', 'crashed', 'skipped', 'cancelled', 'interrupted')),\n"
        "        exit_code INTEGER,\n"
        "        signal INTEGER,\n"
        "        duration_usec INTEGER,\n"
        "        message TEXT,\n"
        "        output TEXT,\n"
        "        pid INTEGER\n"
        ");\n"
        /* Every index costs a page written per commit, and the daemon writes a row per run
         * while it reads rarely: so only the claim key (which also serves lookups by job)
         * and, for the foreign key, the retries. Pruning and start-up scan the table. */
        "CREATE UNIQUE INDEX runs_claim ON runs (job, scheduled_usec, attempt, claim_class);\n"
        "CREATE INDEX runs_retry_of ON runs (retry_of) WHERE retry_of IS NOT NULL;\n"
        "CREATE TABLE jobs (\n"
        "        name TEXT PRIMARY KEY NOT NULL,\n"
        "        enabled_override INTEGER CHECK (enabled_override IN (0, 1)),\n"
        "        last_scheduled_usec INTEGER,\n"
        "        runs_total INTEGER NOT NULL DEFAULT 0,\n"
        "        failures_total INTEGER NOT NULL DEFAULT 0,\n"
        "        skipped_total INTEGER NOT NULL DEFAULT 0,\n"
        "        last_run_id INTEGER,\n"
        "        last_status TEXT,\n"
        "        last_finished_usec INTEGER,\n"
        "        last_duration_usec INTEGER\n"
        ");\n",
        /* 1 -> 2: pending retries are state, kept across restarts (one per retry chain); and when
         * a job was first loaded, for catch-up of the fires before its first */
        "CREATE TABLE retries (\n"
        "        first_id INTEGER PRIMARY KEY NOT NULL,\n"
        "        job TEXT NOT NULL,\n"
        "        attempt INTEGER NOT NULL CHECK (attempt > 0),\n"
        "        scheduled_usec INTEGER NOT NULL,\n"
        "        due_usec INTEGER NOT NULL\n"
        ");\n"
        "ALTER TABLE jobs ADD COLUMN first_loaded_usec INTEGER;\n",
        /* 2 -> 3: `schedctl pause` and `schedctl backfill` (issue 18) */
        "CREATE TABLE pauses (\n"
        "        job TEXT PRIMARY KEY NOT NULL,\n"
        "        until_usec INTEGER\n" /* NULL: until resumed */
        ");\n"
        "CREATE TABLE backfills (\n"
        "        job TEXT PRIMARY KEY NOT NULL,\n"
        "        from_usec INTEGER NOT NULL,\n"
        "        to_usec INTEGER NOT NULL,\n"
        "        next_usec INTEGER NOT NULL\n" /* the first instant not handled yet */
        ");\n",
        /* 3 -> 4: fires missed (issue 16): status 'missed', one row per burst, standing for
         * missed_count instants from scheduled_usec to missed_last_usec; and the job's lifetime
         * count of them. SQLite cannot change a CHECK in place: runs is copied into a new table.
         * Renaming the old one first moves its self-reference (retry_of) with it, so dropping it
         * leaves the new table's rows alone. */
        "ALTER TABLE runs RENAME TO runs_v3;\n"
        "CREATE TABLE runs (\n"
        "        id INTEGER PRIMARY KEY,\n"
        "        job TEXT NOT NULL,\n"
        "        trigger TEXT NOT NULL\n"
        "                CHECK (trigger IN ('schedule', 'manual', 'startup', 'retry', 'catch_up')),\n"
        "        attempt INTEGER NOT NULL CHECK ((trigger = 'retry') = (attempt > 0)),\n"
        "        claim_class TEXT CHECK (claim_class IS NULL OR claim_class = 'fire'),\n"
        "        retry_of INTEGER REFERENCES runs (id) ON DELETE SET NULL,\n"
        "        scheduled_usec INTEGER NOT NULL,\n"
        "        started_usec INTEGER NOT NULL,\n"
        "        finished_usec INTEGER,\n"
        "        status TEXT NOT NULL CHECK (status IN ('running', 'succeeded', 'failed',\n"
        "                'timed_out', 'crashed', 'skipped', 'cancelled', 'interrupted', 'missed')),\n"
        "        exit_code INTEGER,\n"
        "        signal INTEGER,\n"
        "        duration_usec INTEGER,\n"
        "        message TEXT,\n"
        "        output TEXT,\n"
        "        pid INTEGER,\n"
        "        missed_count INTEGER CHECK ((status = 'missed') = (missed_count IS NOT NULL)\n"
        "                AND (missed_count IS NULL OR missed_count > 0)),\n"
        "        missed_last_usec INTEGER CHECK ((status = 'missed') = (missed_last_usec IS NOT NULL))\n"
        ");\n"
        "INSERT INTO runs (id, job, trigger, attempt, claim_class, retry_of, scheduled_usec, started_usec,\n"
        "        finished_usec, status, exit_code, signal, duration_usec, message, output, pid)\n"
        "        SELECT id, job, trigger, attempt, claim_class, retry_of, scheduled_usec, started_usec,\n"
        "        finished_usec, status, exit_code, signal, duration_usec, message, output, pid FROM runs_v3;\n"
        "DROP TABLE runs_v3;\n"
        "CREATE UNIQUE INDEX runs_claim ON runs (job, scheduled_usec, attempt, claim_class);\n"
        "CREATE INDEX runs_retry_of ON runs (retry_of) WHERE retry_of IS NOT NULL;\n"
        "ALTER TABLE jobs ADD COLUMN missed_total INTEGER NOT NULL DEFAULT 0;\n",
        /* 4 -> 5: the same table with its CHECKs spelled as OR chains (issue 16). SQLite checks
         * `x IN (list)` of more than two values with an ephemeral b-tree, opened and closed per
         * row: with the status and trigger lists that was a third of the daemon's time per run
         * (an INSERT and an UPDATE of a runs row, 23 us against 10 us with comparisons). */
        "ALTER TABLE runs RENAME TO runs_v4;\n"
        "CREATE TABLE runs (\n"
        "        id INTEGER PRIMARY KEY,\n"
        "        job TEXT NOT NULL,\n"
        "        trigger TEXT NOT NULL CHECK (trigger = 'schedule' OR trigger = 'manual' OR trigger = 'startup'\n"
        "                OR trigger = 'retry' OR trigger = 'catch_up'),\n"
        "        attempt INTEGER NOT NULL CHECK ((trigger = 'retry') = (attempt > 0)),\n"
        "        claim_class TEXT CHECK (claim_class IS NULL OR claim_class = 'fire'),\n"
        "        retry_of INTEGER REFERENCES runs (id) ON DELETE SET NULL,\n"
        "        scheduled_usec INTEGER NOT NULL,\n"
        "        started_usec INTEGER NOT NULL,\n"
        "        finished_usec INTEGER,\n"
        "        status TEXT NOT NULL CHECK (status = 'running' OR status = 'succeeded' OR status = 'failed'\n"
        "                OR status = 'timed_out' OR status = 'crashed' OR status = 'skipped'\n"
        "                OR status = 'cancelled' OR status = 'interrupted' OR status = 'missed'),\n"
        "        exit_code INTEGER,\n"
        "        signal INTEGER,\n"
        "        duration_usec INTEGER,\n"
        "        message TEXT,\n"
        "        output TEXT,\n"
        "        pid INTEGER,\n"
        "        missed_count INTEGER CHECK ((status = 'missed') = (missed_count IS NOT NULL)\n"
        "                AND (missed_count IS NULL OR missed_count > 0)),\n"
        "        missed_last_usec INTEGER CHECK ((status = 'missed') = (missed_last_usec IS NOT NULL))\n"
        ");\n"
        "INSERT INTO runs SELECT * FROM runs_v4;\n"
        "DROP TABLE runs_v4;\n"
        "CREATE UNIQUE INDEX runs_claim ON runs (job, scheduled_usec, attempt, claim_class);\n"
        "CREATE INDEX runs_retry_of ON runs (retry_of) WHERE retry_of IS NOT NULL;\n",
};

_Static_assert(ELEMENTSOF(migrations) == HISTORY_SCHEMA_VERSION,
               "one migration per schema version");

#define RUN_FAILURE_STATUSES "('failed', 'timed_out', 'crashed', 'interrupted')"

typedef enum stmt_id {
        STMT_BEGIN,
        STMT_COMMIT,
        STMT_ROLLBACK,
        STMT_SAVEPOINT,
        STMT_RELEASE,
        STMT_ROLLBACK_TO,
        STMT_INSERT_RUN,
        STMT_GET_RUN_ORIGIN,
        STMT_GET_RUN_STATE,
        STMT_SET_PID,
        STMT_SET_START,
        STMT_SKIP_CLAIMED,
        STMT_FINISH_RUN,
        STMT_COUNT_RUN,
        STMT_COUNT_SKIPPED,
        STMT_INSERT_MISSED,
        STMT_COUNT_MISSED,
        STMT_COUNT_INTERRUPTED,
        STMT_MARK_INTERRUPTED,
        STMT_PRUNE_AGE,
        STMT_PRUNE_COUNT,
        STMT_GET_JOB,
        STMT_ALL_JOBS,
        STMT_SET_OVERRIDE,
        STMT_SET_LAST_SCHEDULED,
        STMT_LIST_RUNS,
        STMT_PUT_RETRY,
        STMT_DELETE_RETRY,
        STMT_ALL_RETRIES,
        STMT_SET_FIRST_LOADED,
        STMT_SIZE,
        STMT_STATS,
        STMT_STATS_LAST,
        _STMT_MAX,
} stmt_id;

static const char *const stmt_sql[_STMT_MAX] = {
        [STMT_BEGIN] = "BEGIN IMMEDIATE",
        [STMT_COMMIT] = "COMMIT",
        [STMT_ROLLBACK] = "ROLLBACK",
        [STMT_SAVEPOINT] = "SAVEPOINT history_op",
        [STMT_RELEASE] = "RELEASE history_op",
        [STMT_ROLLBACK_TO] = "ROLLBACK TO history_op",
        [STMT_INSERT_RUN] =
                "INSERT INTO runs (job, trigger, attempt, claim_class, retry_of, scheduled_usec,"
                " started_usec, finished_usec, status, message, pid)"
                " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        [STMT_GET_RUN_ORIGIN] =
                "SELECT job, scheduled_usec, claim_class, attempt FROM runs WHERE id = ?1",
        [STMT_GET_RUN_STATE] = "SELECT job, started_usec, status FROM runs WHERE id = ?1",
        [STMT_SET_PID] = "UPDATE runs SET pid = ?2 WHERE id = ?1 AND status = 'running'",
        [STMT_SET_START] = "UPDATE runs SET pid = CASE WHEN ?2 > 0 THEN ?2 ELSE pid END, started_usec = ?3"
                           " WHERE id = ?1 AND status = 'running'",
        [STMT_SKIP_CLAIMED] = "UPDATE runs SET status = 'skipped', finished_usec = ?2, message = ?3"
                              " WHERE id = ?1 AND status = 'running'",
        /* the duration, unless given (?6), counts from the start (?9 if given, else the row's);
         * the start and pid not recorded yet (?9, ?10) come with it. Not RETURNING the job and
         * duration: SQLite gathers RETURNING rows in an ephemeral table, opened per call, which
         * cost more than STMT_COUNT_RUN reading them from the row by its key. */
        [STMT_FINISH_RUN] =
                "UPDATE runs SET finished_usec = ?2, status = ?3, exit_code = ?4, signal = ?5,"
                " duration_usec = COALESCE(?6, MAX(?2 - COALESCE(?9, started_usec, ?2), 0)), message = ?7, output = ?8,"
                " started_usec = COALESCE(?9, started_usec), pid = COALESCE(?10, pid)"
                " WHERE id = ?1 AND status = 'running'",
        [STMT_COUNT_RUN] =
                "INSERT INTO jobs (name, runs_total, failures_total, last_run_id, last_status,"
                " last_finished_usec, last_duration_usec)"
                " SELECT job, 1, ?2, id, ?3, ?4, duration_usec FROM runs WHERE id = ?1"
                " ON CONFLICT (name) DO UPDATE SET"
                " runs_total = runs_total + 1,"
                " failures_total = failures_total + excluded.failures_total,"
                " last_run_id = excluded.last_run_id,"
                " last_status = excluded.last_status,"
                " last_finished_usec = excluded.last_finished_usec,"
                " last_duration_usec = excluded.last_duration_usec",
        [STMT_COUNT_SKIPPED] =
                "INSERT INTO jobs (name, skipped_total) VALUES (?1, 1)"
                " ON CONFLICT (name) DO UPDATE SET skipped_total = skipped_total + 1",
        [STMT_INSERT_MISSED] =
                "INSERT INTO runs (job, trigger, attempt, claim_class, scheduled_usec, started_usec,"
                " finished_usec, status, message, missed_count, missed_last_usec)"
                " VALUES (?1, ?2, 0, ?3, ?4, ?5, ?5, 'missed', ?6, ?7, ?8)",
        [STMT_COUNT_MISSED] =
                "INSERT INTO jobs (name, missed_total) VALUES (?1, ?2)"
                " ON CONFLICT (name) DO UPDATE SET missed_total = missed_total + excluded.missed_total",
        [STMT_COUNT_INTERRUPTED] =
                "INSERT INTO jobs (name, runs_total, failures_total, last_run_id, last_status)"
                " SELECT job, COUNT(*), COUNT(*), MAX(id), 'interrupted' FROM runs"
                " WHERE status = 'running' GROUP BY job"
                " ON CONFLICT (name) DO UPDATE SET"
                " runs_total = runs_total + excluded.runs_total,"
                " failures_total = failures_total + excluded.failures_total,"
                /* a run finished after the interrupted one still is the last one */
                " last_status = CASE WHEN excluded.last_run_id > IFNULL(last_run_id, 0)"
                "         THEN 'interrupted' ELSE last_status END,"
                " last_finished_usec = CASE WHEN excluded.last_run_id > IFNULL(last_run_id, 0)"
                "         THEN NULL ELSE last_finished_usec END,"
                " last_duration_usec = CASE WHEN excluded.last_run_id > IFNULL(last_run_id, 0)"
                "         THEN NULL ELSE last_duration_usec END,"
                " last_run_id = MAX(IFNULL(last_run_id, 0), excluded.last_run_id)",
        [STMT_MARK_INTERRUPTED] =
                "UPDATE runs SET status = 'interrupted',"
                " message = IFNULL(message, 'the daemon stopped while this run was in flight')"
                " WHERE status = 'running'",
        [STMT_PRUNE_AGE] = "DELETE FROM runs WHERE status != 'running' AND started_usec < ?1",
        [STMT_PRUNE_COUNT] =
                "DELETE FROM runs WHERE id IN (SELECT id FROM"
                " (SELECT id, ROW_NUMBER() OVER (PARTITION BY job ORDER BY id DESC) AS n"
                "  FROM runs WHERE status != 'running') WHERE n > ?1)",
        [STMT_GET_JOB] =
                "SELECT enabled_override, last_scheduled_usec, runs_total, failures_total,"
                " skipped_total, last_run_id, last_status, last_finished_usec,"
                " last_duration_usec, first_loaded_usec, missed_total FROM jobs WHERE name = ?1",
        [STMT_ALL_JOBS] =
                "SELECT enabled_override, last_scheduled_usec, runs_total, failures_total,"
                " skipped_total, last_run_id, last_status, last_finished_usec,"
                " last_duration_usec, first_loaded_usec, missed_total, name FROM jobs",
        [STMT_SET_OVERRIDE] =
                "INSERT INTO jobs (name, enabled_override) VALUES (?1, ?2)"
                " ON CONFLICT (name) DO UPDATE SET enabled_override = excluded.enabled_override",
        [STMT_SET_LAST_SCHEDULED] =
                "INSERT INTO jobs (name, last_scheduled_usec) VALUES (?1, ?2)"
                " ON CONFLICT (name) DO UPDATE SET"
                " last_scheduled_usec = excluded.last_scheduled_usec",
        [STMT_LIST_RUNS] =
                "SELECT id, job, trigger, attempt, retry_of, scheduled_usec, started_usec,"
                " finished_usec, status, exit_code, signal, duration_usec, message, output, pid,"
                " missed_count, missed_last_usec FROM runs WHERE (?1 IS NULL OR job = ?1) AND started_usec >= ?2"
                " AND (?3 IS NULL OR status = ?3) ORDER BY id DESC LIMIT ?4",
        [STMT_PUT_RETRY] =
                "INSERT OR REPLACE INTO retries (first_id, job, attempt, scheduled_usec, due_usec)"
                " VALUES (?1, ?2, ?3, ?4, ?5)",
        [STMT_DELETE_RETRY] = "DELETE FROM retries WHERE first_id = ?1",
        [STMT_ALL_RETRIES] = "SELECT first_id, job, attempt, scheduled_usec, due_usec FROM retries ORDER BY due_usec",
        [STMT_SET_FIRST_LOADED] =
                "INSERT INTO jobs (name, first_loaded_usec) VALUES (?1, ?2)"
                " ON CONFLICT (name) DO UPDATE SET"
                " first_loaded_usec = IFNULL(first_loaded_usec, excluded.first_loaded_usec)",
        [STMT_SIZE] = "SELECT (SELECT COUNT(*) FROM runs), (SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size())",
        [STMT_STATS] =
                "SELECT IFNULL(SUM(status NOT IN ('running', 'skipped', 'missed')), 0),"
                " IFNULL(SUM(status IN " RUN_FAILURE_STATUSES "), 0),"
                " IFNULL(SUM(status = 'skipped'), 0),"
                " AVG(CASE WHEN status NOT IN ('running', 'skipped', 'missed') THEN duration_usec END),"
                " IFNULL(SUM(missed_count), 0)"
                " FROM runs WHERE job = ?1 AND started_usec >= ?2",
        [STMT_STATS_LAST] =
                "SELECT id, status, started_usec, finished_usec FROM runs"
                " WHERE job = ?1 AND started_usec >= ?2 ORDER BY id DESC LIMIT 1",
};

typedef struct sqlite_history {
        history base;
        sqlite3 *db;
        sqlite3_stmt *stmts[_STMT_MAX];
        bool in_batch;
        int batch_lost;         /* why SQLite ended the open batch by itself, or 0 */
        int wal_pages;          /* in the WAL after the last commit (sqlite3_wal_hook()) */
} sqlite_history;

static int on_wal_commit(void *userdata, sqlite3 *db, const char *schema, int pages) {
        sqlite_history *h = userdata;
        h->wal_pages = pages;
        return SQLITE_OK;
}

static int sqlite_to_errno(sqlite3 *db, int rc) {
        switch (rc) {
        case SQLITE_OK:
        case SQLITE_ROW:
        case SQLITE_DONE:
                return 0;
        case SQLITE_CONSTRAINT_UNIQUE:
        case SQLITE_CONSTRAINT_PRIMARYKEY:
                return -EEXIST;
        case SQLITE_CONSTRAINT_FOREIGNKEY:
                return -ENOENT;
        }

        switch (rc & 0xff) {
        case SQLITE_FULL:
                return -ENOSPC;
        case SQLITE_READONLY:
                return -EROFS;
        case SQLITE_PERM:
        case SQLITE_AUTH:
                return -EACCES;
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
                return -EBUSY;
        case SQLITE_NOMEM:
                return -ENOMEM;
        case SQLITE_CONSTRAINT:
        case SQLITE_MISMATCH:
        case SQLITE_RANGE:
        case SQLITE_MISUSE:
                return -EINVAL;
        case SQLITE_TOOBIG:
                return -E2BIG;
        case SQLITE_INTERRUPT:
                return -EINTR;
        case SQLITE_NOTADB:
        case SQLITE_CORRUPT:
                return -EBADMSG;
        case SQLITE_CANTOPEN:
        case SQLITE_IOERR: {
                /* the operating system's own reason (ENOENT, EACCES, EISDIR, ...) */
                int e = db ? sqlite3_system_errno(db) : 0;
                return e > 0 ? -e : -EIO;
        }
        default:
                return -EIO;
        }
}

#define set_error(h, ...) history_set_error(&(h)->base, __VA_ARGS__)

/* Records what failed with SQLite's message and returns the errno for RC. Also notices
 * when SQLite rolled back an open batch by itself (it does so on FULL, IOERR, NOMEM, ...). */
static int fail(sqlite_history *h, int rc, const char *what) {
        set_error(h, "%s: %s", what, sqlite3_errmsg(h->db));
        int r = sqlite_to_errno(h->db, rc);
        if (r == 0)
                r = -EIO;
        if (h->in_batch && sqlite3_get_autocommit(h->db)) {
                h->in_batch = false;
                h->batch_lost = r;
        }
        return r;
}

static void stmt_resetp(sqlite3_stmt **s) {
        /* A statement left mid-way would keep its read transaction (and WAL snapshot) open. */
        if (*s) {
                sqlite3_reset(*s);
                sqlite3_clear_bindings(*s);
        }
}
#define _cleanup_stmt_ _cleanup_(stmt_resetp)

static int stmt_get(sqlite_history *h, stmt_id id, sqlite3_stmt **ret) {
        if (!h->stmts[id]) {
                int rc = sqlite3_prepare_v3(h->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
                                            &h->stmts[id], NULL);
                if (rc != SQLITE_OK)
                        return fail(h, rc, "preparing a statement");
        }
        *ret = h->stmts[id];
        return 0;
}

/* Runs a statement without parameters or rows. */
static int stmt_exec(sqlite_history *h, stmt_id id, const char *what) {
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        int r = stmt_get(h, id, &s);
        if (r < 0)
                return r;
        int rc = sqlite3_step(s);
        if (rc != SQLITE_DONE)
                return fail(h, rc, what);
        return 0;
}

/* For clean-up paths: must not overwrite the error being reported. */
static void stmt_exec_quiet(sqlite_history *h, stmt_id id) {
        char saved[sizeof h->base.error];
        bool in_batch = h->in_batch;
        int lost = h->batch_lost;

        memcpy(saved, h->base.error, sizeof saved);
        (void) stmt_exec(h, id, "cleaning up");
        memcpy(h->base.error, saved, sizeof saved);
        h->in_batch = in_batch;
        h->batch_lost = lost;
}

/* Operations of several statements run atomically: in their own write transaction, or as
 * a savepoint inside the caller's batch. */
static int op_begin(sqlite_history *h) {
        return stmt_exec(h, h->in_batch ? STMT_SAVEPOINT : STMT_BEGIN, "starting a transaction");
}

static int op_end(sqlite_history *h, int r) {
        if (r >= 0) {
                int q = stmt_exec(h, h->in_batch ? STMT_RELEASE : STMT_COMMIT,
                                  "committing a transaction");
                if (q >= 0)
                        return r;
                r = q;
        }

        if (h->in_batch) {
                stmt_exec_quiet(h, STMT_ROLLBACK_TO);
                stmt_exec_quiet(h, STMT_RELEASE);
        } else if (!sqlite3_get_autocommit(h->db))
                stmt_exec_quiet(h, STMT_ROLLBACK);
        return r;
}



static int bind_usec(sqlite3_stmt *s, int i, usec_t u) {
        if (u == USEC_INFINITY)
                return sqlite3_bind_null(s, i);
        return sqlite3_bind_int64(s, i, (sqlite3_int64) u);
}

static usec_t column_usec(sqlite3_stmt *s, int i) {
        if (sqlite3_column_type(s, i) == SQLITE_NULL)
                return USEC_INFINITY;
        sqlite3_int64 v = sqlite3_column_int64(s, i);
        return v < 0 ? 0 : (usec_t) v;
}

static const char *column_str(sqlite3_stmt *s, int i) {
        return (const char *) sqlite3_column_text(s, i);
}

static int bind_text(sqlite3_stmt *s, int i, const char *t) {
        if (!t)
                return sqlite3_bind_null(s, i);
        return sqlite3_bind_text(s, i, t, -1, SQLITE_TRANSIENT);
}



static int read_int(sqlite_history *h, const char *pragma, int *ret) {
        sqlite3_stmt *s = NULL;
        int rc = sqlite3_prepare_v2(h->db, pragma, -1, &s, NULL);
        if (rc != SQLITE_OK)
                return fail(h, rc, "reading the database header");
        rc = sqlite3_step(s);
        if (rc != SQLITE_ROW) {
                int r = fail(h, rc, "reading the database header");
                sqlite3_finalize(s);
                return r;
        }
        *ret = sqlite3_column_int(s, 0);
        sqlite3_finalize(s);
        return 0;
}

static int exec_sql(sqlite_history *h, const char *sql, const char *what) {
        int rc = sqlite3_exec(h->db, sql, NULL, NULL, NULL);
        if (rc != SQLITE_OK)
                return fail(h, rc, what);
        return 0;
}

static int set_wal(sqlite_history *h) {
        sqlite3_stmt *s = NULL;
        int rc = sqlite3_prepare_v2(h->db, "PRAGMA journal_mode = WAL", -1, &s, NULL);
        if (rc != SQLITE_OK)
                return fail(h, rc, "switching to WAL mode");
        rc = sqlite3_step(s);
        if (rc != SQLITE_ROW) {
                int r = fail(h, rc, "switching to WAL mode");
                sqlite3_finalize(s);
                return r;
        }
        bool wal = streq_ptr(column_str(s, 0), "wal");
        sqlite3_finalize(s);
        if (!wal) {
                set_error(h, "cannot switch the journal to WAL mode%s",
                          sqlite3_db_readonly(h->db, "main") == 1 ? " (the file is read-only)" : "");
                return sqlite3_db_readonly(h->db, "main") == 1 ? -EROFS : -EIO;
        }
        return 0;
}

static int count_tables(sqlite_history *h, int *ret) {
        return read_int(h, "SELECT COUNT(*) FROM sqlite_master", ret);
}

static int migrate(sqlite_history *h) {
        int version, app_id, r;

        r = read_int(h, "PRAGMA user_version", &version);
        if (r < 0)
                return r;
        if (version == HISTORY_SCHEMA_VERSION)
                goto check_app_id;
        if (version > HISTORY_SCHEMA_VERSION) {
                set_error(h, "schema version %d is newer than this schedulerd knows (%d); "
                          "run a schedulerd at least as new as the one that wrote it, "
                          "or move the file away",
                          version, HISTORY_SCHEMA_VERSION);
                return -EPROTO;
        }

        /* Another process may be migrating the same file: decide under the write lock. */
        r = exec_sql(h, "BEGIN IMMEDIATE", "locking the database for migration");
        if (r < 0)
                return r;
        r = read_int(h, "PRAGMA user_version", &version);
        if (r < 0)
                goto rollback;
        if (version == 0) {
                int tables;
                r = count_tables(h, &tables);
                if (r < 0)
                        goto rollback;
                if (tables > 0) {
                        set_error(h, "not a schedulerd history database (it has %d tables but "
                                  "no schema version); expected an empty file or one written "
                                  "by schedulerd", tables);
                        r = -EBADMSG;
                        goto rollback;
                }
                char sql[64];
                snprintf(sql, sizeof sql, "PRAGMA application_id = %d", HISTORY_APPLICATION_ID);
                r = exec_sql(h, sql, "stamping the application id");
                if (r < 0)
                        goto rollback;
        }
        for (; version < HISTORY_SCHEMA_VERSION; version++) {
                char what[64], sql[64];
                snprintf(what, sizeof what, "migrating the schema from version %d to %d",
                         version, version + 1);
                r = exec_sql(h, migrations[version], what);
                if (r < 0)
                        goto rollback;
                snprintf(sql, sizeof sql, "PRAGMA user_version = %d", version + 1);
                r = exec_sql(h, sql, what);
                if (r < 0)
                        goto rollback;
        }
        r = exec_sql(h, "COMMIT", "committing the schema migration");
        if (r < 0)
                goto rollback;

check_app_id:
        r = read_int(h, "PRAGMA application_id", &app_id);
        if (r < 0)
                return r;
        if (app_id != HISTORY_APPLICATION_ID) {
                set_error(h, "not a schedulerd history database (application id 0x%08x, "
                          "expected 0x%08x)", (unsigned) app_id, (unsigned) HISTORY_APPLICATION_ID);
                return -EBADMSG;
        }
        return 0;

rollback:
        if (!sqlite3_get_autocommit(h->db))
                (void) sqlite3_exec(h->db, "ROLLBACK", NULL, NULL, NULL);
        return r;
}

static history *sqlite_close(history *base) {
        sqlite_history *h = (sqlite_history *) base;
        if (!h)
                return NULL;
        if (h->db && !sqlite3_get_autocommit(h->db))
                (void) sqlite3_exec(h->db, "ROLLBACK", NULL, NULL, NULL);
        for (size_t i = 0; i < _STMT_MAX; i++)
                sqlite3_finalize(h->stmts[i]);
        sqlite3_close(h->db);
        history_base_done(&h->base);
        free(h);
        return NULL;
}

static const history_ops sqlite_ops;

static void sqlite_history_freep(sqlite_history **p) {
        if (*p)
                (void) sqlite_close(&(*p)->base);
}

int history_sqlite_open(const char *path, char *error, size_t error_size, history **ret) {
        _cleanup_(sqlite_history_freep) sqlite_history *h = NULL;
        int r, rc;

        if (isempty(path) || !ret)
                return -EINVAL;

        h = calloc(1, sizeof *h);
        if (!h)
                return -ENOMEM;
        if (history_base_init(&h->base, &sqlite_ops, path) < 0)
                return -ENOMEM;

        /* Created 0640 (the admin group may read runs; jobs and others may not), never through
         * a symbolic link someone left in the state directory; SQLite gives its -wal and -shm
         * files the database's mode. */
        int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0640);
        if (fd < 0 && errno != EACCES && errno != EROFS) {
                r = -errno;
                snprintf(h->base.error, sizeof(h->base.error), "cannot open %s: %s%s", path, strerror(-r),
                         r == -ELOOP ? "; it is a symbolic link: remove it (the daemon creates the file)" : "");
                goto error;
        }
        if (fd >= 0) {
                struct stat st;
                if (fstat(fd, &st) >= 0 && (st.st_mode & 0137) != 0)
                        (void) fchmod(fd, st.st_mode & 0640);
                close(fd);
        }
        /* NOMUTEX: one thread uses a history handle (the daemon has one; schedctl too), and the
         * connection's mutex, taken by every call, was 3 % of the daemon's time in a herd */
        rc = sqlite3_open_v2(path, &h->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOFOLLOW | SQLITE_OPEN_NOMUTEX, NULL);
        if (rc != SQLITE_OK) {
                if (!h->db)
                        return -ENOMEM;
                r = fail(h, rc, "cannot open");
                goto error;
        }
        sqlite3_extended_result_codes(h->db, 1);
        sqlite3_busy_timeout(h->db, HISTORY_BUSY_TIMEOUT_MS);

        r = set_wal(h);
        if (r < 0)
                goto error;
        /* NORMAL in WAL mode: a power cut may lose the last commits, never corrupts. */
        r = exec_sql(h, "PRAGMA synchronous = NORMAL", "setting synchronous mode");
        if (r < 0)
                goto error;
        /* A commit only appends to the WAL (no fsync with NORMAL): cheap enough to come between
         * a fire's claim and its run. The checkpoint, with its fsyncs, is history_checkpoint()'s,
         * taken when the caller says (and by SQLite when the last connection closes). */
        r = exec_sql(h, "PRAGMA wal_autocheckpoint = 0", "turning off automatic checkpoints");
        if (r < 0)
                goto error;
        /* (after the pragma, which sets a hook of its own) the WAL's size, for the caller to
         * checkpoint before it grows without end under a load that leaves no quiet moment */
        (void) sqlite3_wal_hook(h->db, on_wal_commit, h);
        r = exec_sql(h, "PRAGMA foreign_keys = ON", "enabling foreign keys");
        if (r < 0)
                goto error;
        r = migrate(h);
        if (r < 0)
                goto error;

        h->base.error[0] = '\0';
        *ret = &TAKE_PTR(h)->base;
        return 0;

error:
        if (error && error_size > 0)
                snprintf(error, error_size, "%s%s", h->base.error,
                         (r == -EROFS || r == -EACCES) ? " (expected the file and its directory to be writable "
                                            "by schedulerd)" : "");
        return r;
}


static int sqlite_set_size_limit(history *base, uint64_t max_bytes) {
        sqlite_history *h = (sqlite_history *) base;
        int page_size, r;
        char sql[80];

        if (!h)
                return -EINVAL;
        r = read_int(h, "PRAGMA page_size", &page_size);
        if (r < 0)
                return r;
        if (page_size <= 0)
                return -EIO;
        uint64_t pages = max_bytes == 0 ? UINT64_C(4294967294) : MAX(max_bytes / (uint64_t) page_size, 1);
        snprintf(sql, sizeof sql, "PRAGMA max_page_count = %" PRIu64, pages);
        return exec_sql(h, sql, "setting the size limit");
}

static int sqlite_begin(history *base) {
        sqlite_history *h = (sqlite_history *) base;
        if (!h)
                return -EINVAL;
        if (h->in_batch) {
                set_error(h, "a batch is already open (expected history_commit() first)");
                return -EALREADY;
        }
        h->batch_lost = 0;
        int r = stmt_exec(h, STMT_BEGIN, "starting a batch");
        if (r < 0)
                return r;
        h->in_batch = true;
        return 0;
}

static int sqlite_commit(history *base) {
        sqlite_history *h = (sqlite_history *) base;
        if (!h)
                return -EINVAL;
        if (!h->in_batch) {
                int lost = h->batch_lost;
                h->batch_lost = 0;
                if (lost < 0)
                        return lost;    /* h->base.error still says why */
                set_error(h, "no batch is open (expected history_begin() first)");
                return -ENOTCONN;
        }
        h->in_batch = false;
        int r = stmt_exec(h, STMT_COMMIT, "committing a batch");
        if (r < 0 && !sqlite3_get_autocommit(h->db))
                stmt_exec_quiet(h, STMT_ROLLBACK);
        return r;
}

static int sqlite_rollback(history *base) {
        sqlite_history *h = (sqlite_history *) base;
        if (!h)
                return -EINVAL;
        if (!h->in_batch) {
                bool lost = h->batch_lost < 0;
                h->batch_lost = 0;
                if (lost)
                        return 0;       /* SQLite already rolled it back */
                set_error(h, "no batch is open (expected history_begin() first)");
                return -ENOTCONN;
        }
        h->in_batch = false;
        return stmt_exec(h, STMT_ROLLBACK, "rolling back a batch");
}

static int insert_run(sqlite_history *h, const char *job, run_trigger trigger, unsigned attempt,
                      const char *claim_class, int64_t retry_of, usec_t scheduled,
                      usec_t started, usec_t finished, run_status status, const char *message,
                      pid_t pid, int64_t *ret_run_id) {
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        int r = stmt_get(h, STMT_INSERT_RUN, &s);
        if (r < 0)
                return r;

        size_t mlen = message ? history_utf8_head_length(message, strlen(message), HISTORY_MESSAGE_MAX) : 0;

        sqlite3_bind_text(s, 1, job, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(s, 2, run_trigger_to_string(trigger), -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 3, attempt);
        bind_text(s, 4, claim_class);
        if (retry_of > 0)
                sqlite3_bind_int64(s, 5, retry_of);
        sqlite3_bind_int64(s, 6, (sqlite3_int64) scheduled);
        sqlite3_bind_int64(s, 7, (sqlite3_int64) started);
        bind_usec(s, 8, finished);
        sqlite3_bind_text(s, 9, run_status_to_string(status), -1, SQLITE_STATIC);
        if (message)
                sqlite3_bind_text(s, 10, message, (int) mlen, SQLITE_TRANSIENT);
        if (pid > 0)
                sqlite3_bind_int64(s, 11, pid);

        int rc = sqlite3_step(s);
        if (rc != SQLITE_DONE) {
                r = fail(h, rc, "recording a run");
                if (r == -EEXIST)
                        set_error(h, "job '%s': the fire at %" PRIu64 " (attempt %u) was already "
                                  "claimed", job, scheduled, attempt);
                return r;
        }
        if (ret_run_id)
                *ret_run_id = sqlite3_last_insert_rowid(h->db);
        return 0;
}



static int sqlite_claim_fire(history *base, const char *job, run_trigger trigger, usec_t scheduled,
                       usec_t started, pid_t pid, int64_t *ret_run_id) {
        sqlite_history *h = (sqlite_history *) base;
        int r;

        if (!h)
                return -EINVAL;
        if ((r = history_check_job(&h->base, job)) < 0 || (r = history_check_first_trigger(&h->base, trigger)) < 0 ||
            (r = history_check_usec(&h->base, scheduled, false, "scheduled time")) < 0 ||
            (r = history_check_usec(&h->base, started, false, "start time")) < 0)
                return r;

        /* One INSERT: atomic by itself, and the UNIQUE index does the claiming. */
        return insert_run(h, job, trigger, 0, history_claim_class_of(trigger), 0, scheduled, started,
                          USEC_INFINITY, RUN_STATUS_RUNNING, NULL, pid, ret_run_id);
}

static int sqlite_claim_retry(history *base, int64_t first_run_id, unsigned attempt, usec_t started,
                        pid_t pid, int64_t *ret_run_id) {
        sqlite_history *h = (sqlite_history *) base;
        _cleanup_free_ char *job = NULL, *claim_class = NULL;
        usec_t scheduled;
        int64_t id;
        int r;

        if (!h)
                return -EINVAL;
        if (attempt < 1) {
                set_error(h, "retry attempt 0 (expected 1 or more)");
                return -EINVAL;
        }
        if ((r = history_check_usec(&h->base, started, false, "start time")) < 0)
                return r;

        r = op_begin(h);
        if (r < 0)
                return r;
        {
                _cleanup_stmt_ sqlite3_stmt *s = NULL;
                r = stmt_get(h, STMT_GET_RUN_ORIGIN, &s);
                if (r < 0)
                        return op_end(h, r);
                sqlite3_bind_int64(s, 1, first_run_id);
                int rc = sqlite3_step(s);
                if (rc == SQLITE_DONE) {
                        set_error(h, "run %" PRId64 " to retry does not exist", first_run_id);
                        return op_end(h, -ENOENT);
                }
                if (rc != SQLITE_ROW)
                        return op_end(h, fail(h, rc, "reading the run to retry"));
                if (sqlite3_column_int64(s, 3) != 0) {
                        set_error(h, "run %" PRId64 " is itself a retry (expected the first "
                                  "attempt's run id)", first_run_id);
                        return op_end(h, -EINVAL);
                }
                job = strdup(column_str(s, 0) ?: "");
                claim_class = column_str(s, 2) ? strdup(column_str(s, 2)) : NULL;
                if (!job || (column_str(s, 2) && !claim_class))
                        return op_end(h, -ENOMEM);
                scheduled = column_usec(s, 1);
        }
        r = insert_run(h, job, RUN_TRIGGER_RETRY, attempt, claim_class, first_run_id, scheduled,
                       started, USEC_INFINITY, RUN_STATUS_RUNNING, NULL, pid, &id);
        r = op_end(h, r);
        if (r < 0)
                return r;
        if (ret_run_id)
                *ret_run_id = id;
        return 0;
}

static int count_skipped(sqlite_history *h, const char *job) {
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        int r = stmt_get(h, STMT_COUNT_SKIPPED, &s);
        if (r < 0)
                return r;
        sqlite3_bind_text(s, 1, job, -1, SQLITE_TRANSIENT);
        int rc = sqlite3_step(s);
        if (rc != SQLITE_DONE)
                return fail(h, rc, "counting a skipped run");
        return 0;
}

static int sqlite_record_skipped(history *base, const char *job, run_trigger trigger, usec_t scheduled,
                           usec_t now, const char *message, int64_t *ret_run_id) {
        sqlite_history *h = (sqlite_history *) base;
        int64_t id;
        int r;

        if (!h)
                return -EINVAL;
        if ((r = history_check_job(&h->base, job)) < 0 || (r = history_check_first_trigger(&h->base, trigger)) < 0 ||
            (r = history_check_usec(&h->base, scheduled, false, "scheduled time")) < 0 ||
            (r = history_check_usec(&h->base, now, false, "current time")) < 0)
                return r;

        r = op_begin(h);
        if (r < 0)
                return r;
        r = insert_run(h, job, trigger, 0, history_claim_class_of(trigger), 0, scheduled, now, now,
                       RUN_STATUS_SKIPPED, message, 0, &id);
        if (r >= 0)
                r = count_skipped(h, job);
        r = op_end(h, r);
        if (r < 0)
                return r;
        if (ret_run_id)
                *ret_run_id = id;
        return 0;
}

static int sqlite_record_missed(history *base, const char *job, run_trigger trigger, usec_t first, usec_t last,
                                uint64_t count, usec_t now, const char *message, int64_t *ret_run_id) {
        sqlite_history *h = (sqlite_history *) base;
        int64_t id;
        int r;

        if (!h)
                return -EINVAL;
        if ((r = history_check_job(&h->base, job)) < 0 || (r = history_check_first_trigger(&h->base, trigger)) < 0 ||
            (r = history_check_usec(&h->base, first, false, "first missed instant")) < 0 ||
            (r = history_check_usec(&h->base, last, false, "last missed instant")) < 0 ||
            (r = history_check_usec(&h->base, now, false, "current time")) < 0)
                return r;
        if (count == 0 || count > INT64_MAX || last < first) {
                set_error(h, "job '%s': %" PRIu64 " fires missed from %" PRIu64 " to %" PRIu64
                          " (expected at least one, in order)", job, count, first, last);
                return -EINVAL;
        }

        r = op_begin(h);
        if (r < 0)
                return r;
        {
                _cleanup_stmt_ sqlite3_stmt *s = NULL;
                size_t mlen = message ? history_utf8_head_length(message, strlen(message), HISTORY_MESSAGE_MAX) : 0;
                r = stmt_get(h, STMT_INSERT_MISSED, &s);
                if (r < 0)
                        return op_end(h, r);
                sqlite3_bind_text(s, 1, job, -1, SQLITE_TRANSIENT);
                sqlite3_bind_text(s, 2, run_trigger_to_string(trigger), -1, SQLITE_STATIC);
                bind_text(s, 3, history_claim_class_of(trigger));
                sqlite3_bind_int64(s, 4, (sqlite3_int64) first);
                sqlite3_bind_int64(s, 5, (sqlite3_int64) now);
                if (message)
                        sqlite3_bind_text(s, 6, message, (int) mlen, SQLITE_TRANSIENT);
                sqlite3_bind_int64(s, 7, (sqlite3_int64) count);
                sqlite3_bind_int64(s, 8, (sqlite3_int64) last);
                int rc = sqlite3_step(s);
                if (rc != SQLITE_DONE) {
                        r = fail(h, rc, "recording missed fires");
                        if (r == -EEXIST)
                                set_error(h, "job '%s': the fire at %" PRIu64 " was already claimed", job, first);
                        return op_end(h, r);
                }
                id = sqlite3_last_insert_rowid(h->db);
        }
        {
                _cleanup_stmt_ sqlite3_stmt *s = NULL;
                r = stmt_get(h, STMT_COUNT_MISSED, &s);
                if (r < 0)
                        return op_end(h, r);
                sqlite3_bind_text(s, 1, job, -1, SQLITE_TRANSIENT);
                sqlite3_bind_int64(s, 2, (sqlite3_int64) count);
                int rc = sqlite3_step(s);
                if (rc != SQLITE_DONE)
                        return op_end(h, fail(h, rc, "counting missed fires"));
        }
        r = op_end(h, 0);
        if (r < 0)
                return r;
        if (ret_run_id)
                *ret_run_id = id;
        return 0;
}

/* Why an UPDATE of a running row changed nothing: -ENOENT or -ESTALE. */
static int explain_not_running(sqlite_history *h, int64_t run_id) {
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        int r = stmt_get(h, STMT_GET_RUN_STATE, &s);
        if (r < 0)
                return r;
        sqlite3_bind_int64(s, 1, run_id);
        int rc = sqlite3_step(s);
        if (rc == SQLITE_DONE) {
                set_error(h, "run %" PRId64 " does not exist", run_id);
                return -ENOENT;
        }
        if (rc != SQLITE_ROW)
                return fail(h, rc, "reading a run");
        set_error(h, "run %" PRId64 " of job '%s' already finished as %s", run_id,
                  column_str(s, 0) ?: "?", column_str(s, 2) ?: "?");
        return -ESTALE;
}

static int sqlite_set_pid(history *base, int64_t run_id, pid_t pid) {
        sqlite_history *h = (sqlite_history *) base;
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        int r;

        if (!h || pid <= 0)
                return -EINVAL;
        r = stmt_get(h, STMT_SET_PID, &s);
        if (r < 0)
                return r;
        sqlite3_bind_int64(s, 1, run_id);
        sqlite3_bind_int64(s, 2, pid);
        int rc = sqlite3_step(s);
        if (rc != SQLITE_DONE)
                return fail(h, rc, "setting a run's pid");
        if (sqlite3_changes(h->db) == 0)
                return explain_not_running(h, run_id);
        return 0;
}

static int sqlite_set_start(history *base, int64_t run_id, pid_t pid, usec_t started) {
        sqlite_history *h = (sqlite_history *) base;
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        int r;

        if (!h || started == USEC_INFINITY || started > INT64_MAX)
                return -EINVAL;
        r = stmt_get(h, STMT_SET_START, &s);
        if (r < 0)
                return r;
        sqlite3_bind_int64(s, 1, run_id);
        sqlite3_bind_int64(s, 2, pid);
        sqlite3_bind_int64(s, 3, (sqlite3_int64) started);
        int rc = sqlite3_step(s);
        if (rc != SQLITE_DONE)
                return fail(h, rc, "setting a run's start");
        if (sqlite3_changes(h->db) == 0)
                return explain_not_running(h, run_id);
        return 0;
}

static int sqlite_skip_claimed(history *base, int64_t run_id, usec_t now, const char *message) {
        sqlite_history *h = (sqlite_history *) base;
        _cleanup_free_ char *job = NULL;
        int r;

        if (!h)
                return -EINVAL;
        if ((r = history_check_usec(&h->base, now, false, "current time")) < 0)
                return r;
        r = op_begin(h);
        if (r < 0)
                return r;
        /* SQLite 3.31 has no RETURNING: the job is read first, in the same transaction */
        {
                _cleanup_stmt_ sqlite3_stmt *s = NULL;
                r = stmt_get(h, STMT_GET_RUN_STATE, &s);
                if (r < 0)
                        return op_end(h, r);
                sqlite3_bind_int64(s, 1, run_id);
                int rc = sqlite3_step(s);
                if (rc != SQLITE_ROW && rc != SQLITE_DONE)
                        return op_end(h, fail(h, rc, "reading a run"));
                if (rc == SQLITE_ROW && streq_ptr(column_str(s, 2), "running") &&
                    !(job = strdup(column_str(s, 0) ?: "")))
                        return op_end(h, -ENOMEM);
        }
        if (!job)
                return op_end(h, explain_not_running(h, run_id));
        {
                _cleanup_stmt_ sqlite3_stmt *s = NULL;
                r = stmt_get(h, STMT_SKIP_CLAIMED, &s);
                if (r < 0)
                        return op_end(h, r);
                sqlite3_bind_int64(s, 1, run_id);
                sqlite3_bind_int64(s, 2, (sqlite3_int64) now);
                if (message)
                        sqlite3_bind_text(s, 3, message,
                                          (int) history_utf8_head_length(message, strlen(message), HISTORY_MESSAGE_MAX),
                                          SQLITE_TRANSIENT);
                int rc = sqlite3_step(s);
                if (rc != SQLITE_DONE)
                        return op_end(h, fail(h, rc, "recording a claimed fire skipped"));
        }
        return op_end(h, count_skipped(h, job));
}

static int finish_in_tx(sqlite_history *h, int64_t run_id, const history_result *res) {
        int r, rc;

        {
                _cleanup_stmt_ sqlite3_stmt *s = NULL;
                r = stmt_get(h, STMT_FINISH_RUN, &s);
                if (r < 0)
                        return r;
                sqlite3_bind_int64(s, 1, run_id);
                sqlite3_bind_int64(s, 2, (sqlite3_int64) res->finished_usec);
                sqlite3_bind_text(s, 3, run_status_to_string(res->status), -1, SQLITE_STATIC);
                if (res->exit_code >= 0)
                        sqlite3_bind_int(s, 4, res->exit_code);
                if (res->signal > 0)
                        sqlite3_bind_int(s, 5, res->signal);
                if (res->duration_usec != USEC_INFINITY)
                        sqlite3_bind_int64(s, 6, (sqlite3_int64) res->duration_usec);
                if (res->message)
                        sqlite3_bind_text(s, 7, res->message,
                                          (int) history_utf8_head_length(res->message, strlen(res->message),
                                                                 HISTORY_MESSAGE_MAX),
                                          SQLITE_TRANSIENT);
                if (res->output) {
                        size_t off = history_utf8_tail_offset(res->output, res->output_size, HISTORY_OUTPUT_MAX);
                        sqlite3_bind_text(s, 8, res->output + off, (int) (res->output_size - off),
                                          SQLITE_TRANSIENT);
                }
                if (res->started_usec > 0)
                        sqlite3_bind_int64(s, 9, (sqlite3_int64) res->started_usec);
                if (res->pid > 0)
                        sqlite3_bind_int64(s, 10, res->pid);
                rc = sqlite3_step(s);
                if (rc != SQLITE_DONE)
                        return fail(h, rc, "recording a run's result");
        }
        if (sqlite3_changes(h->db) == 0)
                /* not running (any more), or not there: after the block, which reset the statement */
                return explain_not_running(h, run_id);

        {
                _cleanup_stmt_ sqlite3_stmt *s = NULL;
                r = stmt_get(h, STMT_COUNT_RUN, &s);
                if (r < 0)
                        return r;
                sqlite3_bind_int64(s, 1, run_id);
                sqlite3_bind_int(s, 2, run_status_is_failure(res->status));
                sqlite3_bind_text(s, 3, run_status_to_string(res->status), -1, SQLITE_STATIC);
                sqlite3_bind_int64(s, 4, (sqlite3_int64) res->finished_usec);
                rc = sqlite3_step(s);
                if (rc != SQLITE_DONE)
                        return fail(h, rc, "updating the job's counters");
        }
        return 0;
}

static int sqlite_finish_run(history *base, int64_t run_id, const history_result *res) {
        sqlite_history *h = (sqlite_history *) base;
        int r;

        if (!h || !res)
                return -EINVAL;
        if (!run_status_is_final(res->status) || res->status == RUN_STATUS_SKIPPED ||
            res->status == RUN_STATUS_MISSED) {
                set_error(h, "run %" PRId64 ": status %d cannot finish a run (expected a final "
                          "status other than skipped or missed)", run_id, (int) res->status);
                return -EINVAL;
        }
        if ((r = history_check_usec(&h->base, res->finished_usec, false, "finish time")) < 0 ||
            (r = history_check_usec(&h->base, res->duration_usec, true, "duration")) < 0 ||
            (res->started_usec > 0 && (r = history_check_usec(&h->base, res->started_usec, false, "start time")) < 0))
                return r;
        if (res->output_size > 0 && !res->output)
                return -EINVAL;

        r = op_begin(h);
        if (r < 0)
                return r;
        return op_end(h, finish_in_tx(h, run_id, res));
}

static int sqlite_mark_interrupted(history *base, unsigned *ret_count) {
        sqlite_history *h = (sqlite_history *) base;
        unsigned n = 0;
        int r;

        if (!h)
                return -EINVAL;
        r = op_begin(h);
        if (r < 0)
                return r;
        r = stmt_exec(h, STMT_COUNT_INTERRUPTED, "counting interrupted runs");
        if (r >= 0) {
                r = stmt_exec(h, STMT_MARK_INTERRUPTED, "marking runs interrupted");
                if (r >= 0)
                        n = (unsigned) sqlite3_changes(h->db);
        }
        r = op_end(h, r);
        if (r < 0)
                return r;
        if (ret_count)
                *ret_count = n;
        return 0;
}

static int sqlite_prune(history *base, usec_t now, usec_t max_age, unsigned max_runs_per_job,
                  unsigned *ret_deleted) {
        sqlite_history *h = (sqlite_history *) base;
        unsigned n = 0;
        int r, rc;

        if (!h)
                return -EINVAL;
        if ((r = history_check_usec(&h->base, now, false, "current time")) < 0)
                return r;

        r = op_begin(h);
        if (r < 0)
                return r;
        if (max_age > 0 && max_age != USEC_INFINITY && max_age < now) {
                _cleanup_stmt_ sqlite3_stmt *s = NULL;
                r = stmt_get(h, STMT_PRUNE_AGE, &s);
                if (r < 0)
                        return op_end(h, r);
                sqlite3_bind_int64(s, 1, (sqlite3_int64) (now - max_age));
                rc = sqlite3_step(s);
                if (rc != SQLITE_DONE)
                        return op_end(h, fail(h, rc, "pruning runs by age"));
                n += (unsigned) sqlite3_changes(h->db);
        }
        if (max_runs_per_job > 0) {
                _cleanup_stmt_ sqlite3_stmt *s = NULL;
                r = stmt_get(h, STMT_PRUNE_COUNT, &s);
                if (r < 0)
                        return op_end(h, r);
                sqlite3_bind_int64(s, 1, max_runs_per_job);
                rc = sqlite3_step(s);
                if (rc != SQLITE_DONE)
                        return op_end(h, fail(h, rc, "pruning runs by count"));
                n += (unsigned) sqlite3_changes(h->db);
        }
        r = op_end(h, 0);
        if (r < 0)
                return r;
        if (ret_deleted)
                *ret_deleted = n;
        return 0;
}

/* A row of STMT_GET_JOB or STMT_ALL_JOBS, whose first columns are the same. */
static history_job_state job_state_from_row(sqlite3_stmt *s) {
        return (history_job_state) {
                .enabled_override = sqlite3_column_type(s, 0) == SQLITE_NULL ? -1 : sqlite3_column_int(s, 0),
                .last_scheduled_usec = column_usec(s, 1),
                .runs_total = (uint64_t) sqlite3_column_int64(s, 2),
                .failures_total = (uint64_t) sqlite3_column_int64(s, 3),
                .skipped_total = (uint64_t) sqlite3_column_int64(s, 4),
                .last_run_id = sqlite3_column_int64(s, 5),
                .last_status = column_str(s, 6) ? run_status_from_string(column_str(s, 6)) : _RUN_STATUS_INVALID,
                .last_finished_usec = column_usec(s, 7),
                .last_duration_usec = column_usec(s, 8),
                .first_loaded_usec = column_usec(s, 9),
                .missed_total = (uint64_t) sqlite3_column_int64(s, 10),
        };
}

static int sqlite_foreach_job_state(history *base, history_job_state_fn fn, void *userdata) {
        sqlite_history *h = (sqlite_history *) base;
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        int r, rc;

        if (!h || !fn)
                return -EINVAL;
        r = stmt_get(h, STMT_ALL_JOBS, &s);
        if (r < 0)
                return r;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
                const char *job = column_str(s, 11);
                history_job_state st = job_state_from_row(s);
                if (!job)
                        continue;
                r = fn(job, &st, userdata);
                if (r < 0)
                        return r;
        }
        if (rc != SQLITE_DONE)
                return fail(h, rc, "reading the jobs' state");
        return 0;
}

static int sqlite_get_job_state(history *base, const char *job, history_job_state *ret) {
        sqlite_history *h = (sqlite_history *) base;
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        int r;

        if (!h || !ret)
                return -EINVAL;
        if ((r = history_check_job(&h->base, job)) < 0)
                return r;
        r = stmt_get(h, STMT_GET_JOB, &s);
        if (r < 0)
                return r;
        sqlite3_bind_text(s, 1, job, -1, SQLITE_TRANSIENT);
        int rc = sqlite3_step(s);
        if (rc == SQLITE_DONE) {
                *ret = (history_job_state) {
                        .enabled_override = -1,
                        .last_scheduled_usec = USEC_INFINITY,
                        .last_status = _RUN_STATUS_INVALID,
                        .last_finished_usec = USEC_INFINITY,
                        .last_duration_usec = USEC_INFINITY,
                        .first_loaded_usec = USEC_INFINITY,
                };
                return 0;
        }
        if (rc != SQLITE_ROW)
                return fail(h, rc, "reading a job's state");
        *ret = job_state_from_row(s);
        return 1;
}

static int sqlite_set_enabled_override(history *base, const char *job, int override) {
        sqlite_history *h = (sqlite_history *) base;
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        int r;

        if (!h)
                return -EINVAL;
        if ((r = history_check_job(&h->base, job)) < 0)
                return r;
        if (override < -1 || override > 1) {
                set_error(h, "job '%s': enable override %d (expected -1, 0 or 1)", job, override);
                return -EINVAL;
        }
        r = stmt_get(h, STMT_SET_OVERRIDE, &s);
        if (r < 0)
                return r;
        sqlite3_bind_text(s, 1, job, -1, SQLITE_TRANSIENT);
        if (override >= 0)
                sqlite3_bind_int(s, 2, override);
        int rc = sqlite3_step(s);
        if (rc != SQLITE_DONE)
                return fail(h, rc, "storing a job's enable override");
        return 0;
}

static int sqlite_set_last_scheduled(history *base, const char *job, usec_t scheduled) {
        sqlite_history *h = (sqlite_history *) base;
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        int r;

        if (!h)
                return -EINVAL;
        if ((r = history_check_job(&h->base, job)) < 0 ||
            (r = history_check_usec(&h->base, scheduled, true, "last scheduled time")) < 0)
                return r;
        r = stmt_get(h, STMT_SET_LAST_SCHEDULED, &s);
        if (r < 0)
                return r;
        sqlite3_bind_text(s, 1, job, -1, SQLITE_TRANSIENT);
        bind_usec(s, 2, scheduled);
        int rc = sqlite3_step(s);
        if (rc != SQLITE_DONE)
                return fail(h, rc, "storing a job's last scheduled time");
        return 0;
}


static char *column_dup(sqlite3_stmt *s, int i, size_t *ret_size) {
        const void *t = sqlite3_column_text(s, i);
        if (!t)
                return NULL;
        size_t n = (size_t) sqlite3_column_bytes(s, i);
        char *c = malloc(n + 1);
        if (!c)
                return NULL;
        memcpy(c, t, n);
        c[n] = '\0';
        if (ret_size)
                *ret_size = n;
        return c;
}

static int read_run(sqlite3_stmt *s, history_run *ret) {
        history_run run = {
                .id = sqlite3_column_int64(s, 0),
                .trigger = run_trigger_from_string(column_str(s, 2)),
                .attempt = (unsigned) sqlite3_column_int64(s, 3),
                .retry_of = sqlite3_column_int64(s, 4),
                .scheduled_usec = column_usec(s, 5),
                .started_usec = column_usec(s, 6),
                .finished_usec = column_usec(s, 7),
                .status = run_status_from_string(column_str(s, 8)),
                .exit_code = sqlite3_column_type(s, 9) == SQLITE_NULL ? -1 : sqlite3_column_int(s, 9),
                .signal = sqlite3_column_int(s, 10),
                .duration_usec = column_usec(s, 11),
                .pid = (pid_t) sqlite3_column_int64(s, 14),
                .missed_count = (uint64_t) sqlite3_column_int64(s, 15),
                .missed_last_usec = column_usec(s, 16),
        };

        run.job = column_dup(s, 1, NULL);
        if (!run.job)
                goto oom;
        if (sqlite3_column_type(s, 12) != SQLITE_NULL && !(run.message = column_dup(s, 12, NULL)))
                goto oom;
        if (sqlite3_column_type(s, 13) != SQLITE_NULL &&
            !(run.output = column_dup(s, 13, &run.output_size)))
                goto oom;
        *ret = run;
        return 0;
oom:
        free(run.job);
        free(run.message);
        free(run.output);
        return -ENOMEM;
}

static int sqlite_list_runs(history *base, const char *job, usec_t since, run_status status,
                      unsigned limit, history_run **ret_runs, size_t *ret_n) {
        sqlite_history *h = (sqlite_history *) base;
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        history_run *runs = NULL;
        size_t n = 0, allocated = 0;
        int r, rc;

        if (!h || !ret_runs || !ret_n)
                return -EINVAL;
        if ((r = history_check_usec(&h->base, since, false, "since")) < 0)
                return r;
        if (status != _RUN_STATUS_INVALID && !run_status_to_string(status))
                return -EINVAL;

        r = stmt_get(h, STMT_LIST_RUNS, &s);
        if (r < 0)
                return r;
        bind_text(s, 1, job);
        sqlite3_bind_int64(s, 2, (sqlite3_int64) since);
        if (status != _RUN_STATUS_INVALID)
                sqlite3_bind_text(s, 3, run_status_to_string(status), -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 4, limit > 0 ? (sqlite3_int64) limit : -1);

        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
                if (n == allocated) {
                        size_t a = allocated ? allocated * 2 : 16;
                        history_run *p = realloc(runs, a * sizeof *runs);
                        if (!p) {
                                history_runs_free(runs, n);
                                return -ENOMEM;
                        }
                        runs = p;
                        allocated = a;
                }
                r = read_run(s, &runs[n]);
                if (r < 0) {
                        history_runs_free(runs, n);
                        return r;
                }
                n++;
        }
        if (rc != SQLITE_DONE) {
                history_runs_free(runs, n);
                return fail(h, rc, "listing runs");
        }
        *ret_runs = runs;
        *ret_n = n;
        return 0;
}

static int sqlite_get_job_stats(history *base, const char *job, usec_t since, history_job_stats *ret) {
        sqlite_history *h = (sqlite_history *) base;
        history_job_stats st = {
                .average_duration_usec = USEC_INFINITY,
                .last_status = _RUN_STATUS_INVALID,
                .last_started_usec = USEC_INFINITY,
                .last_finished_usec = USEC_INFINITY,
        };
        int r, rc;

        if (!h || !ret)
                return -EINVAL;
        if ((r = history_check_job(&h->base, job)) < 0 || (r = history_check_usec(&h->base, since, false, "since")) < 0)
                return r;

        /* Both reads must see the same snapshot. */
        r = exec_sql(h, h->in_batch ? "SAVEPOINT history_stats" : "BEGIN", "starting a read");
        if (r < 0)
                return r;
        {
                _cleanup_stmt_ sqlite3_stmt *s = NULL;
                r = stmt_get(h, STMT_STATS, &s);
                if (r < 0)
                        goto finish;
                sqlite3_bind_text(s, 1, job, -1, SQLITE_TRANSIENT);
                sqlite3_bind_int64(s, 2, (sqlite3_int64) since);
                rc = sqlite3_step(s);
                if (rc != SQLITE_ROW) {
                        r = fail(h, rc, "computing job statistics");
                        goto finish;
                }
                st.runs = (uint64_t) sqlite3_column_int64(s, 0);
                st.failures = (uint64_t) sqlite3_column_int64(s, 1);
                st.skipped = (uint64_t) sqlite3_column_int64(s, 2);
                if (sqlite3_column_type(s, 3) != SQLITE_NULL)
                        st.average_duration_usec = (usec_t) (sqlite3_column_double(s, 3) + 0.5);
                st.missed = (uint64_t) sqlite3_column_int64(s, 4);
        }
        {
                _cleanup_stmt_ sqlite3_stmt *s = NULL;
                r = stmt_get(h, STMT_STATS_LAST, &s);
                if (r < 0)
                        goto finish;
                sqlite3_bind_text(s, 1, job, -1, SQLITE_TRANSIENT);
                sqlite3_bind_int64(s, 2, (sqlite3_int64) since);
                rc = sqlite3_step(s);
                if (rc == SQLITE_ROW) {
                        st.last_run_id = sqlite3_column_int64(s, 0);
                        st.last_status = run_status_from_string(column_str(s, 1));
                        st.last_started_usec = column_usec(s, 2);
                        st.last_finished_usec = column_usec(s, 3);
                } else if (rc != SQLITE_DONE)
                        r = fail(h, rc, "reading the last run");
        }
finish:
        if (h->in_batch)
                (void) sqlite3_exec(h->db, "RELEASE history_stats", NULL, NULL, NULL);
        else if (!sqlite3_get_autocommit(h->db))
                (void) sqlite3_exec(h->db, r < 0 ? "ROLLBACK" : "COMMIT", NULL, NULL, NULL);
        if (r < 0)
                return r;
        *ret = st;
        return 0;
}

static int sqlite_put_retry(history *base, const history_retry *rt) {
        sqlite_history *h = (sqlite_history *) base;
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        int r;

        if (!h || !rt || rt->first_run_id <= 0 || rt->attempt < 1)
                return -EINVAL;
        if ((r = history_check_job(&h->base, rt->job)) < 0 || (r = history_check_usec(&h->base, rt->scheduled_usec, false, "scheduled time")) < 0 ||
            (r = history_check_usec(&h->base, rt->due_usec, false, "retry due time")) < 0)
                return r;
        r = stmt_get(h, STMT_PUT_RETRY, &s);
        if (r < 0)
                return r;
        sqlite3_bind_int64(s, 1, rt->first_run_id);
        sqlite3_bind_text(s, 2, rt->job, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(s, 3, rt->attempt);
        sqlite3_bind_int64(s, 4, (sqlite3_int64) rt->scheduled_usec);
        sqlite3_bind_int64(s, 5, (sqlite3_int64) rt->due_usec);
        int rc = sqlite3_step(s);
        if (rc != SQLITE_DONE)
                return fail(h, rc, "storing a pending retry");
        return 0;
}

static int sqlite_remove_retry(history *base, int64_t first_run_id) {
        sqlite_history *h = (sqlite_history *) base;
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        int r;

        if (!h)
                return -EINVAL;
        r = stmt_get(h, STMT_DELETE_RETRY, &s);
        if (r < 0)
                return r;
        sqlite3_bind_int64(s, 1, first_run_id);
        int rc = sqlite3_step(s);
        if (rc != SQLITE_DONE)
                return fail(h, rc, "removing a pending retry");
        return 0;
}

static int sqlite_foreach_retry(history *base, history_retry_fn fn, void *userdata) {
        sqlite_history *h = (sqlite_history *) base;
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        int r, rc;

        if (!h || !fn)
                return -EINVAL;
        r = stmt_get(h, STMT_ALL_RETRIES, &s);
        if (r < 0)
                return r;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
                history_retry rt = {
                        .first_run_id = sqlite3_column_int64(s, 0),
                        .job = column_str(s, 1),
                        .attempt = (unsigned) sqlite3_column_int64(s, 2),
                        .scheduled_usec = column_usec(s, 3),
                        .due_usec = column_usec(s, 4),
                };
                if (!rt.job)
                        continue;
                r = fn(&rt, userdata);
                if (r < 0)
                        return r;
        }
        if (rc != SQLITE_DONE)
                return fail(h, rc, "reading the pending retries");
        return 0;
}

static int sqlite_set_first_loaded(history *base, const char *job, usec_t when) {
        sqlite_history *h = (sqlite_history *) base;
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        int r;

        if (!h)
                return -EINVAL;
        if ((r = history_check_job(&h->base, job)) < 0 || (r = history_check_usec(&h->base, when, false, "first load time")) < 0)
                return r;
        r = stmt_get(h, STMT_SET_FIRST_LOADED, &s);
        if (r < 0)
                return r;
        sqlite3_bind_text(s, 1, job, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(s, 2, (sqlite3_int64) when);
        int rc = sqlite3_step(s);
        if (rc != SQLITE_DONE)
                return fail(h, rc, "storing when a job was first loaded");
        return 0;
}

static int sqlite_get_size(history *base, uint64_t *ret_runs, uint64_t *ret_bytes) {
        sqlite_history *h = (sqlite_history *) base;
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        int r;

        if (!h)
                return -EINVAL;
        r = stmt_get(h, STMT_SIZE, &s);
        if (r < 0)
                return r;
        int rc = sqlite3_step(s);
        if (rc != SQLITE_ROW)
                return fail(h, rc, "measuring the history");
        if (ret_runs)
                *ret_runs = (uint64_t) sqlite3_column_int64(s, 0);
        if (ret_bytes)
                *ret_bytes = (uint64_t) sqlite3_column_int64(s, 1);
        return 0;
}

static int sqlite_checkpoint(history *base) {
        sqlite_history *h = (sqlite_history *) base;
        if (!h)
                return -EINVAL;
        if (h->in_batch) {
                set_error(h, "a batch is open (expected history_commit() first)");
                return -EBUSY;
        }
        int rc = sqlite3_wal_checkpoint_v2(h->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        if (rc != SQLITE_OK)
                return fail(h, rc, "checkpointing the write-ahead log");
        h->wal_pages = 0; /* copied: the next commit starts the log over */
        return 0;
}

static int sqlite_wal_pages(history *base) {
        sqlite_history *h = (sqlite_history *) base;
        return h ? h->wal_pages : -EINVAL;
}

/* ---- pauses and backfills (schema 3) ------------------------------------------------------ */

/* Ad-hoc statements: these run once per operator command or at start-up, not per fire. */
static int prepare(sqlite_history *h, const char *sql, sqlite3_stmt **ret) {
        int rc = sqlite3_prepare_v2(h->db, sql, -1, ret, NULL);
        return rc == SQLITE_OK ? 0 : fail(h, rc, "preparing a statement");
}

static int step_done(sqlite_history *h, sqlite3_stmt *s, const char *what) {
        int rc = sqlite3_step(s);
        sqlite3_finalize(s);
        return rc == SQLITE_DONE ? 0 : fail(h, rc, what);
}

static int sqlite_set_pause(history *base, const char *job, bool paused, usec_t until) {
        sqlite_history *h = (sqlite_history *) base;
        sqlite3_stmt *s;
        int r;

        if (!h)
                return -EINVAL;
        if ((r = history_check_job(&h->base, job)) < 0 || (paused && (r = history_check_usec(&h->base, until, true, "pause end")) < 0))
                return r;
        r = prepare(h, paused ? "INSERT INTO pauses (job, until_usec) VALUES (?1, ?2)"
                                " ON CONFLICT (job) DO UPDATE SET until_usec = excluded.until_usec"
                              : "DELETE FROM pauses WHERE job = ?1", &s);
        if (r < 0)
                return r;
        sqlite3_bind_text(s, 1, job, -1, SQLITE_TRANSIENT);
        if (paused)
                bind_usec(s, 2, until);
        return step_done(h, s, paused ? "storing a pause" : "removing a pause");
}

static int sqlite_foreach_pause(history *base, history_pause_fn fn, void *userdata) {
        sqlite_history *h = (sqlite_history *) base;
        sqlite3_stmt *s;
        int r, rc;

        if (!h || !fn)
                return -EINVAL;
        r = prepare(h, "SELECT job, until_usec FROM pauses", &s);
        if (r < 0)
                return r;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
                const char *job = column_str(s, 0);
                if (job && (r = fn(job, column_usec(s, 1), userdata)) < 0) {
                        sqlite3_finalize(s);
                        return r;
                }
        }
        sqlite3_finalize(s);
        return rc == SQLITE_DONE ? 0 : fail(h, rc, "reading pauses");
}

static int sqlite_set_backfill(history *base, const char *job, const history_backfill *b) {
        sqlite_history *h = (sqlite_history *) base;
        sqlite3_stmt *s;
        int r;

        if (!h)
                return -EINVAL;
        if ((r = history_check_job(&h->base, job)) < 0)
                return r;
        if (b && ((r = history_check_usec(&h->base, b->from_usec, false, "backfill start")) < 0 ||
                  (r = history_check_usec(&h->base, b->to_usec, false, "backfill end")) < 0 ||
                  (r = history_check_usec(&h->base, b->next_usec, false, "backfill cursor")) < 0))
                return r;
        r = prepare(h, b ? "INSERT INTO backfills (job, from_usec, to_usec, next_usec) VALUES (?1, ?2, ?3, ?4)"
                           " ON CONFLICT (job) DO UPDATE SET from_usec = excluded.from_usec,"
                           " to_usec = excluded.to_usec, next_usec = excluded.next_usec"
                         : "DELETE FROM backfills WHERE job = ?1", &s);
        if (r < 0)
                return r;
        sqlite3_bind_text(s, 1, job, -1, SQLITE_TRANSIENT);
        if (b) {
                sqlite3_bind_int64(s, 2, (sqlite3_int64) b->from_usec);
                sqlite3_bind_int64(s, 3, (sqlite3_int64) b->to_usec);
                sqlite3_bind_int64(s, 4, (sqlite3_int64) b->next_usec);
        }
        return step_done(h, s, b ? "storing a backfill" : "removing a backfill");
}

static int sqlite_foreach_backfill(history *base, history_backfill_fn fn, void *userdata) {
        sqlite_history *h = (sqlite_history *) base;
        sqlite3_stmt *s;
        int r, rc;

        if (!h || !fn)
                return -EINVAL;
        r = prepare(h, "SELECT job, from_usec, to_usec, next_usec FROM backfills", &s);
        if (r < 0)
                return r;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
                const char *job = column_str(s, 0);
                history_backfill b = {
                        .from_usec = column_usec(s, 1), .to_usec = column_usec(s, 2), .next_usec = column_usec(s, 3),
                };
                if (job && (r = fn(job, &b, userdata)) < 0) {
                        sqlite3_finalize(s);
                        return r;
                }
        }
        sqlite3_finalize(s);
        return rc == SQLITE_DONE ? 0 : fail(h, rc, "reading backfills");
}

static int sqlite_fire_claimed(history *base, const char *job, usec_t scheduled) {
        sqlite_history *h = (sqlite_history *) base;
        sqlite3_stmt *s;
        int r, rc;

        if (!h)
                return -EINVAL;
        if ((r = history_check_job(&h->base, job)) < 0)
                return r;
        r = prepare(h, "SELECT 1 FROM runs WHERE job = ?1 AND scheduled_usec = ?2 AND attempt = 0"
                       " AND claim_class = 'fire'", &s);
        if (r < 0)
                return r;
        sqlite3_bind_text(s, 1, job, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(s, 2, (sqlite3_int64) scheduled);
        rc = sqlite3_step(s);
        sqlite3_finalize(s);
        if (rc == SQLITE_ROW)
                return 1;
        return rc == SQLITE_DONE ? 0 : fail(h, rc, "looking up a claim");
}

static const history_ops sqlite_ops = {
        .backend = HISTORY_BACKEND_SQLITE,
        .close = sqlite_close,
        .set_size_limit = sqlite_set_size_limit,
        .begin = sqlite_begin,
        .commit = sqlite_commit,
        .rollback = sqlite_rollback,
        .checkpoint = sqlite_checkpoint,
        .wal_pages = sqlite_wal_pages,
        .claim_fire = sqlite_claim_fire,
        .claim_retry = sqlite_claim_retry,
        .record_skipped = sqlite_record_skipped,
        .skip_claimed = sqlite_skip_claimed,
        .record_missed = sqlite_record_missed,
        .set_pid = sqlite_set_pid,
        .set_start = sqlite_set_start,
        .finish_run = sqlite_finish_run,
        .mark_interrupted = sqlite_mark_interrupted,
        .prune = sqlite_prune,
        .get_job_state = sqlite_get_job_state,
        .foreach_job_state = sqlite_foreach_job_state,
        .set_enabled_override = sqlite_set_enabled_override,
        .set_last_scheduled = sqlite_set_last_scheduled,
        .list_runs = sqlite_list_runs,
        .get_job_stats = sqlite_get_job_stats,
        .put_retry = sqlite_put_retry,
        .remove_retry = sqlite_remove_retry,
        .foreach_retry = sqlite_foreach_retry,
        .set_first_loaded = sqlite_set_first_loaded,
        .get_size = sqlite_get_size,
        .set_pause = sqlite_set_pause,
        .foreach_pause = sqlite_foreach_pause,
        .set_backfill = sqlite_set_backfill,
        .foreach_backfill = sqlite_foreach_backfill,
        .fire_claimed = sqlite_fire_claimed,
};
