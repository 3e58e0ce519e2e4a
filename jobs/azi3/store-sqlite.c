/* SPDX-License-Identifier: MIT */
/* The azi3 store's SQLite driver: one file, WAL mode, writers serialised by BEGIN IMMEDIATE. */
#include <assert.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <strings.h>
#include <time.h>

#include "store-db.h"

/* 'azi3': marks the file as ours, so a wrong `store:` path pointing at some other SQLite file
 * is refused instead of being "migrated". */
#define AZI3_STORE_APPLICATION_ID 0x617a6933

static sqlite3 *db_of(azi3_store *s) {
        return s->db;
}

/* Migration N brings the schema from version N to N+1. Append only: a released migration is
 * never edited, since files in the field already ran it. */
static const char *const migrations[] = {
        /* 0 -> 1 */
        "CREATE TABLE sessions ("
        "  id INTEGER PRIMARY KEY,"
        "  robot_id INTEGER NOT NULL CHECK (robot_id >= 0),"
        "  rule_id TEXT NOT NULL CHECK (length(rule_id) > 0),"
        "  local_day TEXT NOT NULL CHECK (length(local_day) = 10),"
        "  start_usec INTEGER NOT NULL,"
        "  end_usec INTEGER NOT NULL CHECK (end_usec > start_usec),"
        "  window_usec INTEGER NOT NULL CHECK (window_usec > 0),"
        "  subscription_id INTEGER CHECK (subscription_id > 0),"
        "  state TEXT NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'completed')),"
        "  result TEXT CHECK (result IN ('alarms_raised', 'no_alarms')),"
        "  created_usec INTEGER NOT NULL,"
        "  completed_usec INTEGER,"
        "  UNIQUE (robot_id, rule_id, local_day),"
        "  CHECK ((state = 'completed') = (result IS NOT NULL)),"
        "  CHECK ((state = 'completed') = (completed_usec IS NOT NULL))"
        ");"
        "CREATE UNIQUE INDEX sessions_subscription ON sessions (robot_id, subscription_id)"
        "  WHERE subscription_id IS NOT NULL;"
        "CREATE INDEX sessions_open ON sessions (state, end_usec);"
        "CREATE INDEX sessions_day ON sessions (local_day, robot_id);"
        "CREATE TABLE windows ("
        "  id INTEGER PRIMARY KEY,"
        "  session_id INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,"
        "  since_usec INTEGER NOT NULL,"
        "  until_usec INTEGER NOT NULL CHECK (until_usec > since_usec),"
        "  closed_usec INTEGER,"
        "  reason TEXT CHECK (reason IN ('activity', 'expired', 'ended')),"
        "  closing_event_id INTEGER CHECK (closing_event_id > 0),"
        "  alarm_state TEXT CHECK (alarm_state IN ('owed', 'alarmed')),"
        "  alarm_reference_id TEXT NOT NULL UNIQUE,"
        "  alarm_posted_usec INTEGER,"
        "  alarm_event_id INTEGER,"
        "  CHECK ((closed_usec IS NULL) = (reason IS NULL)),"
        "  CHECK ((coalesce(reason, '') = 'expired') = (alarm_state IS NOT NULL)),"
        "  CHECK ((coalesce(alarm_state, '') = 'alarmed') = (alarm_posted_usec IS NOT NULL)),"
        "  CHECK ((coalesce(alarm_state, '') = 'alarmed') = (alarm_event_id IS NOT NULL))"
        ");"
        /* The one-current-window invariant, enforced by the file itself. */
        "CREATE UNIQUE INDEX windows_current ON windows (session_id) WHERE closed_usec IS NULL;"
        "CREATE INDEX windows_session ON windows (session_id, since_usec);"
        "CREATE INDEX windows_owed ON windows (since_usec) WHERE alarm_state = 'owed';"
        "CREATE TABLE events ("
        "  session_id INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,"
        "  source_event_id INTEGER NOT NULL CHECK (source_event_id > 0),"
        "  created_usec INTEGER NOT NULL,"
        "  applied_usec INTEGER NOT NULL,"
        "  outcome TEXT NOT NULL CHECK (outcome IN ('applied', 'stale')),"
        "  PRIMARY KEY (session_id, source_event_id)"
        ") WITHOUT ROWID;"
        /* Outlives its session on purpose: a deletion that keeps failing must survive the
         * retention of the session it belonged to. */
        "CREATE TABLE pending_unsubscriptions ("
        "  robot_id INTEGER NOT NULL,"
        "  subscription_id INTEGER NOT NULL CHECK (subscription_id > 0),"
        "  attempts INTEGER NOT NULL DEFAULT 0,"
        "  last_error TEXT,"
        "  next_attempt_usec INTEGER NOT NULL,"
        "  PRIMARY KEY (robot_id, subscription_id)"
        ");",
        /* 1 -> 2 (issue 17): new session results and alarm states, when an owed alarm was
         * confirmed against Megazord's history, and a small key/value table. SQLite cannot
         * change a CHECK in place: the two tables are rebuilt (foreign keys are off meanwhile,
         * see store_migrate()). */
        "CREATE TABLE sessions_v2 ("
        "  id INTEGER PRIMARY KEY,"
        "  robot_id INTEGER NOT NULL CHECK (robot_id >= 0),"
        "  rule_id TEXT NOT NULL CHECK (length(rule_id) > 0),"
        "  local_day TEXT NOT NULL CHECK (length(local_day) = 10),"
        "  start_usec INTEGER NOT NULL,"
        "  end_usec INTEGER NOT NULL CHECK (end_usec > start_usec),"
        "  window_usec INTEGER NOT NULL CHECK (window_usec > 0),"
        "  subscription_id INTEGER CHECK (subscription_id > 0),"
        "  state TEXT NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'completed')),"
        "  result TEXT CHECK (result IN ('alarms_raised', 'no_alarms', 'rule_removed', 'no_events',"
        "                                'alarms_too_late')),"
        "  created_usec INTEGER NOT NULL,"
        "  completed_usec INTEGER,"
        "  UNIQUE (robot_id, rule_id, local_day),"
        "  CHECK ((state = 'completed') = (result IS NOT NULL)),"
        "  CHECK ((state = 'completed') = (completed_usec IS NOT NULL))"
        ");"
        "INSERT INTO sessions_v2 SELECT id, robot_id, rule_id, local_day, start_usec, end_usec, window_usec,"
        "  subscription_id, state, result, created_usec, completed_usec FROM sessions;"
        "DROP TABLE sessions;"
        "ALTER TABLE sessions_v2 RENAME TO sessions;"
        "CREATE UNIQUE INDEX sessions_subscription ON sessions (robot_id, subscription_id)"
        "  WHERE subscription_id IS NOT NULL;"
        "CREATE INDEX sessions_open ON sessions (state, end_usec);"
        "CREATE INDEX sessions_day ON sessions (local_day, robot_id);"
        "CREATE TABLE windows_v2 ("
        "  id INTEGER PRIMARY KEY,"
        "  session_id INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,"
        "  since_usec INTEGER NOT NULL,"
        "  until_usec INTEGER NOT NULL CHECK (until_usec > since_usec),"
        "  closed_usec INTEGER,"
        "  reason TEXT CHECK (reason IN ('activity', 'expired', 'ended')),"
        "  closing_event_id INTEGER CHECK (closing_event_id > 0),"
        "  alarm_state TEXT CHECK (alarm_state IN ('owed', 'alarmed', 'too_late', 'dropped')),"
        "  alarm_reference_id TEXT NOT NULL UNIQUE,"
        "  alarm_posted_usec INTEGER,"
        "  alarm_event_id INTEGER,"
        "  alarm_verified_usec INTEGER,"
        "  CHECK ((closed_usec IS NULL) = (reason IS NULL)),"
        "  CHECK ((coalesce(reason, '') = 'expired') = (alarm_state IS NOT NULL)),"
        "  CHECK ((coalesce(alarm_state, '') = 'alarmed') = (alarm_posted_usec IS NOT NULL)),"
        "  CHECK ((coalesce(alarm_state, '') = 'alarmed') = (alarm_event_id IS NOT NULL))"
        ");"
        "INSERT INTO windows_v2 SELECT id, session_id, since_usec, until_usec, closed_usec, reason,"
        "  closing_event_id, alarm_state, alarm_reference_id, alarm_posted_usec, alarm_event_id, NULL FROM windows;"
        "DROP TABLE windows;"
        "ALTER TABLE windows_v2 RENAME TO windows;"
        "CREATE UNIQUE INDEX windows_current ON windows (session_id) WHERE closed_usec IS NULL;"
        "CREATE INDEX windows_session ON windows (session_id, since_usec);"
        "CREATE INDEX windows_owed ON windows (since_usec) WHERE alarm_state = 'owed';"
        "CREATE TABLE meta ("
        "  key TEXT PRIMARY KEY,"
        "  value TEXT NOT NULL"
        ") WITHOUT ROWID;",
        /* 2 -> 3 (issue 15): the claim on an owed alarm, so two processes or nodes running
         * window-expiration at once never both post it (azi3_store_alarm_claim()). */
        "ALTER TABLE windows ADD COLUMN alarm_claim_owner TEXT; ALTER TABLE windows ADD COLUMN alarm_claim_until INTEGER;",
        /* 3 -> 4 (issue 16): the same tables with their CHECKs spelled as comparisons. SQLite
         * checks `x IN (list)` of more than two values with an ephemeral b-tree opened per row
         * written, and window-expiration writes a few windows rows per session. */
        "CREATE TABLE sessions_v4 ("
        "  id INTEGER PRIMARY KEY,"
        "  robot_id INTEGER NOT NULL CHECK (robot_id >= 0),"
        "  rule_id TEXT NOT NULL CHECK (length(rule_id) > 0),"
        "  local_day TEXT NOT NULL CHECK (length(local_day) = 10),"
        "  start_usec INTEGER NOT NULL,"
        "  end_usec INTEGER NOT NULL CHECK (end_usec > start_usec),"
        "  window_usec INTEGER NOT NULL CHECK (window_usec > 0),"
        "  subscription_id INTEGER CHECK (subscription_id > 0),"
        "  state TEXT NOT NULL DEFAULT 'open' CHECK (state = 'open' OR state = 'completed'),"
        "  result TEXT CHECK (result = 'alarms_raised' OR result = 'no_alarms' OR result = 'rule_removed'"
        "                     OR result = 'no_events' OR result = 'alarms_too_late'),"
        "  created_usec INTEGER NOT NULL,"
        "  completed_usec INTEGER,"
        "  UNIQUE (robot_id, rule_id, local_day),"
        "  CHECK ((state = 'completed') = (result IS NOT NULL)),"
        "  CHECK ((state = 'completed') = (completed_usec IS NOT NULL))"
        ");"
        "INSERT INTO sessions_v4 SELECT id, robot_id, rule_id, local_day, start_usec, end_usec, window_usec,"
        "  subscription_id, state, result, created_usec, completed_usec FROM sessions;"
        "DROP TABLE sessions;"
        "ALTER TABLE sessions_v4 RENAME TO sessions;"
        "CREATE UNIQUE INDEX sessions_subscription ON sessions (robot_id, subscription_id)"
        "  WHERE subscription_id IS NOT NULL;"
        "CREATE INDEX sessions_open ON sessions (state, end_usec);"
        "CREATE INDEX sessions_day ON sessions (local_day, robot_id);"
        "CREATE TABLE windows_v4 ("
        "  id INTEGER PRIMARY KEY,"
        "  session_id INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,"
        "  since_usec INTEGER NOT NULL,"
        "  until_usec INTEGER NOT NULL CHECK (until_usec > since_usec),"
        "  closed_usec INTEGER,"
        "  reason TEXT CHECK (reason = 'activity' OR reason = 'expired' OR reason = 'ended'),"
        "  closing_event_id INTEGER CHECK (closing_event_id > 0),"
        "  alarm_state TEXT CHECK (alarm_state = 'owed' OR alarm_state = 'alarmed' OR alarm_state = 'too_late'"
        "                          OR alarm_state = 'dropped'),"
        "  alarm_reference_id TEXT NOT NULL UNIQUE,"
        "  alarm_posted_usec INTEGER,"
        "  alarm_event_id INTEGER,"
        "  alarm_verified_usec INTEGER,"
        "  alarm_claim_owner TEXT,"
        "  alarm_claim_until INTEGER,"
        "  CHECK ((closed_usec IS NULL) = (reason IS NULL)),"
        "  CHECK ((coalesce(reason, '') = 'expired') = (alarm_state IS NOT NULL)),"
        "  CHECK ((coalesce(alarm_state, '') = 'alarmed') = (alarm_posted_usec IS NOT NULL)),"
        "  CHECK ((coalesce(alarm_state, '') = 'alarmed') = (alarm_event_id IS NOT NULL))"
        ");"
        "INSERT INTO windows_v4 SELECT id, session_id, since_usec, until_usec, closed_usec, reason,"
        "  closing_event_id, alarm_state, alarm_reference_id, alarm_posted_usec, alarm_event_id, alarm_verified_usec,"
        "  alarm_claim_owner, alarm_claim_until FROM windows;"
        "DROP TABLE windows;"
        "ALTER TABLE windows_v4 RENAME TO windows;"
        "CREATE UNIQUE INDEX windows_current ON windows (session_id) WHERE closed_usec IS NULL;"
        "CREATE INDEX windows_session ON windows (session_id, since_usec);"
        "CREATE INDEX windows_owed ON windows (since_usec) WHERE alarm_state = 'owed';",
};

static int errno_from_sqlite(sqlite3 *db, int rc) {
        int sys;

        switch (rc) {
        case SQLITE_CONSTRAINT_UNIQUE:
        case SQLITE_CONSTRAINT_PRIMARYKEY:
                return -EEXIST;
        case SQLITE_CONSTRAINT_FOREIGNKEY:
                return -ENOENT;
        }

        switch (rc & 0xff) {
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
                return -EBUSY;
        case SQLITE_NOMEM:
                return -ENOMEM;
        case SQLITE_READONLY:
                return -EROFS;
        case SQLITE_PERM:
        case SQLITE_AUTH:
                return -EACCES;
        case SQLITE_FULL:
                return -ENOSPC;
        case SQLITE_CORRUPT:
        case SQLITE_NOTADB:
                return -EBADMSG;
        case SQLITE_CONSTRAINT:
        case SQLITE_MISUSE:
                return -EINVAL;
        case SQLITE_TOOBIG:
                return -E2BIG;
        case SQLITE_MISMATCH:
        case SQLITE_RANGE:
                return -ERANGE;
        case SQLITE_INTERRUPT:
                return -EINTR;
        case SQLITE_CANTOPEN:
        case SQLITE_IOERR:
                /* The OS error says more than SQLite's class: EACCES, ENOENT, EISDIR, EIO... */
                sys = db ? sqlite3_system_errno(db) : 0;
                if (sys > 0)
                        return -sys;
                return (rc & 0xff) == SQLITE_CANTOPEN ? -ENOENT : -EIO;
        default:
                return -EIO;
        }
}

static int sqlite_fail(azi3_store *s, int rc, const char *what) {
        return store_fail(s, errno_from_sqlite(db_of(s), rc), "%s failed: %s (SQLite code %d)", what,
                          db_of(s) ? sqlite3_errmsg(db_of(s)) : sqlite3_errstr(rc), rc);
}

/* --- statements ---------------------------------------------------------------------------- */

int store_sqlite_exec(azi3_store *s, const char *sql, const char *what) {
        int rc = sqlite3_exec(db_of(s), sql, NULL, NULL, NULL);
        if (rc != SQLITE_OK)
                return sqlite_fail(s, rc, what);
        return 0;
}

/* Prepared statements are kept per connection, keyed by their SQL text, and reset instead of
 * finalized: preparing every store call's statement afresh was 38 % of window-expiration's CPU
 * over 10,000 sessions. store.c has about 40 distinct statements; a text that finds no free slot
 * within a few probes (or is in use already, as by a nested call) is prepared uncached. */
#define STMT_CACHE_SLOTS 128u /* a power of two, at most 255 (the memo keeps an index in a byte) */
#define STMT_CACHE_PROBES 8u

struct store_sqlite_cached {
        uint64_t hash;
        sqlite3_stmt *stmt; /* NULL: a free slot */
        bool in_use;
};

/* The texts are string literals, passed at the same address every time: a table keyed by the
 * address finds a text's slot with one strcmp(), where hashing its few hundred bytes cost 3 % of
 * window-expiration's CPU. The slot's text is still compared, since a text built in a buffer
 * comes at one address with different contents. */
#define STMT_CACHE_MEMO 64u /* a power of two */

struct store_sqlite_cache {
        struct store_sqlite_cached slot[STMT_CACHE_SLOTS];
        uint8_t memo[STMT_CACHE_MEMO]; /* slot index + 1 of the text last seen at an address; 0: none */
};

static unsigned memo_index(const char *sql) {
        return (unsigned) (((uintptr_t) sql >> 3) & (STMT_CACHE_MEMO - 1));
}

static uint64_t sql_hash(const char *sql) {
        uint64_t h = UINT64_C(14695981039346656037); /* FNV-1a */
        for (const unsigned char *p = (const unsigned char *) sql; *p; p++)
                h = (h ^ *p) * UINT64_C(1099511628211);
        return h;
}

static void stmt_cache_free(azi3_store *s) {
        if (!s->sqlite_cache)
                return;
        /* Every store_stmt is freed before its store is closed (store.c scopes them with
         * _cleanup_), so none of these is in use: one that were would be reset after this. */
        for (unsigned i = 0; i < STMT_CACHE_SLOTS; i++) {
                assert(!s->sqlite_cache->slot[i].in_use);
                (void) sqlite3_finalize(s->sqlite_cache->slot[i].stmt);
        }
        free(s->sqlite_cache);
        s->sqlite_cache = NULL;
}

unsigned store_sqlite_cached_count(azi3_store *s) {
        unsigned n = 0;
        if (s->sqlite_cache)
                for (unsigned i = 0; i < STMT_CACHE_SLOTS; i++)
                        n += !!s->sqlite_cache->slot[i].stmt;
        return n;
}

/* Finds SQL's statement in the cache, or prepares it into a free slot. Returns 1 with a
 * statement from the cache, 0 when the caller must prepare one of its own. */
static int stmt_cache_get(azi3_store *s, const char *sql, sqlite3_stmt **ret, struct store_sqlite_cached **ret_entry) {
        struct store_sqlite_cached *free_slot = NULL;
        uint64_t h;
        int rc;

        if (!s->sqlite_cache) {
                s->sqlite_cache = calloc(1, sizeof(*s->sqlite_cache));
                if (!s->sqlite_cache)
                        return 0; /* uncached still works */
        }
        uint8_t *memo = &s->sqlite_cache->memo[memo_index(sql)];
        if (*memo > 0) {
                struct store_sqlite_cached *e = &s->sqlite_cache->slot[*memo - 1];
                if (e->stmt && streq(sqlite3_sql(e->stmt), sql)) {
                        if (e->in_use)
                                return 0;
                        e->in_use = true;
                        *ret = e->stmt;
                        *ret_entry = e;
                        return 1;
                }
        }
        h = sql_hash(sql);
        for (unsigned i = 0; i < STMT_CACHE_PROBES; i++) {
                unsigned k = (unsigned) ((h + i) & (STMT_CACHE_SLOTS - 1));
                struct store_sqlite_cached *e = &s->sqlite_cache->slot[k];
                if (!e->stmt) {
                        if (!free_slot)
                                free_slot = e;
                        continue;
                }
                if (e->hash != h || !streq(sqlite3_sql(e->stmt), sql))
                        continue;
                if (e->in_use)
                        return 0;
                e->in_use = true;
                *memo = (uint8_t) (k + 1);
                *ret = e->stmt;
                *ret_entry = e;
                return 1;
        }
        if (!free_slot)
                return 0;
        rc = sqlite3_prepare_v3(db_of(s), sql, -1, SQLITE_PREPARE_PERSISTENT, &free_slot->stmt, NULL);
        if (rc != SQLITE_OK) {
                (void) sqlite3_finalize(free_slot->stmt);
                free_slot->stmt = NULL;
                return sqlite_fail(s, rc, "preparing a statement");
        }
        /* sqlite3_sql() gives back the first statement only (up to its ';'): a text with more
         * after it would never be found again, so it is left to the uncached path */
        if (!streq(sqlite3_sql(free_slot->stmt), sql)) {
                (void) sqlite3_finalize(free_slot->stmt);
                free_slot->stmt = NULL;
                return 0;
        }
        free_slot->hash = h;
        free_slot->in_use = true;
        *memo = (uint8_t) (free_slot - s->sqlite_cache->slot + 1);
        *ret = free_slot->stmt;
        *ret_entry = free_slot;
        return 1;
}

void store_sqlite_stmt_free(store_stmt *st) {
        if (st->cached) {
                /* reset ends the statement's read or write of the file; the bindings go too, so
                 * its next user starts as from a fresh prepare */
                (void) sqlite3_reset(st->sqlite);
                (void) sqlite3_clear_bindings(st->sqlite);
                st->cached->in_use = false;
                st->cached = NULL;
        } else
                (void) sqlite3_finalize(st->sqlite);
        st->sqlite = NULL;
}

int store_sqlite_prepare(azi3_store *s, store_stmt **ret, const char *sql, const char *fmt, va_list ap) {
        _cleanup_(store_stmt_freep) store_stmt *st = NULL;
        sqlite3_stmt *raw = NULL;
        int rc, r = 0, idx = 1;

        st = calloc(1, sizeof(*st));
        if (!st)
                return -ENOMEM;
        st->backend = STORE_BACKEND_SQLITE;
        r = stmt_cache_get(s, sql, &raw, &st->cached);
        if (r < 0)
                return r;
        if (r == 0) {
                rc = sqlite3_prepare_v2(db_of(s), sql, -1, &raw, NULL);
                if (rc != SQLITE_OK)
                        return sqlite_fail(s, rc, "preparing a statement");
        }
        r = 0;
        st->sqlite = raw;

        for (const char *f = fmt; *f && r >= 0; f++, idx++) {
                int64_t v;
                usec_t u;
                const char *t;

                switch (*f) {
                case 'i':
                case 'z':
                        v = va_arg(ap, int64_t);
                        rc = *f == 'z' && v == 0 ? sqlite3_bind_null(raw, idx) : sqlite3_bind_int64(raw, idx, v);
                        break;
                case 'u':
                case 'Z':
                        u = va_arg(ap, usec_t);
                        if (usec_to_i64(u, &v) < 0) {
                                r = store_fail(s, -ERANGE, "time %" PRIu64 " is out of range, expected at most %" PRId64 " us",
                                               u, INT64_MAX);
                                continue;
                        }
                        rc = *f == 'Z' && u == 0 ? sqlite3_bind_null(raw, idx) : sqlite3_bind_int64(raw, idx, v);
                        break;
                case 't':
                        t = va_arg(ap, const char *);
                        rc = t ? sqlite3_bind_text(raw, idx, t, -1, SQLITE_TRANSIENT) : sqlite3_bind_null(raw, idx);
                        break;
                default:
                        rc = SQLITE_MISUSE;
                }
                if (rc != SQLITE_OK)
                        r = sqlite_fail(s, rc, "binding a parameter");
        }
        if (r < 0)
                return r;

        *ret = TAKE_PTR(st);
        return 0;
}

int store_sqlite_step(azi3_store *s, store_stmt *st, const char *what) {
        int rc = sqlite3_step(st->sqlite);
        if (rc == SQLITE_ROW)
                return 1;
        if (rc == SQLITE_DONE)
                return 0;
        return sqlite_fail(s, rc, what);
}

int store_sqlite_changes(azi3_store *s) {
        return sqlite3_changes(db_of(s));
}

bool store_sqlite_col_null(store_stmt *st, int i) {
        return sqlite3_column_type(st->sqlite, i) == SQLITE_NULL;
}

int64_t store_sqlite_col_int64(store_stmt *st, int i) {
        return sqlite3_column_int64(st->sqlite, i);
}

const char *store_sqlite_col_text(store_stmt *st, int i) {
        return (const char *) sqlite3_column_text(st->sqlite, i);
}

/* --- transactions -------------------------------------------------------------------------- */

bool store_sqlite_in_transaction(azi3_store *s) {
        return db_of(s) && !sqlite3_get_autocommit(db_of(s));
}

int store_sqlite_begin(azi3_store *s) {
        return store_sqlite_exec(s, "BEGIN IMMEDIATE", "taking the write lock (BEGIN IMMEDIATE)");
}

/* --- opening ------------------------------------------------------------------------------- */

static int pragma_int(azi3_store *s, const char *sql, int *ret) {
        _cleanup_(store_stmt_freep) store_stmt *st = NULL;
        int r;

        r = store_prepare(s, &st, sql, "");
        if (r < 0)
                return r;
        r = store_step(s, st, sql);
        if (r < 0)
                return r;
        *ret = r > 0 ? (int) store_col_int64(st, 0) : 0;
        return 0;
}

static int read_version(azi3_store *s, int *ret_version, int *ret_app, int *ret_objects) {
        int r;

        r = pragma_int(s, "PRAGMA user_version", ret_version);
        if (r < 0)
                return r;
        r = pragma_int(s, "PRAGMA application_id", ret_app);
        if (r < 0)
                return r;
        return pragma_int(s, "SELECT count(*) FROM sqlite_master", ret_objects);
}

static int check_version(azi3_store *s, int version, int app, int objects) {
        if (version > AZI3_STORE_SCHEMA_VERSION)
                return store_fail(s, -EPROTONOSUPPORT,
                                  "schema version %d is newer than version %d this build knows; "
                                  "run a newer schedulerd or point `store:` at another file",
                                  version, AZI3_STORE_SCHEMA_VERSION);
        if (app != 0 && app != AZI3_STORE_APPLICATION_ID)
                return store_fail(s, -EBADMSG,
                                  "is a SQLite file of another application (application_id 0x%08x), "
                                  "expected an azi3 store (0x%08x) or an empty file",
                                  (unsigned) app, (unsigned) AZI3_STORE_APPLICATION_ID);
        if (version == 0 && objects > 0)
                return store_fail(s, -EBADMSG,
                                  "holds %d tables or indexes but no schema version; "
                                  "expected an azi3 store or an empty file",
                                  objects);
        return 0;
}

static int sqlite_migrate(azi3_store *s) {
        int version, app, objects, r, k;

        _Static_assert(ELEMENTSOF(migrations) == AZI3_STORE_SCHEMA_VERSION, "one migration per version");

        r = read_version(s, &version, &app, &objects);
        if (r < 0)
                return r;
        r = check_version(s, version, app, objects);
        if (r < 0 || version == AZI3_STORE_SCHEMA_VERSION)
                return r;

        /* Rebuilding a table (migration 1 -> 2) must not cascade its DROP to the rows that
         * refer to it; the pragma only works outside a transaction. */
        r = store_sqlite_exec(s, "PRAGMA foreign_keys = OFF", "disabling foreign keys for a migration");
        if (r < 0)
                return r;

        /* Another process may be migrating the same file right now: look again under the
         * write lock, and only then change anything. */
        r = store_sqlite_begin(s);
        if (r >= 0)
                r = read_version(s, &version, &app, &objects);
        if (r >= 0)
                r = check_version(s, version, app, objects);
        for (int v = version; r >= 0 && v < AZI3_STORE_SCHEMA_VERSION; v++) {
                char what[64];
                snprintf(what, sizeof(what), "migrating the schema from version %d to %d", v, v + 1);
                r = store_sqlite_exec(s, migrations[v], what);
        }
        if (r >= 0 && version < AZI3_STORE_SCHEMA_VERSION) {
                char sql[128];
                snprintf(sql, sizeof(sql), "PRAGMA user_version = %d; PRAGMA application_id = %d",
                         AZI3_STORE_SCHEMA_VERSION, AZI3_STORE_APPLICATION_ID);
                r = store_sqlite_exec(s, sql, "writing the schema version");
        }
        if (r >= 0) {
                int bad = 0;
                r = pragma_int(s, "SELECT count(*) FROM pragma_foreign_key_check", &bad);
                if (r >= 0 && bad > 0)
                        r = store_fail(s, -EBADMSG, "the migration left %d rows that refer to missing rows", bad);
        }
        if (r >= 0)
                r = store_sqlite_exec(s, "COMMIT", "committing the migration");
        if (r < 0 && store_sqlite_in_transaction(s))
                (void) sqlite3_exec(db_of(s), "ROLLBACK", NULL, NULL, NULL);
        k = store_sqlite_exec(s, "PRAGMA foreign_keys = ON", "enabling foreign keys");
        return r < 0 ? r : k;
}

/* SQLite's own busy_timeout polls ever more slowly, up to every 100 ms; a process doing
 * steady short transactions then frees the lock only between polls and can starve the other
 * for the whole timeout. Polling every few milliseconds gives the waiter a fair chance. */
static int busy_handler(void *userdata, int count) {
        azi3_store *s = userdata;
        usec_t delay;

        if (count == 0)
                s->busy_waited = 0;
        if (s->busy_waited >= s->busy_timeout)
                return 0;
        delay = MIN((usec_t) (1 + count / 16) * USEC_PER_MSEC, 5 * USEC_PER_MSEC);
        delay = MIN(delay, s->busy_timeout - s->busy_waited);
        (void) nanosleep(&(struct timespec) { .tv_sec = 0, .tv_nsec = (long) (delay * 1000) }, NULL);
        s->busy_waited += delay;
        return 1;
}

int store_sqlite_set_busy_timeout(azi3_store *s, unsigned msec) {
        int rc;

        s->busy_timeout = (usec_t) msec * USEC_PER_MSEC;
        rc = sqlite3_busy_handler(db_of(s), busy_handler, s);
        if (rc != SQLITE_OK)
                return sqlite_fail(s, rc, "setting the busy handler");
        return 0;
}

#define WAL_RETRY_DELAY_USEC (2 * USEC_PER_MSEC)

static int sqlite_configure(azi3_store *s) {
        sqlite3_stmt *st = NULL;
        char mode[16] = "unknown";
        int r;

        (void) sqlite3_extended_result_codes(db_of(s), 1);
        r = store_sqlite_set_busy_timeout(s, AZI3_STORE_BUSY_TIMEOUT_MSEC);
        if (r < 0)
                return r;

        r = store_sqlite_exec(s, "PRAGMA foreign_keys = ON", "enabling foreign keys");
        if (r < 0)
                return r;

        /* Changing the journal mode needs an exclusive lock that SQLite takes without calling
         * the busy handler: while another process opens the same file (or holds a read lock
         * for a moment) the pragma fails with SQLITE_BUSY at once. Retry it, bounded by the
         * busy timeout, as the busy handler would have. */
        for (unsigned attempt = 0;; attempt++) {
                int rc;

                rc = sqlite3_prepare_v2(db_of(s), "PRAGMA journal_mode = WAL", -1, &st, NULL);
                if (rc != SQLITE_OK)
                        return sqlite_fail(s, rc, "preparing PRAGMA journal_mode");
                rc = sqlite3_step(st);
                if (rc == SQLITE_ROW) {
                        r = 1;
                        break;
                }
                if (rc == SQLITE_DONE) {
                        r = 0;
                        break;
                }
                (void) sqlite3_finalize(TAKE_PTR(st));
                if ((rc & 0xff) != SQLITE_BUSY && (rc & 0xff) != SQLITE_LOCKED)
                        return sqlite_fail(s, rc, "switching to WAL mode");
                if ((usec_t) attempt * WAL_RETRY_DELAY_USEC >= s->busy_timeout)
                        return sqlite_fail(s, rc, "switching to WAL mode (another process kept the file locked)");
                (void) nanosleep(&(struct timespec) { .tv_nsec = (long) (WAL_RETRY_DELAY_USEC * 1000) }, NULL);
        }
        if (r > 0 && sqlite3_column_text(st, 0))
                snprintf(mode, sizeof(mode), "%s", (const char *) sqlite3_column_text(st, 0));
        (void) sqlite3_finalize(st); /* its read must end before the next pragma */
        if (strcasecmp(mode, "wal") != 0)
                return store_fail(s, -EOPNOTSUPP,
                                  "cannot use WAL mode (journal mode is %s); expected a file on a local file system",
                                  mode);

        /* Safe in WAL mode: a power loss may drop the last commits, never corrupt the file. */
        r = store_sqlite_exec(s, "PRAGMA synchronous = NORMAL", "setting synchronous=NORMAL");
        if (r < 0)
                return r;
        /* A run over 10,000 sessions touches the whole store (12 MiB): with SQLite's default
         * 2 MiB page cache it read pages again and again (3 preads per session), and with the
         * default checkpoint every 1,000 WAL pages it copied the same pages back 50 times
         * (with two fdatasyncs each). The cache is a bound, filled only as pages are read;
         * the WAL is checkpointed when the run closes the store anyway. */
        r = store_sqlite_exec(s, "PRAGMA cache_size = -32768", "setting the page cache to 32 MiB");
        if (r < 0)
                return r;
        /* Each transaction of a batch is a savepoint, and SQLite keeps the pages a savepoint
         * may have to restore in a sub-journal that spills to a temporary file past 64 KiB:
         * window-expiration over 10,000 sessions wrote 42,000 times to /var/tmp for it, more
         * than to the WAL. In memory it holds what one batch touches (a few MiB at most). */
        r = store_sqlite_exec(s, "PRAGMA temp_store = MEMORY", "keeping temporary files in memory");
        if (r < 0)
                return r;
        return store_sqlite_exec(s, "PRAGMA wal_autocheckpoint = 8192", "setting the WAL checkpoint to 8,192 pages");
}

int store_sqlite_open(azi3_store *s) {
        sqlite3 *db = NULL;
        int rc, r;

        rc = sqlite3_open_v2(s->path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
        s->db = db; /* even on failure: it carries the error message */
        if (rc != SQLITE_OK)
                return sqlite_fail(s, rc, "opening");
        r = sqlite_configure(s);
        if (r < 0)
                return r;
        return sqlite_migrate(s);
}

void store_sqlite_close(azi3_store *s) {
        if (!s->db)
                return;
        if (store_sqlite_in_transaction(s))
                (void) sqlite3_exec(db_of(s), "ROLLBACK", NULL, NULL, NULL);
        stmt_cache_free(s);
        (void) sqlite3_close_v2(db_of(s));
        s->db = NULL;
}

int store_sqlite_schema_version(azi3_store *s, int *ret) {
        return pragma_int(s, "PRAGMA user_version", ret);
}
