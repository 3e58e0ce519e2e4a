/* SPDX-License-Identifier: MIT */
#include <assert.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sys/inotify.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <systemd/sd-daemon.h>

#include "basic/clock.h"
#include "basic/duration.h"
#include "basic/fs-util.h"
#include "core/jobctx.h"
#include "core/launcher.h"
#include "basic/log.h"
#include "core/manager.h"
#include "core/state-dir.h"
#include "core/retry.h"
#include "basic/timefmt.h"

/* A retry that cannot start yet (singleton or concurrency limit) waits this long. */
#define RETRY_POSTPONE (1 * USEC_PER_SEC)
/* sd_notify STATUS= is refreshed at most this often */
#define STATUS_INTERVAL (1 * USEC_PER_SEC)
#define PRUNE_INTERVAL USEC_PER_HOUR
/* catch-up looks at most this many missed fires back to find the latest one */
#define CATCH_UP_SCAN_MAX 1000000
/* fires handled per timer dispatch (a fire that forks counts COLD_FIRE_WEIGHT): a backlog must
 * not starve child exits, signals, the control socket, the history commit and the watchdog,
 * which run between dispatches */
#define FIRES_PER_DISPATCH 64
#define FIRE_BUDGET 2048
/* a cron fire this late means the wall clock jumped or the daemon stalled */
#define MISSED_FIRE_SLACK (5 * USEC_PER_SEC)
/* Warm runs: the next cron fires (up to WARM_LEAD ahead, earliest first, at most WARM_MAX
 * at a time) get their process forked ahead by the launcher, so the instant itself costs a share
 * of one futex wake instead of a fork (~1-3 ms here: a herd of 1,000 would otherwise start over seconds).
 * The lead is long so that a herd has time to be forked; the cap bounds what waits. */
#define WARM_LEAD (30 * USEC_PER_SEC)
#define WARM_PER_DISPATCH 64
/* the cron timer wakes this much before an instant to decide and claim its fires */
#define PREPARE_LEAD (3 * USEC_PER_MSEC)
/* no warm-up requests this close to a due fire */
#define WARM_GUARD (5 * USEC_PER_MSEC)
#define WARM_MAX 1024
#define GATE_SLOTS (4 * WARM_MAX)
/* fork requests a launcher may have unanswered: back-pressure instead of a full socket */
#define LAUNCH_INFLIGHT_MAX 128
/* a fire whose process is warm costs a slot opened at the gate; one that forks weighs this much
 * more in the per-dispatch budget */
#define COLD_FIRE_WEIGHT (FIRE_BUDGET / FIRES_PER_DISPATCH)

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
#define BATCH_MAX_USEC (100 * USEC_PER_MSEC)
/* no commit this close before a due cron fire */
#define COMMIT_GUARD (20 * USEC_PER_MSEC)

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

static int on_post(sd_event_source *s, void *userdata);
static usec_t next_due_real(const manager *m);

/* A cron fire is due within COMMIT_GUARD (not overdue: a backlog must still commit). */
static bool fire_imminent(const manager *m) {
        usec_t next = next_due_real(m), now = clock_now_realtime();
        return next > now && next - now <= COMMIT_GUARD;
}

/* History writes go into one transaction until the event loop has nothing more pending (the
 * commit source has the lowest priority), and at most BATCH_MAX_USEC: a burst of a thousand
 * run exits is one commit, not a thousand. */
static void batch(manager *m) {
        /* (not between deciding fires and releasing them: a commit can wait on a checkpoint's fsync) */
        if (m->batch_open && !m->deferring && m->n_due == 0 &&
            !fire_imminent(m) &&
            clock_now_monotonic() - m->batch_opened_at > BATCH_MAX_USEC)
                (void) on_post(NULL, m);
        if (m->batch_open || !m->hist)
                return;
        if (history_begin(m->hist) >= 0) {
                m->batch_open = true;
                m->batch_opened_at = clock_now_monotonic();
                (void) sd_event_source_set_enabled(m->post_source, SD_EVENT_ONESHOT);
        }
}

static int on_post(sd_event_source *s, void *userdata) {
        manager *m = userdata;
        if (!m->batch_open)
                return 0;
        /* Idle only because it waits for an instant to release runs, or a fire is about to be
         * due: a commit can wait on a checkpoint's fsync for milliseconds, so it comes after
         * (finish_fires() enables this again). */
        if (s && (m->n_due > 0 || fire_imminent(m)))
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

static void warm_abandon(job_rt *j) {
        if (j->warm) {
                run_abandon(j->warm);
                j->warm = NULL;
        }
}

static job_rt *job_rt_free(job_rt *j) {
        if (!j)
                return NULL;
        warm_abandon(j);
        free(j->dir);
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

/* The job's state directory, made on its first run and remembered (a mkdir per run was a fifth
 * of the daemon's time under 167 fires a second). NULL on OOM. */
static const char *job_dir(manager *m, job_rt *j) {
        if (!j->dir)
                j->dir = jobctx_state_dir(m->reg->reg, j->def);
        return j->dir;
}

static void run_done(run *r, void *userdata);

static registry_ref *run_registry(const run *r) {
        return r->owner_data;
}

static job_rt *run_job(manager *m, const run *r) {
        return manager_find_job(m, r->def->name);
}

static void list_add(run **head, run *r) {
        r->next = *head;
        r->prev = NULL;
        if (*head)
                (*head)->prev = r;
        *head = r;
}

static void list_remove(run **head, run *r) {
        if (r->prev)
                r->prev->next = r->next;
        else
                *head = r->next;
        if (r->next)
                r->next->prev = r->prev;
        r->next = r->prev = NULL;
}

static void runs_add(manager *m, run *r) {
        list_add(&m->runs, r);
}

static void runs_remove(manager *m, run *r) {
        list_remove(&m->runs, r);
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
                /* claimed before it started: a warm run at the gate's wake, a forked one at its fork */
                (void) history_set_start(m->hist, r->id, r->pid, r->started);
        }
        if (r->launching) {
                /* a warm run whose fork is still on its way: the pid is recorded when it comes */
                log_full(LOG_INFO, 0, r->def->name, (uint64_t) r->id, (int) r->attempt, "Started (%s, forked ahead)",
                         run_trigger_to_string(r->trigger));
                return;
        }
        log_full(LOG_INFO, 0, r->def->name, (uint64_t) r->id, (int) r->attempt, "Started (%s, pid %d)",
                 run_trigger_to_string(r->trigger), (int) r->pid);
}

/* A run that ends before the release of its dispatch (its child died, or its fork failed) must
 * not be released. */
static void opened_forget(manager *m, run *r) {
        for (size_t i = 0; i < m->n_opened; i++)
                if (m->opened[i] == r) {
                        m->opened[i] = m->opened[--m->n_opened];
                        return;
                }
}

static void run_not_started(manager *m, job_rt *j, run *r, int q) {
        log_full(LOG_ERR, q, r->def->name, (uint64_t) r->id, (int) r->attempt, "Cannot start run: %m");
        opened_forget(m, r);
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
        manager_status_changed(m);
        if (m->shutting_down && m->n_running == 0)
                (void) sd_event_exit(m->event, 0);
}

/* Forks the runs prepared during this dispatch back to back, then watches them. */
static void flush_deferred(manager *m) {
        size_t n = m->n_deferred;
        int q[ELEMENTSOF(m->deferred)];
        usec_t t[ELEMENTSOF(m->deferred)];

        m->n_deferred = 0;
        for (size_t i = 0; i < n; i++) {
                t[i] = clock_now_realtime();
                q[i] = run_launch(m->deferred[i]);
        }
        for (size_t i = 0; i < n; i++) {
                run *r = m->deferred[i];
                job_rt *j = run_job(m, r);
                r->started = t[i]; /* recorded by run_started() */
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
        const char *dir = job_dir(m, j);
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

/* Starts the warm run W as run ID: no fork, its slot of the start gate opens. Its child starts
 * at release_opened(), with every other run opened in the same dispatch. */
static void start_warm(manager *m, job_rt *j, run *w, int64_t id) {
        run_go(w, id, id, RUN_TRIGGER_SCHEDULE);
        list_remove(&m->warm_runs, w);
        m->n_warm--;
        runs_add(m, w);
        j->n_running++;
        m->n_running++;
        manager_status_changed(m);
        assert(m->n_opened < m->opened_cap);
        m->opened[m->n_opened++] = w;
}

/* One futex wake releases every run opened since the last call; then each gets its start time
 * (recorded in history) and its deadline. The start is the instant of the wake: from then on
 * the children are runnable, and when each gets a CPU is the kernel's to decide (the daemon
 * itself may wait for one: a thousand woken children preempt it). */
static void release_opened(manager *m) {
        usec_t started = clock_now_realtime();
        start_gate_release(m->gate);
        if (m->n_opened == 0)
                return;
        for (size_t i = 0; i < m->n_opened; i++) {
                run *r = m->opened[i];
                int q = run_released(r, started);
                if (q < 0) {
                        /* untimed it must not run: it ends as crashed (SIGKILL) and is recorded */
                        log_full(LOG_ERR, q, r->def->name, (uint64_t) r->id, 0, "Cannot arm the run's deadline: %m");
                        run_kill(r);
                }
                run_started(m, manager_find_job(m, r->def->name), r);
        }
        m->n_opened = 0;
}

/* The warm run of J for the fire at SCHEDULED, taken from J, or NULL. A warm run for another
 * instant (the clock moved) is abandoned. */
static run *warm_take(job_rt *j, usec_t scheduled) {
        run *w = j->warm;
        if (!w)
                return NULL;
        j->warm = NULL;
        if (w->scheduled != scheduled) {
                run_abandon(w);
                return NULL;
        }
        return w;
}

/* A fire of JOB (any trigger but retry) standing for SCHEDULED: apply the policies, claim the
 * fire in history, start the run. Returns the run id (> 0), 0 when nothing was started
 * (disabled, skipped, already claimed), or -errno. */
static int64_t fire(manager *m, job_rt *j, run_trigger trigger, usec_t scheduled) {
        /* a scheduled fire may be decided just before its instant (see on_real_timer()) */
        usec_t now = MAX(clock_now_realtime(), trigger == RUN_TRIGGER_SCHEDULE ? scheduled : 0);
        run *w = trigger == RUN_TRIGGER_SCHEDULE ? warm_take(j, scheduled) : NULL;
        char why[256];
        int64_t id = 0;
        int q;

        if (m->shutting_down || (trigger != RUN_TRIGGER_MANUAL && !job_rt_enabled(j))) {
                run_abandon(w);
                return 0;
        }

        batch(m);
        const char *reason = skip_reason(m, j, why, sizeof(why));
        if (reason) {
                run_abandon(w);
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
                run_abandon(w);
                /* this very fire ran before: a restart or a clock set back brought it round again */
                log_full(LOG_INFO, 0, j->def->name, 0, -1, "Fire at %" PRIu64 " was already claimed; not running it twice",
                         scheduled);
                return 0;
        }
        if (q < 0) {
                history_failed(m, q, "claiming a fire");
                id = 0;
        }

        if (w) {
                start_warm(m, j, w, id);
                return id;
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

/* A warm run's child exited without being started: abandoned (the usual), or it died. */
static void warm_done(manager *m, run *r) {
        job_rt *j = run_job(m, r);
        if (j && j->warm == r)
                j->warm = NULL;
        if (!r->abandoned) {
                char at[TIMEFMT_MAX];
                log_full(LOG_WARNING, 0, r->def->name, 0, -1,
                         "The process forked ahead of the fire at %s ended before it (%s%s%s); the fire will fork a new "
                         "one. Something outside the daemon killed it: `journalctl -k` shows an OOM kill.",
                         timefmt_rfc3339(r->scheduled, NULL, false, at, sizeof(at)), run_status_to_string(r->status),
                         r->message[0] ? ": " : "", r->message);
        }
        list_remove(&m->warm_runs, r);
        m->n_warm--;
        registry_ref_unref(run_registry(r));
        run_free(r);
        manager_arm_timers(m);
}

static void run_done(run *r, void *userdata) {
        manager *m = userdata;
        if (r->warm) {
                warm_done(m, r);
                return;
        }
        job_rt *j = run_job(m, r);
        char tail[HISTORY_OUTPUT_MAX];
        size_t tail_len = run_output_tail(r, tail);

        opened_forget(m, r);

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

/* Sets the one-shot timer S for WHEN (its own clock), or turns it off for USEC_INFINITY. */
static void timer_at(sd_event_source *s, usec_t when) {
        if (when == USEC_INFINITY) {
                (void) sd_event_source_set_enabled(s, SD_EVENT_OFF);
                return;
        }
        (void) sd_event_source_set_time(s, when);
        (void) sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
}

static usec_t heap_next(const timer_heap *h) {
        timer_entry *e = timer_heap_peek(h);
        return e ? e->when : USEC_INFINITY;
}

static usec_t realtime_to_kernel(usec_t when) {
        return when == USEC_INFINITY ? USEC_INFINITY : clock_realtime_to_kernel(when);
}

/* --- warm runs ---------------------------------------------------------------------- */

static job_rt *heap_job(const timer_heap *h, size_t i) {
        return ((wake *) h->v[i])->job;
}

/* The earliest cron fire warming has not considered yet, below *BEST: a walk of the heap that
 * stops at the first untried entry of each branch (children are never earlier). */
static void warm_earliest_untried(const timer_heap *h, size_t i, usec_t *best) {
        if (i >= h->n || h->v[i]->when >= *best)
                return;
        if (heap_job(h, i)->warm_tried != h->v[i]->when) {
                *best = h->v[i]->when;
                return;
        }
        warm_earliest_untried(h, 2 * i + 1, best);
        warm_earliest_untried(h, 2 * i + 2, best);
}

/* Appends the untried jobs whose fire is due by HORIZON to m->warm_scratch. */
static int warm_collect(manager *m, size_t i, usec_t horizon, size_t *n) {
        const timer_heap *h = &m->real_heap;
        if (i >= h->n || h->v[i]->when > horizon)
                return 0;
        job_rt *j = heap_job(h, i);
        if (j->warm_tried != h->v[i]->when) {
                if (*n == m->warm_scratch_cap) {
                        size_t cap = MAX(m->warm_scratch_cap * 2, (size_t) 64);
                        job_rt **v = reallocarray(m->warm_scratch, cap, sizeof(job_rt *));
                        if (!v)
                                return -ENOMEM;
                        m->warm_scratch = v;
                        m->warm_scratch_cap = cap;
                }
                m->warm_scratch[(*n)++] = j;
        }
        int q = warm_collect(m, 2 * i + 1, horizon, n);
        return q < 0 ? q : warm_collect(m, 2 * i + 2, horizon, n);
}

static int job_rt_fire_cmp(const void *a, const void *b) {
        const job_rt *x = *(job_rt *const *) a, *y = *(job_rt *const *) b;
        return CMP(x->fire.entry.when, y->fire.entry.when);
}

static void sift_down_latest(job_rt **v, size_t n, size_t i) {
        for (;;) {
                size_t l = 2 * i + 1, r = l + 1, top = i;
                if (l < n && v[l]->fire.entry.when > v[top]->fire.entry.when)
                        top = l;
                if (r < n && v[r]->fire.entry.when > v[top]->fire.entry.when)
                        top = r;
                if (top == i)
                        return;
                job_rt *t = v[i];
                v[i] = v[top];
                v[top] = t;
                i = top;
        }
}

/* Moves the K earliest of V[0..N) to the front, sorted; returns how many (<= K). A max-heap of
 * K: O(n log k) where sorting thousands of candidates per warm-up was measurable. */
static size_t earliest_first(job_rt **v, size_t n, size_t k) {
        size_t m = MIN(n, k);
        for (size_t i = m / 2; i-- > 0;)
                sift_down_latest(v, m, i);
        for (size_t i = m; i < n; i++)
                if (v[i]->fire.entry.when < v[0]->fire.entry.when) {
                        v[0] = v[i];
                        sift_down_latest(v, m, 0);
                }
        qsort(v, m, sizeof(job_rt *), job_rt_fire_cmp);
        return m;
}

/* Wall-clock instant of the next due cron fire. */
static usec_t next_due_real(const manager *m) {
        return heap_next(&m->real_heap);
}

/* --- launchers ------------------------------------------------------------------------ */

typedef struct launcher_slot {
        manager *m;
        launcher *l; /* NULL once closed */
        pid_t pid;
        sd_event_source *io, *child;
        unsigned n_pending;
        bool retired;
        struct launcher_slot *next;
} launcher_slot;

static launcher_slot *current_launcher(manager *m) {
        launcher_slot *ls = m->launchers;
        return ls && !ls->retired && ls->l ? ls : NULL;
}

static void launcher_slot_close(launcher_slot *ls) {
        ls->io = sd_event_source_disable_unref(ls->io);
        ls->l = launcher_free(ls->l); /* EOF: it exits, and on_launcher_exit() frees the slot */
}

static launcher_slot *launcher_slot_free(manager *m, launcher_slot *ls) {
        if (!ls)
                return NULL;
        for (launcher_slot **p = &m->launchers; *p; p = &(*p)->next)
                if (*p == ls) {
                        *p = ls->next;
                        break;
                }
        sd_event_source_disable_unref(ls->io);
        sd_event_source_disable_unref(ls->child);
        launcher_free(ls->l);
        free(ls);
        return NULL;
}

/* A run the launcher could not fork (R->launching is over): a warm one is dropped, a started one
 * is recorded as not started. */
static void launch_failed(manager *m, run *r, int q) {
        job_rt *j = run_job(m, r);
        if (q == -EPIPE && r->slot >= 0) {
                /* The launcher died: it may have forked the child and not said so. Whatever
                 * waits at that slot is turned away, and the slot is never handed out again. */
                start_gate_abandon(r->gate, (unsigned) r->slot);
                start_gate_wake(r->gate);
                r->slot = -1;
        }
        if (!r->warm) {
                run_not_started(m, j, r, q);
                return;
        }
        char at[TIMEFMT_MAX];
        log_full(LOG_WARNING, q, r->def->name, 0, -1,
                 "Cannot fork ahead of the fire at %s: %m; it will fork when due. Near a process or memory limit? "
                 "(pids.max of the unit, RLIMIT_NPROC)",
                 timefmt_rfc3339(r->scheduled, NULL, false, at, sizeof(at)));
        if (j && j->warm == r)
                j->warm = NULL;
        list_remove(&m->warm_runs, r);
        m->n_warm--;
        registry_ref_unref(run_registry(r));
        run_free(r);
}

static void launch_answered(manager *m, run *r, int pid) {
        launcher_slot *ls = r->launcher;
        int q = pid;

        r->launching = false;
        r->launcher = NULL;
        ls->n_pending--;
        if (pid > 0)
                q = run_watch_child(r, pid);
        if (q < 0) {
                launch_failed(m, r, q);
                return;
        }
        if (!r->warm && r->id > 0) {
                batch(m);
                (void) history_set_pid(m->hist, r->id, r->pid);
        }
}

/* The launcher is gone: the answers it sent are taken, every fork it still owed fails. */
static void launcher_lost(manager *m, launcher_slot *ls) {
        uint64_t token;
        int pid;

        if (!ls->retired)
                m->launcher_off = true;
        while (ls->l && launcher_read_reply(ls->l, &token, &pid) >= 0)
                launch_answered(m, (run *) (uintptr_t) token, pid);
        for (run **list = &m->warm_runs;; list = &m->runs) {
                for (run *r = *list, *next; r; r = next) {
                        next = r->next;
                        if (r->launching && r->launcher == ls)
                                launch_answered(m, r, -EPIPE);
                }
                if (list == &m->runs)
                        break;
        }
        launcher_slot_close(ls);
}

static int on_launcher_reply(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        launcher_slot *ls = userdata;
        manager *m = ls->m;
        uint64_t token;
        int pid, q;

        while ((q = launcher_read_reply(ls->l, &token, &pid)) >= 0)
                launch_answered(m, (run *) (uintptr_t) token, pid);
        if (q != -EAGAIN) {
                if (!ls->retired)
                        log_error("The launcher (pid %d) is gone; runs fork from the daemon until the next reload "
                                  "(`schedctl reload` starts a new one; `journalctl -k` shows an OOM kill).",
                                  (int) ls->pid);
                launcher_lost(m, ls);
        } else if (ls->retired && ls->n_pending == 0)
                launcher_slot_close(ls);
        manager_arm_timers(m);
        return 0;
}

static int on_launcher_exit(sd_event_source *s, const siginfo_t *si, void *userdata) {
        manager *m = userdata;
        launcher_slot *ls = NULL;
        for (launcher_slot *x = m->launchers; x; x = x->next)
                if (x->child == s)
                        ls = x;
        if (!ls)
                return 0;
        if (ls->l && !ls->retired)
                log_error("The launcher (pid %d) exited unexpectedly (%s %d); runs fork from the daemon until the next "
                          "reload (`schedctl reload` starts a new one; `journalctl -k` shows an OOM kill).",
                          (int) ls->pid, si->si_code == CLD_EXITED ? "status" : "signal", si->si_status);
        if (ls->l)
                launcher_lost(m, ls);
        launcher_slot_free(m, ls);
        return 0;
}

/* After a reload: the launchers of older registries exit once their pending forks are
 * answered; the next warm-up starts one for the registry in force. */
static void launchers_retire(manager *m) {
        for (launcher_slot *x = m->launchers; x; x = x->next)
                if (!x->retired) {
                        x->retired = true;
                        if (x->n_pending == 0 && x->l)
                                launcher_slot_close(x);
                }
        m->launcher_off = false;
}

/* Forks a launcher for the registry in force, when warming first needs one (a registry without
 * cron jobs never gets one). Without one, warm runs are off until the next reload and every
 * run forks from the daemon. */
static launcher_slot *launcher_start(manager *m) {
        launcher_slot *ls = calloc(1, sizeof(launcher_slot));
        int q = !m->gate ? -EOPNOTSUPP : ls ? launcher_new(m->reg->reg, m->gate, &ls->l) : -ENOMEM;

        if (q >= 0) {
                ls->m = m;
                ls->pid = launcher_pid(ls->l);
                q = sd_event_add_io(m->event, &ls->io, launcher_fd(ls->l), EPOLLIN, on_launcher_reply, ls);
                if (q >= 0)
                        q = sd_event_add_child(m->event, &ls->child, ls->pid, WEXITED, on_launcher_exit, m);
                if (q < 0) {
                        (void) kill(ls->pid, SIGKILL);
                        (void) waitpid(ls->pid, NULL, 0);
                }
        }
        if (q < 0) {
                log_warning_errno(q, "Cannot start the launcher (%m); runs fork from the daemon, without warm starts, "
                                     "until `schedctl reload`. Near a process or memory limit? (pids.max, RLIMIT_NPROC)");
                if (ls) {
                        sd_event_source_disable_unref(ls->io);
                        sd_event_source_disable_unref(ls->child);
                        launcher_free(ls->l);
                        free(ls);
                }
                m->launcher_off = true;
                return NULL;
        }
        ls->next = m->launchers;
        m->launchers = ls;
        return ls;
}

/* Warm runs at most: the concurrency limit (a warm run becomes a running one), and what the
 * descriptor limit allows (three each: output and message pipes, pidfd; counted as eight to
 * leave room for the runs they become). */
static unsigned warm_cap(const manager *m) {
        return MIN(m->warm_max, m->reg->reg->max_concurrent);
}

static void arm_warm(manager *m) {
        usec_t best = USEC_INFINITY;
        launcher_slot *ls;
        if (!m->warm_timer || !m->reg)
                return;
        ls = current_launcher(m);
        if (!m->shutting_down && m->gate && m->n_warm < warm_cap(m) &&
            (ls ? ls->n_pending < LAUNCH_INFLIGHT_MAX : !m->launcher_off))
                warm_earliest_untried(&m->real_heap, 0, &best);
        timer_at(m->warm_timer, best == USEC_INFINITY ? USEC_INFINITY : clock_realtime_to_kernel(best - MIN(best, WARM_LEAD)));
}

/* Asks the launcher for the processes of the cron fires due within WARM_LEAD, earliest first. */
static int on_warm_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        manager *m = userdata;
        launcher_slot *ls = current_launcher(m);
        usec_t now = clock_now_realtime();
        size_t n = 0, sent = 0;
        bool guarded = false;

        if (!ls && !m->shutting_down && !m->launcher_off)
                ls = launcher_start(m);
        if (m->shutting_down || !ls)
                return 0;
        if (m->n_due > 0 || next_due_real(m) <= now + WARM_GUARD) {
                /* after the due fire (the real timer goes first at the same instant); for a
                 * backlog, the real timer's dispatch arms this again */
                usec_t t = m->n_due > 0 ? m->release_at : next_due_real(m);
                timer_at(m->warm_timer, t > now ? clock_realtime_to_kernel(t) : USEC_INFINITY);
                return 0;
        }
        if (warm_collect(m, 0, now + WARM_LEAD, &n) < 0) {
                log_error("Out of memory preparing runs ahead of their fire; they will fork when due.");
                n = 0;
        }
        n = earliest_first(m->warm_scratch, n, WARM_PER_DISPATCH);

        for (size_t i = 0; i < n && sent < WARM_PER_DISPATCH && m->n_warm < warm_cap(m) &&
                           ls->n_pending < LAUNCH_INFLIGHT_MAX;
             i++) {
                job_rt *j = m->warm_scratch[i];
                usec_t when = j->fire.entry.when;
                const char *dir;
                run *r;
                int q;

                /* forks of the launcher cost the daemon little, but requests still take time:
                 * none when a fire is about to be due */
                if (next_due_real(m) <= clock_now_realtime() + WARM_GUARD) {
                        guarded = true;
                        break;
                }
                j->warm_tried = when;
                warm_abandon(j); /* for an earlier instant that never came (clock set back) */
                if (!job_rt_enabled(j) || !(dir = job_dir(m, j)))
                        continue;
                if (run_prepare_warm(j->def, dir, when, m->gate, run_done, m, &r) < 0)
                        continue; /* the fire forks when due */
                q = launcher_request(ls->l, (uint64_t) (uintptr_t) r, j->index, when, r->slot, r->out_w, r->msg_w);
                if (q < 0) {
                        run_free(r);
                        if (q == -EAGAIN)
                                break; /* socket full: this fire forks when due; more after replies */
                        continue;
                }
                sent++;
                r->launching = true;
                r->launcher = ls;
                ls->n_pending++;
                r->owner_data = registry_ref_ref(m->reg);
                list_add(&m->warm_runs, r);
                m->n_warm++;
                j->warm = r;
                if (run_watch_io(m->event, r) < 0)
                        warm_abandon(j); /* unwatched output: let that child go */
        }
        start_gate_wake(m->gate); /* the abandoned */
        if (guarded)
                /* after the due fire (the real timer goes first at the same instant) */
                timer_at(m->warm_timer, realtime_to_kernel(next_due_real(m)));
        else
                arm_warm(m);
        return 0;
}

static void warm_abandon_all(manager *m) {
        for (run *r = m->warm_runs; r; r = r->next)
                run_abandon(r);
        for (size_t i = 0; i < m->n_jobs; i++)
                m->jobs[i]->warm = NULL;
}

static void manager_arm_timers(manager *m) {
        usec_t next = heap_next(&m->real_heap);

        start_gate_wake(m->gate); /* children abandoned since the last wake go */
        if (m->shutting_down) {
                timer_at(m->real_timer, USEC_INFINITY);
                timer_at(m->boot_timer, USEC_INFINITY);
                timer_at(m->warm_timer, USEC_INFINITY);
                return;
        }
        /* the cron timer is early by PREPARE_LEAD, or set for the release of fires decided */
        timer_at(m->real_timer, m->n_due > 0            ? clock_realtime_to_kernel(m->release_at)
                                : next == USEC_INFINITY ? USEC_INFINITY
                                                        : clock_realtime_to_kernel(next - MIN(next, PREPARE_LEAD)));
        timer_at(m->boot_timer, heap_next(&m->boot_heap));
        arm_warm(m);
}

/* The second half of a dispatch of cron fires: releases the warm runs opened by it, records and
 * requeues its fires, forks the ones without a warm process. */
static void finish_fires(manager *m) {
        usec_t now = clock_now_realtime();
        timer_entry *e;

        release_opened(m);
        for (size_t i = 0; i < m->n_due; i++) {
                job_rt *j = m->due[i];
                usec_t scheduled = m->due_at[i];
                batch(m);
                int q = history_set_last_scheduled(m->hist, j->def->name, scheduled);
                if (q < 0)
                        history_failed(m, q, "recording the last fire");
                /* Far behind (the clock jumped forwards, or the machine stalled): the fires in
                 * between are not run one by one; catch_up runs them as one, if wanted. */
                job_schedule_cron(j, now > scheduled && now - scheduled > MISSED_FIRE_SLACK ? now : scheduled);
        }
        m->n_due = 0;
        flush_deferred(m);
        if (m->batch_open)
                (void) sd_event_source_set_enabled(m->post_source, SD_EVENT_ONESHOT);
        /* Due fires go before the exits and output of runs already started (a herd's first runs
         * would otherwise delay its last ones), unless this is a backlog: then the rest waits its
         * turn behind them, so reaping and the control socket are never starved. */
        e = timer_heap_peek(&m->real_heap);
        (void) sd_event_source_set_priority(m->real_timer, e && e->when <= now ? SD_EVENT_PRIORITY_NORMAL
                                                                                 : SD_EVENT_PRIORITY_IMPORTANT);
        manager_arm_timers(m);
}

/* The real timer wakes PREPARE_LEAD before an instant: the fires due at it are decided and
 * claimed then and their warm runs opened, and the timer is set for the instant itself, where
 * only the release is left. Woken late, or for a backlog, it does both at once. */
static int on_real_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        manager *m = userdata;
        usec_t now = clock_now_realtime();
        timer_entry *e;

        if (m->n_due > 0) {
                finish_fires(m); /* the instant of the fires decided last time */
                return 0;
        }
        e = timer_heap_peek(&m->real_heap);
        if (!e) {
                manager_arm_timers(m);
                return 0;
        }
        usec_t instant = e->when, horizon = MAX(now, instant);

        m->deferring = true;
        for (unsigned cost = 0; cost < FIRE_BUDGET && (e = timer_heap_peek(&m->real_heap)) && e->when <= horizon &&
                                !m->shutting_down;) {
                job_rt *j = ((wake *) e)->job;
                usec_t scheduled = e->when;

                cost += j->warm && j->warm->scheduled == scheduled ? 1 : COLD_FIRE_WEIGHT;
                /* off the heap now, queued again in finish_fires(): until the release only what
                 * decides and claims the fire stands between the instant and its run */
                timer_heap_remove(&m->real_heap, e);
                m->due[m->n_due] = j;
                m->due_at[m->n_due++] = scheduled;
                (void) fire(m, j, RUN_TRIGGER_SCHEDULE, scheduled);
        }
        m->deferring = false;
        if (instant > clock_now_realtime() && !m->shutting_down) {
                m->release_at = instant;
                manager_arm_timers(m);
                return 0;
        }
        finish_fires(m);
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
        usec_t now;
        if (m->n_due > 0)
                finish_fires(m); /* its release instant may now be far off */
        warm_abandon_all(m); /* forked for instants that moved */
        now = clock_now_realtime();
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
                jobs[i]->index = i;
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

        if (m->n_due > 0)
                finish_fires(m); /* fires decided for an instant hold the jobs a reload frees */
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
                else {
                        launchers_retire(m);
                        manager_arm_timers(m);
                }
                if (q >= 0)
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
        if (m->n_due > 0)
                finish_fires(m); /* claimed fires start, to be cancelled with the rest */
        m->shutting_down = true;
        (void) sd_notify(false, "STOPPING=1\nSTATUS=Stopping");
        warm_abandon_all(m);
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
        m->opened = calloc(WARM_MAX, sizeof(run *));
        if (!m->opened)
                return -ENOMEM;
        m->opened_cap = WARM_MAX;
        m->due = calloc(FIRE_BUDGET, sizeof(job_rt *));
        m->due_at = calloc(FIRE_BUDGET, sizeof(usec_t));
        if (!m->due || !m->due_at)
                return -ENOMEM;
        /* a slot is held from warm-up to the end of its run: room for runs in flight too */
        q = start_gate_new(GATE_SLOTS, &m->gate);
        if (q < 0)
                log_warning_errno(q, "Cannot map the start gate (%m); runs fork when due, without warm starts.");
        struct rlimit nofile;
        m->warm_max = getrlimit(RLIMIT_NOFILE, &nofile) >= 0 && nofile.rlim_cur != RLIM_INFINITY
                              ? (unsigned) MIN((nofile.rlim_cur > 1024 ? nofile.rlim_cur - 1024 : 0) / 8, (rlim_t) WARM_MAX)
                              : WARM_MAX;

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

        q = state_dir_claim(r->state_dir);
        if (q < 0) {
                registry_free(r);
                return q;
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
                            n_int == 1 ? "" : "s");

        q = sd_event_add_time(m->event, &m->real_timer, CLOCK_REALTIME, USEC_INFINITY, 1, on_real_timer, m);
        if (q >= 0)
                q = sd_event_source_set_priority(m->real_timer, SD_EVENT_PRIORITY_IMPORTANT);
        if (q >= 0)
                q = sd_event_add_time(m->event, &m->boot_timer, CLOCK_BOOTTIME, USEC_INFINITY, 1, on_boot_timer, m);
        if (q >= 0)
                q = sd_event_add_time(m->event, &m->warm_timer, CLOCK_REALTIME, USEC_INFINITY, 1, on_warm_timer, m);
        /* below everything else: due fires, child exits and the control socket come first */
        if (q >= 0)
                q = sd_event_source_set_priority(m->warm_timer, SD_EVENT_PRIORITY_NORMAL + 1);
        if (q >= 0)
                q = sd_event_add_defer(m->event, &m->post_source, on_post, m);
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
        if (!m->shutting_down) /* on_sigterm() said it already */
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
        for (run *r = m->warm_runs; r; r = r->next)
                run_abandon(r);
        start_gate_wake(m->gate);
        while (m->warm_runs) {
                run *r = m->warm_runs;
                list_remove(&m->warm_runs, r);
                registry_ref_unref(run_registry(r));
                run_free(r);
        }
        free(m->opened);
        free(m->due);
        free(m->due_at);
        free(m->warm_scratch);
        while (m->launchers)
                launcher_slot_free(m, m->launchers);
        for (size_t i = 0; i < m->n_jobs; i++)
                job_rt_free(m->jobs[i]);
        free(m->jobs);
        free(m->by_name);
        timer_heap_done(&m->real_heap);
        timer_heap_done(&m->boot_heap);
        sd_event_source_disable_unref(m->real_timer);
        sd_event_source_disable_unref(m->boot_timer);
        sd_event_source_disable_unref(m->warm_timer);
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
        start_gate_free(m->gate);
        sd_event_unref(m->event);
        free(m);
        return NULL;
}
