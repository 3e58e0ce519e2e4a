/* SPDX-License-Identifier: MIT */
#pragma once

/* The four azi-3 jobs of SPEC 8.2 as functions of (configuration, store, peers, logical clock),
 * so they can be tested without the daemon; the plugins in jobs/<name>/ are thin shells over
 * azi3_job_run(). Every step that changes state is one store transaction; a network call never
 * waits while a transaction is open, except that nothing is committed until the calls it
 * depends on succeeded. (window-expiration on SQLite batches its transactions into shared
 * commits: a call may be sent and answered while the batch is open, and the batch is committed
 * before any wait on Megazord longer than a millisecond and before any call that changes
 * Megazord on its writes.)
 *
 * Decisions made here (beyond SPEC 8.1-8.4):
 *  - Session creation subscribes, then replays, then writes session, subscription id, first
 *    window and the replayed events in ONE transaction. A failed replay or a failed commit
 *    undoes the subscription (DELETE at once; if that fails too, it is queued as a pending
 *    unsubscription for session-cleanup; and it expires at B by itself anyway). Replaying
 *    before the commit means an SQS message of the new subscription that is received in the
 *    few milliseconds between the replay and the commit is treated as an unknown
 *    subscription; its event was created after the replay call, a window SQS's own delivery
 *    latency makes practically empty.
 *  - Owed alarms of a session are posted in time order; the first failure stops that session's
 *    posting (a later alarm is never posted before an earlier one).
 *  - A session completes (8.1 step 4) in the same transaction that queues its unsubscription;
 *    the DELETE is tried right after the commit and the queue entry removed when it worked.
 *    A crash in between leaves the entry for session-cleanup: no subscription is forgotten.
 *  - session-cleanup completes open sessions whose B passed but posts no alarms itself (only
 *    window-expiration posts, so one alarm is never posted by two jobs at once); a stale
 *    session that still owes an alarm stays open for window-expiration.
 *  - sqs-consumer sorts a batch by event time before applying it, and keeps receiving (without
 *    waiting) while batches come back full, at most AZI3_SQS_BATCHES_PER_RUN of them.
 *
 * Results: OK, RETRY when a peer (Megazord, SQS) or the store could not be reached or was busy
 * (transient), FAIL when retrying cannot help (bad configuration, a 4xx answer, a corrupt
 * store). The message names the peer and why, followed by the run's summary. */

#include <stdarg.h>
#include <stddef.h>

#include "config.h"
#include "store.h"

/* the configuration's limit binds; the store accepts longer ids */
_Static_assert(AZI3_RULE_ID_MAX <= AZI3_STORE_RULE_ID_MAX, "rule ids from the config must fit the store");

#define AZI3_SQS_BATCHES_PER_RUN 10u
#define AZI3_MESSAGE_MAX 1024u
/* When a failed subscription deletion is tried again (doubling per attempt, at most 1 h). */
#define AZI3_UNSUB_BACKOFF (5 * USEC_PER_MINUTE)
#define AZI3_UNSUB_BACKOFF_MAX USEC_PER_HOUR

typedef enum azi3_result {
        AZI3_RESULT_OK,
        AZI3_RESULT_RETRY,
        AZI3_RESULT_FAIL,
        _AZI3_RESULT_MAX,
        _AZI3_RESULT_INVALID = -EINVAL,
} azi3_result;

typedef enum azi3_job {
        AZI3_JOB_MONITORING_SCHEDULER,
        AZI3_JOB_WINDOW_EXPIRATION,
        AZI3_JOB_SESSION_CLEANUP,
        AZI3_JOB_SQS_CONSUMER,
        _AZI3_JOB_MAX,
        _AZI3_JOB_INVALID = -EINVAL,
} azi3_job;

/* LEVEL is a syslog priority (LOG_ERR .. LOG_DEBUG). */
typedef void (*azi3_log_func)(void *userdata, int level, const char *fmt, va_list ap);

/* A gauge for the daemon's metrics (issue 17): NAME matches [a-zA-Z_:][a-zA-Z0-9_:]*, LABELS is
 * "" or `key="value",...` without braces. */
typedef void (*azi3_metric_func)(void *userdata, const char *name, const char *labels, double value);

/* What a run is given besides its configuration and clock; every member may be NULL. */
typedef struct azi3_hooks {
        azi3_log_func log;
        azi3_metric_func metric;
        const char *instance; /* names the daemon process running the job; a new one means a restart */
        void *userdata;       /* passed to log and metric */
} azi3_hooks;

typedef struct azi3_service azi3_service;

/* Opens the store of CONFIG and makes the Megazord client (the SQS client is made when
 * sqs-consumer first needs it, so the other jobs need no AWS credentials). CONFIG must outlive
 * the service. LOG may be NULL (quiet). Returns 0, or a negative errno with MSG (MSGLEN bytes)
 * saying what failed. */
int azi3_service_new(const azi3_config *config, azi3_log_func log, void *userdata, char *msg, size_t msglen,
                     azi3_service **ret);

/* Sets the metric hook and the daemon instance (see azi3_hooks; the log hook and userdata
 * stay as azi3_service_new() set them unless HOOKS gives them). */
void azi3_service_set_hooks(azi3_service *s, const azi3_hooks *hooks);

/* NULL-tolerant; returns NULL. */
azi3_service *azi3_service_free(azi3_service *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(azi3_service *, azi3_service_free);

/* monitoring-scheduler at logical time NOW: for each rule with A <= NOW < B and no session of
 * that robot, rule and local day, subscribes, replays the day's events and creates the session
 * (see above). Idempotent. Writes the summary ("1 session created (3 events replayed),
 * 2 sessions open") or the failure and the summary to MSG. */
azi3_result azi3_monitoring_scheduler(azi3_service *s, usec_t now, char *msg, size_t msglen);

/* window-expiration at NOW: 8.1 steps 3 and 4 for every open session. */
azi3_result azi3_window_expiration(azi3_service *s, usec_t now, char *msg, size_t msglen);

/* session-cleanup at NOW: deletes completed sessions older than the retention, completes open
 * sessions whose B passed, retries pending subscription deletions that are due. */
azi3_result azi3_session_cleanup(azi3_service *s, usec_t now, char *msg, size_t msglen);

/* sqs-consumer at NOW: receives, applies each batch in one transaction, deletes after commit. */
azi3_result azi3_sqs_consumer(azi3_service *s, usec_t now, char *msg, size_t msglen);

/* Runs JOB once: loads the configuration at CONFIG_PATH (re-read on every run), opens the
 * service and runs the job at NOW. A configuration that does not load is FAIL with every
 * problem in MSG; a store that cannot be opened is RETRY or FAIL by cause. */
azi3_result azi3_job_run(azi3_job job, const char *config_path, usec_t now, const azi3_hooks *hooks, char *msg,
                         size_t msglen);

/* "ok", "retry", "fail"; NULL out of range. */
const char *azi3_result_to_string(azi3_result r) _pure_;

/* "monitoring-scheduler", ...; NULL out of range. */
const char *azi3_job_to_string(azi3_job j) _pure_;
