/* SPDX-License-Identifier: MIT */
/* The daemon's side of isolation: worker (worker-pool.h); the worker process is worker.c. */
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "basic/clock.h"
#include "basic/log.h"
#include "core/jobctx.h"
#include "core/worker-pool.h"
#include "core/worker.h"

/* Output read per dispatch of a worker's pipe at most, and after its run ended (bounded: a
 * process the run left behind may keep writing), as for a process run (run.c). */
#define WORKER_OUTPUT_READ_MAX (64 * 1024)
#define WORKER_OUTPUT_DRAIN_MAX (256 * 1024)
/* the default pool size (the number of CPUs) at most */
#define WORKERS_DEFAULT_MAX 64
/* Answered runs whose done callbacks wait behind the dispatch of the next runs: handled this
 * many per turn of the event loop, and at once beyond the bound (so they cannot pile up). */
#define ENDED_BATCH 64
#define ENDED_MAX 4096

typedef struct pool pool;
typedef struct worker worker;

struct worker {
        pool *pool;
        pid_t pid;
        int fd;     /* its socket; -1 once closed (it then exits) */
        int out_fd; /* its stdout and stderr */
        sd_event_source *io, *out, *child;
        run *run;   /* in flight, or NULL: idle */
        unsigned n_runs;
        worker *next;
};

/* A run waiting for a worker of its pool. */
typedef struct pending {
        run *r;
        size_t index;
        worker_request *cause; /* the cause part of its request, or NULL */
} pending;

struct pool {
        worker_pools *owner;
        const registry *reg; /* alive while a run of it is (the runs hold it), or it is in force */
        const job_def *proto; /* the group's first job */
        unsigned size;
        worker *workers;
        unsigned n_workers;
        pending *q; /* ring, oldest at head */
        size_t q_head, q_len, q_cap;
        bool retired;
        pool *next;
};

struct worker_pools {
        sd_event *event;
        worker_dispatched_fn dispatched;
        void *userdata;
        pool *pools;
        /* the pool of each job of the registry in force, found once */
        const registry *cache_reg;
        pool **by_job;
        sd_event_source *sweep; /* ends the runs cancelled while they waited */
        unsigned ncpu;
        /* Runs answered by their worker, finished (run_finish()) but not yet handed to their done
         * callback: a FIFO, drained by `ended_src` at a lower priority than the workers' replies.
         * The daemon's bookkeeping of an ended run (history, log, metrics, retries) costs more than
         * sending a worker its next run; done first, it held every other idle worker back. */
        run **ended;
        size_t ended_head, n_ended, ended_cap;
        sd_event_source *ended_src;
};

static bool strv_same(char **a, size_t na, char **b, size_t nb) {
        if (na != nb)
                return false;
        for (size_t i = 0; i < na; i++)
                if (!streq(a[i], b[i]))
                        return false;
        return true;
}

bool worker_group_same(const job_def *a, const job_def *b) {
        const job_identity *x = &a->identity, *y = &b->identity;
        return a->plugin == b->plugin && streq_ptr(a->plugin_path, b->plugin_path) && streq_ptr(x->user, y->user) &&
               streq_ptr(x->group, y->group) && x->uid == y->uid && x->gid == y->gid &&
               a->limits.address_space == b->limits.address_space && a->limits.cpu == b->limits.cpu &&
               a->limits.open_files == b->limits.open_files &&
               strv_same(a->environment, a->n_environment, b->environment, b->n_environment) &&
               strv_same(a->credentials, a->n_credentials, b->credentials, b->n_credentials);
}

/* --- workers -------------------------------------------------------------------------- */

static void pool_pump(pool *p);
static void pool_maybe_free(pool *p);

/* Closes W's socket: it exits at EOF, once its run (if any) is answered. */
static void worker_close(worker *w) {
        w->io = sd_event_source_disable_unref(w->io);
        if (w->fd >= 0)
                close(w->fd);
        w->fd = -1;
}

static void worker_free(worker *w) {
        pool *p = w->pool;
        for (worker **x = &p->workers; *x; x = &(*x)->next)
                if (*x == w) {
                        *x = w->next;
                        break;
                }
        p->n_workers--;
        worker_close(w);
        sd_event_source_disable_unref(w->out);
        sd_event_source_disable_unref(w->child);
        if (w->out_fd >= 0)
                close(w->out_fd);
        free(w);
}

/* Reads what W wrote, MAX bytes at most, into its run's output (dropped without one: something
 * a run left behind). Returns false at EOF. */
static bool worker_read_output(worker *w, size_t max) {
        char buf[16384];
        for (size_t done = 0; done < max;) {
                ssize_t n = read(w->out_fd, buf, MIN(sizeof(buf), max - done));
                if (n > 0) {
                        if (w->run)
                                run_consume_output(w->run, buf, (size_t) n);
                        done += (size_t) n;
                        continue;
                }
                if (n < 0 && errno == EINTR)
                        continue;
                return n < 0 && errno == EAGAIN;
        }
        return true;
}

static int on_worker_output(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        worker *w = userdata;
        if (!worker_read_output(w, WORKER_OUTPUT_READ_MAX))
                sd_event_source_set_enabled(s, SD_EVENT_OFF);
        return 0;
}

/* W's run ended (CODE/STATUS as siginfo's): handed to its done callback. */
static void worker_run_ended(worker *w, int code, int status) {
        run *r = w->run;
        (void) worker_read_output(w, WORKER_OUTPUT_DRAIN_MAX);
        w->run = NULL;
        run_ended(r, code, status);
}

static const char *recycle_reason(const worker *w, const worker_reply *rep, const run *r, char *buf, size_t n) {
        const registry *reg = w->pool->reg;
        if (r->timed_out || r->cancelled || r->killed)
                return NULL; /* it exits by itself, having been signalled */
        if (w->pool->retired)
                return NULL; /* the registry it was forked with was replaced: not worth a log line */
        if (w->n_runs >= reg->max_runs_per_worker) {
                snprintf(buf, n, "after %u runs (scheduler.max_runs_per_worker)", w->n_runs);
                return buf;
        }
        if (rep->flags & WORKER_REPLY_NEAR_LIMIT) {
                snprintf(buf, n, "its address space is near limits.address_space (%llu bytes)",
                         (unsigned long long) w->pool->proto->limits.address_space);
                return buf;
        }
        if ((uint64_t) rep->max_rss_kib * 1024 > reg->worker_max_rss) {
                snprintf(buf, n, "its RSS reached %u KiB, above scheduler.worker_max_rss (%llu KiB): a leak is contained "
                                 "this way, but the job should free what it allocates",
                         rep->max_rss_kib, (unsigned long long) (reg->worker_max_rss / 1024));
                return buf;
        }
        return "";
}

static void ended_flush(worker_pools *ps, size_t max) {
        for (size_t i = 0; i < max && ps->n_ended > 0; i++) {
                run *r = ps->ended[ps->ended_head++];
                ps->n_ended--;
                r->done(r, r->userdata);
        }
        if (ps->n_ended == 0)
                ps->ended_head = 0;
}

static int on_ended(sd_event_source *s, void *userdata) {
        worker_pools *ps = userdata;
        ended_flush(ps, ENDED_BATCH);
        if (ps->n_ended > 0)
                (void) sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        return 0;
}

/* W answered its run with EXIT_CODE: the run is finished now (its output drained, its
 * deadline disarmed) and W is idle; its done callback comes from on_ended(). */
static void worker_run_answered(worker *w, int exit_code) {
        worker_pools *ps = w->pool->owner;
        run *r = w->run;

        (void) worker_read_output(w, WORKER_OUTPUT_DRAIN_MAX);
        w->run = NULL;
        run_finish(r, CLD_EXITED, exit_code);
        if (ps->n_ended >= ENDED_MAX)
                ended_flush(ps, ps->n_ended);
        if (ps->ended_head + ps->n_ended == ps->ended_cap) {
                if (ps->ended_head > 0) {
                        memmove(ps->ended, ps->ended + ps->ended_head, ps->n_ended * sizeof(run *));
                        ps->ended_head = 0;
                } else {
                        size_t cap = MAX(ps->ended_cap * 2, (size_t) 64);
                        run **v = reallocarray(ps->ended, cap, sizeof(run *));
                        if (!v) {
                                r->done(r, r->userdata); /* no room to wait: now, as before */
                                return;
                        }
                        ps->ended = v;
                        ps->ended_cap = cap;
                }
        }
        ps->ended[ps->ended_head + ps->n_ended++] = r;
        (void) sd_event_source_set_enabled(ps->ended_src, SD_EVENT_ONESHOT);
}

static int on_worker_reply(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        worker *w = userdata;
        pool *p = w->pool;
        worker_reply rep;
        char why[256];

        for (;;) {
                ssize_t n = recv(w->fd, &rep, sizeof(rep), MSG_DONTWAIT);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        return 0;
                if (n <= 0) {
                        worker_close(w); /* it is exiting: its child source does the rest */
                        return 0;
                }
                run *r = w->run;
                if (!r || (size_t) n <= offsetof(worker_reply, message) || rep.id != r->id) {
                        log_error("Worker %d of plugin %s sent a reply for no run it had; killing it.", (int) w->pid,
                                  p->proto->plugin_path);
                        worker_close(w);
                        (void) kill(-w->pid, SIGKILL);
                        return 0;
                }
                rep.message[MIN((size_t) n - offsetof(worker_reply, message), sizeof(rep.message) - 1)] = '\0';
                snprintf(r->message, sizeof(r->message), "%s", rep.message);
                w->n_runs++;
                const char *reason = recycle_reason(w, &rep, r, why, sizeof(why));
                if (!reason || reason[0]) {
                        if (reason && reason[0])
                                log_full(LOG_INFO, 0, r->def->name, (uint64_t) r->id, (int) r->attempt,
                                         "Replacing worker %d %s.", (int) w->pid, reason);
                        worker_close(w);
                }
                worker_run_answered(w, rep.exit_code);
                pool_pump(p);
                return 0;
        }
}

static int worker_spawn(pool *p, worker **ret);

static int on_worker_exit(sd_event_source *s, const siginfo_t *si, void *userdata) {
        worker *w = userdata;
        pool *p = w->pool;

        /* A reply written just before the exit (a cancelled run answers, then its worker exits)
         * is read first: the exit can be dispatched before the socket's readability, and the
         * run would end without its message ("cancelled by daemon shutdown"). */
        if (w->run && w->fd >= 0)
                (void) on_worker_reply(NULL, w->fd, EPOLLIN, w);
        bool was_busy = w->run, replace = !p->retired && (w->run || w->n_runs > 0);

        if (w->run) {
                run *r = w->run;
                if (!r->timed_out && !r->cancelled && !r->killed)
                        log_full(LOG_WARNING, 0, r->def->name, (uint64_t) r->id, (int) r->attempt,
                                 "Worker %d %s %d during the run; it is replaced, the other runs go on.", (int) w->pid,
                                 si->si_code == CLD_EXITED ? "exited with status" : "was killed by signal", si->si_status);
                w->child = sd_event_source_disable_unref(w->child);
                /* as for a run's own process: what it left in its group ends with it, and what
                 * escaped the group came to the daemon, whose sweep at the run's end (with the
                 * worker as the run's main process, not reaped yet) ends it */
                (void) kill(-w->pid, SIGKILL);
                r->in_worker = false;
                worker_run_ended(w, si->si_code, si->si_status);
        }
        worker_free(w);
        if (replace && !was_busy && p->q_len == 0) {
                worker *nw;
                (void) worker_spawn(p, &nw); /* kept warm for the next run; a failure shows then */
        }
        pool_pump(p);
        pool_maybe_free(p);
        return 0;
}

static int worker_spawn(pool *p, worker **ret) {
        worker_pools *ps = p->owner;
        _cleanup_free_ worker *w = calloc(1, sizeof(worker));
        int sv[2], out[2], q;
        pid_t parent = getpid();

        if (!w)
                return -ENOMEM;
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
                return -errno;
        if (pipe2(out, O_CLOEXEC) < 0) {
                q = -errno;
                close(sv[0]);
                close(sv[1]);
                return q;
        }
        pid_t pid = fork();
        if (pid == 0) {
                close(sv[0]);
                close(out[0]);
                worker_main(p->reg, p->proto, sv[1], out[1], parent);
        }
        q = -errno;
        close(sv[1]);
        close(out[1]);
        if (pid < 0) {
                close(sv[0]);
                close(out[0]);
                return q;
        }
        (void) setpgid(pid, pid); /* before any signal for its run can come */
        (void) fcntl(out[0], F_SETFL, O_NONBLOCK);
        *w = (worker) { .pool = p, .pid = pid, .fd = sv[0], .out_fd = out[0] };
        q = sd_event_add_io(ps->event, &w->io, w->fd, EPOLLIN, on_worker_reply, w);
        if (q >= 0)
                q = sd_event_add_io(ps->event, &w->out, w->out_fd, EPOLLIN, on_worker_output, w);
        if (q >= 0)
                q = sd_event_add_child(ps->event, &w->child, pid, WEXITED, on_worker_exit, w);
        if (q < 0) {
                (void) kill(pid, SIGKILL);
                (void) waitpid(pid, NULL, 0);
                sd_event_source_disable_unref(w->io);
                sd_event_source_disable_unref(w->out);
                close(w->fd);
                close(w->out_fd);
                return q;
        }
        w->next = p->workers;
        p->workers = w;
        p->n_workers++;
        *ret = TAKE_PTR(w);
        return 0;
}

/* Sends R (job INDEX, CAUSE or NULL) to the idle worker W. -EPIPE: W is gone (not R's fault). */
static int worker_send(worker *w, run *r, size_t index, const worker_request *cause) {
        worker_request req = {
                .job = index, .id = r->id, .scheduled = r->scheduled, .attempt = r->attempt,
        };
        size_t len = WORKER_REQUEST_SHORT;
        if (cause) {
                req = *cause;
                req.job = index;
                req.id = r->id;
                req.scheduled = r->scheduled;
                req.attempt = r->attempt;
                req.has_cause = 1;
                len = sizeof(req);
        }
        /* the worker is idle: its socket is empty, the request fits */
        usec_t started = clock_now_realtime();
        while (send(w->fd, &req, len, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
                if (errno != EINTR)
                        return -EPIPE;
        w->run = r;
        r->cancel_queued = NULL;
        r->queue_owner = NULL;
        int q = run_dispatched(w->pool->owner->event, r, w->pid, started);
        if (q < 0) {
                /* untimed it must not run: it ends as crashed (SIGKILL) */
                log_full(LOG_ERR, q, r->def->name, (uint64_t) r->id, (int) r->attempt, "Cannot arm the run's deadline: %m");
                run_kill(r);
        }
        return 0;
}

static worker *pool_idle(pool *p) {
        for (worker *w = p->workers; w; w = w->next)
                if (!w->run && w->fd >= 0)
                        return w;
        return NULL;
}

/* An idle worker of P, forked if there is room; NULL when all are busy (or none could be
 * forked: then *RET_ERR says why). */
static worker *pool_get(pool *p, int *ret_err) {
        worker *w = pool_idle(p);
        *ret_err = 0;
        if (w)
                return w;
        if (p->n_workers >= p->size)
                return NULL;
        int q = worker_spawn(p, &w);
        if (q < 0) {
                log_warning_errno(q, "Cannot fork a worker for plugin %s (%m); its runs wait for a worker to be free. "
                                     "Near a process or memory limit? (pids.max, RLIMIT_NPROC)",
                                  p->proto->plugin_path);
                *ret_err = q;
                return NULL;
        }
        return w;
}

static void pending_free(pending *e) {
        free(e->cause);
        e->cause = NULL;
}

/* Hands the runs that wait to idle workers, oldest first. */
static void pool_pump(pool *p) {
        while (p->q_len > 0) {
                int err;
                worker *w = pool_get(p, &err);
                if (!w)
                        return;
                pending e = p->q[p->q_head];
                p->q_head = (p->q_head + 1) % p->q_cap;
                p->q_len--;
                if (worker_send(w, e.r, e.index, e.cause) < 0) {
                        /* that worker is gone (its exit comes): the run goes back to the front */
                        worker_close(w);
                        p->q_head = (p->q_head + p->q_cap - 1) % p->q_cap;
                        p->q[p->q_head] = e;
                        p->q_len++;
                        continue;
                }
                pending_free(&e);
                if (p->owner->dispatched)
                        p->owner->dispatched(e.r, p->owner->userdata);
        }
}

static int pool_enqueue(pool *p, run *r, size_t index, const sched_job_cause_info *cause) {
        pending e = { .r = r, .index = index };
        if (cause) {
                e.cause = calloc(1, sizeof(worker_request));
                if (!e.cause)
                        return -ENOMEM;
                e.cause->cause_run_id = (int64_t) cause->run_id;
                e.cause->cause_scheduled = cause->scheduled;
                e.cause->cause_finished = cause->finished;
                snprintf(e.cause->cause_job, sizeof(e.cause->cause_job), "%s", cause->job);
                snprintf(e.cause->cause_status, sizeof(e.cause->cause_status), "%s", cause->status);
                snprintf(e.cause->cause_message, sizeof(e.cause->cause_message), "%s", cause->message ?: "");
        }
        if (p->q_len == p->q_cap) {
                size_t cap = MAX(p->q_cap * 2, (size_t) 64);
                pending *v = calloc(cap, sizeof(pending));
                if (!v) {
                        pending_free(&e);
                        return -ENOMEM;
                }
                for (size_t i = 0; i < p->q_len; i++)
                        v[i] = p->q[(p->q_head + i) % p->q_cap];
                free(p->q);
                p->q = v;
                p->q_cap = cap;
                p->q_head = 0;
        }
        p->q[(p->q_head + p->q_len) % p->q_cap] = e;
        p->q_len++;
        return 0;
}

static void pool_free(pool *p) {
        worker_pools *ps = p->owner;
        for (pool **x = &ps->pools; *x; x = &(*x)->next)
                if (*x == p) {
                        *x = p->next;
                        break;
                }
        while (p->workers) {
                worker *w = p->workers;
                pid_t pid = w->pid;
                worker_free(w);
                (void) kill(-pid, SIGKILL);
                (void) waitpid(pid, NULL, 0);
        }
        for (size_t i = 0; i < p->q_len; i++)
                pending_free(&p->q[(p->q_head + i) % p->q_cap]);
        free(p->q);
        if (ps->cache_reg == p->reg && ps->by_job)
                for (size_t i = 0; i < p->reg->n_jobs; i++)
                        if (ps->by_job[i] == p)
                                ps->by_job[i] = NULL;
        free(p);
}

/* A retired pool goes once its last worker has exited and nothing waits. */
static void pool_maybe_free(pool *p) {
        if (p->retired && !p->workers && p->q_len == 0)
                pool_free(p);
}

/* The runs cancelled or killed while they waited end now, outside run_cancel() (whose caller
 * may be walking the runs). */
static int on_sweep(sd_event_source *s, void *userdata) {
        worker_pools *ps = userdata;
        for (pool *p = ps->pools, *next; p; p = next) {
                next = p->next;
                for (size_t i = 0; i < p->q_len;) {
                        pending *e = &p->q[(p->q_head + i) % p->q_cap];
                        if (!e->r->cancelled && !e->r->killed && !e->r->timed_out) {
                                i++;
                                continue;
                        }
                        pending gone = *e;
                        /* close the gap, keeping the order */
                        for (size_t k = i; k + 1 < p->q_len; k++)
                                p->q[(p->q_head + k) % p->q_cap] = p->q[(p->q_head + k + 1) % p->q_cap];
                        p->q_len--;
                        pending_free(&gone);
                        gone.r->cancel_queued = NULL;
                        gone.r->queue_owner = NULL;
                        snprintf(gone.r->message, sizeof(gone.r->message), "never started: it waited for a worker");
                        run_ended(gone.r, CLD_KILLED, gone.r->killed ? SIGKILL : SIGTERM);
                }
                pool_maybe_free(p);
        }
        return 0;
}

static void cancel_queued(run *r) {
        worker_pools *ps = r->queue_owner;
        (void) sd_event_source_set_enabled(ps->sweep, SD_EVENT_ONESHOT);
}

/* --- pools ---------------------------------------------------------------------------- */

static pool *pool_find(worker_pools *ps, const registry *reg, size_t index) {
        const job_def *def = reg->jobs[index];
        pool *p;

        if (ps->cache_reg != reg) {
                pool **v = calloc(MAX(reg->n_jobs, (size_t) 1), sizeof(pool *));
                if (!v)
                        return NULL;
                free(ps->by_job);
                ps->by_job = v;
                ps->cache_reg = reg;
        }
        if (ps->by_job[index])
                return ps->by_job[index];
        for (p = ps->pools; p; p = p->next)
                if (!p->retired && p->reg == reg && worker_group_same(p->proto, def))
                        return ps->by_job[index] = p;

        p = calloc(1, sizeof(pool));
        if (!p)
                return NULL;
        unsigned size = 0;
        for (size_t i = 0; i < reg->n_jobs; i++)
                if (reg->jobs[i]->workers > size && reg->jobs[i]->isolation == JOB_ISOLATION_WORKER &&
                    worker_group_same(reg->jobs[i], def))
                        size = reg->jobs[i]->workers;
        *p = (pool) {
                .owner = ps, .reg = reg, .proto = def,
                .size = size ?: reg->workers ?: ps->ncpu,
                .next = ps->pools,
        };
        ps->pools = p;
        return ps->by_job[index] = p;
}

int worker_pools_submit(worker_pools *ps, const registry *reg, size_t index, run *r) {
        pool *p = index < reg->n_jobs ? pool_find(ps, reg, index) : NULL;
        int err, q;

        if (!p)
                return index < reg->n_jobs ? -ENOMEM : -EINVAL;
        r->in_worker = true;
        worker *w = p->q_len == 0 ? pool_get(p, &err) : NULL;
        if (w && worker_send(w, r, index, NULL) >= 0) {
                if (ps->dispatched)
                        ps->dispatched(r, ps->userdata);
                return 0;
        }
        if (w)
                worker_close(w); /* gone: its exit comes; the run waits for the next */
        else if (err < 0 && p->n_workers == 0) {
                r->in_worker = false;
                return err; /* no worker, and none coming */
        }
        q = pool_enqueue(p, r, index, jobctx_pending_cause());
        if (q < 0) {
                r->in_worker = false;
                return q;
        }
        r->cancel_queued = cancel_queued;
        r->queue_owner = ps;
        return 0;
}

void worker_pools_prepare(worker_pools *ps, const registry *reg, size_t index) {
        pool *p = index < reg->n_jobs ? pool_find(ps, reg, index) : NULL;
        worker *w;
        while (p && p->n_workers < p->size && worker_spawn(p, &w) >= 0)
                ;
}

void worker_pools_retire(worker_pools *ps, const registry *current) {
        free(ps->by_job);
        ps->by_job = NULL;
        ps->cache_reg = NULL;
        for (pool *p = ps->pools, *next; p; p = next) {
                next = p->next;
                if (p->reg == current || p->retired)
                        continue;
                p->retired = true;
                for (worker *w = p->workers; w; w = w->next)
                        if (!w->run)
                                worker_close(w);
                pool_maybe_free(p);
        }
}

size_t worker_pools_waiting(const worker_pools *ps) {
        size_t n = 0;
        if (!ps)
                return 0;
        for (const pool *p = ps->pools; p; p = p->next)
                n += p->q_len;
        return n;
}

size_t worker_pools_pids(const worker_pools *ps, pid_t *v, size_t max) {
        size_t n = 0;
        if (!ps)
                return 0;
        for (const pool *p = ps->pools; p; p = p->next)
                for (const worker *w = p->workers; w; w = w->next, n++)
                        if (n < max)
                                v[n] = w->pid;
        return n;
}

int worker_pools_new(sd_event *e, worker_dispatched_fn dispatched, void *userdata, worker_pools **ret) {
        _cleanup_free_ worker_pools *ps = calloc(1, sizeof(worker_pools));
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        int q;

        if (!ps)
                return -ENOMEM;
        ps->event = e;
        ps->dispatched = dispatched;
        ps->userdata = userdata;
        ps->ncpu = ncpu > 0 ? (unsigned) MIN(ncpu, (long) WORKERS_DEFAULT_MAX) : 1;
        q = sd_event_add_defer(e, &ps->sweep, on_sweep, ps);
        if (q < 0)
                return q;
        (void) sd_event_source_set_enabled(ps->sweep, SD_EVENT_OFF);
        q = sd_event_add_defer(e, &ps->ended_src, on_ended, ps);
        if (q < 0) {
                sd_event_source_disable_unref(ps->sweep);
                return q;
        }
        (void) sd_event_source_set_enabled(ps->ended_src, SD_EVENT_OFF);
        (void) sd_event_source_set_priority(ps->ended_src, SD_EVENT_PRIORITY_NORMAL + 1);
        *ret = TAKE_PTR(ps);
        return 0;
}

worker_pools *worker_pools_free(worker_pools *ps) {
        if (!ps)
                return NULL;
        while (ps->pools)
                pool_free(ps->pools);
        sd_event_source_disable_unref(ps->sweep);
        sd_event_source_disable_unref(ps->ended_src);
        free(ps->ended); /* their runs were the caller's (worker_pools_free()'s contract) */
        free(ps->by_job);
        free(ps);
        return NULL;
}
