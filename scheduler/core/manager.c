/* SPDX-License-Identifier: MIT */
/* The manager's loop and lifecycle: new/run/free, the timers and signals it sets up, shutdown
 * with its grace period, sd_notify status, history pruning, and the public entry points of
 * manager.h. The rest is split by concern: see manager-internal.h. */
#include <sys/resource.h>
#include <systemd/sd-daemon.h>

#include "basic/clock.h"
#include "basic/duration.h"
#include "basic/fs-util.h"
#include "basic/log.h"
#include "core/cluster-control.h"
#include "core/cluster.h"
#include "core/manager-internal.h"
#include "core/state-dir.h"

/* sd_notify STATUS= is refreshed at most this often */
#define STATUS_INTERVAL (1 * USEC_PER_SEC)
#define GATE_SLOTS (4 * WARM_MAX)

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
        const char *cs = cluster_status(m->cluster);
        (void) sd_notifyf(false, "STATUS=%s%zu job%s, %u running%s%s%s%s%s%s", m->shutting_down ? "Stopping: " : "",
                          m->n_jobs, m->n_jobs == 1 ? "" : "s", m->n_running, next ? ", next: " : "",
                          next ? next->def->name : "", next ? " in " : "", next ? left : "", cs[0] ? "; " : "", cs);
        return 0;
}

void manager_status_changed(manager *m) {
        int enabled = SD_EVENT_OFF;
        if (!m->status_timer || (sd_event_source_get_enabled(m->status_timer, &enabled) >= 0 && enabled != SD_EVENT_OFF))
                return;
        (void) sd_event_source_set_time_relative(m->status_timer, STATUS_INTERVAL);
        (void) sd_event_source_set_enabled(m->status_timer, SD_EVENT_ONESHOT);
}

/* --- pruning ----------------------------------------------------------------------- */

/* Rows past the retention limits go at start-up, on every reload (the limits may have changed)
 * and then every scheduler.history.prune_interval: one DELETE per limit, batched with the rest. */
static int on_prune(sd_event_source *s, uint64_t usec, void *userdata) {
        manager *m = userdata;
        unsigned n = 0;
        const registry *r = m->reg->reg;
        manager_history_batch(m);
        int q = history_prune(m->hist, clock_now_realtime(), r->history_retention, r->history_max_runs_per_job, &n);
        if (q < 0)
                manager_history_failed(m, q, "pruning");
        else if (n > 0)
                log_info("Pruned %u old runs from history.", n);
        (void) sd_event_source_set_time_relative(m->prune_timer, r->history_prune_interval);
        (void) sd_event_source_set_enabled(m->prune_timer, SD_EVENT_ONESHOT);
        return 0;
}

void manager_prune_now(manager *m) {
        char b[DURATION_MAX];
        if (!m->prune_timer)
                return;
        log_info("History is pruned now and every %s (scheduler.history.prune_interval).",
                 duration_format(m->reg->reg->history_prune_interval, b, sizeof(b)));
        (void) on_prune(m->prune_timer, 0, m);
}

/* --- runs of a previous incarnation ----------------------------------------------------- */

/* How far before its recorded start a run's process may have been forked (warm runs wait up
 * to 30 s at the gate), and how much clock drift between the two readings is tolerated. */
#define ORPHAN_FORK_LEAD (35 * USEC_PER_SEC)
#define ORPHAN_SLACK (5 * USEC_PER_SEC)
#define ORPHAN_WAIT (5 * USEC_PER_SEC)

/* The wall-clock instant process PID started, from /proc; USEC_INFINITY if it is gone or a
 * zombie. */
static usec_t proc_started(pid_t pid) {
        char path[64], buf[1024];
        unsigned long long ticks;
        char state;
        snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        if (!f || !fgets(buf, sizeof(buf), f))
                return USEC_INFINITY;
        const char *p = strrchr(buf, ')'); /* the command name may hold anything but this */
        /* fields after the name: state (3) ... starttime (22) */
        if (!p || sscanf(p + 1, " %c %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %llu",
                         &state, &ticks) != 2 || state == 'Z' || state == 'X')
                return USEC_INFINITY;
        long hz = sysconf(_SC_CLK_TCK);
        usec_t boot = (usec_t) ticks * USEC_PER_SEC / (usec_t) (hz > 0 ? hz : 100);
        return manager_boot_to_real(boot);
}

/* A daemon killed hard leaves its runs behind (PR_SET_PDEATHSIG sends SIGTERM, which a job may
 * catch). A run still there (the same pid, started when the run did) is killed with its process
 * group and waited for, so a dead daemon's runs never overlap this one's. Returns whether it
 * was there. */
bool manager_kill_leftover_run(const char *job, int64_t id, unsigned attempt, pid_t pid, usec_t started_usec) {
        usec_t st = pid > 0 ? proc_started(pid) : USEC_INFINITY;
        if (st == USEC_INFINITY || st + ORPHAN_FORK_LEAD < started_usec || st > started_usec + ORPHAN_SLACK)
                return false; /* gone, or the pid was reused */
        log_full(LOG_WARNING, 0, job, (uint64_t) id, (int) attempt,
                 "Run %" PRId64 " (pid %d) of the previous daemon is still running; killing it before firing.", id,
                 (int) pid);
        if (killpg(pid, SIGKILL) < 0)
                (void) kill(pid, SIGKILL);
        usec_t deadline = clock_now_monotonic() + ORPHAN_WAIT;
        while (proc_started(pid) != USEC_INFINITY && clock_now_monotonic() < deadline)
                (void) usleep(10 * 1000);
        return true;
}

/* One node: before anything fires, each run still 'running' in history whose process is
 * still there is killed, and the run ends as interrupted, saying so. (In a cluster the rows
 * in flight are other nodes' too: the cluster closes this node's own, cluster.c.) */
static void end_orphans(manager *m) {
        history_run *runs = NULL;
        size_t n = 0;
        int q = history_list_runs(m->hist, NULL, 0, RUN_STATUS_RUNNING, 0, &runs, &n);
        if (q < 0) {
                log_warning_errno(q, "Cannot look for runs left over by the previous daemon: %s",
                                  history_last_error(m->hist));
                return;
        }
        for (size_t i = 0; i < n; i++) {
                history_run *r = &runs[i];
                if (!manager_kill_leftover_run(r->job, r->id, r->attempt, r->pid, r->started_usec))
                        continue;
                char msg[256];
                snprintf(msg, sizeof(msg),
                         "the daemon died during this run; its process (pid %d) outlived it and was killed at the "
                         "restart",
                         (int) r->pid);
                usec_t now = clock_now_realtime();
                history_result res = {
                        .status = RUN_STATUS_INTERRUPTED, .exit_code = -1, .signal = SIGKILL,
                        .finished_usec = now, .duration_usec = now > r->started_usec ? now - r->started_usec : 0,
                        .message = msg,
                };
                q = history_finish_run(m->hist, r->id, &res);
                if (q < 0)
                        log_warning_errno(q, "Cannot record the end of run %" PRId64 ": %s", r->id,
                                          history_last_error(m->hist));
        }
        history_runs_free(runs, n);
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
        manager_release_fires_now(m, "Stop"); /* claimed fires start, to be cancelled with the rest */
        m->shutting_down = true;
        overload_shutdown(m); /* fires waiting for a slot will not start: recorded missed */
        log_flush();
        (void) sd_notify(false, "STOPPING=1\nSTATUS=Stopping");
        manager_warm_abandon_all(m);
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

void manager_stop_on_error(manager *m, int error) {
        if (m->stop_error == 0)
                m->stop_error = error;
        manager_shutdown(m);
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
        int64_t id = manager_fire(m, j, RUN_TRIGGER_MANUAL, at == USEC_INFINITY ? clock_now_realtime() : at);
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
        /* cluster mode: the cluster's row first, the truth every node follows */
        int q = m->cluster_control ? cluster_control_set_enabled(m->cluster_control, name, enabled) : 0;
        if (q >= 0)
                q = history_set_enabled_override(m->hist, name, enabled);
        if (q < 0)
                return q;
        j->enabled_override = enabled;
        manager_status_changed(m);
        return 0;
}

static int manager_on_log_flush(sd_event_source *s, void *userdata) {
        log_flush();
        return 0;
}

static void manager_log_wake(void *userdata) {
        manager *m = userdata;
        (void) sd_event_source_set_enabled(m->log_source, SD_EVENT_ONESHOT);
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
        /* (only the pages a herd of that size touches become resident) */
        m->due = calloc(DUE_MAX, sizeof(job_rt *));
        m->due_at = calloc(DUE_MAX, sizeof(usec_t));
        m->held = calloc(DUE_MAX, sizeof(run *));
        m->deferred = calloc(FIRE_BUDGET, sizeof(run *));
        if (!m->due || !m->due_at || !m->held || !m->deferred)
                return -ENOMEM;
        /* a slot is held from warm-up to the end of its run: room for runs in flight too */
        q = start_gate_new(GATE_SLOTS, &m->gate);
        if (q < 0)
                log_warning_errno(q, "Cannot map the start gate (%m); runs fork when due, without warm starts.");
        struct rlimit nofile;
        m->warm_max = getrlimit(RLIMIT_NOFILE, &nofile) >= 0 && nofile.rlim_cur != RLIM_INFINITY
                              ? (unsigned) MIN((nofile.rlim_cur > 1024 ? nofile.rlim_cur - 1024 : 0) / 8, (rlim_t) WARM_MAX)
                              : WARM_MAX;
        /* the benchmark's switch: process-mode figures without warm runs, to show what the
         * warm-run machinery still earns (issue 16 item 6) */
        if (getenv("SCHEDULERD_TEST_NO_WARM"))
                m->warm_max = 0;

        (void) manager_setup_subreaper(m);

        q = sd_event_default(&m->event);
        if (q < 0)
                return log_error_errno(q, "Cannot create the event loop: %m");
        q = worker_pools_new(m->event, manager_worker_dispatched, manager_slots_wanted, m, &m->workers);
        if (q < 0)
                return log_error_errno(q, "Cannot set up worker pools: %m");

        q = manager_load_registry(m, &r, &diags);
        if (q < 0) {
                manager_log_diags(&diags);
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
        q = history_open_store(r->store, r->state_dir, err, sizeof(err), &m->hist);
        if (q < 0) {
                registry_free(r);
                return log_error_errno(q, "%s", err);
        }
        if (!(m->history_path = strdup(history_where(m->hist)))) {
                registry_free(r);
                return -ENOMEM;
        }
        m->clustered = history_get_backend(m->hist) == HISTORY_BACKEND_POSTGRESQL;
        if (!m->clustered)
                end_orphans(m);
        /* in a cluster the runs in flight are other nodes' too: this node closes only its own
         * earlier incarnations' (cluster_start()) */
        q = m->clustered ? 0 : history_mark_interrupted(m->hist, &n_int);
        if (q < 0)
                log_warning_errno(q, "Cannot mark unfinished runs as interrupted: %s", history_last_error(m->hist));
        else if (n_int > 0)
                log_warning("%u run%s did not finish before the daemon last stopped; marked interrupted.", n_int,
                            n_int == 1 ? "" : "s");

        q = sd_event_add_time(m->event, &m->real_timer, CLOCK_REALTIME, USEC_INFINITY, 1, manager_on_real_timer, m);
        if (q >= 0)
                q = sd_event_source_set_priority(m->real_timer, SD_EVENT_PRIORITY_IMPORTANT);
        if (q >= 0)
                q = sd_event_add_time(m->event, &m->boot_timer, CLOCK_BOOTTIME, USEC_INFINITY, 1, manager_on_boot_timer, m);
        if (q >= 0)
                q = overload_setup(m);
        if (q >= 0)
                q = sd_event_add_time(m->event, &m->warm_timer, CLOCK_REALTIME, USEC_INFINITY, 1, manager_on_warm_timer, m);
        /* below everything else: due fires, child exits and the control socket come first */
        if (q >= 0)
                q = sd_event_source_set_priority(m->warm_timer, SD_EVENT_PRIORITY_NORMAL + 1);
        if (q >= 0)
                q = sd_event_add_defer(m->event, &m->post_source, manager_on_history_post, m);
        if (q >= 0)
                q = sd_event_source_set_priority(m->post_source, SD_EVENT_PRIORITY_IDLE);
        if (q >= 0)
                q = sd_event_source_set_enabled(m->post_source, SD_EVENT_OFF);
        /* log lines wait for the same quiet moment (log_batch_start()) */
        if (q >= 0)
                q = sd_event_add_defer(m->event, &m->log_source, manager_on_log_flush, m);
        if (q >= 0)
                q = sd_event_source_set_priority(m->log_source, SD_EVENT_PRIORITY_IDLE);
        if (q >= 0)
                q = sd_event_source_set_enabled(m->log_source, SD_EVENT_OFF);
        if (q >= 0)
                log_batch_start(manager_log_wake, m);
        if (q >= 0)
                q = sd_event_add_time(m->event, &m->commit_timer, CLOCK_MONOTONIC, USEC_INFINITY, USEC_PER_MSEC,
                                      manager_on_commit_timer, m);
        if (q >= 0)
                q = sd_event_source_set_enabled(m->commit_timer, SD_EVENT_OFF);
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
                q = manager_setup_clock_watch(m);
        if (q >= 0)
                q = manager_setup_test_clock_watch(m);
        if (q >= 0)
                q = sd_event_set_watchdog(m->event, true);
        if (q < 0) {
                registry_free(r);
                return log_error_errno(q, "Cannot set up the event loop: %m");
        }

        q = manager_swap_registry(m, r);
        if (q < 0) {
                registry_free(r);
                return log_error_errno(q, "Cannot set up jobs: %m");
        }
        (void) manager_retries_resume(m);
        if (m->clustered) {
                const registry *g = m->reg->reg;
                q = cluster_start(m, g->store, g->cluster_node, g->cluster_lease, g->cluster_max_clock_skew, &m->cluster);
                if (q < 0)
                        return log_error_errno(q, "Cannot join the cluster: %m");
        }
        if (m->clustered) {
                /* the node's name in slots and requests: its incarnation, once registered */
                const char *id = m->cluster ? cluster_node_id(m->cluster) : NULL;
                size_t l = id ? strlen(id) : 0;
                q = cluster_control_new(m, m->reg->reg->store, l > 2 && !streq(id + l - 2, "#?") ? id : NULL,
                                        &m->cluster_control);
                if (q < 0)
                        return log_error_errno(q, "Cannot set up control across the cluster: %m");
        }
        manager_arm_timers(m);

        *ret = TAKE_PTR(m);
        return 0;
}

int manager_run(manager *m) {
        usec_t now = clock_now_realtime();
        int q;

        /* start-up triggers, before READY=1 so a status read right after sees them */
        /* catch-up, start-up and a fire due now are one run: a catch-up run is the start-up run
         * too, and a fire due within START_FOLD is that run */
        /* their claims are committed in one go before they fork back to back */
        m->deferring = true;
        for (size_t i = 0; i < m->n_jobs; i++) {
                job_rt *j = m->jobs[i];
                bool ran = manager_catch_up(m, j, now);
                if (!ran && j->def->run_on_startup && job_rt_enabled(j))
                        ran = manager_fire(m, j, RUN_TRIGGER_STARTUP, now) > 0;
                if (ran && manager_fire_due_soon(j, now))
                        j->folded_fire = j->next_fire;
        }
        m->deferring = false;
        manager_start_deferred(m);
        manager_arm_timers(m);

        log_info("Started with %zu job%s from %s; history in %s.", m->n_jobs, m->n_jobs == 1 ? "" : "s", m->opts.config,
                 m->history_path);
        char b[DURATION_MAX];
        log_info("History is pruned at start-up, on reload and every %s (scheduler.history.prune_interval).",
                 duration_format(m->reg->reg->history_prune_interval, b, sizeof(b)));
        /* STATUS= first: whoever waits for READY=1 may read the status right after it */
        (void) on_status_timer(NULL, 0, m);
        log_flush(); /* whoever waits for READY=1 may read the log right after */
        (void) sd_notify(false, "READY=1");

        q = sd_event_loop(m->event);
        manager_on_history_post(NULL, m);
        if (!m->shutting_down) /* on_sigterm() said it already */
                (void) sd_notify(false, "STOPPING=1");
        log_info("Stopped.");
        return q < 0 ? q : m->stop_error;
}

manager *manager_free(manager *m) {
        if (!m)
                return NULL;
        while (m->runs) {
                run *r = m->runs;
                manager_runs_remove(m, r);
                run_kill(r);
                /* run_free() still reads the run's job_def (its cgroup's name): drop the registry after it */
                registry_ref *ref = registry_ref_of_run(r);
                run_free(r);
                registry_ref_unref(ref);
        }
        m->workers = worker_pools_free(m->workers);
        for (run *r = m->warm_runs; r; r = r->next)
                run_abandon(r);
        start_gate_wake(m->gate);
        while (m->warm_runs) {
                run *r = m->warm_runs;
                manager_list_remove(&m->warm_runs, r);
                /* run_free() still reads the run's job_def (its cgroup's name): drop the registry after it */
                registry_ref *ref = registry_ref_of_run(r);
                run_free(r);
                registry_ref_unref(ref);
        }
        m->cluster_control = cluster_control_free(m->cluster_control);
        free(m->opened);
        free(m->due);
        free(m->deferred);
        free(m->held);
        free(m->due_at);
        free(m->warm_scratch);
        while (m->launchers)
                manager_launcher_slot_free(m, m->launchers);
        for (size_t i = 0; i < m->n_jobs; i++)
                job_rt_free(m->jobs[i]);
        manager_retries_free(m);
        free(m->jobs);
        free(m->by_name);
        for (size_t i = 0; i < m->n_reload_plugins_changed; i++)
                free(m->reload_plugins_changed[i]);
        free(m->reload_plugins_changed);
        overload_done(m);
        timer_heap_done(&m->real_heap);
        timer_heap_done(&m->boot_heap);
        backfill_done(m);
        sd_event_source_disable_unref(m->real_timer);
        sd_event_source_disable_unref(m->boot_timer);
        sd_event_source_disable_unref(m->warm_timer);
        sd_event_source_disable_unref(m->post_source);
        log_batch_stop();
        sd_event_source_disable_unref(m->log_source);
        sd_event_source_disable_unref(m->commit_timer);
        sd_event_source_disable_unref(m->status_timer);
        sd_event_source_disable_unref(m->prune_timer);
        sd_event_source_disable_unref(m->grace_timer);
        sd_event_source_disable_unref(m->orphan_timer);
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
        m->cluster = cluster_free(m->cluster); /* leaves the cluster; writes what results it can */
        history_close(m->hist);
        free(m->history_path);
        registry_ref_unref(m->reg);
        start_gate_free(m->gate);
        sd_event_unref(m->event);
        free(m);
        return NULL;
}
