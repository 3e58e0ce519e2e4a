/* SPDX-License-Identifier: MIT */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>

#include "azi3/window.h"

/* 2026-03-29T00:00:00Z, so instants in failures read as plausible dates. */
#define BASE ((usec_t) 1774742400ULL * USEC_PER_SEC)
#define M(x) (BASE + (usec_t) (x) * USEC_PER_MINUTE)

/* A = 07:00, B = 22:00, W = 2h, in minutes after BASE. */
static const window_params day = { .a = M(7 * 60), .b = M(22 * 60), .w = 120 * USEC_PER_MINUTE };

static window_span span(usec_t since, usec_t until) {
        return (window_span) { .since = since, .until = until };
}

#define ck_assert_span(s, since_, until_)                     \
        do {                                                  \
                ck_assert_uint_eq((s).since, (since_));       \
                ck_assert_uint_eq((s).until, (until_));       \
        } while (0)

/* ---- step 1 ---------------------------------------------------------------------------- */

START_TEST(test_first_window_full) {
        window_span s;
        ck_assert_int_eq(window_first(&day, &s), 0);
        ck_assert_span(s, M(420), M(540));
}
END_TEST

START_TEST(test_first_window_cut_by_b) {
        window_params p = { .a = M(0), .b = M(90), .w = 120 * USEC_PER_MINUTE };
        window_span s;
        ck_assert_int_eq(window_first(&p, &s), 0);
        ck_assert_span(s, M(0), M(90));
}
END_TEST

START_TEST(test_first_window_invalid_params) {
        window_span s = span(1, 2);
        window_params empty = { .a = M(10), .b = M(10), .w = USEC_PER_HOUR };
        window_params reversed = { .a = M(10), .b = M(5), .w = USEC_PER_HOUR };
        window_params zero_w = { .a = M(0), .b = M(10), .w = 0 };
        ck_assert_int_eq(window_first(&empty, &s), -EINVAL);
        ck_assert_int_eq(window_first(&reversed, &s), -EINVAL);
        ck_assert_int_eq(window_first(&zero_w, &s), -EINVAL);
        /* out-parameter untouched on failure */
        ck_assert_span(s, 1, 2);
}
END_TEST

START_TEST(test_first_window_huge_w_saturates) {
        window_params p = { .a = M(0), .b = M(10), .w = USEC_INFINITY - 5 };
        window_span s;
        ck_assert_int_eq(window_first(&p, &s), 0);
        ck_assert_span(s, M(0), M(10));
}
END_TEST

/* ---- step 2 ---------------------------------------------------------------------------- */

START_TEST(test_event_inside_is_activity) {
        window_span cur = span(M(420), M(540));
        window_transition t;
        ck_assert_int_eq(window_apply_event(&day, &cur, false, M(461), &t), WINDOW_EVENT_ACTIVITY);
        ck_assert(t.close);
        ck_assert_int_eq(t.reason, WINDOW_CLOSE_ACTIVITY);
        ck_assert_int_eq(t.alarm, WINDOW_ALARM_NONE);
        ck_assert(t.open);
        ck_assert_span(t.next, M(461), M(581));
}
END_TEST

START_TEST(test_event_at_since_is_activity) {
        window_span cur = span(M(420), M(540));
        window_transition t;
        ck_assert_int_eq(window_apply_event(&day, &cur, false, M(420), &t), WINDOW_EVENT_ACTIVITY);
        ck_assert_span(t.next, M(420), M(540));
}
END_TEST

START_TEST(test_event_just_before_until_is_activity) {
        window_span cur = span(M(420), M(540));
        window_transition t;
        ck_assert_int_eq(window_apply_event(&day, &cur, false, M(540) - 1, &t), WINDOW_EVENT_ACTIVITY);
        ck_assert_span(t.next, M(540) - 1, M(660) - 1);
}
END_TEST

START_TEST(test_event_at_until_is_late) {
        window_span cur = span(M(420), M(540));
        window_transition t;
        ck_assert_int_eq(window_apply_event(&day, &cur, false, M(540), &t), WINDOW_EVENT_LATE);
        ck_assert(t.close);
        ck_assert_int_eq(t.reason, WINDOW_CLOSE_EXPIRED);
        ck_assert_int_eq(t.alarm, WINDOW_ALARM_OWED);
        ck_assert(t.open);
        ck_assert_span(t.next, M(540), M(660));
}
END_TEST

START_TEST(test_event_after_until_opens_at_e) {
        window_span cur = span(M(420), M(540));
        window_transition t;
        ck_assert_int_eq(window_apply_event(&day, &cur, false, M(700), &t), WINDOW_EVENT_LATE);
        ck_assert_int_eq(t.reason, WINDOW_CLOSE_EXPIRED);
        /* at e, not at the old until */
        ck_assert_span(t.next, M(700), M(820));
}
END_TEST

START_TEST(test_event_new_window_cut_by_b) {
        window_span cur = span(M(1200), M(1320));
        window_transition t;
        ck_assert_int_eq(window_apply_event(&day, &cur, false, M(1250), &t), WINDOW_EVENT_ACTIVITY);
        ck_assert_span(t.next, M(1250), M(1320));
        cur = span(M(1100), M(1220));
        ck_assert_int_eq(window_apply_event(&day, &cur, false, M(1300), &t), WINDOW_EVENT_LATE);
        ck_assert_span(t.next, M(1300), M(1320));
}
END_TEST

START_TEST(test_event_before_since_is_stale) {
        window_span cur = span(M(500), M(620));
        window_transition t = { .close = true, .open = true };
        ck_assert_int_eq(window_apply_event(&day, &cur, false, M(499), &t), WINDOW_EVENT_STALE);
        ck_assert(!t.close);
        ck_assert(!t.open);
        /* before A as well */
        ck_assert_int_eq(window_apply_event(&day, &cur, false, M(60), &t), WINDOW_EVENT_STALE);
}
END_TEST

START_TEST(test_event_at_or_after_b_is_stale) {
        window_span cur = span(M(1250), M(1320));
        window_transition t;
        ck_assert_int_eq(window_apply_event(&day, &cur, false, M(1320), &t), WINDOW_EVENT_STALE);
        ck_assert(!t.close);
        ck_assert_int_eq(window_apply_event(&day, &cur, false, M(1500), &t), WINDOW_EVENT_STALE);
        ck_assert(!t.close);
        /* a full window ending before B: an event at B is still stale, not late */
        cur = span(M(1100), M(1220));
        ck_assert_int_eq(window_apply_event(&day, &cur, false, M(1320), &t), WINDOW_EVENT_STALE);
}
END_TEST

START_TEST(test_event_without_current_window_is_stale) {
        window_transition t;
        ck_assert_int_eq(window_apply_event(&day, NULL, false, M(800), &t), WINDOW_EVENT_STALE);
        ck_assert(!t.close);
        ck_assert(!t.open);
}
END_TEST

START_TEST(test_event_duplicate_checked_first) {
        window_span cur = span(M(420), M(540));
        window_transition t;
        /* would be activity, late and stale respectively if it were new */
        ck_assert_int_eq(window_apply_event(&day, &cur, true, M(461), &t), WINDOW_EVENT_DUPLICATE);
        ck_assert(!t.close && !t.open);
        ck_assert_int_eq(window_apply_event(&day, &cur, true, M(700), &t), WINDOW_EVENT_DUPLICATE);
        ck_assert_int_eq(window_apply_event(&day, &cur, true, M(60), &t), WINDOW_EVENT_DUPLICATE);
        ck_assert_int_eq(window_apply_event(&day, NULL, true, M(60), &t), WINDOW_EVENT_DUPLICATE);
}
END_TEST

START_TEST(test_event_rejects_invalid_window) {
        window_transition t;
        window_span bad[] = {
                span(M(400), M(520)),  /* before A */
                span(M(500), M(500)),  /* empty */
                span(M(500), M(600)),  /* neither full nor cut by B */
                span(M(1300), M(1330)), /* past B */
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                ck_assert_int_eq(window_apply_event(&day, &bad[i], false, M(510), &t), -EINVAL);
                ck_assert_int_eq(window_expire(&day, &bad[i], M(2000), &t), -EINVAL);
        }
}
END_TEST

/* ---- step 3 ---------------------------------------------------------------------------- */

START_TEST(test_expire_not_yet) {
        window_span cur = span(M(420), M(540));
        window_transition t = { .close = true };
        ck_assert_int_eq(window_expire(&day, &cur, M(540) - 1, &t), 0);
        ck_assert(!t.close && !t.open);
}
END_TEST

START_TEST(test_expire_full_window_at_until) {
        window_span cur = span(M(420), M(540));
        window_transition t;
        ck_assert_int_eq(window_expire(&day, &cur, M(540), &t), 1);
        ck_assert(t.close);
        ck_assert_int_eq(t.reason, WINDOW_CLOSE_EXPIRED);
        ck_assert_int_eq(t.alarm, WINDOW_ALARM_OWED);
        ck_assert(t.open);
        ck_assert_span(t.next, M(540), M(660));
}
END_TEST

START_TEST(test_expire_opens_at_now) {
        window_span cur = span(M(420), M(540));
        window_transition t;
        ck_assert_int_eq(window_expire(&day, &cur, M(541), &t), 1);
        ck_assert_span(t.next, M(541), M(661));
        ck_assert_int_eq(window_expire(&day, &cur, M(1250), &t), 1);
        ck_assert_span(t.next, M(1250), M(1320));
}
END_TEST

START_TEST(test_expire_is_idempotent_at_same_now) {
        window_span cur = span(M(420), M(540));
        window_transition t;
        /* daemon down from 09:00 to 15:00: one window closes, one alarm, monitoring resumes */
        ck_assert_int_eq(window_expire(&day, &cur, M(900), &t), 1);
        ck_assert_int_eq(t.reason, WINDOW_CLOSE_EXPIRED);
        window_span next = t.next;
        ck_assert_span(next, M(900), M(1020));
        ck_assert_int_eq(window_expire(&day, &next, M(900), &t), 0);
}
END_TEST

START_TEST(test_expire_cut_short_is_ended) {
        window_span cur = span(M(1250), M(1320));
        window_transition t;
        ck_assert_int_eq(window_expire(&day, &cur, M(1320), &t), 1);
        ck_assert_int_eq(t.reason, WINDOW_CLOSE_ENDED);
        ck_assert_int_eq(t.alarm, WINDOW_ALARM_NONE);
        ck_assert(!t.open);
}
END_TEST

START_TEST(test_expire_full_window_ending_at_b) {
        window_span cur = span(M(1200), M(1320));
        window_transition t;
        ck_assert_int_eq(window_expire(&day, &cur, M(1400), &t), 1);
        ck_assert_int_eq(t.reason, WINDOW_CLOSE_EXPIRED);
        ck_assert_int_eq(t.alarm, WINDOW_ALARM_OWED);
        ck_assert(!t.open);
}
END_TEST

START_TEST(test_expire_after_b_opens_nothing) {
        window_span cur = span(M(1000), M(1120));
        window_transition t;
        ck_assert_int_eq(window_expire(&day, &cur, M(1320), &t), 1);
        ck_assert_int_eq(t.reason, WINDOW_CLOSE_EXPIRED);
        ck_assert(!t.open);
        ck_assert_int_eq(window_expire(&day, NULL, M(1320), &t), 0);
}
END_TEST

START_TEST(test_alarms_owed_in_time_order) {
        window_record r[] = {
                { span(M(900), M(1020)), WINDOW_CLOSE_EXPIRED, WINDOW_ALARM_OWED },
                { span(M(420), M(540)), WINDOW_CLOSE_EXPIRED, WINDOW_ALARM_OWED },
                { span(M(541), M(600)), WINDOW_CLOSE_ACTIVITY, WINDOW_ALARM_NONE },
                { span(M(600), M(720)), WINDOW_CLOSE_EXPIRED, WINDOW_ALARM_ALARMED },
                { span(M(1250), M(1320)), WINDOW_CLOSE_ENDED, WINDOW_ALARM_NONE },
                { span(M(720), M(840)), WINDOW_CLOSE_EXPIRED, WINDOW_ALARM_OWED },
        };
        size_t idx[ELEMENTSOF(r)];
        ck_assert_uint_eq(window_alarms_owed(r, ELEMENTSOF(r), idx), 3);
        ck_assert_uint_eq(idx[0], 1);
        ck_assert_uint_eq(idx[1], 5);
        ck_assert_uint_eq(idx[2], 0);
        ck_assert_uint_eq(window_alarms_owed(r, 0, idx), 0);
}
END_TEST

/* ---- step 4 ---------------------------------------------------------------------------- */

START_TEST(test_complete_conditions) {
        ck_assert(!window_session_complete(&day, false, 0, day.b - 1));
        ck_assert(window_session_complete(&day, false, 0, day.b));
        ck_assert(!window_session_complete(&day, false, 1, day.b + USEC_PER_HOUR));
        ck_assert(!window_session_complete(&day, true, 0, day.b + USEC_PER_HOUR));
}
END_TEST

START_TEST(test_complete_result) {
        ck_assert_int_eq(window_session_result(0), SESSION_RESULT_NO_ALARMS);
        ck_assert_int_eq(window_session_result(1), SESSION_RESULT_ALARMS_RAISED);
        ck_assert_int_eq(window_session_result(7), SESSION_RESULT_ALARMS_RAISED);
}
END_TEST

START_TEST(test_names_round_trip) {
        for (int i = 0; i < _WINDOW_CLOSE_REASON_MAX; i++)
                ck_assert_int_eq(window_close_reason_from_string(window_close_reason_to_string(i)), i);
        for (int i = 0; i < _WINDOW_ALARM_STATE_MAX; i++)
                ck_assert_int_eq(window_alarm_state_from_string(window_alarm_state_to_string(i)), i);
        for (int i = 0; i < _SESSION_RESULT_MAX; i++)
                ck_assert_int_eq(session_result_from_string(session_result_to_string(i)), i);
        ck_assert_str_eq(window_close_reason_to_string(WINDOW_CLOSE_EXPIRED), "expired");
        ck_assert_str_eq(window_alarm_state_to_string(WINDOW_ALARM_ALARMED), "alarmed");
        ck_assert_str_eq(session_result_to_string(SESSION_RESULT_ALARMS_RAISED), "alarms_raised");
        ck_assert_str_eq(window_event_outcome_to_string(WINDOW_EVENT_LATE), "late");
        ck_assert_ptr_null(window_close_reason_to_string(_WINDOW_CLOSE_REASON_MAX));
        ck_assert_ptr_null(window_event_outcome_to_string(-1));
        ck_assert_int_eq(window_close_reason_from_string("closed"), -EINVAL);
        ck_assert_int_eq(session_result_from_string(NULL), -EINVAL);
}
END_TEST

/* ---- a whole day through the model ------------------------------------------------------ */

/* Check's ck_assert records a checkpoint per call (a write to its pipe); in the hot loops of
 * the randomized test that costs more than the test itself, so only fail through it. */
#define REQUIRE(cond, ...)                                       \
        do {                                                     \
                if (!(cond))                                     \
                        ck_abort_msg("" __VA_ARGS__);            \
        } while (0)

/* A session as a store would keep it, driven only through the model's transitions. */
#define MAX_WINDOWS 512
#define MAX_EVENTS 256

typedef struct model_session {
        window_params p;
        bool has_current;
        window_span current;
        window_record closed[MAX_WINDOWS];
        size_t n_closed;
        unsigned applied[MAX_EVENTS];
        size_t n_applied;
        size_t n_alarmed;
} model_session;

static void model_apply(model_session *s, const window_transition *t) {
        if (t->close) {
                REQUIRE(s->has_current, "%s", "no current window to close");
                REQUIRE(s->n_closed < MAX_WINDOWS, "%s", "overflow");
                s->closed[s->n_closed++] = (window_record) { s->current, t->reason, t->alarm };
                s->has_current = false;
        }
        if (t->open) {
                s->current = t->next;
                s->has_current = true;
        }
}

static int model_event(model_session *s, unsigned id, usec_t e) {
        bool dup = false;
        window_transition t;
        for (size_t i = 0; i < s->n_applied; i++)
                dup = dup || s->applied[i] == id;
        int r = window_apply_event(&s->p, s->has_current ? &s->current : NULL, dup, e, &t);
        REQUIRE(r >= 0, "model returned %d", r);
        if (!dup) {
                REQUIRE(s->n_applied < MAX_EVENTS, "%s", "overflow");
                s->applied[s->n_applied++] = id;
        }
        model_apply(s, &t);
        return r;
}

/* Expiration run: step 3.1, then 3.2 posting owed alarms in order until one fails
 * (FAIL_MASK bit k: the k-th post attempt of this run fails). Returns the owed count left. */
static size_t model_expire(model_session *s, usec_t now, unsigned fail_mask, unsigned rnd) {
        window_transition t;
        int r = window_expire(&s->p, s->has_current ? &s->current : NULL, now, &t);
        REQUIRE(r >= 0, "model returned %d", r);
        model_apply(s, &t);

        /* hand the model the records in a scrambled order: it must sort them itself */
        window_record shuffled[MAX_WINDOWS];
        size_t map[MAX_WINDOWS], idx[MAX_WINDOWS];
        for (size_t i = 0; i < s->n_closed; i++)
                map[i] = i;
        for (size_t i = s->n_closed; i > 1; i--) {
                rnd = rnd * 1103515245u + 12345u;
                size_t j = (rnd >> 8) % i, tmp = map[i - 1];
                map[i - 1] = map[j];
                map[j] = tmp;
        }
        for (size_t i = 0; i < s->n_closed; i++)
                shuffled[i] = s->closed[map[i]];

        size_t n = window_alarms_owed(shuffled, s->n_closed, idx);
        size_t left = n;
        for (size_t k = 0; k < n; k++) {
                if (fail_mask & (1u << (k % 32)))
                        break;
                window_record *w = &s->closed[map[idx[k]]];
                REQUIRE(w->alarm == WINDOW_ALARM_OWED, "%s", "not owed");
                w->alarm = WINDOW_ALARM_ALARMED;
                s->n_alarmed++;
                left--;
        }
        return left;
}

START_TEST(test_whole_day_scenario) {
        model_session s = { .p = day };
        ck_assert_int_eq(window_first(&s.p, &s.current), 0);
        s.has_current = true;

        ck_assert_int_eq(model_event(&s, 1, M(450)), WINDOW_EVENT_ACTIVITY);   /* [07:30, 09:30) */
        ck_assert_int_eq(model_event(&s, 1, M(450)), WINDOW_EVENT_DUPLICATE);
        ck_assert_uint_eq(model_expire(&s, M(570), 0, 1), 0);                  /* 09:30: expired, alarm posted */
        ck_assert_span(s.current, M(570), M(690));
        ck_assert_int_eq(model_event(&s, 2, M(560)), WINDOW_EVENT_STALE);      /* before 09:30 */
        ck_assert_int_eq(model_event(&s, 3, M(700)), WINDOW_EVENT_LATE);       /* 11:40, expiration missed 11:30 */
        ck_assert_uint_eq(model_expire(&s, M(701), 1, 2), 1);                  /* post fails: still owed */
        ck_assert_uint_eq(model_expire(&s, M(702), 0, 3), 0);
        ck_assert_int_eq(model_event(&s, 4, M(1250)), WINDOW_EVENT_LATE);      /* 20:50 -> [20:50, 22:00) */
        ck_assert_span(s.current, M(1250), M(1320));
        ck_assert_uint_eq(model_expire(&s, M(1320), 0, 4), 0);
        ck_assert(!s.has_current);
        ck_assert_int_eq(s.closed[s.n_closed - 1].reason, WINDOW_CLOSE_ENDED);
        ck_assert(window_session_complete(&s.p, s.has_current, 0, M(1320)));
        ck_assert_uint_eq(s.n_alarmed, 3);
        ck_assert_int_eq(window_session_result(s.n_alarmed), SESSION_RESULT_ALARMS_RAISED);
        ck_assert_int_eq(model_event(&s, 5, M(1300)), WINDOW_EVENT_STALE);
}
END_TEST

START_TEST(test_quiet_day_no_alarms) {
        model_session s = { .p = day };
        ck_assert_int_eq(window_first(&s.p, &s.current), 0);
        s.has_current = true;
        /* an event every 90 minutes keeps every window alive */
        for (unsigned i = 0; i * 90 + 450 < 1320; i++) {
                ck_assert_uint_eq(model_expire(&s, M(i * 90 + 449), 0, i), 0);
                ck_assert_int_eq(model_event(&s, i, M(i * 90 + 450)), WINDOW_EVENT_ACTIVITY);
        }
        ck_assert(!window_session_complete(&s.p, s.has_current, 0, M(1319)));
        ck_assert_uint_eq(model_expire(&s, M(1321), 0, 99), 0);
        ck_assert(window_session_complete(&s.p, s.has_current, 0, M(1321)));
        ck_assert_int_eq(window_session_result(s.n_alarmed), SESSION_RESULT_NO_ALARMS);
}
END_TEST

/* ---- randomized comparison against an independent simulation --------------------------- */

/* The reference keeps the current window as the set of minutes it covers, and decides
 * everything by looking at minutes, not by comparing interval ends. Minute m covers
 * [m, m+1); all times in this test are whole minutes. */
#define DAYMIN 2000

typedef struct ref_window {
        int first, end; /* minutes [first, end) */
        int reason;     /* 0 activity 1 expired 2 ended */
        bool alarmed;
} ref_window;

typedef struct ref_session {
        int a, b, w;
        bool cover[DAYMIN];
        bool has_current;
        ref_window closed[MAX_WINDOWS];
        int n_closed;
        unsigned seen[MAX_EVENTS];
        int n_seen;
        int n_alarmed;
} ref_session;

/* Minutes outside [A, B) are never covered, so scans stay within the day. */
static void ref_clear(ref_session *s) {
        for (int m = s->a; m < s->b; m++)
                s->cover[m] = false;
}

static void ref_open(ref_session *s, int at) {
        ref_clear(s);
        for (int k = 0; k < s->w && at + k < s->b; k++)
                s->cover[at + k] = true;
        s->has_current = true;
}

static int ref_first_minute(const ref_session *s) {
        for (int m = s->a; m < s->b; m++)
                if (s->cover[m])
                        return m;
        return -1;
}

static int ref_minutes(const ref_session *s) {
        int n = 0;
        for (int m = s->a; m < s->b; m++)
                n += s->cover[m];
        return n;
}

static void ref_close(ref_session *s, int reason) {
        int first = ref_first_minute(s);
        s->closed[s->n_closed++] = (ref_window) { first, first + ref_minutes(s), reason, false };
        ref_clear(s);
        s->has_current = false;
}

static int ref_event(ref_session *s, unsigned id, int e) {
        for (int i = 0; i < s->n_seen; i++)
                if (s->seen[i] == id)
                        return WINDOW_EVENT_DUPLICATE;
        s->seen[s->n_seen++] = id;

        if (!s->has_current || e >= s->b || e < ref_first_minute(s))
                return WINDOW_EVENT_STALE;
        if (s->cover[e]) {
                ref_close(s, 0);
                ref_open(s, e);
                return WINDOW_EVENT_ACTIVITY;
        }
        ref_close(s, 1);
        ref_open(s, e);
        return WINDOW_EVENT_LATE;
}

static int ref_owed(const ref_session *s) {
        int n = 0;
        for (int i = 0; i < s->n_closed; i++)
                n += s->closed[i].reason == 1 && !s->closed[i].alarmed;
        return n;
}

static void ref_expire(ref_session *s, int now, unsigned fail_mask) {
        if (s->has_current) {
                /* ran out: no covered minute at or after now */
                bool live = false;
                for (int m = now; m < s->b && !live; m++)
                        live = s->cover[m];
                if (!live) {
                        bool full = ref_minutes(s) == s->w;
                        bool reached_b = s->cover[s->b - 1];
                        ref_close(s, full ? 1 : 2);
                        if (!reached_b && now < s->b)
                                ref_open(s, now);
                }
        }
        /* closed[] is in the order windows closed, which is time order */
        unsigned k = 0;
        for (int i = 0; i < s->n_closed; i++) {
                if (s->closed[i].reason != 1 || s->closed[i].alarmed)
                        continue;
                if (fail_mask & (1u << (k++ % 32)))
                        break;
                s->closed[i].alarmed = true;
                s->n_alarmed++;
        }
}

static unsigned rng_state;

static unsigned rnd(unsigned n) {
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 17;
        rng_state ^= rng_state << 5;
        return rng_state % n;
}

static void compare(const model_session *m, const ref_session *r, unsigned seed, int step) {
        REQUIRE(m->has_current == r->has_current, "seed %u step %d: current window", seed, step);
        if (m->has_current) {
                int first = ref_first_minute(r);
                REQUIRE(m->current.since == M(first) && m->current.until == M(first + ref_minutes(r)),
                              "seed %u step %d: current window differs", seed, step);
        }
        REQUIRE((int) m->n_closed == r->n_closed, "seed %u step %d: %zu closed vs %d", seed, step,
                      m->n_closed, r->n_closed);
        for (int i = 0; i < r->n_closed; i++) {
                const window_record *w = &m->closed[i];
                const ref_window *x = &r->closed[i];
                REQUIRE(w->span.since == M(x->first) && w->span.until == M(x->end),
                              "seed %u step %d: window %d span", seed, step, i);
                REQUIRE((int) w->reason == x->reason, "seed %u step %d: window %d reason %d vs %d", seed,
                              step, i, (int) w->reason, x->reason);
                REQUIRE((w->alarm == WINDOW_ALARM_ALARMED) == x->alarmed, "seed %u step %d: window %d alarm",
                              seed, step, i);
        }
        REQUIRE((int) m->n_alarmed == r->n_alarmed, "seed %u step %d: %zu alarms vs %d", seed, step, m->n_alarmed,
                r->n_alarmed);
}

START_TEST(test_random_against_reference) {
        unsigned n_late = 0, n_activity = 0, n_stale = 0, n_ended = 0, n_complete = 0;

        for (unsigned seed = 1; seed <= 3000; seed++) {
                rng_state = seed * 2654435761u;
                int a = 60 + (int) rnd(600);
                int b = a + 1 + (int) rnd(rnd(2) ? 300 : 1200);
                int w = 1 + (int) rnd(rnd(4) ? 180 : 15);

                static model_session ms;
                static ref_session rs;
                memset(&ms, 0, sizeof(ms));
                memset(&rs, 0, sizeof(rs));
                ms.p = (window_params) { M(a), M(b), (usec_t) w * USEC_PER_MINUTE };
                rs.a = a, rs.b = b, rs.w = w;
                REQUIRE(window_first(&ms.p, &ms.current) == 0, "seed %u: first window", seed);
                ms.has_current = true;
                ref_open(&rs, a);

                int now = a + (int) rnd(30);
                int steps = 1 + (int) rnd(80);
                for (int step = 0; step < steps; step++) {
                        if (rnd(3) == 0) {
                                now += (int) rnd(rnd(5) ? 30 : 400);
                                if (now >= DAYMIN - 1)
                                        now = DAYMIN - 1;
                                unsigned fail = rnd(4) == 0 ? (unsigned) rnd(8) : 0;
                                size_t left = model_expire(&ms, M(now), fail, seed + (unsigned) step);
                                ref_expire(&rs, now, fail);
                                REQUIRE((int) left == ref_owed(&rs), "seed %u step %d: owed %zu vs %d", seed, step, left,
                                        ref_owed(&rs));
                                bool done = window_session_complete(&ms.p, ms.has_current, left, M(now));
                                REQUIRE(done == (now >= rs.b && !rs.has_current && ref_owed(&rs) == 0),
                                        "seed %u step %d: completion", seed, step);
                                n_complete += done;
                        } else {
                                /* events mostly near now, some old, some from the future, some repeated */
                                unsigned id = rnd(2) ? (unsigned) (seed * 1000 + (unsigned) step) : rnd(40);
                                int e = now - (int) rnd(240) + (int) rnd(rnd(6) ? 10 : 300);
                                if (e < 0)
                                        e = 0;
                                if (e >= DAYMIN)
                                        e = DAYMIN - 1;
                                int mo = model_event(&ms, id, M(e));
                                int ro = ref_event(&rs, id, e);
                                REQUIRE(mo == ro, "seed %u step %d: event at %d: model %s, reference %s", seed,
                                              step, e, window_event_outcome_to_string(mo),
                                              window_event_outcome_to_string(ro));
                                n_late += mo == WINDOW_EVENT_LATE;
                                n_activity += mo == WINDOW_EVENT_ACTIVITY;
                                n_stale += mo == WINDOW_EVENT_STALE;
                        }
                        compare(&ms, &rs, seed, step);
                }
                for (size_t i = 0; i < ms.n_closed; i++)
                        n_ended += ms.closed[i].reason == WINDOW_CLOSE_ENDED;
        }

        /* the generator must actually reach every branch, or the comparison proves little */
        ck_assert_uint_gt(n_late, 100);
        ck_assert_uint_gt(n_activity, 100);
        ck_assert_uint_gt(n_stale, 100);
        ck_assert_uint_gt(n_ended, 100);
        ck_assert_uint_gt(n_complete, 100);
}
END_TEST


/* Issue 17: when a window may be judged, when an alarm is too late, and a session's result. */
START_TEST(test_due_after_settle) {
        window_span full = { M(8 * 60), M(10 * 60) }, cut = { M(21 * 60), M(22 * 60) };
        usec_t settle = 30 * USEC_PER_SEC;

        ck_assert(!window_due(&day, &full, settle, M(10 * 60) - 1));
        ck_assert(!window_due(&day, &full, settle, M(10 * 60)));
        ck_assert(!window_due(&day, &full, settle, M(10 * 60) + settle - 1));
        ck_assert(window_due(&day, &full, settle, M(10 * 60) + settle));
        ck_assert(window_due(&day, &full, 0, M(10 * 60)));
        /* cut short by B: no alarm at stake, due at once */
        ck_assert(!window_due(&day, &cut, settle, M(22 * 60) - 1));
        ck_assert(window_due(&day, &cut, settle, M(22 * 60)));
}
END_TEST

START_TEST(test_alarm_too_late) {
        window_span w = { M(8 * 60), M(10 * 60) };

        ck_assert(!window_alarm_too_late(&w, USEC_PER_HOUR, M(10 * 60)));
        ck_assert(!window_alarm_too_late(&w, USEC_PER_HOUR, M(11 * 60)));
        ck_assert(window_alarm_too_late(&w, USEC_PER_HOUR, M(11 * 60) + 1));
        ck_assert(!window_alarm_too_late(&w, USEC_PER_HOUR, M(9 * 60))); /* not even ended */
}
END_TEST

START_TEST(test_session_result_full) {
        ck_assert_int_eq(window_session_result_full(true, 5, 2, 1), SESSION_RESULT_RULE_REMOVED);
        ck_assert_int_eq(window_session_result_full(false, 0, 7, 0), SESSION_RESULT_NO_EVENTS);
        ck_assert_int_eq(window_session_result_full(false, 1, 1, 1), SESSION_RESULT_ALARMS_RAISED);
        ck_assert_int_eq(window_session_result_full(false, 1, 0, 1), SESSION_RESULT_ALARMS_TOO_LATE);
        ck_assert_int_eq(window_session_result_full(false, 1, 0, 0), SESSION_RESULT_NO_ALARMS);
        ck_assert_str_eq(session_result_to_string(SESSION_RESULT_NO_EVENTS), "no_events");
        ck_assert_int_eq(session_result_from_string("rule_removed"), SESSION_RESULT_RULE_REMOVED);
        ck_assert_str_eq(window_alarm_state_to_string(WINDOW_ALARM_TOO_LATE), "too_late");
        ck_assert_int_eq(window_alarm_state_from_string("dropped"), WINDOW_ALARM_DROPPED);
}
END_TEST

static Suite *window_suite(void) {
        Suite *s = suite_create("azi3_window");
        TCase *tc = tcase_create("step1");
        tcase_add_test(tc, test_first_window_full);
        tcase_add_test(tc, test_first_window_cut_by_b);
        tcase_add_test(tc, test_first_window_invalid_params);
        tcase_add_test(tc, test_first_window_huge_w_saturates);
        suite_add_tcase(s, tc);

        tc = tcase_create("step2");
        tcase_add_test(tc, test_event_inside_is_activity);
        tcase_add_test(tc, test_event_at_since_is_activity);
        tcase_add_test(tc, test_event_just_before_until_is_activity);
        tcase_add_test(tc, test_event_at_until_is_late);
        tcase_add_test(tc, test_event_after_until_opens_at_e);
        tcase_add_test(tc, test_event_new_window_cut_by_b);
        tcase_add_test(tc, test_event_before_since_is_stale);
        tcase_add_test(tc, test_event_at_or_after_b_is_stale);
        tcase_add_test(tc, test_event_without_current_window_is_stale);
        tcase_add_test(tc, test_event_duplicate_checked_first);
        tcase_add_test(tc, test_event_rejects_invalid_window);
        suite_add_tcase(s, tc);

        tc = tcase_create("step3");
        tcase_add_test(tc, test_expire_not_yet);
        tcase_add_test(tc, test_expire_full_window_at_until);
        tcase_add_test(tc, test_expire_opens_at_now);
        tcase_add_test(tc, test_expire_is_idempotent_at_same_now);
        tcase_add_test(tc, test_expire_cut_short_is_ended);
        tcase_add_test(tc, test_expire_full_window_ending_at_b);
        tcase_add_test(tc, test_expire_after_b_opens_nothing);
        tcase_add_test(tc, test_due_after_settle);
        tcase_add_test(tc, test_alarm_too_late);
        tcase_add_test(tc, test_session_result_full);
        tcase_add_test(tc, test_alarms_owed_in_time_order);
        suite_add_tcase(s, tc);

        tc = tcase_create("step4");
        tcase_add_test(tc, test_complete_conditions);
        tcase_add_test(tc, test_complete_result);
        tcase_add_test(tc, test_names_round_trip);
        suite_add_tcase(s, tc);

        tc = tcase_create("day");
        tcase_add_test(tc, test_whole_day_scenario);
        tcase_add_test(tc, test_quiet_day_no_alarms);
        tcase_add_test(tc, test_random_against_reference);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(window_suite());
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
