/* SPDX-License-Identifier: MIT */
/* The overlap policy (`overlap:`) of a fire that comes while a run of its job is in flight:
 * skip and allow are decided by the policies of fire.c (skip_reason()); queue and replace hold
 * the fire here until the run in flight has ended, replace cancelling that run first. At most
 * one fire waits per job. */
#include <inttypes.h>

#include "basic/clock.h"
#include "basic/log.h"
#include "basic/timefmt.h"
#include "core/manager-internal.h"

static void queue(job_rt *j, run_trigger trigger, usec_t scheduled) {
        j->queued = true;
        j->queued_trigger = trigger;
        j->queued_scheduled = scheduled;
}

bool overlap_hold(manager *m, job_rt *j, run_trigger trigger, usec_t scheduled) {
        job_overlap o = j->def->overlap;
        char why[256];

        if (j->n_running == 0 || trigger == RUN_TRIGGER_MANUAL || (o != JOB_OVERLAP_QUEUE && o != JOB_OVERLAP_REPLACE))
                return false;

        if (o == JOB_OVERLAP_REPLACE) {
                char t[TIMEFMT_MAX];
                snprintf(why, sizeof(why), "replaced by the %s fire at %s (overlap: replace)",
                         run_trigger_to_string(trigger), timefmt_rfc3339(scheduled, NULL, false, t, sizeof(t)));
                for (run *r = m->runs; r; r = r->next)
                        if (streq(r->def->name, j->def->name) && !r->cancelled && !r->timed_out) {
                                log_full(LOG_NOTICE, 0, j->def->name, (uint64_t) r->id, (int) r->attempt,
                                         "Cancelling: %s", why);
                                run_cancel_because(r, why);
                        }
                if (j->queued)
                        log_full(LOG_NOTICE, 0, j->def->name, 0, -1, "Fire at %" PRIu64 " no longer waits: the fire at %"
                                 PRIu64 " replaces it", j->queued_scheduled, scheduled);
                queue(j, trigger, scheduled);
                return true;
        }

        if (!j->queued) {
                log_full(LOG_INFO, 0, j->def->name, 0, -1, "Fire at %" PRIu64 " waits for the run in flight (overlap: queue)",
                         scheduled);
                queue(j, trigger, scheduled);
                return true;
        }
        /* one waits already: this one is skipped like an overlapping fire under skip */
        char t[TIMEFMT_MAX];
        snprintf(why, sizeof(why), "a run is still in flight and the fire at %s already waits for it "
                 "(overlap: queue holds one)", timefmt_rfc3339(j->queued_scheduled, NULL, false, t, sizeof(t)));
        log_full(LOG_NOTICE, 0, j->def->name, 0, -1, "Skipped %s fire: %s", run_trigger_to_string(trigger), why);
        manager_history_batch(m);
        int q = history_record_skipped(m->hist, j->def->name, trigger, scheduled, MAX(clock_now_realtime(), scheduled),
                                       why, NULL);
        if (q < 0 && q != -EEXIST)
                manager_history_failed(m, q, "recording a skipped run");
        manager_status_changed(m);
        return true;
}

void overlap_run_ended(manager *m, job_rt *j) {
        if (!j->queued || j->n_running > 0 || m->shutting_down)
                return;
        j->queued = false;
        (void) manager_fire(m, j, j->queued_trigger, j->queued_scheduled);
        manager_arm_timers(m);
}

void overlap_carry(job_rt *j, const job_rt *o) {
        if (o->queued && (j->def->overlap == JOB_OVERLAP_QUEUE || j->def->overlap == JOB_OVERLAP_REPLACE))
                queue(j, o->queued_trigger, o->queued_scheduled);
}
