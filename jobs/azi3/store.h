/* SPDX-License-Identifier: MIT */
#pragma once

/* The azi-3 store (SPEC section 8): every piece of monitoring state lives in one SQLite file
 * or one PostgreSQL database (issue 15: several daemons sharing it), nothing in memory
 * between runs. Sessions (one per robot, rule and local day), the full
 * history of their windows with closing reasons and alarm status, the events applied (keyed
 * by source event id, the de-duplication key), and pending subscription deletions.
 *
 * Concurrency: the jobs run as separate processes on the same file. Every state change is
 * one transaction started with azi3_store_begin() (BEGIN IMMEDIATE: the write lock is taken
 * up front, so two writers queue on the busy timeout instead of failing or deadlocking when
 * a reader tries to become a writer). A job applies the window model as:
 *
 *     azi3_store_begin(s);                              -- take the write lock
 *     azi3_store_window_current(s, session, &cur);      -- read the state
 *     window_apply_event(&session.params, &cur.span, ...);  -- pure transition
 *     azi3_store_apply_transition(s, ..., &t, ...);     -- write it
 *     azi3_store_event_record(s, ...);
 *     azi3_store_commit(s);
 *
 * Functions that write several rows run in the caller's transaction if there is one, or in
 * their own otherwise, so a single call is always atomic.
 *
 * On PostgreSQL (`store:` a libpq connection string) azi3_store_begin() is BEGIN plus a
 * transaction-scoped advisory lock on the azi3 store, the exact counterpart of SQLite's write
 * lock: write transactions of all nodes run one after another, so the read-decide-write
 * pattern above cannot interleave between two nodes (an event applied twice, a session
 * created twice). The rows keep their own guards under it (unique keys with ON CONFLICT, a
 * conditional UPDATE for every state change), and an owed alarm is claimed in a committed
 * row before it is posted (azi3_store_alarm_claim()), since the post is an HTTP call that
 * must not run under the lock. Tables live in the schema `azi3`. A statement that fails
 * inside the caller's transaction leaves it aborted on PostgreSQL: roll back.
 *
 * Errors: every function returns 0 (or a documented positive value) or a negative errno;
 * the store does not log. azi3_store_last_error() gives a message for the last failure
 * (SQLite's own text included) for the caller to log. Mapping: -EBUSY lock not obtained
 * within the busy timeout, -ENOENT no such row, -EEXIST a uniqueness rule would break,
 * -EALREADY the row is already in the requested state, -EINVAL bad argument or a check
 * constraint, -ENOSPC disk full, -EROFS read-only file, -EBADMSG not an azi3 store or
 * corrupt, -EPROTONOSUPPORT schema newer than this build, -ECONNREFUSED PostgreSQL could not
 * be reached or the connection was lost, -EPERM a password in the connection string, -EIO
 * other failures.
 *
 * Ids: sessions and windows have row ids > 0. Robot ids are >= 0; Megazord's subscription
 * and event ids are > 0, and 0 in a struct field below means "none". Times are usec_t
 * microseconds since the epoch (UTC) and must fit in int64. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "basic/macro.h"
#include "window.h"

#define AZI3_STORE_SCHEMA_VERSION 4
#define AZI3_STORE_BUSY_TIMEOUT_MSEC 5000
#define AZI3_STORE_RULE_ID_MAX 127          /* longest rule id the store accepts, bytes */
#define AZI3_LOCAL_DAY_LEN 10         /* "YYYY-MM-DD" */
#define AZI3_REFERENCE_ID_MAX 96      /* "azi3-", a UUID and the window's since and until, with NUL */
#define AZI3_UNSUB_ERROR_MAX 512      /* last_error of a pending unsubscription, with NUL */

typedef struct azi3_store azi3_store;

typedef struct azi3_session {
        int64_t id;
        int64_t robot_id;
        char rule_id[AZI3_STORE_RULE_ID_MAX + 1];
        char local_day[AZI3_LOCAL_DAY_LEN + 1];
        window_params params;    /* A, B, W as instants/lengths */
        int64_t subscription_id; /* 0 until subscribed */
        bool completed;
        session_result result;   /* valid when completed */
        usec_t created_usec;
        usec_t completed_usec;   /* 0 while open */
} azi3_session;

typedef struct azi3_window {
        int64_t id;
        int64_t session_id;
        window_span span;
        bool current;               /* not closed yet (then closed_usec is 0) */
        usec_t closed_usec;
        window_close_reason reason; /* valid when !current */
        int64_t closing_event_id;   /* source event that closed it; 0 if none */
        window_alarm_state alarm;
        char alarm_reference_id[AZI3_REFERENCE_ID_MAX]; /* unique, fixed when the window opens */
        usec_t alarm_posted_usec;   /* 0 unless alarmed */
        int64_t alarm_event_id;     /* Megazord's id of the posted alarm; 0 unless alarmed */
        usec_t alarm_verified_usec; /* when Megazord's history confirmed no activity inside; 0: not yet */
} azi3_window;

typedef struct azi3_event {
        int64_t session_id;
        int64_t source_event_id;
        usec_t created_usec;
        usec_t applied_usec;
        bool stale; /* recorded as stale (8.1 2.2) rather than applied */
} azi3_event;

typedef struct azi3_unsubscription {
        int64_t robot_id;
        int64_t subscription_id;
        unsigned attempts; /* failed deletions so far */
        char last_error[AZI3_UNSUB_ERROR_MAX];
        usec_t next_attempt_usec;
} azi3_unsubscription;

/* The closed-window view window_alarms_owed() and friends take. */
static inline window_record azi3_window_record(const azi3_window *w) {
        return (window_record) { .span = w->span, .reason = w->reason, .alarm = w->alarm };
}

/* --- opening ----------------------------------------------------------------------------- */

/* Opens (creating if needed) the store at PATH, sets WAL, synchronous=NORMAL, foreign keys
 * and the busy timeout, and migrates the schema forward to AZI3_STORE_SCHEMA_VERSION.
 * Refuses a file whose schema is newer (-EPROTONOSUPPORT) or that is not an azi3 store
 * (-EBADMSG). If PATH is a PostgreSQL connection string (azi3_store_is_conninfo()) it
 * connects instead, refuses a password in it (-EPERM), and migrates the schema `azi3` under
 * an advisory lock, so processes starting at once migrate it once. On failure, if ERRBUF is
 * not NULL, a message naming PATH is written to it (ERRLEN bytes, truncated). */
int azi3_store_open(const char *path, char *errbuf, size_t errlen, azi3_store **ret);

/* True if STORE (a `store:` value) is a libpq connection string, "postgresql://..." or
 * "postgres://..." or "key=value ...", rather than a file path. */
bool azi3_store_is_conninfo(const char *store);

/* Checks a connection string for azi3_store_open(): -EINVAL if libpq cannot parse it, -EPERM
 * if it holds a password (passwords come from PGPASSFILE, ~/.pgpass or a service file). The
 * message goes to ERRBUF (may be NULL) and never repeats the string. */
int azi3_store_conninfo_check(const char *conninfo, char *errbuf, size_t errlen);

/* True if S is on PostgreSQL. */
bool azi3_store_is_pg(const azi3_store *s);

/* Closes the store, rolling back an open transaction. Accepts NULL; returns NULL. */
azi3_store *azi3_store_close(azi3_store *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(azi3_store *, azi3_store_close);

/* Sets how long a call waits for another process's lock before failing with -EBUSY
 * (default AZI3_STORE_BUSY_TIMEOUT_MSEC). */
int azi3_store_set_busy_timeout(azi3_store *s, unsigned msec);

/* The message of the last failure on S ("" if none). Valid until the next call on S. */
const char *azi3_store_last_error(const azi3_store *s);

/* The schema version of the open file (after migration, AZI3_STORE_SCHEMA_VERSION). */
int azi3_store_schema_version(azi3_store *s, int *ret);

/* --- transactions ------------------------------------------------------------------------ */

/* BEGIN IMMEDIATE: waits up to the busy timeout for the write lock. -EBUSY if it did not
 * get it, -EALREADY if a transaction is already open on S. */
int azi3_store_begin(azi3_store *s);

/* Commits the open transaction; on failure it is rolled back. -ENOTCONN if none is open. */
int azi3_store_commit(azi3_store *s);

/* Rolls back the open transaction; does nothing if there is none. Accepts NULL. */
int azi3_store_rollback(azi3_store *s);

/* True while a transaction is open on S. */
bool azi3_store_in_transaction(azi3_store *s);

/* --- batched commits ------------------------------------------------------------------------
 * A run making many small transactions between two network round trips (window-expiration:
 * a dozen statements in three transactions per session) can let them share one commit. While
 * batching, every statement runs in one outer transaction (BEGIN IMMEDIATE at the first
 * statement) that only azi3_store_batch_flush() commits; azi3_store_begin(), _commit() and
 * _rollback() work on a savepoint inside it, so a transaction of the caller is still atomic
 * and still rolled back alone. What a caller has committed is durable and visible to other
 * processes only after the next flush: whatever it must hold before acting outside the store
 * (an alarm's claim before the post) needs a flush first.
 *
 * On PostgreSQL nothing is batched: an outer transaction holding claimed rows would make two
 * nodes' runs wait on each other (a deadlock PostgreSQL breaks by rolling one back). */

/* Starts batching. Returns 1 if S now batches, 0 if its backend commits every transaction
 * alone (PostgreSQL), -EALREADY if a transaction or a batch is open. */
int azi3_store_batch_begin(azi3_store *s);

/* Commits the outer transaction, if one is open. Returns 0, or a negative errno when the
 * writes since the last flush are lost (the commit failed and was rolled back, or SQLite rolled
 * the batch back by itself after an error): work done on them must be undone or redone.
 * -EBUSY if the caller's own transaction is still open. Does nothing when not batching. */
int azi3_store_batch_flush(azi3_store *s);

/* Flushes and stops batching; returns what the flush returned. Accepts NULL. */
int azi3_store_batch_end(azi3_store *s);

/* Scope guard: `_cleanup_(azi3_store_rollbackp) _unused_ azi3_store *tx = s;` after a successful
 * begin rolls back on every early return, and does nothing once committed. */
static inline void azi3_store_rollbackp(azi3_store **s) {
        if (*s)
                (void) azi3_store_rollback(*s);
}

/* --- sessions ---------------------------------------------------------------------------- */

/* Creates the session for (ROBOT_ID, RULE_ID, LOCAL_DAY) with A, B, W from P, unless it
 * exists. Returns 1 and the new session, or 0 and the existing one unchanged (even if P
 * differs: a day's session keeps the rule it was created with). -EINVAL if P is not valid,
 * LOCAL_DAY is not YYYY-MM-DD or RULE_ID is empty; -ENAMETOOLONG if RULE_ID is longer than
 * AZI3_STORE_RULE_ID_MAX. The session has no window yet: open the first in the same transaction. */
int azi3_store_session_create(azi3_store *s, int64_t robot_id, const char *rule_id, const char *local_day,
                              const window_params *p, usec_t created_usec, azi3_session *ret);

/* Reads a session by id. -ENOENT if there is none. */
int azi3_store_session_get(azi3_store *s, int64_t session_id, azi3_session *ret);

/* Finds the session of (ROBOT_ID, RULE_ID, LOCAL_DAY). -ENOENT if there is none. */
int azi3_store_session_find(azi3_store *s, int64_t robot_id, const char *rule_id, const char *local_day,
                            azi3_session *ret);

/* Finds the session subscribed as SUBSCRIPTION_ID for ROBOT_ID (both must match, as SPEC 8.4
 * says), open or completed. -ENOENT if there is none. */
int azi3_store_session_find_by_subscription(azi3_store *s, int64_t subscription_id, int64_t robot_id,
                                            azi3_session *ret);

/* Records the Megazord subscription of a session. Setting the same id again is a no-op;
 * -EEXIST if it already has another one or another session of the robot has this one;
 * -ENOENT if there is no such session. */
int azi3_store_session_set_subscription(azi3_store *s, int64_t session_id, int64_t subscription_id);

/* Completes an open session (8.1 step 4): refuses with -EBUSY while it has a current window
 * or an owed alarm, -EALREADY if it is completed, -ENOENT if it does not exist. The result
 * is computed from its windows (alarms_raised if any was alarmed) and returned in RET. */
int azi3_store_session_complete(azi3_store *s, int64_t session_id, usec_t completed_usec, session_result *ret);

/* Completes an open session whose rule left the configuration (issue 17): closes its current
 * window as `ended`, records its owed alarms as `dropped` (never posted; their number in
 * *RET_DROPPED, may be NULL) and completes it with result rule_removed. Atomic. */
int azi3_store_session_complete_rule_removed(azi3_store *s, int64_t session_id, usec_t completed_usec,
                                             size_t *ret_dropped, session_result *ret);

/* Judges window WINDOW_ID of the session again, on evidence that arrived after it closed
 * (Megazord's history shows activity inside an expired window whose alarm is not posted):
 * deletes the session's later windows, makes WINDOW_ID current again and forgets the events
 * created at or after its since, which the caller then applies again through 8.1 step 2.
 * Atomic; meant for the caller's transaction. -EBUSY if a later window's alarm was posted,
 * -EINVAL if WINDOW_ID is current, posted or of another session. */
int azi3_store_session_rewind(azi3_store *s, int64_t session_id, int64_t window_id);

/* All open sessions, by B then id. *RET is a malloc'ed array (NULL when *RET_N is 0). */
int azi3_store_sessions_list_open(azi3_store *s, azi3_session **ret, size_t *ret_n);

/* The open sessions window-expiration has work for at NOW (8.1 steps 3 and 4): a current window
 * with until <= NOW, an alarm owed, or B <= NOW; by B then id. The others would be read and left
 * as they are. *RET is a malloc'ed array (NULL when *RET_N is 0); *RET_N_OPEN counts every open
 * session (at least *RET_N). */
int azi3_store_sessions_list_due(azi3_store *s, usec_t now, azi3_session **ret, size_t *ret_n, size_t *ret_n_open);

/* Sessions of LOCAL_DAY (NULL: any day) and ROBOT_ID (negative: any robot), by day, robot,
 * rule. *RET is a malloc'ed array (NULL when *RET_N is 0). */
int azi3_store_sessions_list(azi3_store *s, const char *local_day, int64_t robot_id, azi3_session **ret,
                             size_t *ret_n);

/* Deletes completed sessions whose completion is before CUTOFF, with their windows and events.
 * Returns the number of sessions deleted in RET_N (may be NULL). */
int azi3_store_sessions_delete_completed(azi3_store *s, usec_t cutoff, size_t *ret_n);

/* --- windows ----------------------------------------------------------------------------- */

/* The current window of a session. -ENOENT if it has none. */
int azi3_store_window_current(azi3_store *s, int64_t session_id, azi3_window *ret);

/* Opens SPAN as the current window of an open session and gives it its alarm reference id.
 * -EEXIST if the session already has a current window, -ENOENT if there is no such session,
 * -ESTALE if it is completed, -EINVAL if SPAN is empty. RET may be NULL. */
int azi3_store_window_open(azi3_store *s, int64_t session_id, const window_span *span, azi3_window *ret);

/* Closes the current window WINDOW_ID at CLOSED_USEC for REASON; CLOSING_EVENT_ID is the
 * source event that closed it (0: none). The alarm becomes owed iff REASON is EXPIRED.
 * -EALREADY if it is closed, -ENOENT if there is no such window. */
int azi3_store_window_close(azi3_store *s, int64_t window_id, usec_t closed_usec, window_close_reason reason,
                            int64_t closing_event_id);

/* What window-expiration writes with an expired window's close, so a window judged, confirmed
 * and about to be posted costs one statement, not three: VERIFIED_USEC (not 0) as
 * azi3_store_alarm_mark_verified(); CLAIM_OWNER (not NULL) claims the alarm until
 * CLAIM_UNTIL_USEC as azi3_store_alarm_claim() would (the window was current: no one held it). */
typedef struct azi3_alarm_hold {
        usec_t verified_usec;
        const char *claim_owner;
        usec_t claim_until_usec;
} azi3_alarm_hold;

/* Writes a window_transition of window.h for the session: closes CURRENT_WINDOW_ID (if
 * T->close) then opens T->next (if T->open), at AT, for the source event EVENT_ID (0: the
 * expiration step). HOLD (may be NULL) is written with a close as EXPIRED, -EINVAL with any
 * other. Atomic. If a window was opened and RET_OPENED is not NULL, it is filled; returns 1
 * if a window was opened, else 0. The errors of azi3_store_window_close() and
 * azi3_store_window_open(), and -EINVAL if CURRENT_WINDOW_ID belongs to another session. */
int azi3_store_apply_transition(azi3_store *s, int64_t session_id, int64_t current_window_id,
                                const window_transition *t, usec_t at, int64_t event_id,
                                const azi3_alarm_hold *hold, azi3_window *ret_opened);

/* Reads a window by id. -ENOENT if there is none. */
int azi3_store_window_get(azi3_store *s, int64_t window_id, azi3_window *ret);

/* All windows of a session, in time order (since, then id). Malloc'ed array. */
int azi3_store_windows_list(azi3_store *s, int64_t session_id, azi3_window **ret, size_t *ret_n);

/* Windows whose alarm is owed, of SESSION_ID (0: of every session), in the order alarms
 * must be posted: by since, then until, then id. Malloc'ed array. */
int azi3_store_alarms_owed(azi3_store *s, int64_t session_id, azi3_window **ret, size_t *ret_n);

/* Sorts W (N) in azi3_store_alarms_owed()'s order. */
void azi3_windows_sort_by_time(azi3_window *w, size_t n);

/* The windows of a session still in play, read together: the current one (HAS_CURRENT) and
 * the owed alarms in azi3_store_alarms_owed()'s order (OWNED, malloc'ed). */
typedef struct azi3_windows_in_play {
        bool has_current;
        azi3_window current;
        azi3_window *owed;
        size_t n_owed;
} azi3_windows_in_play;

/* Fills RET for SESSION_ID in one statement. Free RET->owed. */
int azi3_store_windows_in_play(azi3_store *s, int64_t session_id, azi3_windows_in_play *ret);

/* Every current window and every window owing an alarm, of all sessions, in one statement:
 * sorted by session, then the owed ones in azi3_store_alarms_owed()'s order, then the current
 * one. For a run that decides what to do for thousands of sessions before it starts. */
int azi3_store_windows_in_play_all(azi3_store *s, azi3_window **ret, size_t *ret_n);

/* Marks an owed alarm as posted at POSTED_USEC as Megazord's event ALARM_EVENT_ID (> 0).
 * -EALREADY if it was already marked (an alarm is never posted twice), -EINVAL if the window
 * owes no alarm, -ENOENT if there is no such window. */
int azi3_store_alarm_mark_posted(azi3_store *s, int64_t window_id, usec_t posted_usec, int64_t alarm_event_id);

/* Claims the owed alarm of WINDOW_ID for OWNER (a name for the logs: the daemon instance)
 * until UNTIL_USEC, before it is posted, so no other process or node posts it meanwhile.
 * Meant outside a transaction: the claim is committed at once. Returns 1 if claimed (also
 * when OWNER held it already), 0 if another owner's claim is live at NOW_USEC (the message
 * of azi3_store_last_error() names it), -EALREADY if it was posted, -EINVAL if the window
 * owes no alarm. A claim whose holder died lapses at its UNTIL_USEC. */
int azi3_store_alarm_claim(azi3_store *s, int64_t window_id, const char *owner, usec_t now_usec, usec_t until_usec);

/* Gives up OWNER's claim on the alarm of WINDOW_ID (its post failed): the next run may post
 * it at once. Nothing happens if OWNER does not hold it. */
int azi3_store_alarm_release(azi3_store *s, int64_t window_id, const char *owner);

/* Records that Megazord's history was read at VERIFIED_USEC and shows no activity inside the
 * owed alarm's window: the alarm may be posted. -EINVAL if the window owes no alarm. */
int azi3_store_alarm_mark_verified(azi3_store *s, int64_t window_id, usec_t verified_usec);

/* Records an owed alarm as too late (issue 17: owed longer than max_alarm_age): never posted.
 * -EINVAL if the window owes no alarm. */
int azi3_store_alarm_mark_too_late(azi3_store *s, int64_t window_id);

/* --- meta ---------------------------------------------------------------------------------- */

/* What the store holds, for the metrics (every session it still retains). */
typedef struct azi3_store_stats {
        size_t sessions_open;
        size_t windows_closed[_WINDOW_CLOSE_REASON_MAX];
        size_t alarms[_WINDOW_ALARM_STATE_MAX]; /* by state; [WINDOW_ALARM_NONE] stays 0 */
        usec_t oldest_owed_until;               /* until of the oldest owed alarm's window; 0: none */
} azi3_store_stats;

int azi3_store_stats_get(azi3_store *s, azi3_store_stats *ret);

/* A small key/value table for facts about the jobs themselves (the daemon instance that last
 * ran, the last SQS receive). Get copies the value into BUF (SIZE bytes, truncated); -ENOENT
 * if the key is not set. Set inserts or replaces. */
int azi3_store_meta_get(azi3_store *s, const char *key, char *buf, size_t size);
int azi3_store_meta_set(azi3_store *s, const char *key, const char *value);

/* --- events ------------------------------------------------------------------------------ */

/* Records that SOURCE_EVENT_ID was handled for a session with OUTCOME (STALE, ACTIVITY or
 * LATE; DUPLICATE is -EINVAL). Returns 1 if recorded, 0 if the event was already recorded
 * for the session (a duplicate: nothing written). -ENOENT if there is no such session. */
int azi3_store_event_record(azi3_store *s, int64_t session_id, int64_t source_event_id, usec_t created_usec,
                            usec_t applied_usec, window_event_outcome outcome);

/* Returns 1 if SOURCE_EVENT_ID was recorded for the session (the model's DUPLICATE input),
 * 0 if not. */
int azi3_store_event_seen(azi3_store *s, int64_t session_id, int64_t source_event_id);

/* All events of a session, by created time then source id. Malloc'ed array. */
int azi3_store_events_list(azi3_store *s, int64_t session_id, azi3_event **ret, size_t *ret_n);

/* --- pending unsubscriptions ------------------------------------------------------------- */

/* Queues the deletion of a subscription, first tried at NEXT_ATTEMPT_USEC. Queuing one that
 * is already queued keeps the existing entry and returns 0; a new entry returns 1. */
int azi3_store_unsubscription_add(azi3_store *s, int64_t robot_id, int64_t subscription_id,
                                  usec_t next_attempt_usec);

/* Records a failed attempt: attempts + 1, the error text, and when to try next. -ENOENT if
 * not queued. */
int azi3_store_unsubscription_failed(azi3_store *s, int64_t robot_id, int64_t subscription_id, const char *error,
                                     usec_t next_attempt_usec);

/* Deletions due at NOW (next_attempt_usec <= NOW; USEC_INFINITY: all), oldest due first.
 * Malloc'ed array. */
int azi3_store_unsubscriptions_due(azi3_store *s, usec_t now, azi3_unsubscription **ret, size_t *ret_n);

/* Removes a queued deletion (it succeeded). -ENOENT if not queued. */
int azi3_store_unsubscription_remove(azi3_store *s, int64_t robot_id, int64_t subscription_id);
