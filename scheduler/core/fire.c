/* SPDX-License-Identifier: MIT */
/* A fire, from its timer to its run: the dispatches of the cron and @every/retry timers, the
 * policies (enabled, singleton, max_concurrent), the claim in history, the start (a warm run
 * opened at the gate, or a fork) and the release of the warm runs of a dispatch. */
#include <assert.h>
#include <inttypes.h>
#include <sys/random.h>
#include <sys/wait.h>

#include "basic/clock.h"
#include "basic/log.h"
#include "core/cluster-control.h"
#include "core/cluster.h"
#include "core/manager-internal.h"

/* In a cluster an @every instant up to this late is still claimed (another node may not have
 * taken it either); a longer stall skips to the next grid instant. */
#define MISSED_FIRE_SLACK (5 * USEC_PER_SEC)

/* A retry that cannot start yet (singleton or concurrency limit) waits this long. */
#define RETRY_POSTPONE (1 * USEC_PER_SEC)
/* fires handled per timer dispatch (a fire that forks counts COLD_FIRE_WEIGHT): a backlog must
 * not starve child exits, signals, the control socket, the history commit and the watchdog,
 * which run between dispatches */
#define FIRES_PER_DISPATCH 64
/* the cron timer wakes this much before an instant to decide and claim its fires, or twice as
 * long as deciding them took lately (a herd of 1,000 takes ~10 ms), or as deciding as many fires
 * as are due at it would take (twice DECIDE_FIRE_USEC each until measured: the first herd after
 * a start, with nothing learnt yet, took ~40 ms to decide and started that late), up to
 * PREPARE_LEAD_MAX */
#define PREPARE_LEAD (3 * USEC_PER_MSEC)
#define PREPARE_LEAD_MAX (250 * USEC_PER_MSEC)
#define DECIDE_FIRE_USEC 25
/* decisions of fewer fires than this say little of the cost of one */
#define DECIDE_SAMPLE_MIN 16
/* a fire whose process is warm costs a slot opened at the gate; one that forks weighs this much
 * more in the per-dispatch budget */
#define COLD_FIRE_WEIGHT (FIRE_BUDGET / FIRES_PER_DISPATCH)

void manager_list_add(run **head, run *r) {
        r->next = *head;
        r->prev = NULL;
        if (*head)
                (*head)->prev = r;
        *head = r;
}

void manager_list_remove(run **head, run *r) {
        if (r->prev)
                r->prev->next = r->next;
        else
                *head = r->next;
        if (r->next)
                r->next->prev = r->prev;
        r->next = r->prev = NULL;
}

void manager_job_runs_add(job_rt *j, run *r) {
        if (j->n_runs == j->runs_allocated) {
                size_t a = MAX(j->runs_allocated * 2, (size_t) 4);
                run **v = reallocarray(j->runs, a, sizeof(run *));
                if (!v) {
                        j->runs_unindexed = true; /* its checks scan m->runs, as before */
                        return;
                }
                j->runs = v;
                j->runs_allocated = a;
        }
        j->runs[j->n_runs++] = r;
}

void manager_runs_add(manager *m, run *r) {
        manager_list_add(&m->runs, r);
        job_rt *j = job_rt_of_run(m, r);
        if (j)
                manager_job_runs_add(j, r);
}

void manager_runs_remove(manager *m, run *r) {
        manager_list_remove(&m->runs, r);
        job_rt *j = job_rt_of_run(m, r);
        if (!j)
                return;
        for (size_t i = 0; i < j->n_runs; i++)
                if (j->runs[i] == r) {
                        j->runs[i] = j->runs[--j->n_runs];
                        break;
                }
}

bool manager_fire_due_soon(const job_rt *j, usec_t now) {
        return !j->every && j->next_fire != USEC_INFINITY && j->next_fire <= now + START_FOLD;
}

/* Whether R's process has exited, reaped or not: a run that finished but whose exit the loop
 * has not handled yet (its SIGCHLD comes after this dispatch) does not hold a singleton. */
static bool run_exited(const run *r) {
        siginfo_t si = {};
        if (r->pid <= 0)
                return false;
        return waitid(P_PID, (id_t) r->pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0 ? errno == ECHILD
                                                                                   : si.si_pid == r->pid;
}

/* Why J cannot start a run now, or NULL; *RET_LIMIT (may be NULL) tells the concurrency limit
 * from J's own overlap. */
static const char *skip_reason(manager *m, job_rt *j, char *buf, size_t n, bool *ret_limit) {
        if (ret_limit)
                *ret_limit = false;
        if (j->def->singleton && j->n_running > 0) {
                int64_t id = 0;
                if (j->runs_unindexed) {
                        for (run *r = m->runs; r; r = r->next)
                                if (streq(r->def->name, j->def->name) && !run_exited(r))
                                        id = r->id ?: -1;
                } else
                        for (size_t i = 0; i < j->n_runs && id == 0; i++)
                                if (!run_exited(j->runs[i]))
                                        id = j->runs[i]->id ?: -1;
                if (id != 0) {
                        snprintf(buf, n, "previous run %" PRId64 " still running (singleton)", MAX(id, (int64_t) 0));
                        return buf;
                }
        }
        if (m->n_running >= m->reg->reg->max_concurrent) {
                if (ret_limit)
                        *ret_limit = true;
                snprintf(buf, n, "concurrency limit reached (max_concurrent=%u runs in flight)",
                         m->reg->reg->max_concurrent);
                return buf;
        }
        return NULL;
}

/* J's runs go to a worker of its pool (isolation: worker). */
static bool in_worker(const job_rt *j) {
        return j && j->def->isolation == JOB_ISOLATION_WORKER;
}

static void run_started(manager *m, job_rt *j, run *r) {
        /* a worker's run is recorded and logged started when a worker takes it
         * (manager_worker_dispatched): it may wait for one first */
        if (in_worker(j))
                return;
        if (r->id > 0) {
                manager_history_batch(m);
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
void manager_opened_forget(manager *m, run *r) {
        for (size_t i = 0; i < m->n_opened; i++)
                if (m->opened[i] == r) {
                        m->opened[i] = m->opened[--m->n_opened];
                        return;
                }
}

void manager_run_not_started(manager *m, job_rt *j, run *r, int q) {
        log_full(LOG_ERR, q, r->def->name, (uint64_t) r->id, (int) r->attempt, "Cannot start run: %m");
        manager_opened_forget(m, r);
        if (r->id > 0) {
                char msg[256];
                snprintf(msg, sizeof(msg), "could not start: %s", strerror(-q));
                history_result res = {
                        .status = RUN_STATUS_FAILED, .exit_code = -1, .finished_usec = clock_now_realtime(),
                        .duration_usec = 0, .message = msg,
                };
                manager_history_batch(m);
                (void) history_finish_run(m->hist, r->id, &res);
        }
        r->status = RUN_STATUS_FAILED;
        manager_metrics_run_ended(m, j, r);
        manager_runs_remove(m, r);
        if (j && j->n_running > 0)
                j->n_running--;
        m->n_running--;
        /* run_free() still reads the run's job_def (its cgroup's name): drop the registry after it */
        registry_ref *ref = registry_ref_of_run(r);
        run_free(r);
        registry_ref_unref(ref);
        manager_status_changed(m);
        if (m->shutting_down && m->n_running == 0)
                (void) sd_event_exit(m->event, 0);
}

void manager_worker_dispatched(run *r, pid_t pid, void *userdata) {
        manager *m = userdata;
        if (r->id > 0) {
                /* A short run ends within the batch it started in: its start then goes with its
                 * result, one statement instead of two per run. A run still going when the batch
                 * commits has its start written then (record_start() in history-batch.c), so the
                 * row shows it within BATCH_MAX_USEC as before. */
                manager_history_batch(m);
                if (m->batch_open) {
                        r->start_owed = true;
                        r->start_owed_pid = pid;
                } else /* no batch (PostgreSQL commits every write alone): now, as it comes */
                        (void) history_set_start(m->hist, r->id, pid, r->started);
        }
        if (r->start_logged)
                log_full(LOG_INFO, 0, r->def->name, (uint64_t) r->id, (int) r->attempt,
                         "Moved to worker pid %d (the worker it was sent to ended before it began)", (int) pid);
        else
                log_full(LOG_INFO, 0, r->def->name, (uint64_t) r->id, (int) r->attempt, "Started (%s, worker pid %d)",
                         run_trigger_to_string(r->trigger), (int) pid);
        r->start_logged = true;
}

/* Worker runs submitted in a dispatch before the first of them are sent: about what the
 * workers' pipelines of short runs take (worker-pool.c), two workers here. */
#define PUMP_EARLY 128

/* Forks the runs RS (N of them, FIRE_BUDGET at most) back to back, then watches them, and
 * hands the worker runs among them to their pools; SUBMITTED counts those across calls. */
static void start_runs(manager *m, run **rs, size_t n, size_t *submitted) {
        int q[FIRE_BUDGET];
        usec_t t[FIRE_BUDGET];

        assert(n <= FIRE_BUDGET);
        for (size_t i = 0; i < n; i++) {
                t[i] = clock_now_realtime();
                q[i] = rs[i]->def->isolation == JOB_ISOLATION_WORKER ? 0 : run_launch(rs[i]);
        }
        for (size_t i = 0; i < n; i++) {
                run *r = rs[i];
                job_rt *j = job_rt_of_run(m, r);
                r->started = t[i]; /* recorded by run_started() */
                if (q[i] >= 0 && r->def->isolation == JOB_ISOLATION_WORKER) {
                        q[i] = j ? worker_pools_submit(m->workers, m->reg->reg, j->index, r, 0) : -ESTALE;
                        /* the first ones go while the rest are submitted (a thousand take ~1 ms) */
                        if (++*submitted == PUMP_EARLY)
                                worker_pools_pump(m->workers);
                } else if (q[i] >= 0)
                        q[i] = run_watch(m->event, r);
                if (q[i] < 0)
                        manager_run_not_started(m, j, r, q[i]);
                else
                        run_started(m, j, r);
        }
}

/* Starts the runs prepared during this dispatch (start_runs()). Their claims are committed
 * first (write-ahead). */
void manager_start_deferred(manager *m) {
        size_t n = m->n_deferred, submitted = 0;

        if (n == 0)
                return;
        manager_history_write_ahead(m);
        m->n_deferred = 0;
        start_runs(m, m->deferred, n, &submitted);
        /* the workers get theirs before the instant's bookkeeping (manager_finish_fires()) */
        worker_pools_pump(m->workers);
}

/* The runs prepared in a dispatch ahead of their instant AT (claimed and committed: write-ahead)
 * wait for it. Those of workers go to their workers now, each to start at AT by its worker's
 * own clock: the instant then costs the daemon nothing, and a herd starts as fast as the workers
 * run it. The others wait in m->held for the release. */
static void hold_for_release(manager *m, usec_t at) {
        bool sent = false;
        for (size_t i = 0; i < m->n_deferred; i++) {
                run *r = m->deferred[i];
                if (r->def->isolation != JOB_ISOLATION_WORKER) {
                        assert(m->n_held < DUE_MAX);
                        m->held[m->n_held++] = r;
                        continue;
                }
                job_rt *j = job_rt_of_run(m, r);
                int q = j ? worker_pools_submit(m->workers, m->reg->reg, j->index, r, at) : -ESTALE;
                if (q < 0)
                        manager_run_not_started(m, j, r, q);
                sent = true;
        }
        m->n_deferred = 0;
        if (sent)
                worker_pools_pump(m->workers);
}

/* Starts the runs of the fires decided ahead of m->release_at (claimed and committed then), in
 * the order they were decided, FIRE_BUDGET at a time (start_runs()'s bound). */
static void start_held(manager *m) {
        size_t n = m->n_held, submitted = 0;

        if (n == 0)
                return;
        manager_history_write_ahead(m);
        m->n_held = 0;
        for (size_t i = 0; i < n; i += FIRE_BUDGET)
                start_runs(m, m->held + i, MIN(n - i, (size_t) FIRE_BUDGET), &submitted);
        worker_pools_pump(m->workers);
}


/* Starts a run whose history row (ID, possibly 0 when history is failing) is claimed. During a
 * timer dispatch the fork is deferred to manager_start_deferred(). */
static int start_claimed(manager *m, job_rt *j, int64_t id, int64_t first_id, run_trigger trigger, unsigned attempt,
                         usec_t scheduled, usec_t started) {
        const char *dir = job_rt_dir(m, j);
        run *r;
        int q;

        if (!dir)
                return -ENOMEM;
        /* a dispatch defers FIRE_BUDGET runs at most (a worker's fire costs 1 of its budget): this
         * never starts runs decided ahead of their instant early */
        if (m->deferring && m->n_deferred == FIRE_BUDGET)
                manager_start_deferred(m);
        /* a worker's run needs no pipes of its own (worker.h) */
        q = (in_worker(j) ? run_new : run_prepare)(j->def, dir, id, first_id ?: id, trigger, attempt, scheduled, started,
                                                   manager_run_done, m, &r);
        if (q < 0) {
                log_full(LOG_ERR, q, j->def->name, (uint64_t) id, (int) attempt, "Cannot start run: %m");
                return q;
        }
        r->owner_data = registry_ref_ref(m->reg);
        r->job_index = j->index;
        manager_runs_add(m, r);
        j->n_running++;
        m->n_running++;
        manager_status_changed(m);
        if (m->deferring) {
                m->deferred[m->n_deferred++] = r;
                return 0;
        }
        manager_history_write_ahead(m);
        if (in_worker(j))
                q = worker_pools_submit(m->workers, m->reg->reg, j->index, r, 0);
        else {
                q = run_launch(r);
                if (q >= 0)
                        q = run_watch(m->event, r);
        }
        if (q < 0) {
                manager_run_not_started(m, j, r, q);
                return q;
        }
        run_started(m, j, r);
        return 0;
}

/* Starts the warm run W as run ID: no fork, its slot of the start gate opens. Its child starts
 * at release_opened(), with every other run opened in the same dispatch. */
static void start_warm(manager *m, job_rt *j, run *w, int64_t id) {
        run_go(w, id, id, RUN_TRIGGER_SCHEDULE);
        manager_list_remove(&m->warm_runs, w);
        m->n_warm--;
        manager_runs_add(m, w);
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
        manager_history_write_ahead(m); /* done when the fires were decided: a no-op */
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
                run_started(m, job_rt_of_run(m, r), r);
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
 * fire in history, start the run. WAITED: it waited in the fire queue already. Returns the run
 * id (> 0), 0 when nothing was started (disabled, skipped, held for a slot, already claimed),
 * or -errno. */
static int64_t fire_one(manager *m, job_rt *j, run_trigger trigger, usec_t scheduled, bool waited) {
        /* a scheduled fire may be decided just before its instant (see manager_on_real_timer()) */
        usec_t now = MAX(clock_now_realtime(), trigger == RUN_TRIGGER_SCHEDULE ? scheduled : 0);
        run *w = trigger == RUN_TRIGGER_SCHEDULE && !waited ? warm_take(j, scheduled) : NULL;
        char why[256];
        bool limit;
        int64_t id = 0;
        int q;

        if (m->shutting_down ||
            (trigger != RUN_TRIGGER_MANUAL && (!job_rt_enabled(j) || job_rt_paused(j, scheduled)))) {
                run_abandon(w);
                return 0;
        }
        if (overlap_hold(m, j, trigger, scheduled)) {
                run_abandon(w);
                return 0;
        }
        if (trigger == RUN_TRIGGER_SCHEDULE && j->folded_fire != 0) {
                bool folded = scheduled == j->folded_fire;
                j->folded_fire = 0;
                if (folded) {
                        run_abandon(w);
                        log_full(LOG_INFO, 0, j->def->name, 0, -1,
                                 "Fire at %" PRIu64 " is the start-up run just started; not running it again", scheduled);
                        return 0;
                }
        }

        /* in a cluster, a fire is run (or recorded skipped) only under a claim this node may make */
        if (!cluster_may_claim(m->cluster)) {
                run_abandon(w);
                return trigger == RUN_TRIGGER_MANUAL ? -EAGAIN : 0;
        }
        manager_history_batch(m);
        const char *reason = skip_reason(m, j, why, sizeof(why), &limit);
        /* a scheduled fire held back by the limit, or behind older ones held back, waits for a
         * slot (overload.c); other triggers stand for instants past already and are skipped */
        if (trigger == RUN_TRIGGER_SCHEDULE && !waited && (limit || (!reason && overload_waiting(m))) &&
            overload_enqueue(m, j, trigger, scheduled) >= 0) {
                run_abandon(w);
                manager_status_changed(m);
                return 0;
        }
        /* the cluster-wide singleton is judged after the claim (cluster-control.h): without the
         * connection for its slot, this node leaves the fire unclaimed, to a node that has one */
        bool cluster_singleton = !reason && j->def->singleton && m->cluster_control;
        if (cluster_singleton && !cluster_control_connected(m->cluster_control)) {
                run_abandon(w);
                return trigger == RUN_TRIGGER_MANUAL ? -ENOTCONN : 0;
        }
        if (reason) {
                run_abandon(w);
                log_full(LOG_NOTICE, 0, j->def->name, 0, -1, "Skipped %s fire: %s", run_trigger_to_string(trigger),
                         reason);
                manager_metrics_skipped(j, j->n_running > 0 ? METRICS_SKIP_OVERLAP : METRICS_SKIP_MAX_CONCURRENT);
                q = history_record_skipped(m->hist, j->def->name, trigger, scheduled, now, reason, NULL);
                if (q < 0 && q != -EEXIST)
                        manager_history_failed(m, q, "recording a skipped run");
                manager_status_changed(m);
                return trigger == RUN_TRIGGER_MANUAL ? -EBUSY : 0;
        }

        q = history_claim_fire(m->hist, j->def->name, trigger, scheduled, now, 0, &id);
        if (q >= 0)
                m->claims_uncommitted = true;
        if (q == -EEXIST) {
                run_abandon(w);
                /* this very fire ran before: a restart or a clock set back brought it round again; in
                 * a cluster, another node claimed it first, as it does for most fires */
                log_full(m->clustered ? LOG_DEBUG : LOG_INFO, 0, j->def->name, 0, -1, "Fire at %" PRIu64 " was already claimed; not running it twice",
                         scheduled);
                return 0;
        }
        if (q < 0) {
                manager_history_failed(m, q, "claiming a fire");
                if (m->cluster) {
                        run_abandon(w); /* unclaimed, another node may run it: never here too */
                        return 0;
                }
                id = 0;
        }
        if (cluster_singleton && id > 0) {
                int slot = cluster_control_singleton_take(m->cluster_control, j, scheduled, id, why, sizeof(why));
                if (slot < 0) {
                        /* the fire is this node's: it is recorded skipped here, and by nobody else */
                        if (slot != -EBUSY && slot != -EALREADY)
                                snprintf(why, sizeof(why), "the cluster-wide singleton slot could not be taken: %s",
                                         strerror(-slot));
                        run_abandon(w);
                        log_full(LOG_NOTICE, 0, j->def->name, (uint64_t) id, -1, "Skipped %s fire: %s",
                                 run_trigger_to_string(trigger), why);
                        manager_metrics_skipped(j, METRICS_SKIP_OVERLAP);
                        q = history_skip_claimed(m->hist, id, now, why);
                        if (q < 0)
                                manager_history_failed(m, q, "recording a claimed fire skipped");
                        manager_status_changed(m);
                        return trigger == RUN_TRIGGER_MANUAL ? -EBUSY : 0;
                }
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

int64_t manager_fire(manager *m, job_rt *j, run_trigger trigger, usec_t scheduled) {
        return fire_one(m, j, trigger, scheduled, false);
}

int64_t manager_fire_waited(manager *m, job_rt *j, run_trigger trigger, usec_t scheduled) {
        return fire_one(m, j, trigger, scheduled, true);
}

/* The retry RW is due: it starts, waits for room, or is given up (its job removed or
 * disabled: disabling a job stops its pending retries too, see README.md). */
static void fire_retry(manager *m, retry_wait *rw) {
        usec_t now = clock_now_realtime();
        job_rt *j = manager_find_job(m, rw->job);
        char why[256];
        int64_t id = 0;
        int q;

        if (m->shutting_down)
                return; /* stays in history, resumed at the next start */
        if (!j || !job_rt_enabled(j)) {
                log_full(LOG_NOTICE, 0, rw->job, (uint64_t) rw->first_id, (int) rw->attempt,
                         "Retry %u of run %" PRId64 " dropped: %s", rw->attempt, rw->first_id,
                         j ? "the job is disabled" : "the job is no longer in the registry");
                manager_retry_drop(m, rw, true);
                return;
        }
        int slot = j->def->singleton && m->cluster_control && cluster_may_claim(m->cluster)
                           ? cluster_control_singleton_take(m->cluster_control, j, rw->scheduled, 0, why, sizeof(why)) : 0;
        if (slot < 0 || skip_reason(m, j, why, sizeof(why), NULL) || !cluster_may_claim(m->cluster)) {
                if (slot == 1)
                        cluster_control_singleton_release(m->cluster_control, j->def->name);
                /* not a new fire: it waits for room (or for a claim this node may make). A run of
                 * its job ending here wakes it at once; the slot may be another node's, so it also
                 * looks again after a random 0.5-1.5 s, never in step with the job's own period */
                uint32_t rnd;
                if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t) sizeof(rnd))
                        rnd = (uint32_t) clock_now_monotonic();
                rw->waiting_room = true;
                (void) timer_heap_put(&m->boot_heap, &rw->w.entry,
                                      clock_now_boottime() + RETRY_POSTPONE / 2 + rnd % RETRY_POSTPONE);
                return;
        }
        int64_t first_id = rw->first_id;
        unsigned attempt = rw->attempt;
        usec_t scheduled = rw->scheduled;
        manager_retry_drop(m, rw, true);
        manager_history_batch(m);
        if (first_id > 0) {
                q = history_claim_retry(m->hist, first_id, attempt, now, 0, &id);
                if (q >= 0)
                        m->claims_uncommitted = true;
                if (slot == 1)
                        cluster_control_singleton_bind(m->cluster_control, j->def->name, q >= 0 ? id : 0);
                if (q == -EEXIST)
                        return;
                if (q < 0) {
                        manager_history_failed(m, q, "claiming a retry");
                        if (m->cluster)
                                return;
                        id = 0;
                }
        }
        (void) start_claimed(m, j, id, first_id, RUN_TRIGGER_RETRY, attempt, scheduled, now);
}

/* --- timers ------------------------------------------------------------------------ */

/* Sets the one-shot timer S for WHEN (its own clock), or turns it off for USEC_INFINITY. */
void manager_timer_at(sd_event_source *s, usec_t when) {
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

/* Wall-clock instant of the next due cron fire. */
usec_t manager_next_due_real(const manager *m) {
        return heap_next(&m->real_heap);
}

/* How early to wake for the fires due at NEXT (see PREPARE_LEAD). Counting them walks only the
 * part of the heap due by NEXT, once per instant. */
static usec_t prepare_lead(manager *m, usec_t next) {
        if (next == USEC_INFINITY)
                return PREPARE_LEAD;
        if (m->lead_for != next) {
                m->lead_for = next;
                m->lead_count = timer_heap_count_until(&m->real_heap, next, DUE_MAX);
        }
        usec_t per = m->decide_fire_usec ?: DECIDE_FIRE_USEC;
        usec_t lead = MAX(MAX(PREPARE_LEAD, 2 * m->prepare_usec), 2 * (usec_t) m->lead_count * per);
        return MIN(lead, PREPARE_LEAD_MAX);
}

usec_t manager_prepare_lead(manager *m) {
        return prepare_lead(m, heap_next(&m->real_heap));
}

void manager_arm_timers(manager *m) {
        usec_t next = heap_next(&m->real_heap);

        start_gate_wake(m->gate); /* children abandoned since the last wake go */
        if (m->shutting_down) {
                manager_timer_at(m->real_timer, USEC_INFINITY);
                manager_timer_at(m->boot_timer, USEC_INFINITY);
                manager_timer_at(m->warm_timer, USEC_INFINITY);
                return;
        }
        /* the cron timer is early by the lead, or set for the release of fires decided (or at
         * once, to decide more of them) */
        usec_t lead = prepare_lead(m, next);
        manager_timer_at(m->real_timer, m->n_due > 0 ? clock_realtime_to_kernel(m->lead_more ? clock_now_realtime()
                                                                                              : m->release_at)
                                : next == USEC_INFINITY ? USEC_INFINITY
                                                        : clock_realtime_to_kernel(next - MIN(next, lead) +
                                                           cluster_control_claim_delay(m)));
        manager_timer_at(m->boot_timer, heap_next(&m->boot_heap));
        manager_arm_warm(m);
        overload_arm(m);
}

/* The second half of a dispatch of cron fires: releases the warm runs opened by it, requeues
 * its fires, forks the ones without a warm process. */
void manager_finish_fires(manager *m) {
        usec_t now = clock_now_realtime();
        timer_entry *e;

        m->released = now;
        m->lead_more = false;
        release_opened(m);
        /* the runs first: computing a thousand next instants takes milliseconds */
        start_held(m);
        manager_start_deferred(m);
        /* the next instant of each, even when it is due already: if the daemon is late for it,
         * the next dispatch records it missed (overload.c), it is never passed over silently */
        for (size_t i = 0; i < m->n_due; i++)
                job_rt_schedule_cron(m->due[i], m->due_at[i]);
        m->n_due = 0;
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

void manager_release_fires_now(manager *m, const char *why) {
        usec_t now;

        if (m->n_due == 0)
                return;
        /* Released at once, the warm runs opened for the instant would start up to a lead early
         * (their jobs would see their code start before their scheduled time). The wait blocks
         * the loop, but no longer than the release timer would have left it idle. */
        now = clock_now_realtime();
        if (m->release_at > now && m->release_at - now <= PREPARE_LEAD_MAX) {
                log_debug("%s waits %" PRIu64 " us for the release of %zu fire%s due at %" PRIu64 ".", why,
                          m->release_at - now, m->n_due, m->n_due == 1 ? "" : "s", m->release_at);
                (void) clock_sleep_until_realtime(m->release_at, PREPARE_LEAD_MAX);
        }
        manager_finish_fires(m);
}

/* Whether J's fire at SCHEDULED forks at its release: not a worker's, and no warm process
 * waits for it. */
static bool fire_forks(const job_rt *j, usec_t scheduled) {
        return !((j->warm && j->warm->scheduled == scheduled) || in_worker(j));
}

/* The real timer wakes a lead before an instant (PREPARE_LEAD, longer when deciding took
 * longer lately): the fires due at it are decided and claimed then, the claims committed and
 * their warm runs opened, and the timer is set for the instant itself, where only the release
 * (and the start of worker runs) is left. Woken late, or for a backlog, it does all at once. */
int manager_on_real_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        manager *m = userdata;
        usec_t now = clock_now_realtime();
        timer_entry *e;

        /* more of the fires of the instant being decided ahead, while it is still ahead */
        bool again = m->n_due > 0 && m->lead_more && m->release_at > now && !m->shutting_down;
        if (m->n_due > 0 && !again) {
                manager_finish_fires(m); /* the instant of the fires decided last time */
                return 0;
        }
        e = timer_heap_peek(&m->real_heap);
        if (!e && !again) {
                manager_arm_timers(m);
                return 0;
        }
        usec_t instant = again ? m->release_at : e->when, horizon = MAX(now, instant);
        bool cold_stop = false;
        if (!again) {
                m->lead_began = clock_now_monotonic();
                m->lead_cold = 0;
        }

        m->deferring = true;
        for (unsigned cost = 0; cost < FIRE_BUDGET && (e = timer_heap_peek(&m->real_heap)) && e->when <= horizon &&
                                !m->shutting_down;) {
                job_rt *j = ((wake *) e)->job;
                usec_t scheduled = e->when - j->fire_delay; /* its wake is late by its random_delay */
                bool cold = fire_forks(j, scheduled);

                /* a herd decided over several dispatches forks no more at its release than one
                 * dispatch would: the forks beyond wait for the dispatch after it */
                if (cold && again && m->lead_cold >= FIRE_BUDGET) {
                        cold_stop = true;
                        break;
                }

                /* Late (the daemon stalled or was overloaded, the machine was suspended): the
                 * instants past their misfire_threshold are recorded missed, and the first one
                 * still in time fires, if it is due. */
                if (now > scheduled) {
                        usec_t next;
                        int more = overload_late_cron(m, j, scheduled, now, &next);
                        if (more > 0 || next > horizon) {
                                if (next == USEC_INFINITY) {
                                        timer_heap_remove(&m->real_heap, e);
                                        j->next_fire = USEC_INFINITY;
                                } else
                                        job_rt_schedule_cron(j, next - 1); /* next itself */
                                /* a scan cut short was a long one: the rest waits for the next dispatch */
                                cost += more > 0 ? FIRE_BUDGET : 1;
                                continue;
                        }
                        scheduled = next;
                }
                cold = fire_forks(j, scheduled);
                cost += cold ? COLD_FIRE_WEIGHT : 1;
                m->lead_cold += cold ? COLD_FIRE_WEIGHT : 0;
                /* off the heap now, queued again in manager_finish_fires(): until the release only what
                 * decides and claims the fire stands between the instant and its run */
                timer_heap_remove(&m->real_heap, e);
                m->due[m->n_due] = j;
                m->due_at[m->n_due++] = scheduled;
                (void) manager_fire(m, j, RUN_TRIGGER_SCHEDULE, scheduled);
                manager_history_batch(m);
                int q = history_set_last_scheduled(m->hist, j->def->name, scheduled);
                if (q < 0)
                        manager_history_failed(m, q, "recording the last fire");
        }
        m->deferring = false;
        overload_missed_flush(m);
        /* Write-ahead: the claims and the last fire handled are durable before any of these
         * runs starts (a daemon killed at the instant must neither run them again after a
         * restart nor lose their record). In the lead, the commit is off the instant's path. */
        manager_history_write_ahead(m);
        bool ahead = instant > clock_now_realtime() && !m->shutting_down;
        if (ahead) {
                /* the runs wait for the instant: a worker's in its worker, the others for the
                 * release, which alone starts them (manager_finish_fires()) */
                hold_for_release(m, instant);
                m->release_at = instant;
                /* A herd larger than one dispatch's budget is decided over several, each in
                 * the next turn of the event loop (what else is due goes in between), all
                 * before its instant when the lead allows: its release then starts it whole. */
                e = timer_heap_peek(&m->real_heap);
                m->lead_more = !cold_stop && e && e->when <= instant && m->n_due + FIRE_BUDGET <= DUE_MAX;
                /* (the next turn takes the sources that wait at the same priority first) */
                (void) sd_event_source_set_priority(m->real_timer, m->lead_more ? SD_EVENT_PRIORITY_NORMAL
                                                                                : SD_EVENT_PRIORITY_IMPORTANT);
        } else
                m->lead_more = false;
        if (!m->lead_more) {
                /* the next lead: twice the longest recent decision, forgotten by an eighth per instant */
                usec_t took = clock_now_monotonic() - m->lead_began;
                m->prepare_usec = MAX(took, m->prepare_usec - m->prepare_usec / 8);
                if (m->n_due >= DECIDE_SAMPLE_MIN) {
                        usec_t per = took / m->n_due;
                        m->decide_fire_usec = m->decide_fire_usec ? (3 * m->decide_fire_usec + per) / 4 : per;
                }
        }
        if (ahead) {
                manager_arm_timers(m);
                return 0;
        }
        manager_finish_fires(m);
        return 0;
}

int manager_on_boot_timer(sd_event_source *s, uint64_t usec, void *userdata) {
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
                        fire_retry(m, (retry_wait *) w);
                        continue;
                }
                if (m->clustered) {
                        usec_t due = e->when - j->fire_delay, iv = j->def->schedule.interval;
                        /* the grid instant it was queued for */
                        usec_t scheduled = (manager_boot_to_real(due) + iv / 2) / iv * iv;
                        (void) manager_fire(m, j, RUN_TRIGGER_SCHEDULE, scheduled);
                        /* keep the cadence; the instants are shared: one a busy node is late for
                         * may be nobody else's either, so only a stall (a suspend) beyond
                         * MISSED_FIRE_SLACK skips them */
                        usec_t next = due + iv;
                        if (next + MISSED_FIRE_SLACK <= now)
                                next = now + iv;
                        job_rt_schedule_every(j, job_rt_every_aligned(j, next));
                        continue;
                }
                usec_t due = e->when - j->fire_delay;
                /* late: the instants past their misfire_threshold are recorded missed */
                if (now > due) {
                        due = overload_late_every(m, j, due, now);
                        if (due > now) {
                                job_rt_schedule_every(j, due);
                                continue;
                        }
                }
                (void) manager_fire(m, j, RUN_TRIGGER_SCHEDULE, manager_boot_to_real(due));
                /* keep the cadence: an instant already due is looked at by the next dispatch */
                job_rt_schedule_every(j, due + j->def->schedule.interval);
        }
        m->deferring = false;
        overload_missed_flush(m);
        manager_start_deferred(m);
        manager_arm_timers(m);
        return 0;
}

/* The latest fire of J in (after, now], or USEC_INFINITY. */
