/* SPDX-License-Identifier: MIT */
#pragma once

/* The azi-3 window model of SPEC section 8.1, as pure functions: no I/O, no clock, no hidden
 * state. The store holds a session's state (A, B, W, the current window, the closed windows
 * and the applied event ids); these functions only say what a step does to it, as a
 * window_transition the store can persist in one transaction.
 *
 * Decisions the spec implies (or leaves open), fixed here:
 *
 *  - Windows are half-open, [since, until). An event at exactly `until` is therefore not
 *    inside the window: the window ran full without activity, so it closes as `expired`
 *    (8.1 2.4) and [e, min(e+W, B)) opens. An event at exactly B is stale (8.1 2.2).
 *  - A session needs A < B and W > 0 (window_params_valid()). A == B can happen on a DST day
 *    (start and end both inside the spring-forward gap map to the same instant); such a day has
 *    no monitoring at all: monitoring-scheduler never creates it since A <= now < B never holds.
 *  - A session may have no current window: once B has passed, the expiration step closes the
 *    last window and opens none. Every event then is stale (there is no `since` to be at or
 *    after and no window to close); the alarm of the last window, if owed, is unaffected.
 *  - In 8.1 2.4 the closed window is always full: e >= until and e < B imply until < B, so
 *    until == since + W. The gap [until, e) is not monitored: a late event opens its window
 *    at e, never at until.
 *  - The expiration step (8.1 3.1) closes at most one window per run, and that is complete,
 *    not a simplification: the window it opens is [now, min(now+W, B)) whose until is > now,
 *    so running the step again at the same `now` does nothing. If the daemon was down for
 *    hours, the run after it closes the one window that ran out (one alarm, if it was full)
 *    and monitors afresh from `now`; the missed hours in between raise no further alarms.
 *    A window that ran out is judged by the run that sees it, so a delayed event whose time is
 *    before the new window's since (i.e. before that run's now) is stale.
 *  - A window is `full` when until - since == W. A full window that happens to end exactly at
 *    B is full, so it closes as `expired` and owes an alarm; only a window cut short by B
 *    closes as `ended`.
 *  - A session is complete only when now >= B, no window is current and no alarm is owed. The
 *    "no current window" part cannot be false after the expiration step ran at now >= B; it
 *    guards callers that test completion without running the step first.
 *  - Among a session's expired windows, `since` is strictly increasing (each window opens at or
 *    after the previous one's since, and after an expired one strictly after its until), so
 *    (session, since) identifies an expired window; stores may still prefer their own row id.
 */

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>

#include "basic/macro.h"

typedef struct window_params {
        usec_t a; /* session start, UTC */
        usec_t b; /* session end, UTC; exclusive */
        usec_t w; /* window length */
} window_params;

typedef struct window_span {
        usec_t since; /* inclusive */
        usec_t until; /* exclusive */
} window_span;

typedef enum window_close_reason {
        WINDOW_CLOSE_ACTIVITY, /* an event arrived inside it */
        WINDOW_CLOSE_EXPIRED,  /* it ran full without activity: an alarm is owed */
        WINDOW_CLOSE_ENDED,    /* B cut it short: never an alarm */
        _WINDOW_CLOSE_REASON_MAX,
        _WINDOW_CLOSE_REASON_INVALID = -EINVAL,
} window_close_reason;

typedef enum window_alarm_state {
        WINDOW_ALARM_NONE,    /* not an expired window */
        WINDOW_ALARM_OWED,    /* expired, alarm not (successfully) posted yet */
        WINDOW_ALARM_ALARMED, /* expired, alarm posted */
        WINDOW_ALARM_TOO_LATE, /* expired, alarm never posted: it was owed longer than max_alarm_age */
        WINDOW_ALARM_DROPPED,  /* expired, alarm never posted: its rule left the configuration */
        _WINDOW_ALARM_STATE_MAX,
        _WINDOW_ALARM_STATE_INVALID = -EINVAL,
} window_alarm_state;

typedef enum window_event_outcome {
        WINDOW_EVENT_DUPLICATE, /* 8.1 2.1: already applied, nothing changes (not even recorded) */
        WINDOW_EVENT_STALE,     /* 8.1 2.2: recorded as stale, windows unchanged */
        WINDOW_EVENT_ACTIVITY,  /* 8.1 2.3: current closed as activity, new window opened */
        WINDOW_EVENT_LATE,      /* 8.1 2.4: current closed as expired (alarm owed), new window opened */
        _WINDOW_EVENT_OUTCOME_MAX,
        _WINDOW_EVENT_OUTCOME_INVALID = -EINVAL,
} window_event_outcome;

typedef enum session_result {
        SESSION_RESULT_NO_ALARMS,
        SESSION_RESULT_ALARMS_RAISED,
        SESSION_RESULT_RULE_REMOVED,    /* the rule left the configuration while the session was open */
        SESSION_RESULT_NO_EVENTS,       /* not one activity event between A and B: a quiet resident or an
                                         * offline robot or sensor; Megazord cannot tell which */
        SESSION_RESULT_ALARMS_TOO_LATE, /* alarms were owed but none could be posted in time */
        _SESSION_RESULT_MAX,
        _SESSION_RESULT_INVALID = -EINVAL,
} session_result;

/* What one step does to a session. Apply `close` before `open`: the closed window is the
 * current one, the opened window becomes current. */
typedef struct window_transition {
        bool close;                 /* the current window is closed ... */
        window_close_reason reason; /* ... for this reason (valid when close) */
        window_alarm_state alarm;   /* alarm state of the closed window: OWED iff reason is EXPIRED */
        bool open;                  /* a new current window is opened: */
        window_span next;           /* (valid when open) */
} window_transition;

/* A closed window as a store keeps it, for window_alarms_owed(). */
typedef struct window_record {
        window_span span;
        window_close_reason reason;
        window_alarm_state alarm;
} window_record;

/* True if P describes a session that can hold windows: A < B and W > 0. */
bool window_params_valid(const window_params *p) _pure_;

/* True if CUR is a window that this session's rules can produce: A <= since < until <= B and
 * until == min(since + W, B). */
bool window_span_valid(const window_params *p, const window_span *cur) _pure_;

/* 8.1 step 1: the first window, [A, min(A+W, B)). Returns 0, or -EINVAL if P is not valid. */
int window_first(const window_params *p, window_span *ret);

/* The window opened at instant T (T < B): [T, min(T+W, B)). Saturates instead of overflowing. */
window_span window_open_at(const window_params *p, usec_t t) _pure_;

/* 8.1 step 2: applies an activity event with time E (its createdAt) to a session whose current
 * window is CUR (NULL if it has none). DUPLICATE says the store already holds the event's
 * source id; it is checked first, as the spec orders. Returns the outcome (>= 0) and fills
 * *ret (close/open both false for DUPLICATE and STALE), or -EINVAL if P or CUR is not valid. */
int window_apply_event(const window_params *p, const window_span *cur, bool duplicate, usec_t e,
                       window_transition *ret);

/* Whether the expiration step may judge CUR at NOW: a full window (one that can owe an alarm)
 * only once SETTLE has passed after its until, so a late delivery of an event inside it still
 * closes it as activity; a window cut short by B (never an alarm) as soon as it ran out. */
bool window_due(const window_params *p, const window_span *cur, usec_t settle, usec_t now) _pure_;

/* Whether an alarm owed for window SPAN is too late to post at NOW: its window ended more
 * than MAX_AGE ago. */
bool window_alarm_too_late(const window_span *span, usec_t max_age, usec_t now) _pure_;

/* 8.1 step 3.1: the expiration step at logical time NOW for a session whose current window is
 * CUR (NULL if none). Returns 1 and fills *ret if the current window closes (and maybe a new
 * one opens), 0 if nothing changes (*ret is then zeroed), -EINVAL if P or CUR is not valid. */
int window_expire(const window_params *p, const window_span *cur, usec_t now, window_transition *ret);

/* True if R is an expired window whose alarm has not been posted (8.1 3.2). */
bool window_owes_alarm(const window_record *r) _pure_;

/* 8.1 step 3.2: writes to RET_IDX the indexes into RECORDS (N entries, any order) of the
 * windows that owe an alarm, in the order the alarms must be posted (by since, then until).
 * RET_IDX must have room for N entries. Returns how many were written. */
size_t window_alarms_owed(const window_record *records, size_t n, size_t *ret_idx);

/* 8.1 step 4: true if the session is complete at NOW: now >= B, no current window
 * (HAS_CURRENT false) and N_OWED alarms owed is 0. */
bool window_session_complete(const window_params *p, bool has_current, size_t n_owed, usec_t now) _pure_;

/* 8.1 step 4: the result of a completed session that posted N_ALARMED alarms. */
session_result window_session_result(size_t n_alarmed) _pure_;

/* The result of a completed session, in this order: RULE_REMOVED if it was completed because
 * its rule left the configuration; NO_EVENTS if not one activity event was applied to it
 * (N_ACTIVITY counts events that closed a window, in time or late); ALARMS_RAISED if an alarm
 * was posted; ALARMS_TOO_LATE if alarms were owed but all too late; else NO_ALARMS. */
session_result window_session_result_full(bool rule_removed, size_t n_activity, size_t n_alarmed,
                                          size_t n_too_late) _pure_;

/* Names as stored and logged ("activity", "expired", "ended"; "none", "owed", "alarmed",
 * "too_late"; "duplicate", "stale", "activity", "late"; "no_alarms", "alarms_raised",
 * "rule_removed", "no_events", "alarms_too_late"). The to_string
 * functions return NULL for values out of range; from_string returns the value or -EINVAL. */
const char *window_close_reason_to_string(window_close_reason r) _pure_;
window_close_reason window_close_reason_from_string(const char *s) _pure_;
const char *window_alarm_state_to_string(window_alarm_state s) _pure_;
window_alarm_state window_alarm_state_from_string(const char *s) _pure_;
const char *window_event_outcome_to_string(window_event_outcome o) _pure_;
const char *session_result_to_string(session_result r) _pure_;
session_result session_result_from_string(const char *s) _pure_;
