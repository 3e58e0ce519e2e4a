/* SPDX-License-Identifier: MIT */
/* The registry in force: reference counts that keep it alive under the runs started with it,
 * loading, and the swap on reload that carries jobs' runtime state over. */
#include <systemd/sd-daemon.h>

#include "basic/clock.h"
#include "basic/log.h"
#include "core/jobctx.h"
#include "core/cgroup.h"
#include "core/manager-internal.h"

/* --- registry references ------------------------------------------------------ */

registry_ref *registry_ref_new(registry *r) {
        registry_ref *x = calloc(1, sizeof(registry_ref));
        if (!x)
                return NULL;
        x->reg = r;
        x->n_ref = 1;
        return x;
}

registry_ref *registry_ref_ref(registry_ref *x) {
        x->n_ref++;
        return x;
}

registry_ref *registry_ref_unref(registry_ref *x) {
        if (!x || --x->n_ref > 0)
                return NULL;
        registry_free(x->reg);
        free(x);
        return NULL;
}

static int job_rt_cmp(const void *a, const void *b) {
        return strcmp((*(job_rt *const *) a)->def->name, (*(job_rt *const *) b)->def->name);
}

registry_ref *registry_ref_of_run(const run *r) {
        return r->owner_data;
}

/* --- registry in force --------------------------------------------------------------- */

int manager_load_registry(manager *m, registry **ret, diag_list *diags) {
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
        cgroup_warn_tasks_limits(r);
        *ret = TAKE_PTR(r);
        return 0;
}

void manager_log_diags(const diag_list *d) {
        for (size_t i = 0; i < d->n; i++) {
                _cleanup_free_ char *s = diag_format(&d->items[i]);
                log_error("%s", s ?: d->items[i].message);
        }
}

static int apply_job_state(const char *job, const history_job_state *st, void *userdata) {
        job_rt *j = manager_find_job(userdata, job);
        if (j) {
                j->enabled_override = st->enabled_override;
                j->first_loaded = st->first_loaded_usec != USEC_INFINITY;
        }
        return 0;
}

/* Makes R the registry in force. Runtime state of jobs that keep their name carries over. */
int manager_swap_registry(manager *m, registry *r) {
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
        /* catch_up of a job that never fired starts from when it was first loaded */
        usec_t now = clock_now_realtime();
        for (size_t i = 0; i < m->n_jobs; i++)
                if (!jobs[i]->first_loaded) {
                        manager_history_batch(m);
                        int q = history_set_first_loaded(m->hist, jobs[i]->def->name, now);
                        if (q < 0)
                                manager_history_failed(m, q, "recording when a job was first loaded");
                        jobs[i]->first_loaded = q >= 0;
                }
        for (size_t i = 0; i < m->n_jobs; i++) {
                job_rt *j = jobs[i];
                job_rt *o = job_rt_find(old_by_name, n_old, j->def->name);
                /* an override outlives the job's removal: one that contradicts the registry of a job
                 * loaded now (at start-up, or added back) is said, not silently applied */
                if (!o && j->enabled_override >= 0 && j->enabled_override != (int) j->def->enabled)
                        log_full(LOG_NOTICE, 0, j->def->name, 0, -1,
                                 "Job \"%s\" is %s by an override (schedctl %s) although the registry says enabled: %s; "
                                 "schedctl %s %s follows the registry again.",
                                 j->def->name, j->enabled_override ? "enabled" : "disabled",
                                 j->enabled_override ? "enable" : "disable", j->def->enabled ? "true" : "false",
                                 j->enabled_override ? "disable" : "enable", j->def->name);
                if (o) {
                        j->metrics = TAKE_PTR(o->metrics); /* counters outlive a reload */
                        overlap_carry(j, o);
                        /* an unchanged @every keeps its cadence across reloads */
                        if (j->every && o->every && j->def->schedule.interval == o->def->schedule.interval &&
                            timer_entry_queued(&o->fire.entry))
                                job_rt_schedule_every(j, o->fire.entry.when);
                }
                if (!timer_entry_queued(&j->fire.entry))
                        job_rt_schedule_first(j);
        }
        /* Runs in flight and pending retries belong to the job of their name, whatever reloads
         * came between (removed and added back included): counted again, not carried over. */
        for (run *x = m->runs; x; x = x->next) {
                job_rt *j = manager_find_job(m, x->def->name);
                if (j) {
                        j->n_running++;
                        manager_job_runs_add(j, x);
                }
        }
        manager_retries_recount(m);
        for (size_t k = 0; k < n_old; k++)
                job_rt_free(old[k]);
        free(old);
        free(old_by_name);

        registry_ref_unref(m->reg);
        m->reg = ref;
        backfill_load(m);
        manager_arm_timers(m);
        manager_status_changed(m);
        return 0;
}

/* Which plugin paths of NEW hold another file than in OLD. glibc hands back the mapped object
 * when a dlopen()ed file is one already loaded (same device and inode), so a different handle
 * for the same path means the file there was replaced: the one loaded now is the new one. */
/* The distinct plugin objects of R's jobs (jobs share one per file), into *RET (malloc'ed). A
 * registry uses a handful of plugins whatever its size, so the scan is O(jobs x plugins). */
static size_t distinct_plugins(const registry *r, const plugin ***ret) {
        const plugin **ps = NULL;
        size_t n = 0;
        for (size_t i = 0; i < r->n_jobs; i++) {
                const plugin *p = r->jobs[i]->plugin;
                if (!p || (n > 0 && ps[n - 1] == p))
                        continue;
                bool seen = false;
                for (size_t k = 0; k < n && !seen; k++)
                        seen = ps[k] == p;
                if (seen)
                        continue;
                const plugin **a = reallocarray(ps, n + 1, sizeof(*ps));
                if (!a)
                        break; /* only the report is incomplete */
                ps = a;
                ps[n++] = p;
        }
        *ret = ps;
        return n;
}

static void note_plugins_changed(manager *m, const registry *old, const registry *new) {
        for (size_t i = 0; i < m->n_reload_plugins_changed; i++)
                free(m->reload_plugins_changed[i]);
        free(m->reload_plugins_changed);
        m->reload_plugins_changed = NULL;
        m->n_reload_plugins_changed = 0;
        if (!old)
                return;
        _cleanup_free_ const plugin **olds = NULL, **news = NULL;
        size_t n_old = distinct_plugins(old, &olds), n_new = distinct_plugins(new, &news);
        for (size_t i = 0; i < n_new; i++) {
                bool changed = false;
                for (size_t k = 0; k < n_old && !changed; k++)
                        changed = streq(olds[k]->path, news[i]->path) && olds[k]->handle != news[i]->handle;
                if (!changed)
                        continue;
                char *s = strdup(news[i]->path);
                char **a = s ? reallocarray(m->reload_plugins_changed, m->n_reload_plugins_changed + 1,
                                            sizeof(char *)) : NULL;
                if (!a) {
                        free(s);
                        return; /* only the report is incomplete */
                }
                m->reload_plugins_changed = a;
                m->reload_plugins_changed[m->n_reload_plugins_changed++] = s;
                log_info("Reload: plugin %s changed; its jobs' next runs use the new file.", news[i]->path);
        }
}

int manager_reload(manager *m, diag_list *diags) {
        diag_list local = {};
        registry *r = NULL;
        int q;

        manager_release_fires_now(m, "Reload"); /* fires decided for an instant hold the jobs a reload frees */
        (void) sd_notifyf(false, "RELOADING=1\nSTATUS=Reloading %s", m->opts.config);
        log_info("Reloading %s", m->opts.config);
        q = manager_load_registry(m, &r, diags ?: &local);
        if (q < 0) {
                if (!diags)
                        manager_log_diags(&local);
                log_error("Reload of %s failed; keeping the running registry (%zu job%s).", m->opts.config, m->n_jobs,
                          m->n_jobs == 1 ? "" : "s");
        } else {
                if (!streq_ptr(r->state_dir, m->reg->reg->state_dir) ||
                    !streq_ptr(r->control_socket, m->reg->reg->control_socket) ||
                    !streq_ptr(r->store, m->reg->reg->store))
                        log_warning("state_dir, store and control_socket changes take effect at the next restart.");
                note_plugins_changed(m, m->reg ? m->reg->reg : NULL, r);
                q = manager_swap_registry(m, r);
                if (q < 0)
                        registry_free(r);
                else {
                        manager_launchers_retire(m);
                        worker_pools_retire(m->workers, m->reg->reg);
                        manager_arm_timers(m);
                        manager_prune_now(m);
                }
                if (q >= 0 && m->reloaded)
                        m->reloaded(m, m->run_waiter_data);
                if (q >= 0)
                        log_info("Reloaded %s: %zu job%s.", m->opts.config, m->n_jobs, m->n_jobs == 1 ? "" : "s");
        }
        diag_list_clear(&local);
        log_flush();
        (void) sd_notify(false, "READY=1");
        manager_status_changed(m);
        return q;
}
