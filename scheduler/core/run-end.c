/* SPDX-License-Identifier: MIT */
/* A run that ended: its history row, its retry, whoever waits on it. */
#include <sys/random.h>

#include "basic/clock.h"
#include "basic/duration.h"
#include "basic/log.h"
#include "core/cluster-control.h"
#include "core/cluster.h"
#include "core/manager-internal.h"
#include "core/retry.h"

static void maybe_retry(manager *m, job_rt *j, const run *r) {
        const retry_policy *p = &r->def->retry;
        uint32_t rnd = 0;

        if (!r->wants_retry || r->attempt >= p->attempts || m->shutting_down || !j)
                return;
        if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) < 0)
                rnd = (uint32_t) clock_now_monotonic();
        usec_t d = retry_delay(p, r->attempt + 1, rnd);
        int q = manager_retry_add(m, r->def->name, r->first_id, r->attempt + 1, r->scheduled, clock_now_boottime() + d);
        if (q < 0) {
                log_full(LOG_ERR, q, r->def->name, (uint64_t) r->id, (int) r->attempt, "Cannot queue retry %u: %m",
                         r->attempt + 1);
                return;
        }
        char b[DURATION_MAX];
        log_full(LOG_NOTICE, 0, j->def->name, (uint64_t) r->id, (int) r->attempt, "Retry %u of %u in %s",
                 r->attempt + 1, p->attempts, duration_format(d, b, sizeof(b)));
        manager_arm_timers(m);
}

void manager_run_done(run *r, void *userdata) {
        manager *m = userdata;
        /* any run's start held back during a herd is said before this end */
        worker_pools_flush_started(m->workers);
        if (r->warm) {
                manager_warm_done(m, r);
                return;
        }
        job_rt *j = job_rt_of_run(m, r);
        char tail[HISTORY_OUTPUT_MAX];
        size_t tail_len = run_output_tail(r, tail);

        manager_opened_forget(m, r);
        /* before it is recorded: whoever reads its row finds nothing of it still running */
        if (!r->in_worker) /* a worker's run leaves nothing to the daemon: its worker is a subreaper and lives on */
                manager_end_orphans(m, r, r->exited_pid);

        log_full(r->status == RUN_STATUS_SUCCEEDED ? LOG_INFO : LOG_WARNING, 0, r->def->name, (uint64_t) r->id,
                 (int) r->attempt, "Finished: %s%s%s", run_status_to_string(r->status), r->message[0] ? ": " : "",
                 r->message);

        if (r->id > 0) {
                history_result res = {
                        .status = r->status,
                        .exit_code = r->exit_code,
                        .signal = r->signal,
                        .finished_usec = r->finished,
                        .duration_usec = r->duration,
                        .message = r->message[0] ? r->message : NULL,
                        .output = tail_len ? tail : NULL,
                        .output_size = tail_len,
                        .started_usec = r->start_owed ? r->started : 0,
                        .pid = r->start_owed ? r->start_owed_pid : 0,
                };
                r->start_owed = false;
                manager_history_batch(m);
                int q = m->cluster ? cluster_finish_run(m->cluster, m->hist, r->def->name, r->id, r->attempt, &res)
                                   : history_finish_run(m->hist, r->id, &res);
                if (q < 0 && !m->cluster)
                        manager_history_failed(m, q, "recording a finished run");
        }

        manager_metrics_run_ended(m, j, r);
        if (j && j->n_running > 0)
                j->n_running--;
        m->n_running--;
        if (m->cluster_control) {
                if (r->def->singleton)
                        cluster_control_singleton_release(m->cluster_control, r->def->name);
                cluster_control_take_requests(m->cluster_control); /* room for a queued run request */
        }
        if (j && j->n_retrying > 0)
                manager_retries_wake(m, r->def->name);
        maybe_retry(m, j, r);
        manager_chain_run_ended(m, j, r);
        if (m->run_waiter)
                m->run_waiter(m, r, m->run_waiter_data);

        manager_runs_remove(m, r);
        /* run_free() still reads the run's job_def (its cgroup's name): drop the registry after it */
        registry_ref *ref = registry_ref_of_run(r);
        run_free(r);
        registry_ref_unref(ref);
        manager_status_changed(m);
        /* what waited for this run: fires held for a slot (oldest first), a fire queued behind
         * it by its overlap policy, a backfill's next instant */
        overload_drain_soon(m);
        if (j)
                overlap_run_ended(m, j);
        backfill_kick(m);

        if (m->shutting_down && m->n_running == 0)
                (void) sd_event_exit(m->event, 0);
}
