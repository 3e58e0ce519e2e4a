/* SPDX-License-Identifier: MIT */
/* on_failure and on_success: a run that ended for good starts the jobs its job names, each as a
 * manual run (its own policies apply: a chained job still running is skipped, and recorded so)
 * that can read the run that started it through sched_job_cause(). */
#include <inttypes.h>

#include "basic/log.h"
#include "core/jobctx.h"
#include "core/manager-internal.h"

/* Whether R ended for good: no retry of it follows (the same test as run-end.c's). */
static bool last_attempt(manager *m, job_rt *j, const run *r) {
        return !r->wants_retry || r->attempt >= r->def->retry.attempts || m->shutting_down || !j;
}

void manager_chain_run_ended(manager *m, job_rt *j, const run *r) {
        const job_def *def = j ? j->def : r->def; /* the chains in force, if the job still is */
        const job_chain *chain;
        const char *key;

        if (r->status == RUN_STATUS_SUCCEEDED) {
                chain = &def->on_success;
                key = "on_success";
        } else if (run_status_is_failure(r->status)) {
                chain = &def->on_failure;
                key = "on_failure";
        } else
                return; /* cancelled by a shutdown, or never started: not the job's outcome */
        if (chain->n == 0 || m->shutting_down || !last_attempt(m, j, r))
                return;

        sched_job_cause_info cause = {
                .job = r->def->name,
                .run_id = (uint64_t) MAX(r->id, 0),
                .status = run_status_to_string(r->status),
                .message = r->message,
                .scheduled = r->scheduled,
                .finished = r->finished,
        };
        for (size_t i = 0; i < chain->n; i++) {
                job_rt *t = manager_find_job(m, chain->items[i].name);
                if (!t) {
                        log_full(LOG_WARNING, 0, r->def->name, (uint64_t) r->id, (int) r->attempt,
                                 "%s: job \"%s\" is not in the registry in force; not started", key,
                                 chain->items[i].name);
                        continue;
                }
                /* the run is forked inside manager_fire() and inherits the cause */
                jobctx_set_cause(&cause);
                int64_t id = manager_fire(m, t, RUN_TRIGGER_MANUAL, r->finished);
                jobctx_set_cause(NULL);
                if (id > 0)
                        log_full(LOG_INFO, 0, r->def->name, (uint64_t) r->id, (int) r->attempt,
                                 "%s: started job %s (run %" PRId64 ")", key, t->def->name, id);
                else
                        log_full(LOG_WARNING, id < 0 ? (int) id : 0, r->def->name, (uint64_t) r->id, (int) r->attempt,
                                 "%s: job %s did not start%s", key, t->def->name,
                                 id == -EBUSY ? " (already running, or max_concurrent reached; recorded as skipped)"
                                              : "");
        }
}
