/* SPDX-License-Identifier: MIT */
#pragma once

/* Many Megazord calls of one run at once, through libcurl's multi interface (issue 16): calls
 * are queued with a completion function, then megazord_multi_run() sends them, at most
 * MAX_PARALLEL in flight, on keep-alive connections it reuses.
 *
 * Order: calls for one robot are sent one at a time, in the order they were queued (a robot's
 * subscription, alarms and unsubscription reach Megazord as a sequential run would send them);
 * calls for different robots overlap.
 *
 * Completion: each queued call's DONE runs exactly once, in the thread that runs
 * megazord_multi_run(), never while another DONE runs; it may queue more calls (they join this
 * run). Nothing is retried here: a failed call is reported as failed, so the caller alone
 * decides what a retry may repeat (an alarm is marked posted only by its DONE, after the 201). */

#include <stdint.h>

#include "megazord.h"

/* The most requests one driver keeps in flight (megazord.max_parallel is bounded below it). */
#define MEGAZORD_MULTI_MAX_PARALLEL 256u

typedef struct megazord_multi megazord_multi;

/* REPLY is the call's outcome (see megazord_reply); DONE may take REPLY->incomings. */
typedef void (*megazord_done_func)(megazord_multi *mm, megazord_reply *reply, void *userdata);

/* Makes a driver sending through M's base URL and timeout (M must outlive it), at most
 * MAX_PARALLEL (1..MEGAZORD_MULTI_MAX_PARALLEL) requests in flight. Returns 0, -EINVAL or
 * -ENOMEM. */
int megazord_multi_new(megazord *m, unsigned max_parallel, megazord_multi **ret);

/* Frees MM (NULL is fine), dropping queued calls without calling their DONE; returns NULL. */
megazord_multi *megazord_multi_free(megazord_multi *mm);
DEFINE_TRIVIAL_CLEANUP_FUNC(megazord_multi *, megazord_multi_free);

/* Queue one call, as the synchronous calls of megazord.h take their arguments. A call whose
 * request cannot even be made (bad arguments, out of memory) still completes through DONE, with
 * the error. Returns 0, or -ENOMEM when the call could not be queued (DONE is not called). */
int megazord_multi_subscribe(megazord_multi *mm, int64_t robot_id, const char *event_name, usec_t until,
                             megazord_done_func done, void *userdata);
int megazord_multi_unsubscribe(megazord_multi *mm, int64_t robot_id, int64_t subscription_id,
                               megazord_done_func done, void *userdata);
int megazord_multi_replay(megazord_multi *mm, int64_t robot_id, const char *event_name, usec_t created_since,
                          megazord_done_func done, void *userdata);
int megazord_multi_post_alarm(megazord_multi *mm, int64_t robot_id, const char *event_name, int level,
                              const char *reference_id, megazord_done_func done, void *userdata);

/* Called by megazord_multi_run() to commit what was written so far: before a call that changes
 * Megazord (subscribe, unsubscribe, post alarm; not a replay) leaves, if anything was written
 * after it was queued (an alarm's claim is committed before its post); after every 512 answers;
 * and before the run waits on Megazord more than a millisecond, so no lock is held meanwhile.
 * Returns 0 to go on, or a negative errno: then every call that changes Megazord and was queued
 * since the last commit completes through DONE with that error, unsent (its writes are lost);
 * replays, calls queued before that commit and calls already sent go on. */
typedef int (*megazord_before_send_func)(megazord_multi *mm, void *userdata);

/* Sets (FUNC NULL: clears) the commit function, see megazord_before_send_func. */
void megazord_multi_set_before_send(megazord_multi *mm, megazord_before_send_func func, void *userdata);

/* Sends every queued call, and those their DONEs queue, until none is left. Returns 0, or a
 * negative errno when the multi handle itself failed (-ENOMEM, -EIO); calls still queued then
 * complete through DONE with that error before it returns. */
int megazord_multi_run(megazord_multi *mm);

/* The most calls that were in flight at once so far (for tests and the run's log). */
unsigned megazord_multi_peak(const megazord_multi *mm) _pure_;
