/* SPDX-License-Identifier: MIT */
/* This daemon as a node of a cluster: its lease, clock offset, take-over and outages (see
 * core/cluster.h). */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-id128.h>

#include "basic/clock.h"
#include "basic/duration.h"
#include "basic/log.h"
#include "core/cluster.h"
#include "core/manager-internal.h"
#include "core/retry.h"
#include "store/cluster.h"
#include "store/history-pg.h"
#include "store/pg-connect.h"

/* The timer beats this often at most: renewals every third of the lease, but a lost node is
 * looked for every beat, so its runs are taken over within a beat of its lease's end. */
#define BEAT_MAX (1 * USEC_PER_SEC)
/* a renewal due within a sixth of the lease is made now rather than a beat late (a busy loop
 * wakes late, and a renewal put off twice would cost the lease) */
#define BEAT_SLACK(c) ((c)->lease / 6)
/* a result that keeps failing for another reason than the connection is given up after this */
#define FINISH_TRIES_MAX 20

typedef struct pending_result {
        int64_t run_id;
        char *job;
        unsigned attempt;
        history_result res;
        char *message, *output;
        unsigned tries;
} pending_result;

typedef enum refusal {
        REFUSE_NONE,
        REFUSE_UNREGISTERED,
        REFUSE_OUTAGE,
        REFUSE_LEASE,
        REFUSE_SKEW,
} refusal;

struct cluster {
        manager *m;
        char *conninfo;
        PGconn *conn;
        char name[128];
        char node_id[160];
        cluster_identity id;
        bool registered;
        bool name_clash;        /* another daemon runs under this name: this one stops */
        bool closed_previous;
        usec_t lease, max_skew;
        sd_event_source *timer;

        usec_t valid_until;     /* CLOCK_MONOTONIC: the lease as this node can be sure of it */
        usec_t renewed_at;      /* CLOCK_MONOTONIC of the last renewal sent */
        usec_t connected_since; /* CLOCK_MONOTONIC; USEC_INFINITY while unreachable */
        int64_t offset;         /* this node's realtime clock minus the database's */
        bool offset_known;

        bool outage;
        usec_t outage_since;    /* realtime, for the log and STATUS= */
        usec_t backoff;
        usec_t connect_took; /* the last failed connection attempt held the loop this long */
        char outage_error[256];

        refusal refusing;       /* the reason last logged */
        char status[256];

        pending_result *queue;
        size_t n_queue;

        uint64_t taken_over, discarded, lost_leases;
};

/* ---- connection ------------------------------------------------------------------------- */

static void outage_begin(cluster *c, const char *why) {
        c->connected_since = USEC_INFINITY;
        if (c->outage)
                return;
        c->outage = true;
        c->outage_since = clock_now_realtime();
        snprintf(c->outage_error, sizeof(c->outage_error), "%s", why && why[0] ? why : "connection lost");
        /* libpq's messages end in a newline */
        c->outage_error[strcspn(c->outage_error, "\n")] = 0;
        log_error("PostgreSQL unreachable (%s): node %s claims no fires until it is back; runs in flight go on and "
                  "their results are written then. Reconnecting with backoff.",
                  c->outage_error, c->node_id);
        manager_status_changed(c->m);
}

static void outage_end(cluster *c) {
        if (!c->outage)
                return;
        char b[DURATION_MAX];
        usec_t now = clock_now_realtime();
        c->outage = false;
        c->backoff = 0;
        log_notice("PostgreSQL reachable again after %s; node %s resumes claiming (%zu result%s to write, missed "
                   "fires follow each job's catch_up).",
                   duration_format(now > c->outage_since ? (now - c->outage_since) / USEC_PER_MSEC * USEC_PER_MSEC : 0, b,
                                   sizeof(b)),
                   c->node_id,
                   c->n_queue, c->n_queue == 1 ? "" : "s");
        manager_status_changed(c->m);
}

static bool connection_ok(cluster *c) {
        if (c->conn && PQstatus(c->conn) == CONNECTION_OK)
                return true;
        if (c->conn) {
                outage_begin(c, PQerrorMessage(c->conn));
                PQfinish(c->conn);
                c->conn = NULL;
        }
        /* bounded like every connection of the daemon: a host that drops packets costs the loop
         * seconds (connect_timeout, statement_timeout, keepalives), not TCP's minutes */
        char err[512];
        usec_t t = clock_now_monotonic();
        if (pg_connect_bounded(c->conninfo, "schedulerd-cluster", err, sizeof err, &c->conn) < 0) {
                c->connect_took = clock_now_monotonic() - t;
                outage_begin(c, err);
                return false;
        }
        c->connect_took = 0;
        c->connected_since = clock_now_monotonic();
        return true;
}

/* A call on the connection failed with R: an outage when the connection is gone. */
static void call_failed(cluster *c, int r, const char *what) {
        if (r == -ECONNRESET || (c->conn && PQstatus(c->conn) == CONNECTION_BAD)) {
                outage_begin(c, c->conn ? PQerrorMessage(c->conn) : NULL);
                PQfinish(c->conn);
                c->conn = NULL;
                return;
        }
        log_error_errno(r, "Cluster: %s failed on node %s: %s", what, c->node_id,
                        c->conn ? PQerrorMessage(c->conn) : "");
}

/* ---- node identity ---------------------------------------------------------------------- */

static int default_name(char *buf, size_t n) {
        sd_id128_t id;
        int r = sd_id128_get_machine(&id);
        if (r < 0)
                return r;
        char s[SD_ID128_STRING_MAX];
        snprintf(buf, n, "%s", sd_id128_to_string(id, s));
        return 0;
}

static void set_node_id(cluster *c) {
        if (c->registered)
                snprintf(c->node_id, sizeof(c->node_id), "%s#%" PRIu64, c->name, c->id.incarnation);
        else
                snprintf(c->node_id, sizeof(c->node_id), "%s#?", c->name);
}

const char *cluster_node_id(const cluster *c) {
        return c ? c->node_id : "";
}

uint64_t cluster_fence(const cluster *c) {
        return c && c->registered ? c->id.fence : 0;
}

/* ---- runs taken over -------------------------------------------------------------------- */

/* Runs of a lost (or restarted) node, interrupted: each job's retry policy decides here. */
static void handle_lost_runs(cluster *c, const char *cause, cluster_lost_run *runs, size_t n) {
        manager *m = c->m;
        bool queued = false;

        for (size_t i = 0; i < n; i++) {
                const cluster_lost_run *l = &runs[i];
                job_rt *j = manager_find_job(m, l->job);
                c->taken_over++;
                log_full(LOG_WARNING, 0, l->job, (uint64_t) l->id, (int) l->attempt,
                         "Run %" PRId64 " interrupted: %s: %s", l->id, cause, l->node);
                if (!j || !job_rt_enabled(j) || l->attempt >= j->def->retry.attempts || m->shutting_down) {
                        log_full(LOG_NOTICE, 0, l->job, (uint64_t) l->id, (int) l->attempt, "Not retried: %s",
                                 !j                 ? "the job is not in this node's registry"
                                 : !job_rt_enabled(j) ? "the job is disabled"
                                                      : "no retry attempts left (retry.attempts)");
                        continue;
                }
                uint32_t rnd = 0;
                if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) < 0)
                        rnd = (uint32_t) clock_now_monotonic();
                usec_t d = retry_delay(&j->def->retry, l->attempt + 1, rnd);
                int q = manager_retry_add(m, l->job, l->first_id, l->attempt + 1, l->scheduled_usec,
                                          clock_now_boottime() + d);
                if (q < 0) {
                        log_full(LOG_ERR, q, l->job, (uint64_t) l->id, (int) l->attempt, "Cannot queue retry %u: %m",
                                 l->attempt + 1);
                        continue;
                }
                char b[DURATION_MAX];
                log_full(LOG_NOTICE, 0, l->job, (uint64_t) l->id, (int) l->attempt,
                         "Retry %u of %u in %s, on node %s (taken over from %s)", l->attempt + 1,
                         j->def->retry.attempts, duration_format(d, b, sizeof(b)), c->node_id, l->node);
                queued = true;
        }
        if (queued)
                manager_arm_timers(m);
}

/* ---- results ---------------------------------------------------------------------------- */

static void pending_done(pending_result *p) {
        free(p->job);
        free(p->message);
        free(p->output);
}

static void log_discarded(cluster *c, const char *job, int64_t run_id, unsigned attempt, const history_result *res,
                          int r) {
        c->discarded++;
        log_full(LOG_WARNING, 0, job, (uint64_t) run_id, (int) attempt,
                 "Result of run %" PRId64 " (%s) discarded by the fence: the run is no longer this node's (the "
                 "incarnation that claimed it lost its lease and a surviving node took the run over; this node is "
                 "now %s) [%s]",
                 run_id, run_status_to_string(res->status), c->node_id, strerror(-r));
}

/* Writes one result. Returns 1 when done with it (written or discarded), 0 to keep it queued. */
static int write_result(cluster *c, history *h, const char *job, int64_t run_id, unsigned attempt,
                        const history_result *res) {
        int r = history_finish_run(h, run_id, res);
        /* -ENOTCONN: the PostgreSQL handle keeps it and writes it first on reconnection */
        if (r >= 0 || r == -ENOTCONN)
                return 1;
        if (r == -ESTALE || r == -ENOENT) {
                log_discarded(c, job, run_id, attempt, res, r);
                return 1;
        }
        if (r == -EINVAL) {
                log_full(LOG_ERR, r, job, (uint64_t) run_id, (int) attempt, "Cannot record the result: %m");
                return 1;
        }
        return 0;
}

static void flush_results(cluster *c) {
        history *h = c->m->hist;
        size_t done = 0;

        while (done < c->n_queue) {
                pending_result *p = &c->queue[done];
                if (write_result(c, h, p->job, p->run_id, p->attempt, &p->res) == 0 && ++p->tries < FINISH_TRIES_MAX)
                        break; /* still failing: the rest waits behind it, in order */
                if (p->tries >= FINISH_TRIES_MAX)
                        log_full(LOG_ERR, 0, p->job, (uint64_t) p->run_id, (int) p->attempt,
                                 "Result of run %" PRId64 " given up after %u attempts to write it: %s", p->run_id,
                                 p->tries, history_last_error(h));
                pending_done(p);
                done++;
        }
        if (done > 0) {
                memmove(c->queue, c->queue + done, (c->n_queue - done) * sizeof(*c->queue));
                c->n_queue -= done;
                manager_status_changed(c->m);
        }
}

static int enqueue(cluster *c, const char *job, int64_t run_id, unsigned attempt, const history_result *res) {
        pending_result *q = realloc(c->queue, (c->n_queue + 1) * sizeof(*q));
        if (!q)
                return -ENOMEM;
        c->queue = q;
        pending_result *p = &q[c->n_queue];
        *p = (pending_result) { .run_id = run_id, .attempt = attempt, .res = *res };
        p->job = strdup(job);
        p->message = res->message ? strdup(res->message) : NULL;
        p->output = res->output_size > 0 ? malloc(res->output_size) : NULL;
        if (!p->job || (res->message && !p->message) || (res->output_size > 0 && !p->output)) {
                pending_done(p);
                return -ENOMEM;
        }
        if (p->output)
                memcpy(p->output, res->output, res->output_size);
        p->res.message = p->message;
        p->res.output = p->output;
        c->n_queue++;
        manager_status_changed(c->m);
        return 0;
}

int cluster_finish_run(cluster *c, history *h, const char *job, int64_t run_id, unsigned attempt,
                       const history_result *res) {
        /* results keep their order: none overtakes one that waits */
        if (c->n_queue == 0 && !c->outage && write_result(c, h, job, run_id, attempt, res) > 0)
                return 0;
        int r = enqueue(c, job, run_id, attempt, res);
        if (r < 0)
                log_full(LOG_ERR, r, job, (uint64_t) run_id, (int) attempt, "Result of run %" PRId64 " lost: %m", run_id);
        return r;
}

/* ---- the lease -------------------------------------------------------------------------- */

static refusal refusal_now(cluster *c) {
        if (!c->registered)
                return c->outage ? REFUSE_OUTAGE : REFUSE_UNREGISTERED;
        if (c->outage)
                return REFUSE_OUTAGE;
        if (clock_now_monotonic() + c->lease / 3 >= c->valid_until)
                return REFUSE_LEASE;
        if (c->offset_known && (c->offset > (int64_t) c->max_skew || -c->offset > (int64_t) c->max_skew))
                return REFUSE_SKEW;
        return REFUSE_NONE;
}

static void update_status(cluster *c) {
        char b[DURATION_MAX], o[DURATION_MAX];
        refusal why = refusal_now(c);

        switch (why) {
        case REFUSE_NONE:
                c->status[0] = 0;
                break;
        case REFUSE_UNREGISTERED:
                snprintf(c->status, sizeof(c->status), "cluster: not registered yet, not claiming");
                break;
        case REFUSE_OUTAGE:
                snprintf(c->status, sizeof(c->status), "cluster: PostgreSQL unreachable, not claiming");
                break;
        case REFUSE_LEASE:
                snprintf(c->status, sizeof(c->status), "cluster: lease of %s not renewed, not claiming", c->node_id);
                break;
        case REFUSE_SKEW:
                snprintf(c->status, sizeof(c->status),
                         "cluster: clock off by %s%s from PostgreSQL's (max_clock_skew %s), not claiming",
                         c->offset < 0 ? "-" : "+",
                         duration_format((usec_t) (c->offset < 0 ? -c->offset : c->offset), o, sizeof(o)),
                         duration_format(c->max_skew, b, sizeof(b)));
                break;
        }
        if (c->n_queue > 0) {
                size_t l = strlen(c->status);
                snprintf(c->status + l, sizeof(c->status) - l, "%s%zu result%s waiting for PostgreSQL",
                         l ? ", " : "cluster: ", c->n_queue, c->n_queue == 1 ? "" : "s");
        }
        if (why == c->refusing)
                return;
        if (why == REFUSE_SKEW)
                log_error("Node %s stops claiming fires: its clock is %+" PRId64 " ms off PostgreSQL's, beyond "
                          "scheduler.cluster.max_clock_skew (%s). Fix its time synchronisation (chrony, "
                          "systemd-timesyncd); the other nodes run its fires meanwhile.",
                          c->node_id, c->offset / (int64_t) USEC_PER_MSEC, duration_format(c->max_skew, b, sizeof(b)));
        else if (why == REFUSE_LEASE)
                log_warning("Node %s stops claiming fires: its lease could not be renewed in time.", c->node_id);
        else if (why == REFUSE_NONE && c->refusing != REFUSE_UNREGISTERED)
                log_notice("Node %s claims fires again.", c->node_id);
        c->refusing = why;
        manager_status_changed(c->m);
}

bool cluster_may_claim(cluster *c) {
        if (!c)
                return true;
        update_status(c);
        return c->refusing == REFUSE_NONE;
}

const char *cluster_status(const cluster *c) {
        return c ? c->status : "";
}

/* The history's connection claims for this incarnation (runs.node, runs.fence defaults). While it
 * is down, the connect hook binds it when it is back, before any claim goes through it. */
static void bind_history(cluster *c) {
        PGconn *hc = history_pg_conn(c->m->hist);
        if (hc && c->registered) {
                int r = cluster_pg_bind_session(hc, c->node_id, c->id.fence);
                if (r < 0)
                        log_warning_errno(r, "Cannot bind the history connection to node %s: %s", c->node_id,
                                          PQerrorMessage(hc));
        }
}

static int on_history_connect(history *h, PGconn *conn, void *userdata) {
        cluster *c = userdata;
        if (!c->registered)
                return 0;
        return cluster_pg_bind_session(conn, c->node_id, c->id.fence);
}

static int do_register(cluster *c) {
        cluster_lost_run *lost = NULL;
        size_t n = 0;
        int r;

        for (unsigned i = 0;; i++) {
                r = cluster_pg_register(c->conn, c->name, c->lease, NULL, &c->id);
                if (r != -EEXIST || i >= 5)
                        break;
        }
        if (r < 0) {
                call_failed(c, r, "registering the node");
                return r;
        }
        c->valid_until = clock_now_monotonic(); /* granted from the database's now(): renewed next */
        c->registered = true;
        set_node_id(c);
        bind_history(c);
        log_info("Joined the cluster as node %s (fencing token %" PRIu64 ").", c->node_id, c->id.fence);

        /* this node died or was killed before: what its earlier incarnations left running ends */
        r = cluster_pg_close_previous(c->conn, c->name, c->id.fence, &lost, &n);
        if (r < 0) {
                call_failed(c, r, "closing the previous incarnation's runs");
                return 0;
        }
        /* Its processes may have outlived it (a job may catch PDEATHSIG's SIGTERM): ended before a
         * retry can overlap them. Only this node's own: on a shared host, killing by the history's
         * pids alone would end other nodes' live runs. */
        for (size_t i = 0; i < n; i++)
                (void) manager_kill_leftover_run(lost[i].job, lost[i].id, lost[i].attempt, lost[i].pid,
                                                 lost[i].started_usec);
        handle_lost_runs(c, "node restarted", lost, n);
        cluster_lost_runs_free(lost, n);
        return 0;
}

/* After an outage (or a clock too far off): the fires missed meanwhile follow catch_up. */
static void catch_up_all(cluster *c) {
        manager *m = c->m;
        usec_t now = clock_now_realtime();
        m->deferring = true;
        for (size_t i = 0; i < m->n_jobs; i++)
                (void) manager_catch_up(m, m->jobs[i], now);
        m->deferring = false;
        manager_start_deferred(m);
        manager_arm_timers(m);
}

/* The cluster declared this node lost: what it runs was interrupted, and a retry of it may
 * already run on another node. Going on would run the work twice at once, for a result the
 * fence discards: each run in flight is killed. */
static void kill_runs_taken_over(cluster *c) {
        for (run *r = c->m->runs; r; r = r->next) {
                if (r->killed)
                        continue;
                log_full(LOG_WARNING, 0, r->def->name, r->id, (int) r->attempt,
                         "Killed: node %s was declared lost, and the cluster interrupted this run (its retry, if "
                         "any, runs on another node); its result would be discarded.", c->node_id);
                run_kill(r);
        }
}

/* One beat: (re)connect, measure the clock, renew, take over, write what waits. Returns the
 * delay to the next beat. */
static usec_t beat(cluster *c) {
        cluster_lost_run *lost = NULL;
        size_t n = 0;
        bool was_out = c->outage, could_claim = c->refusing == REFUSE_NONE;
        usec_t db_now, m0, t0, t1;
        int r;

        if (c->name_clash)
                return BEAT_MAX; /* never registered again: that would close the other daemon's runs */
        if (!connection_ok(c))
                goto backoff;
        if (!c->registered && do_register(c) < 0)
                goto backoff;

        m0 = clock_now_monotonic();
        if (!was_out && c->renewed_at != 0 && m0 + BEAT_SLACK(c) < c->renewed_at + c->lease / 3)
                goto renewed;
        t0 = clock_now_realtime();
        r = cluster_pg_now(c->conn, &db_now);
        t1 = clock_now_realtime();
        if (r < 0) {
                call_failed(c, r, "reading the database's clock");
                goto backoff;
        }
        c->offset = (int64_t) (t0 / 2 + t1 / 2) - (int64_t) db_now;
        c->offset_known = true;

        r = cluster_pg_renew(c->conn, c->id.fence, c->lease, c->offset, NULL);
        if (r == -EADDRINUSE) {
                /* Two daemons under one name would each close the other's runs at every
                 * registration, for ever: the one that finds out stops, and says why. */
                log_error("Another daemon registered as cluster node '%s' while this one (%s) was running, and "
                          "closed this one's runs as a restart would. Each daemon needs a node name of its own: set "
                          "scheduler.cluster.node (the default is the machine-id, the same on cloned machines). "
                          "Stopping; not restarted until the registry changes.", c->name, c->node_id);
                c->registered = false;
                c->name_clash = true;
                c->valid_until = 0;
                manager_stop_on_error(c->m, r);
                update_status(c);
                return BEAT_MAX;
        }
        if (r == -ESTALE) {
                c->lost_leases++;
                log_error("Node %s was declared lost by the cluster (its lease ran out): its runs in flight were "
                          "interrupted and taken over, and their results will be discarded. Joining again as a new "
                          "incarnation.", c->node_id);
                kill_runs_taken_over(c);
                c->registered = false;
                c->valid_until = 0;
                if (do_register(c) < 0)
                        goto backoff;
                r = cluster_pg_renew(c->conn, c->id.fence, c->lease, c->offset, NULL);
        }
        if (r < 0) {
                call_failed(c, r, "renewing the lease");
                goto backoff;
        }
        c->valid_until = m0 + c->lease;
        c->renewed_at = m0;
        outage_end(c);

renewed:
        /* results first: a run that finished here during an outage is not taken for lost */
        flush_results(c);
        if (c->connected_since != USEC_INFINITY && clock_now_monotonic() - c->connected_since >= c->lease) {
                size_t n_nodes = 0;
                r = cluster_pg_take_over(c->conn, c->id.fence, &lost, &n, &n_nodes);
                if (r < 0)
                        call_failed(c, r, "taking over lost nodes");
                else {
                        handle_lost_runs(c, "node lost", lost, n);
                        cluster_lost_runs_free(lost, n);
                        /* their retries that were waiting (a failed run's backoff) wait here now */
                        if (n_nodes > 0)
                                (void) manager_retries_adopt(c->m);
                }
        }
        update_status(c);
        if ((was_out || !could_claim) && c->refusing == REFUSE_NONE)
                catch_up_all(c);
        return MIN(c->lease / 3, BEAT_MAX);

backoff:
        update_status(c);
        c->backoff = c->backoff == 0 ? CLUSTER_BACKOFF_MIN : MIN(c->backoff * 2, MAX(c->lease / 5, CLUSTER_BACKOFF_MIN));
        /* an attempt that waited out its connect_timeout (a host that drops packets) held the
         * loop that long: the next waits PG_CONNECT_BACKOFF_FACTOR times as long, so runs,
         * timers and schedctl keep most of the loop */
        return MAX(c->backoff, PG_CONNECT_BACKOFF_FACTOR * c->connect_took);
}

static int on_beat(sd_event_source *s, uint64_t usec, void *userdata) {
        cluster *c = userdata;
        usec_t next = beat(c);
        (void) sd_event_source_set_time(s, usec + next);
        (void) sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        return 0;
}

int cluster_start(manager *m, const char *conninfo, const char *name, usec_t lease, usec_t max_clock_skew,
                  cluster **ret) {
        cluster *c = calloc(1, sizeof(*c));
        int r;

        if (!c)
                return -ENOMEM;
        c->m = m;
        c->lease = lease ?: CLUSTER_DEFAULT_LEASE;
        c->max_skew = max_clock_skew;
        c->connected_since = USEC_INFINITY;
        c->refusing = REFUSE_UNREGISTERED;
        if (!(c->conninfo = strdup(conninfo))) {
                free(c);
                return -ENOMEM;
        }
        if (name)
                snprintf(c->name, sizeof(c->name), "%s", name);
        else if ((r = default_name(c->name, sizeof(c->name))) < 0) {
                log_error_errno(r, "Cannot read the machine-id for the cluster node name (%m); set "
                                   "scheduler.cluster.node.");
                cluster_free(c);
                return r;
        }
        set_node_id(c);
        history_pg_set_connect_hook(m->hist, on_history_connect, c);
        /* the first beat now, before any fire: registration and the previous incarnation's runs */
        usec_t next = beat(c);
        r = sd_event_add_time_relative(m->event, &c->timer, CLOCK_MONOTONIC, next, 1, on_beat, c);
        if (r < 0) {
                cluster_free(c);
                return r;
        }
        /* before the loop: the lease beats even while fires are being decided */
        (void) sd_event_source_set_priority(c->timer, SD_EVENT_PRIORITY_IMPORTANT);
        *ret = c;
        return 0;
}

cluster *cluster_free(cluster *c) {
        if (!c)
                return NULL;
        if (c->conn && PQstatus(c->conn) == CONNECTION_OK) {
                flush_results(c);
                /* left only with every result written: a result history keeps for later (its own
                 * connection down) would be dropped with it, and a stopped node's rows stay
                 * "running" for ever (take-over looks at live nodes); staying, the node's lease
                 * lapses and a survivor closes them as interrupted */
                if (c->registered && c->n_queue == 0 && c->m->n_running == 0 &&
                    history_pg_pending_results(c->m->hist, NULL) == 0)
                        (void) cluster_pg_leave(c->conn, c->id.fence);
        }
        for (size_t i = 0; i < c->n_queue; i++) {
                log_full(LOG_ERR, 0, c->queue[i].job, (uint64_t) c->queue[i].run_id, (int) c->queue[i].attempt,
                         "Result of run %" PRId64 " not written: PostgreSQL unreachable at shutdown",
                         c->queue[i].run_id);
                pending_done(&c->queue[i]);
        }
        free(c->queue);
        sd_event_source_disable_unref(c->timer);
        history_pg_set_connect_hook(c->m->hist, NULL, NULL);
        PQfinish(c->conn);
        free(c->conninfo);
        free(c);
        return NULL;
}

void cluster_metrics_write(const cluster *c, FILE *f) {
        if (!c)
                return;
        usec_t now = clock_now_monotonic();
        fputs("# HELP schedulerd_cluster_clock_offset_seconds This node's clock minus PostgreSQL's, last measured.\n"
              "# TYPE schedulerd_cluster_clock_offset_seconds gauge\n", f);
        fprintf(f, "schedulerd_cluster_clock_offset_seconds %.6f\n", (double) c->offset / USEC_PER_SEC);
        fputs("# HELP schedulerd_cluster_lease_remaining_seconds Time left on this node's lease as it can be sure of.\n"
              "# TYPE schedulerd_cluster_lease_remaining_seconds gauge\n", f);
        fprintf(f, "schedulerd_cluster_lease_remaining_seconds %.3f\n",
                c->valid_until > now ? (double) (c->valid_until - now) / USEC_PER_SEC : 0.0);
        fputs("# HELP schedulerd_cluster_claiming 1 when this node claims fires, 0 when it refuses (outage, lease, clock).\n"
              "# TYPE schedulerd_cluster_claiming gauge\n", f);
        fprintf(f, "schedulerd_cluster_claiming %d\n", c->refusing == REFUSE_NONE);
        fputs("# HELP schedulerd_cluster_store_reachable 1 when PostgreSQL answered the last lease renewal.\n"
              "# TYPE schedulerd_cluster_store_reachable gauge\n", f);
        fprintf(f, "schedulerd_cluster_store_reachable %d\n", !c->outage);
        fputs("# HELP schedulerd_cluster_results_queued Results of finished runs waiting for PostgreSQL.\n"
              "# TYPE schedulerd_cluster_results_queued gauge\n", f);
        fprintf(f, "schedulerd_cluster_results_queued %zu\n", c->n_queue);
        fputs("# HELP schedulerd_cluster_runs_taken_over_total Runs of lost nodes this node interrupted.\n"
              "# TYPE schedulerd_cluster_runs_taken_over_total counter\n", f);
        fprintf(f, "schedulerd_cluster_runs_taken_over_total %" PRIu64 "\n", c->taken_over);
        fputs("# HELP schedulerd_cluster_results_discarded_total Results refused by the fence (run taken over).\n"
              "# TYPE schedulerd_cluster_results_discarded_total counter\n", f);
        fprintf(f, "schedulerd_cluster_results_discarded_total %" PRIu64 "\n", c->discarded);
        fputs("# HELP schedulerd_cluster_leases_lost_total Times this node found itself declared lost.\n"
              "# TYPE schedulerd_cluster_leases_lost_total counter\n", f);
        fprintf(f, "schedulerd_cluster_leases_lost_total %" PRIu64 "\n", c->lost_leases);
}
