/* SPDX-License-Identifier: MIT */
/* `schedctl pause` and `resume`: a job's fires held back (until an instant, or until resumed),
 * persisted in history so a restart keeps them. Manual runs still go. */
#include "basic/log.h"
#include "basic/timefmt.h"
#include "core/manager-internal.h"

int manager_set_paused(manager *m, const char *name, bool pause, usec_t until) {
        job_rt *j = manager_find_job(m, name);
        char t[TIMEFMT_MAX];
        int q;

        if (!j)
                return -ENOENT;
        q = history_set_pause(m->hist, name, pause, until);
        if (q < 0)
                return q;
        manager_flush_history(m);
        j->paused_until = pause ? until : 0;
        if (pause)
                log_full(LOG_NOTICE, 0, name, 0, -1, "Paused %s%s", until == USEC_INFINITY ? "until resumed" : "until ",
                         until == USEC_INFINITY ? "" : timefmt_rfc3339(until, NULL, false, t, sizeof(t)));
        else {
                log_full(LOG_NOTICE, 0, name, 0, -1, "Resumed");
                backfill_kick(m);
        }
        manager_status_changed(m);
        return 0;
}
