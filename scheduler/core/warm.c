/* SPDX-License-Identifier: MIT */
/* Warm runs (processes forked ahead of their cron fire, waiting at the start gate) and the
 * launcher slots (launcher.h) that fork them. */
#include "basic/clock.h"
#include "basic/log.h"
#include "basic/timefmt.h"
#include "core/launcher.h"
#include "core/manager-internal.h"

/* Warm runs: the next cron fires (up to WARM_LEAD ahead, earliest first, at most WARM_MAX
 * at a time) get their process forked ahead by the launcher, so the instant itself costs a share
 * of one futex wake instead of a fork (~1-3 ms here: a herd of 1,000 would otherwise start over seconds).
 * The lead is long so that a herd has time to be forked; the cap bounds what waits. */
#define WARM_LEAD (30 * USEC_PER_SEC)
#define WARM_PER_DISPATCH 64
/* no warm-up requests this close to a due fire */
#define WARM_GUARD (5 * USEC_PER_MSEC)
/* Warm-up right after an instant waits this long while the workers still take that instant's
 * runs: it may mkdir the state directories of jobs about to run for the first time (64 of them
 * held the daemon ~10 ms here), and the runs being handed out waited for it. Not when the next
 * instant is nearer than that. */
#define WARM_SETTLE (100 * USEC_PER_MSEC)
/* fork requests a launcher may have unanswered: back-pressure instead of a full socket */
#define LAUNCH_INFLIGHT_MAX 128

void manager_warm_abandon(job_rt *j) {
        if (j->warm) {
                run_abandon(j->warm);
                j->warm = NULL;
        }
}

/* A warm run's child exited without being started: abandoned (the usual), or it died. */
void manager_warm_done(manager *m, run *r) {
        job_rt *j = job_rt_of_run(m, r);
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
        manager_list_remove(&m->warm_runs, r);
        m->n_warm--;
        /* run_free() still reads the run's job_def (its cgroup's name): drop the registry after it */
        registry_ref *ref = registry_ref_of_run(r);
        run_free(r);
        registry_ref_unref(ref);
        manager_arm_timers(m);
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

launcher_slot *manager_launcher_slot_free(manager *m, launcher_slot *ls) {
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
        job_rt *j = job_rt_of_run(m, r);
        if (q == -EPIPE && r->slot >= 0) {
                /* The launcher died: it may have forked the child and not said so. Whatever
                 * waits at that slot is turned away, and the slot is never handed out again. */
                start_gate_abandon(r->gate, (unsigned) r->slot);
                start_gate_wake(r->gate);
                r->slot = -1;
        }
        if (!r->warm) {
                manager_run_not_started(m, j, r, q);
                return;
        }
        char at[TIMEFMT_MAX];
        log_full(LOG_WARNING, q, r->def->name, 0, -1,
                 "Cannot fork ahead of the fire at %s: %m; it will fork when due. Near a process or memory limit? "
                 "(pids.max of the unit, RLIMIT_NPROC)",
                 timefmt_rfc3339(r->scheduled, NULL, false, at, sizeof(at)));
        if (j && j->warm == r)
                j->warm = NULL;
        manager_list_remove(&m->warm_runs, r);
        m->n_warm--;
        /* run_free() still reads the run's job_def (its cgroup's name): drop the registry after it */
        registry_ref *ref = registry_ref_of_run(r);
        run_free(r);
        registry_ref_unref(ref);
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
                manager_history_batch(m);
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
        manager_launcher_slot_free(m, ls);
        return 0;
}

/* After a reload: the launchers of older registries exit once their pending forks are
 * answered; the next warm-up starts one for the registry in force. */
void manager_launchers_retire(manager *m) {
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

/* Whether the next cron instant is too near for warm-up at NOW: within WARM_GUARD of the real
 * timer's wake for it, a lead before it (a warm-up still going then delays the whole instant). */
static bool warm_guarded(manager *m, usec_t now) {
        usec_t next = manager_next_due_real(m);
        return next != USEC_INFINITY && next <= now + WARM_GUARD + manager_prepare_lead(m);
}

/* The earliest warm-up may start, NOW or later (WARM_SETTLE). */
static usec_t warm_settled(manager *m, usec_t now) {
        usec_t settled = m->released + WARM_SETTLE;
        if (now < settled && manager_next_due_real(m) > settled + WARM_GUARD && worker_pools_busy(m->workers))
                return settled;
        return now;
}

void manager_arm_warm(manager *m) {
        usec_t best = USEC_INFINITY;
        launcher_slot *ls;
        if (!m->warm_timer || !m->reg)
                return;
        ls = current_launcher(m);
        if (!m->shutting_down && m->gate && m->n_warm < warm_cap(m) &&
            (ls ? ls->n_pending < LAUNCH_INFLIGHT_MAX : !m->launcher_off))
                warm_earliest_untried(&m->real_heap, 0, &best);
        if (best != USEC_INFINITY)
                best = MAX(best - MIN(best, WARM_LEAD), warm_settled(m, clock_now_realtime()));
        manager_timer_at(m->warm_timer, best == USEC_INFINITY ? USEC_INFINITY : clock_realtime_to_kernel(best));
}

/* Asks the launcher for the processes of the cron fires due within WARM_LEAD, earliest first. */
int manager_on_warm_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        manager *m = userdata;
        launcher_slot *ls = current_launcher(m);
        usec_t now = clock_now_realtime();
        size_t n = 0, sent = 0;
        bool guarded = false;

        if (!ls && !m->shutting_down && !m->launcher_off)
                ls = launcher_start(m);
        if (m->shutting_down || !ls)
                return 0;
        if (m->n_due > 0 || warm_guarded(m, now)) {
                /* after the due fire (the real timer goes first at the same instant); for a
                 * backlog, the real timer's dispatch arms this again */
                usec_t t = m->n_due > 0 ? m->release_at : manager_next_due_real(m);
                manager_timer_at(m->warm_timer, t > now ? clock_realtime_to_kernel(t) : USEC_INFINITY);
                return 0;
        }
        usec_t settled = warm_settled(m, now);
        if (settled > now) {
                manager_timer_at(m->warm_timer, clock_realtime_to_kernel(settled));
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
                usec_t when = j->fire.entry.when - j->fire_delay; /* the instant, not its delayed wake */
                const char *dir;
                run *r;
                int q;

                /* forks of the launcher cost the daemon little, but requests still take time:
                 * none when a fire is about to be due */
                if (warm_guarded(m, clock_now_realtime())) {
                        guarded = true;
                        break;
                }
                j->warm_tried = j->fire.entry.when; /* as warm_collect() compares it: the wake */
                manager_warm_abandon(j); /* for an earlier instant that never came (clock set back) */
                if (!job_rt_enabled(j) || !(dir = job_rt_dir(m, j)))
                        continue;
                /* a worker's run starts without a fork: ahead of it, only its directory (above) and
                 * its pool's workers, so the instant costs neither a mkdir nor a fork */
                if (j->def->isolation == JOB_ISOLATION_WORKER) {
                        worker_pools_prepare(m->workers, m->reg->reg, j->index);
                        continue;
                }
                if (run_prepare_warm(j->def, dir, when, m->gate, manager_run_done, m, &r) < 0)
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
                r->job_index = j->index;
                manager_list_add(&m->warm_runs, r);
                m->n_warm++;
                j->warm = r;
                if (run_watch_io(m->event, r) < 0)
                        manager_warm_abandon(j); /* unwatched output: let that child go */
        }
        start_gate_wake(m->gate); /* the abandoned */
        if (guarded)
                /* after the due fire (the real timer goes first at the same instant) */
                manager_timer_at(m->warm_timer, realtime_to_kernel(manager_next_due_real(m)));
        else
                manager_arm_warm(m);
        return 0;
}

const launcher_slot *manager_launcher_next(const launcher_slot *ls) {
        return ls->next;
}

pid_t manager_launcher_pid(const launcher_slot *ls) {
        return ls->pid;
}

void manager_warm_abandon_all(manager *m) {
        for (run *r = m->warm_runs; r; r = r->next)
                run_abandon(r);
        for (size_t i = 0; i < m->n_jobs; i++)
                m->jobs[i]->warm = NULL;
}
