/* SPDX-License-Identifier: MIT */
/* The wall clock set (a timerfd cancelled on set, or the test clock hook), and catch-up: one
 * coalesced run for the fires missed while the clock jumped or the daemon was down. */
#include <sys/inotify.h>
#include <sys/timerfd.h>

#include "basic/clock.h"
#include "basic/log.h"
#include "core/cluster-control.h"
#include "core/manager-internal.h"

/* catch-up looks at most this many missed fires back to find the latest one */
#define CATCH_UP_SCAN_MAX 1000000

static usec_t latest_missed_fire(job_rt *j, usec_t after, usec_t now) {
        int64_t t = (int64_t) (after / USEC_PER_SEC), next, last = -1;
        for (unsigned i = 0; i < CATCH_UP_SCAN_MAX; i++) {
                if (schedule_next(&j->def->schedule, j->def->zone, t, &next) < 0 || (usec_t) next * USEC_PER_SEC > now)
                        break;
                last = t = next;
        }
        return last < 0 ? USEC_INFINITY : (usec_t) last * USEC_PER_SEC;
}

/* After downtime or a clock jump forward: one coalesced run for the fires missed since the
 * last one handled, standing for the latest of them. Returns whether fires were missed. */
bool manager_catch_up(manager *m, job_rt *j, usec_t now) {
        history_job_state st;

        bool count = !isempty(m->reg->reg->metrics_listen); /* a history read per job: only when scraped */

        if ((!j->def->catch_up && !count) || j->every)
                return false;
        if (history_get_job_state(m->hist, j->def->name, &st) < 0)
                return false;
        /* from the last fire handled, or, before the job's first fire, from when it was loaded */
        usec_t after = st.last_scheduled_usec != USEC_INFINITY ? st.last_scheduled_usec : st.first_loaded_usec;
        if (after == USEC_INFINITY)
                return false;
        if (!j->def->catch_up) {
                manager_metrics_missed(j, after, now);
                return false;
        }
        usec_t missed = latest_missed_fire(j, after, m->cluster_control ? now - MIN(now, CLUSTER_CATCH_UP_SETTLE_USEC) : now);
        if (missed == USEC_INFINITY)
                return false;
        /* cluster: N nodes back from one outage compute the same missed fire; one runs it */
        if (m->cluster_control && !cluster_control_catch_up_once(m->cluster_control, j->def->name, missed))
                return true;
        manager_metrics_missed(j, after, missed - 1); /* the latest one runs */
        log_full(LOG_NOTICE, 0, j->def->name, 0, -1, "Catching up on fires missed since the last one handled");
        (void) manager_fire(m, j, RUN_TRIGGER_CATCH_UP, missed);
        manager_history_batch(m);
        (void) history_set_last_scheduled(m->hist, j->def->name, missed);
        return true;
}

/* The wall clock was set: every cron fire is recomputed from the new time. A fire the jump
 * made due stays queued: the next dispatch records the instants it passed as missed, or runs
 * a catch_up job's catch-up (overload.c), as for a daemon that was late; doing it here as well
 * would race with that dispatch and catch up twice. */
static void clock_changed(manager *m) {
        usec_t now;
        /* by the new wall clock: a release set far off by the change goes at once */
        manager_release_fires_now(m, "Clock change");
        manager_warm_abandon_all(m); /* forked for instants that moved */
        now = clock_now_realtime();
        log_notice("System clock was set; recomputing the next fire of every cron job.");
        for (size_t i = 0; i < m->n_jobs; i++) {
                job_rt *j = m->jobs[i];
                if (j->every || (j->next_fire != USEC_INFINITY && j->next_fire <= now))
                        continue;
                job_rt_schedule_cron(j, now);
        }
        manager_arm_timers(m);
        manager_status_changed(m);
}

static int on_clock_change(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        uint64_t x;
        struct itimerspec its = { .it_value.tv_sec = INT32_MAX };

        (void) !read(fd, &x, sizeof(x)); /* ECANCELED is the point */
        (void) timerfd_settime(fd, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, &its, NULL);
        clock_changed(userdata);
        return 0;
}

/* Test hook (clock.h): a write to the offset file is a clock being set. */
static int on_test_clock_change(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        const char *path = clock_test_offset_file(), *base = strrchr(path, '/');
        char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
        bool changed = false;
        ssize_t n;

        base = base ? base + 1 : path;
        while ((n = read(fd, buf, sizeof(buf))) > 0)
                for (char *p = buf; p < buf + n; p += sizeof(struct inotify_event) + ((struct inotify_event *) p)->len) {
                        const struct inotify_event *ev = (const struct inotify_event *) p;
                        if (ev->len > 0 && streq(ev->name, base))
                                changed = true;
                }
        if (changed)
                clock_changed(userdata);
        return 0;
}

int manager_setup_test_clock_watch(manager *m) {
        const char *path = clock_test_offset_file();
        if (!path)
                return 0;
        _cleanup_free_ char *dir = strdup(path);
        if (!dir)
                return -ENOMEM;
        char *slash = strrchr(dir, '/');
        if (slash)
                *slash = '\0';
        m->clock_test_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        if (m->clock_test_fd < 0)
                return -errno;
        if (inotify_add_watch(m->clock_test_fd, slash ? dir : ".", IN_CLOSE_WRITE | IN_MOVED_TO) < 0)
                return -errno;
        log_warning("Test clock offset from %s is in effect ($SCHEDULERD_TEST_CLOCK_OFFSET_FILE).", path);
        return sd_event_add_io(m->event, &m->clock_test_source, m->clock_test_fd, EPOLLIN, on_test_clock_change, m);
}

int manager_setup_clock_watch(manager *m) {
        struct itimerspec its = { .it_value.tv_sec = INT32_MAX };
        m->clock_fd = timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK | TFD_CLOEXEC);
        if (m->clock_fd < 0)
                return -errno;
        if (timerfd_settime(m->clock_fd, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, &its, NULL) < 0)
                return -errno;
        return sd_event_add_io(m->event, &m->clock_source, m->clock_fd, EPOLLIN, on_clock_change, m);
}
