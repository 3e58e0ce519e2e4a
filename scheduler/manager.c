/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <inttypes.h>
#include <sys/inotify.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <systemd/sd-daemon.h>

#include "clock.h"
#include "duration.h"
#include "fs-util.h"
#include "jobctx.h"
#include "log.h"
#include "manager.h"
#include "retry.h"

/* A retry that cannot start yet (singleton or concurrency limit) waits this long. */
#define RETRY_POSTPONE (1 * USEC_PER_SEC)
/* sd_notify STATUS= is refreshed at most this often */
#define STATUS_INTERVAL (1 * USEC_PER_SEC)
#define PRUNE_INTERVAL USEC_PER_HOUR
/* catch-up looks at most this many missed fires back to find the latest one */
#define CATCH_UP_SCAN_MAX 1000000
/* fires handled per timer dispatch: a backlog must not starve child exits, signals, the control
 * socket, the history commit and the watchdog, which run between dispatches */
#define FIRES_PER_DISPATCH 64
/* a cron fire this late means the wall clock jumped or the daemon stalled */
#define MISSED_FIRE_SLACK (5 * USEC_PER_SEC)

static void manager_arm_timers(manager *m);
static void manager_status_changed(manager *m);

/* --- registry references ------------------------------------------------------ */

static registry_ref *registry_ref_new(registry *r) {
        registry_ref *x = calloc(1, sizeof(registry_ref));
        if (!x)
                return NULL;
        x->reg = r;
        x->n_ref = 1;
        return x;
}

static registry_ref *registry_ref_ref(registry_ref *x) {
        x->n_ref++;
        return x;
}

static registry_ref *registry_ref_unref(registry_ref *x) {
        if (!x || --x->n_ref > 0)
                return NULL;
        registry_free(x->reg);
        free(x);
        return NULL;
}

/* --- history, failing soft -------------------------------------------------------
 * The database can be full or read-only; the daemon keeps firing regardless and says so once
 * per burst of failures rather than once per row. */

/* The database counts as recovered only after this long without a failure: a nearly full disk
 * lets some commits through, and flapping would repeat the message. */
#define HISTORY_RECOVERY_USEC (10 * USEC_PER_SEC)

static void history_failed(manager *m, int r, const char *what) {
        m->history_failed_at = clock_now_monotonic();
        if (!m->history_failing)
                log_error_errno(r, "History database %s: %s failed: %s (%m). Runs continue but are not recorded until "
                                   "this is fixed (disk space? permissions?).",
                                m->history_path, what, history_last_error(m->hist));
        m->history_failing = true;
}

static void history_ok(manager *m) {
        if (!m->history_failing || clock_now_monotonic() - m->history_failed_at < HISTORY_RECOVERY_USEC)
                return;
        log_notice("History database %s is writable again.", m->history_path);
        m->history_failing = false;
}

/* All writes of one event-loop iteration go into one transaction, committed by the post
 * source once the iteration's events are handled. */
static void batch(manager *m) {
        if (m->batch_open || !m->hist)
                return;
        if (history_begin(m->hist) >= 0) {
                m->batch_open = true;
                (void) sd_event_source_set_enabled(m->post_source, SD_EVENT_ONESHOT);
        }
}

static int on_post(sd_event_source *s, void *userdata) {
        manager *m = userdata;
        if (!m->batch_open)
                return 0;
        m->batch_open = false;
        int r = history_commit(m->hist);
        if (r < 0)
                history_failed(m, r, "commit");
        else
                history_ok(m);
        return 0;
}

void manager_flush_history(manager *m) {
        (void) on_post(NULL, m);
}

/* --- jobs -------------------------------------------------------------------------- */

bool job_rt_enabled(const job_rt *j) {
        return j->enabled_override >= 0 ? j->enabled_override > 0 : j->def->enabled;
}

static int job_rt_cmp(const void *a, const void *b) {
        return strcmp((*(job_rt *const *) a)->def->name, (*(job_rt *const *) b)->def->name);
}

static int job_rt_key_cmp(const void *key, const void *b) {
        return strcmp(key, (*(job_rt *const *) b)->def->name);
}

static job_rt *find_in(job_rt **by_name, size_t n, const char *name) {
        job_rt **x = n > 0 ? bsearch(name, by_name, n, sizeof(job_rt *), job_rt_key_cmp) : NULL;
        return x ? *x : NULL;
}

job_rt *manager_find_job(manager *m, const char *name) {
        return find_in(m->by_name, m->n_jobs, name);
}

static job_rt *job_rt_new(manager *m, job_def *def) {
        job_rt *j = calloc(1, sizeof(job_rt));
        if (!j)
                return NULL;
        j->m = m;
        j->def = def;
        j->every = def->schedule.kind == SCHEDULE_EVERY;
        j->fire = (wake) { .entry = TIMER_ENTRY_INIT, .job = j, .kind = WAKE_FIRE };
        j->retry = (wake) { .entry = TIMER_ENTRY_INIT, .job = j, .kind = WAKE_RETRY };
        j->next_fire = USEC_INFINITY;
        j->enabled_override = -1;
        return j;
}

static job_rt *job_rt_free(job_rt *j) {
        if (!j)
                return NULL;
        timer_heap_remove(j->every ? &j->m->boot_heap : &j->m->real_heap, &j->fire.entry);
        timer_heap_remove(&j->m->boot_heap, &j->retry.entry);
        free(j);
        return NULL;
}

/* Wall-clock instant of a boottime instant. */
static usec_t boot_to_real(usec_t boot) {
        usec_t now_b = clock_now_boottime(), now_r = clock_now_realtime();
        return boot >= now_b ? now_r + (boot - now_b) : now_r - MIN(now_r, now_b - boot);
}

/* Queues the job's next cron fire strictly after AFTER (wall clock). */
static void job_schedule_cron(job_rt *j, usec_t after) {
        int64_t next;
        int r = schedule_next(&j->def->schedule, j->def->zone, (int64_t) (after / USEC_PER_SEC), &next);
        if (r < 0) {
                timer_heap_remove(&j->m->real_heap, &j->fire.entry);
                j->next_fire = USEC_INFINITY;
                if (r != -ERANGE)
                        log_full(LOG_ERR, r, j->def->name, 0, -1, "Cannot compute the next fire of \"%s\": %m",
                                 j->def->schedule_expr);
                return;
        }
        j->next_fire = (usec_t) next * USEC_PER_SEC;
        if (timer_heap_put(&j->m->real_heap, &j->fire.entry, j->next_fire) < 0)
                log_full(LOG_ERR, -ENOMEM, j->def->name, 0, -1, "Cannot queue the next fire: %m");
}

static void job_schedule_every(job_rt *j, usec_t due_boot) {
        j->next_fire = boot_to_real(due_boot);
        if (timer_heap_put(&j->m->boot_heap, &j->fire.entry, due_boot) < 0)
                log_full(LOG_ERR, -ENOMEM, j->def->name, 0, -1, "Cannot queue the next fire: %m");
}

static void job_schedule_first(job_rt *j) {
        if (j->every)
                job_schedule_every(j, clock_now_boottime() + j->def->schedule.interval);
        else
                job_schedule_cron(j, clock_now_realtime());
}

/* --- runs -------------------------------------------------------------------------- */

static void run_done(run *r, void *userdata);

static registry_ref *run_registry(const run *r) {
        return r->owner_data;
}

static job_rt *run_job(manager *m, const run *r) {
        return manager_find_job(m, r->def->name);
}

static void runs_add(manager *m, run *r) {
        r->next = m->runs;
        r->prev = NULL;
        if (m->runs)
                m->runs->prev = r;
        m->runs = r;
}

static void runs_remove(manager *m, run *r) {
        if (r->prev)
                r->prev->next = r->next;
        else
                m->runs = r->next;
        if (r->next)
                r->next->prev = r->prev;
        r->next = r->prev = NULL;
}

static const char *skip_reason(manager *m, job_rt *j, char *buf, size_t n) {
        if (j->def->singleton && j->n_running > 0) {
                int64_t id = 0;
                for (run *r = m->runs; r; r = r->next)
                        if (streq(r->def->name, j->def->name))
                                id = r->id;
                snprintf(buf, n, "previous run %" PRId64 " still running (singleton)", id);
                return buf;
        }
        if (m->n_running >= m->reg->reg->max_concurrent) {
                snprintf(buf, n, "concurrency limit reached (max_concurrent=%u runs in flight)",
                         m->reg->reg->max_concurrent);
                return buf;
        }
        return NULL;
}

static void run_started(manager *m, job_rt *j, run *r) {
        if (r->id > 0) {
                batch(m);
                (void) history_set_pid(m->hist, r->id, r->pid);
        }
        log_full(LOG_INFO, 0, r->def->name, (uint64_t) r->id, (int) r->attempt, "Started (%s, pid %d)",
                 run_trigger_to_string(r->trigger), (int) r->pid);
}

static void run_not_started(manager *m, job_rt *j, run *r, int q) {
        log_full(LOG_ERR, q, r->def->name, (uint64_t) r->id, (int) r->attempt, "Cannot start run: %m");
        if (r->id > 0) {
                char msg[256];
                snprintf(msg, sizeof(msg), "could not start: %s", strerror(-q));
                history_result res = {
                        .status = RUN_STATUS_FAILED, .exit_code = -1, .finished_usec = clock_now_realtime(),
                        .duration_usec = 0, .message = msg,
                };
                batch(m);
                (void) history_finish_run(m->hist, r->id, &res);
        }
        runs_remove(m, r);
        if (j && j->n_running > 0)
                j->n_running--;
        m->n_running--;
        registry_ref_unref(run_registry(r));
        run_free(r);
}

/* Forks the runs prepared during this dispatch back to back, then watches them. */
static void flush_deferred(manager *m) {
        size_t n = m->n_deferred;
        int q[ELEMENTSOF(m->deferred)];

        m->n_deferred = 0;
        for (size_t i = 0; i < n; i++)
                q[i] = run_launch(m->deferred[i]);
        for (size_t i = 0; i < n; i++) {
                run *r = m->deferred[i];
                job_rt *j = run_job(m, r);
                if (q[i] >= 0)
                        q[i] = run_watch(m->event, r);
                if (q[i] < 0)
                        run_not_started(m, j, r, q[i]);
                else
                        run_started(m, j, r);
        }
}

/* Starts a run whose history row (ID, possibly 0 when history is failing) is claimed. During a
 * timer dispatch the fork is deferred to flush_deferred(). */
static int start_claimed(manager *m, job_rt *j, int64_t id, int64_t first_id, run_trigger trigger, unsigned attempt,
                         usec_t scheduled, usec_t started) {
        _cleanup_free_ char *dir = jobctx_state_dir(m->reg->reg, j->def);
        run *r;
        int q;

        if (!dir)
                return -ENOMEM;
        if (m->deferring && m->n_deferred == ELEMENTSOF(m->deferred))
                flush_deferred(m);
        q = run_prepare(j->def, dir, id, first_id ?: id, trigger, attempt, scheduled, started, run_done, m, &r);
        if (q < 0) {
                log_full(LOG_ERR, q, j->def->name, (uint64_t) id, (int) attempt, "Cannot start run: %m");
                return q;
        }
        r->owner_data = registry_ref_ref(m->reg);
        runs_add(m, r);
        j->n_running++;
        m->n_running++;
        manager_status_changed(m);
        if (m->deferring) {
                m->deferred[m->n_deferred++] = r;
                return 0;
        }
        q = run_launch(r);
        if (q >= 0)
                q = run_watch(m->event, r);
        if (q < 0) {
                run_not_started(m, j, r, q);
                return q;
        }
        run_started(m, j, r);
        return 0;
}

/* A fire of JOB (any trigger but retry) standing for SCHEDULED: apply the policies, claim the
 * fire in history, start the run. Returns the run id (> 0), 0 when nothing was started
 * (disabled, skipped, already claimed), or -errno. */
static int64_t fire(manager *m, job_rt *j, run_trigger trigger, usec_t scheduled) {
        usec_t now = clock_now_realtime();
        char why[256];
        int64_t id = 0;
        int q;

        if (m->shutting_down)
                return 0;
        if (trigger != RUN_TRIGGER_MANUAL && !job_rt_enabled(j))
                return 0;

        batch(m);
        const char *reason = skip_reason(m, j, why, sizeof(why));
        if (reason) {
                log_full(LOG_NOTICE, 0, j->def->name, 0, -1, "Skipped %s fire: %s", run_trigger_to_string(trigger),
                         reason);
                q = history_record_skipped(m->hist, j->def->name, trigger, scheduled, now, reason, NULL);
                if (q < 0 && q != -EEXIST)
                        history_failed(m, q, "recording a skipped run");
                manager_status_changed(m);
                return trigger == RUN_TRIGGER_MANUAL ? -EBUSY : 0;
        }

        q = history_claim_fire(m->hist, j->def->name, trigger, scheduled, now, 0, &id);
        if (q == -EEXIST) {
                /* this very fire ran before: a restart or a clock set back brought it round again */
                log_full(LOG_INFO, 0, j->def->name, 0, -1, "Fire at %" PRIu64 " was already claimed; not running it twice",
                         scheduled);
                return 0;
        }
        if (q < 0) {
                history_failed(m, q, "claiming a fire");
                id = 0;
        }

        q = start_claimed(m, j, id, 0, trigger, 0, scheduled, now);
        if (q < 0)
                return q;
        return id;
}

static void fire_retry(manager *m, job_rt *j) {
        usec_t now = clock_now_realtime();
        char why[256];
        int64_t id = 0;
        int q;

        if (m->shutting_down)
                return;
        if (skip_reason(m, j, why, sizeof(why))) {
                /* not a new fire: it waits for room instead of being skipped */
                (void) timer_heap_put(&m->boot_heap, &j->retry.entry, clock_now_boottime() + RETRY_POSTPONE);
                return;
        }
        batch(m);
        if (j->retry_first_id > 0) {
                q = history_claim_retry(m->hist, j->retry_first_id, j->retry_attempt, now, 0, &id);
                if (q == -EEXIST)
                        return;
                if (q < 0) {
                        history_failed(m, q, "claiming a retry");
                        id = 0;
                }
        }
        (void) start_claimed(m, j, id, j->retry_first_id, RUN_TRIGGER_RETRY, j->retry_attempt, j->retry_scheduled,
                             now);
}

static void maybe_retry(manager *m, job_rt *j, const run *r) {
        const retry_policy *p = &r->def->retry;
        uint32_t rnd = 0;

        if (!r->wants_retry || r->attempt >= p->attempts || m->shutting_down || !j)
                return;
        if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) < 0)
                rnd = (uint32_t) clock_now_monotonic();
        usec_t d = retry_delay(p, r->attempt + 1, rnd);
        j->retry_first_id = r->first_id;
        j->retry_attempt = r->attempt + 1;
        j->retry_scheduled = r->scheduled;
        (void) timer_heap_put(&m->boot_heap, &j->retry.entry, clock_now_boottime() + d);
        char b[DURATION_MAX];
        log_full(LOG_NOTICE, 0, j->def->name, (uint64_t) r->id, (int) r->attempt, "Retry %u of %u in %s",
                 r->attempt + 1, p->attempts, duration_format(d, b, sizeof(b)));
        manager_arm_timers(m);
}

static void run_done(run *r, void *userdata) {
        manager *m = userdata;
        job_rt *j = run_job(m, r);
        char tail[HISTORY_OUTPUT_MAX];
        size_t tail_len = run_output_tail(r, tail);

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
                };
                batch(m);
                int q = history_finish_run(m->hist, r->id, &res);
                if (q < 0)
                        history_failed(m, q, "recording a finished run");
        }

        if (j && j->n_running > 0)
                j->n_running--;
        m->n_running--;
        maybe_retry(m, j, r);
        if (m->run_waiter) {
                /* whoever waits on this run may read history next: make the row visible first */
                (void) on_post(NULL, m);
                m->run_waiter(m, r, m->run_waiter_data);
        }

        runs_remove(m, r);
        registry_ref_unref(run_registry(r));
        run_free(r);
        manager_status_changed(m);

        if (m->shutting_down && m->n_running == 0)
                (void) sd_event_exit(m->event, 0);
}

/* --- timers ------------------------------------------------------------------------ */

static void arm(sd_event_source *s, const timer_heap *h, bool realtime) {
        timer_entry *e = timer_heap_peek(h);
        if (!e) {
                (void) sd_event_source_set_enabled(s, SD_EVENT_OFF);
                return;
        }
        (void) sd_event_source_set_time(s, realtime ? clock_realtime_to_kernel(e->when) : e->when);
        (void) sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
}

static void manager_arm_timers(manager *m) {
        if (m->shutting_down) {
                (void) sd_event_source_set_enabled(m->real_timer, SD_EVENT_OFF);
                (void) sd_event_source_set_enabled(m->boot_timer, SD_EVENT_OFF);
                return;
        }
        arm(m->real_timer, &m->real_heap, true);
        arm(m->boot_timer, &m->boot_heap, false);
}

static int on_real_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        manager *m = userdata;
        usec_t now = clock_now_realtime();
        timer_entry *e;

        m->deferring = true;
        for (unsigned n = 0; n < FIRES_PER_DISPATCH && (e = timer_heap_peek(&m->real_heap)) && e->when <= now &&
                             !m->shutting_down;
             n++) {
                job_rt *j = ((wake *) e)->job;
                usec_t scheduled = e->when;

                (void) fire(m, j, RUN_TRIGGER_SCHEDULE, scheduled);
                batch(m);
                int q = history_set_last_scheduled(m->hist, j->def->name, scheduled);
                if (q < 0)
                        history_failed(m, q, "recording the last fire");
                /* Far behind (the clock jumped forwards, or the machine stalled): the fires in
                 * between are not run one by one; catch_up runs them as one, if wanted. */
                job_schedule_cron(j, now - scheduled > MISSED_FIRE_SLACK ? now : scheduled);
        }
        m->deferring = false;
        flush_deferred(m);
        manager_arm_timers(m);
        return 0;
}

static int on_boot_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        manager *m = userdata;
        usec_t now = clock_now_boottime();
        timer_entry *e;

        m->deferring = true;
        for (unsigned n = 0; n < FIRES_PER_DISPATCH && (e = timer_heap_peek(&m->boot_heap)) && e->when <= now &&
                             !m->shutting_down;
             n++) {
                wake *w = (wake *) e;
                job_rt *j = w->job;

                if (w->kind == WAKE_RETRY) {
                        timer_heap_remove(&m->boot_heap, e);
                        fire_retry(m, j);
                        continue;
                }
                usec_t due = e->when, scheduled = boot_to_real(due);
                (void) fire(m, j, RUN_TRIGGER_SCHEDULE, scheduled);
                /* keep the cadence; after a suspend or a stall, skip what was missed */
                usec_t next = due + j->def->schedule.interval;
                if (next <= now)
                        next = now + j->def->schedule.interval;
                job_schedule_every(j, next);
        }
        m->deferring = false;
        flush_deferred(m);
        manager_arm_timers(m);
        return 0;
}

/* The latest fire of J in (after, now], or USEC_INFINITY. */
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
 * last one handled, standing for the latest of them. */
static void catch_up(manager *m, job_rt *j, usec_t now) {
        history_job_state st;

        if (!j->def->catch_up || j->every)
                return;
        if (history_get_job_state(m->hist, j->def->name, &st) < 0 || st.last_scheduled_usec == USEC_INFINITY)
                return;
        usec_t missed = latest_missed_fire(j, st.last_scheduled_usec, now);
        if (missed == USEC_INFINITY)
                return;
        log_full(LOG_NOTICE, 0, j->def->name, 0, -1, "Catching up on fires missed since the last one handled");
        (void) fire(m, j, RUN_TRIGGER_CATCH_UP, missed);
        batch(m);
        (void) history_set_last_scheduled(m->hist, j->def->name, missed);
}

/* The wall clock was set: every cron fire is recomputed from the new time. */
static void clock_changed(manager *m) {
        usec_t now = clock_now_realtime();
        log_notice("System clock was set; recomputing the next fire of every cron job.");
        for (size_t i = 0; i < m->n_jobs; i++) {
                job_rt *j = m->jobs[i];
                if (j->every)
                        continue;
                catch_up(m, j, now);
                job_schedule_cron(j, now);
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

static int setup_test_clock_watch(manager *m) {
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

static int setup_clock_watch(manager *m) {
        struct itimerspec its = { .it_value.tv_sec = INT32_MAX };
        m->clock_fd = timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK | TFD_CLOEXEC);
        if (m->clock_fd < 0)
                return -errno;
        if (timerfd_settime(m->clock_fd, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, &its, NULL) < 0)
                return -errno;
        return sd_event_add_io(m->event, &m->clock_source, m->clock_fd, EPOLLIN, on_clock_change, m);
}

/* --- status ---------------------------------------------------------------------- */

static int on_status_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        manager *m = userdata;
        job_rt *next = NULL;
        usec_t now = clock_now_realtime();
        char left[DURATION_MAX] = "";

        for (size_t i = 0; i < m->n_jobs; i++) {
                job_rt *j = m->jobs[i];
                if (job_rt_enabled(j) && j->next_fire != USEC_INFINITY && (!next || j->next_fire < next->next_fire))
                        next = j;
        }
        if (next)
                duration_format(next->next_fire > now ? (next->next_fire - now) / USEC_PER_SEC * USEC_PER_SEC : 0,
                                left, sizeof(left));
        (void) sd_notifyf(false, "STATUS=%s%zu job%s, %u running%s%s%s%s", m->shutting_down ? "Stopping: " : "",
                          m->n_jobs, m->n_jobs == 1 ? "" : "s", m->n_running, next ? ", next: " : "",
                          next ? next->def->name : "", next ? " in " : "", next ? left : "");
        return 0;
}

static void manager_status_changed(manager *m) {
        int enabled = SD_EVENT_OFF;
        if (!m->status_timer || (sd_event_source_get_enabled(m->status_timer, &enabled) >= 0 && enabled != SD_EVENT_OFF))
                return;
        (void) sd_event_source_set_time_relative(m->status_timer, STATUS_INTERVAL);
        (void) sd_event_source_set_enabled(m->status_timer, SD_EVENT_ONESHOT);
}

/* --- pruning ----------------------------------------------------------------------- */

static int on_prune(sd_event_source *s, uint64_t usec, void *userdata) {
        manager *m = userdata;
        unsigned n = 0;
        const registry *r = m->reg->reg;
        int q = history_prune(m->hist, clock_now_realtime(), r->history_retention, r->history_max_runs_per_job, &n);
        if (q < 0)
                history_failed(m, q, "pruning");
        else if (n > 0)
                log_info("Pruned %u old runs from history.", n);
        (void) sd_event_source_set_time_relative(s, PRUNE_INTERVAL);
        (void) sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        return 0;
}

/* --- registry in force --------------------------------------------------------------- */

static int load_registry(manager *m, registry **ret, diag_list *diags) {
        _cleanup_(registry_freep) registry *r = NULL;
        registry_overrides o = {
                .state_dir = m->opts.state_dir,
                .plugin_dir = m->opts.plugin_dir,
                .control_socket = m->opts.control_socket,
        };
        int q = registry_load_with(m->opts.config, REGISTRY_LOAD_PLUGINS, &o, &r, diags);
        if (q < 0)
                return q;
        q = jobctx_init_jobs(r, true, diags);
        if (q < 0)
                return q;
        *ret = TAKE_PTR(r);
        return 0;
}

static void log_diags(const diag_list *d) {
        for (size_t i = 0; i < d->n; i++) {
                _cleanup_free_ char *s = diag_format(&d->items[i]);
                log_error("%s", s ?: d->items[i].message);
        }
}

static int apply_job_state(const char *job, const history_job_state *st, void *userdata) {
        job_rt *j = manager_find_job(userdata, job);
        if (j)
                j->enabled_override = st->enabled_override;
        return 0;
}

/* Makes R the registry in force. Runtime state of jobs that keep their name carries over. */
static int swap_registry(manager *m, registry *r) {
        registry_ref *ref = registry_ref_new(r);
        job_rt **jobs = calloc(r->n_jobs ?: 1, sizeof(job_rt *)), **by_name = calloc(r->n_jobs ?: 1, sizeof(job_rt *));
        size_t n_old = m->n_jobs;
        job_rt **old = m->jobs, **old_by_name = m->by_name;

        if (!ref || !jobs || !by_name) {
                free(ref);
                free(jobs);
                free(by_name);
                return -ENOMEM;
        }
        for (size_t i = 0; i < r->n_jobs; i++) {
                jobs[i] = job_rt_new(m, r->jobs[i]);
                if (!jobs[i]) {
                        for (size_t k = 0; k < i; k++)
                                free(jobs[k]);
                        free(jobs);
                        free(by_name);
                        free(ref);
                        return -ENOMEM;
                }
                by_name[i] = jobs[i];
        }
        qsort(by_name, r->n_jobs, sizeof(job_rt *), job_rt_cmp);

        m->jobs = jobs;
        m->by_name = by_name;
        m->n_jobs = r->n_jobs;
        /* one scan of the job rows: a query per job was a large part of starting 100,000 */
        (void) history_foreach_job_state(m->hist, apply_job_state, m);
        for (size_t i = 0; i < m->n_jobs; i++) {
                job_rt *j = jobs[i];
                job_rt *o = find_in(old_by_name, n_old, j->def->name);
                if (o) {
                        j->n_running = o->n_running;
                        if (timer_entry_queued(&o->retry.entry)) {
                                j->retry_first_id = o->retry_first_id;
                                j->retry_attempt = o->retry_attempt;
                                j->retry_scheduled = o->retry_scheduled;
                                (void) timer_heap_put(&m->boot_heap, &j->retry.entry, o->retry.entry.when);
                        }
                        /* an unchanged @every keeps its cadence across reloads */
                        if (j->every && o->every && j->def->schedule.interval == o->def->schedule.interval &&
                            timer_entry_queued(&o->fire.entry))
                                job_schedule_every(j, o->fire.entry.when);
                }
                if (!timer_entry_queued(&j->fire.entry))
                        job_schedule_first(j);
        }
        for (size_t k = 0; k < n_old; k++)
                job_rt_free(old[k]);
        free(old);
        free(old_by_name);

        registry_ref_unref(m->reg);
        m->reg = ref;
        manager_arm_timers(m);
        manager_status_changed(m);
        return 0;
}

int manager_reload(manager *m, diag_list *diags) {
        diag_list local = {};
        registry *r = NULL;
        int q;

        (void) sd_notifyf(false, "RELOADING=1\nSTATUS=Reloading %s", m->opts.config);
        log_info("Reloading %s", m->opts.config);
        q = load_registry(m, &r, diags ?: &local);
        if (q < 0) {
                if (!diags)
                        log_diags(&local);
                log_error("Reload of %s failed; keeping the running registry (%zu job%s).", m->opts.config, m->n_jobs,
                          m->n_jobs == 1 ? "" : "s");
        } else {
                if (!streq_ptr(r->state_dir, m->reg->reg->state_dir) ||
                    !streq_ptr(r->control_socket, m->reg->reg->control_socket))
                        log_warning("state_dir and control_socket changes take effect at the next restart.");
                q = swap_registry(m, r);
                if (q < 0)
                        registry_free(r);
                else
                        log_info("Reloaded %s: %zu job%s.", m->opts.config, m->n_jobs, m->n_jobs == 1 ? "" : "s");
        }
        diag_list_clear(&local);
        (void) sd_notify(false, "READY=1");
        manager_status_changed(m);
        return q;
}

/* --- signals and shutdown ------------------------------------------------------------ */

static int on_grace_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        manager *m = userdata;
        log_warning("Shutdown grace period over; killing %u remaining run%s.", m->n_running, m->n_running == 1 ? "" : "s");
        for (run *r = m->runs; r; r = r->next)
                run_kill(r);
        return 0;
}

static void manager_shutdown(manager *m) {
        if (m->shutting_down)
                return;
        m->shutting_down = true;
        (void) sd_notify(false, "STOPPING=1\nSTATUS=Stopping");
        manager_arm_timers(m);
        if (m->n_running == 0) {
                (void) sd_event_exit(m->event, 0);
                return;
        }
        log_info("Stopping: asking %u run%s to end.", m->n_running, m->n_running == 1 ? "" : "s");
        for (run *r = m->runs; r; r = r->next)
                run_cancel(r);
        (void) sd_event_add_time_relative(m->event, &m->grace_timer, CLOCK_MONOTONIC, m->reg->reg->shutdown_grace, 1,
                                          on_grace_timeout, m);
}

static int on_sigterm(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        manager_shutdown(userdata);
        return 0;
}

static int on_sighup(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        (void) manager_reload(userdata, NULL);
        return 0;
}

/* --- public --------------------------------------------------------------------------- */

int manager_run_now(manager *m, const char *name, usec_t at, int64_t *ret_run_id) {
        job_rt *j = manager_find_job(m, name);
        if (!j)
                return -ENOENT;
        if (m->shutting_down)
                return -ESHUTDOWN;
        int64_t id = fire(m, j, RUN_TRIGGER_MANUAL, at == USEC_INFINITY ? clock_now_realtime() : at);
        if (id < 0)
                return (int) id;
        if (id == 0)
                return -EIO; /* started without a history row: the database is failing */
        if (ret_run_id)
                *ret_run_id = id;
        return 0;
}

int manager_set_enabled(manager *m, const char *name, int enabled) {
        job_rt *j = manager_find_job(m, name);
        if (!j)
                return -ENOENT;
        int q = history_set_enabled_override(m->hist, name, enabled);
        if (q < 0)
                return q;
        j->enabled_override = enabled;
        manager_status_changed(m);
        return 0;
}

int manager_new(const manager_options *o, manager **ret) {
        _cleanup_(manager_freep) manager *m = NULL;
        registry *r = NULL;
        diag_list diags = {};
        char err[512];
        unsigned n_int = 0;
        int q;

        m = calloc(1, sizeof(manager));
        if (!m)
                return -ENOMEM;
        m->opts = *o;
        m->clock_fd = -EBADF;
        m->clock_test_fd = -EBADF;

        q = sd_event_default(&m->event);
        if (q < 0)
                return log_error_errno(q, "Cannot create the event loop: %m");

        q = load_registry(m, &r, &diags);
        if (q < 0) {
                log_diags(&diags);
                diag_list_clear(&diags);
                return log_error_errno(q, "Registry %s is not valid; fix the errors above (schedctl check %s shows them "
                                          "too).",
                                       o->config, o->config);
        }

        q = mkdir_p(r->state_dir, 0750);
        if (q < 0) {
                registry_free(r);
                return log_error_errno(q, "Cannot create state directory: %m");
        }
        if (asprintf(&m->history_path, "%s/history.db", r->state_dir) < 0) {
                registry_free(r);
                return -ENOMEM;
        }
        q = history_open(m->history_path, err, sizeof(err), &m->hist);
        if (q < 0) {
                registry_free(r);
                return log_error_errno(q, "%s", err);
        }
        q = history_mark_interrupted(m->hist, &n_int);
        if (q < 0)
                log_warning_errno(q, "Cannot mark unfinished runs as interrupted: %s", history_last_error(m->hist));
        else if (n_int > 0)
                log_warning("%u run%s did not finish before the daemon last stopped; marked interrupted.", n_int,
                            n_int == 1 ? " was" : "s were");

        q = sd_event_add_time(m->event, &m->real_timer, CLOCK_REALTIME, USEC_INFINITY, 1, on_real_timer, m);
        if (q >= 0)
                q = sd_event_add_time(m->event, &m->boot_timer, CLOCK_BOOTTIME, USEC_INFINITY, 1, on_boot_timer, m);
        if (q >= 0)
                q = sd_event_add_post(m->event, &m->post_source, on_post, m);
        if (q >= 0)
                q = sd_event_source_set_priority(m->post_source, SD_EVENT_PRIORITY_IDLE);
        if (q >= 0)
                q = sd_event_source_set_enabled(m->post_source, SD_EVENT_OFF);
        if (q >= 0)
                q = sd_event_add_time_relative(m->event, &m->status_timer, CLOCK_MONOTONIC, 0, USEC_PER_SEC / 10,
                                               on_status_timer, m);
        if (q >= 0)
                q = sd_event_add_time_relative(m->event, &m->prune_timer, CLOCK_MONOTONIC, 0, USEC_PER_SEC, on_prune, m);
        if (q >= 0)
                q = sd_event_add_signal(m->event, &m->sigterm_source, SIGTERM, on_sigterm, m);
        if (q >= 0)
                q = sd_event_add_signal(m->event, &m->sigint_source, SIGINT, on_sigterm, m);
        if (q >= 0)
                q = sd_event_add_signal(m->event, &m->sighup_source, SIGHUP, on_sighup, m);
        if (q >= 0)
                q = setup_clock_watch(m);
        if (q >= 0)
                q = setup_test_clock_watch(m);
        if (q >= 0)
                q = sd_event_set_watchdog(m->event, true);
        if (q < 0) {
                registry_free(r);
                return log_error_errno(q, "Cannot set up the event loop: %m");
        }

        q = swap_registry(m, r);
        if (q < 0) {
                registry_free(r);
                return log_error_errno(q, "Cannot set up jobs: %m");
        }

        *ret = TAKE_PTR(m);
        return 0;
}

int manager_run(manager *m) {
        usec_t now = clock_now_realtime();
        int q;

        /* start-up triggers, before READY=1 so a status read right after sees them */
        for (size_t i = 0; i < m->n_jobs; i++) {
                job_rt *j = m->jobs[i];
                catch_up(m, j, now);
                if (j->def->run_on_startup && job_rt_enabled(j))
                        (void) fire(m, j, RUN_TRIGGER_STARTUP, now);
        }
        manager_arm_timers(m);

        log_info("Started with %zu job%s from %s; history in %s.", m->n_jobs, m->n_jobs == 1 ? "" : "s", m->opts.config,
                 m->history_path);
        (void) sd_notify(false, "READY=1");
        (void) on_status_timer(NULL, 0, m);

        q = sd_event_loop(m->event);
        on_post(NULL, m);
        (void) sd_notify(false, "STOPPING=1");
        log_info("Stopped.");
        return q < 0 ? q : 0;
}

manager *manager_free(manager *m) {
        if (!m)
                return NULL;
        while (m->runs) {
                run *r = m->runs;
                runs_remove(m, r);
                run_kill(r);
                registry_ref_unref(run_registry(r));
                run_free(r);
        }
        for (size_t i = 0; i < m->n_jobs; i++)
                job_rt_free(m->jobs[i]);
        free(m->jobs);
        free(m->by_name);
        timer_heap_done(&m->real_heap);
        timer_heap_done(&m->boot_heap);
        sd_event_source_disable_unref(m->real_timer);
        sd_event_source_disable_unref(m->boot_timer);
        sd_event_source_disable_unref(m->post_source);
        sd_event_source_disable_unref(m->status_timer);
        sd_event_source_disable_unref(m->prune_timer);
        sd_event_source_disable_unref(m->grace_timer);
        sd_event_source_disable_unref(m->sigterm_source);
        sd_event_source_disable_unref(m->sigint_source);
        sd_event_source_disable_unref(m->sighup_source);
        sd_event_source_disable_unref(m->clock_source);
        if (m->clock_fd >= 0)
                close(m->clock_fd);
        sd_event_source_disable_unref(m->clock_test_source);
        if (m->clock_test_fd >= 0)
                close(m->clock_test_fd);
        if (m->batch_open)
                (void) history_commit(m->hist);
        history_close(m->hist);
        free(m->history_path);
        registry_ref_unref(m->reg);
        sd_event_unref(m->event);
        free(m);
        return NULL;
}
