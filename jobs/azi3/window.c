/* SPDX-License-Identifier: MIT */
#include <stdlib.h>

#include "window.h"

static usec_t add_sat(usec_t a, usec_t b) {
        return a > USEC_INFINITY - b ? USEC_INFINITY : a + b;
}

bool window_params_valid(const window_params *p) {
        return p && p->a < p->b && p->w > 0;
}

window_span window_open_at(const window_params *p, usec_t t) {
        return (window_span) { .since = t, .until = MIN(add_sat(t, p->w), p->b) };
}

bool window_span_valid(const window_params *p, const window_span *cur) {
        if (!window_params_valid(p) || !cur)
                return false;
        if (cur->since < p->a || cur->since >= cur->until || cur->until > p->b)
                return false;
        /* Every window this model opens is [t, min(t+W, B)); anything else in a store is
         * corruption, and judging it would give wrong alarms. */
        return cur->until == window_open_at(p, cur->since).until;
}

int window_first(const window_params *p, window_span *ret) {
        if (!window_params_valid(p))
                return -EINVAL;
        *ret = window_open_at(p, p->a);
        return 0;
}

static bool window_full(const window_params *p, const window_span *cur) {
        return cur->until - cur->since == p->w;
}

int window_apply_event(const window_params *p, const window_span *cur, bool duplicate, usec_t e,
                       window_transition *ret) {
        if (!window_params_valid(p) || (cur && !window_span_valid(p, cur)))
                return -EINVAL;

        window_transition t = {};
        window_event_outcome o;

        if (duplicate)
                o = WINDOW_EVENT_DUPLICATE;
        else if (!cur || e < cur->since || e >= p->b)
                o = WINDOW_EVENT_STALE;
        else {
                t.close = true;
                if (e < cur->until) {
                        o = WINDOW_EVENT_ACTIVITY;
                        t.reason = WINDOW_CLOSE_ACTIVITY;
                        t.alarm = WINDOW_ALARM_NONE;
                } else {
                        /* until <= e < B, so until < B and the window is full: an alarm is owed
                         * even though the expiration step never saw it run out. */
                        o = WINDOW_EVENT_LATE;
                        t.reason = WINDOW_CLOSE_EXPIRED;
                        t.alarm = WINDOW_ALARM_OWED;
                }
                t.open = true;
                t.next = window_open_at(p, e);
        }

        *ret = t;
        return (int) o;
}

int window_expire(const window_params *p, const window_span *cur, usec_t now, window_transition *ret) {
        if (!window_params_valid(p) || (cur && !window_span_valid(p, cur)))
                return -EINVAL;

        if (!cur || cur->until > now) {
                *ret = (window_transition) {};
                return 0;
        }

        window_transition t = { .close = true };
        if (window_full(p, cur)) {
                t.reason = WINDOW_CLOSE_EXPIRED;
                t.alarm = WINDOW_ALARM_OWED;
        } else {
                /* window_span_valid() guarantees a short window ends at B. */
                t.reason = WINDOW_CLOSE_ENDED;
                t.alarm = WINDOW_ALARM_NONE;
        }
        if (cur->until < p->b && now < p->b) {
                t.open = true;
                t.next = window_open_at(p, now);
        }

        *ret = t;
        return 1;
}

bool window_due(const window_params *p, const window_span *cur, usec_t settle, usec_t now) {
        bool full = cur->until - cur->since == p->w;

        if (cur->until > now)
                return false;
        if (!full)
                return true;
        return now - cur->until >= settle;
}

bool window_alarm_too_late(const window_span *span, usec_t max_age, usec_t now) {
        return now > span->until && now - span->until > max_age;
}

bool window_owes_alarm(const window_record *r) {
        return r->reason == WINDOW_CLOSE_EXPIRED && r->alarm == WINDOW_ALARM_OWED;
}

size_t window_alarms_owed(const window_record *records, size_t n, size_t *ret_idx) {
        size_t k = 0;

        for (size_t i = 0; i < n; i++) {
                if (!window_owes_alarm(&records[i]))
                        continue;

                /* Insertion sort: a session owes a handful of alarms at most, and a stable
                 * order keeps equal windows (which cannot occur) in input order. */
                size_t j = k;
                while (j > 0) {
                        const window_span *prev = &records[ret_idx[j - 1]].span, *cur = &records[i].span;
                        if (prev->since < cur->since || (prev->since == cur->since && prev->until <= cur->until))
                                break;
                        ret_idx[j] = ret_idx[j - 1];
                        j--;
                }
                ret_idx[j] = i;
                k++;
        }
        return k;
}

bool window_session_complete(const window_params *p, bool has_current, size_t n_owed, usec_t now) {
        return now >= p->b && !has_current && n_owed == 0;
}

session_result window_session_result(size_t n_alarmed) {
        return n_alarmed > 0 ? SESSION_RESULT_ALARMS_RAISED : SESSION_RESULT_NO_ALARMS;
}

session_result window_session_result_full(bool rule_removed, size_t n_activity, size_t n_alarmed,
                                          size_t n_too_late) {
        if (rule_removed)
                return SESSION_RESULT_RULE_REMOVED;
        if (n_activity == 0)
                return SESSION_RESULT_NO_EVENTS;
        if (n_alarmed > 0)
                return SESSION_RESULT_ALARMS_RAISED;
        if (n_too_late > 0)
                return SESSION_RESULT_ALARMS_TOO_LATE;
        return SESSION_RESULT_NO_ALARMS;
}

static const char *const close_reason_table[_WINDOW_CLOSE_REASON_MAX] = {
        [WINDOW_CLOSE_ACTIVITY] = "activity",
        [WINDOW_CLOSE_EXPIRED] = "expired",
        [WINDOW_CLOSE_ENDED] = "ended",
};

static const char *const alarm_state_table[_WINDOW_ALARM_STATE_MAX] = {
        [WINDOW_ALARM_NONE] = "none",
        [WINDOW_ALARM_OWED] = "owed",
        [WINDOW_ALARM_ALARMED] = "alarmed",
        [WINDOW_ALARM_TOO_LATE] = "too_late",
        [WINDOW_ALARM_DROPPED] = "dropped",
};

static const char *const event_outcome_table[_WINDOW_EVENT_OUTCOME_MAX] = {
        [WINDOW_EVENT_DUPLICATE] = "duplicate",
        [WINDOW_EVENT_STALE] = "stale",
        [WINDOW_EVENT_ACTIVITY] = "activity",
        [WINDOW_EVENT_LATE] = "late",
};

static const char *const session_result_table[_SESSION_RESULT_MAX] = {
        [SESSION_RESULT_NO_ALARMS] = "no_alarms",
        [SESSION_RESULT_ALARMS_RAISED] = "alarms_raised",
        [SESSION_RESULT_RULE_REMOVED] = "rule_removed",
        [SESSION_RESULT_NO_EVENTS] = "no_events",
        [SESSION_RESULT_ALARMS_TOO_LATE] = "alarms_too_late",
};

static const char *table_to_string(const char *const *table, size_t n, int v) {
        return v >= 0 && (size_t) v < n ? table[v] : NULL;
}

static int table_from_string(const char *const *table, size_t n, const char *s) {
        if (!s)
                return -EINVAL;
        for (size_t i = 0; i < n; i++)
                if (table[i] && streq(table[i], s))
                        return (int) i;
        return -EINVAL;
}

const char *window_close_reason_to_string(window_close_reason r) {
        return table_to_string(close_reason_table, ELEMENTSOF(close_reason_table), r);
}

window_close_reason window_close_reason_from_string(const char *s) {
        return table_from_string(close_reason_table, ELEMENTSOF(close_reason_table), s);
}

const char *window_alarm_state_to_string(window_alarm_state s) {
        return table_to_string(alarm_state_table, ELEMENTSOF(alarm_state_table), s);
}

window_alarm_state window_alarm_state_from_string(const char *s) {
        return table_from_string(alarm_state_table, ELEMENTSOF(alarm_state_table), s);
}

const char *window_event_outcome_to_string(window_event_outcome o) {
        return table_to_string(event_outcome_table, ELEMENTSOF(event_outcome_table), o);
}

const char *session_result_to_string(session_result r) {
        return table_to_string(session_result_table, ELEMENTSOF(session_result_table), r);
}

session_result session_result_from_string(const char *s) {
        return table_from_string(session_result_table, ELEMENTSOF(session_result_table), s);
}
