/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "basic/duration.h"
#include "day.h"
#include "megazord.h"
#include "megazord-multi.h"
#include "message.h"
#include "service.h"
#include "sqs.h"
#include "window.h"

struct azi3_service {
        const azi3_config *config;
        azi3_store *store;
        megazord *mz;
        megazord_multi *mm; /* the run's concurrent calls (issue 16) */
        sqs_client *sqs;
        azi3_log_func log;
        azi3_metric_func metric;
        char instance[128];
        void *userdata;
};

#define SESSION_NAME_MAX 256

_Static_assert(AZI3_MEGAZORD_MAX_PARALLEL_MAX <= MEGAZORD_MULTI_MAX_PARALLEL,
               "megazord.max_parallel must fit the driver");

/* How a run went: the worst result so far, the first failure's text, and how many more. */
typedef struct run_state {
        azi3_result result;
        char error[AZI3_MESSAGE_MAX];
        unsigned n_errors;
} run_state;

_printf_(3, 4) static void svc_log(azi3_service *s, int level, const char *fmt, ...) {
        va_list ap;

        if (!s->log)
                return;
        va_start(ap, fmt);
        s->log(s->userdata, level, fmt, ap);
        va_end(ap);
}

/* Whether waiting can fix a failure: the peers' own classification, and for local errors,
 * whether the cause can go away by itself (a lock, a full disk) or needs an operator. */
static azi3_result result_of(int r) {
        switch (-r) {
        case EPROTO:          /* AZI3_PERMANENT */
        case EROFS:
        case EBADMSG:
        case EPROTONOSUPPORT:
        case EINVAL:
        case ENOKEY:
        case EACCES:
        case EPERM:
                return AZI3_RESULT_FAIL;
        default:
                return AZI3_RESULT_RETRY;
        }
}

_printf_(4, 5) static void run_fail(azi3_service *s, run_state *rs, int r, const char *fmt, ...) {
        azi3_result res = result_of(r);
        char buf[AZI3_MESSAGE_MAX];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        svc_log(s, res == AZI3_RESULT_FAIL ? LOG_ERR : LOG_WARNING, "%s", buf);

        /* A transient failure anywhere makes the run worth retrying, and the retry redoes the
         * permanent part harmlessly; so RETRY wins over FAIL. */
        if (rs->result == AZI3_RESULT_OK || res == AZI3_RESULT_RETRY)
                rs->result = res;
        if (rs->n_errors++ == 0)
                snprintf(rs->error, sizeof(rs->error), "%s", buf);
}

/* "1 window expired" / "2 windows expired" appended to BUF, comma-separated. */
static void summary_add(char *buf, size_t len, size_t n, const char *one, const char *many, bool always) {
        size_t used = strlen(buf);

        if (n == 0 && !always)
                return;
        if (used >= len - 1)
                return;
        snprintf(buf + used, len - used, "%s%zu %s", used > 0 ? ", " : "", n, n == 1 ? one : many);
}

static azi3_result run_finish(const run_state *rs, const char *summary, char *msg, size_t msglen) {
        if (!msg || msglen == 0)
                return rs->result;
        if (rs->n_errors == 0)
                snprintf(msg, msglen, "%s", summary);
        else if (rs->n_errors == 1)
                snprintf(msg, msglen, "%s; %s", rs->error, summary);
        else
                snprintf(msg, msglen, "%s (and %u more errors, see the log); %s", rs->error, rs->n_errors - 1, summary);
        return rs->result;
}

static void session_name(const azi3_session *se, char *buf, size_t len) {
        snprintf(buf, len, "session %" PRId64 " (robot %" PRId64 ", rule %s, %s)", se->id, se->robot_id, se->rule_id,
                 se->local_day);
}

static const char *store_error(azi3_service *s) {
        const char *e = azi3_store_last_error(s->store);
        return e && e[0] ? e : "unknown store error";
}

/* --- meta and metrics -------------------------------------------------------------------------- */

/* one key per daemon instance that has replayed: on a cluster several instances run the jobs
 * at once, and a single "last instance" key flipped between them, replaying at every run */
#define META_INSTANCE_PREFIX "daemon_instance/"
#define META_SQS_LAST_RECEIVE "sqs_last_receive_usec"
#define META_SQS_FIRST_FAILURE "sqs_first_failure_usec"

static int meta_get_u64(azi3_service *s, const char *key, uint64_t *ret) {
        char buf[32];
        int r = azi3_store_meta_get(s->store, key, buf, sizeof(buf));
        if (r < 0)
                return r;
        *ret = strtoull(buf, NULL, 10);
        return 0;
}

static int meta_set_u64(azi3_service *s, const char *key, uint64_t v) {
        char buf[32];
        snprintf(buf, sizeof(buf), "%" PRIu64, v);
        return azi3_store_meta_set(s->store, key, buf);
}

/* Durations in log lines: whole seconds, nearest (a run's clock adds milliseconds). */
static usec_t round_sec(usec_t d) {
        return (d + USEC_PER_SEC / 2) / USEC_PER_SEC * USEC_PER_SEC;
}

static void metric(azi3_service *s, const char *name, const char *labels, double v) {
        if (s->metric)
                s->metric(s->userdata, name, labels ?: "", v);
}

/* A run publishes the SQS counters sqs-consumer keeps in the store and, with STORE_STATS, the
 * store's sessions, windows and alarms (a few counting queries: every job but sqs-consumer,
 * which runs every few seconds), so the metrics survive restarts. */
static void publish_metrics(azi3_service *s, usec_t now, bool store_stats) {
        static const char *const sqs_counters[] = { "applied", "late", "stale", "duplicate", NULL };
        azi3_store_stats st;
        uint64_t v;

        if (!s->metric)
                return;
        if (store_stats && azi3_store_stats_get(s->store, &st) >= 0) {
                metric(s, "azi3_sessions_open", "", (double) st.sessions_open);
                for (int i = 0; i < _WINDOW_CLOSE_REASON_MAX; i++) {
                        char l[64];
                        snprintf(l, sizeof(l), "reason=\"%s\"", window_close_reason_to_string(i));
                        metric(s, "azi3_windows_closed", l, (double) st.windows_closed[i]);
                }
                for (int i = WINDOW_ALARM_OWED; i < _WINDOW_ALARM_STATE_MAX; i++) {
                        char l[64];
                        snprintf(l, sizeof(l), "state=\"%s\"", window_alarm_state_to_string(i));
                        metric(s, "azi3_alarms", l, (double) st.alarms[i]);
                }
                metric(s, "azi3_oldest_owed_alarm_age_seconds", "",
                       st.oldest_owed_until > 0 && now > st.oldest_owed_until ?
                       (double) (now - st.oldest_owed_until) / USEC_PER_SEC : 0);
        }
        for (size_t i = 0; sqs_counters[i]; i++) {
                char key[64], l[64];
                snprintf(key, sizeof(key), "sqs_%s_total", sqs_counters[i]);
                snprintf(l, sizeof(l), "outcome=\"%s\"", sqs_counters[i]);
                metric(s, "azi3_sqs_events", l, meta_get_u64(s, key, &v) >= 0 ? (double) v : 0);
        }
        if (meta_get_u64(s, META_SQS_LAST_RECEIVE, &v) >= 0)
                metric(s, "azi3_sqs_last_receive_age_seconds", "", now > v ? (double) (now - v) / USEC_PER_SEC : 0);
}

/* --- service --------------------------------------------------------------------------------- */

int azi3_service_new(const azi3_config *config, azi3_log_func log, void *userdata, char *msg, size_t msglen,
                     azi3_service **ret) {
        _cleanup_(azi3_service_freep) azi3_service *s = NULL;
        char err[512] = "";
        int r;

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->config = config;
        s->log = log;
        s->userdata = userdata;

        r = azi3_store_open(config->store, err, sizeof(err), &s->store);
        if (r < 0) {
                if (msg)
                        snprintf(msg, msglen, "%s (store of %s)", err[0] ? err : strerror(-r), config->path);
                return r;
        }
        r = megazord_new(config->megazord_base_url, config->megazord_timeout, &s->mz);
        if (r < 0) {
                if (msg)
                        snprintf(msg, msglen, "%s: megazord.base_url '%s' cannot be used: %s", config->path,
                                 config->megazord_base_url, strerror(-r));
                return r;
        }
        r = megazord_multi_new(s->mz, config->megazord_max_parallel, &s->mm);
        if (r < 0) {
                if (msg)
                        snprintf(msg, msglen, "%s: cannot set up %u parallel Megazord calls (megazord.max_parallel): %s",
                                 config->path, config->megazord_max_parallel, strerror(-r));
                return r;
        }
        *ret = TAKE_PTR(s);
        return 0;
}

void azi3_service_set_hooks(azi3_service *s, const azi3_hooks *hooks) {
        if (!hooks)
                return;
        if (hooks->log) {
                s->log = hooks->log;
                s->userdata = hooks->userdata;
        }
        if (hooks->metric) {
                s->metric = hooks->metric;
                s->userdata = hooks->userdata;
        }
        snprintf(s->instance, sizeof(s->instance), "%s", hooks->instance ?: "");
}

azi3_service *azi3_service_free(azi3_service *s) {
        if (!s)
                return NULL;
        sqs_client_free(s->sqs);
        megazord_multi_free(s->mm);
        megazord_free(s->mz);
        azi3_store_close(s->store);
        free(s);
        return NULL;
}

/* The alarm of a session's rule; the defaults when the rule was removed from the file since. */
static void rule_alarm(azi3_service *s, const azi3_session *se, const char **ret_event, int *ret_level) {
        const azi3_rule *rule = azi3_config_find_rule(s->config, se->robot_id, se->rule_id);

        if (rule) {
                *ret_event = rule->alarm_event;
                *ret_level = rule->alarm_level;
                return;
        }
        svc_log(s, LOG_WARNING,
                "robot %" PRId64 " rule %s is no longer in %s; its open session posts %s level %d (the defaults)",
                se->robot_id, se->rule_id, s->config->path, AZI3_DEFAULT_ALARM_EVENT, AZI3_DEFAULT_ALARM_LEVEL);
        *ret_event = AZI3_DEFAULT_ALARM_EVENT;
        *ret_level = AZI3_DEFAULT_ALARM_LEVEL;
}

static usec_t unsub_backoff(unsigned attempts) {
        usec_t d = AZI3_UNSUB_BACKOFF;

        for (unsigned i = 1; i < attempts && d < AZI3_UNSUB_BACKOFF_MAX; i++)
                d *= 2;
        return MIN(d, AZI3_UNSUB_BACKOFF_MAX);
}

/* A queued subscription deletion in flight. */
typedef struct unsub_call {
        azi3_service *s;
        run_state *rs;
        int64_t robot_id, subscription_id;
        unsigned attempts;
        usec_t now;
        size_t *n_done; /* counts the deletions that worked; may be NULL */
} unsub_call;

static void unsubscribe_done(megazord_multi *mm, megazord_reply *reply, void *userdata) {
        _cleanup_free_ unsub_call *u = userdata;
        azi3_service *s = u->s;
        int q;

        (void) mm;
        if (reply->r >= 0) {
                svc_log(s, LOG_INFO, "deleted subscription %" PRId64 " of robot %" PRId64 "%s (Call-Ref %s)",
                        u->subscription_id, u->robot_id, reply->r == 1 ? " (it was already gone)" : "",
                        reply->call.call_ref);
                q = azi3_store_unsubscription_remove(s->store, u->robot_id, u->subscription_id);
                if (q < 0 && q != -ENOENT)
                        run_fail(s, u->rs, q, "subscription %" PRId64 " of robot %" PRId64
                                 " is deleted but stays queued (it will be deleted again, harmlessly): %s",
                                 u->subscription_id, u->robot_id, store_error(s));
                if (u->n_done)
                        (*u->n_done)++;
                return;
        }
        q = azi3_store_unsubscription_failed(s->store, u->robot_id, u->subscription_id, reply->call.message,
                                             u->now + unsub_backoff(u->attempts + 1));
        if (q < 0)
                svc_log(s, LOG_ERR, "cannot record the failed deletion of subscription %" PRId64 ": %s",
                        u->subscription_id, store_error(s));
        run_fail(s, u->rs, reply->r, "deleting subscription %" PRId64 " of robot %" PRId64
                 " failed (session-cleanup retries it): %s", u->subscription_id, u->robot_id, reply->call.message);
}

/* Queues the deletion of a queued subscription on the run's driver: when it is gone it is
 * unqueued (and *N_DONE counted), else the failure is recorded in the queue entry for the next
 * try. The outcome is known once megazord_multi_run() returned. */
static void unsubscribe_queued(azi3_service *s, int64_t robot_id, int64_t subscription_id, unsigned attempts,
                               usec_t now, run_state *rs, size_t *n_done) {
        unsub_call *u;
        int r = -ENOMEM;

        u = malloc(sizeof(*u));
        if (u) {
                *u = (unsub_call) { .s = s, .rs = rs, .robot_id = robot_id, .subscription_id = subscription_id,
                                    .attempts = attempts, .now = now, .n_done = n_done };
                r = megazord_multi_unsubscribe(s->mm, robot_id, subscription_id, unsubscribe_done, u);
                if (r < 0)
                        free(u);
        }
        if (r < 0)
                run_fail(s, rs, r, "deleting subscription %" PRId64 " of robot %" PRId64
                         " not tried (session-cleanup retries it): %s", subscription_id, robot_id, strerror(-r));
}

/* Sends what the run queued on its driver; a driver failure fails every call left. */
static void run_calls(azi3_service *s, run_state *rs) {
        int r = megazord_multi_run(s->mm);

        if (r < 0)
                run_fail(s, rs, r, "Megazord calls of this run stopped: libcurl's multi interface failed: %s",
                         strerror(-r));
}

typedef struct undo_call {
        azi3_service *s;
        int64_t robot_id, subscription_id;
        usec_t now;
} undo_call;

static void subscription_undo_done(megazord_multi *mm, megazord_reply *reply, void *userdata) {
        _cleanup_free_ undo_call *u = userdata;
        azi3_service *s = u->s;
        int r;

        (void) mm;
        if (reply->r >= 0) {
                svc_log(s, LOG_INFO, "undid subscription %" PRId64 " of robot %" PRId64 " (Call-Ref %s)",
                        u->subscription_id, u->robot_id, reply->call.call_ref);
                return;
        }
        r = azi3_store_unsubscription_add(s->store, u->robot_id, u->subscription_id, u->now);
        if (r >= 0)
                r = azi3_store_unsubscription_failed(s->store, u->robot_id, u->subscription_id, reply->call.message,
                                                     u->now + unsub_backoff(1));
        if (r < 0)
                svc_log(s, LOG_ERR,
                        "subscription %" PRId64 " of robot %" PRId64 " could neither be deleted (%s) nor queued for "
                        "deletion (%s); it lapses at its 'until' by itself",
                        u->subscription_id, u->robot_id, reply->call.message, store_error(s));
        else
                svc_log(s, LOG_WARNING, "subscription %" PRId64 " of robot %" PRId64
                        " could not be deleted, queued for session-cleanup: %s", u->subscription_id, u->robot_id,
                        reply->call.message);
}

/* Undoes a subscription that no session holds: queues its deletion on the run's driver; if
 * that fails, the deletion is queued in the store for session-cleanup. */
static void subscription_undo(azi3_service *s, int64_t robot_id, int64_t subscription_id, usec_t now) {
        undo_call *u;
        int r = -ENOMEM;

        (void) azi3_store_rollback(s->store);
        u = malloc(sizeof(*u));
        if (u) {
                *u = (undo_call) { .s = s, .robot_id = robot_id, .subscription_id = subscription_id, .now = now };
                r = megazord_multi_unsubscribe(s->mm, robot_id, subscription_id, subscription_undo_done, u);
                if (r >= 0)
                        return;
        }
        if (!u) {
                svc_log(s, LOG_ERR, "subscription %" PRId64 " of robot %" PRId64 " could not be undone (out of "
                        "memory); it lapses at its 'until' by itself", subscription_id, robot_id);
                return;
        }
        megazord_reply reply = { .r = r };
        snprintf(reply.call.message, sizeof(reply.call.message), "not sent: %s", strerror(-r));
        subscription_undo_done(s->mm, &reply, u);
}

/* 8.1 step 2 for one event, inside the caller's transaction. */
static int session_apply_event(azi3_service *s, const azi3_session *se, int64_t source_event_id, usec_t e,
                               usec_t now, window_event_outcome *ret) {
        window_transition t;
        azi3_window cur;
        bool has_cur;
        int r, seen;

        r = azi3_store_window_current(s->store, se->id, &cur);
        if (r < 0 && r != -ENOENT)
                return r;
        has_cur = r >= 0;
        seen = azi3_store_event_seen(s->store, se->id, source_event_id);
        if (seen < 0)
                return seen;
        r = window_apply_event(&se->params, has_cur ? &cur.span : NULL, seen > 0, e, &t);
        if (r < 0)
                return r;
        *ret = (window_event_outcome) r;
        if (*ret == WINDOW_EVENT_DUPLICATE)
                return 0;
        r = azi3_store_apply_transition(s->store, se->id, has_cur ? cur.id : 0, &t, now, source_event_id, NULL, NULL);
        if (r < 0)
                return r;
        r = azi3_store_event_record(s->store, se->id, source_event_id, e, now, *ret);
        return r < 0 ? r : 0;
}

typedef struct event_counts {
        size_t applied, late, stale, duplicate;
} event_counts;

static void event_count(event_counts *c, window_event_outcome o) {
        switch (o) {
        case WINDOW_EVENT_ACTIVITY:
                c->applied++;
                break;
        case WINDOW_EVENT_LATE:
                c->late++;
                break;
        case WINDOW_EVENT_STALE:
                c->stale++;
                break;
        default:
                c->duplicate++;
        }
}

/* --- monitoring-scheduler ------------------------------------------------------------------- */

/* defined with window-expiration, which uses them most */
static int session_history(azi3_service *s, const azi3_session *se, usec_t since, usec_t now, azi3_call *call,
                           azi3_incoming **ret, size_t *ret_n);
static int session_apply_history(azi3_service *s, const azi3_session *se, const azi3_incoming *inc, size_t k,
                                 const azi3_window *owed, size_t n_owed, usec_t now, event_counts *ec,
                                 int64_t *ret_rejudged);
static int session_complete_if_removed(azi3_service *s, const azi3_session *se, usec_t now, run_state *rs);

static int incoming_compare(const void *a, const void *b) {
        const azi3_incoming *x = a, *y = b;

        if (x->created_at != y->created_at)
                return x->created_at < y->created_at ? -1 : 1;
        return (x->id > y->id) - (x->id < y->id);
}

typedef struct monitor_counts {
        size_t open, created, replayed, removed, replayed_open, replay_applied;
} monitor_counts;

/* The sessions of one local day, read once and sorted by (robot_id, rule_id) as the store
 * lists them: a run asks about every rule every minute, and one query per rule was most of a
 * run's time over 10,000 rules. */
typedef struct day_sessions {
        char day[DAY_DATE_STRING_MAX];
        azi3_session *v;
        size_t n;
} day_sessions;

/* A rule's days are today and yesterday (a night rule), in at most a few zones' calendars. */
#define MONITOR_DAYS_MAX 8u

typedef struct monitor_cache {
        day_sessions days[MONITOR_DAYS_MAX];
        size_t n_days;
} monitor_cache;

static void monitor_cache_done(monitor_cache *mc) {
        for (size_t i = 0; i < mc->n_days; i++)
                free(mc->days[i].v);
        *mc = (monitor_cache) {};
}

/* Whether the session (ROBOT_ID, RULE_ID, DAY) was in the store when its day was first asked
 * about; returns it in *RET. false means "not known": the caller asks the store itself, so a
 * day that could not be listed, or a session created since, only costs a query. */
static bool monitor_cache_find(azi3_service *s, monitor_cache *mc, int64_t robot_id, const char *rule_id,
                               const char *day, azi3_session *ret) {
        day_sessions *d = NULL;

        for (size_t i = 0; i < mc->n_days && !d; i++)
                if (streq(mc->days[i].day, day))
                        d = &mc->days[i];
        if (!d) {
                if (mc->n_days >= MONITOR_DAYS_MAX)
                        return false;
                d = &mc->days[mc->n_days];
                *d = (day_sessions) {};
                snprintf(d->day, sizeof(d->day), "%s", day);
                /* a failure leaves the day empty: each of its rules then asks the store itself */
                (void) azi3_store_sessions_list(s->store, day, -1, &d->v, &d->n);
                mc->n_days++;
        }

        size_t lo = 0, hi = d->n;
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                const azi3_session *x = &d->v[mid];
                int cmp = x->robot_id != robot_id ? (x->robot_id < robot_id ? -1 : 1) : strcmp(x->rule_id, rule_id);

                if (cmp == 0) {
                        *ret = *x;
                        return true;
                }
                if (cmp < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return false;
}

/* The run of monitoring-scheduler, for the calls its sessions' creation makes. */
typedef struct monitor_run {
        azi3_service *s;
        usec_t now;
        monitor_counts c;
        run_state rs;
} monitor_run;

/* A session being created: subscribe, then replay, then the transaction (see service.h). */
typedef struct monitor_item {
        monitor_run *run;
        const azi3_rule *rule;
        char day[DAY_DATE_STRING_MAX];
        window_params p;
        int64_t sub;
} monitor_item;

static void monitor_replay_done(megazord_multi *mm, megazord_reply *reply, void *userdata) {
        _cleanup_free_ monitor_item *it = userdata;
        azi3_service *s = it->run->s;
        const azi3_rule *rule = it->rule;
        monitor_counts *c = &it->run->c;
        run_state *rs = &it->run->rs;
        usec_t now = it->run->now;
        azi3_incoming *inc = TAKE_PTR(reply->incomings);
        size_t n_inc = reply->n_incomings;
        event_counts ec = {};
        azi3_session se;
        azi3_window first;
        window_span span;
        int r;

        (void) mm;
        reply->n_incomings = 0;
        if (reply->r < 0) {
                run_fail(s, rs, reply->r, "robot %" PRId64 " rule %s, day %s not started (subscription undone): %s",
                         rule->robot_id, rule->rule_id, it->day, reply->call.message);
                subscription_undo(s, rule->robot_id, it->sub, now);
                return;
        }
        if (n_inc > 1)
                qsort(inc, n_inc, sizeof(inc[0]), incoming_compare);

        r = azi3_store_begin(s->store);
        if (r >= 0) {
                _cleanup_(azi3_store_rollbackp) _unused_ azi3_store *tx = s->store;

                r = azi3_store_session_create(s->store, rule->robot_id, rule->rule_id, it->day, &it->p, now, &se);
                if (r == 0) {
                        /* another run created it meanwhile: ours is not needed */
                        (void) azi3_store_rollback(s->store);
                        inc = azi3_incomings_free(inc, n_inc);
                        subscription_undo(s, rule->robot_id, it->sub, now);
                        c->open++;
                        return;
                }
                if (r > 0)
                        r = azi3_store_session_set_subscription(s->store, se.id, it->sub);
                if (r >= 0)
                        r = window_first(&it->p, &span);
                if (r >= 0)
                        r = azi3_store_window_open(s->store, se.id, &span, &first);
                for (size_t i = 0; r >= 0 && i < n_inc; i++) {
                        window_event_outcome o;

                        /* nor one dated after the run's clock: it cannot have happened yet (a
                         * skewed clock); applied then, it closed the first window as expired, hours
                         * early. SQS or the history read before a window is judged brings it. */
                        if (inc[i].robot_id != rule->robot_id || !streq_ptr(inc[i].event_name, rule->event) ||
                            inc[i].created_at > now)
                                continue;
                        r = session_apply_event(s, &se, inc[i].id, inc[i].created_at, now, &o);
                        if (r >= 0)
                                event_count(&ec, o);
                }
                if (r >= 0)
                        r = azi3_store_commit(s->store);
        }
        inc = azi3_incomings_free(inc, n_inc);
        if (r < 0) {
                run_fail(s, rs, r, "robot %" PRId64 " rule %s, day %s not started (subscription undone): %s",
                         rule->robot_id, rule->rule_id, it->day, store_error(s));
                subscription_undo(s, rule->robot_id, it->sub, now);
                return;
        }
        svc_log(s, LOG_INFO,
                "session %" PRId64 " created for robot %" PRId64 " rule %s, day %s, subscription %" PRId64
                "; replay: %zu applied, %zu late, %zu stale, %zu duplicate",
                se.id, rule->robot_id, rule->rule_id, it->day, it->sub, ec.applied, ec.late, ec.stale, ec.duplicate);
        c->created++;
        c->open++;
        c->replayed += n_inc;
}

static void monitor_subscribe_done(megazord_multi *mm, megazord_reply *reply, void *userdata) {
        monitor_item *it = userdata;
        azi3_service *s = it->run->s;
        const azi3_rule *rule = it->rule;
        char until[32] = "?";
        int r;

        if (reply->r < 0) {
                run_fail(s, &it->run->rs, reply->r, "robot %" PRId64 " rule %s, day %s not started: %s", rule->robot_id,
                         rule->rule_id, it->day, reply->call.message);
                free(it);
                return;
        }
        it->sub = reply->id;
        (void) azi3_format_timestamp(it->p.b, until);
        svc_log(s, LOG_INFO, "subscribed robot %" PRId64 " to %s until %s: subscription %" PRId64 " (Call-Ref %s)",
                rule->robot_id, rule->event, until, it->sub, reply->call.call_ref);
        r = megazord_multi_replay(mm, rule->robot_id, rule->event, it->p.a, monitor_replay_done, it);
        if (r < 0) {
                megazord_reply failed = { .r = r };
                snprintf(failed.call.message, sizeof(failed.call.message), "replay not sent: %s", strerror(-r));
                monitor_replay_done(mm, &failed, it);
        }
}

static void monitor_rule(monitor_run *run, monitor_cache *mc, const azi3_rule *rule) {
        azi3_service *s = run->s;
        usec_t now = run->now;
        monitor_counts *c = &run->c;
        run_state *rs = &run->rs;
        day_rule dr = azi3_rule_day(rule);
        char day[DAY_DATE_STRING_MAX];
        monitor_item *it;
        azi3_session se;
        day_date date;
        usec_t a, b;
        int r;

        r = day_find(&dr, now, &date, &a, &b);
        if (r < 0) {
                run_fail(s, rs, r, "%s:%u: robot %" PRId64 " rule %s: cannot compute its monitoring day at %" PRIu64 ": %s",
                         s->config->path, rule->line, rule->robot_id, rule->rule_id, now, strerror(-r));
                return;
        }
        if (r == 0)
                return; /* between two days */
        window_params p = { .a = a, .b = b, .w = rule->window };
        if (!window_params_valid(&p))
                return; /* A == B: a DST day without monitoring */
        day_date_format(date, day);

        if (monitor_cache_find(s, mc, rule->robot_id, rule->rule_id, day, &se)) {
                c->open += !se.completed;
                return;
        }
        r = azi3_store_session_find(s->store, rule->robot_id, rule->rule_id, day, &se);
        if (r >= 0) {
                c->open += !se.completed;
                return;
        }
        if (r != -ENOENT) {
                run_fail(s, rs, r, "looking up the session of robot %" PRId64 " rule %s for %s: %s", rule->robot_id,
                         rule->rule_id, day, store_error(s));
                return;
        }

        it = malloc(sizeof(*it));
        if (!it) {
                run_fail(s, rs, -ENOMEM, "robot %" PRId64 " rule %s, day %s not started: out of memory", rule->robot_id,
                         rule->rule_id, day);
                return;
        }
        *it = (monitor_item) { .run = run, .rule = rule, .p = p };
        snprintf(it->day, sizeof(it->day), "%s", day);
        r = megazord_multi_subscribe(s->mm, rule->robot_id, rule->event, b, monitor_subscribe_done, it);
        if (r < 0) {
                free(it);
                run_fail(s, rs, r, "robot %" PRId64 " rule %s, day %s not started: %s", rule->robot_id, rule->rule_id,
                         day, strerror(-r));
        }
}

/* Why the open sessions must be replayed from Megazord now (issue 17), or NULL: the first run
 * of a daemon instance (events of its downtime may never come through SQS: messages of a
 * subscription that lapsed, or that expired in the queue), or sqs-consumer deaf for longer
 * than replay_after (expired credentials, SQS down). */
static const char *replay_reason(azi3_service *s, usec_t now, bool *ret_new_instance, char *buf, size_t len) {
        char key[sizeof(META_INSTANCE_PREFIX) + sizeof(s->instance)], seen[32];
        uint64_t heard = 0;

        *ret_new_instance = false;
        snprintf(key, sizeof(key), META_INSTANCE_PREFIX "%s", s->instance);
        if (s->instance[0] && azi3_store_meta_get(s->store, key, seen, sizeof(seen)) < 0) {
                *ret_new_instance = true;
                return "first run of this daemon instance";
        }
        if (meta_get_u64(s, META_SQS_LAST_RECEIVE, &heard) < 0 && meta_get_u64(s, META_SQS_FIRST_FAILURE, &heard) < 0)
                return NULL; /* sqs-consumer never ran against this store */
        if (now > heard && now - heard > s->config->replay_after) {
                char d[DURATION_MAX];
                snprintf(buf, len, "sqs-consumer has not completed a receive for %s",
                         duration_format(round_sec(now - heard), d, sizeof(d)));
                return buf;
        }
        return NULL;
}

/* Replays one open session from Megazord since its current window's since, through 8.1 step 2
 * (and judging an expired window again if the history shows activity inside it). */
static int monitor_replay_session(azi3_service *s, const azi3_session *se, usec_t now, monitor_counts *c,
                                  run_state *rs) {
        azi3_incoming *inc = NULL;
        size_t n_inc = 0;
        char name[SESSION_NAME_MAX];
        event_counts ec = {};
        int64_t rejudged = 0;
        azi3_window cur;
        azi3_call call = {};
        int k, r;

        session_name(se, name, sizeof(name));
        r = azi3_store_window_current(s->store, se->id, &cur);
        if (r == -ENOENT)
                return 0;
        if (r < 0) {
                run_fail(s, rs, r, "%s: cannot read its current window: %s", name, store_error(s));
                return r;
        }
        k = session_history(s, se, cur.span.since, now, &call, &inc, &n_inc);
        if (k < 0) {
                run_fail(s, rs, k, "%s: replay from Megazord failed (the next run tries again): %s", name, call.message);
                return k;
        }
        r = azi3_store_begin(s->store);
        if (r >= 0) {
                _cleanup_(azi3_store_rollbackp) _unused_ azi3_store *tx = s->store;
                _cleanup_free_ azi3_window *owed = NULL;
                size_t n_owed = 0;

                r = azi3_store_alarms_owed(s->store, se->id, &owed, &n_owed);
                if (r >= 0)
                        r = session_apply_history(s, se, inc, (size_t) k, owed, n_owed, now, &ec, &rejudged);
                if (r >= 0)
                        r = azi3_store_commit(s->store);
        }
        inc = azi3_incomings_free(inc, n_inc);
        if (r < 0) {
                run_fail(s, rs, r, "%s: replayed events cannot be stored: %s", name, store_error(s));
                return r;
        }
        c->replayed_open++;
        c->replay_applied += ec.applied + ec.late;
        if (ec.applied + ec.late > 0 || rejudged)
                svc_log(s, LOG_NOTICE, "%s: replay found %zu events SQS had not delivered (%zu in time, %zu late)%s "
                        "[ROBOT_ID=%" PRId64 " SESSION_ID=%" PRId64 "]", name, ec.applied + ec.late, ec.applied, ec.late,
                        rejudged ? "; an expired window was judged again" : "", se->robot_id, se->id);
        return 0;
}

static void monitor_open_sessions(azi3_service *s, usec_t now, monitor_counts *c, run_state *rs) {
        _cleanup_free_ azi3_session *open = NULL;
        const char *why;
        char buf[128];
        bool new_instance, ok = true;
        size_t n = 0;
        int r;

        r = azi3_store_sessions_list_open(s->store, &open, &n);
        if (r < 0) {
                run_fail(s, rs, r, "cannot list the open sessions of %s: %s", s->config->store, store_error(s));
                return;
        }
        for (size_t i = 0; i < n; i++)
                if (session_complete_if_removed(s, &open[i], now, rs) > 0) {
                        c->removed++;
                        open[i].completed = true;
                }
        /* their deletions go out before any replay below, as a robot's calls are ordered */
        run_calls(s, rs);

        why = replay_reason(s, now, &new_instance, buf, sizeof(buf));
        if (!why)
                return;
        svc_log(s, LOG_NOTICE, "replaying the open sessions from Megazord: %s", why);
        for (size_t i = 0; i < n; i++)
                if (!open[i].completed && now < open[i].params.b && monitor_replay_session(s, &open[i], now, c, rs) < 0)
                        ok = false;
        if (ok && new_instance) {
                char key[sizeof(META_INSTANCE_PREFIX) + sizeof(s->instance)], seen[32];
                snprintf(key, sizeof(key), META_INSTANCE_PREFIX "%s", s->instance);
                snprintf(seen, sizeof(seen), "%" PRIu64, now); /* when it first ran */
                r = azi3_store_meta_set(s->store, key, seen);
                if (r < 0)
                        run_fail(s, rs, r, "cannot record the daemon instance (the next run replays again): %s",
                                 store_error(s));
        }
}

azi3_result azi3_monitoring_scheduler(azi3_service *s, usec_t now, char *msg, size_t msglen) {
        monitor_run run = { .s = s, .now = now };
        run_state *rs = &run.rs;
        monitor_counts *cp = &run.c;
        monitor_cache mc = {};
        char summary[320] = "";

        monitor_open_sessions(s, now, cp, rs);
        /* the sessions are created concurrently, each one's calls in order (issue 16) */
        for (size_t i = 0; i < s->config->n_rules; i++)
                monitor_rule(&run, &mc, &s->config->rules[i]);
        run_calls(s, rs);
        monitor_cache_done(&mc);
        monitor_counts c = run.c;

        summary_add(summary, sizeof(summary), c.created, "session created", "sessions created", false);
        if (c.created > 0) {
                size_t used = strlen(summary);
                snprintf(summary + used, sizeof(summary) - used, " (%zu event%s replayed)", c.replayed,
                         c.replayed == 1 ? "" : "s");
        }
        summary_add(summary, sizeof(summary), c.open, "session open", "sessions open", true);
        summary_add(summary, sizeof(summary), c.removed, "session of a removed rule completed",
                    "sessions of removed rules completed", false);
        if (c.replayed_open > 0) {
                size_t used = strlen(summary);
                snprintf(summary + used, sizeof(summary) - used, ", %zu open session%s replayed (%zu event%s applied)",
                         c.replayed_open, c.replayed_open == 1 ? "" : "s", c.replay_applied,
                         c.replay_applied == 1 ? "" : "s");
        }
        publish_metrics(s, now, true);
        return run_finish(rs, summary, msg, msglen);
}

/* --- window-expiration and completion -------------------------------------------------------- */

typedef struct expire_counts {
        size_t open, expired, ended, posted, owed, held, too_late, rejudged, completed, stale_completed, removed;
} expire_counts;

/* The rule's activity event; the default when the rule left the file. */
static const char *rule_event(azi3_service *s, const azi3_session *se) {
        const azi3_rule *rule = azi3_config_find_rule(s->config, se->robot_id, se->rule_id);
        return rule ? rule->event : AZI3_DEFAULT_EVENT;
}

/* Megazord's history of the session's activity events from the replay REPLY (whose incomings
 * it takes), keeping only the session's robot and event and nothing after NOW (an event cannot
 * have happened after the run's own clock; a later one is read again by a later run). Sorted
 * by time, then id; returns how many are kept (first in *RET). */
static int session_history_take(azi3_service *s, const azi3_session *se, usec_t now, megazord_reply *reply,
                                azi3_incoming **ret, size_t *ret_n) {
        const char *event = rule_event(s, se);
        azi3_incoming *inc = TAKE_PTR(reply->incomings);
        size_t n = reply->n_incomings, k = 0;

        reply->n_incomings = 0;
        for (size_t i = 0; i < n; i++) {
                if (inc[i].robot_id == se->robot_id && streq_ptr(inc[i].event_name, event) && inc[i].created_at <= now) {
                        if (k != i) {
                                azi3_incoming tmp = inc[k];
                                inc[k] = inc[i];
                                inc[i] = tmp;
                        }
                        k++;
                }
        }
        if (k > 1)
                qsort(inc, k, sizeof(inc[0]), incoming_compare);
        /* the dropped ones stay beyond k and are freed with the array */
        *ret = inc;
        *ret_n = n;
        return (int) MIN(k, (size_t) INT32_MAX);
}

/* As session_history_take() for a replay made here and now. */
static int session_history(azi3_service *s, const azi3_session *se, usec_t since, usec_t now, azi3_call *call,
                           azi3_incoming **ret, size_t *ret_n) {
        megazord_reply reply = {};
        int r;

        r = megazord_replay(s->mz, se->robot_id, rule_event(s, se), since, call, &reply.incomings, &reply.n_incomings);
        if (r < 0)
                return r;
        return session_history_take(s, se, now, &reply, ret, ret_n);
}

/* Applies history INC (K entries, sorted) to the session through 8.1 step 2, inside the
 * caller's transaction, in which the session's owed alarms OWED (N_OWED, time order) were read.
 * If an event of it (or one the store holds) lies inside an expired window whose alarm is not
 * posted, that window is judged again: the session is rewound to it and every event since its
 * since is applied again, in time order, so it closes as activity (issue 17). Returns 1 if a
 * window was judged again, 0 if not, or a negative errno. */
static int session_apply_history(azi3_service *s, const azi3_session *se, const azi3_incoming *inc, size_t k,
                                 const azi3_window *owed, size_t n_owed, usec_t now, event_counts *ec,
                                 int64_t *ret_rejudged) {
        _cleanup_free_ azi3_event *stored = NULL;
        _cleanup_free_ azi3_incoming *all = NULL;
        size_t n_stored = 0, n_all = 0;
        const azi3_window *target = NULL;
        int r;

        if (n_owed > 0) {
                r = azi3_store_events_list(s->store, se->id, &stored, &n_stored);
                if (r < 0)
                        return r;
        }
        /* The earliest owed window with evidence inside. An event at the window's since is the one
         * that opened it (8.1 2.3/2.4 open [e, ...)), not activity inside it: counting it judged
         * every such window again whenever a run read the history while its alarm was owed. */
        for (size_t w = 0; w < n_owed && !target; w++) {
                for (size_t i = 0; i < k && !target; i++)
                        if (inc[i].created_at > owed[w].span.since && inc[i].created_at < owed[w].span.until)
                                target = &owed[w];
                for (size_t i = 0; i < n_stored && !target; i++)
                        if (stored[i].created_usec > owed[w].span.since && stored[i].created_usec < owed[w].span.until)
                                target = &owed[w];
        }

        if (!target) {
                for (size_t i = 0; i < k; i++) {
                        window_event_outcome o;

                        r = session_apply_event(s, se, inc[i].id, inc[i].created_at, now, &o);
                        if (r < 0)
                                return r;
                        event_count(ec, o);
                }
                return 0;
        }

        /* the evidence to apply again: the history and what the store held since the window */
        all = calloc(k + n_stored, sizeof(*all));
        if (!all)
                return -ENOMEM;
        for (size_t i = 0; i < k; i++)
                all[n_all++] = (azi3_incoming) { .id = inc[i].id, .created_at = inc[i].created_at };
        for (size_t i = 0; i < n_stored; i++)
                if (stored[i].created_usec >= target->span.since)
                        all[n_all++] = (azi3_incoming) { .id = stored[i].source_event_id,
                                                         .created_at = stored[i].created_usec };
        if (n_all > 1)
                qsort(all, n_all, sizeof(all[0]), incoming_compare);

        r = azi3_store_session_rewind(s->store, se->id, target->id);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n_all; i++) {
                window_event_outcome o;

                if (all[i].created_at < target->span.since)
                        continue;
                r = session_apply_event(s, se, all[i].id, all[i].created_at, now, &o);
                if (r < 0)
                        return r;
                event_count(ec, o);
        }
        *ret_rejudged = target->id;
        return 1;
}

/* Marks every owed alarm of OWED (N, the session's) whose window starts at or after SINCE as
 * confirmed by a history read at NOW that covered it, in the store and in OWED. */
static int session_mark_verified(azi3_service *s, azi3_window *owed, size_t n, usec_t since, usec_t now) {
        int r;

        for (size_t i = 0; i < n; i++)
                if (owed[i].alarm_verified_usec == 0 && owed[i].span.since >= since) {
                        r = azi3_store_alarm_mark_verified(s->store, owed[i].id, now);
                        if (r < 0)
                                return r;
                        owed[i].alarm_verified_usec = now;
                }
        return 0;
}

static void window_fields(const azi3_session *se, int64_t window_id, const window_span *span, char *buf, size_t len) {
        char since[32] = "?", until[32] = "?";

        if (span) {
                (void) azi3_format_timestamp(span->since, since);
                (void) azi3_format_timestamp(span->until, until);
                snprintf(buf, len, " [ROBOT_ID=%" PRId64 " SESSION_ID=%" PRId64 " WINDOW_ID=%" PRId64
                         " WINDOW_SINCE=%s WINDOW_UNTIL=%s]", se->robot_id, se->id, window_id, since, until);
        } else
                snprintf(buf, len, " [ROBOT_ID=%" PRId64 " SESSION_ID=%" PRId64 " WINDOW_ID=%" PRId64 "]", se->robot_id,
                         se->id, window_id);
}

/* Records as too late every alarm of OWED (*N, the session's) that has been owed longer than
 * max_alarm_age: it would reach a caregiver when it no longer helps (issue 17). They leave OWED,
 * which keeps its order. */
static int session_drop_too_late(azi3_service *s, const azi3_session *se, usec_t now, azi3_window *owed, size_t *n,
                                 expire_counts *c) {
        char name[SESSION_NAME_MAX], f[256];
        size_t k = 0;
        int r;

        for (size_t i = 0; i < *n; i++) {
                char age[DURATION_MAX], max[DURATION_MAX];

                if (!window_alarm_too_late(&owed[i].span, s->config->max_alarm_age, now)) {
                        owed[k++] = owed[i];
                        continue;
                }
                r = azi3_store_alarm_mark_too_late(s->store, owed[i].id);
                if (r < 0)
                        return r;
                c->too_late++;
                session_name(se, name, sizeof(name));
                window_fields(se, owed[i].id, &owed[i].span, f, sizeof(f));
                svc_log(s, LOG_CRIT,
                        "%s: the alarm for window %" PRId64 " was owed for %s, longer than max_alarm_age %s: NOT POSTED, "
                        "recorded as too_late (reference %s); the gap went unreported, check why it could not be "
                        "posted (Megazord history or alarm calls failing?)%s",
                        name, owed[i].id, duration_format(round_sec(now - owed[i].span.until), age, sizeof(age)),
                        duration_format(s->config->max_alarm_age, max, sizeof(max)), owed[i].alarm_reference_id, f);
        }
        *n = k;
        return 0;
}

/* One due session of a window-expiration run, carried through its Megazord calls: the history
 * read, the judgement, the alarms in time order, the completion. */
typedef struct expire_item {
        struct expire_run *run;
        azi3_session se;
        bool history;          /* a history read is needed ... */
        usec_t since;          /* ... since this instant */
        azi3_window *owed;     /* the owed alarms being posted, in time order */
        size_t n_owed, next;
        int64_t claimed;       /* the window whose alarm the judgement claimed with its close */
        int64_t row;           /* where its writes go: its current window's id, see expire_item_compare() */
        const char *event;
        int level;
} expire_item;

typedef struct expire_run {
        azi3_service *s;
        usec_t now;
        expire_counts c;
        run_state rs;
        int flush_error; /* a batch lost before the driver ran: fail what it queued */
        char owner[128]; /* who holds this run's alarm claims, see claim_owner() */
        azi3_window *in_play; /* every session's current window and owed alarms, as the run began */
        size_t n_in_play;
} expire_run;

/* How long this run's claim on an alarm holds: past its post's answer, whatever it takes. */
static usec_t claim_until(const expire_run *run) {
        return run->now + 2 * run->s->config->megazord_timeout + USEC_PER_MINUTE;
}

/* The windows of SESSION_ID in W (N, sorted by session), the first in *RET; returns how many. */
static size_t windows_of_session(const azi3_window *w, size_t n, int64_t session_id, const azi3_window **ret) {
        size_t lo = 0, hi = n, k;

        if (n == 0) {
                *ret = NULL; /* W may be NULL: no offset from it */
                return 0;
        }

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;

                if (w[mid].session_id < session_id)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        for (k = lo; k < n && w[k].session_id == session_id; k++)
                ;
        *ret = w + lo;
        return k - lo;
}

/* The id of the session's current window (else of its first owed one; 0: none), the row the
 * judgement writes. */
static int64_t session_row(const expire_run *run, int64_t session_id) {
        const azi3_window *w;
        size_t n = windows_of_session(run->in_play, run->n_in_play, session_id, &w);

        /* the current window comes last */
        return n == 0 ? 0 : w[n - 1].current ? w[n - 1].id : w[0].id;
}

/* Sessions in the order of the rows they write. Current windows open as activity comes, so in
 * session order their rows (and the pages holding them) are scattered: each commit of a
 * run over 10,000 sessions wrote ~450 pages for 250 sessions, ~40 in this order. */
static int expire_item_compare(const void *a, const void *b) {
        const expire_item *x = a, *y = b;

        if (x->row != y->row)
                return x->row < y->row ? -1 : 1;
        return (x->se.id > y->se.id) - (x->se.id < y->se.id);
}

/* 8.1 step 3.1 on complete evidence, first half: alarms owed too long are recorded as too late
 * later, in the judgement; here the session's current window and owed alarms, as the run read
 * them when it began, decide whether the robot's history must be read first, and since when
 * (the earliest window due or unconfirmed). The judgement reads them again, in its transaction. */
static void session_judge_prepare(expire_item *it) {
        expire_run *run = it->run;
        const azi3_session *se = &it->se;
        const azi3_window *w;
        size_t n;

        it->since = USEC_INFINITY;
        n = windows_of_session(run->in_play, run->n_in_play, se->id, &w);
        for (size_t i = 0; i < n; i++) {
                bool wanted = w[i].current ?
                        window_due(&se->params, &w[i].span, run->s->config->settle, run->now) &&
                                w[i].span.until - w[i].span.since == se->params.w :
                        w[i].alarm_verified_usec == 0 &&
                                !window_alarm_too_late(&w[i].span, run->s->config->max_alarm_age, run->now);

                if (wanted) {
                        it->history = true;
                        it->since = MIN(it->since, w[i].span.since);
                }
        }
}

/* 8.1 step 3.1, second half, in one transaction: the history REPLY (NULL: none was needed) is
 * applied first (judging an expired window again when it shows activity inside), then the
 * expiration step runs. A history that cannot be read does not stop the step: the window closes
 * as the model says and its alarm stays owed, unconfirmed, until a later run can read the
 * history. Returns 0, or a negative errno with the failure reported. */
static int session_judge_finish(expire_item *it, megazord_reply *reply) {
        azi3_service *s = it->run->s;
        const azi3_session *se = &it->se;
        expire_counts *c = &it->run->c;
        usec_t now = it->run->now;
        azi3_incoming *inc = NULL;
        size_t n_inc = 0;
        int k_inc = 0;
        char name[SESSION_NAME_MAX], f[256];
        azi3_windows_in_play wp = {};
        bool history_ok = false;
        event_counts ec = {};
        int64_t rejudged = 0;
        window_transition t = {};
        int r;

        session_name(se, name, sizeof(name));
        if (reply) {
                k_inc = reply->r;
                if (k_inc >= 0)
                        k_inc = session_history_take(s, se, now, reply, &inc, &n_inc);
                history_ok = k_inc >= 0;
                if (!history_ok) {
                        c->held++;
                        run_fail(s, &it->run->rs, k_inc, "%s: Megazord's history cannot be read, so no alarm is posted "
                                 "unverified (alarms stay owed, the next run checks again): %s", name,
                                 reply->call.message);
                }
        }

        /* A window closed, confirmed and posted here used to cost a dozen statements; now one
         * read of the windows in play, the close (with its confirmation and the claim of its
         * alarm) and the next window's open. */
        r = azi3_store_begin(s->store);
        if (r < 0)
                goto store_fail;
        {
                _cleanup_(azi3_store_rollbackp) _unused_ azi3_store *tx = s->store;
                azi3_alarm_hold hold = {};
                bool held = false;

                r = azi3_store_windows_in_play(s->store, se->id, &wp);
                if (r >= 0 && history_ok) {
                        r = session_apply_history(s, se, inc, (size_t) k_inc, wp.owed, wp.n_owed, now, &ec, &rejudged);
                        /* what it applied (or judged again) moved the windows: read them again */
                        if (r > 0 || (r >= 0 && ec.applied + ec.late > 0)) {
                                wp.owed = mfree(wp.owed);
                                wp = (azi3_windows_in_play) {};
                                r = azi3_store_windows_in_play(s->store, se->id, &wp);
                        }
                }
                if (r >= 0 && wp.has_current && window_due(&se->params, &wp.current.span, s->config->settle, now)) {
                        r = window_expire(&se->params, &wp.current.span, now, &t);
                        if (r > 0 && t.reason == WINDOW_CLOSE_EXPIRED && history_ok &&
                            wp.current.span.since >= it->since) {
                                /* the history read covered it: confirmed; and when it is the only
                                 * alarm owed it is posted next, so claimed as it closes */
                                held = true;
                                hold.verified_usec = now;
                                if (wp.n_owed == 0 &&
                                    !window_alarm_too_late(&wp.current.span, s->config->max_alarm_age, now)) {
                                        hold.claim_owner = it->run->owner;
                                        hold.claim_until_usec = claim_until(it->run);
                                }
                        }
                        if (r > 0)
                                r = azi3_store_apply_transition(s->store, se->id, wp.current.id, &t, now, 0,
                                                                held ? &hold : NULL, NULL);
                }
                /* the owed alarms as this transaction leaves them are what the run posts: those
                 * read, and the window it closed as expired */
                if (r >= 0 && t.close && t.reason == WINDOW_CLOSE_EXPIRED) {
                        azi3_window *owed = reallocarray(wp.owed, wp.n_owed + 1, sizeof(*owed));

                        if (!owed)
                                r = -ENOMEM;
                        else {
                                azi3_window *w = &owed[wp.n_owed++];

                                wp.owed = owed;
                                *w = wp.current;
                                w->current = false;
                                w->closed_usec = now;
                                w->reason = t.reason;
                                w->closing_event_id = 0;
                                w->alarm = WINDOW_ALARM_OWED;
                                if (held)
                                        w->alarm_verified_usec = now;
                                azi3_windows_sort_by_time(wp.owed, wp.n_owed);
                                if (hold.claim_owner)
                                        it->claimed = wp.current.id;
                        }
                }
                if (r >= 0) {
                        it->owed = TAKE_PTR(wp.owed);
                        it->n_owed = wp.n_owed;
                }
                if (r >= 0 && history_ok)
                        r = session_mark_verified(s, it->owed, it->n_owed, it->since, now);
                /* last: a window this run closed may already be too late (the daemon was down) */
                if (r >= 0)
                        r = session_drop_too_late(s, se, now, it->owed, &it->n_owed, c);
                if (r >= 0)
                        r = azi3_store_commit(s->store);
                if (r < 0) {
                        free(it->owed);
                        it->owed = NULL;
                        it->n_owed = 0;
                        it->claimed = 0;
                }
        }
        wp.owed = mfree(wp.owed); /* still here only when the transaction failed */
        inc = azi3_incomings_free(inc, n_inc);
        if (r < 0)
                goto store_fail;

        if (rejudged) {
                c->rejudged++;
                window_fields(se, rejudged, NULL, f, sizeof(f));
                svc_log(s, LOG_NOTICE, "%s: Megazord's history shows activity inside expired window %" PRId64
                        " whose alarm was not posted: judged again (%zu events applied again), no alarm for it%s",
                        name, rejudged, ec.applied + ec.late + ec.stale, f);
        } else if (ec.applied + ec.late > 0)
                svc_log(s, LOG_NOTICE, "%s: %zu events from Megazord's history that SQS had not delivered applied "
                        "(%zu in time, %zu late)", name, ec.applied + ec.late, ec.applied, ec.late);
        if (t.close) {
                if (t.reason == WINDOW_CLOSE_EXPIRED)
                        c->expired++;
                else
                        c->ended++;
                window_fields(se, wp.current.id, &wp.current.span, f, sizeof(f));
                svc_log(s, LOG_INFO, "%s: window %" PRId64 " closed as %s%s%s", name, wp.current.id,
                        window_close_reason_to_string(t.reason),
                        t.reason != WINDOW_CLOSE_EXPIRED ? "" : history_ok ?
                        " (alarm owed; Megazord's history confirms no activity)" :
                        " (alarm owed, held until Megazord's history confirms it)", f);
        }
        return 0;

store_fail:
        free(wp.owed);
        inc = azi3_incomings_free(inc, n_inc);
        run_fail(s, &it->run->rs, r, "%s: expiration step failed: %s", name, store_error(s));
        return r;
}

/* The expiration step without evidence, as session-cleanup runs it for sessions whose B passed
 * long ago: a window cut by B ends, a full one is judged by window-expiration. */
static int session_expire(azi3_service *s, const azi3_session *se, usec_t now, expire_counts *c) {
        _cleanup_(azi3_store_rollbackp) _unused_ azi3_store *tx = NULL;
        window_transition t;
        azi3_window cur;
        char name[SESSION_NAME_MAX], f[256];
        int r;

        r = azi3_store_begin(s->store);
        if (r < 0)
                return r;
        tx = s->store;
        r = azi3_store_window_current(s->store, se->id, &cur);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        if (cur.span.until - cur.span.since == se->params.w)
                return 0; /* may owe an alarm: only window-expiration judges it, on evidence */
        r = window_expire(&se->params, &cur.span, now, &t);
        if (r <= 0)
                return r;
        r = azi3_store_apply_transition(s->store, se->id, cur.id, &t, now, 0, NULL, NULL);
        if (r < 0)
                return r;
        r = azi3_store_commit(s->store);
        if (r < 0)
                return r;
        session_name(se, name, sizeof(name));
        c->ended++;
        window_fields(se, cur.id, &cur.span, f, sizeof(f));
        svc_log(s, LOG_INFO, "%s: window %" PRId64 " closed as %s%s", name, cur.id, window_close_reason_to_string(t.reason),
                f);
        return 1;
}

static void expire_item_step_complete(expire_item *it);
static void expire_item_post_next(expire_item *it);

/* Who holds an alarm claim: this run's process of the daemon instance. Unique per run, since
 * a claim taken again by its own holder succeeds. */
static const char *claim_owner(azi3_service *s, char *buf, size_t size) {
        snprintf(buf, size, "%.80s%spid %d", s->instance, s->instance[0] ? " " : "", (int) getpid());
        return buf;
}

/* The answer to the alarm of IT->owed[IT->next]: marked posted only now, after Megazord's 201,
 * so an alarm that failed (or whose answer never came) stays owed and is posted by a later
 * run with the same reference id; a later alarm of the session is never posted before it. */
static void alarm_done(megazord_multi *mm, megazord_reply *reply, void *userdata) {
        expire_item *it = userdata;
        azi3_service *s = it->run->s;
        const azi3_window *w = &it->owed[it->next];
        char name[SESSION_NAME_MAX], f[256];
        int r;

        (void) mm;
        session_name(&it->se, name, sizeof(name));
        if (reply->r < 0) {
                (void) azi3_store_alarm_release(s->store, w->id, it->run->owner);
                it->run->c.owed += it->n_owed - it->next;
                run_fail(s, &it->run->rs, reply->r, "%s: alarm for window %" PRId64 " stays owed (next run retries): %s",
                         name, w->id, reply->call.message);
                expire_item_step_complete(it);
                return;
        }
        r = azi3_store_alarm_mark_posted(s->store, w->id, it->run->now, reply->id);
        if (r < 0) {
                /* Posted but not recorded: the next run posts it again with the same
                 * reference id, which is all an at-least-once peer can be given. */
                it->run->c.owed += it->n_owed - it->next;
                run_fail(s, &it->run->rs, r, "%s: alarm %s posted as Megazord event %" PRId64
                         " but not recorded (it may be posted again with the same reference id): %s",
                         name, w->alarm_reference_id, reply->id, store_error(s));
                expire_item_step_complete(it);
                return;
        }
        it->run->c.posted++;
        window_fields(&it->se, w->id, &w->span, f, sizeof(f));
        svc_log(s, LOG_NOTICE, "%s: %s posted for window %" PRId64 " as Megazord event %" PRId64
                " (reference %s, Call-Ref %s)%s", name, it->event, w->id, reply->id, w->alarm_reference_id,
                reply->call.call_ref, f);
        it->next++;
        expire_item_post_next(it);
}

/* 8.1 step 3.2: posts the session's next owed alarm, each only once Megazord's history
 * confirmed it; after the last, or at the first that cannot be posted, the session moves on to
 * its completion. */
static void expire_item_post_next(expire_item *it) {
        azi3_service *s = it->run->s;
        const azi3_window *w;
        char name[SESSION_NAME_MAX], f[256];
        int r;

        if (it->next >= it->n_owed) {
                expire_item_step_complete(it);
                return;
        }
        w = &it->owed[it->next];
        session_name(&it->se, name, sizeof(name));
        if (w->alarm_verified_usec == 0) {
                /* the failed history read was reported by session_judge_finish() */
                it->run->c.owed += it->n_owed - it->next;
                window_fields(&it->se, w->id, &w->span, f, sizeof(f));
                svc_log(s, LOG_WARNING, "%s: alarm for window %" PRId64 " held: not confirmed against "
                        "Megazord's history yet%s", name, w->id, f);
                expire_item_step_complete(it);
                return;
        }
        /* Issue 15: window-expiration may run on several nodes at once; the claim, committed
         * before the post, lets exactly one of them post this alarm. */
        const char *owner = it->run->owner;

        r = w->id == it->claimed ? 1 : azi3_store_alarm_claim(s->store, w->id, owner, it->run->now, claim_until(it->run));
        if (r == -EALREADY || r == -EINVAL || r == -ENOENT) {
                /* since we read the list another run posted it (-EALREADY), or judged the window
                 * again on new evidence so it owes nothing (-EINVAL) or is gone (-ENOENT) */
                if (r != -EALREADY)
                        svc_log(s, LOG_INFO, "%s: %s; not posted", name, store_error(s));
                it->next++;
                expire_item_post_next(it);
                return;
        }
        if (r <= 0) {
                it->run->c.owed += it->n_owed - it->next;
                if (r == 0)
                        svc_log(s, LOG_INFO, "%s: %s", name, store_error(s));
                else
                        run_fail(s, &it->run->rs, r, "%s: cannot claim the alarm for window %" PRId64 ": %s", name,
                                 w->id, store_error(s));
                expire_item_step_complete(it);
                return;
        }
        r = megazord_multi_post_alarm(s->mm, it->se.robot_id, it->event, it->level, w->alarm_reference_id, alarm_done, it);
        if (r < 0) {
                (void) azi3_store_alarm_release(s->store, w->id, owner);
                it->run->c.owed += it->n_owed - it->next;
                run_fail(s, &it->run->rs, r, "%s: alarm for window %" PRId64 " stays owed (next run retries): %s", name,
                         w->id, strerror(-r));
                expire_item_step_complete(it);
        }
}

/* 8.1 step 3.2 after the judgement, which left the session's owed alarms in IT->owed: a claim
 * of each checks again that it is still owed. */
static void expire_item_step_alarms(expire_item *it) {
        azi3_service *s = it->run->s;

        if (it->n_owed > 0)
                rule_alarm(s, &it->se, &it->event, &it->level);
        it->next = 0;
        expire_item_post_next(it);
}

static void history_done(megazord_multi *mm, megazord_reply *reply, void *userdata) {
        expire_item *it = userdata;

        (void) mm;
        if (session_judge_finish(it, reply) < 0) {
                it->run->c.open++;
                return;
        }
        expire_item_step_alarms(it);
}

/* Starts one due session: its history read is queued, or, when none is needed, it is judged
 * and its alarms queued at once. */
static void expire_item_start(expire_item *it) {
        azi3_service *s = it->run->s;
        char name[SESSION_NAME_MAX];
        int r;

        session_judge_prepare(it);
        if (it->history) {
                r = megazord_multi_replay(s->mm, it->se.robot_id, rule_event(s, &it->se), it->since, history_done, it);
                if (r >= 0)
                        return;
                megazord_reply reply = { .r = r };
                session_name(&it->se, name, sizeof(name));
                snprintf(reply.call.message, sizeof(reply.call.message), "%s: history read not queued: %s", name,
                         strerror(-r));
                history_done(s->mm, &reply, it);
                return;
        }
        if (session_judge_finish(it, NULL) < 0) {
                it->run->c.open++;
                return;
        }
        expire_item_step_alarms(it);
}

/* 8.1 step 4: completes the session if it is done, queuing its unsubscription in the same
 * transaction, then tries the deletion. Returns 1 if completed. */
static int session_try_complete(azi3_service *s, const azi3_session *se, usec_t now, run_state *rs) {
        _cleanup_free_ azi3_window *owed = NULL;
        session_result res = SESSION_RESULT_NO_ALARMS;
        azi3_window cur;
        char name[SESSION_NAME_MAX];
        size_t n = 0;
        int r;

        if (now < se->params.b)
                return 0;
        session_name(se, name, sizeof(name));

        r = azi3_store_begin(s->store);
        if (r >= 0) {
                _cleanup_(azi3_store_rollbackp) _unused_ azi3_store *tx = s->store;

                r = azi3_store_window_current(s->store, se->id, &cur);
                if (r >= 0)
                        return 0;
                if (r == -ENOENT)
                        r = azi3_store_alarms_owed(s->store, se->id, &owed, &n);
                if (r >= 0 && !window_session_complete(&se->params, false, n, now))
                        return 0;
                if (r >= 0)
                        r = azi3_store_session_complete(s->store, se->id, now, &res);
                if (r >= 0 && se->subscription_id > 0)
                        r = azi3_store_unsubscription_add(s->store, se->robot_id, se->subscription_id, now);
                if (r >= 0)
                        r = azi3_store_commit(s->store);
        }
        if (r < 0) {
                run_fail(s, rs, r, "%s: cannot complete it: %s", name, store_error(s));
                return 0;
        }
        if (res == SESSION_RESULT_NO_EVENTS)
                svc_log(s, LOG_WARNING, "%s completed: %s: not one %s event between A and B; a quiet resident and an "
                        "offline robot or sensor look the same to Megazord, check the robot [ROBOT_ID=%" PRId64
                        " SESSION_ID=%" PRId64 "]", name, session_result_to_string(res), rule_event(s, se), se->robot_id,
                        se->id);
        else
                svc_log(s, LOG_INFO, "%s completed: %s [ROBOT_ID=%" PRId64 " SESSION_ID=%" PRId64 "]", name,
                        session_result_to_string(res), se->robot_id, se->id);
        if (se->subscription_id > 0)
                unsubscribe_queued(s, se->robot_id, se->subscription_id, 0, now, rs, NULL);
        return 1;
}

/* Issue 17: a session whose rule left the configuration completes at once as rule_removed; its
 * owed alarms are dropped, never posted; its subscription is deleted. Returns 1 if it was. */
static int session_complete_if_removed(azi3_service *s, const azi3_session *se, usec_t now, run_state *rs) {
        session_result res;
        char name[SESSION_NAME_MAX];
        size_t dropped = 0;
        int r;

        if (azi3_config_find_rule(s->config, se->robot_id, se->rule_id))
                return 0;
        session_name(se, name, sizeof(name));
        r = azi3_store_begin(s->store);
        if (r >= 0) {
                _cleanup_(azi3_store_rollbackp) _unused_ azi3_store *tx = s->store;

                r = azi3_store_session_complete_rule_removed(s->store, se->id, now, &dropped, &res);
                if (r >= 0 && se->subscription_id > 0)
                        r = azi3_store_unsubscription_add(s->store, se->robot_id, se->subscription_id, now);
                if (r >= 0)
                        r = azi3_store_commit(s->store);
        }
        if (r < 0) {
                run_fail(s, rs, r, "%s: its rule is no longer in %s but the session cannot be completed: %s", name,
                         s->config->path, store_error(s));
                return 0;
        }
        svc_log(s, LOG_NOTICE, "%s: rule no longer in %s: completed as %s%s [ROBOT_ID=%" PRId64 " SESSION_ID=%" PRId64 "]",
                name, s->config->path, session_result_to_string(res),
                dropped > 0 ? ", its owed alarms dropped unposted" : "", se->robot_id, se->id);
        if (se->subscription_id > 0)
                unsubscribe_queued(s, se->robot_id, se->subscription_id, 0, now, rs, NULL);
        return 1;
}

static void expire_item_step_complete(expire_item *it) {
        if (session_try_complete(it->run->s, &it->se, it->run->now, &it->run->rs) > 0)
                it->run->c.completed++;
        else
                it->run->c.open++;
}

/* Sessions judged in the first pass between two commits of the run's batch. */
#define EXPIRE_BATCH_SESSIONS 256

/* Commits the run's batched store writes (SQLite): the judgements, claims and posts recorded
 * since the last commit share one. The driver calls this before a post whose claim is not
 * committed yet leaves, after every 512 answers, and before it waits on Megazord longer than a
 * millisecond, so no lock is held while the run waits (megazord_before_send_func). Returns 0, or
 * a negative errno when those writes are lost; the posts they queued are then not sent, and
 * their alarms stay owed for the next run. */
static int expire_flush(expire_run *run) {
        int r = azi3_store_batch_flush(run->s->store);

        if (r < 0)
                run_fail(run->s, &run->rs, r, "the store writes of this run since its last commit are lost, so the "
                         "Megazord calls they queued are not sent (alarms stay owed, the next run judges again): %s",
                         store_error(run->s));
        if (run->flush_error < 0) {
                r = r < 0 ? r : run->flush_error;
                run->flush_error = 0;
        }
        return r;
}

static int expire_before_send(megazord_multi *mm, void *userdata) {
        (void) mm;
        return expire_flush(userdata);
}

azi3_result azi3_window_expiration(azi3_service *s, usec_t now, char *msg, size_t msglen) {
        _cleanup_free_ azi3_session *open = NULL;
        _cleanup_free_ expire_item *items = NULL;
        _cleanup_free_ azi3_window *in_play = NULL;
        expire_run run = { .s = s, .now = now };
        expire_counts *c = &run.c;
        char summary[320] = "";
        size_t n = 0, n_open = 0;
        int r;

        /* only the sessions with something due: the steps below would read the others, each in
         * a transaction of its own, and leave them as they are */
        r = azi3_store_sessions_list_due(s->store, now, &open, &n, &n_open);
        if (r < 0) {
                run_fail(s, &run.rs, r, "cannot list the open sessions of %s: %s", s->config->store, store_error(s));
                publish_metrics(s, now, true);
                return run_finish(&run.rs, "nothing done", msg, msglen);
        }
        c->open = n_open - n;
        r = azi3_store_windows_in_play_all(s->store, &in_play, &run.n_in_play);
        run.in_play = in_play;
        if (r < 0) {
                run_fail(s, &run.rs, r, "cannot read the current windows and owed alarms of %s: %s", s->config->store,
                         store_error(s));
                publish_metrics(s, now, true);
                return run_finish(&run.rs, "nothing done", msg, msglen);
        }
        claim_owner(s, run.owner, sizeof(run.owner));
        items = calloc(MAX(n, (size_t) 1), sizeof(*items));
        if (!items) {
                run_fail(s, &run.rs, -ENOMEM, "out of memory for %zu due sessions", n);
                return run_finish(&run.rs, "nothing done", msg, msglen);
        }
        /* Each session's steps run in order (history, judgement, alarms, completion), its calls
         * chained on the run's driver; the sessions overlap, up to megazord.max_parallel calls.
         * Their transactions share commits (a dozen statements in three transactions per
         * session were most of the run's time), each commit before the calls it queued leave. */
        r = azi3_store_batch_begin(s->store);
        if (r < 0)
                run_fail(s, &run.rs, r, "cannot batch this run's commits, each transaction commits alone: %s",
                         store_error(s));
        megazord_multi_set_before_send(s->mm, expire_before_send, &run);
        for (size_t i = 0; i < n; i++)
                items[i] = (expire_item) { .run = &run, .se = open[i], .row = session_row(&run, open[i].id) };
        if (n > 1)
                qsort(items, n, sizeof(*items), expire_item_compare);
        for (size_t i = 0; i < n; i++) {
                if (session_complete_if_removed(s, &items[i].se, now, &run.rs) > 0)
                        c->removed++;
                else
                        expire_item_start(&items[i]);
                if (i % EXPIRE_BATCH_SESSIONS == EXPIRE_BATCH_SESSIONS - 1) {
                        r = expire_flush(&run);
                        if (r < 0)
                                run.flush_error = r;
                }
        }
        run_calls(s, &run.rs);
        megazord_multi_set_before_send(s->mm, NULL, NULL);
        r = azi3_store_batch_end(s->store);
        if (r < 0)
                run_fail(s, &run.rs, r, "the last store writes of this run are lost (alarms posted but not recorded "
                         "are posted again by the next run, with the same reference id): %s", store_error(s));
        for (size_t i = 0; i < n; i++)
                free(items[i].owed);

        summary_add(summary, sizeof(summary), c->open, "session open", "sessions open", true);
        summary_add(summary, sizeof(summary), c->rejudged, "window judged again on history",
                    "windows judged again on history", false);
        summary_add(summary, sizeof(summary), c->expired, "window expired", "windows expired", false);
        summary_add(summary, sizeof(summary), c->ended, "window ended", "windows ended", false);
        summary_add(summary, sizeof(summary), c->posted, "alarm posted", "alarms posted", false);
        summary_add(summary, sizeof(summary), c->owed, "alarm still owed", "alarms still owed", false);
        summary_add(summary, sizeof(summary), c->too_late, "alarm too late (not posted)", "alarms too late (not posted)",
                    false);
        summary_add(summary, sizeof(summary), c->completed, "session completed", "sessions completed", false);
        summary_add(summary, sizeof(summary), c->removed, "session of a removed rule completed",
                    "sessions of removed rules completed", false);
        publish_metrics(s, now, true);
        return run_finish(&run.rs, summary, msg, msglen);
}

/* --- session-cleanup ------------------------------------------------------------------------ */

azi3_result azi3_session_cleanup(azi3_service *s, usec_t now, char *msg, size_t msglen) {
        _cleanup_free_ azi3_session *open = NULL;
        _cleanup_free_ azi3_unsubscription *due = NULL;
        run_state rs = {};
        expire_counts c = {};
        size_t n_open = 0, n_due = 0, n_deleted = 0, n_unsub = 0, n_left = 0;
        char summary[256] = "";
        int r;

        r = azi3_store_sessions_delete_completed(s->store, now > s->config->retention ? now - s->config->retention : 0,
                                                 &n_deleted);
        if (r < 0)
                run_fail(s, &rs, r, "deleting completed sessions older than the retention from %s: %s",
                         s->config->store, store_error(s));
        else if (n_deleted > 0)
                svc_log(s, LOG_INFO, "deleted %zu completed session%s older than the retention", n_deleted,
                        n_deleted == 1 ? "" : "s");

        r = azi3_store_sessions_list_open(s->store, &open, &n_open);
        if (r < 0)
                run_fail(s, &rs, r, "cannot list the open sessions of %s: %s", s->config->store, store_error(s));
        for (size_t i = 0; i < n_open; i++) {
                char name[SESSION_NAME_MAX];

                if (session_complete_if_removed(s, &open[i], now, &rs) > 0) {
                        c.removed++;
                        continue;
                }
                if (now < open[i].params.b)
                        continue;
                session_name(&open[i], name, sizeof(name));
                r = session_expire(s, &open[i], now, &c);
                if (r < 0) {
                        run_fail(s, &rs, r, "%s: expiration step failed: %s", name, store_error(s));
                        continue;
                }
                if (session_try_complete(s, &open[i], now, &rs) > 0)
                        c.stale_completed++;
                else {
                        n_left++;
                        svc_log(s, LOG_NOTICE, "%s ended but still has a full window to judge or an alarm owed; left to window-expiration", name);
                }
        }

        /* Deletions queued by the completions above are tried now, before the due ones are
         * listed; a failed one is not due again until its backoff passed. */
        run_calls(s, &rs);
        r = azi3_store_unsubscriptions_due(s->store, now, &due, &n_due);
        if (r < 0)
                run_fail(s, &rs, r, "cannot list the pending unsubscriptions of %s: %s", s->config->store, store_error(s));
        for (size_t i = 0; i < n_due; i++)
                unsubscribe_queued(s, due[i].robot_id, due[i].subscription_id, due[i].attempts, now, &rs, &n_unsub);
        run_calls(s, &rs);

        summary_add(summary, sizeof(summary), n_deleted, "old session deleted", "old sessions deleted", true);
        summary_add(summary, sizeof(summary), c.stale_completed, "stale session completed", "stale sessions completed",
                    false);
        summary_add(summary, sizeof(summary), n_left, "ended session still owing an alarm",
                    "ended sessions still owing alarms", false);
        summary_add(summary, sizeof(summary), c.removed, "session of a removed rule completed",
                    "sessions of removed rules completed", false);
        summary_add(summary, sizeof(summary), n_unsub, "pending unsubscription done", "pending unsubscriptions done",
                    false);
        summary_add(summary, sizeof(summary), n_due - n_unsub, "unsubscription still pending",
                    "unsubscriptions still pending", false);
        publish_metrics(s, now, true);
        return run_finish(&rs, summary, msg, msglen);
}

/* --- sqs-consumer -------------------------------------------------------------------------- */

typedef struct sqs_item {
        const sqs_message *m;
        azi3_sqs_event ev;
        bool parsed;
        bool held; /* dated a little after the run's clock: left for redelivery */
} sqs_item;

/* How far after the run's clock an event's createdAt may be and still be waited for (clocks a
 * little apart); later than that it is refused as malformed, so it cannot loop for days. */
#define SQS_EVENT_AHEAD_MAX (5 * USEC_PER_MINUTE)

static int sqs_item_compare(const void *a, const void *b) {
        const sqs_item *x = a, *y = b;

        if (x->parsed != y->parsed)
                return x->parsed ? 1 : -1;
        if (x->ev.created_at != y->ev.created_at)
                return x->ev.created_at < y->ev.created_at ? -1 : 1;
        return (x->ev.source_event_id > y->ev.source_event_id) - (x->ev.source_event_id < y->ev.source_event_id);
}

typedef struct sqs_counts {
        size_t receives, received, malformed, held, unknown, ignored, deleted;
        event_counts ev;
} sqs_counts;

static int sqs_ensure_client(azi3_service *s, run_state *rs) {
        azi3_call err = {};
        int r;

        if (s->sqs)
                return 0;
        r = sqs_client_new(s->config->sqs_endpoint, s->config->sqs_region, s->config->sqs_queue_url,
                           s->config->megazord_timeout, NULL, &err, &s->sqs);
        if (r < 0)
                run_fail(s, rs, r, "SQS client for %s (from %s): %s", s->config->sqs_queue_url, s->config->path,
                         err.message[0] ? err.message : strerror(-r));
        return r;
}

/* One received batch: apply in one transaction, delete after the commit. Returns how many
 * messages were received, or a negative errno (already reported) when the run should stop. */
static int sqs_batch(azi3_service *s, unsigned wait_seconds, usec_t now, sqs_counts *c, run_state *rs) {
        sqs_message *msgs = NULL;
        _cleanup_free_ sqs_item *items = NULL;
        _cleanup_free_ const char **handles = NULL;
        _cleanup_free_ sqs_batch_failure *failures = NULL;
        const sqs_item *failed = NULL;
        size_t n = 0, n_failed = 0;
        azi3_call call = {};
        int r;

        r = sqs_receive(s->sqs, SQS_BATCH_MAX, wait_seconds, (int) (s->config->sqs_visibility_timeout / USEC_PER_SEC),
                        &call, &msgs, &n);
        if (r < 0) {
                run_fail(s, rs, r, "receiving from SQS failed: %s", call.message);
                return r;
        }
        c->receives++;
        if (n == 0)
                return 0;
        c->received += n;

        items = calloc(n, sizeof(*items));
        handles = calloc(n, sizeof(*handles));
        if (!items || !handles) {
                sqs_messages_free(msgs, n);
                run_fail(s, rs, -ENOMEM, "out of memory handling %zu SQS messages", n);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++) {
                parse_error pe = {};

                items[i].m = &msgs[i];
                r = azi3_parse_sqs_body(msgs[i].body, msgs[i].body_size, &items[i].ev, &pe);
                if (r < 0) {
                        c->malformed++;
                        svc_log(s, LOG_WARNING, "SQS message %s has a malformed body (deleted): %s",
                                msgs[i].message_id ? msgs[i].message_id : "?", pe.message);
                        continue;
                }
                /* An event cannot have happened after the run's clock (session_history_take());
                 * applied, one dated late in the day closed the current window as expired hours
                 * early (a false alarm) and left nothing to monitor until B. */
                if (items[i].ev.created_at > now) {
                        char at[32] = "?", ours[32] = "?";
                        bool wait = items[i].ev.created_at - now <= SQS_EVENT_AHEAD_MAX;

                        (void) azi3_format_timestamp(items[i].ev.created_at, at);
                        (void) azi3_format_timestamp(now, ours);
                        svc_log(s, LOG_WARNING, "SQS message %s: event %" PRId64 " of robot %" PRId64 " is dated %s, "
                                "after this run's clock %s (are the clocks apart? check NTP here and at Megazord): %s",
                                msgs[i].message_id ? msgs[i].message_id : "?", items[i].ev.source_event_id,
                                items[i].ev.robot_id, at, ours,
                                wait ? "left for redelivery, applied once its time has come" :
                                       "more than 5 min ahead, deleted as malformed (the history read before its "
                                       "window is judged still finds it)");
                        if (wait) {
                                c->held++;
                                items[i].held = true;
                        } else
                                c->malformed++;
                        azi3_sqs_event_done(&items[i].ev);
                        continue;
                }
                items[i].parsed = true;
        }
        qsort(items, n, sizeof(items[0]), sqs_item_compare);

        r = azi3_store_begin(s->store);
        if (r >= 0) {
                _cleanup_(azi3_store_rollbackp) _unused_ azi3_store *tx = s->store;

                for (size_t i = 0; r >= 0 && i < n; i++) {
                        const azi3_sqs_event *ev = &items[i].ev;
                        const azi3_rule *rule;
                        window_event_outcome o;
                        azi3_session se;

                        if (!items[i].parsed)
                                continue;
                        failed = &items[i]; /* until it is through */
                        r = azi3_store_session_find_by_subscription(s->store, ev->subscription_id, ev->robot_id, &se);
                        if (r == -ENOENT) {
                                r = 0;
                                c->unknown++;
                                svc_log(s, LOG_WARNING, "SQS message %s: no session has subscription %" PRId64
                                        " of robot %" PRId64 " (deleted)", items[i].m->message_id,
                                        ev->subscription_id, ev->robot_id);
                                continue;
                        }
                        if (r < 0)
                                break;
                        rule = azi3_config_find_rule(s->config, se.robot_id, se.rule_id);
                        if (!streq_ptr(ev->event_name, rule ? rule->event : AZI3_DEFAULT_EVENT)) {
                                c->ignored++;
                                svc_log(s, LOG_WARNING, "SQS message %s: event %s is not the one session %" PRId64
                                        " monitors (deleted)", items[i].m->message_id, ev->event_name, se.id);
                                continue;
                        }
                        r = session_apply_event(s, &se, ev->source_event_id, ev->created_at, now, &o);
                        if (r >= 0) {
                                char at[32] = "?";

                                (void) azi3_format_timestamp(ev->created_at, at);
                                event_count(&c->ev, o);
                                svc_log(s, LOG_INFO, "event %" PRId64 " of robot %" PRId64 " created %s, for session %" PRId64
                                        ": %s [ROBOT_ID=%" PRId64 " SESSION_ID=%" PRId64 "]", ev->source_event_id,
                                        ev->robot_id, at, se.id, window_event_outcome_to_string(o), ev->robot_id, se.id);
                        }
                }
                if (r >= 0)
                        failed = NULL;
                if (r >= 0)
                        r = azi3_store_commit(s->store);
        }
        if (r < 0) {
                if (failed)
                        run_fail(s, rs, r, "%zu SQS messages left for redelivery: message %s (event %" PRId64 " of robot %"
                                 PRId64 ", subscription %" PRId64 ") could not be applied: %s", n,
                                 failed->m->message_id ? failed->m->message_id : "?", failed->ev.source_event_id,
                                 failed->ev.robot_id, failed->ev.subscription_id, store_error(s));
                else
                        run_fail(s, rs, r, "%zu SQS messages left for redelivery: %s", n, store_error(s));
        }
        /* what is deleted: all but the events held for later (FAILURES index into it) */
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
                if (!items[i].held) {
                        items[k].m = items[i].m; /* (only m is read past here) */
                        handles[k++] = items[i].m->receipt_handle;
                }
                azi3_sqs_event_done(&items[i].ev);
        }
        if (r < 0) {
                sqs_messages_free(msgs, n);
                return r;
        }

        r = k == 0 ? 0 : sqs_delete_batch(s->sqs, handles, k, &call, &failures, &n_failed);
        if (r < 0) {
                run_fail(s, rs, r, "deleting %zu applied SQS messages failed (redelivered ones are de-duplicated): %s",
                         k, call.message);
                sqs_messages_free(msgs, n);
                return r;
        }
        c->deleted += k - n_failed;
        for (size_t i = 0; i < n_failed; i++)
                svc_log(s, LOG_WARNING, "SQS refused to delete message %s: %s: %s (it will be redelivered)",
                        items[failures[i].index].m->message_id, failures[i].code, failures[i].message);
        sqs_messages_free(msgs, n);
        return (int) MIN(n, (size_t) INT32_MAX);
}

/* Keeps in the store when SQS was last heard (monitoring-scheduler replays the open sessions
 * when it was not for replay_after) and the event counters of the metrics. */
static void sqs_record(azi3_service *s, usec_t now, bool heard, const sqs_counts *c, run_state *rs) {
        const size_t add[] = { c->ev.applied, c->ev.late, c->ev.stale, c->ev.duplicate };
        static const char *const keys[] = { "sqs_applied_total", "sqs_late_total", "sqs_stale_total",
                                            "sqs_duplicate_total" };
        uint64_t v;
        int r;

        r = azi3_store_begin(s->store);
        if (r >= 0) {
                _cleanup_(azi3_store_rollbackp) _unused_ azi3_store *tx = s->store;

                if (heard) {
                        r = meta_set_u64(s, META_SQS_LAST_RECEIVE, now);
                        if (r >= 0)
                                r = azi3_store_meta_set(s->store, META_SQS_FIRST_FAILURE, "0");
                } else if (meta_get_u64(s, META_SQS_LAST_RECEIVE, &v) < 0 &&
                           (meta_get_u64(s, META_SQS_FIRST_FAILURE, &v) < 0 || v == 0))
                        r = meta_set_u64(s, META_SQS_FIRST_FAILURE, now);
                for (size_t i = 0; r >= 0 && i < ELEMENTSOF(keys); i++) {
                        if (add[i] == 0)
                                continue;
                        if (meta_get_u64(s, keys[i], &v) < 0)
                                v = 0;
                        r = meta_set_u64(s, keys[i], v + add[i]);
                }
                if (r >= 0)
                        r = azi3_store_commit(s->store);
        }
        if (r < 0)
                run_fail(s, rs, r, "cannot record the SQS receive in %s: %s", s->config->store, store_error(s));
}

azi3_result azi3_sqs_consumer(azi3_service *s, usec_t now, char *msg, size_t msglen) {
        run_state rs = {};
        sqs_counts c = {};
        char summary[320] = "";
        int r;

        bool heard = false;

        if (sqs_ensure_client(s, &rs) >= 0)
                for (unsigned i = 0; i < AZI3_SQS_BATCHES_PER_RUN; i++) {
                        /* long-poll for the first batch only; then drain what is already there */
                        r = sqs_batch(s, i == 0 ? (unsigned) (s->config->sqs_wait_time / USEC_PER_SEC) : 0, now, &c, &rs);
                        if (r < (int) SQS_BATCH_MAX)
                                break;
                }
        heard = c.receives > 0;
        sqs_record(s, now, heard, &c, &rs);

        summary_add(summary, sizeof(summary), c.received, "message received", "messages received", true);
        summary_add(summary, sizeof(summary), c.ev.applied, "event applied", "events applied", false);
        summary_add(summary, sizeof(summary), c.ev.late, "late event", "late events", false);
        summary_add(summary, sizeof(summary), c.ev.stale, "stale event", "stale events", false);
        summary_add(summary, sizeof(summary), c.ev.duplicate, "duplicate", "duplicates", false);
        summary_add(summary, sizeof(summary), c.malformed, "malformed", "malformed", false);
        summary_add(summary, sizeof(summary), c.held, "dated ahead (left for redelivery)",
                    "dated ahead (left for redelivery)", false);
        summary_add(summary, sizeof(summary), c.unknown, "unknown subscription", "unknown subscriptions", false);
        summary_add(summary, sizeof(summary), c.ignored, "other event", "other events", false);
        if (c.received > 0)
                summary_add(summary, sizeof(summary), c.deleted, "deleted", "deleted", true);
        publish_metrics(s, now, false);
        return run_finish(&rs, summary, msg, msglen);
}

/* --- one run ------------------------------------------------------------------------------- */

azi3_result azi3_job_run(azi3_job job, const char *config_path, usec_t now, const azi3_hooks *hooks, char *msg,
                         size_t msglen) {
        azi3_log_func log = hooks ? hooks->log : NULL;
        void *userdata = hooks ? hooks->userdata : NULL;
        _cleanup_(azi3_config_freep) azi3_config *config = NULL;
        _cleanup_(azi3_service_freep) azi3_service *s = NULL;
        azi3_config_errors errors = {};
        int r;

        r = azi3_config_load(config_path, &config, &errors);
        if (r >= 0)
                azi3_config_errors_clear(&errors); /* holds the file name even without errors */
        if (r < 0) {
                size_t used = 0;

                if (msg && msglen > 0)
                        msg[0] = '\0';
                for (size_t i = 0; i < errors.n; i++) {
                        _cleanup_free_ char *line = azi3_config_error_format(&errors, i);

                        if (line && log) {
                                azi3_service tmp = { .log = log, .userdata = userdata };
                                svc_log(&tmp, LOG_ERR, "%s", line);
                        }
                        if (line && msg && used + 1 < msglen)
                                used += (size_t) snprintf(msg + used, msglen - used, "%s%s", i > 0 ? "; " : "", line);
                }
                if (errors.n == 0 && msg)
                        snprintf(msg, msglen, "cannot load %s: %s", config_path, strerror(-r));
                azi3_config_errors_clear(&errors);
                /* a file that cannot be read may appear (deploys); a file with errors needs an edit */
                return r == -EINVAL ? AZI3_RESULT_FAIL : AZI3_RESULT_RETRY;
        }

        r = azi3_service_new(config, log, userdata, msg, msglen, &s);
        if (r < 0)
                return result_of(r);
        azi3_service_set_hooks(s, hooks);

        switch (job) {
        case AZI3_JOB_MONITORING_SCHEDULER:
                return azi3_monitoring_scheduler(s, now, msg, msglen);
        case AZI3_JOB_WINDOW_EXPIRATION:
                return azi3_window_expiration(s, now, msg, msglen);
        case AZI3_JOB_SESSION_CLEANUP:
                return azi3_session_cleanup(s, now, msg, msglen);
        case AZI3_JOB_SQS_CONSUMER:
                return azi3_sqs_consumer(s, now, msg, msglen);
        default:
                if (msg)
                        snprintf(msg, msglen, "unknown azi3 job %d", (int) job);
                return AZI3_RESULT_FAIL;
        }
}

static const char *const result_names[_AZI3_RESULT_MAX] = {
        [AZI3_RESULT_OK] = "ok",
        [AZI3_RESULT_RETRY] = "retry",
        [AZI3_RESULT_FAIL] = "fail",
};

const char *azi3_result_to_string(azi3_result r) {
        return r >= 0 && r < _AZI3_RESULT_MAX ? result_names[r] : NULL;
}

static const char *const job_names[_AZI3_JOB_MAX] = {
        [AZI3_JOB_MONITORING_SCHEDULER] = "monitoring-scheduler",
        [AZI3_JOB_WINDOW_EXPIRATION] = "window-expiration",
        [AZI3_JOB_SESSION_CLEANUP] = "session-cleanup",
        [AZI3_JOB_SQS_CONSUMER] = "sqs-consumer",
};

const char *azi3_job_to_string(azi3_job j) {
        return j >= 0 && j < _AZI3_JOB_MAX ? job_names[j] : NULL;
}
